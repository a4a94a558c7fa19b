"""`dpp rebuild` recomputes exactly what the worker built incrementally (demo organisation)."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa

from dpp_lib.jobs.rebuild import rebuild
from dpp_lib.orgconfig import read_config
from dpp_lib.settings import Settings
from dpp_lib.store.config_tables import apply_config
from ingest_service.demo_load import load_demo
from tests.support import EXAMPLE_CONFIG, rows

# Each projection by its natural key, without generated ids and timestamps of computation.
PROJECTIONS: dict[str, tuple[str, ...]] = {
    "work_item_cycles": ("ticket_id",),
    "pr_cycles": ("repo_id", "pr_number"),
    "deployment_records": ("pipeline_id", "pipeline_run_id"),
    "incident_events": ("incident_id", "event_type"),
}
GENERATED = {"cycle_id", "record_id", "event_id", "computed_at", "received_at", "raw_event_id"}


def snapshot(engine: sa.Engine) -> dict[str, list[dict[str, Any]]]:
    out = {}
    for table, key in PROJECTIONS.items():
        got = [{k: v for k, v in r.items() if k not in GENERATED} for r in rows(engine, table)]
        out[table] = sorted(got, key=lambda r: tuple(str(r[k]) for k in key))
    return out


@pytest.mark.slow
def test_incremental_and_rebuilt_projections_are_identical(
    settings: Settings, engine: sa.Engine
) -> None:
    with engine.begin() as conn:
        apply_config(conn, read_config(EXAMPLE_CONFIG))
    report = load_demo(
        settings, days=28, seed=5, until="2026-11-16", config_file=EXAMPLE_CONFIG, progress=False
    )
    assert report["inbox"]["dead"] == 0
    incremental = snapshot(engine)
    assert all(incremental[t] for t in PROJECTIONS), {t: len(v) for t, v in incremental.items()}

    rebuilt = rebuild(engine, settings)
    assert snapshot(engine) == incremental
    assert rebuilt.counts["work_item_cycles"] == len(incremental["work_item_cycles"])

    renormalised = rebuild(engine, settings, from_inbox=True)
    assert renormalised.reprocessed_deliveries == report["inbox"]["total"]
    assert snapshot(engine) == incremental
