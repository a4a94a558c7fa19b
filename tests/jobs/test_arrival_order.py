"""Arrival order and replays change no projection and no metric (issue 3's properties, end
to end): the demo organisation's deliveries sent in time order, then — on an emptied
database — shuffled and each sent twice (the second time under a new delivery id, as a
redelivering source would), processed in small batches."""

from __future__ import annotations

import dataclasses
import random
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from dpp_lib.jobs.demo import generate_demo
from dpp_lib.jobs.demo.send import signed_request
from dpp_lib.jobs.materialise import materialise
from dpp_lib.orgconfig import read_config
from dpp_lib.settings import Settings
from dpp_lib.store.api_keys import create_key
from dpp_lib.store.config_tables import apply_config
from dpp_lib.store.schema import DERIVED_TABLES, EVENT_TABLES, deferred_enrichments, raw_events
from ingest_service.app import create_app
from ingest_service.worker import Worker
from tests.jobs.test_rebuild import snapshot
from tests.support import EXAMPLE_CONFIG, TEST_SECRETS, rows

AS_OF = datetime(2026, 11, 12, 18, tzinfo=UTC)
TABLES = (
    "daily_stream_metrics",
    "forecast_snapshots",
    "cross_stream_correlations",
    "pulse_aggregates",
)
GENERATED = {"metric_id", "forecast_id", "correlation_id", "aggregate_id", "computed_at"}


def _send(settings: Settings, engine: sa.Engine, deliveries: list[Any]) -> None:
    with engine.begin() as conn:
        _, key = create_key(conn, name="order test", permissions=["events:write"])
    with TestClient(create_app(settings)) as client:
        for d in deliveries:
            path, headers, body = signed_request(
                d,
                github_secret=TEST_SECRETS["github_webhook_secret"].encode(),
                jira_secret=TEST_SECRETS["jira_webhook_secret"].encode(),
                api_key=key,
            )
            assert client.post(path, content=body, headers=headers).status_code == 202
    worker = Worker.from_settings(settings.model_copy(update={"worker_batch_size": 25}), engine)
    worker.drain()


def _state(engine: sa.Engine) -> dict[str, Any]:
    materialise(engine, as_of=AS_OF)
    out: dict[str, Any] = dict(snapshot(engine))
    for table in TABLES:
        got = [{k: v for k, v in r.items() if k not in GENERATED} for r in rows(engine, table)]
        out[table] = sorted(got, key=lambda r: sorted((k, str(v)) for k, v in r.items()))
    return out


def _wipe(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        for table in (*DERIVED_TABLES, *reversed(EVENT_TABLES), deferred_enrichments, raw_events):
            conn.execute(table.delete())


@pytest.mark.slow
def test_shuffled_and_replayed_deliveries_give_the_same_metrics(
    settings: Settings, engine: sa.Engine
) -> None:
    with engine.begin() as conn:
        apply_config(conn, read_config(EXAMPLE_CONFIG))
    deliveries = generate_demo(
        read_config(EXAMPLE_CONFIG), days=21, seed=4, until=datetime(2026, 11, 16, tzinfo=UTC)
    )
    _send(settings, engine, deliveries)
    in_order = _state(engine)
    assert in_order["work_item_cycles"] and in_order["daily_stream_metrics"]

    _wipe(engine)
    again = [dataclasses.replace(d, delivery_id=str(uuid.uuid4())) for d in deliveries]
    shuffled = deliveries + again
    random.Random(8).shuffle(shuffled)
    _send(settings, engine, shuffled)
    after = _state(engine)
    for table in in_order:  # name the first difference, table by table
        for before, now in zip(in_order[table], after[table], strict=False):
            assert now == before, table
    assert after == in_order
