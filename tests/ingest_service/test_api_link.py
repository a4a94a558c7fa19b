"""``POST /api/v1/pr-events/{id}/link-ticket`` through the API: the manual link validates the
key, re-enriches the PR, refreshes the linkage figures and is refused outside the key's scope
(API reference "PR Link Endpoint", spec §5.3.4)."""

from __future__ import annotations

import json

import sqlalchemy as sa
from fastapi.testclient import TestClient

from dpp_lib.settings import Settings
from dpp_lib.store.api_keys import create_key
from dpp_lib.store.config_tables import load_lookups
from ingest_service.app import create_app
from ingest_service.worker import Worker
from tests.support import GITHUB_FIXTURES, JIRA_FIXTURES, compact, post_github, post_jira, rows


def test_link_a_pr_to_a_ticket_through_the_api(
    settings: Settings, org: sa.Engine, worker: Worker
) -> None:
    fast = settings.model_copy(update={"api_version_poll_seconds": 0.0})
    with org.begin() as conn:
        lk = load_lookups(conn)
        admin = create_key(conn, name="admin", permissions=["admin"])[1]
        reader = create_key(conn, name="reader", permissions=["metrics:read"])[1]
        other = [t for t in lk.tech_streams if t.github_org != "Codertocat"]
        elsewhere = create_key(
            conn, name="scoped", permissions=["admin"], tech_streams=[other[0].stream_id]
        )[1]
    with TestClient(create_app(fast)) as client:
        pr = json.loads((GITHUB_FIXTURES / "pull_request" / "opened.payload.json").read_bytes())
        pr["pull_request"]["head"]["ref"] = "no-ticket-here"
        pr["pull_request"]["title"] = "Tidy up"
        pr["pull_request"]["body"] = None
        assert post_github(client, "pull_request", compact(pr)).status_code == 202
        ticket = json.loads((JIRA_FIXTURES / "cloud-story-issue-created.json").read_bytes())
        ticket["issue"]["key"] = "PAY-4711"
        ticket["issue"]["fields"]["project"]["key"] = "PAY"
        assert post_jira(client, compact(ticket)).status_code == 202
        worker.drain()
        (event,) = rows(org, "pr_events")
        assert event["linked_ticket_id"] is None
        path = f"/api/v1/pr-events/{event['event_id']}/link-ticket"

        def post(token: str, body: object, url: str = path) -> tuple[int, dict]:
            answer = client.post(url, json=body, headers={"Authorization": f"Bearer {token}"})
            return answer.status_code, answer.json()

        first = client.get(
            "/api/v1/admin/data-quality", headers={"Authorization": f"Bearer {admin}"}
        )
        assert first.status_code == 200, first.text
        before = first.json()["data"]["sampleSizes"]
        assert post(reader, {"ticket_id": "PAY-4711"})[0] == 403  # metrics:read only
        assert post(elsewhere, {"ticket_id": "PAY-4711"})[0] == 403  # another tech stream
        status, body = post(admin, {"ticket_id": "pay-4711"})
        assert status == 422 and "PAY-4711" in body["message"]  # the canonical form is hinted
        status, body = post(admin, {"ticket_id": "NOPE-1"})
        assert status == 422 and "NOPE" in body["message"]
        status, body = post(admin, {})
        assert status == 400 and body["error"]["details"][0]["field"] == "ticket_id"
        missing = path.replace(str(event["event_id"]), "00000000-0000-0000-0000-000000000000")
        assert post(admin, {"ticket_id": "PAY-4711"}, missing)[0] == 404
        assert post(admin, {"ticket_id": "PAY-4711"}, "/api/v1/pr-events/42/link-ticket")[0] == 404

        status, body = post(admin, {"ticket_id": "PAY-4711"})
        assert status == 200 and body["ok"] is True, body
        assert body["data"]["ticket_id"] == "PAY-4711" and body["data"]["events_updated"] == 1
        assert body["data"]["delivery_stream_id"] == str(lk.delivery_stream("payments"))
        (event,) = rows(org, "pr_events")
        assert (event["linked_ticket_id"], event["link_method"]) == ("PAY-4711", "manual")
        (cycle,) = rows(org, "pr_cycles")
        assert cycle["linked_ticket_id"] == "PAY-4711"
        status, body = post(admin, {"ticket_id": "PAY-4711"})  # again: nothing changes
        assert status == 200 and body["data"]["events_updated"] == 0
        after = client.get(
            "/api/v1/admin/data-quality", headers={"Authorization": f"Bearer {admin}"}
        )
        assert after.headers["x-cache"] == "MISS"  # the link invalidated the cached answer
        assert after.json()["data"]["sampleSizes"] == before
