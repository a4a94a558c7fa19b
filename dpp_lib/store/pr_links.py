"""Manual PR → ticket link (spec §5.3.4 method 4; API reference
``POST /api/v1/pr-events/:id/link-ticket``): the correction and safety net for PRs whose
branch, title and body name no ticket, or the wrong one.

``link_ticket`` validates the key, sets it (``link_method = 'manual'``) on every event of
the PR, derives the PR's delivery stream from the ticket (spec §5.3.6), refreshes what is
derived from the PR (its ``pr_cycles`` record, the deployment records that shipped it),
settles deferred enrichment, bumps the data versions and writes the audit log — all in the
caller's transaction. Linking a PR to the ticket it is already manually linked to changes
nothing.

A later webhook event of the PR whose branch, title or body names another ticket carries
that ticket on its own row, but the PR's record (``pr_cycles``, what every metric reads)
keeps the manual link. Known limit: ``dpp rebuild --from-inbox`` re-normalises the events
from the inbox, where manual links are not, so they must be linked again (the audit log
lists them).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

import sqlalchemy as sa

from dpp_lib.errors import DppError, FieldProblem, NotFound
from dpp_lib.ingest.linking import extract_ticket_key
from dpp_lib.ingest.lookups import OrgLookups
from dpp_lib.jobs.deploy_links import refresh_deploy_links
from dpp_lib.projections.deferred import KIND as DEFERRAL_KIND
from dpp_lib.projections.deferred import defer
from dpp_lib.projections.deployments import refresh_deployment_records, runs_naming_prs
from dpp_lib.projections.pull_requests import EVENT_COLUMNS, PrCycle, pr_cycle, refresh_pr_cycles
from dpp_lib.store import audit, data_versions
from dpp_lib.store.schema import cicd_events, deferred_enrichments, pr_events
from dpp_lib.store.write import ticket_delivery_streams

# The canonical form only (ASCII, upper case, no leading zero): the key as Jira spells it.
# "pay-456" or " PAY-456" are refused with the canonical form suggested, never rewritten.
TICKET_KEY = re.compile(r"[A-Z][A-Z0-9_]+-[1-9][0-9]*", re.ASCII)
DEFER_DELAY = timedelta(minutes=5)  # spec §5.3.6 default, as the worker's setting
ActorType = Literal["user", "api_key", "cli", "system"]


@dataclass(frozen=True)
class LinkResult:
    repo: str  # org/name
    pr_number: int
    ticket_id: str
    previous_ticket_id: str | None
    delivery_stream_id: uuid.UUID | None  # the ticket's, or the PR's own when not derivable
    events_updated: int  # 0: the PR was already linked manually to this ticket
    ticket_known: bool  # False: the ticket has no delivery stream yet; the PR's was kept


class PrEventNotFound(NotFound):
    """No ``pr_events`` row has this ``event_id``."""

    def __init__(self, pr_event_id: uuid.UUID) -> None:
        super().__init__(
            f"PR event {pr_event_id} does not exist",
            details=[FieldProblem("id", f"no PR event with id {pr_event_id}")],
        )
        self.pr_event_id = pr_event_id


class InvalidTicketKey(DppError):
    """The ticket key of a manual link is malformed, foreign to the PR's tech stream, or of
    a Jira project the organisation does not have."""

    code = "invalid_ticket_key"
    http_status = 422

    def __init__(self, ticket_id: str, problem: str) -> None:
        super().__init__(
            f"ticket_id {ticket_id!r}: {problem}", details=[FieldProblem("ticket_id", problem)]
        )
        self.ticket_id = ticket_id
        self.problem = problem


def check_ticket_key(
    ticket_id: str, lookups: OrgLookups, *, tech_stream_id: uuid.UUID | None
) -> None:
    """Raise ``InvalidTicketKey`` unless ``ticket_id`` is a canonical Jira key
    (``[A-Z][A-Z0-9_]+-<number>``) of a configured Jira project that the PR's tech stream's
    ``ticket_key_pattern`` (when it has one) accepts as a branch name."""
    if not TICKET_KEY.fullmatch(ticket_id):
        canonical = ticket_id.strip().upper()
        hint = f" (did you mean {canonical!r}?)" if TICKET_KEY.fullmatch(canonical) else ""
        raise InvalidTicketKey(
            ticket_id, f"not a Jira ticket key in canonical form, e.g. 'PAY-456'{hint}"
        )
    project = ticket_id.rsplit("-", 1)[0]
    if project not in lookups.jira_projects:
        raise InvalidTicketKey(ticket_id, f"{project} is not a configured Jira project")
    tech = lookups.tech_stream(tech_stream_id) if tech_stream_id is not None else None
    if tech is not None and tech.ticket_key_pattern:
        found, _ = extract_ticket_key(
            branch=ticket_id, title=None, body=None, pattern=tech.ticket_key_pattern
        )
        if found != ticket_id:
            raise InvalidTicketKey(
                ticket_id,
                f"does not match the ticket key pattern of tech stream {tech.name} "
                f"({tech.ticket_key_pattern})",
            )


def link_ticket(
    conn: sa.Connection,
    lookups: OrgLookups,
    *,
    pr_event_id: uuid.UUID,
    ticket_id: str,
    now: datetime,
    actor: str | None = None,
    actor_type: ActorType | None = None,
    defer_delay: timedelta = DEFER_DELAY,
) -> LinkResult:
    """Link the PR of ``pr_event_id`` (any of its events) to ``ticket_id``.

    ``actor`` is recorded in the audit log (``actor_type`` defaults to ``user`` with an
    actor, ``system`` without). Raises ``PrEventNotFound`` and ``InvalidTicketKey``.
    """
    p = pr_events
    found = conn.execute(
        sa.select(p.c.repo_id, p.c.pr_number, p.c.github_org, p.c.github_repo).where(
            p.c.event_id == pr_event_id
        )
    ).first()
    if found is None:
        raise PrEventNotFound(pr_event_id)
    # A PR of a registered repository by repo_id (the pr_cycles key), else by name.
    same_pr = (
        sa.and_(p.c.repo_id == found.repo_id, p.c.pr_number == found.pr_number)
        if found.repo_id is not None
        else sa.and_(
            p.c.repo_id.is_(None),
            p.c.github_org == found.github_org,
            p.c.github_repo == found.github_repo,
            p.c.pr_number == found.pr_number,
        )
    )
    events = [
        dict(r._mapping)
        for r in conn.execute(
            sa.select(
                *(p.c[c] for c in EVENT_COLUMNS),
                p.c.link_method,
                p.c.head_sha,
                p.c.merge_commit_sha,
            ).where(same_pr)
        )
    ]
    before = pr_cycle(events)
    if before is None:  # cannot happen: the event found belongs to the PR
        raise PrEventNotFound(pr_event_id)
    check_ticket_key(ticket_id, lookups, tech_stream_id=before.tech_stream_id)

    stream = ticket_delivery_streams(conn, [ticket_id]).get(ticket_id)
    values: dict[str, Any] = {"linked_ticket_id": ticket_id, "link_method": "manual"}
    if stream is not None:
        values["delivery_stream_id"] = stream
    differs = sa.or_(*(p.c[k].is_distinct_from(v) for k, v in values.items()))
    updated = conn.execute(p.update().where(same_pr, differs).values(values)).rowcount
    result = LinkResult(
        repo=f"{found.github_org}/{found.github_repo}",
        pr_number=found.pr_number,
        ticket_id=ticket_id,
        previous_ticket_id=before.linked_ticket_id,
        delivery_stream_id=stream if stream is not None else before.delivery_stream_id,
        events_updated=updated,
        ticket_known=stream is not None,
    )
    if updated == 0:
        return result

    _refresh_derived(conn, lookups, before, events)
    _settle_deferrals(conn, before, result, now=now, delay=defer_delay)
    data_versions.bump(conn, ["pr_events", "pr_cycles", "deployment_records"])
    audit.record(
        conn,
        actor_type=actor_type or ("user" if actor else "system"),
        actor_id=actor,
        action="pr.link_ticket",
        target_type="pull_request",
        target_id=f"{result.repo}#{result.pr_number}",
        details={
            "prEventId": str(pr_event_id),
            "before": {
                "linkedTicketId": before.linked_ticket_id,
                "linkMethods": sorted({e["link_method"] or "none" for e in events}),
                "deliveryStreamId": _str(before.delivery_stream_id),
            },
            "after": {
                "linkedTicketId": ticket_id,
                "linkMethods": ["manual"],
                "deliveryStreamId": _str(result.delivery_stream_id),
            },
            "eventsUpdated": updated,
            "ticketKnown": result.ticket_known,
        },
    )
    return result


def _refresh_derived(
    conn: sa.Connection,
    lookups: OrgLookups,
    pr: PrCycle,
    events: Sequence[Mapping[str, Any]],
) -> None:
    """The PR's record, the records of deploys naming it, and (once merged) the tech
    stream's time-rule deploy links, exactly as the worker refreshes them."""
    if pr.repo_id is None:  # an unregistered repository: nothing is derived from its PRs
        return
    key = (pr.repo_id, pr.pr_number)
    refresh_pr_cycles(conn, [key])
    commits = {
        (pr.repo_id, sha) for e in events for sha in (e["head_sha"], e["merge_commit_sha"]) if sha
    }
    runs = runs_naming_prs(conn, [key], commits)
    refresh_deployment_records(conn, runs, lookups.production_environments)
    if pr.merged_at is not None and pr.tech_stream_id is not None:  # only merged PRs ship
        refresh_deploy_links(
            conn,
            tech_stream_ids=[pr.tech_stream_id],
            window_minutes=lookups.incident_correlation_window_minutes,
        )


def _settle_deferrals(
    conn: sa.Connection, before: PrCycle, result: LinkResult, *, now: datetime, delay: timedelta
) -> None:
    """The previous ticket's pending deferral is moot once no event names that ticket any
    more; a PR still without a delivery stream waits for its new ticket (spec §5.3.6)."""
    previous = before.linked_ticket_id
    if previous is not None and previous != result.ticket_id:
        still_named = any(
            conn.execute(
                sa.select(sa.literal(1)).where(table.c.linked_ticket_id == previous).limit(1)
            ).first()
            for table in (pr_events, cicd_events)
        )
        if not still_named:
            d = deferred_enrichments
            conn.execute(
                d.update()
                .where(d.c.kind == DEFERRAL_KIND, d.c.subject == previous, d.c.state == "pending")
                .values(
                    state="resolved",
                    resolved_at=now,
                    details={"reason": f"PR {result.repo}#{result.pr_number} linked manually"},
                )
            )
    if result.delivery_stream_id is None:
        defer(conn, [result.ticket_id], now=now, delay=delay)


def _str(value: uuid.UUID | None) -> str | None:
    return None if value is None else str(value)
