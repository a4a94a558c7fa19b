"""Helpers shared by tests: the test organisation, signed posts, fixture files, queries."""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import sqlalchemy as sa
import yaml
from fastapi.testclient import TestClient

from dpp_lib.orgconfig import OrgConfig, parse_config
from dpp_lib.store.config_tables import apply_config

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT.parent / "shared" / "fixtures"
if not FIXTURES.exists():  # CI checks the project out beside ../shared too; allow an override
    FIXTURES = Path(__import__("os").environ.get("DPP_FIXTURES", str(FIXTURES)))
GITHUB_FIXTURES = FIXTURES / "github-webhooks"
JIRA_FIXTURES = FIXTURES / "jira-webhooks"
EXAMPLE_CONFIG = ROOT / "config" / "example.yaml"

TEST_SECRETS = {
    "github_webhook_secret": "gh-test-secret-7f3a",
    "jira_webhook_secret": "jira-test-secret-91c2",
    "anonymisation_key": "anonymisation-test-key-0123456789abcdef",
}

# The fixture payloads come from other organisations: register them as extra streams so the
# platform recognises them, as an operator would.
FIXTURE_ORG = {
    "tech_streams": [
        {
            "name": "octo",
            "display_name": "Octocoders",
            "github_org": "Codertocat",
            "github_install_id": "1",
        },
        {
            "name": "octo-org",
            "display_name": "Octo Org",
            "github_org": "octo-org",
            "github_install_id": "999001",
        },
    ],
    "repositories": [
        {"full_name": "Codertocat/Hello-World", "deploy_target": "ecs:hello-world"},
        {"full_name": "octo-org/octo-repo", "deploy_target": "ecs:octo-repo"},
    ],
    "jira_projects": [
        {
            "key": key,
            "delivery_stream": "payments",
            "derivation": ["custom_field", "project"],
            "status_mappings": [
                {"status": "To Do", "stage": "backlog"},
                {"status": "Open", "stage": "backlog"},
                {"status": "Reopened", "stage": "dev"},
                {"status": "In Progress", "stage": "dev", "active": True},
                {"status": "开发中", "stage": "dev", "active": True},
                {"status": "Resolved", "stage": "done"},
                {"status": "Closed", "stage": "done"},
                {"status": "Done", "stage": "done"},
            ],
        }
        for key in ("TES", "TEST", "PRJA", "KT", "KAN", "BUG", "EE")
    ],
}


def org_config_dict() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(EXAMPLE_CONFIG.read_text())
    for section, items in FIXTURE_ORG.items():
        data[section] = data.get(section, []) + items
    return data


def org_config() -> OrgConfig:
    return parse_config(yaml.safe_dump(org_config_dict(), allow_unicode=True), file="test-org")


def load_test_config(engine: sa.Engine) -> OrgConfig:
    cfg = org_config()
    with engine.begin() as conn:
        apply_config(conn, cfg)
    return cfg


def signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def post_github(
    client: TestClient,
    event: str,
    body: bytes,
    *,
    delivery: str | None = None,
    secret: str | None = TEST_SECRETS["github_webhook_secret"],
    **headers: str,
) -> Any:
    h = {
        "Content-Type": "application/json",
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": delivery or str(uuid.uuid4()),
    }
    if secret is not None:
        h["X-Hub-Signature-256"] = signature(secret, body)
    h.update(headers)
    return client.post("/api/v1/webhooks/github", content=body, headers=h)


def post_jira(
    client: TestClient,
    body: bytes,
    *,
    delivery: str | None = None,
    secret: str | None = TEST_SECRETS["jira_webhook_secret"],
    **headers: str,
) -> Any:
    h = {"Content-Type": "application/json"}
    if delivery is not None:
        h["X-Atlassian-Webhook-Identifier"] = delivery
    if secret is not None:
        h["X-Hub-Signature"] = signature(secret, body)
    h.update(headers)
    return client.post("/api/v1/webhooks/jira", content=body, headers=h)


def github_fixture_files() -> Iterator[tuple[str, Path]]:
    for path in sorted(GITHUB_FIXTURES.glob("*/*.json")):
        yield path.parent.name, path


def jira_fixture_files() -> list[Path]:
    return sorted(JIRA_FIXTURES.glob("*.json"))


def count(engine: sa.Engine, table: str, where: str = "") -> int:
    with engine.connect() as conn:
        sql = f"select count(*) from {table}" + (f" where {where}" if where else "")
        return int(conn.exec_driver_sql(sql).scalar_one())


JSON_COLUMNS = {
    "outcome",
    "headers",
    "from_value",
    "to_value",
    "labels",
    "stream_scope",
    "permissions",
    "details",
    "value",
    "tech_stream_ids",
    "stage_durations",
}


def rows(engine: sa.Engine, table: str, where: str = "", order: str = "") -> list[dict[str, Any]]:
    with engine.connect() as conn:
        sql = f"select * from {table}" + (f" where {where}" if where else "")
        sql += f" order by {order}" if order else ""
        out = []
        for r in conn.exec_driver_sql(sql):
            row = dict(r._mapping)
            for k, v in row.items():  # SQLite hands JSON columns back as text
                if isinstance(v, str) and v[:1] in "{[" and k in JSON_COLUMNS:
                    row[k] = json.loads(v)
            out.append(row)
        return out


def compact(payload: Any) -> bytes:
    return json.dumps(payload, separators=(",", ":")).encode()
