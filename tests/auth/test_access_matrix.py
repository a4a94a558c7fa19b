"""Role × endpoint × scope over every ``/api/v1`` route (spec §3.3), with session cookies on
the demo organisation: allowed, forbidden (403) and filtered ("all streams" answers hold only
the visible streams). The routes are read from the app, so a new route without a rule here
fails the first test."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from dpp_lib.store.config_tables import load_lookups
from ingest_service.app import create_app
from ingest_service.sessions import SESSION_COOKIE
from tests.auth.access_support import make_user, session_token, with_session_key
from tests.conftest import DemoOrg
from tests.ingest_service.api_support import AS_OF
from tests.ingest_service.test_api_scope import ENDPOINTS
from tests.ingest_service.test_events_api import DEPLOY, INCIDENT, PULSE

READ, ADMIN, ADMIN_ORG_WIDE, KEY_ONLY, SIGNED = (
    "metrics:read",
    "admin",
    "admin, unscoped",
    "API keys only",
    "webhook signature",
)
RULES: dict[tuple[str, str], str] = {
    ("POST", "/api/v1/webhooks/github"): SIGNED,
    ("POST", "/api/v1/webhooks/jira"): SIGNED,
    ("POST", "/api/v1/events/deployment"): KEY_ONLY,
    ("POST", "/api/v1/events/incident"): KEY_ONLY,
    ("POST", "/api/v1/events/pulse"): KEY_ONLY,
    **{
        ("GET", p): READ
        for p, *_ in ENDPOINTS
        if not p.startswith(("/api/v1/admin", "/api/v1/cache"))
    },
    ("GET", "/api/v1/admin/data-quality"): ADMIN,
    ("POST", "/api/v1/pr-events/{event_id}/link-ticket"): ADMIN,
    ("GET", "/api/v1/admin/integration-health"): ADMIN_ORG_WIDE,
    ("GET", "/api/v1/admin/system-alerts"): ADMIN_ORG_WIDE,
    ("GET", "/api/v1/cache/stats"): ADMIN_ORG_WIDE,
    ("POST", "/api/v1/cache/invalidate"): ADMIN_ORG_WIDE,
    ("GET", "/api/v1/admin/users"): ADMIN_ORG_WIDE,
    ("POST", "/api/v1/admin/users"): ADMIN_ORG_WIDE,
    ("POST", "/api/v1/admin/users/{user}/deactivate"): ADMIN_ORG_WIDE,
    ("GET", "/api/v1/admin/roles"): ADMIN_ORG_WIDE,
    ("POST", "/api/v1/admin/users/{user}/roles"): ADMIN_ORG_WIDE,
    ("POST", "/api/v1/admin/users/{user}/roles/revoke"): ADMIN_ORG_WIDE,
    ("GET", "/api/v1/admin/group-mappings"): ADMIN_ORG_WIDE,
    ("POST", "/api/v1/admin/group-mappings"): ADMIN_ORG_WIDE,
    ("DELETE", "/api/v1/admin/group-mappings/{mapping_id}"): ADMIN_ORG_WIDE,
    ("GET", "/api/v1/admin/api-keys"): ADMIN_ORG_WIDE,
    ("POST", "/api/v1/admin/api-keys"): ADMIN_ORG_WIDE,
    ("POST", "/api/v1/admin/api-keys/{key}/rotate"): ADMIN_ORG_WIDE,
    ("POST", "/api/v1/admin/api-keys/{key}/revoke"): ADMIN_ORG_WIDE,
    ("GET", "/api/v1/admin/api-keys/usage"): ADMIN_ORG_WIDE,
    ("GET", "/api/v1/admin/audit"): ADMIN_ORG_WIDE,
}
# valid bodies, so the ingestion endpoints answer about the caller, not the body
BODIES = {
    "/api/v1/events/deployment": DEPLOY,
    "/api/v1/events/incident": INCIDENT,
    "/api/v1/events/pulse": PULSE,
}
PARAMS = {p: mine for p, mine, _other, _admin in ENDPOINTS}
OTHER = {p: other for p, _mine, other, _admin in ENDPOINTS if other}
TECH_PARAMS = ("tech_stream",)


def api_routes(app: FastAPI) -> set[tuple[str, str]]:
    """Every (method, path) under /api/v1, through included routers at any depth."""

    def walk(routes: Any, prefix: str = "") -> Iterator[tuple[str, str]]:
        for route in routes:
            context = getattr(route, "include_context", None)
            if context is not None:
                yield from walk(context.included_router.routes, prefix + context.prefix)
            elif getattr(route, "methods", None):
                for method in route.methods - {"HEAD", "OPTIONS"}:
                    yield method, prefix + route.path

    return {(m, p) for m, p in walk(app.routes) if p.startswith("/api/v1/")}


@dataclass(frozen=True)
class Who:
    role: str
    scope: str  # all | payments (delivery) | core-api (tech)


PEOPLE = [
    *(
        Who(role, scope)
        for role in ("viewer", "team_member", "stream_lead")
        for scope in ("all", "payments", "core-api")
    ),
    Who("platform_admin", "all"),
]


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def demo(request: pytest.FixtureRequest) -> DemoOrg:
    """The demo organisation on each backend (read-only; users are added, as keys are)."""
    org: DemoOrg = request.getfixturevalue(f"demo_{request.param}")
    return org


@pytest.fixture(scope="module")
def matrix(demo: DemoOrg) -> Iterator[tuple[TestClient, dict[Who, str]]]:
    org = demo
    with org.engine.begin() as conn:
        lk = load_lookups(conn)
        pay, core = lk.delivery_stream("payments"), lk.tech_stream_id("core-api")
        tokens = {}
        for who in PEOPLE:
            ds = pay if who.scope == "payments" else None
            ts = core if who.scope == "core-api" else None
            user = make_user(conn, password=None, grants=[(who.role, ds, ts)])
            tokens[who] = user
    cookies = {who: session_token(org.engine, user) for who, user in tokens.items()}
    with TestClient(create_app(with_session_key(org.settings))) as client:
        yield client, cookies


def test_every_api_route_has_a_rule(matrix: tuple[TestClient, dict[Who, str]]) -> None:
    client, _ = matrix
    assert api_routes(client.app) == set(RULES)  # type: ignore[arg-type]


def _call(
    client: TestClient, token: str, method: str, path: str, params: dict[str, str] | None
) -> Any:
    client.cookies.clear()
    client.cookies.set(SESSION_COOKIE, token)
    headers = {}
    if method != "GET":
        headers["X-CSRF-Token"] = client.get("/auth/me").json()["data"]["session"]["csrf_token"]
    query = dict(params or {})
    if path.startswith("/api/v1/metrics") or path.endswith("data-quality"):
        query["as_of"] = AS_OF
    url = (
        path.replace("{event_id}", str(uuid.uuid4()))
        .replace("{mapping_id}", str(uuid.uuid4()))
        .replace("{user}", "nobody@example.com")
        .replace("{key}", "dpp_nope")
    )
    return client.request(method, url, params=query, headers=headers, json=BODIES.get(path, {}))


def _sees(who: Who, params: dict[str, str] | None) -> bool:
    if who.scope == "all" or not params:
        return True
    tech = any(k in params for k in TECH_PARAMS)
    return who.scope == ("core-api" if tech else "payments")


@pytest.mark.parametrize("who", PEOPLE, ids=lambda w: f"{w.role}-{w.scope}")
def test_allowed_and_forbidden(matrix: tuple[TestClient, dict[Who, str]], who: Who) -> None:
    client, cookies = matrix
    wrong = []
    for (method, path), rule in sorted(RULES.items()):
        if rule == SIGNED:
            continue
        params = PARAMS.get(path) if method == "GET" else None
        answer = _call(client, cookies[who], method, path, params)
        if rule == KEY_ONLY:
            expected = "401"
        elif rule == READ:
            expected = "200" if _sees(who, params) else "403"
        elif who.role == "platform_admin":
            expected = "allowed"
        else:
            expected = "403"
        got = answer.status_code
        ok = got not in (401, 403) if expected == "allowed" else str(got) == expected
        if not ok:
            wrong.append((method, path, expected, got, answer.text[:200]))
    assert wrong == []


@pytest.mark.parametrize(
    "who", [w for w in PEOPLE if w.scope != "all"], ids=lambda w: f"{w.role}-{w.scope}"
)
def test_other_streams_are_forbidden(matrix: tuple[TestClient, dict[Who, str]], who: Who) -> None:
    client, cookies = matrix
    for path, other in OTHER.items():
        if RULES[("GET", path)] != READ:
            continue
        answer = _call(client, cookies[who], "GET", path, other)
        assert answer.status_code == 403, (path, answer.text)
        assert "your account is not scoped" in answer.json()["message"]


def test_all_streams_answers_are_filtered(
    matrix: tuple[TestClient, dict[Who, str]], demo: DemoOrg
) -> None:
    client, cookies = matrix
    with demo.engine.connect() as conn:
        lk = load_lookups(conn)
    pay, core = str(lk.delivery_stream("payments")), str(lk.tech_stream_id("core-api"))
    payments, core_api = cookies[Who("viewer", "payments")], cookies[Who("viewer", "core-api")]
    everyone = cookies[Who("viewer", "all")]

    def get(token: str, path: str, params: dict[str, str] | None = None) -> Any:
        answer = _call(client, token, "GET", path, params)
        assert answer.status_code == 200, answer.text
        return answer.json()["data"]

    assert [s["id"] for s in get(payments, "/api/v1/streams/delivery")] == [pay]
    assert get(payments, "/api/v1/streams/tech") == []
    assert [s["id"] for s in get(core_api, "/api/v1/streams/tech")] == [core]
    assert get(core_api, "/api/v1/streams/delivery") == []
    assert len(get(everyone, "/api/v1/streams/delivery")) > 1

    mine = get(payments, "/api/v1/metrics/realtime")
    named = get(everyone, "/api/v1/metrics/realtime", {"stream": "payments"})
    whole = get(everyone, "/api/v1/metrics/realtime")
    assert mine["wip_by_stage"] == named["wip_by_stage"] != whole["wip_by_stage"]
    items = get(payments, "/api/v1/metrics/drilldown", {"metric": "cycle_time", "limit": "500"})
    assert items["items"] and all(i["item_id"].startswith("PAY-") for i in items["items"])
    dora = get(core_api, "/api/v1/metrics/trends")["dora"]
    assert [r["techStreamId"] for r in dora] == [core]
    assert get(payments, "/api/v1/metrics/trends")["dora"] == []
