"""The worker: exactly-once under a kill -9, retries with backoff, dead letters, deferrals."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from fastapi.testclient import TestClient

from dpp_lib.settings import Settings
from dpp_lib.store.db import make_engine
from ingest_service.inbox import SqlAlchemyInbox
from ingest_service.records import InboxRecord
from ingest_service.worker import Worker, inbox_status, retry_dead
from tests.support import (
    GITHUB_FIXTURES,
    JIRA_FIXTURES,
    compact,
    count,
    post_github,
    post_jira,
    rows,
)

TRANSITION = json.loads((JIRA_FIXTURES / "cloud-status-todo-to-inprogress.json").read_bytes())


def _transition(i: int) -> bytes:
    payload = json.loads(json.dumps(TRANSITION))
    payload["timestamp"] = 1_700_000_000_000 + i * 1000
    payload["issue"]["key"] = f"TES-{1000 + i}"
    return compact(payload)


def _fill_inbox(settings: Settings, n: int) -> None:
    engine = make_engine(settings.resolved_database_url())
    inbox = SqlAlchemyInbox(engine)
    for i in range(n):
        inbox.append_sync(
            InboxRecord("jira", f"bulk-{i}", "jira:issue_updated", {}, _transition(i))
        )
    engine.dispose()


def _env(settings: Settings) -> dict[str, str]:
    return os.environ | {
        "DPP_DATABASE_URL": settings.resolved_database_url(),
        "DPP_SECRETS_DIR": str(settings.secrets_dir),
        "DPP_ENVIRONMENT": "test",
        "DPP_WORKER_BATCH_SIZE": "40",
    }


def test_kill_mid_batch_then_restart_processes_everything_once(
    settings: Settings, org: sa.Engine
) -> None:
    n = 4000
    _fill_inbox(settings, n)
    cmd = [sys.executable, "-m", "dpp_lib.cli", "worker"]
    proc = subprocess.Popen(
        cmd, env=_env(settings), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    # Poll through a plain engine: the platform's SQLite engine takes the write lock at BEGIN
    # (readers would queue behind the worker and only see the end); Postgres never blocks.
    url = settings.resolved_database_url()
    watcher = sa.create_engine(url) if url.startswith("sqlite") else org
    deadline = time.monotonic() + 60
    killed_at = None
    while time.monotonic() < deadline:
        done = count(watcher, "raw_events", "state <> 'pending'")
        if done >= 80:
            proc.send_signal(signal.SIGKILL)  # no chance to finish its transaction
            killed_at = done
            break
        time.sleep(0.02)
    proc.wait(timeout=10)
    assert killed_at is not None, "the worker made no progress"
    assert count(org, "raw_events", "state = 'pending'") > 0, "killed too late to prove anything"
    result = subprocess.run(
        [*cmd, "--once"], env=_env(settings), capture_output=True, text=True, timeout=180
    )
    assert result.returncode == 0, result.stderr
    assert count(org, "raw_events", "state = 'done'") == n
    assert count(org, "work_item_events") == n  # one transition per delivery, none twice
    with org.connect() as conn:
        per_raw = conn.exec_driver_sql(
            "select raw_event_id, count(*) from work_item_events group by raw_event_id "
            "having count(*) > 1"
        ).fetchall()
    assert per_raw == []
    duplicates = sum(r["outcome"]["duplicates"] for r in rows(org, "raw_events"))
    assert duplicates == 0  # no delivery was processed by both runs


def test_failures_retry_with_backoff_then_dead_letter(settings: Settings, org: sa.Engine) -> None:
    broken = settings.model_copy(update={"worker_max_attempts": 3, "worker_backoff_seconds": 0.0})
    inbox = SqlAlchemyInbox(org)
    # valid JSON accepted by the endpoint, but a corrupt shape the normaliser refuses
    bad = compact(
        {
            "webhookEvent": "jira:issue_updated",
            "timestamp": 1700000000000,
            "issue": {"key": "TES-1", "fields": "corrupt"},
            "changelog": {"items": "not-a-list"},
        }
    )
    inbox.append_sync(InboxRecord("jira", "bad-1", "jira:issue_updated", {}, bad))
    inbox.append_sync(InboxRecord("jira", "good-1", "jira:issue_updated", {}, _transition(1)))
    worker = Worker.from_settings(broken, org)
    worker.run_batch()
    bad_row = rows(org, "raw_events", "delivery_id = 'bad-1'")[0]
    assert bad_row["state"] == "pending" and bad_row["attempts"] == 1 and bad_row["last_error"]
    assert rows(org, "raw_events", "delivery_id = 'good-1'")[0]["state"] == "done"
    worker.run_batch()
    worker.run_batch()
    bad_row = rows(org, "raw_events", "delivery_id = 'bad-1'")[0]
    assert bad_row["state"] == "dead" and bad_row["attempts"] == 3
    with org.connect() as conn:
        status = inbox_status(conn)
    assert status["dead"] == 1 and status["done"] == 1
    with org.begin() as conn:
        assert retry_dead(conn) == 1
    assert rows(org, "raw_events", "delivery_id = 'bad-1'")[0]["state"] == "pending"


def test_backoff_delays_the_next_attempt(settings: Settings, org: sa.Engine) -> None:
    slow = settings.model_copy(update={"worker_backoff_seconds": 30.0})
    bad = compact({"webhookEvent": "jira:issue_updated", "issue": {"key": "X-1", "fields": 5}})
    SqlAlchemyInbox(org).append_sync(InboxRecord("jira", "bad", "jira:issue_updated", {}, bad))
    worker = Worker.from_settings(slow, org)
    assert worker.run_batch() == 1
    assert worker.run_batch() == 0  # not due for 30 s
    (row,) = rows(org, "raw_events")
    due = row["next_attempt_at"]
    due = due if isinstance(due, datetime) else datetime.fromisoformat(str(due))
    due = due if due.tzinfo else due.replace(tzinfo=UTC)
    assert due > datetime.now(UTC) + timedelta(seconds=20)


def test_pr_before_its_ticket_gets_the_stream_later(
    client: TestClient, worker: Worker, org: sa.Engine
) -> None:
    """Spec §5.3.6: the PR arrives first; the ticket's events fill its delivery stream in."""
    pr = json.loads((GITHUB_FIXTURES / "pull_request" / "opened.payload.json").read_bytes())
    pr["pull_request"]["head"]["ref"] = "feature/PAY-777-retry-logic"
    assert post_github(client, "pull_request", compact(pr)).status_code == 202
    worker.drain()
    (event,) = rows(org, "pr_events")
    assert event["linked_ticket_id"] == "PAY-777" and event["link_method"] == "branch"
    assert event["delivery_stream_id"] is None
    assert count(org, "deferred_enrichments", "state = 'pending'") == 1
    created = json.loads((JIRA_FIXTURES / "cloud-story-issue-created.json").read_bytes())
    created["issue"]["key"] = "PAY-777"
    created["issue"]["fields"]["project"]["key"] = "PAY"
    assert post_jira(client, compact(created)).status_code == 202
    worker.drain()
    (event,) = rows(org, "pr_events")
    assert event["delivery_stream_id"] is not None
    assert count(org, "deferred_enrichments", "state = 'resolved'") == 1


