"""Forecasts (spec §6.2.2, §6.5, §6.5.1; DESIGN §5): hand-computed cases and properties.

The calendar is Europe/London (UTC in winter) with holidays on 25–26 Dec 2025, 1 Jan 2026,
Wed 11 Mar 2026 (a test holiday inside the active sprint), Good Friday 3 Apr and Easter
Monday 6 Apr 2026. Expected values are worked out by hand in the comments.
"""

from __future__ import annotations

import time
from datetime import UTC, date, datetime, timedelta
from math import comb
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dpp_lib.calendar import WorkCalendar
from dpp_lib.metrics.common import MetricInputError
from dpp_lib.metrics.forecast import (
    MAX_WEEKS,
    WhenBin,
    count_reached_in_share,
    forecast_how_many,
    forecast_when,
    sprint_confidence,
    week_reached_by_share,
)
from dpp_lib.metrics.frames import make_frame
from dpp_lib.metrics.registry import load_all

HOLIDAYS = [date(2025, 12, 25), date(2025, 12, 26), date(2026, 1, 1), date(2026, 3, 11)]
CAL = WorkCalendar.of("Europe/London", [*HOLIDAYS, date(2026, 4, 3), date(2026, 4, 6)])


def at(day: date, hour: int = 12) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=UTC)


def d(month: int, day: int, year: int = 2026) -> date:
    return date(year, month, day)


def working_days(first: date, last: date) -> list[date]:
    days = (first + timedelta(days=i) for i in range((last - first).days + 1))
    return [x for x in days if CAL.is_working_day(x)]


def cycles(per_day: dict[date, int]) -> pd.DataFrame:
    """One cycles row per completion, each at 12:00 UTC (= London in winter) of its day."""
    rows = [
        {"ticket_id": f"T-{day.isoformat()}-{i}", "completed_at": at(day)}
        for day, n in sorted(per_day.items())
        for i in range(n)
    ]
    return make_frame("cycles", rows)


def sprint(sprint_id: str, state: str, start: date, end: date) -> dict[str, Any]:
    return {"sprint_id": sprint_id, "state": state, "start_date": start, "end_date": end}


# Two-week sprints. S2 holds the Christmas holidays: 7 working days. S7 is active and holds
# the test holiday Wed 11 Mar. S8 is in the future.
SPRINTS = make_frame(
    "sprints",
    [
        sprint("S0", "closed", d(11, 24, 2025), d(12, 5, 2025)),
        sprint("S1", "closed", d(12, 8, 2025), d(12, 19, 2025)),
        sprint("S2", "closed", d(12, 22, 2025), d(1, 2)),
        sprint("S3", "closed", d(1, 5), d(1, 16)),
        sprint("S4", "closed", d(1, 19), d(1, 30)),
        sprint("S5", "closed", d(2, 2), d(2, 13)),
        sprint("S6", "closed", d(2, 16), d(2, 27)),
        sprint("S7", "active", d(3, 2), d(3, 13)),
        sprint("S8", "future", d(3, 16), d(3, 27)),
    ],
)
SAMPLED_DAYS = working_days(d(12, 8, 2025), d(2, 27))  # S1..S6: 10 + 7 + 4 × 10 = 57
S0_DAYS = working_days(d(11, 24, 2025), d(12, 5, 2025))


def snapshots(sprint_id: str, remaining: dict[date, int]) -> pd.DataFrame:
    rows = [
        {"sprint_id": sprint_id, "snapshot_date": day, "remaining_count": n}
        for day, n in remaining.items()
    ]
    return make_frame("snapshots", rows)


# S0 is the seventh-latest closed sprint: its 5 a day must never be sampled. One a day
# goes on until Wed 4 Mar, inside the active sprint S7 (not sampled by sprint confidence).
ONE_A_DAY = cycles(
    {**dict.fromkeys(S0_DAYS, 5), **dict.fromkeys(working_days(d(12, 8, 2025), d(3, 4)), 1)}
)
S7_SNAPSHOTS = snapshots("S7", {d(3, 2): 9, d(3, 5): 6, d(3, 9): 4, d(3, 13): 2, d(3, 20): 99})


def test_the_fixture_samples_57_working_days() -> None:
    assert len(SAMPLED_DAYS) == 57


# ---------------------------------------------------------------- sprint_confidence


