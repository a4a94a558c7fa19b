"""The access administration API (platform admins only): users, roles, group mappings,
API keys (secret shown once, rotation) and the audit log; both backends."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from dpp_lib.settings import Settings
from dpp_lib.store.api_keys import create_key
from dpp_lib.store.schema import api_key_usage, api_keys
from ingest_service.app import create_app
from ingest_service.sessions import SESSION_COOKIE
from tests.auth.access_support import PASSWORD, make_user, session_token, streams, with_session_key

ADMIN = "/api/v1/admin"


@pytest.fixture
def admin(settings: Settings, org: sa.Engine) -> Iterator[TestClient]:
    """A client signed in as a platform admin, sending the session's CSRF token."""
    with org.begin() as conn:
        user = make_user(conn, email="root@example.com", grants=[("platform_admin", None, None)])
    with TestClient(create_app(with_session_key(settings))) as client:
        client.cookies.set(SESSION_COOKIE, session_token(org, user))
        csrf = client.get("/auth/me").json()["data"]["session"]["csrf_token"]
        client.headers["X-CSRF-Token"] = csrf
        yield client


def _ok(answer: Any, status: int = 200) -> Any:
    assert answer.status_code == status, answer.text
    return answer.json()["data"]


def test_users_and_roles(admin: TestClient, org: sa.Engine) -> None:
    made = _ok(
        admin.post(
            f"{ADMIN}/users",
            json={"email": "New@Example.com", "display_name": "New", "password": PASSWORD},
        ),
        201,
    )
    assert made["email"] == "new@example.com" and "password" not in str(made)
    bad = admin.post(
        f"{ADMIN}/users", json={"email": "x@example.com", "display_name": "X", "password": "short"}
    )
    assert bad.status_code == 422 and "at least 12" in bad.json()["message"]
    assert admin.post(f"{ADMIN}/users", json={"email": "y@example.com"}).status_code == 400

    grant = _ok(
        admin.post(
            f"{ADMIN}/users/new@example.com/roles",
            json={"role": "viewer", "delivery_stream": "payments"},
        )
    )
    with org.connect() as conn:
        assert grant["delivery_stream_id"] == str(streams(conn).payments)
    unknown = admin.post(
        f"{ADMIN}/users/new@example.com/roles",
        json={"role": "viewer", "delivery_stream": "atlantis"},
    )
    assert unknown.status_code == 422 and "atlantis" in unknown.json()["message"]
    assert (
        admin.post(f"{ADMIN}/users/ghost@example.com/roles", json={"role": "viewer"}).status_code
        == 404
    )
    assert [
        g["role"] for g in _ok(admin.get(f"{ADMIN}/roles", params={"user": "new@example.com"}))
    ] == ["viewer"]
    listed = {u["email"]: u for u in _ok(admin.get(f"{ADMIN}/users"))}
    assert listed["new@example.com"]["roles"][0]["role"] == "viewer"
    _ok(
        admin.post(
            f"{ADMIN}/users/new@example.com/roles/revoke",
            json={"role": "viewer", "delivery_stream": "payments"},
        )
    )
    assert _ok(admin.get(f"{ADMIN}/roles", params={"user": "new@example.com"})) == []
    done = _ok(admin.post(f"{ADMIN}/users/{made['user_id']}/deactivate"))
    assert done["is_active"] is False


def test_control_characters_are_refused_by_name(admin: TestClient) -> None:
    """Postgres refuses NUL in text: such input is a 422 naming the field, never a 500."""
    answer = admin.post(
        f"{ADMIN}/users",
        json={"email": "a\u0000b@example.com", "display_name": "A", "password": PASSWORD},
    )
    assert answer.status_code == 422 and "email address" in answer.json()["message"]
    answer = admin.post(f"{ADMIN}/users/a%00b/deactivate")
    assert answer.status_code == 422 and "control characters" in answer.json()["message"]
    answer = admin.post(f"{ADMIN}/api-keys", json={"name": "k\u0000", "permissions": ["admin"]})
    assert answer.status_code == 422 and "key name" in answer.json()["message"]
    answer = admin.get(f"{ADMIN}/audit", params={"action": "a\u0000"})
    assert answer.status_code == 400 and "action" in answer.json()["message"]


def test_group_mappings(admin: TestClient) -> None:
    made = _ok(
        admin.post(
            f"{ADMIN}/group-mappings",
            json={
                "group_pattern": "lead-.+",
                "is_regex": True,
                "role": "stream_lead",
                "tech_stream": "core-api",
            },
        ),
        201,
    )
    bad = admin.post(
        f"{ADMIN}/group-mappings", json={"group_pattern": "(", "is_regex": True, "role": "viewer"}
    )
    assert bad.status_code == 422 and "regular expression" in bad.json()["message"]
    assert [m["group_pattern"] for m in _ok(admin.get(f"{ADMIN}/group-mappings"))] == ["lead-.+"]
    _ok(admin.delete(f"{ADMIN}/group-mappings/{made['mapping_id']}"))
    assert admin.delete(f"{ADMIN}/group-mappings/{made['mapping_id']}").status_code == 404


