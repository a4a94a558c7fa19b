"""The OIDC routes (``/login/oidc``, ``/auth/callback``) against a real OpenID provider on
loopback: a sign-in creates the user, maps its groups to roles and opens a session; every
refusal answers a generic page and leaves a ``login.failure`` audit row with its reason."""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from dpp_lib.auth.oidc import OidcClient, OidcConfig, begin_login, consume_login_state
from dpp_lib.auth.roles import list_mappings, map_group, unmap_group
from dpp_lib.auth.users import deactivate_user, find_user_by_email
from dpp_lib.settings import Settings
from dpp_lib.store.schema import audit_log, delivery_streams, oidc_login_states, sessions
from dpp_lib.store.types import now_utc
from ingest_service.app import create_app
from tests.auth.oidc_support import (
    CLIENT_ID,
    CLIENT_SECRET,
    OTHER_CLIENT_ID,
    OTHER_CLIENT_SECRET,
    RunningProvider,
    client_registration,
    path_and_query,
    query,
    run_provider,
    sign_in_at_provider,
)

REDIRECT_URI = "http://testserver/auth/callback"
GENERIC = "Sign-in failed."


@pytest.fixture(scope="module")
def provider(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningProvider]:
    clients = [
        client_registration(CLIENT_ID, CLIENT_SECRET, [REDIRECT_URI]),
        client_registration(OTHER_CLIENT_ID, OTHER_CLIENT_SECRET, [REDIRECT_URI]),
    ]
    with run_provider(tmp_path_factory.mktemp("oidc-provider"), clients=clients) as running:
        yield running


def configure_oidc(settings: Settings, issuer: str) -> Settings:
    (settings.secrets_dir / "oidc_client_secret").write_text(CLIENT_SECRET)
    session_key = settings.secrets_dir / "session_key"  # signs CSRF tokens (/auth/me shows one)
    if not session_key.exists():
        session_key.write_text("session-key-for-the-oidc-tests-0123456789")
    return settings.model_copy(
        update={
            "auth_method": "oidc",
            "oidc_issuer_url": issuer,
            "oidc_client_id": CLIENT_ID,
            "oidc_redirect_uri": REDIRECT_URI,
            "dashboards_enabled": False,
        }
    )


@pytest.fixture
def mapped(org: sa.Engine) -> sa.Engine:
    """Groups mapped to roles: admins → platform_admin; payments leads → stream_lead of
    Payments (exact name); any ``*-viewers`` group → viewer (a regular expression)."""
    with org.begin() as conn:
        payments = conn.execute(
            sa.select(delivery_streams.c.stream_id).where(delivery_streams.c.name == "payments")
        ).scalar_one()
        map_group(conn, group_pattern="dpp-platform-admins", role="platform_admin", actor=None)
        map_group(
            conn,
            group_pattern="dpp-payments-leads",
            role="stream_lead",
            delivery_stream_id=payments,
            actor=None,
        )
        map_group(conn, group_pattern=r".*-viewers", is_regex=True, role="viewer", actor=None)
    return org


@pytest.fixture
def app(settings: Settings, mapped: sa.Engine, provider: RunningProvider) -> Iterator[TestClient]:
    with TestClient(
        create_app(configure_oidc(settings, provider.issuer)), follow_redirects=False
    ) as client:
        yield client


def start(app: TestClient, next_url: str = "/dashboards/") -> str:
    response = app.get("/login/oidc", params={"next": next_url})
    assert response.status_code == 302, response.text
    return response.headers["location"]


def at_provider(app: TestClient, login: str, next_url: str = "/dashboards/") -> str:
    """The callback path and query the provider sends the browser back with."""
    return path_and_query(
        sign_in_at_provider(start(app, next_url), login=login, redirect_uri=REDIRECT_URI)
    )


def failures(engine: sa.Engine) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(audit_log.c.details, audit_log.c.actor_type, audit_log.c.source_ip)
            .where(audit_log.c.action == "login.failure")
            .order_by(audit_log.c.occurred_at)
        ).all()
    return [r.details | {"actor_type": r.actor_type, "ip": r.source_ip} for r in rows]


def assert_refused(response: Any, engine: sa.Engine, reason: str) -> None:
    assert response.status_code == 401
    assert GENERIC in response.text and reason not in response.text
    assert "dpp_session" not in response.cookies
    found = failures(engine)
    assert [f["reason"] for f in found] == [reason], found
    assert found[0]["method"] == "oidc" and found[0]["ip"] == "testclient"


def me(app: TestClient) -> dict[str, Any]:
    response = app.get("/auth/me")
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


