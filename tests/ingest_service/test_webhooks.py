"""Webhooks end to end: every real fixture posted signed, then processed by the worker."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from ingest_service.worker import Worker
from tests.support import (
    GITHUB_FIXTURES,
    JIRA_FIXTURES,
    compact,
    count,
    github_fixture_files,
    jira_fixture_files,
    post_github,
    post_jira,
    rows,
    signature,
)

GITHUB_EXPECTED_TABLE = {
    ("pull_request", "opened"): "pr_events",
    ("pull_request", "closed"): "pr_events",
    ("pull_request_review", "submitted"): "pr_events",
    ("deployment_status", "created"): "cicd_events",
    ("workflow_run", "completed"): "cicd_events",
}


def _outcome(engine: sa.Engine) -> dict[str, dict[str, object]]:
    return {r["delivery_id"]: r for r in rows(engine, "raw_events")}


@pytest.mark.parametrize(
    ("kind", "path"),
    list(github_fixture_files()),
    ids=lambda v: str(v).rsplit("/", 2)[-2:][-1] if "/" in str(v) else v,
)
def test_every_github_fixture_is_stored_or_ignored_with_reason(
    client: TestClient, worker: Worker, org: sa.Engine, kind: str, path: object
) -> None:
    body = path.read_bytes()  # type: ignore[attr-defined]
    response = post_github(client, kind, body, delivery=f"gh-{kind}-{path.name}")  # type: ignore[attr-defined]
    assert response.status_code == 202, response.text
    assert response.json() == {"ok": True}
    worker.drain()
    (raw,) = rows(org, "raw_events")
    payload = json.loads(body)
    expected_table = GITHUB_EXPECTED_TABLE.get((kind, payload.get("action")))
    if kind == "deployment_status" and payload.get("deployment_status", {}).get("state") not in (
        "success",
        "failure",
        "error",
    ):
        expected_table = None
    if expected_table:
        assert raw["state"] == "done", raw
        stored = count(org, expected_table, f"raw_event_id = {raw['id']}")
        assert stored >= 1, f"{path} stored nothing in {expected_table}"
    else:
        assert raw["state"] == "ignored", raw
        assert raw["ignored_reason"], "an ignored delivery must say why"


@pytest.mark.parametrize("path", jira_fixture_files(), ids=lambda p: p.name)
def test_every_jira_fixture_is_stored_or_ignored_with_reason(
    client: TestClient, worker: Worker, org: sa.Engine, path: object
) -> None:
    body = path.read_bytes()  # type: ignore[attr-defined]
    assert post_jira(client, body, delivery=f"jira-{path.name}").status_code == 202  # type: ignore[attr-defined]
    worker.drain()
    (raw,) = rows(org, "raw_events")
    assert raw["state"] in ("done", "ignored"), raw
    if raw["state"] == "ignored":
        assert raw["ignored_reason"]
    else:
        stored = sum(
            count(org, t, f"raw_event_id = {raw['id']}")
            for t in ("work_item_events", "work_item_field_changes", "defect_events")
        )
        assert stored >= 1


def test_jira_fixture_rows(client: TestClient, worker: Worker, org: sa.Engine) -> None:
    for name in (
        "cloud-status-todo-to-inprogress.json",
        "cloud-status-inprogress-to-done-resolution-done.json",
        "server-2013-bug-issue-created.json",
    ):
        assert post_jira(client, (JIRA_FIXTURES / name).read_bytes()).status_code == 202
    worker.drain()
    events = rows(org, "work_item_events", order="event_timestamp, event_type")
    kinds = [(e["ticket_id"], e["event_type"], e["from_status"], e["to_status"]) for e in events]
    assert ("BUG-15", "created", None, "Open") in kinds
    transitions = [k for k in kinds if k[1] == "transitioned"]
    assert ("TES-41", "transitioned", "To Do", "In Progress") in transitions
    assert any(k[1] == "completed" for k in kinds)
    stages = {(e["event_type"], e["to_status"]): e["to_stage"] for e in events}
    assert stages[("transitioned", "In Progress")] == "dev"
    # The TES project maps 1:1 to payments in the test organisation.
    assert all(e["delivery_stream_id"] is not None for e in events)
    (defect,) = rows(org, "defect_events")
    assert defect["ticket_id"] == "BUG-15" and defect["event_type"] == "logged"


def test_same_body_twice_and_redelivery_are_stored_once(
    client: TestClient, worker: Worker, org: sa.Engine
) -> None:
    body = (JIRA_FIXTURES / "cloud-status-todo-to-inprogress.json").read_bytes()
    # no delivery id: the body's SHA-256 identifies it
    assert post_jira(client, body).status_code == 202
    assert post_jira(client, body).status_code == 202
    # the same delivery id redelivered (Jira retries carry X-Atlassian-Webhook-Retry)
    assert post_jira(client, body, delivery="abc-1").status_code == 202
    assert (
        post_jira(client, body, delivery="abc-1", **{"X-Atlassian-Webhook-Retry": "1"}).status_code
        == 202
    )
    assert count(org, "raw_events") == 2  # the hash-identified one and abc-1
    worker.drain()
    assert count(org, "work_item_events") == 1  # both deliveries describe one transition
    dup = [r for r in rows(org, "raw_events") if r["outcome"] and r["outcome"]["duplicates"]]
    assert len(dup) == 1


def test_replaying_a_whole_batch_adds_nothing(
    client: TestClient, worker: Worker, org: sa.Engine
) -> None:
    def send_all(prefix: str) -> None:
        for kind, path in github_fixture_files():
            post_github(client, kind, path.read_bytes(), delivery=f"{prefix}-{path.name}")
        for path in jira_fixture_files():
            post_jira(client, path.read_bytes(), delivery=f"{prefix}-{path.name}")

    tables = (
        "work_item_events",
        "work_item_field_changes",
        "pr_events",
        "cicd_events",
        "defect_events",
        "deployment_records",
    )
    send_all("first")
    worker.drain()
    before = {t: count(org, t) for t in tables}
    assert before["pr_events"] >= 3 and before["work_item_events"] >= 5
    send_all("first")  # same delivery ids: the inbox keeps one of each
    send_all("replay")  # new delivery ids, same events: the event tables keep one of each
    worker.drain()
    assert {t: count(org, t) for t in tables} == before
    assert count(org, "raw_events", "state = 'dead'") == 0


def _no_rows(engine: sa.Engine) -> None:
    assert count(engine, "raw_events") == 0


def test_bad_signature_is_401_and_stores_nothing(client: TestClient, org: sa.Engine) -> None:
    body = compact({"action": "opened"})
    r = post_github(client, "pull_request", body, secret="wrong-secret")
    assert r.status_code == 401
    data = r.json()
    assert data["status"] == "error" and data["error"]["code"] == "invalid_signature"
    assert "X-Hub-Signature-256" in data["message"] and data["request_id"]
    assert r.headers["x-request-id"] == data["request_id"]
    r = post_jira(client, body, secret="wrong-secret")
    assert r.status_code == 401 and "X-Hub-Signature" in r.json()["message"]
    _no_rows(org)


def test_missing_signature_with_a_secret_set_is_401(client: TestClient, org: sa.Engine) -> None:
    body = compact({"webhookEvent": "jira:issue_updated"})
    r = post_jira(client, body, secret=None)
    assert r.status_code == 401 and "missing X-Hub-Signature" in r.json()["message"]
    r = post_github(client, "ping", body, secret=None)
    assert r.status_code == 401 and "missing X-Hub-Signature-256" in r.json()["message"]
    r = client.post(
        "/api/v1/webhooks/jira", content=body, headers={"X-Hub-Signature": "sha1=" + "0" * 40}
    )
    assert r.status_code == 401 and "sha256=" in r.json()["message"]
    _no_rows(org)


def test_atlassian_test_vector() -> None:
    """The official vector from Atlassian's "Secure admin webhooks" documentation."""
    from ingest_service.security import sign, verify_signature

    secret, body = b"It's a Secret to Everybody", b"Hello World!"
    expected = "sha256=a4771c39fbe90f317c7824e83ddef3caae9cb3d976c214ace1f2937e133263c9"
    assert sign(secret, body) == expected
    assert signature(secret.decode(), body) == expected
    verify_signature(secret, expected, body, header_name="X-Hub-Signature")
    verify_signature(
        secret, expected.upper().replace("SHA256", "sha256"), body, header_name="X-Hub-Signature"
    )


