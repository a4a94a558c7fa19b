"""The Admin page's model and actions on the test organisation (SQLite and Postgres), with a
few rows inserted by factories: only a platform admin gets anything, the unlinked pull
requests are the linkage rate's misses, the manual link and the requeue change the database
and write an audit row naming the admin, and the configuration says where it came from."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from dpp_lib.access import Principal
from dpp_lib.dashboards import admin
from dpp_lib.dashboards.admin import AdminOnly, AdminView, admin_view
from dpp_lib.dashboards.data import StreamAccessDenied
from dpp_lib.metrics.common import Scope
from dpp_lib.projections.pull_requests import refresh_pr_cycles
from dpp_lib.store import audit
from dpp_lib.store.config_tables import load_lookups
from dpp_lib.store.db import make_engine
from dpp_lib.store.pr_links import InvalidTicketKey
from dpp_lib.store.schema import audit_log, raw_events
from dpp_lib.store.write import insert_events
from dpp_lib.views import admin as admin_views
from dpp_lib.views.common import load_org
from dpp_lib.widgets import admin as admin_page
from dpp_lib.widgets import cross_stream as cross_page
from dpp_lib.widgets.filters import FilterState
from tests.support import rows

NOW = datetime(2026, 11, 11, 14, 0, tzinfo=UTC)
REPO = "acme-core-api/payments-service"
ADMIN = Principal("user", str(uuid.uuid4()), "Ada", frozenset({"admin", "metrics:read"}))
STREAM = uuid.uuid4()


def _at(days_ago: float) -> datetime:
    return NOW - timedelta(days=days_ago)


class Prs:
    """Three PRs of payments-service: #1 opened 2 days ago and #2 opened 5 days ago name no
    ticket, #3 (3 days ago) names PAY-900; #4 opened 60 days ago names none. Ticket PAY-900
    is known (payments)."""

    def __init__(self, engine: sa.Engine) -> None:
        with engine.connect() as conn:
            lookups = load_lookups(conn)
        repo = lookups.repository(REPO)
        assert repo is not None
        self.repo_id, self.tech = repo.repo_id, repo.tech_stream_id
        self.opened = {n: uuid.uuid4() for n in (1, 2, 3, 4)}
        with engine.begin() as conn:
            insert_events(
                conn,
                "pr_events",
                [
                    self._pr(1, "opened", _at(2)),
                    self._pr(1, "review_submitted", _at(1.5), event_id=uuid.uuid4()),
                    self._pr(2, "opened", _at(5)),
                    self._pr(3, "opened", _at(3), linked_ticket_id="PAY-900"),
                    self._pr(4, "opened", _at(60)),
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
                        "event_timestamp": _at(20),
                        "ticket_id": "PAY-900",
                        "delivery_stream_id": lookups.delivery_stream("payments"),
                    }
                ],
            )
            refresh_pr_cycles(conn, [(self.repo_id, n) for n in (1, 2, 3, 4)])

    def _pr(self, number: int, kind: str, at: datetime, **kw: Any) -> dict[str, Any]:
        return {
            "event_id": self.opened[number],
            "source": "github",
            "event_type": kind,
            "event_timestamp": at,
            "repo_id": self.repo_id,
            "tech_stream_id": self.tech,
            "pr_number": number,
            "github_org": "acme-core-api",
            "github_repo": "payments-service",
            "author_hash": "f" * 64,
            "branch_name": f"branch-{number}",
            **kw,
        }


def _dead(engine: sa.Engine, n: int, *, error: str = "boom") -> list[int]:
    with engine.begin() as conn:
        return [
            conn.execute(
                raw_events.insert()
                .values(
                    source="jira",
                    delivery_id=f"d-{i}-{uuid.uuid4()}",
                    headers={},
                    body=b"{}",
                    body_sha256="0" * 64,
                    received_at=_at(1) + timedelta(minutes=i),
                    state="dead",
                    attempts=8,
                    next_attempt_at=_at(1),
                    last_error=error,
                )
                .returning(raw_events.c.id)
            ).scalar_one()
            for i in range(n)
        ]


def _view(engine: sa.Engine, principal: Principal = ADMIN, **state: Any) -> AdminView:
    with engine.connect() as conn:
        return admin_view(conn, principal, FilterState(**state), now=NOW)


@pytest.mark.parametrize(
    "principal",
    [
        Principal("user", "u1", "Vic", frozenset({"metrics:read"})),  # a viewer of everything
        Principal("user", "u2", "Sam", frozenset({"admin"}), frozenset({STREAM}), frozenset()),
        Principal("api_key", "k1", "ci", frozenset({"admin"})),
    ],
    ids=["viewer", "restricted-admin-permission", "api-key"],
)
def test_only_a_platform_admin_gets_data(principal: Principal) -> None:
    conn: Any = None  # refused before anything is read
    with pytest.raises(AdminOnly, match="for platform administrators only"):
        admin_view(conn, principal, FilterState(), now=NOW)
    for read in (admin.dead_letters, admin.configuration):
        with pytest.raises(AdminOnly):
            read(conn, principal)
    with pytest.raises(AdminOnly):
        admin.requeue(conn, principal, ids=None)
    with pytest.raises(AdminOnly):
        admin.link_pr(conn, principal, pr_event_id=uuid.uuid4(), ticket_id="PAY-1")


def test_the_unlinked_prs_are_the_linkage_rates_misses(org: sa.Engine) -> None:
    prs = Prs(org)
    view = _view(org, time_range="30d")
    assert [(p.pr_number, p.branch, p.event_id) for p in view.unlinked.rows] == [
        (1, "branch-1", prs.opened[1]),  # newest first, its opening event
        (2, "branch-2", prs.opened[2]),
    ]
    assert view.unlinked.total == 2
    tech = next(r for r in view.data_quality["streams"] if r["stream"] == "core-api")
    linkage = tech["rates"]["pr_linkage"]
    assert linkage["denominator"] - linkage["numerator"] == view.unlinked.total
    with org.connect() as conn:
        report = admin_views.data_quality_report(
            conn, load_lookups(conn), load_org(conn), scope=Scope(), as_of=NOW, window_days=30
        )
    assert view.data_quality == report  # what GET /admin/data-quality answers
    assert _view(org, time_range="90d").unlinked.total == 3
    assert _view(org, tech="auth").unlinked.total == 0


def test_the_manual_link_links_and_audits_the_admin(org: sa.Engine) -> None:
    prs = Prs(org)
    with pytest.raises(InvalidTicketKey):
        admin.link_pr(org, ADMIN, pr_event_id=prs.opened[1], ticket_id="pay-900", now=NOW)
    result = admin.link_pr(org, ADMIN, pr_event_id=prs.opened[1], ticket_id=" PAY-900 ", now=NOW)
    assert (result.pr_number, result.ticket_id, result.events_updated) == (1, "PAY-900", 2)
    linked = rows(org, "pr_events", "pr_number = 1")
    assert {(r["linked_ticket_id"], r["link_method"]) for r in linked} == {("PAY-900", "manual")}
    (entry,) = rows(org, "audit_log", "action = 'pr.link_ticket'")
    assert (entry["actor_type"], entry["actor_id"]) == ("user", ADMIN.subject)
    assert entry["target_id"] == f"{REPO}#1"
    assert [p.pr_number for p in _view(org).unlinked.rows] == [2]


def test_requeue_one_then_all_is_audited(org: sa.Engine) -> None:
    first, second, third = _dead(org, 3)
    assert admin.requeue(org, ADMIN, ids=[second]) == 1
    states = {r["id"]: r["state"] for r in rows(org, "raw_events")}
    assert states == {first: "dead", second: "pending", third: "dead"}
    assert admin.requeue(org, ADMIN, ids=[second]) == 0  # no longer dead
    assert admin.requeue(org, ADMIN, ids=None) == 2
    assert {r["state"] for r in rows(org, "raw_events")} == {"pending"}
    with org.connect() as conn:
        entries = conn.execute(
            sa.select(audit_log.c.actor_id, audit_log.c.target_id, audit_log.c.details)
            .where(audit_log.c.action == "inbox.retry")
            .order_by(audit_log.c.occurred_at)
        ).all()
    assert [(e.actor_id, e.target_id, e.details["requeued"]) for e in entries] == [
        (ADMIN.subject, str(second), 1),
        (ADMIN.subject, str(second), 0),
        (ADMIN.subject, "all", 2),
    ]


def test_dead_letters_are_listed_newest_first_with_a_short_error(org: sa.Engine) -> None:
    ids = _dead(org, 3, error="x" * 1000)
    dead = _view(org).dead
    assert dead.total == 3
    assert [d.id for d in dead.rows] == ids[::-1]
    assert all(len(d.last_error) == admin.ERROR_CHARS for d in dead.rows)


def test_the_configuration_names_its_source_file_when_recorded(org: sa.Engine) -> None:
    config = _view(org).config
    assert config.source.file is None and config.source.sha256 != "empty"
    assert {s["name"] for s in config.delivery_streams} >= {"payments", "lending"}
    assert any(m["jira_project_key"] == "PAY" for m in config.status_mappings)
    payments = next(p for p in config.jira_projects if p["project_key"] == "PAY")
    assert payments["delivery_stream"] == "payments"
    with org.begin() as conn:
        audit.record(
            conn, actor_type="cli", action="config.load", target_type="file", target_id="org.yaml"
        )
    source = _view(org).config.source
    assert (source.file, source.loaded_by) == ("org.yaml", "cli")


def test_the_stream_filters_narrow_the_stream_rows(org: sa.Engine) -> None:
    view = _view(org, delivery="payments", tech="core-api")
    assert {(r["stream"], r["kind"]) for r in view.stream_rows()} == {
        ("payments", "delivery"),
        ("core-api", "tech"),
    }
    assert len(_view(org).stream_rows()) == len(view.data_quality["streams"])


def test_the_warm_up_draws_the_page_or_logs_why_not(
    org: sa.Engine, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    for page in (admin_page, cross_page):
        page.warm_up(org)  # reads only: nothing to see, nothing logged
    assert not caplog.records
    empty = make_engine(f"sqlite:///{tmp_path / 'no-schema.sqlite3'}")
    for page in (admin_page, cross_page):
        page.warm_up(empty)
    assert [r.getMessage() for r in caplog.records] == [
        "the admin page's warm-up failed",
        "the cross-stream page's warm-up failed",
    ]
    empty.dispose()


def test_an_unknown_stream_is_refused_like_a_forbidden_one(org: sa.Engine) -> None:
    with pytest.raises(StreamAccessDenied, match="'nowhere', or it does not exist"):
        _view(org, tech="nowhere")
