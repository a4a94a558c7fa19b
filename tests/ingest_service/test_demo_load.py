"""`dpp demo load` through the real HTTP endpoints, signatures and API keys."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from dpp_lib.settings import Settings
from ingest_service.demo_load import load_demo
from tests.support import EXAMPLE_CONFIG, count

TABLES = (
    "work_item_events",
    "pr_events",
    "cicd_events",
    "incident_events",
    "defect_events",
    "pulse_responses",
    "deployment_records",
    "sprints",
)


@pytest.mark.slow
def test_demo_load_twice_adds_nothing(
    settings: Settings, engine: sa.Engine, caplog: pytest.LogCaptureFixture
) -> None:
    from dpp_lib.orgconfig import read_config
    from dpp_lib.store.config_tables import apply_config

    with engine.begin() as conn:
        apply_config(conn, read_config(EXAMPLE_CONFIG))
    kw = {
        "days": 21,
        "seed": 3,
        "until": "2026-11-16",
        "config_file": EXAMPLE_CONFIG,
        "progress": False,
    }
    with caplog.at_level("WARNING", logger="ingest_service.worker"):
        first = load_demo(settings, **kw)  # type: ignore[arg-type]
    # no batch fell back to row-by-row processing (a failing statement would hide there)
    assert "failed as a whole" not in caplog.text
    assert first["deliveries"] > 500
    assert first["accepted"] == first["sent"] == first["deliveries"], first["errors"]
    assert first["inbox"]["pending"] == 0 and first["inbox"]["dead"] == 0
    assert first["worker"]["failed"] == 0
    counts = {t: count(engine, t) for t in TABLES}
    assert all(
        counts[t] > 0
        for t in ("work_item_events", "pr_events", "cicd_events", "deployment_records", "sprints")
    ), counts
    # ≈85 % of PRs link to a ticket (Appendix B branches, some keys only in titles)
    opened = count(engine, "pr_events", "event_type = 'opened'")
    linked = count(engine, "pr_events", "event_type = 'opened' and linked_ticket_id is not null")
    assert 0.75 <= linked / opened <= 0.95
    # the demo's loader key was revoked
    assert count(engine, "api_keys", "is_active") == 0
    second = load_demo(settings, **kw)  # type: ignore[arg-type]
    assert second["inbox"]["total"] == first["inbox"]["total"]
    assert {t: count(engine, t) for t in TABLES} == counts
    assert load_demo(settings, **kw, if_empty=True)["skipped"]  # type: ignore[arg-type]
