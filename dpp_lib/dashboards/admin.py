"""The Admin page's model and actions (spec §7.1.3), for platform admins only: every function
here checks the viewer first (``require_admin``), so a non-admin gets the access message
and no data whatever the page shows or the URL asks for.

Sections, each read through what the API uses: data-quality rates against targets per stream
(``views.admin.data_quality_report``, ``GET /admin/data-quality``), integration health and
the active system alerts (``views.admin.integration_health_view``, ``views.alerts``), the
unlinked pull requests of the window (those the PR linkage rate counts), the configuration
tables with the file they were loaded from (the audit log's last ``config.load``), and the
inbox's dead letters. Actions: ``link_pr`` (``store.pr_links.link_ticket``, as
``POST /pr-events/{id}/link-ticket``; its audit row names the admin) and ``requeue``
(``ingest_service.worker.retry_dead``, as ``dpp inbox retry``, audited here).
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Generic, TypeVar

import sqlalchemy as sa

from dpp_lib.access import Principal
from dpp_lib.dashboards import data
from dpp_lib.dashboards.overview import Window, resolve_window, tech_stream
from dpp_lib.errors import DppError
from dpp_lib.metrics.common import Scope
from dpp_lib.store import audit
from dpp_lib.store.config_tables import config_version, load_lookups
from dpp_lib.store.db import reader
from dpp_lib.store.pr_links import LinkResult, link_ticket
from dpp_lib.store.schema import (
    audit_log,
    delivery_streams,
    jira_projects,
    pr_cycles,
    pr_events,
    raw_events,
    repositories,
    status_mappings,
    tech_streams,
)
from dpp_lib.views import admin, alerts
from dpp_lib.views.common import Stream, load_org
from dpp_lib.widgets.filters import ALL, FilterError, FilterState, moment

LIST_LIMIT = 25  # rows of the unlinked PRs and dead letters shown (the total is given)
ERROR_CHARS = 300  # a dead letter's last error, shortened
CONFIG_EDITED_IN = "config/example.yaml"  # the repository's org config file


class AdminOnly(DppError):
    """The viewer is not a platform admin (spec §7.1.3)."""

    code = "admin_only"
    http_status = 403

    def __init__(self) -> None:
        super().__init__(
            "The admin page is for platform administrators only. Ask a platform"
            " administrator for the platform_admin role if you need it."
        )


def require_admin(principal: Principal) -> None:
    """``AdminOnly`` unless ``principal`` is a user with the platform_admin role (the
    ``admin`` permission, over every stream)."""
    if principal.kind != "user" or "admin" not in principal.permissions or principal.is_restricted:
        raise AdminOnly


@dataclass(frozen=True)
class UnlinkedPr:
    event_id: uuid.UUID  # an event of the PR (what link_ticket takes)
    repository: str
    pr_number: int
    tech_stream: str
    branch: str
    opened_at: datetime
    merged_at: datetime | None


@dataclass(frozen=True)
class DeadLetter:
    id: int
    source: str
    delivery_id: str
    event_kind: str | None
    received_at: datetime
    attempts: int
    last_error: str


T = TypeVar("T")


@dataclass(frozen=True)
class Listing(Generic[T]):
    rows: tuple[T, ...]
    total: int  # rows: the newest LIST_LIMIT of them


@dataclass(frozen=True)
class ConfigSource:
    file: str | None  # None: not recorded (loaded without `dpp config load`)
    loaded_at: datetime | None
    loaded_by: str | None
    sha256: str


@dataclass(frozen=True)
class Configuration:
    source: ConfigSource
    delivery_streams: list[dict[str, Any]]
    tech_streams: list[dict[str, Any]]
    jira_projects: list[dict[str, Any]]
    status_mappings: list[dict[str, Any]]


@dataclass(frozen=True)
class AdminView:
    """Everything the page draws for one filter state."""

    state: FilterState
    as_of: datetime
    now: datetime  # integration health and alerts are about now, not as_of
    window: Window
    delivery: Stream | None
    tech: Stream | None
    notices: tuple[str, ...]
    data_quality: dict[str, Any]  # the data_quality_report answer
    integrations: dict[str, Any]
    alerts: list[dict[str, Any]]
    unlinked: Listing[UnlinkedPr]
    dead: Listing[DeadLetter]
    config: Configuration

    def stream_rows(self) -> list[dict[str, Any]]:
        """The report's per-stream rows the stream filters keep."""
        chosen = {"delivery": self.delivery, "tech": self.tech}
        rows: list[dict[str, Any]] = self.data_quality["streams"]
        return [
            r
            for r in rows
            if (s := chosen[r["kind"]]) is None or r["stream_id"] == str(s.stream_id)
        ]