def test_sign_in_creates_the_user_with_roles_from_groups(
    app: TestClient, mapped: sa.Engine
) -> None:
    response = app.get(at_provider(app, "pat", next_url="/dashboards/pulse?stream=payments"))
    assert response.status_code == 302, response.text
    assert response.headers["location"] == "/dashboards/pulse?stream=payments"
    cookie = response.headers["set-cookie"]
    assert "dpp_session=" in cookie and "HttpOnly" in cookie and "samesite=lax" in cookie.lower()

    data = me(app)
    assert data["user"]["email"] == "pat.payments@example.com"
    assert data["user"]["display_name"] == "Pat Payments"
    assert data["user"]["auth_source"] == "oidc"
    assert data["session"]["auth_method"] == "oidc"
    assert [(r["role"], r["source"]) for r in data["roles"]] == [("stream_lead", "group")]
    assert [s["name"] for s in data["delivery_streams"]] == ["payments"]
    assert data["all_streams"] is False
    with mapped.connect() as conn:
        audit = conn.execute(
            sa.select(audit_log).where(audit_log.c.action == "login.success")
        ).one()
    assert audit.details["method"] == "oidc"
    assert audit.details["groups"] == ["dpp-payments-leads"]
    assert audit.actor_id == data["user"]["user_id"] and audit.source_ip == "testclient"
    assert failures(mapped) == []


def test_group_roles_are_recomputed_at_each_sign_in(app: TestClient, mapped: sa.Engine) -> None:
    app.get(at_provider(app, "alice"))
    assert [r["role"] for r in me(app)["roles"]] == ["platform_admin"]
    assert me(app)["all_streams"] is True

    with mapped.begin() as conn:
        admins = next(m for m in list_mappings(conn) if m.group_pattern == "dpp-platform-admins")
        unmap_group(conn, admins.mapping_id, actor=None)
        map_group(conn, group_pattern="staff", role="team_member", actor=None)
    app.cookies.clear()
    app.get(at_provider(app, "alice"))
    assert [(r["role"], r["source"]) for r in me(app)["roles"]] == [("team_member", "group")]


def test_a_user_without_mapped_groups_signs_in_with_no_role(app: TestClient) -> None:
    app.get(at_provider(app, "nobody"))
    data = me(app)
    assert data["roles"] == [] and data["permissions"] == []
    assert data["delivery_streams"] == [] and data["tech_streams"] == []


def test_only_a_local_next_is_followed(app: TestClient) -> None:
    response = app.get(at_provider(app, "pat", next_url="https://elsewhere.example/steal"))
    assert response.status_code == 302
    assert response.headers["location"] == "/dashboards/"
    for bad in ("//elsewhere.example/x", "/\\elsewhere.example"):
        app.cookies.clear()
        assert app.get(at_provider(app, "pat", next_url=bad)).headers["location"] == "/dashboards/"


def test_a_replayed_state_is_refused(app: TestClient, mapped: sa.Engine) -> None:
    callback = at_provider(app, "pat")
    assert app.get(callback).status_code == 302
    app.cookies.clear()
    assert_refused(app.get(callback), mapped, "replayed_state")


def test_a_state_started_in_another_browser_is_refused(app: TestClient, mapped: sa.Engine) -> None:
    """Login CSRF: an attacker starts a sign-in, signs in as themselves at the provider and
    sends the victim the callback link; the victim's browser did not start it."""
    callback = at_provider(app, "pat")
    app.cookies.clear()  # the victim's browser has no marker for that sign-in
    assert_refused(app.get(callback), mapped, "state_from_another_browser")
    with mapped.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(sessions)).scalar_one() == 0


def test_the_marker_cookie_is_scoped_to_the_callback_and_cleared(app: TestClient) -> None:
    response = app.get("/login/oidc")
    cookie = response.headers["set-cookie"]
    assert cookie.startswith("dpp_oidc_") and "Path=/auth/callback" in cookie
    assert "HttpOnly" in cookie and "Max-Age=600" in cookie
    back = sign_in_at_provider(response.headers["location"], login="pat", redirect_uri=REDIRECT_URI)
    done = app.get(path_and_query(back))
    assert done.status_code == 302
    assert any(
        c.startswith("dpp_oidc_") and "Max-Age=0" in c for c in done.headers.get_list("set-cookie")
    )


def test_an_unknown_state_is_refused(app: TestClient, mapped: sa.Engine) -> None:
    assert_refused(
        app.get("/auth/callback", params={"state": "never-issued", "code": "x"}),
        mapped,
        "unknown_state",
    )


def test_an_expired_state_is_refused(app: TestClient, mapped: sa.Engine) -> None:
    callback = at_provider(app, "pat")
    with mapped.begin() as conn:
        conn.execute(oidc_login_states.update().values(expires_at=now_utc() - timedelta(seconds=1)))
    assert_refused(app.get(callback), mapped, "expired_state")


