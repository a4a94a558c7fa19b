"""Deferred enrichment (spec §5.3.6): a PR whose ticket is not known yet gets its delivery
stream when the ticket's events arrive, or when a later retry finds it.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime, timedelta

import sqlalchemy as sa

from dpp_lib.projections.pull_requests import refresh_pr_cycles
from dpp_lib.store.schema import cicd_events, deferred_enrichments, deployment_records, pr_events
from dpp_lib.store.write import dialect_insert, ticket_delivery_streams

KIND = "pr_delivery_stream"


def defer(conn: sa.Connection, tickets: Iterable[str], *, now: datetime, delay: timedelta) -> None:
    wanted = sorted(set(tickets))
    if not wanted:
        return
    stmt = dialect_insert(conn, deferred_enrichments)
    # A ticket already resolved and seen again (new PR before its Jira events): reopen.
    stmt = stmt.on_conflict_do_update(
        index_elements=["kind", "subject"],
        set_={"state": "pending", "next_attempt_at": stmt.excluded.next_attempt_at},
        where=deferred_enrichments.c.state != "pending",
    )
    conn.execute(
        stmt,
        [
            {
                "deferral_id": uuid.uuid4(),
                "kind": KIND,
                "subject": ticket,
                "state": "pending",
                "attempts": 0,
                "created_at": now,
                "next_attempt_at": now + delay,
            }
            for ticket in wanted
        ],
    )


def apply_ticket_streams(
    conn: sa.Connection, streams: dict[str, uuid.UUID], *, now: datetime
) -> None:
    """Fill the delivery stream of PR events, CI/CD events and deployment records of these
    tickets where it is still NULL, and close their deferrals."""
    if not streams:
        return
    params = [{"t": ticket, "s": stream} for ticket, stream in sorted(streams.items())]
    for table in (pr_events, cicd_events, deployment_records):
        conn.execute(
            table.update()
            .where(
                table.c.linked_ticket_id == sa.bindparam("t"),
                table.c.delivery_stream_id.is_(None),
            )
            .values(delivery_stream_id=sa.bindparam("s")),
            params,
        )
    d = deferred_enrichments
    conn.execute(
        d.update()
        .where(d.c.kind == KIND, d.c.subject.in_(sorted(streams)), d.c.state == "pending")
        .values(state="resolved", resolved_at=now)
    )
    # the PRs' cycle records carry the stream too
    prs = conn.execute(
        sa.select(pr_events.c.repo_id, pr_events.c.pr_number)
        .where(pr_events.c.linked_ticket_id.in_(sorted(streams)), pr_events.c.repo_id.is_not(None))
        .distinct()
    ).all()
    refresh_pr_cycles(conn, [(r.repo_id, r.pr_number) for r in prs])


def pending_subjects(conn: sa.Connection, tickets: Iterable[str]) -> set[str]:
    d = deferred_enrichments
    wanted = sorted(set(tickets))
    if not wanted:
        return set()
    rows = conn.execute(
        sa.select(d.c.subject).where(
            d.c.kind == KIND, d.c.state == "pending", d.c.subject.in_(wanted)
        )
    )
    return set(rows.scalars())


def sweep_due(
    conn: sa.Connection, *, now: datetime, delay: timedelta, max_attempts: int, limit: int = 500
) -> tuple[int, int]:
    """Retry due deferrals; returns (resolved, expired)."""
    d = deferred_enrichments
    due = conn.execute(
        sa.select(d.c.subject, d.c.attempts)
        .where(d.c.kind == KIND, d.c.state == "pending", d.c.next_attempt_at <= now)
        .limit(limit)
    ).all()
    if not due:
        return 0, 0
    streams = ticket_delivery_streams(conn, [r.subject for r in due])
    apply_ticket_streams(conn, streams, now=now)
    expired = 0
    for r in due:
        if r.subject in streams:
            continue
        attempts = r.attempts + 1
        if attempts >= max_attempts:
            values = {"state": "expired", "attempts": attempts, "resolved_at": now}
            expired += 1
        else:
            values = {
                "attempts": attempts,
                "next_attempt_at": now + delay * (2 ** min(attempts, 6)),
            }
        conn.execute(d.update().where(d.c.kind == KIND, d.c.subject == r.subject).values(values))
    return len(streams), expired