def test_signature_off_without_secret_file(settings, org: sa.Engine) -> None:  # type: ignore[no-untyped-def]
    from ingest_service.app import create_app

    (settings.secrets_dir / "jira_webhook_secret").unlink()
    with TestClient(create_app(settings)) as c:
        body = (JIRA_FIXTURES / "cloud-assignee-set.json").read_bytes()
        assert post_jira(c, body, secret=None).status_code == 202
        # GitHub still has its secret: still enforced
        assert post_github(c, "ping", b"{}", secret=None).status_code == 401
    assert count(org, "raw_events") == 1


@pytest.mark.parametrize(
    ("body", "status", "problem"),
    [
        (b"{not json", 400, "not valid JSON"),
        (b"", 400, "empty"),
        (b"[1, 2]", 400, "JSON object"),
        (b'"text"', 400, "JSON object"),
    ],
)
def test_malformed_bodies(
    client: TestClient, org: sa.Engine, body: bytes, status: int, problem: str
) -> None:
    for r in (post_github(client, "pull_request", body), post_jira(client, body)):
        assert r.status_code == status, r.text
        assert problem in r.json()["message"]
        assert r.json()["error"]["details"][0]["field"] == "(body)"
    _no_rows(org)


def test_github_event_header_required(client: TestClient, org: sa.Engine) -> None:
    body = b"{}"
    r = client.post(
        "/api/v1/webhooks/github",
        content=body,
        headers={"X-Hub-Signature-256": signature("gh-test-secret-7f3a", body)},
    )
    assert r.status_code == 400 and r.json()["error"]["details"][0]["field"] == "X-GitHub-Event"
    _no_rows(org)


