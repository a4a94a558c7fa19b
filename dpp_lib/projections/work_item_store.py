"""Write work item cycles (spec §4.4.2) for the tickets a worker batch touched.

Reads every event of those tickets, rebuilds their timelines with the current status
mappings and calendar, and upserts the cycle of each completed ticket; a ticket that is no
longer done (re-opened, cancelled) loses its row. Recomputing from all of a ticket's events
makes the result independent of arrival order and of redeliveries.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa

from dpp_lib.ingest.lookups import OrgLookups
from dpp_lib.projections.work_items import build_timeline, cycle_of, item_events
from dpp_lib.store.schema import work_item_cycles, work_item_events
from dpp_lib.store.types import new_id
from dpp_lib.store.write import dialect_insert

CHUNK = 500
ATTRIBUTES = ("delivery_stream_id", "tech_stream_ids", "ticket_type", "story_points", "sprint_id")


def refresh_work_item_cycles(
    conn: sa.Connection, tickets: Iterable[str], lookups: OrgLookups
) -> int:
    """Recompute the cycles of ``tickets``; returns how many completed tickets were written."""
    wanted = sorted(set(tickets))
    calendar = lookups.calendar()
    written = 0
    w = work_item_events
    for i in range(0, len(wanted), CHUNK):
        part = wanted[i : i + CHUNK]
        rows = conn.execute(
            sa.select(
                w.c.ticket_id,
                w.c.event_type,
                w.c.event_timestamp,
                w.c.to_status,
                w.c.to_stage,
                *(w.c[a] for a in ATTRIBUTES),
            )
            .where(w.c.ticket_id.in_(part))
            .order_by(w.c.ticket_id, w.c.event_timestamp)
        ).all()
        latest = latest_attributes(rows)
        records = []
        for ticket, events in item_events(rows, lookups.stage_of).items():
            timeline = build_timeline(events)
            cycle = cycle_of(timeline, calendar) if timeline is not None else None
            if cycle is None:
                continue
            records.append(
                {
                    "cycle_id": new_id(),
                    "ticket_id": ticket,
                    **latest.get(ticket, {}),
                    "created_at": cycle.created_at,
                    "first_in_progress": cycle.first_in_progress,
                    "completed_at": cycle.completed_at,
                    "lead_time_days": cycle.lead_time_days,
                    "cycle_time_days": cycle.cycle_time_days,
                    "active_time_days": cycle.active_time_days,
                    "wait_time_days": cycle.wait_time_days,
                    "flow_efficiency_pct": cycle.flow_efficiency_pct,
                    "stage_durations": cycle.stage_durations,
                }
            )
        done = {r["ticket_id"] for r in records}
        stale = [t for t in part if t not in done]
        if stale:
            conn.execute(work_item_cycles.delete().where(work_item_cycles.c.ticket_id.in_(stale)))
        if records:
            stmt = dialect_insert(conn, work_item_cycles)
            columns = [k for k in records[0] if k not in ("cycle_id", "ticket_id")]
            conn.execute(
                stmt.on_conflict_do_update(
                    index_elements=["ticket_id"], set_={k: stmt.excluded[k] for k in columns}
                ),
                [{k: r.get(k) for k in ("cycle_id", "ticket_id", *columns)} for r in records],
            )
        written += len(records)
    return written


def latest_attributes(rows: Iterable[Any]) -> dict[str, dict[str, Any]]:
    """Per ticket, the latest non-null value of each attribute (rows in time order)."""
    out: dict[str, dict[str, Any]] = {}
    for r in rows:
        current = out.setdefault(r.ticket_id, dict.fromkeys(ATTRIBUTES))
        for a in ATTRIBUTES:
            value = getattr(r, a)
            if value is not None:
                current[a] = value
    return out