def admin_view(
    conn: sa.Connection,
    principal: Principal,
    state: FilterState,
    *,
    now: datetime | None = None,
    notices: Sequence[str] = (),
) -> AdminView:
    """The page for ``state``. ``AdminOnly`` for anyone but a platform admin;
    ``StreamAccessDenied`` for an unknown stream."""
    require_admin(principal)
    current = now or datetime.now(UTC)
    lookups = load_lookups(conn)
    org = load_org(conn)
    found = list(notices)
    as_of = current
    if state.as_of is not None:
        try:
            as_of = moment(state.as_of, lookups.time_zone, now=current)
        except FilterError as exc:
            found.append(f"{exc.message}: showing the latest figures instead.")
    chosen_delivery = (
        None if state.delivery == ALL else data.delivery_stream(org, principal, state.delivery)
    )
    chosen_tech = None if state.tech == ALL else tech_stream(org, principal, state.tech)
    window = resolve_window(conn, org, principal, state, chosen_delivery, as_of, lookups)
    return AdminView(
        state,
        as_of,
        current,
        window,
        chosen_delivery,
        chosen_tech,
        tuple(found),
        data_quality=admin.data_quality_report(
            conn, lookups, org, scope=Scope(), as_of=window.end, window_days=window.days
        ),
        integrations=admin.integration_health_view(conn, now=current)["integrations"],
        alerts=alerts.active_alerts(conn),
        unlinked=unlinked_prs(conn, principal, window=window, tech=chosen_tech),
        dead=dead_letters(conn, principal),
        config=configuration(conn, principal),
    )


def unlinked_prs(
    conn: sa.Connection, principal: Principal, *, window: Window, tech: Stream | None = None
) -> Listing[UnlinkedPr]:
    """The pull requests opened in ``window`` without a ticket (the PR linkage rate's
    misses, spec §5.6), newest first, of ``tech`` or every tech stream."""
    require_admin(principal)
    p, r, t = pr_cycles, repositories, tech_streams
    where = [
        p.c.linked_ticket_id.is_(None),
        p.c.opened_at >= window.end - timedelta(days=window.days),
        p.c.opened_at < window.end,
    ]
    if tech is not None:
        where.append(p.c.tech_stream_id == tech.stream_id)
    total = conn.execute(
        sa.select(sa.func.count()).select_from(p.join(r, r.c.repo_id == p.c.repo_id)).where(*where)
    ).scalar_one()
    found = conn.execute(
        sa.select(p.c.repo_id, p.c.pr_number, r.c.full_name, t.c.name, p.c.opened_at, p.c.merged_at)
        .select_from(
            p.join(r, r.c.repo_id == p.c.repo_id).join(t, t.c.stream_id == p.c.tech_stream_id)
        )
        .where(*where)
        .order_by(p.c.opened_at.desc(), r.c.full_name, p.c.pr_number)
        .limit(LIST_LIMIT)
    ).all()
    first = _first_events(conn, [(f.repo_id, f.pr_number) for f in found])
    rows = tuple(
        UnlinkedPr(
            first[(f.repo_id, f.pr_number)][0],
            f.full_name,
            f.pr_number,
            f.name,
            first[(f.repo_id, f.pr_number)][1],
            f.opened_at,
            f.merged_at,
        )
        for f in found
        if (f.repo_id, f.pr_number) in first
    )
    return Listing(rows, int(total))


def _first_events(
    conn: sa.Connection, keys: list[tuple[uuid.UUID, int]]
) -> dict[tuple[uuid.UUID, int], tuple[uuid.UUID, str]]:
    """Each PR's earliest event: its id and branch."""
    if not keys:
        return {}
    e = pr_events
    out: dict[tuple[uuid.UUID, int], tuple[uuid.UUID, str]] = {}
    for row in conn.execute(
        sa.select(e.c.repo_id, e.c.pr_number, e.c.event_id, e.c.branch_name)
        .where(sa.tuple_(e.c.repo_id, e.c.pr_number).in_(keys))
        .order_by(e.c.event_timestamp, e.c.event_id)
    ):
        out.setdefault((row.repo_id, row.pr_number), (row.event_id, row.branch_name))
    return out


