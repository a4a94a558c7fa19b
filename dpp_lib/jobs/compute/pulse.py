"""Pulse aggregates (spec §4.4.7, §6.6.1; monthly): per delivery stream and survey
period, responses, response rate and the pace, tooling and clarity averages and trends,
recomputed for every period from the stored responses (a late or changed response moves
its period's figures). Periods with fewer than three responses keep their count only.
"""

from __future__ import annotations

from datetime import datetime

import pandas as pd
import sqlalchemy as sa

from dpp_lib.jobs.compute.context import Context, select_streams
from dpp_lib.jobs.compute.result import ComputeResult, column, extreme, plural, run, span
from dpp_lib.metrics import pulse
from dpp_lib.metrics.common import DEFAULT_WINDOW_DAYS
from dpp_lib.store.schema import pulse_aggregates
from dpp_lib.store.types import new_id

NAME = "pulse_aggregates"
COLUMNS = [
    "stream",
    "survey_period",
    "response_count",
    "team_size",
    "response_rate_pct",
    "pace_avg",
    "tooling_avg",
    "clarity_avg",
    "overall_avg",
    "pace_trend",
    "tooling_trend",
    "clarity_trend",
]


def refresh_pulse(
    engine: sa.Engine,
    *,
    as_of: datetime,
    stream: str = "all",
    window_days: int = DEFAULT_WINDOW_DAYS,
) -> ComputeResult:
    """Every survey period's aggregates of every delivery stream, or of the one named, from
    the responses before ``as_of``. ``window_days`` is not used (periods are months)."""
    return run(engine, NAME, lambda ctx: compute(ctx, stream), as_of=as_of, window_days=window_days)


def compute(ctx: Context, stream: str) -> ComputeResult:
    chosen = select_streams(ctx.org, stream, kinds=("delivery",))
    responses = ctx.frames.get("pulse")
    sizes = {s.stream_id: s.team_size for s in ctx.org.delivery if s.team_size is not None}
    if not chosen.whole:
        wanted = {s.stream_id for s in chosen.delivery}
        responses = responses[responses["delivery_stream_id"].isin(wanted)]
        sizes = {k: v for k, v in sizes.items() if k in wanted}
    rows = pulse.pulse_aggregate_rows(responses, as_of=ctx.as_of, team_sizes=sizes)
    p = pulse_aggregates
    delete = p.delete()
    if not chosen.whole:
        delete = delete.where(p.c.delivery_stream_id.in_(sorted(wanted, key=str)))
    ctx.conn.execute(delete)
    if rows:
        ctx.conn.execute(p.insert(), [{"aggregate_id": new_id(), **r} for r in rows])
    summary = pd.DataFrame(
        [{"stream": _name(ctx, r["delivery_stream_id"]), **r} for r in rows],
        columns=COLUMNS,
    ).sort_values(["stream", "survey_period"], ignore_index=True)
    return ComputeResult(
        computation=NAME,
        as_of=ctx.as_of,
        day=ctx.day,
        window_days=ctx.window_days,
        streams=chosen.names,
        rows={"pulse_aggregates": len(rows)},
        summary=summary,
        headline=_headline(summary),
    )


def _name(ctx: Context, stream_id: object) -> str:
    return ctx.org.name_of(stream_id) or str(stream_id)  # a stream made inactive since


def _headline(summary: pd.DataFrame) -> str:
    if summary.empty:
        return "No pulse responses yet: nothing to aggregate."
    latest = str(summary["survey_period"].max())
    now = summary[summary["survey_period"] == latest]
    rate = column(now, "response_rate_pct")
    overall = column(now, "overall_avg")
    text = (
        f"{latest}: {plural(len(now), 'stream')} answered, response rate {span(rate, '%', 0)}, "
        f"overall score {span(overall, 'of 5', 2)}"
    )
    lowest = extreme(overall, lowest=True)
    if lowest:
        text += f" ({lowest} lowest)"
    withheld = int(now["overall_avg"].isna().sum())
    if withheld:
        text += f"; {plural(withheld, 'stream')} under 3 responses, averages withheld"
    periods = summary["survey_period"].nunique()
    return text + f". {plural(len(summary), 'aggregate')} over {plural(periods, 'period')} written."
