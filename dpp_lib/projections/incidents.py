"""Incident time to restore (spec §5.4.2, DESIGN §5 "Time to restore").

Per incident: first resolved event − first open event, in whole minutes, written on the
resolved event(s). Recomputed for every incident a batch touches, so the answer does not
depend on whether the open or the resolve arrived first.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

import sqlalchemy as sa

from dpp_lib.store.schema import incident_events

OPEN_EVENTS = ("alarm_triggered", "incident_opened")
RESOLVE_EVENTS = ("alarm_resolved", "incident_resolved")


def restore_minutes(opened_at: datetime, resolved_at: datetime) -> int:
    """Whole minutes from open to resolve (half up), never negative."""
    seconds = (resolved_at - opened_at).total_seconds()
    return max(0, int(seconds / 60 + 0.5))


def update_time_to_restore(conn: sa.Connection, incident_ids: Iterable[str]) -> int:
    wanted = sorted(set(incident_ids))
    if not wanted:
        return 0
    t = incident_events
    rows = conn.execute(
        sa.select(t.c.incident_id, t.c.event_type, t.c.event_timestamp).where(
            t.c.incident_id.in_(wanted)
        )
    ).all()
    opened: dict[str, datetime] = {}
    resolved: dict[str, datetime] = {}
    for r in rows:
        target = opened if r.event_type in OPEN_EVENTS else resolved
        if r.incident_id not in target or r.event_timestamp < target[r.incident_id]:
            target[r.incident_id] = r.event_timestamp
    params = [
        {
            "iid": incident,
            "ra": resolved_at,
            "minutes": restore_minutes(opened[incident], resolved_at)
            if incident in opened
            else None,
        }
        for incident, resolved_at in sorted(resolved.items())
    ]
    if params:
        conn.execute(
            t.update()
            .where(
                t.c.incident_id == sa.bindparam("iid"),
                # an OR, not IN: expanding IN parameters cannot be used with executemany
                sa.or_(*(t.c.event_type == e for e in RESOLVE_EVENTS)),
            )
            .values(resolved_at=sa.bindparam("ra"), time_to_restore_min=sa.bindparam("minutes")),
            params,
        )
    return len(params)