@pytest.mark.parametrize(
    ("as_of", "remaining", "days_left", "confidence"),
    [
        # Wed 4 Mar: 2 Mar snapshot (9); Wed 4, Thu 5, Fri 6, Mon 9, Tue 10, Thu 12, Fri 13
        # (weekend and the Wed 11 holiday skipped) = 7 days × 1 item < 9.
        (at(d(3, 4), 10), 9, 7, 0.0),
        # Thu 5 Mar: its own snapshot (6); 6 days left × 1 item = 6 ≥ 6 in every run.
        (at(d(3, 5), 10), 6, 6, 100.0),
        # Mon 9 Mar: 4 left; Mon 9, Tue 10, Thu 12, Fri 13 = 4 days.
        (at(d(3, 9), 10), 4, 4, 100.0),
        # Fri 13 Mar, the last day: 1 day, 2 left.
        (at(d(3, 13), 10), 2, 1, 0.0),
        # Sat 14 Mar: the sprint overruns (still active), no working day left.
        (at(d(3, 14), 10), 2, 0, 0.0),
    ],
)
def test_sprint_confidence_with_one_item_a_day(
    as_of: datetime, remaining: int, days_left: int, confidence: float
) -> None:
    got = sprint_confidence(ONE_A_DAY, SPRINTS, S7_SNAPSHOTS, as_of=as_of, calendar=CAL)
    assert got.sprint_id == "S7"
    assert got.remaining_count == remaining
    assert got.working_days_left == days_left
    assert got.confidence_pct == confidence
    assert got.sample_size == 57
    assert got.closed_sprints == 6
    assert got.mean_daily_throughput == 1.0  # S0's 5 a day would raise it


def test_sprint_confidence_one_more_item_than_days_is_zero() -> None:
    # Thu 5 Mar, 6 days of exactly 1 item: 7 remaining is never reached. Had S0 (5 a day)
    # been sampled, some runs would reach it.
    snaps = snapshots("S7", {d(3, 5): 7})
    got = sprint_confidence(ONE_A_DAY, SPRINTS, snaps, as_of=at(d(3, 5), 10), calendar=CAL)
    assert got.confidence_pct == 0.0
    assert got.simulations == 1000


def test_sprint_confidence_with_zero_or_two_items_a_day() -> None:
    # Samples alternate 0, 2 over the 57 days: 28 twos, p = 28/57. Six days left, 6
    # remaining: success = at least 3 twos in 6 draws = Σ_{k≥3} C(6,k) p^k (1−p)^(6−k).
    per_day = {day: 2 * (i % 2) for i, day in enumerate(SAMPLED_DAYS)}
    p = 28 / 57
    exact = 100 * sum(comb(6, k) * p**k * (1 - p) ** (6 - k) for k in range(3, 7))
    got = sprint_confidence(
        cycles(per_day), SPRINTS, S7_SNAPSHOTS, as_of=at(d(3, 5), 10), calendar=CAL
    )
    assert got.confidence_pct is not None
    assert abs(got.confidence_pct - exact) < 5  # 1,000 runs: σ ≈ 1.5 points
    assert got.mean_daily_throughput == round(56 / 57, 2)


