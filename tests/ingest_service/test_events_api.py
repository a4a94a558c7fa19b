"""POST /api/v1/events/{deployment,incident,pulse}: keys, scope, validation, processing."""

from __future__ import annotations

import copy
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from dpp_lib.store.api_keys import create_key, revoke_key
from dpp_lib.store.config_tables import load_lookups
from dpp_lib.store.schema import api_keys
from ingest_service.worker import Worker
from tests.support import GITHUB_FIXTURES, compact, count, post_github, rows

DEPLOY = {
    "repo_full_name": "acme-core-api/payments-service",
    "environment": "production",
    "status": "success",
    "deployed_at": "2026-11-02T14:30:00Z",
    "commit_sha": "abc123",
    "pipeline_id": "run-1",
    "trigger_type": "push",
    "pr_number": 42,
}
INCIDENT = {
    "event_type": "alarm_triggered",
    "incident_id": "INC-1",
    "service_name": "ecs:payments-service",
    "occurred_at": "2026-11-02T15:00:00Z",
    "severity": "P2",
    "description": "Error rate spike on /checkout",
}
PULSE = {
    "delivery_stream": "payments",
    "survey_period": "2026-11",
    "respondent_id": "alice.example@acme.test",
    "pace_score": 4,
    "tooling_score": 3,
    "clarity_score": 5,
    "free_text": "ok",
    "submitted_at": "2026-11-03T09:00:00Z",
}


def _key(engine: sa.Engine, **kw: Any) -> str:
    kw.setdefault("permissions", ["events:write"])
    with engine.begin() as conn:
        _, plaintext = create_key(conn, name=kw.pop("name", "test"), **kw)
    return plaintext


@pytest.fixture
def key(org: sa.Engine) -> str:
    return _key(org)


def post(client: TestClient, kind: str, body: Any, key: str | None, **headers: str) -> Any:
    h = {"Authorization": f"Bearer {key}"} if key else {}
    h.update(headers)
    return client.post(f"/api/v1/events/{kind}", json=body, headers=h)


def test_deployment_accepted_and_processed(
    client: TestClient, worker: Worker, org: sa.Engine, key: str
) -> None:
    r = post(client, "deployment", DEPLOY, key)
    assert r.status_code == 202 and r.json() == {"ok": True}
    worker.drain()
    (event,) = rows(org, "cicd_events")
    assert event["event_type"] == "deploy_completed" and event["status"] == "success"
    assert event["environment"] == "production" and event["linked_pr_number"] == 42
    assert event["tech_stream_id"] is not None and event["repo_id"] is not None
    (record,) = rows(org, "deployment_records")
    assert record["status"] == "success" and record["pipeline_run_id"] == "run-1"
    # the same run reported rolled back later: the record follows, the event log keeps both
    later = DEPLOY | {"status": "rolled_back", "deployed_at": "2026-11-02T16:00:00Z"}
    assert post(client, "deployment", later, key).status_code == 202
    worker.drain()
    assert count(org, "cicd_events") == 2
    (record,) = rows(org, "deployment_records")
    assert record["status"] == "rolled_back"
    assert record["rollback_at"] == datetime(2026, 11, 2, 16, tzinfo=UTC) or str(
        record["rollback_at"]
    ).startswith("2026-11-02 16:00")


def test_staging_deploy_has_no_deployment_record(
    client: TestClient, worker: Worker, org: sa.Engine, key: str
) -> None:
    post(client, "deployment", DEPLOY | {"environment": "staging"}, key)
    worker.drain()
    assert count(org, "cicd_events") == 1 and count(org, "deployment_records") == 0


def test_non_deployable_repository_is_accepted_and_ignored(
    client: TestClient, worker: Worker, org: sa.Engine, key: str
) -> None:
    body = DEPLOY | {"repo_full_name": "acme-frontend/ui-components"}
    assert post(client, "deployment", body, key).status_code == 202
    worker.drain()
    (raw,) = rows(org, "raw_events")
    assert raw["state"] == "ignored" and "not deployable" in raw["ignored_reason"]
    assert count(org, "cicd_events") == 0


