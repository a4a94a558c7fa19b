"""The metric engine on the demo organisation: every registered metric computes from the
stored events, and `dpp metrics materialise` writes (and rewrites) the day's tables."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa

from dpp_lib.jobs.materialise import materialise
from dpp_lib.jobs.rebuild import rebuild
from dpp_lib.metrics import (
    cross_stream,
    data_quality,
    dora,
    flow,
    forecast,
    pulse,
    quality,
    review,
)
from dpp_lib.metrics.common import Scope
from dpp_lib.metrics.registry import load_all
from dpp_lib.orgconfig import read_config
from dpp_lib.settings import Settings
from dpp_lib.store import read
from dpp_lib.store.config_tables import apply_config, load_lookups
from ingest_service.demo_load import load_demo
from tests.support import EXAMPLE_CONFIG, rows

AS_OF = datetime(2026, 11, 12, 18, tzinfo=UTC)  # a Thursday evening, mid-sprint
GENERATED = {"metric_id", "forecast_id", "correlation_id", "aggregate_id", "computed_at"}
TABLES = (
    "daily_stream_metrics",
    "forecast_snapshots",
    "cross_stream_correlations",
    "pulse_aggregates",
)


@pytest.fixture
def demo(settings: Settings, engine: sa.Engine) -> sa.Engine:
    with engine.begin() as conn:
        apply_config(conn, read_config(EXAMPLE_CONFIG))
    report = load_demo(
        settings, days=84, seed=11, until="2026-11-16", config_file=EXAMPLE_CONFIG, progress=False
    )
    assert report["inbox"]["dead"] == 0
    rebuild(engine, settings)  # as an operator would after a bulk load: sprint history too
    return engine


def _every_metric(conn: sa.Connection) -> dict[str, Callable[[], Any]]:
    lk = load_lookups(conn)
    cal = lk.calendar()
    payments = Scope(delivery_stream_id=lk.delivery_stream("payments"))
    core = Scope(tech_stream_id=lk.tech_stream_id("core-api"))

    def frame(reader: Callable[..., Any], scope: Scope, **kw: Any) -> Any:
        return reader(conn, as_of=AS_OF, scope=scope, **kw)

    cycles = frame(read.cycles, payments)
    items = read.items(conn, lk, as_of=AS_OF, scope=payments)
    sprints = read.sprint_frame(conn, scope=payments)
    snapshots = read.snapshots(conn, as_of=AS_OF)
    deploys, incidents = frame(read.deploys, core), frame(read.incidents, core)
    prs, reviews = frame(read.prs, core), frame(read.reviews, core)
    moves = read.transitions(conn, lk, as_of=AS_OF)
    return {
        "wip_by_stage": lambda: flow.wip_by_stage(items, as_of=AS_OF),
        "cycle_time": lambda: flow.cycle_time(cycles, as_of=AS_OF),
        "throughput": lambda: flow.throughput(cycles, as_of=AS_OF, calendar=cal),
        "flow_efficiency": lambda: flow.flow_efficiency(cycles, as_of=AS_OF),
        "defect_escape": lambda: quality.defect_escape(
            frame(read.defects, payments), cycles, as_of=AS_OF
        ),
        "review_turnaround": lambda: review.review_turnaround(prs, reviews, as_of=AS_OF),
        "deployment_frequency": lambda: dora.deployment_frequency(deploys, as_of=AS_OF),
        "change_failure_rate": lambda: dora.change_failure_rate(deploys, incidents, as_of=AS_OF),
        "time_to_restore": lambda: dora.time_to_restore(incidents, as_of=AS_OF, window_days=84),
        "lead_time_for_changes": lambda: dora.lead_time_for_changes(prs, deploys, as_of=AS_OF),
        "sprint_confidence": lambda: forecast.sprint_confidence(
            cycles, sprints, snapshots, as_of=AS_OF, calendar=cal
        ),
        "forecast_how_many": lambda: forecast.forecast_how_many(
            cycles, sprints, as_of=AS_OF, calendar=cal
        ),
        "forecast_when": lambda: forecast.forecast_when(cycles, items, as_of=AS_OF, calendar=cal),
        "team_pulse": lambda: pulse.team_pulse(
            read.pulse(conn, as_of=AS_OF), as_of=AS_OF, team_sizes={payments.delivery_stream_id: 9}
        ),
        "cross_stream_bottleneck": lambda: cross_stream.cross_stream_bottleneck(
            moves, as_of=AS_OF, sprint_confidence_pct={}, cycle_time_p85_days={}
        ),
        "data_quality": lambda: data_quality.data_quality(
            frame(read.prs, Scope()),
            moves,
            frame(read.deploys, Scope()),
            frame(read.defects, Scope()),
            read.pulse(conn, as_of=AS_OF),
            as_of=AS_OF,
            team_size=40,
        ),
        "integration_health": lambda: data_quality.integration_health(
            read.integrations(conn, as_of=datetime.now(UTC)), as_of=datetime.now(UTC)
        ),
    }


@pytest.mark.slow
def test_every_registered_metric_computes_on_the_demo_organisation(demo: sa.Engine) -> None:
    with demo.connect() as conn:
        calls = _every_metric(conn)
        assert set(calls) == set(load_all()), "a registered metric is not exercised here"
        results = {name: call() for name, call in calls.items()}
    empty = [(n, getattr(r, "reason", None)) for n, r in results.items() if r.sample_size == 0]
    assert empty == [], f"metrics with no data on the demo organisation: {empty}"
    assert results["forecast_when"].method == "monte_carlo"
    assert results["sprint_confidence"].confidence_pct is not None
    assert results["cycle_time"].p50 <= results["cycle_time"].p85  # type: ignore[operator]


@pytest.mark.slow
def test_materialise_writes_every_stream_and_rerunning_replaces_the_day(demo: sa.Engine) -> None:
    first = materialise(demo, as_of=AS_OF)
    snapshot = {t: _rows(demo, t) for t in TABLES}
    assert all(snapshot[t] for t in TABLES), {t: len(v) for t, v in snapshot.items()}
    with demo.connect() as conn:
        lk = load_lookups(conn)
    metric_streams = {
        str(r["stream_id"]).replace("-", "") for r in snapshot["daily_stream_metrics"]
    }
    every_stream = {str(s).replace("-", "") for s in lk.delivery_by_key.values()}
    every_stream |= {str(t.stream_id).replace("-", "") for t in lk.tech_streams}
    assert every_stream <= metric_streams
    again = materialise(demo, as_of=AS_OF)
    assert again.rows == first.rows
    assert {t: _rows(demo, t) for t in TABLES} == snapshot


def _rows(engine: sa.Engine, table: str) -> list[dict[str, Any]]:
    got = [{k: v for k, v in r.items() if k not in GENERATED} for r in rows(engine, table)]
    return sorted(got, key=lambda r: sorted((k, str(v)) for k, v in r.items()))
