"""Manual PR → ticket links: validation, re-enrichment of everything derived from the PR,
idempotence, deferrals and the audit log."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from dpp_lib.errors import NotFound
from dpp_lib.ingest.lookups import OrgLookups
from dpp_lib.jobs.deploy_links import refresh_deploy_links
from dpp_lib.projections.deployments import refresh_deployment_records
from dpp_lib.projections.pull_requests import refresh_pr_cycles
from dpp_lib.store import data_versions
from dpp_lib.store.config_tables import load_lookups
from dpp_lib.store.pr_links import InvalidTicketKey, PrEventNotFound, link_ticket
from dpp_lib.store.schema import tech_streams
from dpp_lib.store.write import insert_events
from tests.support import rows

NOW = datetime(2026, 11, 11, 14, 0, tzinfo=UTC)
REPO = "acme-core-api/payments-service"


def t(day: int, hour: int = 9) -> datetime:
    return datetime(2026, 11, day, hour, tzinfo=UTC)


class Org:
    """The test organisation with two merged PRs of payments-service that name no ticket:
    #101, shipped by deploy run A that names its merge commit, and #102, shipped later by
    run B by the time rule; ticket PAY-900 is known (payments), PAY-901 is not."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        self.lk = self.lookups()
        repo = self.lk.repository(REPO)
        assert repo is not None
        self.repo_id, self.tech = repo.repo_id, repo.tech_stream_id
        self.payments = self.lk.delivery_stream("payments")
        self.event_ids = {101: uuid.uuid4(), 102: uuid.uuid4()}
        with engine.begin() as conn:
            insert_events(
                conn,
                "pr_events",
                [
                    self._pr(101, "opened", t(2), event_id=self.event_ids[101]),
                    self._pr(101, "merged", t(3), merge_commit_sha="a" * 40),
                    self._pr(102, "opened", t(3), event_id=self.event_ids[102]),
                    self._pr(102, "merged", t(5)),
                ],
            )
            insert_events(
                conn,
                "work_item_events",
                [
                    {
                        "event_id": uuid.uuid4(),
                        "source": "jira",
                        "event_type": "created",
                        "event_timestamp": t(1),
                        "ticket_id": "PAY-900",
                        "delivery_stream_id": self.payments,
                    }
                ],
            )
            insert_events(
                conn,
                "cicd_events",
                [
                    self._deploy("A", t(4), commit_sha="a" * 40),
                    self._deploy("B", t(6), commit_sha="b" * 40),
                ],
            )
            refresh_pr_cycles(conn, [(self.repo_id, 101), (self.repo_id, 102)])
            refresh_deployment_records(
                conn, [("deploy", "A"), ("deploy", "B")], frozenset({"production"})
            )
            refresh_deploy_links(conn, tech_stream_ids=None, window_minutes=60)

    def lookups(self) -> OrgLookups:
        with self.engine.connect() as conn:
            return load_lookups(conn)

    def _pr(self, number: int, kind: str, at: datetime, **kw: Any) -> dict[str, Any]:
        return {
            "event_id": uuid.uuid4(),
            "source": "github",
            "event_type": kind,
            "event_timestamp": at,
            "repo_id": self.repo_id,
            "tech_stream_id": self.tech,
            "pr_number": number,
            "github_org": "acme-core-api",
            "github_repo": "payments-service",
            "author_hash": "f" * 64,
            "branch_name": "tidy-up",
            **kw,
        }

    def _deploy(self, run: str, at: datetime, **kw: Any) -> dict[str, Any]:
        return {
            "event_id": uuid.uuid4(),
            "source": "deployment",
            "event_type": "deploy_completed",
            "event_timestamp": at,
            "pipeline_id": "deploy",
            "pipeline_run_id": run,
            "repo_id": self.repo_id,
            "tech_stream_id": self.tech,
            "environment": "production",
            "status": "success",
            **kw,
        }

    def link(self, number: int, ticket: str, **kw: Any) -> Any:
        with self.engine.begin() as conn:
            return link_ticket(
                conn, self.lk, pr_event_id=self.event_ids[number], ticket_id=ticket, now=NOW, **kw
            )

    def pr_events(self, number: int) -> list[dict[str, Any]]:
        return rows(self.engine, "pr_events", f"pr_number = {number}")

    def cycle(self, number: int) -> dict[str, Any]:
        (row,) = rows(self.engine, "pr_cycles", f"pr_number = {number}")
        return row

    def deploy(self, run: str) -> dict[str, Any]:
        (row,) = rows(self.engine, "deployment_records", f"pipeline_run_id = '{run}'")
        return row


