"""``dpp metrics materialise``: the computed tables of spec §4.4 for every stream, for one
day (``as_of``'s date in the org time zone). Re-running for the same day replaces that
day's rows, so the job is safe to repeat.

It is every scheduled computation of ``dpp_lib.jobs.compute`` at once, in one transaction
that reads each frame once: today's ``sprint_snapshots`` and sprint confidence, the flow
and DORA rows of ``daily_stream_metrics`` (and the deploy links they rest on), the
diagnostic rows, ``forecast_snapshots``, ``cross_stream_correlations`` and
``pulse_aggregates``. Data-quality alerts are not part of it (the API refreshes them when
asked, the ``data-quality`` schedule hourly).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

import sqlalchemy as sa

from dpp_lib.jobs.compute import cross_stream, daily, diagnostics, forecasts, pulse, sprints
from dpp_lib.jobs.compute.context import Context
from dpp_lib.jobs.compute.result import ComputeResult
from dpp_lib.metrics.common import DEFAULT_WINDOW_DAYS
from dpp_lib.store import data_versions

# In this order: confidence reads today's snapshots; DORA reads refreshed deploy links;
# the cross-stream analysis reuses the confidence and cycle times computed before it.
STEPS = (sprints, daily, diagnostics, forecasts, cross_stream, pulse)


@dataclass
class MaterialiseReport:
    metric_date: date
    rows: dict[str, int] = field(default_factory=dict)
    results: list[ComputeResult] = field(default_factory=list, repr=False)


def materialise(
    engine: sa.Engine, *, as_of: datetime, window_days: int = DEFAULT_WINDOW_DAYS
) -> MaterialiseReport:
    with engine.begin() as conn:
        ctx = Context(conn, as_of=as_of, window_days=window_days)
        report = MaterialiseReport(ctx.day)
        for step in STEPS:
            result = step.compute(ctx, "all")
            report.results.append(result)
            for table, count in result.rows.items():
                # deploy records whose links changed (the CLI has always called it so)
                key = "deployment_links" if table == "deployment_records" else table
                report.rows[key] = report.rows.get(key, 0) + count
        data_versions.bump(conn, [*(t for r in report.results for t in r.rows), "sprint_snapshots"])
    return report
