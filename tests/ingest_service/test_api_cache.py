"""Response caching (spec §7.3.4) invalidated by stored events, the admin cache endpoints,
per-key rate limits with their headers and 429 (metrics contract), and the health checks."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from dpp_lib.settings import Settings
from dpp_lib.store.api_keys import create_key
from ingest_service.app import create_app
from ingest_service.worker import Worker
from tests.support import JIRA_FIXTURES, compact, post_jira

TRANSITION = json.loads((JIRA_FIXTURES / "cloud-status-todo-to-inprogress.json").read_bytes())


@pytest.fixture
def tuned(settings: Settings) -> Settings:
    return settings.model_copy(
        update={"api_version_poll_seconds": 0.0, "api_rate_limits": "summary=8,trends=2"}
    )


@pytest.fixture
def api(tuned: Settings, org: sa.Engine) -> Iterator[tuple[TestClient, dict[str, str]]]:
    with org.begin() as conn:
        _, token = create_key(conn, name="cache test", permissions=["metrics:read", "admin"])
    with TestClient(create_app(tuned)) as client:
        yield client, {"Authorization": f"Bearer {token}"}


def _get(client: TestClient, headers: dict[str, str], path: str, **params: Any) -> Any:
    return client.get(path, params=params, headers=headers)


def test_a_stored_event_invalidates_the_cached_answer(
    api: tuple[TestClient, dict[str, str]], tuned: Settings, org: sa.Engine
) -> None:
    client, auth = api
    first = _get(client, auth, "/api/v1/metrics/realtime")
    assert first.status_code == 200 and first.headers["x-cache"] == "MISS"
    second = _get(client, auth, "/api/v1/metrics/realtime")
    assert second.headers["x-cache"] == "HIT"
    assert second.json()["data"] == first.json()["data"]
    assert second.json()["meta"]["cached"] is True
    assert second.json()["meta"]["request_id"] != first.json()["meta"]["request_id"]
    assert second.json()["meta"]["computed_at"] == first.json()["meta"]["computed_at"]

    # a Jira transition stored by the worker changes what realtime shows
    payload = json.loads(json.dumps(TRANSITION))
    payload["issue"]["key"] = "TES-4242"
    assert post_jira(client, compact(payload)).status_code == 202
    assert Worker.from_settings(tuned, org).drain() == 1
    third = _get(client, auth, "/api/v1/metrics/realtime")
    assert third.headers["x-cache"] == "MISS"
    assert third.json()["data"]["wip_total"] == first.json()["data"]["wip_total"] + 1

    # an unrelated endpoint's answer survives that event: pulse does not read Jira
    _get(client, auth, "/api/v1/metrics/pulse")
    assert _get(client, auth, "/api/v1/metrics/pulse").headers["x-cache"] == "HIT"

    stats = _get(client, auth, "/api/v1/cache/stats").json()["data"]
    assert stats["cache_hits"] == 2 and stats["cache_misses"] == 3 and stats["stale_misses"] == 1
    assert stats["by_endpoint"]["metrics/realtime"] == {"hits": 1, "misses": 2}
    assert stats["ttl_seconds"]["metrics/realtime"] == 30
    assert stats["ttl_seconds"]["metrics/pulse"] == 86_400


def test_admins_invalidate_by_pattern_in_every_process(
    api: tuple[TestClient, dict[str, str]], tuned: Settings, org: sa.Engine
) -> None:
    client, auth = api
    _get(client, auth, "/api/v1/metrics/pulse")
    _get(client, auth, "/api/v1/streams/delivery")
    with TestClient(create_app(tuned)) as other:  # a second API process, its own cache
        _get(other, auth, "/api/v1/metrics/pulse")
        assert _get(other, auth, "/api/v1/metrics/pulse").headers["x-cache"] == "HIT"
        answer = client.post(
            "/api/v1/cache/invalidate", json={"pattern": "metrics/*"}, headers=auth
        )
        assert answer.status_code == 200, answer.text
        assert answer.json()["data"]["invalidated"] == 1
        assert "metrics/pulse" in answer.json()["data"]["endpoints"]
        assert _get(other, auth, "/api/v1/metrics/pulse").headers["x-cache"] == "MISS"
    assert _get(client, auth, "/api/v1/metrics/pulse").headers["x-cache"] == "MISS"
    assert _get(client, auth, "/api/v1/streams/delivery").headers["x-cache"] == "HIT"
    bad = client.post("/api/v1/cache/invalidate", json={}, headers=auth)
    assert bad.status_code == 400 and bad.json()["status"] == "error"


def test_rate_limits_per_key_and_tier_with_headers_and_429(
    api: tuple[TestClient, dict[str, str]],
) -> None:
    client, auth = api
    seen = []
    for _ in range(2):
        answer = _get(client, auth, "/api/v1/metrics/trends")
        assert answer.status_code == 200
        assert answer.headers["x-ratelimit-limit"] == "2"
        seen.append(int(answer.headers["x-ratelimit-remaining"]))
    assert seen == [1, 0]
    refused = _get(client, auth, "/api/v1/metrics/trends")
    body = refused.json()
    assert refused.status_code == 429
    assert body["status"] == "error" and body["error"]["code"] == "rate_limited"
    assert body["error"]["limit"] == 2 and body["error"]["window_seconds"] == 60
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    assert refused.headers["x-ratelimit-remaining"] == "0"
    assert int(refused.headers["x-ratelimit-reset"]) > 1_700_000_000
    assert body["request_id"] == refused.headers["x-request-id"]
    # another tier of the same key is counted apart
    assert _get(client, auth, "/api/v1/metrics/pulse").status_code == 200


def test_health_and_deep_health_reveal_nothing_sensitive(
    api: tuple[TestClient, dict[str, str]], tuned: Settings
) -> None:
    client, _ = api
    shallow = client.get("/health")
    assert shallow.status_code == 200 and shallow.json()["status"] == "ok"
    deep = client.get("/health/deep")
    body = deep.json()
    assert deep.status_code == 200
    assert body["status"] in ("healthy", "degraded")
    assert body["database"]["status"] == "connected" and body["database"]["response_time_ms"] >= 0
    assert body["worker"]["queue_depth"] == 0 and body["worker"]["dead_letters"] == 0
    assert body["cache"]["status"] == "operational"
    text = deep.text + shallow.text
    for secret in (tuned.resolved_database_url(), "postgres", "sqlite", str(tuned.secrets_dir)):
        assert secret not in text
    assert deep.headers["x-api-version"] == "1.0" and deep.headers["x-request-id"]