def dead_letters(conn: sa.Connection, principal: Principal) -> Listing[DeadLetter]:
    """The inbox's dead-lettered deliveries, newest first."""
    require_admin(principal)
    r = raw_events
    total = conn.execute(sa.select(sa.func.count()).where(r.c.state == "dead")).scalar_one()
    rows = tuple(
        DeadLetter(
            row.id,
            row.source,
            row.delivery_id,
            row.event_kind,
            row.received_at,
            row.attempts,
            (row.last_error or "")[:ERROR_CHARS],
        )
        for row in conn.execute(
            sa.select(
                r.c.id,
                r.c.source,
                r.c.delivery_id,
                r.c.event_kind,
                r.c.received_at,
                r.c.attempts,
                r.c.last_error,
            )
            .where(r.c.state == "dead")
            .order_by(r.c.received_at.desc(), r.c.id.desc())
            .limit(LIST_LIMIT)
        )
    )
    return Listing(rows, int(total))


def configuration(conn: sa.Connection, principal: Principal) -> Configuration:
    """The configuration tables (archived streams included) and where they came from."""
    require_admin(principal)
    a = audit_log
    last = conn.execute(
        sa.select(a.c.target_id, a.c.occurred_at, a.c.actor_type, a.c.actor_id)
        .where(a.c.action == "config.load")
        .order_by(a.c.occurred_at.desc())
        .limit(1)
    ).first()
    source = ConfigSource(
        last.target_id if last else None,
        last.occurred_at if last else None,
        (f"{last.actor_type}:{last.actor_id}" if last.actor_id else last.actor_type)
        if last
        else None,
        config_version(conn),
    )
    d, t, j, m = delivery_streams, tech_streams, jira_projects, status_mappings
    names = dict(conn.execute(sa.select(d.c.stream_id, d.c.name)).all())
    return Configuration(
        source,
        _rows(
            conn,
            sa.select(
                d.c.name,
                d.c.display_name,
                d.c.team_size,
                d.c.min_contributors,
                d.c.labels,
                d.c.is_active,
            ).order_by(d.c.name),
        ),
        _rows(
            conn,
            sa.select(
                t.c.name, t.c.display_name, t.c.github_org, t.c.ticket_key_pattern, t.c.is_active
            ).order_by(t.c.name),
        ),
        [
            {**row, "delivery_stream": names.get(row.pop("delivery_stream_id"))}
            for row in _rows(
                conn,
                sa.select(
                    j.c.project_key, j.c.delivery_stream_id, j.c.derivation, j.c.is_active
                ).order_by(j.c.project_key),
            )
        ],
        _rows(
            conn,
            sa.select(
                m.c.jira_project_key, m.c.jira_status_name, m.c.pipeline_stage, m.c.is_active_work
            ).order_by(m.c.jira_project_key, m.c.display_order),
        ),
    )


def _rows(conn: sa.Connection, stmt: sa.Select[Any]) -> list[dict[str, Any]]:
    return [dict(r._mapping) for r in conn.execute(stmt)]


# --- actions ---------------------------------------------------------------------------------


def link_pr(
    engine: sa.Engine,
    principal: Principal,
    *,
    pr_event_id: uuid.UUID,
    ticket_id: str,
    now: datetime | None = None,
) -> LinkResult:
    """Link a pull request to a Jira ticket by hand, as ``POST /pr-events/{id}/link-ticket``
    does (``link_ticket``: validated key, re-enriched PR, audit row naming the admin).
    Raises ``AdminOnly``, ``PrEventNotFound``, ``InvalidTicketKey``."""
    require_admin(principal)
    with reader(engine).connect() as conn:
        lookups = load_lookups(conn)  # before the write transaction (SQLite: one writer)
    with engine.begin() as conn:
        return link_ticket(
            conn,
            lookups,
            pr_event_id=pr_event_id,
            ticket_id=ticket_id.strip(),
            now=now or datetime.now(UTC),
            actor=principal.subject,
            actor_type="user",
        )


def requeue(engine: sa.Engine, principal: Principal, *, ids: Collection[int] | None) -> int:
    """Move dead letters back to pending (``ids``, or every one when None), as
    ``dpp inbox retry`` does, with an ``inbox.retry`` audit row naming the admin; how many
    moved."""
    require_admin(principal)
    from ingest_service.worker import retry_dead  # the CLI's function (an upper layer)

    with engine.begin() as conn:
        moved = retry_dead(conn, ids=ids)
        audit.record(
            conn,
            actor_type="user",
            actor_id=principal.subject,
            action="inbox.retry",
            target_type="raw_event",
            target_id="all" if ids is None else ",".join(str(i) for i in sorted(ids)),
            details={"requeued": moved, "ids": None if ids is None else sorted(ids)},
        )
    return moved