def test_unknown_repository_of_a_known_org_is_registered(
    client: TestClient, worker: Worker, org: sa.Engine
) -> None:
    pr = json.loads((GITHUB_FIXTURES / "pull_request" / "opened.payload.json").read_bytes())
    pr["repository"]["name"] = "brand-new"
    pr["repository"]["full_name"] = "Codertocat/brand-new"
    post_github(client, "pull_request", compact(pr))
    worker.drain()
    (repo,) = rows(org, "repositories", "github_repo_name = 'brand-new'")
    assert repo["origin"] == "discovered"
    assert rows(org, "pr_events")[0]["repo_id"] == repo["repo_id"]


def test_events_of_unknown_orgs_are_kept_with_nulls(
    client: TestClient, worker: Worker, org: sa.Engine
) -> None:
    pr = json.loads((GITHUB_FIXTURES / "pull_request" / "opened.payload.json").read_bytes())
    pr["installation"]["id"] = 424242
    pr["repository"]["owner"]["login"] = "stranger-org"
    pr["repository"]["full_name"] = "stranger-org/thing"
    for _ in range(2):
        post_github(client, "pull_request", compact(pr))
    worker.drain()
    (event,) = rows(org, "pr_events")  # deduplicated by name although repo_id is NULL
    assert event["tech_stream_id"] is None and event["repo_id"] is None
    raw = rows(org, "raw_events", "state = 'done'")[0]
    assert "unknown_tech_stream" in raw["outcome"]["problems"]