@pytest.mark.parametrize(
    ("first", "last", "done_on", "sample_size"),
    [
        # Closed sprint Mon 9 – Fri 20 Feb; 5 items done Sat 21 and 5 Sun 22 Feb count on
        # Fri 20 Feb, inside it: nine 0s and one 10, mean 1.0 (on Mon 23 they would be lost).
        (d(2, 9), d(2, 20), [d(2, 21), d(2, 22)], 10),
        # Closed sprint Mon 22 Dec – Fri 2 Jan (7 working days); 7 items done on the
        # New Year holiday count on Wed 31 Dec: mean 1.0.
        (d(12, 22, 2025), d(1, 2), [d(1, 1)], 7),
    ],
)
def test_sprint_confidence_counts_non_working_days_on_the_working_day_before(
    first: date, last: date, done_on: list[date], sample_size: int
) -> None:
    frame = make_frame(
        "sprints", [sprint("A", "closed", first, last), sprint("B", "active", d(3, 2), d(3, 13))]
    )
    done = cycles(dict.fromkeys(done_on, sample_size // len(done_on)))
    snaps = snapshots("B", {d(3, 5): 3})
    got = sprint_confidence(done, frame, snaps, as_of=at(d(3, 5)), calendar=CAL)
    assert got.sample_size == sample_size
    assert got.mean_daily_throughput == 1.0


@pytest.mark.parametrize(
    ("sprints", "snaps", "confidence", "reason"),
    [
        # Only closed sprints: nothing is active on Thu 5 Mar.
        (SPRINTS[SPRINTS["state"] == "closed"], S7_SNAPSHOTS, None, "no active sprint"),
        # The active sprint has no snapshot yet.
        (SPRINTS, snapshots("S6", {d(2, 20): 3}), None, "no sprint snapshot"),
        # No closed sprint to sample from.
        (SPRINTS[SPRINTS["state"] != "closed"], S7_SNAPSHOTS, None, "no closed sprint"),
        # Nothing remaining: 100 even without any history.
        (SPRINTS[SPRINTS["state"] != "closed"], snapshots("S7", {d(3, 4): 0}), 100.0, None),
    ],
)
def test_sprint_confidence_edges(
    sprints: pd.DataFrame, snaps: pd.DataFrame, confidence: float | None, reason: str | None
) -> None:
    got = sprint_confidence(ONE_A_DAY, sprints, snaps, as_of=at(d(3, 5), 10), calendar=CAL)
    assert got.confidence_pct == confidence
    if reason is None:
        assert got.reason is None
    else:
        assert got.reason is not None and reason in got.reason
    assert got.simulations == 0


def test_sprint_confidence_samples_only_sprints_ended_before_today() -> None:
    # Fri 27 Feb: A (closed) ends today, B is active: today is partial, so A is not a
    # sample sprint yet and there is nothing to sample.
    frame = make_frame(
        "sprints",
        [sprint("A", "closed", d(2, 16), d(2, 27)), sprint("B", "active", d(2, 23), d(3, 6))],
    )
    snaps = snapshots("B", {d(2, 27): 3})
    got = sprint_confidence(ONE_A_DAY, frame, snaps, as_of=at(d(2, 27)), calendar=CAL)
    assert (got.sprint_id, got.closed_sprints, got.confidence_pct) == ("B", 0, None)
    assert got.reason is not None and "no closed sprint" in got.reason


def test_sprint_confidence_can_name_the_sprint() -> None:
    # Asking for S6 (ended Fri 27 Feb) on Thu 5 Mar: 0 days left, 3 remaining → 0; the
    # closed sprints sampled are then S0..S5.
    snaps = snapshots("S6", {d(2, 20): 3})
    got = sprint_confidence(
        ONE_A_DAY, SPRINTS, snaps, as_of=at(d(3, 5)), calendar=CAL, sprint_id="S6"
    )
    assert (got.sprint_id, got.working_days_left, got.confidence_pct) == ("S6", 0, 0.0)
    assert got.mean_daily_throughput == round((10 * 5 + 47) / 57, 2)


# ---------------------------------------------------------------- forecast_how_many


def test_how_many_one_item_a_day() -> None:
    # Thu 5 Mar, window 12 weeks: samples are Thu 11 Dec 2025 – Wed 4 Mar 2026, 60 weekdays
    # less 3 holidays = 57, all 1. Six working days left (the Wed 11 Mar holiday skipped):
    # every run completes exactly 6.
    got = forecast_how_many(ONE_A_DAY, SPRINTS, as_of=at(d(3, 5), 10), calendar=CAL)
    assert (got.p50, got.p85, got.p95) == (6, 6, 6)
    assert got.sample_size == 57
    assert got.working_days_left == 6
    assert got.weeks_remaining == 1.2
    assert got.simulations == 1000
    assert got.window_weeks == 12
    assert got.reason is None


def test_how_many_with_zero_or_two_items_a_day() -> None:
    # Window 8 weeks: Thu 8 Jan – Wed 4 Mar, 40 working days alternating 0, 2 (p = ½).
    # 6 days: total = 2 × Binomial(6, ½). P(total ≥ 6) = 42/64, P(≥ 8) = 22/64 → p50 = 6;
    # P(≥ 4) = 57/64 = 0.89 → p85 = 4; P(≥ 2) = 63/64 = 0.98, P(≥ 4) < 0.95 → p95 = 2.
    days = working_days(d(1, 8), d(3, 4))
    assert len(days) == 40
    done = cycles({day: 2 * (i % 2) for i, day in enumerate(days)} | {d(1, 7): 1})
    got = forecast_how_many(done, SPRINTS, as_of=at(d(3, 5), 10), calendar=CAL, window=8)
    assert (got.p50, got.p85, got.p95) == (6, 4, 2)
    assert got.sample_size == 40


def test_how_many_history_starts_at_the_first_completion() -> None:
    # First completion Mon 23 Feb, one a day since: 8 samples (23 Feb – 4 Mar), all 1, so
    # 6 in every run. Counting the 49 earlier days of the window as zeros would lower it.
    done = cycles(dict.fromkeys(working_days(d(2, 23), d(3, 4)), 1))
    got = forecast_how_many(done, SPRINTS, as_of=at(d(3, 5), 10), calendar=CAL)
    assert got.sample_size == 8
    assert (got.p50, got.p85, got.p95) == (6, 6, 6)


def test_how_many_with_zero_throughput_in_the_window() -> None:
    # Completions only in Oct 2025, before the 12-week window: 57 zero samples.
    done = cycles({d(10, 14, 2025): 3})
    got = forecast_how_many(done, SPRINTS, as_of=at(d(3, 5), 10), calendar=CAL)
    assert (got.p50, got.p85, got.p95, got.sample_size) == (0, 0, 0, 57)


@pytest.mark.parametrize(
    ("done", "sprints", "as_of", "expected"),
    [
        # No completion ever: no samples.
        (cycles({}), SPRINTS, at(d(3, 5)), (None, 6, "no completed items")),
        # No active sprint.
        (ONE_A_DAY, SPRINTS[SPRINTS["sprint_id"] != "S7"], at(d(3, 5)), (None, None, "sprint")),
        # Sat 14 Mar: S7 overruns, nothing more can be done.
        (ONE_A_DAY, SPRINTS, at(d(3, 14)), (0, 0, "no working days left")),
    ],
)
def test_how_many_edges(
    done: pd.DataFrame, sprints: pd.DataFrame, as_of: datetime, expected: tuple[Any, ...]
) -> None:
    p, days_left, reason = expected
    got = forecast_how_many(done, sprints, as_of=as_of, calendar=CAL)
    assert (got.p50, got.p85, got.p95) == (p, p, p)
    assert got.working_days_left == days_left
    assert got.reason is not None and reason in got.reason


# ---------------------------------------------------------------- forecast_when

AS_OF = at(d(3, 11))  # Wed 11 Mar 2026; the current week starts Mon 9 Mar
WEEK = {k: d(3, 9) - timedelta(weeks=k) for k in range(1, 21)}  # WEEK[1] = Mon 2 Mar


def weekly(counts: list[int]) -> pd.DataFrame:
    """counts[0] items done on the Tuesday of the oldest week, …, the last one in WEEK[1]."""
    n = len(counts)
    return cycles({WEEK[n - i] + timedelta(days=1): c for i, c in enumerate(counts)})


def scope(n: int) -> pd.DataFrame:
    rows = [{"ticket_id": f"S-{i}", "stage": "dev", "created_at": at(d(1, 5))} for i in range(n)]
    return make_frame("items", rows)


def test_when_six_weeks_of_history_runs_monte_carlo() -> None:
    # 2 a week for 6 weeks, 5 remaining: 2, 4, 6 → every run finishes in week 3, which
    # covers Wed 25 – Tue 31 Mar: all percentiles are Tue 31 Mar.
    got = forecast_when(weekly([2] * 6), scope(5), as_of=AS_OF, calendar=CAL)
    assert got.method == "monte_carlo"
    assert (got.sample_size, got.weeks_needed, got.simulation_runs) == (6, 0, 10_000)
    dates = (
        got.p50_completion_date,
        got.p70_completion_date,
        got.p85_completion_date,
        got.p95_completion_date,
    )
    assert dates == (d(3, 31),) * 4
    assert got.histogram == (WhenBin(3, d(3, 31), 10_000, 100.0, 100.0),)
    assert not got.low_confidence
    assert got.reason is None


def test_when_five_weeks_of_history_is_a_linear_projection() -> None:
    # Weeks 2 Feb … 2 Mar: 2, 0, 3, 1, 4 (the zero week counts) → mean 2.0 a week.
    # 7 remaining ÷ 2 = 3.5 weeks = 24.5 days → span Wed 11 Mar … Sat 4 Apr; Good Friday
    # 3 Apr is a holiday, so Thu 2 Apr. One more week of data is needed.
    got = forecast_when(weekly([2, 0, 3, 1, 4]), scope(7), as_of=AS_OF, calendar=CAL)
    assert got.method == "linear"
    assert got.low_confidence
    assert (got.sample_size, got.weeks_needed) == (5, 1)
    assert got.mean_weekly_throughput == 2.0
    assert got.projected_weeks == 3.5
    assert got.projected_completion_date == d(4, 2)
    assert got.p50_completion_date is None and got.p95_completion_date is None
    assert got.histogram == ()
    assert got.simulation_runs == 0
    assert got.reason is not None and "1 more" in got.reason


def test_when_percentiles_of_a_two_valued_history() -> None:
    # Weeks: 10, 0, 10, 0, 10, 10 → a run finishes in week k with P = (1/3)^(k−1) × 2/3;
    # by week 1: 66.7 %, 2: 88.9 %, 3: 96.3 %. p50 = week 1 (Tue 17 Mar), p70 = p85 =
    # week 2 (Tue 24 Mar), p95 = week 3 (Tue 31 Mar).
    got = forecast_when(weekly([10, 0, 10, 0, 10, 10]), scope(10), as_of=AS_OF, calendar=CAL)
    assert got.p50_completion_date == d(3, 17)
    assert got.p70_completion_date == d(3, 24)
    assert got.p85_completion_date == d(3, 24)
    assert got.p95_completion_date == d(3, 31)
    first, second, third = got.histogram[:3]
    assert (first.weeks, first.completion_date) == (1, d(3, 17))
    assert abs(first.pct - 66.7) < 1.5 and abs(second.pct - 22.2) < 1.5
    assert abs(third.cumulative_pct - 96.3) < 1
    assert got.histogram[-1].cumulative_pct == 100.0


@pytest.mark.parametrize(
    ("per_week", "remaining", "weeks"),
    [
        (2, 5, 3),  # 2, 4, 6
        (4, 4, 1),
        (1, 300, 300),  # past the first block of simulated weeks (260)
        (1, 520, 520),  # the last week of the horizon
    ],
)
def test_when_constant_throughput_finishes_in_the_hand_computed_week(
    per_week: int, remaining: int, weeks: int
) -> None:
    got = forecast_when(weekly([per_week] * 6), scope(remaining), as_of=AS_OF, calendar=CAL)
    # Week k ends on Tue (Wed 11 Mar + 7k − 1 days); no holiday falls on those Tuesdays.
    expected = d(3, 11) + timedelta(days=7 * weeks - 1)
    assert expected.weekday() == 1
    assert got.p50_completion_date == got.p95_completion_date == expected
    assert [(b.weeks, b.runs) for b in got.histogram] == [(weeks, 10_000)]


def test_when_dates_end_on_a_working_day() -> None:
    # as_of Mon 9 Mar, 2 a week, 2 remaining: week 1 = Mon 9 … Sun 15 Mar → Fri 13 Mar.
    got = forecast_when(weekly([2] * 6), scope(2), as_of=at(d(3, 9)), calendar=CAL)
    assert got.p50_completion_date == d(3, 13)


def test_when_uses_at_most_twelve_weeks() -> None:
    # 20 weeks of 3 a week; only the trailing 12 are samples.
    got = forecast_when(weekly([3] * 20), scope(6), as_of=AS_OF, calendar=CAL)
    assert got.sample_size == 12
    assert got.p95_completion_date == d(3, 24)  # 3, 6 → week 2 in every run


@pytest.mark.parametrize(
    ("done", "items", "sample_size", "reason"),
    [
        # Zero throughput: one completion 20 weeks ago, none in the trailing 12 weeks.
        (weekly([1] + [0] * 19), scope(5), 12, "no items completed in the last 12 full weeks"),
        # No completion ever.
        (cycles({}), scope(5), 0, "no completed items"),
        # The only completion is in the current, partial week (Tue 10 Mar).
        (cycles({d(3, 10): 4}), scope(5), 0, "no full week"),
        # Empty scope.
        (weekly([2] * 6), scope(0), 6, "no remaining scope"),
    ],
)
def test_when_without_a_forecast(
    done: pd.DataFrame, items: pd.DataFrame, sample_size: int, reason: str
) -> None:
    got = forecast_when(done, items, as_of=AS_OF, calendar=CAL)
    assert got.method == "none"
    assert got.sample_size == sample_size
    assert got.reason is not None and reason in got.reason
    assert got.p50_completion_date is None and got.projected_completion_date is None


def test_when_scope_counts_open_items_in_scope_stages() -> None:
    created = at(d(1, 5))
    rows: list[dict[str, Any]] = [
        {"ticket_id": f"{stage}", "stage": stage, "created_at": created}
        for stage in ("backlog", "ba", "dev", "code_review", "qa", "uat")
    ]
    rows += [
        {"ticket_id": "done", "stage": "done", "created_at": created, "completed_at": at(d(3, 2))},
        {"ticket_id": "cancelled", "stage": "cancelled", "created_at": created},
        {"ticket_id": "unmapped", "stage": None, "created_at": created},
        {"ticket_id": "later", "stage": "backlog", "created_at": AS_OF + timedelta(seconds=1)},
    ]
    got = forecast_when(weekly([2] * 6), make_frame("items", rows), as_of=AS_OF, calendar=CAL)
    assert got.scope_item_count == 6


def test_when_runs_past_the_horizon_have_no_date() -> None:
    # One item in 6 weeks, 1,000 remaining: ~6,000 weeks expected, beyond 520.
    got = forecast_when(weekly([1, 0, 0, 0, 0, 0]), scope(1000), as_of=AS_OF, calendar=CAL)
    assert got.method == "monte_carlo"
    assert got.p50_completion_date is None
    assert got.reason is not None and f"within {MAX_WEEKS} weeks" in got.reason


def test_when_ten_thousand_runs_take_well_under_a_tenth_of_a_second() -> None:
    done, items = weekly([0, 3, 1, 7, 2, 4, 0, 5, 3, 2, 6, 1]), scope(120)
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        got = forecast_when(done, items, as_of=AS_OF, calendar=CAL)
        best = min(best, time.perf_counter() - start)
    assert got.simulation_runs == 10_000
    assert best < 0.1


# ---------------------------------------------------------------- pN rules, inputs, registry


def test_pn_rules_on_ten_runs() -> None:
    runs = np.array([0, 1, 1, 2, 3, 3, 3, 4, 5, 9], dtype=np.int64)
    # How many: ≥ 3 in 6 of 10 runs (≥ 4 in only 3) → p50 = 3; ≥ 1 in 9 → p85 = 1;
    # p95 needs all 10 runs → 0.
    assert [count_reached_in_share(runs, n) for n in (50, 85, 95)] == [3, 1, 0]
    # When: finished by week 3 in 7 of 10 runs (by 2 in 4) → p50 = p70 = 3; p85 needs 9 → 5.
    assert [week_reached_by_share(runs, n) for n in (50, 70, 85, 95)] == [3, 3, 5, 9]


@pytest.mark.parametrize(
    "call",
    [
        lambda: forecast_when(cycles({}), scope(1), as_of=datetime(2026, 3, 11), calendar=CAL),
        lambda: forecast_when(cycles({}), scope(1), as_of=AS_OF, calendar=CAL, runs=0),
        lambda: forecast_how_many(cycles({}), SPRINTS, as_of=AS_OF, calendar=CAL, window=0),
    ],
)
def test_bad_parameters_are_refused(call: Any) -> None:
    with pytest.raises(MetricInputError):
        call()


def test_the_three_metrics_are_registered() -> None:
    registry = load_all()
    assert registry["sprint_confidence"].func is sprint_confidence
    assert registry["forecast_how_many"].func is forecast_how_many
    assert registry["forecast_when"].func is forecast_when
    assert registry["forecast_when"].spec == "§6.5.1"


# ---------------------------------------------------------------- properties

week_counts = st.lists(st.integers(0, 6), min_size=0, max_size=14)
seeds = st.integers(0, 2**32 - 1)


@settings(max_examples=40, deadline=None)
@given(counts=week_counts, remaining=st.integers(0, 60), seed=seeds)
def test_when_is_reproducible_and_its_dates_ordered(
    counts: list[int], remaining: int, seed: int
) -> None:
    done, items = weekly(counts), scope(remaining)
    got = forecast_when(done, items, as_of=AS_OF, calendar=CAL, seed=seed)
    assert got == forecast_when(done, items, as_of=AS_OF, calendar=CAL, seed=seed)
    dates = [
        got.p50_completion_date,
        got.p70_completion_date,
        got.p85_completion_date,
        got.p95_completion_date,
    ]
    known = [x for x in dates if x is not None]
    assert known == sorted(known)
    assert all(x >= AS_OF.date() for x in known)
    if got.method == "monte_carlo":
        assert None not in dates[: len(known)]  # a missing date is only a later one
        cumulative = [b.cumulative_pct for b in got.histogram]
        assert cumulative == sorted(cumulative)


daily_counts = st.lists(st.integers(0, 4), min_size=0, max_size=60)


@settings(max_examples=40, deadline=None)
@given(counts=daily_counts, remaining=st.integers(0, 30), seed=seeds)
def test_how_many_and_confidence_are_reproducible_and_ordered(
    counts: list[int], remaining: int, seed: int
) -> None:
    done = cycles(dict(zip(reversed(SAMPLED_DAYS), counts, strict=False)))
    as_of, snaps = at(d(3, 5), 10), snapshots("S7", {d(3, 5): remaining})
    many = forecast_how_many(done, SPRINTS, as_of=as_of, calendar=CAL, seed=seed)
    assert many == forecast_how_many(done, SPRINTS, as_of=as_of, calendar=CAL, seed=seed)
    if many.p50 is not None:
        assert many.p95 is not None and many.p85 is not None
        assert 0 <= many.p95 <= many.p85 <= many.p50 <= 6 * max(counts, default=0)
    sure = sprint_confidence(done, SPRINTS, snaps, as_of=as_of, calendar=CAL, seed=seed)
    assert sure == sprint_confidence(done, SPRINTS, snaps, as_of=as_of, calendar=CAL, seed=seed)
    assert sure.confidence_pct is not None and 0 <= sure.confidence_pct <= 100


later = st.lists(st.tuples(st.integers(0, 60 * 86_400), st.integers(1, 5)), max_size=8)


@settings(max_examples=30, deadline=None)
@given(counts=daily_counts, extra=later, remaining=st.integers(1, 30), seed=seeds)
def test_rows_after_as_of_change_nothing(
    counts: list[int], extra: list[tuple[int, int]], remaining: int, seed: int
) -> None:
    as_of = at(d(3, 5), 10)
    done = cycles(dict(zip(reversed(SAMPLED_DAYS), counts, strict=False)))
    items, snaps = scope(remaining), snapshots("S7", {d(3, 5): remaining})
    moments = [as_of + timedelta(seconds=s) for s, _ in extra]
    done_later = pd.concat(
        [
            done,
            make_frame(
                "cycles", [{"ticket_id": f"L{i}", "completed_at": m} for i, m in enumerate(moments)]
            ),
        ],
        ignore_index=True,
    )
    items_later = pd.concat(
        [
            items,
            make_frame(
                "items",
                [
                    {"ticket_id": f"N{i}", "stage": "dev", "created_at": m}
                    for i, m in enumerate(moments)
                ],
            ),
        ],
        ignore_index=True,
    )
    snaps_later = pd.concat(
        [snaps, snapshots("S7", {d(3, 6) + timedelta(days=s // 86_400): n for s, n in extra})],
        ignore_index=True,
    )
    sprints_later = pd.concat(
        [
            SPRINTS,
            make_frame(
                "sprints",
                [
                    sprint(
                        f"X{i}", "active", m.date() + timedelta(1), m.date() + timedelta(days=14)
                    )
                    for i, m in enumerate(moments)
                ],
            ),
        ],
        ignore_index=True,
    )
    kw: dict[str, Any] = {"as_of": as_of, "calendar": CAL, "seed": seed}
    assert forecast_when(done_later, items_later, **kw) == forecast_when(done, items, **kw)
    assert forecast_how_many(done_later, sprints_later, **kw) == forecast_how_many(
        done, SPRINTS, **kw
    )
    assert sprint_confidence(done_later, sprints_later, snaps_later, **kw) == sprint_confidence(
        done, SPRINTS, snaps, **kw
    )
