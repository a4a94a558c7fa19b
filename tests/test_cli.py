"""The `dpp` command: API keys, inbox status, worker --once."""

from __future__ import annotations

import json

import sqlalchemy as sa
from typer.testing import CliRunner

from dpp_lib.cli import app
from dpp_lib.settings import Settings
from dpp_lib.store.api_keys import hash_key
from tests.support import rows


def _env(settings: Settings) -> dict[str, str]:
    return {
        "DPP_DATABASE_URL": settings.resolved_database_url(),
        "DPP_SECRETS_DIR": str(settings.secrets_dir),
        "DPP_ENVIRONMENT": "test",
    }


def test_apikey_create_list_revoke(settings: Settings, org: sa.Engine) -> None:
    runner = CliRunner()
    env = _env(settings)
    result = runner.invoke(
        app,
        [
            "apikey",
            "create",
            "--name",
            "ci",
            "--permissions",
            "events:write,metrics:read",
            "--tech-stream",
            "core-api",
            "--expires-days",
            "30",
        ],
        env=env,
    )
    assert result.exit_code == 0, result.output
    key = result.stdout.strip().splitlines()[-1]
    assert key.startswith("dpp_") and len(key) > 40
    (stored,) = rows(org, "api_keys")
    assert stored["key_hash"] == hash_key(key) and key not in json.dumps(stored, default=str)
    assert stored["stream_scope"]["tech_streams"] and stored["expires_at"] is not None
    listed = json.loads(runner.invoke(app, ["apikey", "list"], env=env).stdout)
    assert listed[0]["name"] == "ci" and key not in json.dumps(listed)
    result = runner.invoke(app, ["apikey", "revoke", listed[0]["key_id"]], env=env)
    assert result.exit_code == 0
    assert rows(org, "api_keys")[0]["is_active"] in (False, 0)
    assert rows(org, "audit_log", order="occurred_at")[-1]["action"] == "api_key.revoke"


def test_apikey_create_refuses_bad_input(settings: Settings, org: sa.Engine) -> None:
    runner = CliRunner()
    env = _env(settings)
    bad = runner.invoke(app, ["apikey", "create", "--name", "x", "--permissions", "root"], env=env)
    assert bad.exit_code != 0 and "unknown permission" in bad.output
    bad = runner.invoke(
        app,
        ["apikey", "create", "--name", "x", "--permissions", "admin", "--delivery-stream", "nope"],
        env=env,
    )
    assert bad.exit_code != 0 and "unknown delivery stream 'nope'" in bad.output
    assert rows(org, "api_keys") == []


def test_inbox_status_and_worker_once(settings: Settings, org: sa.Engine) -> None:
    runner = CliRunner()
    env = _env(settings)
    status = json.loads(runner.invoke(app, ["inbox", "status"], env=env).stdout)
    assert status["total"] == 0 and status["pending"] == 0
    result = runner.invoke(app, ["worker", "--once"], env=env)
    assert result.exit_code == 0 and json.loads(result.stdout.splitlines()[-1])["processed"] == 0
