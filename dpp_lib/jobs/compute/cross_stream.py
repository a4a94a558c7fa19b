"""Cross-stream correlation (spec §4.4.5, §6.7; hourly): per tech stream, the delivery
streams its blocks impacted over 14 days, their average sprint confidence and p85 cycle
time, and the severity, as ``cross_stream_correlations`` rows for the day.

The analysis always spans every delivery stream; ``stream`` may name one tech stream, whose
row alone is then replaced.
"""

from __future__ import annotations

from datetime import datetime

import pandas as pd
import sqlalchemy as sa

from dpp_lib.jobs.compute.context import Context, select_streams
from dpp_lib.jobs.compute.daily import cycle_time
from dpp_lib.jobs.compute.result import ComputeResult, number, plural, run
from dpp_lib.jobs.compute.sprints import sprint_confidence
from dpp_lib.metrics import cross_stream
from dpp_lib.metrics.common import DEFAULT_WINDOW_DAYS
from dpp_lib.orgconfig import CrossStream
from dpp_lib.store.schema import cross_stream_correlations
from dpp_lib.store.types import new_id

NAME = "cross_stream"


def refresh_cross_stream(
    engine: sa.Engine,
    *,
    as_of: datetime,
    stream: str = "all",
    window_days: int = DEFAULT_WINDOW_DAYS,
) -> ComputeResult:
    """The day's cross-stream rows (every tech stream, or the one named). Blocks are
    counted over the spec's 14 days; ``window_days`` is the p85 cycle time's window."""
    return run(engine, NAME, lambda ctx: compute(ctx, stream), as_of=as_of, window_days=window_days)


def compute(ctx: Context, stream: str) -> ComputeResult:
    chosen = select_streams(ctx.org, stream, kinds=("tech",))
    delivery = ctx.org.delivery
    rules = CrossStream.model_validate(ctx.org.settings.get("cross_stream") or {})
    result = cross_stream.cross_stream_bottleneck(
        ctx.frames.get("transitions"),
        as_of=ctx.as_of,
        sprint_confidence_pct={
            s.stream_id: sprint_confidence(ctx, s).confidence_pct for s in delivery
        },
        cycle_time_p85_days={s.stream_id: cycle_time(ctx, "delivery", s).p85 for s in delivery},
        tech_streams=[t.stream_id for t in ctx.org.tech],
        rules=rules.severity_rules,
        calibration=rules.calibration,
    )
    rows = cross_stream.cross_stream_correlation_rows(result, time_zone=ctx.lookups.time_zone)
    wanted: set[object] = {t.stream_id for t in chosen.tech}
    if not chosen.whole:
        rows = [r for r in rows if r["tech_stream_id"] in wanted]
    c = cross_stream_correlations
    delete = c.delete().where(c.c.analysis_date == ctx.day)
    if not chosen.whole:
        delete = delete.where(c.c.tech_stream_id.in_(sorted(wanted)))
    ctx.conn.execute(delete)
    if rows:
        ctx.conn.execute(c.insert(), [{"correlation_id": new_id(), **r} for r in rows])
    summary = _summary(ctx, result, None if chosen.whole else wanted)
    return ComputeResult(
        computation=NAME,
        as_of=ctx.as_of,
        day=ctx.day,
        window_days=ctx.window_days,
        streams=chosen.names,
        rows={"cross_stream_correlations": len(rows)},
        summary=summary,
        headline=_headline(summary, result.calibration),
    )


def _summary(
    ctx: Context, result: cross_stream.CrossStreamBottleneck, wanted: set[object] | None
) -> pd.DataFrame:
    def name(stream_id: object) -> str:
        return ctx.org.name_of(stream_id) or str(stream_id)

    columns = [
        "tech_stream",
        "severity",
        "block_count_14d",
        "impacted_streams",
        "blocked_now",
        "avg_confidence_pct",
        "avg_cycle_time_p85_days",
    ]
    lines = [
        {
            "tech_stream": name(c.tech_stream_id),
            "severity": c.severity,
            "block_count_14d": c.block_count_14d,
            "impacted_streams": ", ".join(sorted(name(s) for s in c.impacted_delivery_streams)),
            "blocked_now": ", ".join(sorted(name(s) for s in c.blocked_delivery_streams)),
            "avg_confidence_pct": c.avg_confidence_pct,
            "avg_cycle_time_p85_days": c.avg_cycle_time_p85,
        }
        for c in result.correlations  # highest impact first
        if wanted is None or c.tech_stream_id in wanted
    ]
    return pd.DataFrame(lines, columns=columns)


def _headline(summary: pd.DataFrame, calibration: bool) -> str:
    if summary.empty:
        return "No tech stream to analyse."
    impacted = summary[summary["severity"] != "none"]
    mode = " Calibration mode: severities are recorded, no alert is sent." if calibration else ""
    if impacted.empty:
        return f"No blocks by {plural(len(summary), 'tech stream')} in the last 14 days.{mode}"
    top = impacted.iloc[0]
    count = len([s for s in top["impacted_streams"].split(", ") if s])
    text = (
        f"{top['tech_stream']} is the main bottleneck: {top['severity']}, "
        f"{plural(count, 'delivery stream')} impacted, {top['block_count_14d']} blocks in 14 days"
    )
    if pd.notna(top["avg_confidence_pct"]):
        text += f", their sprint confidence {number(float(top['avg_confidence_pct']))} % on average"
    rest = len(impacted) - 1
    quiet = len(summary) - len(impacted)
    text += f"; {plural(rest, 'other tech stream')} impacting, {quiet} without blocks."
    return text + mode