@pytest.fixture
def pr_org(org: sa.Engine) -> Org:
    return Org(org)


def _uuid(value: Any) -> uuid.UUID | None:
    return None if value is None else value if isinstance(value, uuid.UUID) else uuid.UUID(value)


def _versions(engine: sa.Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return data_versions.current(conn)


def test_unknown_event_id_is_not_found(pr_org: Org) -> None:
    with pr_org.engine.begin() as conn, pytest.raises(PrEventNotFound) as caught:
        link_ticket(conn, pr_org.lk, pr_event_id=uuid.uuid4(), ticket_id="PAY-900", now=NOW)
    assert isinstance(caught.value, NotFound) and caught.value.http_status == 404


@pytest.mark.parametrize(
    ("key", "problem"),
    [
        ("pay-900", "did you mean 'PAY-900'"),  # canonical form only, never rewritten
        (" PAY-900", "did you mean 'PAY-900'"),
        ("PAY900", "not a Jira ticket key"),
        ("PAY-0900", "not a Jira ticket key"),
        ("P-1", "not a Jira ticket key"),
        ("PAY-９", "not a Jira ticket key"),  # a full-width digit
        ("ZZZ-1", "ZZZ is not a configured Jira project"),
    ],
)
def test_invalid_keys_are_refused_and_change_nothing(pr_org: Org, key: str, problem: str) -> None:
    before = pr_org.pr_events(101)
    with pytest.raises(InvalidTicketKey) as caught:
        pr_org.link(101, key)
    error = caught.value
    assert error.code == "invalid_ticket_key" and error.http_status == 422
    assert error.details[0].field == "ticket_id" and problem in error.details[0].problem
    assert pr_org.pr_events(101) == before


def test_key_must_match_the_tech_streams_pattern(pr_org: Org) -> None:
    with pr_org.engine.begin() as conn:
        conn.execute(
            tech_streams.update()
            .where(tech_streams.c.stream_id == pr_org.tech)
            .values(ticket_key_pattern=r"^(?:feature/)?((?:PAY|ONB)-\d+)")
        )
    pr_org.lk = pr_org.lookups()
    with pytest.raises(InvalidTicketKey, match="pattern of tech stream core-api"):
        pr_org.link(101, "LEND-5")  # a configured project, but not this stream's
    assert pr_org.link(101, "PAY-900").events_updated == 2


def test_link_re_enriches_the_pr_and_its_deploys(pr_org: Org) -> None:
    versions = _versions(pr_org.engine)
    assert pr_org.deploy("A")["linked_ticket_id"] is None
    result = pr_org.link(101, "PAY-900", actor="lead@acme.test")
    assert (result.repo, result.pr_number, result.ticket_id) == (REPO, 101, "PAY-900")
    assert result.previous_ticket_id is None and result.events_updated == 2
    assert result.delivery_stream_id == pr_org.payments and result.ticket_known
    for event in pr_org.pr_events(101):
        assert event["linked_ticket_id"] == "PAY-900" and event["link_method"] == "manual"
        assert _uuid(event["delivery_stream_id"]) == pr_org.payments
    cycle = pr_org.cycle(101)
    assert cycle["linked_ticket_id"] == "PAY-900"
    assert _uuid(cycle["delivery_stream_id"]) == pr_org.payments
    deploy = pr_org.deploy("A")  # names the PR's merge commit
    assert deploy["linked_ticket_id"] == "PAY-900" and deploy["linked_pr_number"] == 101
    assert _uuid(deploy["delivery_stream_id"]) == pr_org.payments
    assert pr_org.cycle(102)["linked_ticket_id"] is None  # the other PR is untouched

    pr_org.link(102, "PAY-900")
    deploy = pr_org.deploy("B")  # shipped PR 102 by the time rule
    assert deploy["linked_pr_number"] == 102 and deploy["linked_ticket_id"] == "PAY-900"

    bumped = _versions(pr_org.engine)
    for topic in ("pr_events", "pr_cycles", "deployment_records"):
        assert bumped[topic] == versions.get(topic, 0) + 2
    first, _ = rows(pr_org.engine, "audit_log", order="occurred_at")
    assert first["action"] == "pr.link_ticket" and first["actor_type"] == "user"
    assert first["actor_id"] == "lead@acme.test" and first["target_id"] == f"{REPO}#101"
    assert first["details"]["before"] == {
        "linkedTicketId": None,
        "linkMethods": ["none"],
        "deliveryStreamId": None,
    }
    assert first["details"]["after"]["linkedTicketId"] == "PAY-900"
    assert first["details"]["after"]["deliveryStreamId"] == str(pr_org.payments)


def test_linking_again_changes_nothing(pr_org: Org) -> None:
    pr_org.link(101, "PAY-900")
    state = (pr_org.pr_events(101), pr_org.cycle(101), pr_org.deploy("A"))
    versions = _versions(pr_org.engine)
    again = pr_org.link(101, "PAY-900")
    assert again.events_updated == 0 and again.previous_ticket_id == "PAY-900"
    assert (pr_org.pr_events(101), pr_org.cycle(101), pr_org.deploy("A")) == state
    assert _versions(pr_org.engine) == versions
    assert len(rows(pr_org.engine, "audit_log")) == 1


def test_unknown_ticket_keeps_the_stream_and_waits_for_the_ticket(pr_org: Org) -> None:
    result = pr_org.link(101, "PAY-901")  # Jira has not told us about PAY-901 yet
    assert not result.ticket_known and result.delivery_stream_id is None
    assert pr_org.cycle(101)["linked_ticket_id"] == "PAY-901"
    (deferral,) = rows(pr_org.engine, "deferred_enrichments")
    assert (deferral["subject"], deferral["state"]) == ("PAY-901", "pending")

    fixed = pr_org.link(101, "PAY-900")  # a correction: the earlier wait is moot
    assert fixed.previous_ticket_id == "PAY-901" and fixed.ticket_known
    (deferral,) = rows(pr_org.engine, "deferred_enrichments")
    assert deferral["state"] == "resolved"

    stays = pr_org.link(101, "PAY-901")  # the known stream is kept for an unknown ticket
    assert stays.delivery_stream_id == pr_org.payments and not stays.ticket_known
    assert _uuid(pr_org.cycle(101)["delivery_stream_id"]) == pr_org.payments


def test_a_branch_linked_pr_can_be_corrected(pr_org: Org) -> None:
    with pr_org.engine.begin() as conn:
        conn.exec_driver_sql(
            "update pr_events set linked_ticket_id = 'PAY-1', link_method = 'branch' "
            "where pr_number = 101"
        )
    result = pr_org.link(101, "PAY-900")
    assert result.previous_ticket_id == "PAY-1" and result.events_updated == 2
    audit = rows(pr_org.engine, "audit_log")[0]["details"]
    assert audit["before"]["linkMethods"] == ["branch"]


def test_event_of_any_kind_addresses_the_pr(pr_org: Org) -> None:
    (merged,) = [e for e in pr_org.pr_events(101) if e["event_type"] == "merged"]
    with pr_org.engine.begin() as conn:
        result = link_ticket(
            conn,
            pr_org.lk,
            pr_event_id=_uuid(merged["event_id"]) or uuid.uuid4(),
            ticket_id="PAY-900",
            now=NOW - timedelta(hours=1),
        )
    assert result.pr_number == 101 and result.events_updated == 2
