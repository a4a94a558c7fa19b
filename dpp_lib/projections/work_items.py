"""Work item timelines and cycles (spec §4.4.2, DESIGN §5 "Work item timeline/cycle").

Pure functions from a ticket's events to its status timeline, its state at a moment and —
once completed — its cycle record. ``dpp_lib.projections.work_item_store`` writes the
records; ``dpp_lib.store.read`` uses the same functions to answer for a past ``as_of``.

Rules (DESIGN §5):
- The timeline is built from ``created``/``transitioned`` events in time order; each
  interval has a status, its stage and its active/wait flag. Blocked intervals run from a
  ``blocked``/``flagged`` event to the next ``unblocked``/``unflagged``.
- An item is completed when it enters stage ``done``; a re-opened item counts from its last
  entry into ``done``. ``cancelled`` items are neither WIP nor throughput.
- ``first_in_progress`` = first entry into an active status. cycle = business days
  first_in_progress → completed; lead = created → completed.
- ``stage_durations``: the stage for active statuses, ``<stage>_queue`` for wait statuses;
  time while blocked moves to ``blocked``. Time in ``done`` before a re-open is wait under
  ``done_queue``. A status with no mapping counts as wait under ``unmapped_queue``.
- Items never in an active status are throughput, without cycle time or flow efficiency.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from dpp_lib.calendar import WorkCalendar

STATUS_EVENTS = ("created", "transitioned")
BLOCK_ON = ("blocked", "flagged")
BLOCK_OFF = ("unblocked", "unflagged")
# Same timestamp: the creation comes first, then status changes, then blocks.
_EVENT_ORDER = {"created": 0, "transitioned": 1, "completed": 2, "blocked": 3, "flagged": 3}
_EVENT_ORDER |= {"unblocked": 4, "unflagged": 4}
DONE, CANCELLED, BACKLOG = "done", "cancelled", "backlog"


@dataclass(frozen=True)
class ItemEvent:
    """One work item event, as the timeline needs it."""

    event_type: str
    at: datetime
    status: str | None = None
    stage: str | None = None  # None: the status has no mapping
    active: bool = False


@dataclass(frozen=True)
class StatusInterval:
    status: str | None
    stage: str | None
    active: bool
    start: datetime
    end: datetime | None  # None: still in it


@dataclass(frozen=True)
class Timeline:
    intervals: tuple[StatusInterval, ...]
    blocked: tuple[tuple[datetime, datetime | None], ...]
    created_at: datetime

    @property
    def current(self) -> StatusInterval | None:
        return self.intervals[-1] if self.intervals else None

    @property
    def completed_at(self) -> datetime | None:
        """Start of the current run of ``done`` intervals, if the item is done now."""
        at = None
        for interval in reversed(self.intervals):
            if interval.stage != DONE:
                break
            at = interval.start
        return at

    @property
    def first_in_progress(self) -> datetime | None:
        return next((i.start for i in self.intervals if i.active), None)

    @property
    def left_backlog_at(self) -> datetime | None:
        return next(
            (i.start for i in self.intervals if i.stage is not None and i.stage != BACKLOG), None
        )

    def is_blocked(self) -> bool:
        return bool(self.blocked) and self.blocked[-1][1] is None


def _sort_key(e: ItemEvent) -> tuple[datetime, int, str]:
    return (e.at, _EVENT_ORDER.get(e.event_type, 9), e.status or "")


def build_timeline(
    events: Iterable[ItemEvent], *, as_of: datetime | None = None
) -> Timeline | None:
    """The timeline from events before ``as_of`` (all when None); None without any event."""
    ordered = sorted((e for e in events if as_of is None or e.at < as_of), key=_sort_key)
    if not ordered:
        return None
    created = next((e.at for e in ordered if e.event_type == "created"), ordered[0].at)
    intervals: list[StatusInterval] = []
    blocked: list[tuple[datetime, datetime | None]] = []
    for e in ordered:
        # A creation without a status (seen from TAPD-synced issues) opens a status-less
        # interval, as DevLake's history has it; a transition always names its status.
        starts_unknown = e.event_type == "created" and not intervals
        if e.event_type in STATUS_EVENTS and (e.status is not None or starts_unknown):
            if intervals and intervals[-1].status == e.status and intervals[-1].end is None:
                continue  # a repeated status (a redelivered created + transition) adds nothing
            if intervals:
                last = intervals[-1]
                intervals[-1] = StatusInterval(
                    last.status, last.stage, last.active, last.start, e.at
                )
            intervals.append(StatusInterval(e.status, e.stage, e.active, e.at, None))
        elif e.event_type in BLOCK_ON:
            if not blocked or blocked[-1][1] is not None:
                blocked.append((e.at, None))
        elif e.event_type in BLOCK_OFF and blocked and blocked[-1][1] is None:
            blocked[-1] = (blocked[-1][0], e.at)
    return Timeline(tuple(intervals), tuple(blocked), created)


@dataclass(frozen=True)
class Cycle:
    created_at: datetime
    first_in_progress: datetime | None
    completed_at: datetime
    lead_time_days: float
    cycle_time_days: float | None
    active_time_days: float
    wait_time_days: float
    flow_efficiency_pct: float | None
    stage_durations: dict[str, float] = field(default_factory=dict)


def duration_key(interval: StatusInterval) -> str:
    if interval.stage is None:
        return "unmapped_queue"
    if interval.active and interval.stage != DONE:
        return interval.stage
    return f"{interval.stage}_queue"


def cycle_of(timeline: Timeline, calendar: WorkCalendar) -> Cycle | None:
    """The cycle record of a completed item; None while it is not done."""
    completed = timeline.completed_at
    if completed is None:
        return None
    first = timeline.first_in_progress
    if first is not None and first > completed:
        first = None  # only active after a re-open that ended in done again: not possible
    start = first if first is not None else timeline.created_at
    durations: dict[str, float] = defaultdict(float)
    blocked = [(b, e or completed) for b, e in timeline.blocked]
    for interval in timeline.intervals:
        lo = max(interval.start, start)
        hi = min(interval.end or completed, completed)
        if hi <= lo:
            continue
        total = calendar.business_days(lo, hi)
        blocked_part = sum(
            calendar.business_days(max(lo, b), min(hi, e)) for b, e in blocked if e > lo and b < hi
        )
        blocked_part = min(blocked_part, total)
        if blocked_part:
            durations["blocked"] += blocked_part
        if total - blocked_part:
            durations[duration_key(interval)] += total - blocked_part
    active = sum(v for k, v in durations.items() if k != "blocked" and not k.endswith("_queue"))
    wait = sum(v for k, v in durations.items() if k == "blocked" or k.endswith("_queue"))
    efficiency = active / (active + wait) * 100 if first is not None and active + wait > 0 else None
    return Cycle(
        created_at=timeline.created_at,
        first_in_progress=first,
        completed_at=completed,
        lead_time_days=round(calendar.business_days(timeline.created_at, completed), 6),
        cycle_time_days=round(calendar.business_days(first, completed), 6) if first else None,
        active_time_days=round(active, 6),
        wait_time_days=round(wait, 6),
        flow_efficiency_pct=round(efficiency, 4) if efficiency is not None else None,
        stage_durations={k: round(v, 6) for k, v in sorted(durations.items()) if v},
    )


@dataclass(frozen=True)
class ItemState:
    """An item's state at a moment (for WIP, aging and remaining scope)."""

    stage: str | None
    status: str | None
    is_blocked: bool
    created_at: datetime
    left_backlog_at: datetime | None
    completed_at: datetime | None