def test_unknown_repository_and_service_are_422(
    client: TestClient, org: sa.Engine, key: str
) -> None:
    r = post(client, "deployment", DEPLOY | {"repo_full_name": "acme/nope"}, key)
    assert r.status_code == 422 and r.json()["error"]["details"][0]["field"] == "repo_full_name"
    assert "acme/nope" in r.json()["message"]
    r = post(client, "incident", INCIDENT | {"service_name": "lambda:ghost"}, key)
    assert r.status_code == 422 and "lambda:ghost" in r.json()["message"]
    r = post(client, "pulse", PULSE | {"delivery_stream": "ghosts"}, key)
    assert r.status_code == 422 and r.json()["error"]["details"][0]["field"] == "delivery_stream"
    assert count(org, "raw_events") == 0


@pytest.mark.parametrize(
    ("kind", "body", "status", "field"),
    [
        ("deployment", {k: v for k, v in DEPLOY.items() if k != "environment"}, 400, "environment"),
        ("deployment", {k: v for k, v in DEPLOY.items() if k != "deployed_at"}, 400, "deployed_at"),
        ("deployment", DEPLOY | {"status": "exploded"}, 422, "status"),
        ("deployment", DEPLOY | {"deployed_at": "yesterday"}, 422, "deployed_at"),
        ("deployment", DEPLOY | {"deployed_at": "2026-11-02T14:30:00"}, 422, "deployed_at"),
        ("deployment", DEPLOY | {"pr_number": "42"}, 422, "pr_number"),
        ("deployment", DEPLOY | {"trigger_type": "cosmic-ray"}, 422, "trigger_type"),
        ("incident", INCIDENT | {"event_type": "alarm_snoozed"}, 422, "event_type"),
        ("incident", INCIDENT | {"severity": "P9"}, 422, "severity"),
        ("incident", {k: v for k, v in INCIDENT.items() if k != "incident_id"}, 400, "incident_id"),
        ("pulse", PULSE | {"pace_score": 6}, 422, "pace_score"),
        ("pulse", PULSE | {"clarity_score": 0}, 422, "clarity_score"),
        ("pulse", PULSE | {"tooling_score": 3.5}, 422, "tooling_score"),
        ("pulse", PULSE | {"survey_period": "2026-13"}, 422, "survey_period"),
        ("pulse", {k: v for k, v in PULSE.items() if k != "respondent_id"}, 400, "respondent_id"),
    ],
)
def test_validation_names_the_field(
    client: TestClient,
    org: sa.Engine,
    key: str,
    kind: str,
    body: dict[str, Any],
    status: int,
    field: str,
) -> None:
    r = post(client, kind, body, key)
    assert r.status_code == status, r.text
    data = r.json()
    assert data["status"] == "error" and field in data["message"]
    assert field in [d["field"] for d in data["error"]["details"]]
    assert count(org, "raw_events") == 0


def test_malformed_json_is_400(client: TestClient, org: sa.Engine, key: str) -> None:
    r = client.post(
        "/api/v1/events/deployment", content=b"{oops", headers={"Authorization": f"Bearer {key}"}
    )
    assert r.status_code == 400 and "not valid JSON" in r.json()["message"]
    assert count(org, "raw_events") == 0


def test_key_failures(client: TestClient, org: sa.Engine) -> None:
    good = _key(org)
    assert post(client, "deployment", DEPLOY, None).status_code == 401
    r = post(client, "deployment", DEPLOY, "dpp_not-a-real-key")
    assert r.status_code == 401 and r.json()["message"] == "unknown API key"
    revoked = _key(org, name="revoked")
    with org.begin() as conn:
        key_id = conn.execute(
            sa.select(api_keys.c.key_id).where(api_keys.c.display_name == "revoked")
        ).scalar_one()
        revoke_key(conn, str(key_id))
    r = post(client, "deployment", DEPLOY, revoked)
    assert r.status_code == 401 and "revoked" in r.json()["message"]
    expired = _key(org, name="expired", expires_days=1)
    with org.begin() as conn:
        conn.execute(
            api_keys.update()
            .where(api_keys.c.display_name == "expired")
            .values(expires_at=datetime.now(UTC) - timedelta(minutes=1))
        )
    r = post(client, "deployment", DEPLOY, expired)
    assert r.status_code == 401 and "expired" in r.json()["message"]
    reader = _key(org, name="reader", permissions=["metrics:read"])
    r = post(client, "deployment", DEPLOY, reader)
    assert r.status_code == 403 and "events:write" in r.json()["message"]
    assert count(org, "raw_events") == 0
    assert post(client, "deployment", DEPLOY, good).status_code == 202
    assert count(org, "raw_events") == 1
    (used,) = rows(org, "api_keys", "display_name = 'test'")
    assert used["last_used_at"] is not None


