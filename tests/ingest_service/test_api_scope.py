"""Stream scoping on every read endpoint (spec §3.3, API reference "Authentication"): keys
scoped to one stream get their stream, 403 for others, and "all streams" answers hold only
what they may see; missing, unknown, revoked and expired keys get 401; permissions 403."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from dpp_lib.store.config_tables import load_lookups
from ingest_service.app import create_app
from tests.conftest import DemoOrg
from tests.ingest_service.api_support import AS_OF, bearer, keys_for

# (path, params naming payments / core-api, params naming another stream, admin only)
ENDPOINTS = [
    ("/api/v1/streams/delivery", None, None, False),
    ("/api/v1/streams/tech", None, None, False),
    ("/api/v1/sprints", {"stream": "payments"}, {"stream": "lending"}, False),
    ("/api/v1/metrics/realtime", {"stream": "payments"}, {"stream": "lending"}, False),
    ("/api/v1/metrics/diagnostic", {"stream": "payments"}, {"stream": "lending"}, False),
    ("/api/v1/metrics/trends", {"tech_stream": "core-api"}, {"tech_stream": "auth"}, False),
    ("/api/v1/metrics/forecast", {"stream": "payments"}, {"stream": "lending"}, False),
    ("/api/v1/metrics/pulse", {"stream": "payments"}, {"stream": "lending"}, False),
    ("/api/v1/metrics/cross-stream", {"tech_stream": "core-api"}, {"tech_stream": "auth"}, False),
    (
        "/api/v1/metrics/breakdown",
        {"metric": "throughput", "dimension": "ticket_type", "stream": "payments"},
        {"metric": "throughput", "dimension": "ticket_type", "stream": "lending"},
        False,
    ),
    (
        "/api/v1/metrics/drilldown",
        {"metric": "cycle_time", "stream": "payments"},
        {"metric": "cycle_time", "stream": "lending"},
        False,
    ),
    ("/api/v1/admin/data-quality", None, None, True),
    ("/api/v1/admin/integration-health", None, None, True),
    ("/api/v1/admin/system-alerts", None, None, True),
    ("/api/v1/cache/stats", None, None, True),
]
TECH_SIDE = ("/api/v1/metrics/trends", "/api/v1/metrics/cross-stream", "/api/v1/streams/tech")
ORG_WIDE = (
    "/api/v1/admin/integration-health",
    "/api/v1/admin/system-alerts",
    "/api/v1/cache/stats",
)


@pytest.fixture
def api(demo_sqlite: DemoOrg) -> Iterator[tuple[TestClient, DemoOrg]]:
    with TestClient(create_app(demo_sqlite.settings)) as client:
        yield client, demo_sqlite


def call(
    client: TestClient, path: str, params: dict[str, str] | None, token: str | None
) -> tuple[int, dict]:
    query = {**(params or {})}
    if path.startswith("/api/v1/metrics") or path.endswith("data-quality"):
        query["as_of"] = AS_OF
    headers = bearer(token) if token else {}
    answer = client.get(path, params=query, headers=headers)
    body = answer.json()
    if answer.status_code >= 400:
        assert body["status"] == "error" and body["request_id"] == answer.headers["x-request-id"]
    return answer.status_code, body


@pytest.mark.parametrize(("path", "mine", "other", "admin_only"), ENDPOINTS)
def test_missing_unknown_revoked_and_expired_keys_get_401(
    api: tuple[TestClient, DemoOrg],
    path: str,
    mine: dict | None,
    other: dict | None,
    admin_only: bool,
) -> None:
    client, org = api
    keys = keys_for(org)
    for token, why in (
        (None, "missing"),
        ("dpp_not-a-key", "unknown"),
        (keys.revoked, "revoked"),
        (keys.expired, "expired"),
    ):
        status, body = call(client, path, mine, token)
        assert status == 401, (why, body)
        assert why in body["message"]
    status, body = call(client, path, mine, keys.writer)  # events:write only
    assert status == 403 and "permission" in body["message"]
    if admin_only:
        status, body = call(client, path, mine, keys.reader)
        assert status == 403 and "'admin'" in body["message"]


@pytest.mark.parametrize(("path", "mine", "other", "admin_only"), ENDPOINTS)
def test_scoped_keys_see_their_stream_and_get_403_for_others(
    api: tuple[TestClient, DemoOrg],
    path: str,
    mine: dict | None,
    other: dict | None,
    admin_only: bool,
) -> None:
    client, org = api
    keys = keys_for(org)
    token = keys.core_api if path in TECH_SIDE else keys.payments
    if path in ORG_WIDE:
        status, body = call(client, path, None, keys.payments)
        assert status == 403 and "unscoped" in body["message"]
        assert call(client, path, None, keys.admin)[0] == 200
        return
    if admin_only and token == keys.core_api:
        return
    status, body = call(client, path, mine, token)
    assert status == 200, body
    if other is not None:
        status, body = call(client, path, other, token)
        assert status == 403, body
        assert "not scoped" in body["message"]
        # the unscoped key reads the other stream
        assert call(client, path, other, keys.admin)[0] == 200


def test_all_streams_answers_hold_only_the_keys_streams(api: tuple[TestClient, DemoOrg]) -> None:
    client, org = api
    keys = keys_for(org)
    with org.engine.connect() as conn:
        lk = load_lookups(conn)
    pay, core = str(lk.delivery_stream("payments")), str(lk.tech_stream_id("core-api"))

    _, body = call(client, "/api/v1/streams/delivery", None, keys.payments)
    assert [s["id"] for s in body["data"]] == [pay]
    _, body = call(client, "/api/v1/streams/tech", None, keys.payments)
    assert body["data"] == []  # scoped in one dimension: nothing of the other
    _, body = call(client, "/api/v1/streams/tech", None, keys.core_api)
    assert [s["id"] for s in body["data"]] == [core]

    # realtime for "all" with the payments key equals realtime for payments
    _, everything = call(client, "/api/v1/metrics/realtime", None, keys.payments)
    _, mine = call(client, "/api/v1/metrics/realtime", {"stream": "payments"}, keys.admin)
    _, whole = call(client, "/api/v1/metrics/realtime", None, keys.admin)
    assert everything["data"]["wip_by_stage"] == mine["data"]["wip_by_stage"]
    assert everything["data"]["wip_by_stage"] != whole["data"]["wip_by_stage"]
    assert [c["stream_id"] for c in everything["data"]["sprint_confidence_by_stream"]] == [pay]

    _, body = call(client, "/api/v1/metrics/pulse", None, keys.payments)
    assert {a["delivery_stream_id"] for a in body["data"]["aggregates"]} == {pay}

    _, body = call(client, "/api/v1/metrics/trends", None, keys.core_api)
    assert [r["techStreamId"] for r in body["data"]["dora"]] == [core]
    _, body = call(client, "/api/v1/metrics/trends", None, keys.payments)
    assert body["data"]["dora"] == []

    _, body = call(client, "/api/v1/metrics/cross-stream", None, keys.core_api)
    assert {c["tech_stream_id"] for c in body["data"]["correlations"]} <= {core}

    _, body = call(
        client,
        "/api/v1/metrics/breakdown",
        {"metric": "throughput", "dimension": "delivery_stream"},
        keys.payments,
    )
    assert [r["dimension_value"] for r in body["data"]["breakdown"]] == ["payments"]

    _, body = call(
        client, "/api/v1/metrics/drilldown", {"metric": "cycle_time", "limit": "500"}, keys.payments
    )
    assert body["data"]["items"] and all(
        i["item_id"].startswith("PAY-") for i in body["data"]["items"]
    )

    _, body = call(client, "/api/v1/admin/data-quality", None, keys.payments)
    assert {w["stream_id"] for w in body["data"]["warnings"]} <= {pay}


def test_a_key_scoped_by_uuid_and_by_name_is_the_same(api: tuple[TestClient, DemoOrg]) -> None:
    client, org = api
    keys = keys_for(org)
    with org.engine.connect() as conn:
        pay = str(load_lookups(conn).delivery_stream("payments"))
    a = call(client, "/api/v1/metrics/forecast", {"stream": "payments"}, keys.payments)
    b = call(client, "/api/v1/metrics/forecast", {"stream": pay}, keys.payments)
    assert a[0] == b[0] == 200 and a[1]["data"] == b[1]["data"]
    assert call(client, "/api/v1/metrics/forecast", {"stream": "PAYMENTS"}, keys.payments)[0] == 200
    assert call(client, "/api/v1/metrics/forecast", {"stream": "nope"}, keys.payments)[0] == 404
