"""Cached answers served before routing (``ingest_service.fastpath``) are the same answers as
the long way's, and still check the key, its revocation, the rate limit and the config; the
computing processes report a view's errors as the API's errors."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from dpp_lib.settings import Settings
from dpp_lib.store import data_versions
from dpp_lib.store.api_keys import create_key, revoke_key
from ingest_service.app import create_app
from ingest_service.state import ServiceState

REALTIME = "/api/v1/metrics/realtime"
AS_OF = "2026-11-12T18:00:00Z"
# The versions read at start stay fresh for the whole test (no timing in the assertions);
# a test that changes data reads them again as the poller would (``_polled``).
POLL = 600.0


@pytest.fixture
def tuned(settings: Settings) -> Settings:
    return settings.model_copy(
        update={
            "api_version_poll_seconds": POLL,
            "api_rate_limits": "summary=5,trends=50",
            "api_compute_in": "processes",
        }
    )


@pytest.fixture
def client(tuned: Settings, org: sa.Engine) -> Iterator[TestClient]:
    with TestClient(create_app(tuned)) as c:
        yield c


def _key(org: sa.Engine, *permissions: str) -> str:
    with org.begin() as conn:
        return create_key(conn, name="fast path", permissions=list(permissions))[1]


def _state(client: TestClient) -> ServiceState:
    state: ServiceState = client.app.state.dpp  # type: ignore[attr-defined]
    return state


def _polled(client: TestClient) -> None:
    """What the API process's poller does every ``POLL / 2`` seconds: read the versions."""
    _state(client).versions.read()


def _fast(client: TestClient) -> int:
    return _state(client).cache.stats.fast_path


def _get(client: TestClient, token: str, query: str) -> httpx.Response:
    return client.get(f"{REALTIME}?{query}", headers={"Authorization": f"Bearer {token}"})


def _without_request_id(response: httpx.Response) -> dict[str, Any]:
    body: dict[str, Any] = response.json()
    body["meta"].pop("request_id")
    return body


def test_the_fast_path_answers_as_the_long_way_does(client: TestClient, org: sa.Engine) -> None:
    token = _key(org, "metrics:read")
    first = _get(client, token, f"as_of={AS_OF}&window=30")
    assert first.status_code == 200 and first.headers["x-cache"] == "MISS"
    assert _fast(client) == 0
    # the same answer under another spelling of the query: a hit found the long way
    slow = _get(client, token, f"window=30&as_of={AS_OF}")
    assert slow.headers["x-cache"] == "HIT" and _fast(client) == 0
    fast = _get(client, token, f"as_of={AS_OF}&window=30")
    assert fast.headers["x-cache"] == "HIT" and _fast(client) == 1

    assert _without_request_id(fast) == _without_request_id(slow)
    assert fast.json()["meta"]["cached"] is True
    assert fast.json()["meta"]["request_id"] == fast.headers["x-request-id"]
    assert set(fast.headers) == set(slow.headers)
    for name in ("content-type", "x-api-version", "x-ratelimit-limit", "x-ratelimit-policy"):
        assert fast.headers[name] == slow.headers[name]
    assert (
        int(fast.headers["x-ratelimit-remaining"]) == int(slow.headers["x-ratelimit-remaining"]) - 1
    )
    # a caller's request id is echoed as the long way does
    echoed = client.get(
        f"{REALTIME}?as_of={AS_OF}&window=30",
        headers={"Authorization": f"Bearer {token}", "X-Request-Id": "trace-0123456789"},
    )
    assert echoed.headers["x-request-id"] == "trace-0123456789" and _fast(client) == 2
    assert echoed.json()["meta"]["request_id"] == "trace-0123456789"


def test_a_revoked_key_is_refused_at_once(client: TestClient, org: sa.Engine) -> None:
    token = _key(org, "metrics:read")
    assert _get(client, token, f"as_of={AS_OF}").status_code == 200
    assert _get(client, token, f"as_of={AS_OF}").headers["x-cache"] == "HIT"
    assert _fast(client) == 1
    with org.begin() as conn:
        revoke_key(conn, token[:10])
    _polled(client)
    refused = _get(client, token, f"as_of={AS_OF}")
    assert refused.status_code == 401
    assert refused.json()["error"]["message"] == "API key has been revoked"
    assert _fast(client) == 1


def test_the_rate_limit_counts_fast_answers_once(client: TestClient, org: sa.Engine) -> None:
    token = _key(org, "metrics:read")
    # One one-minute window for all six calls, whenever the test runs and however slowly.
    _state(client).rate_limiter.clock = lambda: 1_800_000_030.0
    answers = [_get(client, token, f"as_of={AS_OF}") for _ in range(6)]
    assert [a.status_code for a in answers] == [200] * 5 + [429]
    assert [a.headers["x-ratelimit-remaining"] for a in answers] == ["4", "3", "2", "1", "0", "0"]
    assert _fast(client) == 4
    refused = answers[-1].json()
    assert refused["status"] == "error" and refused["error"]["code"] == "rate_limited"
    assert refused["error"]["limit"] == 5


def test_permissions_and_other_keys_take_the_long_way(client: TestClient, org: sa.Engine) -> None:
    reader, writer = _key(org, "metrics:read"), _key(org, "events:write")
    assert _get(client, reader, f"as_of={AS_OF}").status_code == 200
    # the same URL with a key that may not read metrics
    refused = _get(client, writer, f"as_of={AS_OF}")
    assert refused.status_code == 403 and _fast(client) == 0
    assert _get(client, reader, f"as_of={AS_OF}").headers["x-cache"] == "HIT"
    assert _fast(client) == 1


def test_a_config_change_sends_requests_the_long_way(client: TestClient, org: sa.Engine) -> None:
    token = _key(org, "metrics:read")
    _get(client, token, f"as_of={AS_OF}")
    assert _get(client, token, f"as_of={AS_OF}").headers["x-cache"] == "HIT"
    with org.begin() as conn:
        data_versions.bump(conn, ["config"])
    _polled(client)
    again = _get(client, token, f"as_of={AS_OF}")
    assert again.status_code == 200 and again.headers["x-cache"] == "MISS"
    assert _fast(client) == 1


def test_a_views_error_comes_back_from_the_computing_process(
    client: TestClient, org: sa.Engine
) -> None:
    assert _state(client).computer.mode == "processes"
    token = _key(org, "metrics:read")
    answer = client.get(
        "/api/v1/metrics/breakdown",
        params={"metric": "deployment_frequency", "dimension": "stage", "as_of": AS_OF},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert answer.status_code == 400, answer.text
    error = answer.json()["error"]
    assert error["code"] == "bad_request" and "dimension" in error["message"]
    assert error["details"] and error["details"][0]["field"] == "dimension"