def test_oversize_body_is_413(settings, org: sa.Engine) -> None:  # type: ignore[no-untyped-def]
    from ingest_service.app import create_app

    small = settings.model_copy(update={"max_body_bytes": 1024})
    with TestClient(create_app(small)) as c:
        big = compact({"webhookEvent": "jira:issue_updated", "pad": "x" * 2000})
        r = post_jira(c, big)
        assert r.status_code == 413 and r.json()["error"]["code"] == "payload_too_large"

        # a lying Content-Length is caught while streaming too
        def chunks():  # type: ignore[no-untyped-def]
            yield big[:500]
            yield big[500:]

        r = c.post(
            "/api/v1/webhooks/jira",
            content=chunks(),
            headers={"X-Hub-Signature": signature("jira-test-secret-91c2", big)},
        )
        assert r.status_code == 413
    _no_rows(org)


def test_default_body_limit_is_githubs_25_mb(settings) -> None:  # type: ignore[no-untyped-def]
    assert settings.max_body_bytes == 25 * 1024 * 1024


def test_inbox_row_is_exactly_what_was_received(client: TestClient, org: sa.Engine) -> None:
    """Both inbox writers (asyncio pool on Postgres, SQLAlchemy on SQLite) store the same
    row: the raw bytes, their digest, the kept headers, a pending state due now."""
    body = (GITHUB_FIXTURES / "ping" / "payload.json").read_bytes()
    before = datetime.now(UTC)
    r = post_github(client, "ping", body, delivery="d-exact", **{"User-Agent": "GitHub-Hookshot/x"})
    assert r.status_code == 202
    (raw,) = rows(org, "raw_events")
    assert bytes(raw["body"]) == body
    assert raw["body_sha256"] == hashlib.sha256(body).hexdigest()
    assert raw["source"] == "github" and raw["delivery_id"] == "d-exact"
    assert raw["event_kind"] == "ping" and raw["state"] == "pending" and raw["attempts"] == 0
    headers = raw["headers"] if isinstance(raw["headers"], dict) else json.loads(raw["headers"])
    assert headers["x-github-event"] == "ping" and headers["user-agent"] == "GitHub-Hookshot/x"
    assert "x-hub-signature-256" not in headers  # the signature is checked, not kept
    received = raw["received_at"]
    received = received if isinstance(received, datetime) else datetime.fromisoformat(received)
    received = received if received.tzinfo else received.replace(tzinfo=UTC)
    assert before - timedelta(seconds=1) <= received <= datetime.now(UTC)
    # the same delivery again is accepted and adds nothing
    assert post_github(client, "ping", body, delivery="d-exact").status_code == 202
    assert count(org, "raw_events") == 1