def test_api_keys_created_rotated_revoked_and_used(admin: TestClient) -> None:
    made = _ok(
        admin.post(
            f"{ADMIN}/api-keys",
            json={
                "name": "ci",
                "permissions": ["metrics:read"],
                "delivery_streams": ["payments"],
                "expires_days": 30,
            },
        ),
        201,
    )
    secret = made["secret"]
    assert secret.startswith("dpp_") and made["expires_at"]
    listed = _ok(admin.get(f"{ADMIN}/api-keys"))
    assert secret not in str(listed) and made["key_id"] in str(listed)
    reader = TestClient(admin.app)
    reads = reader.get("/api/v1/streams/delivery", headers={"Authorization": f"Bearer {secret}"})
    assert reads.status_code == 200 and [s["name"] for s in reads.json()["data"]] == ["payments"]

    rotated = _ok(admin.post(f"{ADMIN}/api-keys/{made['key_id']}/rotate"))
    assert rotated["secret"] != secret and rotated["replaces"] == made["key_id"]
    assert rotated["delivery_streams"] == made["delivery_streams"]
    admin.app.state.dpp.versions.expire()  # type: ignore[attr-defined]
    old = reader.get("/api/v1/streams/delivery", headers={"Authorization": f"Bearer {secret}"})
    assert old.status_code == 401
    new = reader.get(
        "/api/v1/streams/delivery", headers={"Authorization": f"Bearer {rotated['secret']}"}
    )
    assert new.status_code == 200
    _ok(admin.post(f"{ADMIN}/api-keys/{rotated['key_id']}/revoke"))
    bad = admin.post(f"{ADMIN}/api-keys", json={"name": "x", "permissions": ["root"]})
    assert bad.status_code == 422

    # usage is counted in memory and written per key per hour
    state = admin.app.state.dpp  # type: ignore[attr-defined]
    assert sum(n for n, _ in state.key_usage.pending().values()) >= 2
    state.key_usage.flush(state.engine)
    usage = _ok(admin.get(f"{ADMIN}/api-keys/usage"))
    assert {u["key_id"] for u in usage} == {made["key_id"], rotated["key_id"]}
    assert all(u["requests"] >= 1 for u in usage)


def test_audit_log_filters_and_pages(admin: TestClient) -> None:
    for n in range(3):
        admin.post(
            f"{ADMIN}/users",
            json={"email": f"u{n}@example.com", "display_name": "U", "password": PASSWORD},
        )
    page = admin.get(f"{ADMIN}/audit", params={"action": "user.create", "limit": 2})
    body = page.json()
    assert page.status_code == 200 and len(body["data"]) == 2
    assert body["meta"]["total"] == 4 and body["meta"]["next_offset"] == 2  # root + 3
    rest = admin.get(f"{ADMIN}/audit", params={"action": "user.create", "offset": 2}).json()
    assert len(rest["data"]) == 2 and rest["meta"]["next_offset"] is None
    mine = admin.get(f"{ADMIN}/audit", params={"action": "user.*", "actor": "user:"}).json()
    assert mine["meta"]["total"] == 3 and all(r["source_ip"] for r in mine["data"])
    assert (
        admin.get(f"{ADMIN}/audit", params={"since": "2999-01-01T00:00:00Z"}).json()["data"] == []
    )
    bad = admin.get(f"{ADMIN}/audit", params={"since": "yesterday"})
    assert bad.status_code == 400 and "since" in bad.text


def test_changes_need_the_csrf_header_with_a_session(admin: TestClient) -> None:
    del admin.headers["X-CSRF-Token"]
    refused = admin.post(
        f"{ADMIN}/users", json={"email": "z@example.com", "display_name": "Z", "password": PASSWORD}
    )
    assert refused.status_code == 403 and "X-CSRF-Token" in refused.json()["message"]
    assert admin.get(f"{ADMIN}/users").status_code == 200  # reads need no token


def test_admin_api_refuses_non_admins_and_scoped_admin_keys(
    settings: Settings, org: sa.Engine
) -> None:
    with org.begin() as conn:
        s = streams(conn)
        lead = make_user(conn, grants=[("stream_lead", None, None)])
        scoped_key = create_key(
            conn,
            name="scoped admin",
            permissions=["admin", "metrics:read"],
            delivery_streams=[s.payments],
        )[1]
        full_key = create_key(conn, name="admin", permissions=["admin"])[1]
    with TestClient(create_app(with_session_key(settings))) as client:
        client.cookies.set(SESSION_COOKIE, session_token(org, lead))
        answer = client.get(f"{ADMIN}/users")
        assert answer.status_code == 403 and "'admin'" in answer.json()["message"]
        client.cookies.clear()
        assert client.get(f"{ADMIN}/users").status_code == 401
        scoped = client.get(f"{ADMIN}/users", headers={"Authorization": f"Bearer {scoped_key}"})
        assert scoped.status_code == 403 and "unscoped" in scoped.json()["message"]
        full = client.get(f"{ADMIN}/users", headers={"Authorization": f"Bearer {full_key}"})
        assert full.status_code == 200


def test_key_usage_is_written_when_the_process_stops(settings: Settings, org: sa.Engine) -> None:
    with org.begin() as conn:
        key, secret = create_key(conn, name="reader", permissions=["metrics:read"])
    with TestClient(create_app(with_session_key(settings))) as client:
        for _ in range(3):
            answer = client.get(
                "/api/v1/streams/delivery", headers={"Authorization": f"Bearer {secret}"}
            )
            assert answer.status_code == 200
    with org.connect() as conn:
        rows = conn.execute(sa.select(api_key_usage)).all()
        last_used = conn.execute(
            sa.select(api_keys.c.last_used_at).where(api_keys.c.key_id == key.key_id)
        ).scalar_one()
    assert [(r.key_id, r.request_count) for r in rows] == [(key.key_id, 3)]
    assert rows[0].hour_start.minute == 0 and last_used == rows[0].last_used_at
