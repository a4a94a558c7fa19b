"""Sprint snapshots derived from the events (spec §4.3.7), until the Jira sprint poller
exists; both write ``sprint_snapshots`` (upsert on sprint and date).

Membership: a ticket is in a sprint from the moment an event shows it there — a Sprint
field change whose new value lists the sprint, or a work item event carrying the sprint —
until a Sprint field change drops it. A change's old value also tells the membership before
it (from the ticket's creation). For a snapshot date D (org time zone):
- committed = members at the sprint's start (start of its first day);
- added_after_start / removed_after_start = members at the end of D that were not members
  at the start / members at the start that no longer are;
- completed = members at the end of D that are done by then; remaining = the other members
  that are not cancelled; WIP per stage among them (code_review counts as dev).
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from dpp_lib.calendar import WorkCalendar
from dpp_lib.projections.work_items import ItemEvent, build_timeline, state_of

WIP_COLUMNS = {
    "ba": "wip_ba",
    "dev": "wip_dev",
    "code_review": "wip_dev",
    "qa": "wip_qa",
    "uat": "wip_uat",
}


@dataclass(frozen=True)
class Membership:
    """Observations of one ticket's sprints: (time, sprint ids it is in from then on)."""

    initial: frozenset[str]  # before the first change (from the first change's old value)
    changes: tuple[tuple[datetime, frozenset[str]], ...]  # in time order
    seen: tuple[tuple[datetime, str], ...]  # (time, sprint) from work item events

    def members_of(self, sprint: str, at: datetime) -> bool:
        current = self.initial
        for when, sprints in self.changes:
            if when > at:
                break
            current = sprints
        if sprint in current:
            return True
        # An event showed the ticket in the sprint after the last change before `at`.
        last_change = max((w for w, _ in self.changes if w <= at), default=None)
        return any(
            s == sprint and w <= at and (last_change is None or w >= last_change)
            for w, s in self.seen
        )


def memberships(
    field_changes: Iterable[Mapping[str, Any]], events: Iterable[Mapping[str, Any]]
) -> dict[str, Membership]:
    """From Sprint field changes (ticket_id, event_timestamp, from_value, to_value: lists of
    Jira sprint ids) and work item events (ticket_id, event_timestamp, jira_sprint_id)."""
    changes: dict[str, list[tuple[datetime, list[str], list[str]]]] = defaultdict(list)
    for c in field_changes:
        changes[c["ticket_id"]].append(
            (
                c["event_timestamp"],
                [str(x) for x in c["from_value"] or []],
                [str(x) for x in c["to_value"] or []],
            )
        )
    seen: dict[str, list[tuple[datetime, str]]] = defaultdict(list)
    for e in events:
        if e.get("jira_sprint_id"):
            seen[e["ticket_id"]].append((e["event_timestamp"], str(e["jira_sprint_id"])))
    out = {}
    for ticket in set(changes) | set(seen):
        ordered = sorted(changes.get(ticket, []), key=lambda c: c[0])
        initial = frozenset(ordered[0][1]) if ordered else frozenset()
        out[ticket] = Membership(
            initial,
            tuple((w, frozenset(to)) for w, _, to in ordered),
            tuple(sorted(seen.get(ticket, []))),
        )
    return out


@dataclass(frozen=True)
class Snapshot:
    snapshot_date: date
    committed_count: int
    completed_count: int
    remaining_count: int
    added_after_start: int
    removed_after_start: int
    wip_ba: int
    wip_dev: int
    wip_qa: int
    wip_uat: int


def snapshot(
    *,
    jira_sprint_id: str,
    start_date: date,
    day: date,
    members: Mapping[str, Membership],
    timelines: Mapping[str, list[ItemEvent]],
    calendar: WorkCalendar,
) -> Snapshot:
    zone = calendar.zone
    start = datetime.combine(start_date, time(), zone)
    end = datetime.combine(day + timedelta(days=1), time(), zone)
    at_start = {t for t, m in members.items() if m.members_of(jira_sprint_id, start)}
    at_end = {
        t
        for t, m in members.items()
        if m.members_of(jira_sprint_id, end - timedelta(microseconds=1))
    }
    counts = {"completed": 0, "remaining": 0, "wip_ba": 0, "wip_dev": 0, "wip_qa": 0, "wip_uat": 0}
    for ticket in at_end:
        timeline = build_timeline(timelines.get(ticket, []), as_of=end)
        state = state_of(timeline) if timeline is not None else None
        stage = state.stage if state else None
        if stage == "done":
            counts["completed"] += 1
        elif stage != "cancelled":
            counts["remaining"] += 1
            if stage in WIP_COLUMNS:
                counts[WIP_COLUMNS[stage]] += 1
    return Snapshot(
        snapshot_date=day,
        committed_count=len(at_start),
        completed_count=counts["completed"],
        remaining_count=counts["remaining"],
        added_after_start=len(at_end - at_start),
        removed_after_start=len(at_start - at_end),
        wip_ba=counts["wip_ba"],
        wip_dev=counts["wip_dev"],
        wip_qa=counts["wip_qa"],
        wip_uat=counts["wip_uat"],
    )


def snapshot_row(sprint_id: uuid.UUID, snap: Snapshot, at: datetime) -> dict[str, Any]:
    return {"sprint_id": sprint_id, **snap.__dict__, "event_timestamp": at, "received_at": at}
