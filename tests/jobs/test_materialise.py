"""The metric engine on the demo organisation: every registered metric computes from the
stored events, and `dpp metrics materialise` writes (and rewrites) the day's tables."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa

from dpp_lib.jobs.materialise import materialise
from dpp_lib.jobs.metric_calls import metric_calls
from dpp_lib.jobs.rebuild import rebuild
from dpp_lib.metrics.common import Scope
from dpp_lib.metrics.registry import load_all
from dpp_lib.orgconfig import read_config
from dpp_lib.settings import Settings
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


@pytest.mark.slow
def test_every_registered_metric_computes_on_the_demo_organisation(demo: sa.Engine) -> None:
    with demo.connect() as conn:
        lk = load_lookups(conn)
        calls = metric_calls(
            conn,
            as_of=AS_OF,
            delivery=Scope(delivery_stream_id=lk.delivery_stream("payments")),
            tech=Scope(tech_stream_id=lk.tech_stream_id("core-api")),
            window_days=84,
        )
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
