"""Work item timelines and cycles: hand-computed cases and properties (DESIGN §5)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dpp_lib.calendar import WorkCalendar
from dpp_lib.projections.work_items import ItemEvent, build_timeline, cycle_of, state_of

LON = ZoneInfo("Europe/London")
CAL = WorkCalendar.of("Europe/London", [date(2026, 12, 25)])
UTC_CAL = WorkCalendar.of("UTC")

# status → (stage, active)
MAP = {
    "To Do": ("backlog", False),
    "Analysis": ("ba", True),
    "Ready for Dev": ("dev", False),
    "In Progress": ("dev", True),
    "In Review": ("code_review", True),
    "Ready for QA": ("qa", False),
    "Testing": ("qa", True),
    "Done": ("done", False),
    "Won't Do": ("cancelled", False),
}


def t(day: int, hour: int = 9, minute: int = 0, month: int = 11, tz: ZoneInfo = LON) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=tz)


def ev(kind: str, at: datetime, status: str | None = None) -> ItemEvent:
    if status is None:
        return ItemEvent(kind, at)
    stage, active = MAP[status]
    return ItemEvent(kind, at, status, stage, active)


def flow(*steps: tuple[datetime, str]) -> list[ItemEvent]:
    (first_at, first), *rest = steps
    return [ev("created", first_at, first)] + [ev("transitioned", a, s) for a, s in rest]


def test_simple_item_within_a_week() -> None:
    # Mon 2 Nov 09:00 created; Tue 09:00 in progress; Wed 09:00 review; Thu 21:00 done.
    tl = build_timeline(
        flow((t(2), "To Do"), (t(3), "In Progress"), (t(4), "In Review"), (t(5, 21), "Done"))
    )
    assert tl is not None
    c = cycle_of(tl, CAL)
    assert c is not None
    assert c.first_in_progress == t(3) and c.completed_at == t(5, 21)
    assert c.lead_time_days == pytest.approx(3.5)
    assert c.cycle_time_days == pytest.approx(2.5)
    assert c.stage_durations == {"dev": 1.0, "code_review": 1.5}
    assert c.active_time_days == pytest.approx(2.5) and c.wait_time_days == 0
    assert c.flow_efficiency_pct == 100


def test_weekend_is_not_working_time() -> None:
    # Fri 6 Nov 16:00 in progress → Mon 9 Nov 10:00 done: 8 h + 10 h = 0.75 days
    tl = build_timeline(flow((t(6, 15), "To Do"), (t(6, 16), "In Progress"), (t(9, 10), "Done")))
    c = cycle_of(tl, CAL)  # type: ignore[arg-type]
    assert c is not None and c.cycle_time_days == pytest.approx(0.75)


def test_holiday_is_not_working_time() -> None:
    # Thu 24 Dec 12:00 → Mon 28 Dec 12:00: 0.5 (24th) + 25th holiday + weekend + 0.5 = 1.0
    tl = build_timeline(
        flow(
            (t(24, 11, month=12), "To Do"),
            (t(24, 12, month=12), "In Progress"),
            (t(28, 12, month=12), "Done"),
        )
    )
    c = cycle_of(tl, CAL)  # type: ignore[arg-type]
    assert c is not None and c.cycle_time_days == pytest.approx(1.0)


def test_dst_change_counts_elapsed_hours() -> None:
    # Across London's autumn change (Sun 25 Oct 2026, a weekend): Fri 12:00 → Mon 12:00
    # is half of Friday and half of Monday, whatever the clocks did on Sunday.
    tl = build_timeline(
        flow(
            (t(23, 11, month=10), "To Do"),
            (t(23, 12, month=10), "In Progress"),
            (t(26, 12, month=10), "Done"),
        )
    )
    c = cycle_of(tl, CAL)  # type: ignore[arg-type]
    assert c is not None and c.cycle_time_days == pytest.approx(1.0)
    # A change on a working day: Tehran moved its clocks at midnight on Tuesday 22 Mar 2022,
    # a 23-hour working day, which counts 23/24 (elapsed time, DESIGN §5 "units of 24 h").
    tehran, z = WorkCalendar.of("Asia/Tehran"), ZoneInfo("Asia/Tehran")
    day = tehran.business_days(datetime(2022, 3, 22, tzinfo=z), datetime(2022, 3, 23, tzinfo=z))
    assert day == pytest.approx(23 / 24)


def test_reopened_item_counts_from_last_done_and_done_time_is_wait() -> None:
    tl = build_timeline(
        flow(
            (t(2), "To Do"),
            (t(3), "In Progress"),
            (t(4), "Done"),
            (t(5), "In Progress"),  # re-opened after a day in done
            (t(6), "Done"),
        )
    )
    c = cycle_of(tl, CAL)  # type: ignore[arg-type]
    assert c is not None and c.completed_at == t(6)
    assert c.stage_durations == {"dev": 2.0, "done_queue": 1.0}
    assert c.cycle_time_days == pytest.approx(3.0)
    assert c.flow_efficiency_pct == pytest.approx(200 / 3)


def test_blocked_time_overlapping_a_queue_moves_to_blocked() -> None:
    events = [
        *flow(
            (t(2), "To Do"),
            (t(3), "In Progress"),  # Tue 09:00
            (t(4), "Ready for QA"),  # Wed 09:00
            (t(5), "Testing"),  # Thu 09:00
            (t(6), "Done"),  # Fri 09:00
        ),
        ev("blocked", t(3, 21)),  # Tue 21:00 → Wed 21:00
        ev("unblocked", t(4, 21)),
    ]
    c = cycle_of(build_timeline(events), CAL)  # type: ignore[arg-type]
    assert c is not None
    assert c.stage_durations == {"dev": 0.5, "blocked": 1.0, "qa_queue": 0.5, "qa": 1.0}
    assert c.active_time_days == pytest.approx(1.5) and c.wait_time_days == pytest.approx(1.5)
    assert c.flow_efficiency_pct == pytest.approx(50.0)


def test_item_that_skipped_active_stages_has_no_cycle_time() -> None:
    c = cycle_of(build_timeline(flow((t(2), "To Do"), (t(4), "Done"))), CAL)  # type: ignore[arg-type]
    assert c is not None  # throughput…
    assert c.first_in_progress is None and c.cycle_time_days is None  # …but no cycle time
    assert c.flow_efficiency_pct is None and c.lead_time_days == pytest.approx(2.0)


def test_not_done_and_cancelled_items_have_no_cycle() -> None:
    assert cycle_of(build_timeline(flow((t(2), "To Do"), (t(3), "In Progress"))), CAL) is None  # type: ignore[arg-type]
    cancelled = build_timeline(flow((t(2), "To Do"), (t(3), "In Progress"), (t(4), "Won't Do")))
    assert cycle_of(cancelled, CAL) is None  # type: ignore[arg-type]
    assert state_of(cancelled).stage == "cancelled"  # type: ignore[arg-type]


def test_state_as_of_a_past_moment() -> None:
    events = [*flow((t(2), "To Do"), (t(3), "In Progress"), (t(5), "Done")), ev("blocked", t(4))]
    past = build_timeline(events, as_of=t(4, 12))
    assert past is not None
    s = state_of(past)
    assert (s.stage, s.status, s.is_blocked, s.completed_at) == ("dev", "In Progress", True, None)
    assert s.left_backlog_at == t(3)
    now = state_of(build_timeline(events))  # type: ignore[arg-type]
    assert now.stage == "done" and now.completed_at == t(5)


def test_unmapped_status_is_wait() -> None:
    events = flow((t(2), "To Do"), (t(3), "In Progress"), (t(5), "Done"))
    events.insert(2, ItemEvent("transitioned", t(4), "Mystery", None, False))
    c = cycle_of(build_timeline(events), CAL)  # type: ignore[arg-type]
    assert c is not None and c.stage_durations == {"dev": 1.0, "unmapped_queue": 1.0}


STATUSES = list(MAP)


@st.composite
def histories(draw: st.DrawFn) -> list[ItemEvent]:
    start = datetime(2026, 1, 5, tzinfo=UTC) + timedelta(minutes=draw(st.integers(0, 10_000)))
    n = draw(st.integers(1, 12))
    gaps = draw(st.lists(st.integers(1, 7 * 24 * 60), min_size=n, max_size=n))
    statuses = draw(st.lists(st.sampled_from(STATUSES), min_size=n, max_size=n))
    events, at = [], start
    for i, (gap, status) in enumerate(zip(gaps, statuses, strict=True)):
        events.append(ev("created" if i == 0 else "transitioned", at, status))
        at += timedelta(minutes=gap)
    blocks = draw(st.lists(st.tuples(st.integers(0, 60 * 24 * 40), st.booleans()), max_size=6))
    events += [
        ev("blocked" if on else "unblocked", start + timedelta(minutes=m)) for m, on in blocks
    ]
    events.append(ev("transitioned", at, "Done"))
    return events


@settings(max_examples=200, deadline=None)
@given(histories(), st.randoms())
def test_properties_of_every_cycle(events: list[ItemEvent], rnd: object) -> None:
    c = cycle_of(build_timeline(events), UTC_CAL)  # type: ignore[arg-type]
    assert c is not None
    if c.cycle_time_days is not None:
        assert c.active_time_days + c.wait_time_days == pytest.approx(c.cycle_time_days, abs=1e-5)
    if c.flow_efficiency_pct is not None:
        assert 0 <= c.flow_efficiency_pct <= 100
    # arrival order and redelivery change nothing
    shuffled = list(events) * 2
    rnd.shuffle(shuffled)  # type: ignore[attr-defined]
    assert cycle_of(build_timeline(shuffled), UTC_CAL) == c  # type: ignore[arg-type]


def test_creation_without_a_status_opens_a_status_less_interval() -> None:
    """As DevLake's history has it (a TAPD story created with no status, then Open)."""
    at = t(2)
    tl = build_timeline([ItemEvent("created", at), ev("transitioned", at, "To Do")])
    assert tl is not None
    assert [(i.status, i.start, i.end) for i in tl.intervals] == [
        (None, at, at),
        ("To Do", at, None),
    ]
    assert state_of(tl).stage == "backlog"
