"""``dpp metrics materialise``: the computed tables of spec §4.4 for every stream, for one
day (``as_of``'s date in the org time zone). Re-running for the same day replaces that
day's rows, so the job is safe to repeat.

Writes ``daily_stream_metrics`` (one row per stream, metric and percentile),
``forecast_snapshots`` (Monte Carlo "when" forecasts), ``cross_stream_correlations``,
``pulse_aggregates`` and today's derived ``sprint_snapshots``. Every number comes from the
registered metric functions; this module only reads frames, scopes them and writes rows.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import orjson
import pandas as pd
import sqlalchemy as sa

from dpp_lib.ingest.lookups import OrgLookups
from dpp_lib.jobs.deploy_links import refresh_deploy_links
from dpp_lib.metrics import cross_stream, dora, flow, forecast, pulse, quality, review
from dpp_lib.metrics.common import Scope
from dpp_lib.orgconfig import CrossStream
from dpp_lib.projections.sprint_store import refresh_sprint_snapshots
from dpp_lib.store import data_versions, read
from dpp_lib.store.config_tables import load_lookups
from dpp_lib.store.schema import (
    cross_stream_correlations,
    daily_stream_metrics,
    delivery_streams,
    forecast_snapshots,
    org_settings,
    pulse_aggregates,
    tech_streams,
)
from dpp_lib.store.types import new_id


@dataclass
class MaterialiseReport:
    metric_date: date
    rows: dict[str, int] = field(default_factory=dict)


@dataclass
class _Frames:
    transitions: pd.DataFrame
    items: pd.DataFrame
    cycles: pd.DataFrame
    deploys: pd.DataFrame
    incidents: pd.DataFrame
    prs: pd.DataFrame
    reviews: pd.DataFrame
    defects: pd.DataFrame
    pulse: pd.DataFrame
    sprints: pd.DataFrame
    snapshots: pd.DataFrame


def materialise(engine: sa.Engine, *, as_of: datetime) -> MaterialiseReport:
    with engine.begin() as conn:
        lookups = load_lookups(conn)
        calendar = lookups.calendar()
        day = calendar.local_date(as_of)
        report = MaterialiseReport(day)
        report.rows["sprint_snapshots"] = refresh_sprint_snapshots(conn, lookups, today=day)
        report.rows["deployment_links"] = refresh_deploy_links(
            conn, tech_stream_ids=None, window_minutes=lookups.incident_correlation_window_minutes
        )
        frames = _read(conn, lookups, as_of)
        settings = {r.key: r.value for r in conn.execute(sa.select(org_settings))}
        organisation = settings.get("organisation") or {}
        ds = conn.execute(sa.select(delivery_streams).where(delivery_streams.c.is_active)).all()
        ts = conn.execute(sa.select(tech_streams).where(tech_streams.c.is_active)).all()

        daily: list[dict[str, Any]] = []
        forecasts: list[dict[str, Any]] = []
        confidence: dict[Any, float | None] = {}
        p85: dict[Any, float | None] = {}
        min_contributors = int(organisation.get("min_contributors", 6))
        for s in ds:
            scope = Scope(delivery_stream_id=s.stream_id)
            f = _scoped(frames, scope)
            rows, conf, cycle_p85, when = _delivery_metrics(f, as_of, calendar, min_contributors)
            confidence[s.stream_id], p85[s.stream_id] = conf, cycle_p85
            daily += [_daily(day, "delivery", s.stream_id, *r) for r in rows]
            if when is not None and when.method == "monte_carlo":
                forecasts.append(_forecast_row(s.stream_id, day, when))
        for t in ts:
            f = _scoped(frames, Scope(tech_stream_id=t.stream_id))
            minimum = int(t.min_contributors or min_contributors)
            rows = _tech_metrics(
                f,
                as_of,
                calendar,
                minimum,
                int(organisation.get("incident_correlation_window_minutes", 60)),
            )
            daily += [_daily(day, "tech", t.stream_id, *r) for r in rows]

        rules = CrossStream.model_validate(settings.get("cross_stream") or {})
        bottleneck = cross_stream.cross_stream_bottleneck(
            frames.transitions,
            as_of=as_of,
            sprint_confidence_pct=confidence,
            cycle_time_p85_days=p85,
            tech_streams=[t.stream_id for t in ts],
            rules=rules.severity_rules,
            calibration=rules.calibration,
        )
        correlations = cross_stream.cross_stream_correlation_rows(
            bottleneck, time_zone=lookups.time_zone
        )
        pulses = pulse.pulse_aggregate_rows(
            frames.pulse, as_of=as_of, team_sizes={s.stream_id: s.team_size for s in ds}
        )

        conn.execute(daily_stream_metrics.delete().where(daily_stream_metrics.c.metric_date == day))
        conn.execute(forecast_snapshots.delete().where(forecast_snapshots.c.forecast_date == day))
        conn.execute(
            cross_stream_correlations.delete().where(
                cross_stream_correlations.c.analysis_date == day
            )
        )
        conn.execute(pulse_aggregates.delete())  # every period is recomputed from the responses
        for table, rows_ in (
            (daily_stream_metrics, daily),
            (forecast_snapshots, forecasts),
            (cross_stream_correlations, [{"correlation_id": new_id(), **r} for r in correlations]),
            (pulse_aggregates, [{"aggregate_id": new_id(), **r} for r in pulses]),
        ):
            if rows_:
                conn.execute(table.insert(), rows_)
            report.rows[table.name] = len(rows_)
        data_versions.bump(conn, [*report.rows, "deployment_records"])
    return report


def _read(conn: sa.Connection, lookups: OrgLookups, as_of: datetime) -> _Frames:
    moves = read.transitions(conn, lookups, as_of=as_of)
    return _Frames(
        transitions=moves,
        items=read.items(conn, lookups, as_of=as_of, moves=moves),
        cycles=read.cycles(conn, as_of=as_of),
        deploys=read.deploys(conn, as_of=as_of),
        incidents=read.incidents(conn, as_of=as_of),
        prs=read.prs(conn, as_of=as_of),
        reviews=read.reviews(conn, as_of=as_of),
        defects=read.defects(conn, as_of=as_of),
        pulse=read.pulse(conn, as_of=as_of),
        sprints=read.sprint_frame(conn),
        snapshots=read.snapshots(conn, as_of=as_of),
    )


def _scoped(frames: _Frames, scope: Scope) -> _Frames:
    def apply(frame: pd.DataFrame) -> pd.DataFrame:
        try:
            return scope.apply(frame)
        except Exception:  # a frame without that stream column does not belong to the scope
            return frame.iloc[0:0]

    out = _Frames(**{k: apply(v) for k, v in frames.__dict__.items()})
    if scope.delivery_stream_id is not None:
        out.snapshots = frames.snapshots[
            frames.snapshots["sprint_id"].isin(out.sprints["sprint_id"])
        ]
    return out


Row = tuple[str, float | int | None, str, int | None, int]  # name, value, unit, percentile, n


def _cycle_rows(ct: flow.CycleTime) -> list[Row]:
    return [
        ("cycle_time", v, "days", q, ct.sample_size)
        for q, v in ((50, ct.p50), (85, ct.p85), (95, ct.p95))
    ]


def _review_rows(f: _Frames, as_of: datetime, min_contributors: int) -> list[Row]:
    rt = review.review_turnaround(f.prs, f.reviews, as_of=as_of, min_contributors=min_contributors)
    return [
        ("review_turnaround", rt.p50_hours, "hours", 50, rt.sample_size),
        ("review_turnaround", rt.p85_hours, "hours", 85, rt.sample_size),
    ]


def _delivery_metrics(
    f: _Frames, as_of: datetime, calendar: Any, min_contributors: int
) -> tuple[list[Row], float | None, float | None, Any]:
    rows: list[Row] = []
    ct = flow.cycle_time(f.cycles, as_of=as_of)
    rows += _cycle_rows(ct)
    tp = flow.throughput(f.cycles, as_of=as_of, calendar=calendar)
    rows.append(("throughput", tp.per_week, "per_week", None, tp.sample_size))
    fe = flow.flow_efficiency(f.cycles, as_of=as_of)
    rows.append(("flow_efficiency", fe.flow_efficiency_pct, "percent", None, fe.sample_size))
    wip = flow.wip_by_stage(f.items, as_of=as_of)
    rows.append(("wip", wip.sample_size, "items", None, wip.sample_size))
    de = quality.defect_escape(f.defects, f.cycles, as_of=as_of)
    rows.append(("defect_escape_rate", de.rate, "percent", None, de.sample_size))
    rows += _review_rows(f, as_of, min_contributors)
    sc = forecast.sprint_confidence(
        f.cycles, f.sprints, f.snapshots, as_of=as_of, calendar=calendar
    )
    rows.append(("sprint_confidence", sc.confidence_pct, "percent", None, sc.sample_size))
    when = forecast.forecast_when(f.cycles, f.items, as_of=as_of, calendar=calendar)
    return rows, sc.confidence_pct, ct.p85, when


def _tech_metrics(
    f: _Frames, as_of: datetime, calendar: Any, min_contributors: int, correlation_minutes: int
) -> list[Row]:
    rows: list[Row] = []
    ct = flow.cycle_time(f.cycles, as_of=as_of)
    rows += _cycle_rows(ct)
    rows += _review_rows(f, as_of, min_contributors)
    rows += list(_dora_rows(f, as_of, calendar, correlation_minutes))
    return rows


def _dora_rows(
    f: _Frames, as_of: datetime, calendar: Any, correlation_minutes: int
) -> Iterator[Row]:
    df = dora.deployment_frequency(f.deploys, as_of=as_of, calendar=calendar)
    yield ("deployment_frequency", df.deployment_frequency, "per_week", None, df.sample_size)
    cfr = dora.change_failure_rate(
        f.deploys, f.incidents, as_of=as_of, correlation_window_minutes=correlation_minutes
    )
    yield ("change_failure_rate", cfr.change_failure_rate, "percent", None, cfr.sample_size)
    ttr = dora.time_to_restore(f.incidents, as_of=as_of)
    yield ("ttr_median", ttr.ttr_median, "minutes", 50, ttr.sample_size)
    yield ("ttr_mean", ttr.ttr_mean, "minutes", None, ttr.sample_size)
    lt = dora.lead_time_for_changes(f.prs, f.deploys, as_of=as_of)
    yield ("lead_time", lt.lead_time_p50, "hours", 50, lt.sample_size)
    yield ("lead_time", lt.lead_time_p85, "hours", 85, lt.sample_size)


def _daily(
    day: date,
    stream_type: str,
    stream_id: uuid.UUID,
    name: str,
    value: Any,
    unit: str,
    percentile: int | None,
    n: int,
) -> dict[str, Any]:
    return {
        "metric_id": new_id(),
        "metric_date": day,
        "stream_type": stream_type,
        "stream_id": stream_id,
        "metric_name": name,
        # A metric without data in the window is stored as 0 with sample_size 0 (the column
        # is NOT NULL); readers treat sample_size 0 as "no data".
        "metric_value": Decimal(str(round(float(value), 6))) if value is not None else Decimal(0),
        "metric_unit": unit,
        "percentile": percentile,
        "sample_size": n,
    }


def _forecast_row(stream_id: uuid.UUID, day: date, when: Any) -> dict[str, Any]:
    return {
        "forecast_id": new_id(),
        "delivery_stream_id": stream_id,
        "forecast_date": day,
        "scope_item_count": when.scope_item_count,
        "throughput_samples": when.sample_size,
        "simulation_runs": when.simulation_runs,
        "p50_completion_date": when.p50_completion_date,
        "p70_completion_date": when.p70_completion_date,
        "p85_completion_date": when.p85_completion_date,
        "p95_completion_date": when.p95_completion_date,
        "distribution_data": orjson.loads(
            orjson.dumps([b.__dict__ for b in when.histogram], default=str)
        ),
    }
