"""Database sign-in through the front door (spec §3.2.2): the form, good and bad passwords
(one generic message), throttling with backoff, CSRF, session expiry and revocation,
logout, /auth/me and safe redirects; on both backends."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from dpp_lib.auth import attempts
from dpp_lib.auth.sessions import revoke_session, session_id_for
from dpp_lib.settings import Settings
from dpp_lib.store.schema import audit_log, login_attempts, sessions
from dpp_lib.store.types import now_utc
from ingest_service.app import create_app
from ingest_service.fastpath import token_digest
from ingest_service.sessions import SESSION_COOKIE, safe_next
from tests.auth.access_support import PASSWORD, make_user, session_token, streams, with_session_key

EMAIL = "lena@example.com"


@pytest.fixture
def client(settings: Settings, org: sa.Engine) -> Iterator[TestClient]:
    with org.begin() as conn:
        s = streams(conn)
        make_user(conn, email=EMAIL, grants=[("viewer", s.payments, None)])
    with TestClient(create_app(with_session_key(settings)), follow_redirects=False) as c:
        yield c


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, html
    return found.group(1)


def sign_in(client: TestClient, email: str, password: str, next_url: str = "/auth/me") -> object:
    form = client.get("/login", params={"next": next_url})
    return client.post(
        "/login",
        data={
            "email": email,
            "password": password,
            "csrf_token": _csrf(form.text),
            "next": next_url,
        },
    )


def _actions(engine: sa.Engine) -> list[str]:
    with engine.connect() as conn:
        return list(conn.execute(sa.select(audit_log.c.action)).scalars())


def test_the_form_is_accessible_and_self_contained(client: TestClient) -> None:
    page = client.get("/login")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    html = page.text
    assert '<html lang="en">' in html and "<title>" in html and "<main>" in html
    assert '<label for="email">' in html and '<label for="password">' in html
    assert 'autocomplete="current-password"' in html
    assert "<script" not in html and "http://" not in html and "https://" not in html
    assert "default-src 'none'" in page.headers["content-security-policy"]


def test_good_password_signs_in_and_redirects_locally(client: TestClient, org: sa.Engine) -> None:
    answer = sign_in(client, EMAIL.upper(), PASSWORD)
    assert answer.status_code == 303 and answer.headers["location"] == "/auth/me"
    cookie = answer.headers["set-cookie"]
    assert f"{SESSION_COOKIE}=" in cookie and "HttpOnly" in cookie
    assert "samesite=lax" in cookie.lower() and "Secure" not in cookie  # plain http here
    me = client.get("/auth/me")
    assert me.status_code == 200
    data = me.json()["data"]
    assert data["user"]["email"] == EMAIL and data["permissions"] == ["metrics:read"]
    assert [s["name"] for s in data["delivery_streams"]] == ["payments"]
    assert data["tech_streams"] == [] and not data["all_streams"]
    assert "login.success" in _actions(org)


def test_bad_password_and_unknown_account_get_the_same_message(
    client: TestClient, org: sa.Engine
) -> None:
    wrong = sign_in(client, EMAIL, "not the password at all")
    unknown = sign_in(client, "ghost@example.com", PASSWORD)
    assert wrong.status_code == unknown.status_code == 401
    for page in (wrong, unknown):
        assert "The email address or password is incorrect." in page.text
        assert 'role="alert"' in page.text and 'aria-invalid="true"' in page.text
        assert SESSION_COOKIE not in page.headers.get("set-cookie", "")
    assert client.get("/auth/me").status_code == 401
    assert _actions(org).count("login.failure") == 2


def test_repeated_failures_block_the_account_even_with_the_right_password(
    client: TestClient, org: sa.Engine
) -> None:
    for _ in range(attempts.ACCOUNT_FREE + 1):
        assert sign_in(client, EMAIL, "not the password at all").status_code == 401
    key = attempts.account_key(EMAIL)
    with org.begin() as conn:
        row = conn.execute(
            sa.select(login_attempts).where(login_attempts.c.attempt_key == key)
        ).one()
        assert row.failures == attempts.ACCOUNT_FREE + 1
        assert row.blocked_until > row.last_failure_at  # backoff started
        # make the block long enough that this test does not depend on timing
        conn.execute(
            login_attempts.update()
            .where(login_attempts.c.attempt_key == key)
            .values(blocked_until=now_utc() + timedelta(minutes=10))
        )
    blocked = sign_in(client, EMAIL, PASSWORD)
    assert blocked.status_code == 429 and "Too many sign-in attempts" in blocked.text
    assert int(blocked.headers["retry-after"]) > 500
    assert "login.throttled" in _actions(org)
    with org.begin() as conn:
        conn.execute(login_attempts.delete())
    assert sign_in(client, EMAIL, PASSWORD).status_code == 303


def test_csrf_is_required_on_the_login_form(client: TestClient) -> None:
    client.get("/login")
    answer = client.post(
        "/login", data={"email": EMAIL, "password": PASSWORD, "csrf_token": "forged"}
    )
    assert answer.status_code == 403 and SESSION_COOKIE not in answer.headers.get("set-cookie", "")
    fresh = TestClient(client.app, follow_redirects=False)  # no pre-session cookie at all
    token = _csrf(client.get("/login").text)
    answer = fresh.post("/login", data={"email": EMAIL, "password": PASSWORD, "csrf_token": token})
    assert answer.status_code == 403


def test_logout_needs_csrf_revokes_the_session_and_clears_the_cookie(
    client: TestClient, org: sa.Engine
) -> None:
    sign_in(client, EMAIL, PASSWORD)
    token = client.cookies[SESSION_COOKIE]
    assert client.post("/logout", data={"csrf_token": "forged"}).status_code == 403
    assert client.get("/auth/me").status_code == 200  # still signed in
    csrf = client.get("/auth/me").json()["data"]["session"]["csrf_token"]
    out = client.post("/logout", data={"csrf_token": csrf})
    assert out.status_code == 303 and out.headers["location"] == "/login"
    with org.connect() as conn:
        row = conn.execute(
            sa.select(sessions).where(sessions.c.session_id == session_id_for(token))
        ).one()
    assert row.is_revoked and row.revoked_at is not None
    client.cookies.set(SESSION_COOKIE, token)  # a kept copy of the cookie is useless
    assert client.get("/auth/me").status_code == 401
    assert "logout" in _actions(org)


def test_expired_and_revoked_sessions_are_refused(client: TestClient, org: sa.Engine) -> None:
    with org.begin() as conn:
        user = make_user(conn)
    token = session_token(org, user)
    client.cookies.set(SESSION_COOKIE, token)
    assert client.get("/auth/me").status_code == 200
    with org.begin() as conn:
        conn.execute(
            sessions.update()
            .where(sessions.c.session_id == session_id_for(token))
            .values(expires_at=now_utc() - timedelta(seconds=1))
        )
    # this process remembers the session for up to a minute unless an access change is made
    client.app.state.dpp.known_sessions.forget(token_digest(token))  # type: ignore[attr-defined]
    assert client.get("/auth/me").status_code == 401
    other = session_token(org, user)
    client.cookies.set(SESSION_COOKIE, other)
    assert client.get("/auth/me").status_code == 200
    with org.begin() as conn:
        revoke_session(conn, session_id_for(other), now_utc())  # moves the access version
    client.app.state.dpp.versions.expire()  # type: ignore[attr-defined]
    assert client.get("/auth/me").status_code == 401


def test_oidc_mode_sends_the_form_to_the_provider(settings: Settings, org: sa.Engine) -> None:
    settings = with_session_key(settings.model_copy(update={"auth_method": "oidc"}))
    with TestClient(create_app(settings), follow_redirects=False) as client:
        answer = client.get("/login", params={"next": "/dashboards/x?a=1"})
        assert answer.status_code == 303
        assert answer.headers["location"].startswith("/login/oidc?next=/dashboards/x")
        posted = client.post("/login", data={"email": EMAIL, "password": PASSWORD})
        assert posted.status_code == 303 and posted.headers["location"].startswith("/login/oidc")


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("/dashboards/pulse?stream=payments", "/dashboards/pulse?stream=payments"),
        ("https://evil.example/", "/dashboards/"),
        ("//evil.example/", "/dashboards/"),
        ("/\\evil.example", "/dashboards/"),
        ("javascript:alert(1)", "/dashboards/"),
        ("/ok\r\nSet-Cookie: x=1", "/dashboards/"),
        (None, "/dashboards/"),
    ],
)
def test_only_local_next_urls(given: str | None, expected: str) -> None:
    assert safe_next(given) == expected


def test_a_foreign_next_is_replaced_after_sign_in(client: TestClient) -> None:
    answer = sign_in(client, EMAIL, PASSWORD, next_url="https://evil.example/")
    assert answer.status_code == 303 and answer.headers["location"] == "/dashboards/"