def test_a_wrong_nonce_is_refused(app: TestClient, mapped: sa.Engine) -> None:
    callback = at_provider(app, "pat")
    with mapped.begin() as conn:  # the token carries the nonce sent; the stored one differs
        conn.execute(oidc_login_states.update().values(nonce="another-sign-in's-nonce"))
    assert_refused(app.get(callback), mapped, "wrong_nonce")


def _exchange_returning(app: TestClient, monkeypatch: pytest.MonkeyPatch, change: Any) -> None:
    client: OidcClient = app.app.state.oidc_client  # type: ignore[attr-defined]
    real = client.exchange_code

    def exchange(*, code: str, code_verifier: str) -> dict[str, Any]:
        return change(real(code=code, code_verifier=code_verifier))

    monkeypatch.setattr(client, "exchange_code", exchange)


def test_a_tampered_id_token_is_refused(
    app: TestClient, mapped: sa.Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    callback = at_provider(app, "pat")

    def promote(tokens: dict[str, Any]) -> dict[str, Any]:
        header, payload, signature = tokens["id_token"].split(".")
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        claims["groups"] = ["dpp-platform-admins"]
        forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
        return tokens | {"id_token": f"{header}.{forged}.{signature}"}

    _exchange_returning(app, monkeypatch, promote)
    assert_refused(app.get(callback), mapped, "bad_signature")
    with mapped.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(sessions)).scalar_one() == 0
        assert find_user_by_email(conn, "pat.payments@example.com") is None


def test_an_id_token_for_another_client_is_refused(
    app: TestClient,
    mapped: sa.Engine,
    provider: RunningProvider,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The provider issues a real ID token to another registered client; the token
    endpoint's answer is swapped for it, as a mix-up or substitution attack would."""
    other = OidcClient(
        OidcConfig(
            issuer_url=provider.issuer,
            client_id=OTHER_CLIENT_ID,
            client_secret=OTHER_CLIENT_SECRET,
            redirect_uri=REDIRECT_URI,
        )
    )
    with mapped.begin() as conn:
        url = begin_login(conn, other, next_url=None, now=now_utc()).url
    back = query(sign_in_at_provider(url, login="alice", redirect_uri=REDIRECT_URI))
    with mapped.begin() as conn:
        pending = consume_login_state(conn, state=back["state"], now=now_utc())
    foreign = other.exchange_code(code=back["code"], code_verifier=pending.code_verifier)

    callback = at_provider(app, "pat")
    _exchange_returning(app, monkeypatch, lambda tokens: tokens | {"id_token": foreign["id_token"]})
    assert_refused(app.get(callback), mapped, "wrong_audience")


def test_a_declined_consent_is_refused(app: TestClient, mapped: sa.Engine) -> None:
    back = sign_in_at_provider(start(app), login="pat", redirect_uri=REDIRECT_URI, consent=False)
    assert query(back)["error"] == "access_denied"
    assert_refused(app.get(path_and_query(back)), mapped, "provider_error")


def test_a_deactivated_user_is_refused(app: TestClient, mapped: sa.Engine) -> None:
    app.get(at_provider(app, "pat"))
    app.cookies.clear()
    with mapped.begin() as conn:
        user = find_user_by_email(conn, "pat.payments@example.com")
        assert user is not None
        deactivate_user(conn, user.user_id, actor=None)
    assert_refused(app.get(at_provider(app, "pat")), mapped, "user_inactive")
    with mapped.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(sessions)).scalar_one() == 1


def test_discovery_failure_shows_a_page_and_logs_the_url(
    settings: Settings, org: sa.Engine, caplog: pytest.LogCaptureFixture
) -> None:
    broken = configure_oidc(settings, "http://127.0.0.1:9/tenant")
    with (
        TestClient(create_app(broken), follow_redirects=False) as client,
        caplog.at_level(logging.ERROR, logger="ingest_service.routes.oidc"),
    ):
        response = client.get("/login/oidc")
    assert response.status_code == 503
    assert "identity provider cannot be reached" in response.text
    assert "127.0.0.1:9" not in response.text
    assert "http://127.0.0.1:9/tenant/.well-known/openid-configuration" in caplog.text


def test_oidc_routes_are_off_in_database_mode(settings: Settings, org: sa.Engine) -> None:
    with TestClient(
        create_app(settings.model_copy(update={"dashboards_enabled": False}))
    ) as client:
        assert client.get("/login/oidc", follow_redirects=False).status_code == 404
        assert client.get("/auth/callback?state=x&code=y").status_code == 404