def test_stream_scope(client: TestClient, org: sa.Engine) -> None:
    with org.connect() as conn:
        lookups = load_lookups(conn)
    core, auth = lookups.tech_stream_id("core-api"), lookups.tech_stream_id("auth")
    payments = lookups.delivery_stream("payments")
    core_key = _key(org, tech_streams=[core])
    auth_key = _key(org, tech_streams=[auth])
    pay_key = _key(org, delivery_streams=[payments])
    assert post(client, "deployment", DEPLOY, core_key).status_code == 202
    assert post(client, "incident", INCIDENT, core_key).status_code == 202
    r = post(client, "deployment", DEPLOY | {"pipeline_id": "x"}, auth_key)
    assert r.status_code == 403 and "scope" in r.json()["message"]
    assert post(client, "incident", INCIDENT, auth_key).status_code == 403
    assert post(client, "pulse", PULSE, core_key).status_code == 403
    assert post(client, "pulse", PULSE, pay_key).status_code == 202
    assert post(client, "deployment", DEPLOY | {"pipeline_id": "y"}, pay_key).status_code == 403
    assert count(org, "raw_events") == 3


def test_idempotency_key_and_body_hash(
    client: TestClient, worker: Worker, org: sa.Engine, key: str
) -> None:
    assert post(client, "deployment", DEPLOY, key).status_code == 202
    assert post(client, "deployment", DEPLOY, key).status_code == 202
    assert post(client, "deployment", DEPLOY, key, **{"X-Idempotency-Key": "k1"}).status_code == 202
    assert post(client, "deployment", DEPLOY, key, **{"X-Idempotency-Key": "k1"}).status_code == 202
    assert count(org, "raw_events") == 2
    worker.drain()
    assert count(org, "cicd_events") == 1 and count(org, "deployment_records") == 1


def test_incident_time_to_restore_any_arrival_order(
    client: TestClient, worker: Worker, org: sa.Engine, key: str
) -> None:
    resolved = INCIDENT | {"event_type": "alarm_resolved", "occurred_at": "2026-11-02T15:45:29Z"}
    assert post(client, "incident", resolved, key).status_code == 202  # the resolve comes first
    worker.drain()
    (row,) = rows(org, "incident_events")
    assert row["time_to_restore_min"] is None
    assert post(client, "incident", INCIDENT, key).status_code == 202
    worker.drain()
    done = rows(org, "incident_events", "event_type = 'alarm_resolved'")
    assert done[0]["time_to_restore_min"] == 45  # 45 min 29 s → 45
    opened = rows(org, "incident_events", "event_type = 'alarm_triggered'")
    assert opened[0]["severity"] == "high" and opened[0]["tech_stream_id"] is not None


