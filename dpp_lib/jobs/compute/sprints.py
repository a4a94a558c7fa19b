"""Sprint snapshots and sprint confidence (spec §4.3.7, §6.2.2; every 2 hours).

Writes today's ``sprint_snapshots`` row of every sprint running in the selected delivery
streams (an upsert: one snapshot per sprint per day, the latest run wins) and each stream's
``sprint_confidence`` row of ``daily_stream_metrics``.
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
from dpp_lib.metrics import forecast
from dpp_lib.metrics.common import DEFAULT_WINDOW_DAYS
from dpp_lib.projections.sprint_store import refresh_sprint_snapshots
from dpp_lib.views.common import Stream

NAME = "sprint_snapshots"
OWNED: dict[Kind, frozenset[str]] = {"delivery": frozenset({"sprint_confidence"})}
COLUMNS: dict[tuple[str, int | None], str] = {("sprint_confidence", None): "confidence_pct"}


def refresh_sprints(
    engine: sa.Engine,
    *,
    as_of: datetime,
    stream: str = "all",
    window_days: int = DEFAULT_WINDOW_DAYS,
) -> ComputeResult:
    """Snapshot the running sprints and compute sprint confidence, for every delivery
    stream or the one named. ``window_days`` is not used: confidence samples the last six
    closed sprints (spec §6.2.2)."""
    return run(
        engine,
        NAME,
        lambda ctx: compute(ctx, stream),
        as_of=as_of,
        window_days=window_days,
        topics=("sprint_snapshots",),
    )


def sprint_confidence(ctx: Context, stream: Stream) -> forecast.SprintConfidence:
    """The stream's confidence at ``ctx.as_of`` (kept for the cross-stream analysis)."""

    def calculate() -> forecast.SprintConfidence:
        f = ctx.scoped("delivery", stream)
        return forecast.sprint_confidence(
            f["cycles"], f["sprints"], f["snapshots"], as_of=ctx.as_of, calendar=ctx.calendar
        )

    return ctx.memo("sprint_confidence", stream, calculate)


def compute(ctx: Context, stream: str) -> ComputeResult:
    chosen = select_streams(ctx.org, stream, kinds=("delivery",))
    snapshots = refresh_sprint_snapshots(
        ctx.conn,
        ctx.lookups,
        today=ctx.day,
        delivery_stream_ids=None if chosen.whole else [s.stream_id for s in chosen.delivery],
    )
    ctx.frames.forget("snapshots")  # read after today's were written
    computed: list[tuple[Kind, Stream, list[Row]]] = []
    extra: dict[Any, dict[str, Any]] = {}
    sprints = ctx.frames.get("sprints")
    names = dict(zip(sprints["sprint_id"], sprints["name"], strict=True))
    for s in chosen.delivery:
        sc = sprint_confidence(ctx, s)
        row = Row("sprint_confidence", sc.confidence_pct, "percent", None, sc.sample_size)
        computed.append(("delivery", s, [row]))
        extra[s.stream_id] = {
            "sprint": names.get(sc.sprint_id),
            "remaining_items": sc.remaining_count,
            "working_days_left": sc.working_days_left,
            "note": sc.reason or "",
        }
    written = replace_rows(ctx.conn, day=ctx.day, owned=OWNED, selection=chosen, computed=computed)
    summary = summary_frame(computed, COLUMNS, extra)
    return ComputeResult(
        computation=NAME,
        as_of=ctx.as_of,
        day=ctx.day,
        window_days=ctx.window_days,
        streams=chosen.names,
        rows={"sprint_snapshots": snapshots, "daily_stream_metrics": written},
        summary=summary,
        headline=_headline(summary, snapshots, ctx),
    )


def _headline(summary: pd.DataFrame, snapshots: int, ctx: Context) -> str:
    confidence = column(summary, "confidence_pct")
    who = one_or_count(summary, plural(len(summary), "delivery stream"))
    text = f"{who}, sprint confidence {span(confidence, '%')}"
    lowest = extreme(confidence, lowest=True)
    if lowest:
        text += f"; {lowest} lowest"
    return f"{text}. {plural(snapshots, 'running sprint')} snapshotted for {ctx.day.isoformat()}."
