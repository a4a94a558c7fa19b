"""``dpp user|role|group`` and ``dpp apikey rotate`` (both backends)."""

from __future__ import annotations

import json

import sqlalchemy as sa
from typer.testing import CliRunner

from dpp_lib.auth.roles import principal_for_user
from dpp_lib.auth.users import authenticate, find_user_by_email
from dpp_lib.cli import app
from dpp_lib.settings import Settings
from dpp_lib.store.api_keys import find_key
from dpp_lib.store.schema import audit_log
from tests.auth.access_support import PASSWORD, T0, streams


def _env(settings: Settings) -> dict[str, str]:
    return {
        "DPP_DATABASE_URL": settings.resolved_database_url(),
        "DPP_SECRETS_DIR": str(settings.secrets_dir),
        "DPP_ENVIRONMENT": "test",
        "NEW_PASSWORD": PASSWORD,
    }


def test_users_roles_and_groups(settings: Settings, org: sa.Engine) -> None:
    runner = CliRunner()
    env = _env(settings)

    def dpp(*args: str, code: int = 0, **kw: str) -> str:
        result = runner.invoke(app, list(args), env=env, **kw)  # type: ignore[arg-type]
        assert result.exit_code == code, result.output
        return result.output

    dpp("user", "create", "kim@example.com", "--name", "Kim", "--password-env", "NEW_PASSWORD")
    dpp("user", "create", "lee@example.com", "--name", "Lee", input=PASSWORD + "\n")
    dpp("user", "create", "sso@example.com", "--name", "SSO", "--oidc")
    out = dpp("user", "create", "kim@example.com", "--name", "Kim", "--oidc", code=1)
    assert "already exists" in out
    out = dpp("user", "create", "x@example.com", "--name", "X", input="short\n", code=1)
    assert "at least 12" in out

    dpp("role", "grant", "kim@example.com", "--role", "viewer", "--delivery-stream", "payments")
    out = dpp("role", "grant", "kim@example.com", "--role", "boss", code=1)
    assert "unknown role" in out
    out = dpp(
        "role", "grant", "kim@example.com", "--role", "viewer", "--tech-stream", "nope", code=1
    )
    assert "no tech stream is named 'nope'" in out
    listed = json.loads(dpp("role", "list", "kim@example.com"))
    assert [(g["role"], g["source"]) for g in listed] == [("viewer", "manual")]

    with org.begin() as conn:
        s = streams(conn)
        kim = find_user_by_email(conn, "kim@example.com")
        assert kim is not None and authenticate(conn, "kim@example.com", PASSWORD, T0)
        assert authenticate(conn, "lee@example.com", PASSWORD, T0) is not None
        p = principal_for_user(conn, kim.user_id)
        assert p is not None and p.delivery_streams == {s.payments}

    dpp("role", "revoke", "kim@example.com", "--role", "viewer", "--delivery-stream", "payments")
    assert json.loads(dpp("role", "list", "kim@example.com")) == []
    out = dpp("role", "revoke", "kim@example.com", "--role", "viewer", code=1)
    assert "no 'viewer' grant" in out

    out = dpp(
        "group", "map", "pay-.*", "--role", "viewer", "--regex", "--delivery-stream", "payments"
    )
    mapping_id = out.strip().rsplit("(", 1)[1].rstrip(")")
    assert json.loads(dpp("group", "list"))[0]["group_pattern"] == "pay-.*"
    out = dpp("group", "map", "([", "--role", "viewer", "--regex", code=1)
    assert "not a regular expression" in out
    dpp("group", "unmap", mapping_id)
    assert json.loads(dpp("group", "list")) == []
    assert "not a mapping id" in dpp("group", "unmap", "nope", code=1)

    users = json.loads(dpp("user", "list"))
    assert {u["email"] for u in users} == {"kim@example.com", "lee@example.com", "sso@example.com"}
    dpp("user", "deactivate", "kim@example.com")
    assert "no user" in dpp("user", "deactivate", "ghost@example.com", code=1)
    with org.connect() as conn:
        actions = set(conn.execute(sa.select(audit_log.c.action)).scalars())
        actors = set(conn.execute(sa.select(audit_log.c.actor_type)).scalars())
    assert {
        "user.create",
        "role.grant",
        "role.revoke",
        "group.map",
        "group.unmap",
        "user.deactivate",
    } <= actions
    assert "cli" in actors


def test_apikey_rotate(settings: Settings, org: sa.Engine) -> None:
    runner = CliRunner()
    env = _env(settings)
    made = runner.invoke(
        app,
        [
            "apikey",
            "create",
            "--name",
            "ci",
            "--permissions",
            "metrics:read",
            "--delivery-stream",
            "payments",
            "--expires-days",
            "30",
        ],
        env=env,
    )
    old = made.stdout.strip().splitlines()[-1]
    rotated = runner.invoke(app, ["apikey", "rotate", old[:10]], env=env)
    assert rotated.exit_code == 0, rotated.output
    new = rotated.stdout.strip().splitlines()[-1]
    assert new.startswith("dpp_") and new != old
    with org.connect() as conn:
        before, after = find_key(conn, old), find_key(conn, new)
        assert before is not None and not before.is_active
        assert after is not None and after.is_active
        assert after.delivery_streams == before.delivery_streams
        assert after.permissions == before.permissions and after.expires_at == before.expires_at
        actions = list(conn.execute(sa.select(audit_log.c.action)).scalars())
    assert "api_key.rotate" in actions
    again = runner.invoke(app, ["apikey", "rotate", old[:10]], env=env)
    assert again.exit_code == 1 and "revoked" in again.output