def test_many_incidents_resolved_in_one_batch(
    client: TestClient,
    worker: Worker,
    org: sa.Engine,
    key: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Time to restore for several incidents of one batch, written in one statement; the
    batch must not fall back to row-by-row processing (that hid a bug in the demo load)."""
    for i, minutes in enumerate((5, 59, 61)):
        opened = INCIDENT | {"incident_id": f"INC-{i}"}
        resolved = opened | {
            "event_type": "incident_resolved",
            "occurred_at": iso(datetime(2026, 11, 2, 15, tzinfo=UTC) + timedelta(minutes=minutes)),
        }
        assert post(client, "incident", opened, key).status_code == 202
        assert post(client, "incident", resolved, key).status_code == 202
    with caplog.at_level("WARNING"):
        assert worker.run_batch() == 6
    assert "failed as a whole" not in caplog.text
    got = {
        r["incident_id"]: r["time_to_restore_min"]
        for r in rows(org, "incident_events", "event_type = 'incident_resolved'")
    }
    assert got == {"INC-0": 5, "INC-1": 59, "INC-2": 61}


def test_pulse_is_hashed_on_arrival_and_upserted(
    client: TestClient, worker: Worker, org: sa.Engine, key: str
) -> None:
    assert post(client, "pulse", PULSE, key).status_code == 202
    # the inbox never holds the respondent's identifier
    (raw,) = rows(org, "raw_events")
    assert b"alice.example" not in bytes(raw["body"])
    later = PULSE | {"pace_score": 2, "submitted_at": "2026-11-05T09:00:00Z"}
    earlier = PULSE | {"pace_score": 5, "submitted_at": "2026-11-01T09:00:00Z"}
    assert post(client, "pulse", later, key).status_code == 202
    worker.drain()
    assert post(client, "pulse", earlier, key).status_code == 202  # arrives last, is older
    worker.drain()
    (resp,) = rows(org, "pulse_responses")
    assert resp["pace_score"] == 2 and len(resp["respondent_hash"]) == 64
    assert resp["delivery_stream_id"] is not None
    other = PULSE | {"respondent_id": "bob@acme.test"}
    post(client, "pulse", other, key)
    worker.drain()
    assert count(org, "pulse_responses") == 2


def test_request_id_and_api_version_on_every_response(client: TestClient, org: sa.Engine) -> None:
    r = post(client, "deployment", DEPLOY, None)
    assert r.headers["x-api-version"] == "1.0"
    assert r.json()["request_id"] == r.headers["x-request-id"]
    assert client.get("/health").headers["x-request-id"]
    mine = uuid.uuid4().hex
    assert client.get("/health", headers={"X-Request-ID": mine}).headers["x-request-id"] == mine


def test_deploys_of_one_batch_find_their_prs_by_number_merge_or_head_commit(
    client: TestClient, worker: Worker, org: sa.Engine, key: str
) -> None:
    """The set-based lookup of a batch's deploys (pr_lookup.PrIndex) resolves each way a
    deploy can name a PR, and a commit no PR has leaves the record unlinked."""
    template = orjson.loads((GITHUB_FIXTURES / "pull_request" / "opened.payload.json").read_bytes())
    opened_at = datetime(2026, 11, 2, 9, tzinfo=UTC)
    heads = {}
    for number in (101, 102, 103):
        body = copy.deepcopy(template)
        pr = body["pull_request"]
        heads[number] = f"{number:040x}"
        pr.update(number=number, title=f"PAY-{number} change", created_at=iso(opened_at))
        pr["head"].update(sha=heads[number], ref=f"feature/PAY-{number}")
        body["number"] = number
        assert post_github(client, "pull_request", compact(body)).status_code == 202
    merged = copy.deepcopy(template)
    merged["action"] = "closed"
    merged["number"] = 102
    merged["pull_request"].update(
        number=102,
        title="PAY-102 change",
        state="closed",
        merged=True,
        merge_commit_sha="m" * 40,
        created_at=iso(opened_at),
        closed_at=iso(opened_at + timedelta(hours=2)),
        merged_at=iso(opened_at + timedelta(hours=2)),
    )
    merged["pull_request"]["head"].update(sha=heads[102], ref="feature/PAY-102")
    assert post_github(client, "pull_request", compact(merged)).status_code == 202
    worker.drain()

    deployed_at = opened_at + timedelta(hours=6)
    base = DEPLOY | {"repo_full_name": "Codertocat/Hello-World", "deployed_at": iso(deployed_at)}
    base.pop("pr_number")
    deploys = {
        "by-head": base | {"commit_sha": heads[101]},
        "by-merge": base | {"commit_sha": "m" * 40},
        "by-number": base | {"commit_sha": "c" * 40, "pr_number": 103},
        "unknown": base | {"commit_sha": "d" * 40},
    }
    for run, body in deploys.items():
        assert post(client, "deployment", body | {"pipeline_id": run}, key).status_code == 202
    assert worker.run_batch() == 4  # one batch: the lookups are per batch, not per row
    got = {r["pipeline_run_id"]: r for r in rows(org, "deployment_records")}
    assert {run: got[run]["linked_pr_number"] for run in deploys} == {
        "by-head": 101,
        "by-merge": 102,
        "by-number": 103,
        "unknown": None,
    }
    assert {run: got[run]["linked_ticket_id"] for run in deploys} == {
        "by-head": "PAY-101",
        "by-merge": "PAY-102",
        "by-number": "PAY-103",
        "unknown": None,
    }
    assert got["by-merge"]["lead_time_hrs"] == 6.0 and got["unknown"]["lead_time_hrs"] is None
    # CI/CD events got the ticket of the PR too (spec §4.3.4)
    linked = {r["pipeline_run_id"]: r["linked_ticket_id"] for r in rows(org, "cicd_events")}
    assert linked["by-head"] == "PAY-101" and linked["unknown"] is None


def iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.mark.parametrize(("minutes", "caused"), [(59, True), (61, False)])
def test_deploy_record_stores_the_incident_it_caused(
    client: TestClient, worker: Worker, org: sa.Engine, key: str, minutes: int, caused: bool
) -> None:
    """DESIGN §5: an incident opened within the correlation window (60 min) after a
    production deploy of its tech stream marks that deploy (stored on the record)."""
    assert post(client, "deployment", DEPLOY, key).status_code == 202
    worker.drain()
    opened = datetime(2026, 11, 2, 14, 30, tzinfo=UTC) + timedelta(minutes=minutes)
    assert post(client, "incident", INCIDENT | {"occurred_at": iso(opened)}, key).status_code == 202
    worker.drain()
    (record,) = rows(org, "deployment_records")
    assert bool(record["caused_incident"]) is caused
    assert record["incident_id"] == ("INC-1" if caused else None)


def test_deploy_naming_no_pr_stores_the_latest_pr_it_shipped(
    client: TestClient, worker: Worker, org: sa.Engine, key: str
) -> None:
    template = orjson.loads((GITHUB_FIXTURES / "pull_request" / "closed.payload.json").read_bytes())
    opening = orjson.loads((GITHUB_FIXTURES / "pull_request" / "opened.payload.json").read_bytes())
    opened_at = datetime(2026, 11, 2, 9, tzinfo=UTC)
    for number, merged_hours in ((201, 1), (202, 3)):
        first = copy.deepcopy(opening)
        first["number"] = number
        first["pull_request"].update(
            number=number, title=f"PAY-{number} change", created_at=iso(opened_at)
        )
        first["pull_request"]["head"].update(ref=f"feature/PAY-{number}", sha=f"{number + 1:040x}")
        assert post_github(client, "pull_request", compact(first)).status_code == 202
        body = copy.deepcopy(template)
        body["number"] = number
        body["pull_request"].update(
            number=number,
            title=f"PAY-{number} change",
            merged=True,
            created_at=iso(opened_at),
            merged_at=iso(opened_at + timedelta(hours=merged_hours)),
            closed_at=iso(opened_at + timedelta(hours=merged_hours)),
            merge_commit_sha=f"{number:040x}",
        )
        body["pull_request"]["head"].update(ref=f"feature/PAY-{number}", sha=f"{number + 1:040x}")
        assert post_github(client, "pull_request", compact(body)).status_code == 202
    deploy = DEPLOY | {
        "repo_full_name": "Codertocat/Hello-World",
        "deployed_at": iso(opened_at + timedelta(hours=5)),
        "commit_sha": "f" * 40,
    }
    deploy.pop("pr_number")
    assert post(client, "deployment", deploy, key).status_code == 202
    worker.drain()
    (record,) = rows(org, "deployment_records")
    # both PRs were merged before the deploy: it shipped both, the latest-merged names it
    assert record["linked_pr_number"] == 202 and record["linked_ticket_id"] == "PAY-202"
    assert float(record["lead_time_hrs"]) == 5.0
