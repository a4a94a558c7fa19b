"""Diagnostics: flow efficiency, defect escape rate and review turnaround (spec §6.3;
daily), as ``daily_stream_metrics`` rows.

Per delivery stream: flow efficiency, defect escape rate and review turnaround p50/p85 of
the PRs linked to its work; per tech stream: review turnaround p50/p85.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pandas as pd
import sqlalchemy as sa

from dpp_lib.jobs.compute.context import Context, Kind, select_streams
from dpp_lib.jobs.compute.daily_rows import Row, replace_rows, summary_frame
from dpp_lib.jobs.compute.result import (
    ComputeResult,
    column,
    extreme,
    one_or_count,
    plural,
    run,
    span,
)
from dpp_lib.metrics import flow, quality, review
from dpp_lib.metrics.common import DEFAULT_WINDOW_DAYS
from dpp_lib.views.common import Stream

NAME = "diagnostics"
OWNED: dict[Kind, frozenset[str]] = {
    "delivery": frozenset({"flow_efficiency", "defect_escape_rate", "review_turnaround"}),
    "tech": frozenset({"review_turnaround"}),
}
COLUMNS: dict[tuple[str, int | None], str] = {
    ("flow_efficiency", None): "flow_efficiency_pct",
    ("defect_escape_rate", None): "defect_escape_rate_pct",
    ("review_turnaround", 50): "review_p50_hours",
    ("review_turnaround", 85): "review_p85_hours",
}


def refresh_diagnostics(
    engine: sa.Engine,
    *,
    as_of: datetime,
    stream: str = "all",
    window_days: int = DEFAULT_WINDOW_DAYS,
) -> ComputeResult:
    """The day's diagnostic rows for every stream, or for the one delivery or tech stream
    named, over the trailing ``window_days``."""
    return run(engine, NAME, lambda ctx: compute(ctx, stream), as_of=as_of, window_days=window_days)


def compute(ctx: Context, stream: str) -> ComputeResult:
    chosen = select_streams(ctx.org, stream, kinds=("delivery", "tech"))
    computed: list[tuple[Kind, Stream, list[Row]]] = []
    extra: dict[Any, dict[str, Any]] = {}
    as_of, days = ctx.as_of, ctx.window_days
    for s in chosen.delivery:
        f = ctx.scoped("delivery", s)
        fe = flow.flow_efficiency(f["cycles"], as_of=as_of, window_days=days)
        de = quality.defect_escape(f["defects"], f["cycles"], as_of=as_of, window_days=days)
        rows = [
            Row("flow_efficiency", fe.flow_efficiency_pct, "percent", None, fe.sample_size),
            Row("defect_escape_rate", de.rate, "percent", None, de.sample_size),
            *_review_rows(ctx, "delivery", s),
        ]
        computed.append(("delivery", s, rows))
        extra[s.stream_id] = {"slowest_queue": fe.slowest_queue or ""}
    for t in chosen.tech:
        computed.append(("tech", t, _review_rows(ctx, "tech", t)))
        extra[t.stream_id] = {"slowest_queue": ""}
    written = replace_rows(ctx.conn, day=ctx.day, owned=OWNED, selection=chosen, computed=computed)
    summary = summary_frame(computed, COLUMNS, extra)
    return ComputeResult(
        computation=NAME,
        as_of=as_of,
        day=ctx.day,
        window_days=days,
        streams=chosen.names,
        rows={"daily_stream_metrics": written},
        summary=summary,
        headline=_headline(summary, ctx),
    )


def _review_rows(ctx: Context, kind: Kind, stream: Stream) -> list[Row]:
    f = ctx.scoped(kind, stream)
    rt = review.review_turnaround(
        f["prs"],
        f["reviews"],
        as_of=ctx.as_of,
        window_days=ctx.window_days,
        min_contributors=stream.min_contributors or ctx.min_contributors,
    )
    return [
        Row("review_turnaround", rt.p50_hours, "hours", 50, rt.sample_size),
        Row("review_turnaround", rt.p85_hours, "hours", 85, rt.sample_size),
    ]


def _headline(summary: pd.DataFrame, ctx: Context) -> str:
    if summary.empty:
        return "No stream to diagnose."
    delivery = summary[summary["kind"] == "delivery"]
    parts = []
    if not delivery.empty:
        efficiency = column(delivery, "flow_efficiency_pct")
        text = f"flow efficiency {span(efficiency, '%')}"
        lowest = extreme(efficiency, lowest=True) or (
            delivery["stream"].iloc[0] if len(delivery) == 1 else None
        )
        queue = (
            delivery.loc[delivery["stream"] == lowest, "slowest_queue"].iloc[0] if lowest else ""
        )
        if lowest and len(delivery) > 1:
            text += f" ({lowest} lowest"
            text += f", most waiting in {queue})" if queue else ")"
        elif queue:
            text += f" (most waiting in {queue})"
        parts.append(text)
        parts.append(f"defect escape {span(column(delivery, 'defect_escape_rate_pct'), '%')}")
    review_p50 = column(summary, "review_p50_hours")
    slowest = extreme(review_p50, lowest=False)
    parts.append(
        f"review turnaround p50 {span(review_p50, 'h')}"
        + (f" ({slowest} slowest)" if slowest else "")
    )
    who = one_or_count(summary, plural(len(summary), "stream"))
    head = f"{who} on {ctx.day.isoformat()} over {ctx.window_days} days"
    return f"{head}: " + "; ".join(parts) + "."
