"""Write derived sprint snapshots (``dpp_lib.projections.sprints``) for chosen days."""

from __future__ import annotations

from collections.abc import Collection
from datetime import date, timedelta
from uuid import UUID

import sqlalchemy as sa

from dpp_lib.ingest.lookups import OrgLookups
from dpp_lib.projections.sprints import memberships, snapshot, snapshot_row
from dpp_lib.projections.work_items import item_events
from dpp_lib.store.schema import (
    sprint_snapshots,
    sprints,
    work_item_events,
    work_item_field_changes,
)
from dpp_lib.store.types import new_id, now_utc
from dpp_lib.store.write import dialect_insert


def refresh_sprint_snapshots(
    conn: sa.Connection,
    lookups: OrgLookups,
    *,
    today: date,
    history: bool = False,
    delivery_stream_ids: Collection[UUID] | None = None,
) -> int:
    """Snapshots for ``today`` of every sprint running then (``history``: also every earlier
    day of every sprint that has started), of the sprints of ``delivery_stream_ids`` only
    when given. Returns the rows written."""
    calendar = lookups.calendar()
    started = sa.select(sprints).where(sprints.c.start_date <= today)
    if delivery_stream_ids is not None:
        started = started.where(sprints.c.delivery_stream_id.in_(list(delivery_stream_ids)))
    all_sprints = conn.execute(started.order_by(sprints.c.start_date)).all()
    if not all_sprints:
        return 0
    jira_of = {
        s.sprint_id: s.jira_sprint_id
        for s in conn.execute(sa.select(sprints.c.sprint_id, sprints.c.jira_sprint_id))
    }
    f = work_item_field_changes
    changes = [
        dict(r._mapping)
        for r in conn.execute(
            sa.select(f.c.ticket_id, f.c.event_timestamp, f.c.from_value, f.c.to_value).where(
                f.c.field == "sprint"
            )
        )
    ]
    w = work_item_events
    rows = conn.execute(
        sa.select(
            w.c.ticket_id,
            w.c.event_type,
            w.c.event_timestamp,
            w.c.to_status,
            w.c.to_stage,
            w.c.sprint_id,
        ).order_by(w.c.ticket_id, w.c.event_timestamp)
    ).all()
    seen = [
        {
            "ticket_id": r.ticket_id,
            "event_timestamp": r.event_timestamp,
            "jira_sprint_id": jira_of.get(r.sprint_id),
        }
        for r in rows
        if r.sprint_id is not None
    ]
    members = memberships(changes, seen)
    by_sprint: dict[str, set[str]] = {}  # each sprint's tickets, found in one pass
    for ticket, m in members.items():
        named = set(m.initial) | {x for _, c in m.changes for x in c} | {x for _, x in m.seen}
        for sprint in named:
            by_sprint.setdefault(sprint, set()).add(ticket)
    events = item_events(rows, lookups.stage_of)
    now = now_utc()
    out = []
    for s in all_sprints:
        last = min(s.end_date, today)
        days = (
            [last]
            if not history
            else [s.start_date + timedelta(days=i) for i in range((last - s.start_date).days + 1)]
        )
        if not history and not (s.start_date <= today <= s.end_date):
            continue
        relevant = {t: members[t] for t in by_sprint.get(s.jira_sprint_id, ())}
        for day in days:
            snap = snapshot(
                jira_sprint_id=s.jira_sprint_id,
                start_date=s.start_date,
                day=day,
                members=relevant,
                timelines=events,
                calendar=calendar,
            )
            out.append(
                {"event_id": new_id(), "source": "jira", **snapshot_row(s.sprint_id, snap, now)}
            )
    if not out:
        return 0
    stmt = dialect_insert(conn, sprint_snapshots)
    columns = [k for k in out[0] if k not in ("event_id", "sprint_id", "snapshot_date", "source")]
    conn.execute(
        stmt.on_conflict_do_update(
            index_elements=["sprint_id", "snapshot_date"],
            set_={k: stmt.excluded[k] for k in columns},
        ),
        out,
    )
    return len(out)