def state_of(timeline: Timeline) -> ItemState:
    current = timeline.current
    return ItemState(
        stage=current.stage if current else None,
        status=current.status if current else None,
        is_blocked=timeline.is_blocked(),
        created_at=timeline.created_at,
        left_backlog_at=timeline.left_backlog_at,
        completed_at=timeline.completed_at,
    )


def item_events(
    rows: Iterable[Any], mapping: Callable[[str, str], tuple[str, bool] | None] | None = None
) -> dict[str, list[ItemEvent]]:
    """Group work_item_events rows (dicts or SQLAlchemy rows with ticket_id, event_type,
    event_timestamp, to_status, to_stage) per ticket. ``mapping(ticket_id, status)`` gives
    (stage, active) from the current status mappings, or None to keep the stored stage."""
    out: dict[str, list[ItemEvent]] = defaultdict(list)
    for row in rows:
        r = row if isinstance(row, Mapping) else row._mapping  # dicts or SQLAlchemy rows
        ticket: str = r["ticket_id"]
        status: str | None = r["to_status"]
        stage: str | None = r["to_stage"]
        active = False
        if mapping is not None and status is not None:
            found = mapping(ticket, status)
            if found is not None:
                stage, active = found
        out[ticket].append(ItemEvent(r["event_type"], r["event_timestamp"], status, stage, active))
    return out
