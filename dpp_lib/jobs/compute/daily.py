"""Daily stream metrics: flow and DORA (spec §4.4.1, §6.2.3, §6.4, §6.5.1; daily).

Per delivery stream: cycle time p50/p85/p95, throughput per week and WIP. Per tech stream:
cycle time p50/p85/p95 of the items that touched it, deployment frequency, change failure
rate, time to restore (median and mean) and lead time for changes (p50, p85). Before the
DORA figures, the stored deploy → incident and deploy → PR links of the covered tech
streams are refreshed (``deploy_links``).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

import pandas as pd
import sqlalchemy as sa

from dpp_lib.jobs.compute.context import Context, Kind, Scoped, select_streams
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
from dpp_lib.jobs.deploy_links import refresh_deploy_links
from dpp_lib.metrics import dora, flow
from dpp_lib.metrics.common import DEFAULT_WINDOW_DAYS
from dpp_lib.views.common import Stream

NAME = "daily_metrics"
DORA = ("deployment_frequency", "change_failure_rate", "ttr_median", "ttr_mean", "lead_time")
OWNED: dict[Kind, frozenset[str]] = {
    "delivery": frozenset({"cycle_time", "throughput", "wip"}),
    "tech": frozenset({"cycle_time", *DORA}),
}
COLUMNS: dict[tuple[str, int | None], str] = {
    ("cycle_time", 50): "cycle_time_p50_days",
    ("cycle_time", 85): "cycle_time_p85_days",
    ("cycle_time", 95): "cycle_time_p95_days",
    ("throughput", None): "throughput_per_week",
    ("wip", None): "wip_items",
    ("deployment_frequency", None): "deploys_per_week",
    ("change_failure_rate", None): "change_failure_rate_pct",
    ("ttr_median", 50): "ttr_median_minutes",
    ("lead_time", 50): "lead_time_p50_hours",
    ("lead_time", 85): "lead_time_p85_hours",
}


def refresh_daily_metrics(
    engine: sa.Engine,
    *,
    as_of: datetime,
    stream: str = "all",
    window_days: int = DEFAULT_WINDOW_DAYS,
) -> ComputeResult:
    """The day's flow and DORA rows for every stream, or for the one delivery or tech
    stream named, over the trailing ``window_days``."""
    return run(
        engine,
        NAME,
        lambda ctx: compute(ctx, stream),
        as_of=as_of,
        window_days=window_days,
        topics=("deployment_records",),
    )


def cycle_time(ctx: Context, kind: Kind, stream: Stream) -> flow.CycleTime:
    """The stream's cycle time over the window (kept for the cross-stream analysis)."""
    return ctx.memo(
        f"cycle_time:{kind}",
        stream,
        lambda: flow.cycle_time(
            ctx.scoped(kind, stream)["cycles"], as_of=ctx.as_of, window_days=ctx.window_days
        ),
    )


def compute(ctx: Context, stream: str) -> ComputeResult:
    chosen = select_streams(ctx.org, stream, kinds=("delivery", "tech"))
    links = 0
    if chosen.tech or chosen.whole:
        links = refresh_deploy_links(
            ctx.conn,
            tech_stream_ids=None if chosen.whole else [t.stream_id for t in chosen.tech],
            window_minutes=ctx.lookups.incident_correlation_window_minutes,
        )
        ctx.frames.forget("deploys")
    computed: list[tuple[Kind, Stream, list[Row]]] = []
    for s in chosen.delivery:
        computed.append(("delivery", s, [*_cycle_rows(ctx, "delivery", s), *_flow_rows(ctx, s)]))
    for t in chosen.tech:
        computed.append(("tech", t, [*_cycle_rows(ctx, "tech", t), *_dora_rows(ctx, t)]))
    written = replace_rows(ctx.conn, day=ctx.day, owned=OWNED, selection=chosen, computed=computed)
    summary = summary_frame(computed, COLUMNS)
    return ComputeResult(
        computation=NAME,
        as_of=ctx.as_of,
        day=ctx.day,
        window_days=ctx.window_days,
        streams=chosen.names,
        rows={"daily_stream_metrics": written, "deployment_records": links},
        summary=summary,
        headline=_headline(summary, ctx, len(chosen.delivery), len(chosen.tech)),
    )


def _cycle_rows(ctx: Context, kind: Kind, stream: Stream) -> list[Row]:
    ct = cycle_time(ctx, kind, stream)
    return [
        Row("cycle_time", v, "days", q, ct.sample_size)
        for q, v in ((50, ct.p50), (85, ct.p85), (95, ct.p95))
    ]


def _flow_rows(ctx: Context, stream: Stream) -> list[Row]:
    f = ctx.scoped("delivery", stream)
    tp = flow.throughput(
        f["cycles"], as_of=ctx.as_of, window_days=ctx.window_days, calendar=ctx.calendar
    )
    wip = flow.wip_by_stage(f["items"], as_of=ctx.as_of)
    return [
        Row("throughput", tp.per_week, "per_week", None, tp.sample_size),
        Row("wip", wip.sample_size, "items", None, wip.sample_size),
    ]


def _dora_rows(ctx: Context, stream: Stream) -> Iterator[Row]:
    f: Scoped = ctx.scoped("tech", stream)
    as_of, days = ctx.as_of, ctx.window_days
    df = dora.deployment_frequency(
        f["deploys"], as_of=as_of, window_days=days, calendar=ctx.calendar
    )
    yield Row("deployment_frequency", df.deployment_frequency, "per_week", None, df.sample_size)
    cfr = dora.change_failure_rate(
        f["deploys"],
        f["incidents"],
        as_of=as_of,
        window_days=days,
        correlation_window_minutes=ctx.correlation_minutes,
    )
    yield Row("change_failure_rate", cfr.change_failure_rate, "percent", None, cfr.sample_size)
    ttr = dora.time_to_restore(f["incidents"], as_of=as_of, window_days=days)
    yield Row("ttr_median", ttr.ttr_median, "minutes", 50, ttr.sample_size)
    yield Row("ttr_mean", ttr.ttr_mean, "minutes", None, ttr.sample_size)
    lt = dora.lead_time_for_changes(f["prs"], f["deploys"], as_of=as_of, window_days=days)
    yield Row("lead_time", lt.lead_time_p50, "hours", 50, lt.sample_size)
    yield Row("lead_time", lt.lead_time_p85, "hours", 85, lt.sample_size)


def _headline(summary: pd.DataFrame, ctx: Context, delivery: int, tech: int) -> str:
    counts = (
        plural(delivery, "delivery stream") if delivery else "",
        plural(tech, "tech stream") if tech else "",
    )
    streams = one_or_count(summary, " and ".join(c for c in counts if c) or "no stream")
    p85 = column(summary, "cycle_time_p85_days")
    parts = [f"cycle time p85 {span(p85, 'days')}" + _named(p85, "slowest", lowest=False)]
    if tech:
        deploys = column(summary, "deploys_per_week")
        parts.append(
            f"{span(deploys, 'deploys a week', 1)}" + _named(deploys, "fewest", lowest=True)
        )
    return (
        f"{streams} on {ctx.day.isoformat()} over {ctx.window_days} days: " + "; ".join(parts) + "."
    )


def _named(values: dict[str, float | None], word: str, *, lowest: bool) -> str:
    name = extreme(values, lowest=lowest)
    return f" ({name} {word})" if name else ""
