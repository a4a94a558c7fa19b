"""Flow metrics on hand-built frames (DESIGN §5, spec §6.2.1, §6.2.3, §6.3.1)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dpp_lib.calendar import WorkCalendar
from dpp_lib.metrics.flow import cycle_time, flow_efficiency, throughput, wip_by_stage
from dpp_lib.metrics.frames import make_frame

AS_OF = datetime(2026, 11, 20, 12, tzinfo=UTC)  # a Friday


def ago(**kw: float) -> datetime:
    return AS_OF - timedelta(**kw)


def item(
    ticket: str, stage: str | None, *, left: datetime | None = None, **kw: Any
) -> dict[str, Any]:
    return {
        "ticket_id": ticket,
        "stage": stage,
        "status": stage,
        "is_blocked": False,
        "created_at": ago(days=60),
        "left_backlog_at": left,
        **kw,
    }


def test_wip_counts_stages_blocked_and_aging() -> None:
    items = make_frame(
        "items",
        [
            item("A-1", "dev", left=ago(hours=2)),
            item("A-2", "dev", left=ago(hours=30), is_blocked=True),
            item("A-3", "qa", left=ago(days=5)),
            item("A-4", "uat", left=ago(days=9)),
            item("A-5", "backlog"),
            item("A-6", "done", left=ago(days=20)),
            item("A-7", "cancelled", left=ago(days=3)),
            item("A-8", None),  # unmapped status
            item("A-9", "dev", left=ago(hours=1), created_at=AS_OF + timedelta(hours=1)),  # future
        ],
    )
    wip = wip_by_stage(items, as_of=AS_OF)
    assert wip.by_stage == {"ba": 0, "dev": 2, "code_review": 0, "qa": 1, "uat": 1}
    assert wip.blocked == 1 and wip.unmapped == 1 and wip.sample_size == 4
    assert wip.aging == {"<24h": 1, "24-72h": 1, "72h-7d": 1, ">7d": 1}
    assert wip.aging_by_stage["dev"] == {"<24h": 1, "24-72h": 1, "72h-7d": 0, ">7d": 0}
    assert [a.ticket_id for a in wip.oldest] == ["A-4", "A-3", "A-2", "A-1"]


def test_wip_of_an_empty_stream() -> None:
    wip = wip_by_stage(make_frame("items"), as_of=AS_OF)
    assert wip.sample_size == 0 and sum(wip.by_stage.values()) == 0 and wip.oldest == ()


def cyc(ticket: str, completed: datetime, cycle: float | None, **kw: Any) -> dict[str, Any]:
    return {
        "ticket_id": ticket,
        "completed_at": completed,
        "created_at": completed - timedelta(days=20),
        "first_in_progress": None if cycle is None else completed - timedelta(days=cycle),
        "cycle_time_days": cycle,
        "lead_time_days": 10.0,
        "active_time_days": kw.pop("active", 0.0),
        "wait_time_days": kw.pop("wait", 0.0),
        "flow_efficiency_pct": kw.pop("eff", None),
        "stage_durations": kw.pop("durations", {}),
        **kw,
    }


def test_cycle_time_percentiles_scatter_and_outliers() -> None:
    cycles = make_frame(
        "cycles",
        [
            cyc("C-1", ago(days=1), 1.0),
            cyc("C-2", ago(days=2), 2.0),
            cyc("C-3", ago(days=3), 3.0),
            cyc("C-4", ago(days=4), 4.0),
            cyc("C-5", ago(days=5), 10.0),
            cyc("C-6", ago(days=6), None),  # never active: not in the statistics
            cyc("C-7", ago(days=31), 50.0),  # outside the 30-day window
            cyc("C-8", AS_OF, 70.0),  # at as_of: outside [as_of − 30 d, as_of)
        ],
    )
    ct = cycle_time(cycles, as_of=AS_OF)
    # numpy linear: [1, 2, 3, 4, 10] → p50 3, p85 = 4 + 0.4 × 6 = 6.4, p95 = 4 + 0.8 × 6 = 8.8
    assert (ct.p50, ct.p85, ct.p95) == (3.0, 6.4, 8.8)
    assert ct.sample_size == 5 and ct.outliers == ("C-5",)
    assert [p.ticket_id for p in ct.scatter] == ["C-5", "C-4", "C-3", "C-2", "C-1"]


def test_cycle_time_of_an_empty_window() -> None:
    ct = cycle_time(make_frame("cycles"), as_of=AS_OF)
    assert (ct.p50, ct.p85, ct.p95, ct.sample_size) == (None, None, None, 0)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.floats(0, 200, allow_nan=False), min_size=1, max_size=60))
def test_percentiles_are_ordered(values: list[float]) -> None:
    cycles = make_frame("cycles", [cyc(f"X-{i}", ago(days=1), v) for i, v in enumerate(values)])
    ct = cycle_time(cycles, as_of=AS_OF)
    assert ct.p50 is not None and ct.p85 is not None and ct.p95 is not None
    assert ct.p50 <= ct.p85 <= ct.p95


def test_throughput_weekly_series_in_the_org_time_zone() -> None:
    cal = WorkCalendar.of("Europe/London")
    cycles = make_frame(
        "cycles",
        [
            cyc("T-1", datetime(2026, 11, 16, 0, 30, tzinfo=UTC), 1.0),  # Mon
            cyc("T-2", datetime(2026, 11, 15, 23, 30, tzinfo=UTC), 1.0),  # Sun: week before
            cyc("T-3", datetime(2026, 11, 2, 10, tzinfo=UTC), None),  # never active: counts
        ],
    )
    tp = throughput(cycles, as_of=AS_OF, window_days=21, calendar=cal)
    assert tp.completed == 3 and tp.per_week == 1.0
    assert tp.weekly == {
        date(2026, 10, 26): 0,
        date(2026, 11, 2): 1,
        date(2026, 11, 9): 1,
        date(2026, 11, 16): 1,
    }


def test_zero_throughput() -> None:
    tp = throughput(make_frame("cycles"), as_of=AS_OF, window_days=14)
    assert tp.completed == 0 and tp.per_week == 0 and set(tp.weekly.values()) == {0}


def test_flow_efficiency_means_and_queues() -> None:
    cycles = make_frame(
        "cycles",
        [
            cyc(
                "F-1",
                ago(days=1),
                4.0,
                active=1.0,
                wait=3.0,
                eff=25.0,
                durations={"dev": 1.0, "qa_queue": 2.0, "blocked": 1.0},
            ),
            cyc(
                "F-2",
                ago(days=2),
                2.0,
                active=1.5,
                wait=0.5,
                eff=75.0,
                durations={"dev": 1.5, "uat_queue": 0.5},
            ),
            cyc("F-3", ago(days=3), None),  # never active: left out
        ],
    )
    fe = flow_efficiency(cycles, as_of=AS_OF)
    assert fe.flow_efficiency_pct == 50.0 and fe.sample_size == 2
    assert fe.active_days == 1.25 and fe.wait_days == 1.75
    assert [(q.key, q.mean_days, q.items) for q in fe.queues] == [
        ("qa_queue", 1.0, 1),
        ("blocked", 0.5, 1),
        ("uat_queue", 0.25, 1),
    ]
    assert fe.slowest_queue == "qa_queue"
    assert sum(q.mean_days for q in fe.queues) == pytest.approx(fe.wait_days)


def test_flow_efficiency_without_data() -> None:
    fe = flow_efficiency(make_frame("cycles"), as_of=AS_OF)
    assert fe.flow_efficiency_pct is None and fe.sample_size == 0 and fe.queues == ()
