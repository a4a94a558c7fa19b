"""Forecast snapshots: the Monte Carlo "when" forecast of each delivery stream's remaining
scope (spec §4.4.6, §6.5.1; daily).

A stream with fewer than six weeks of throughput history gets the metric's linear
projection, which is shown in the summary but not stored (``forecast_snapshots`` holds
simulations); so is a stream whose simulation does not finish within the horizon.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson
import pandas as pd
import sqlalchemy as sa

from dpp_lib.jobs.compute.context import Context, select_streams
from dpp_lib.jobs.compute.result import ComputeResult, plural, run
from dpp_lib.metrics import forecast
from dpp_lib.metrics.common import DEFAULT_WINDOW_DAYS
from dpp_lib.store.schema import forecast_snapshots
from dpp_lib.store.types import new_id

NAME = "forecasts"
PERCENTILES = (50, 70, 85, 95)


def refresh_forecasts(
    engine: sa.Engine,
    *,
    as_of: datetime,
    stream: str = "all",
    window_days: int = DEFAULT_WINDOW_DAYS,
) -> ComputeResult:
    """The day's forecast snapshot of every delivery stream, or of the one named.
    ``window_days`` is not used: the forecast samples the trailing 12 full weeks."""
    return run(engine, NAME, lambda ctx: compute(ctx, stream), as_of=as_of, window_days=window_days)


def compute(ctx: Context, stream: str) -> ComputeResult:
    chosen = select_streams(ctx.org, stream, kinds=("delivery",))
    rows, lines = [], []
    for s in chosen.delivery:
        f = ctx.scoped("delivery", s)
        when = forecast.forecast_when(
            f["cycles"], f["items"], as_of=ctx.as_of, calendar=ctx.calendar
        )
        dates = {q: getattr(when, f"p{q}_completion_date") for q in PERCENTILES}
        stored = when.method == "monte_carlo" and all(d is not None for d in dates.values())
        if stored:
            rows.append(_row(s.stream_id, ctx, when))
        lines.append(
            {
                "stream": s.name,
                "method": when.method,
                "remaining_items": when.scope_item_count,
                "weeks_of_history": when.sample_size,
                **{f"p{q}_date": dates[q] for q in PERCENTILES},
                "linear_date": when.projected_completion_date,
                "stored": stored,
                "note": when.reason or "",
            }
        )
    fs = forecast_snapshots
    delete = fs.delete().where(fs.c.forecast_date == ctx.day)
    if not chosen.whole:
        delete = delete.where(fs.c.delivery_stream_id.in_([s.stream_id for s in chosen.delivery]))
    ctx.conn.execute(delete)
    if rows:
        ctx.conn.execute(fs.insert(), rows)
    summary = pd.DataFrame(lines)
    return ComputeResult(
        computation=NAME,
        as_of=ctx.as_of,
        day=ctx.day,
        window_days=ctx.window_days,
        streams=chosen.names,
        rows={"forecast_snapshots": len(rows)},
        summary=summary,
        headline=_headline(summary, len(chosen.delivery)),
    )


def _row(stream_id: Any, ctx: Context, when: forecast.WhenForecast) -> dict[str, Any]:
    return {
        "forecast_id": new_id(),
        "delivery_stream_id": stream_id,
        "forecast_date": ctx.day,
        "scope_item_count": when.scope_item_count,
        "throughput_samples": when.sample_size,
        "simulation_runs": when.simulation_runs,
        **{f"p{q}_completion_date": getattr(when, f"p{q}_completion_date") for q in PERCENTILES},
        "distribution_data": orjson.loads(
            orjson.dumps([b.__dict__ for b in when.histogram], default=str)
        ),
    }


def _headline(summary: pd.DataFrame, streams: int) -> str:
    if summary.empty:
        return "No delivery stream to forecast."
    simulated = summary[summary["stored"]]
    text = f"Monte Carlo forecasts for {len(simulated)} of {plural(streams, 'delivery stream')}"
    if not simulated.empty:
        last = simulated.sort_values(["p85_date", "stream"]).iloc[-1]
        text += (
            f"; the latest is {last['stream']}: {last['remaining_items']} items left, "
            f"85 % likely done by {last['p85_date'].isoformat()}"
        )
    others = summary[~summary["stored"]]
    if not others.empty:
        text += "; not simulated: " + ", ".join(
            f"{name} ({note or method})"
            for name, note, method in others[["stream", "note", "method"]].itertuples(
                index=False, name=None
            )
        )
    return text + "."
