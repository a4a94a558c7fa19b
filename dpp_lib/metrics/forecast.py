"""Forecasts: sprint confidence, "how many by sprint end", "when will the scope be done".

Monte Carlo over sampled throughput (spec §6.2.2, §6.5.1; DESIGN §5). Every function is
pure and reproducible: rows at or after ``as_of`` are ignored and the random generator is
``numpy.random.default_rng(seed)``. Dates are local dates in the calendar's time zone.

Shared rules:
- A completion is a ``cycles`` row with ``completed_at < as_of``; for *daily* samples one on
  a weekend or holiday counts on the working day before it.
- The *active sprint* at ``as_of`` (date ``today``) is the ``sprint_id`` given, else the
  non-future sprint whose dates contain ``today`` (state ``active`` first, then the latest
  start), else an ``active`` sprint that started on or before ``today`` (overrunning).
- Working days left = working days from ``today`` to the sprint's end date, both inclusive.
- Throughput history starts on the day (week) of the stream's first completion: earlier
  days are not samples, later days without completions are zero samples.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd

from dpp_lib.calendar import WorkCalendar
from dpp_lib.metrics.common import MetricInputError
from dpp_lib.metrics.registry import metric

IntArray = npt.NDArray[np.int64]

SPRINT_CONFIDENCE_RUNS = 1_000  # spec §6.2.2
CLOSED_SPRINTS_SAMPLED = 6  # spec §6.2.2: the trailing 6 sprints
HOW_MANY_RUNS = 1_000  # API reference: "simulations": 1000
HOW_MANY_WINDOW_WEEKS = 12  # API reference: forecast `window` default
WHEN_RUNS = 10_000  # spec §6.5.1
WHEN_WINDOW_WEEKS = 12  # spec §6.5.1: trailing 12 weeks
MIN_HISTORY_WEEKS = 6  # spec §6.5.1: minimum for the Monte Carlo forecast
MAX_WEEKS = 520  # simulation horizon (10 years): runs not done by then never finish
SCOPE_STAGES = ("backlog", "ba", "dev", "code_review", "qa", "uat")


@dataclass(frozen=True)
class SprintConfidence:
    sprint_id: object | None
    confidence_pct: float | None  # 0–100; None with a reason
    remaining_count: int | None  # latest snapshot's remaining_count
    working_days_left: int | None  # today .. sprint end, inclusive
    closed_sprints: int  # closed sprints whose working days were sampled
    mean_daily_throughput: float | None  # items per working day over the samples
    simulations: int  # Monte Carlo runs made (0: the answer needed none)
    sample_size: int  # daily throughput samples (working days)
    reason: str | None = None


@dataclass(frozen=True)
class HowManyForecast:
    p50: int | None  # items completed by sprint end in at least 50 % of runs
    p85: int | None
    p95: int | None
    simulations: int
    weeks_remaining: float | None  # working days left ÷ 5
    working_days_left: int | None
    sprint_id: object | None
    window_weeks: int
    sample_size: int  # daily throughput samples (working days)
    reason: str | None = None


@dataclass(frozen=True)
class WhenBin:
    weeks: int  # the run finished in the weeks-th simulated week
    completion_date: date
    runs: int
    pct: float  # share of all runs, 0–100
    cumulative_pct: float  # share of all runs finished by this date


@dataclass(frozen=True)
class WhenForecast:
    method: Literal["monte_carlo", "linear", "none"]
    scope_item_count: int
    sample_size: int  # weeks of throughput history used (0–window)
    weeks_needed: int  # more weeks of history before the Monte Carlo forecast
    mean_weekly_throughput: float | None
    simulation_runs: int = 0
    p50_completion_date: date | None = None
    p70_completion_date: date | None = None
    p85_completion_date: date | None = None
    p95_completion_date: date | None = None
    histogram: tuple[WhenBin, ...] = ()
    projected_weeks: float | None = None  # linear projection only
    projected_completion_date: date | None = None  # linear projection only
    reason: str | None = None

    @property
    def low_confidence(self) -> bool:
        """The linear projection is shown with a "low-confidence" label (spec §6.5.1)."""
        return self.method == "linear"


@metric(
    "sprint_confidence",
    spec="§6.2.2",
    summary="How likely is the active sprint to finish the items it has left?",
)
def sprint_confidence(
    cycles: pd.DataFrame,
    sprints: pd.DataFrame,
    snapshots: pd.DataFrame,
    *,
    as_of: datetime,
    calendar: WorkCalendar,
    sprint_id: object | None = None,
    runs: int = SPRINT_CONFIDENCE_RUNS,
    seed: int | None = 0,
) -> SprintConfidence:
    """Share of simulated sprint ends (× 100) at which the remaining items are done (§6.2.2).

    Inputs: ``cycles`` (completed_at: aware timestamps, NaT rows ignored), ``sprints``
    (sprint_id, state, start_date, end_date: dates) and ``snapshots`` (sprint_id,
    snapshot_date: date, remaining_count). Remaining = the active sprint's latest snapshot
    with snapshot_date ≤ today. Samples = completions on every working day of the last
    ``CLOSED_SPRINTS_SAMPLED`` sprints closed (state ``closed``) and ended before today,
    each day once, zeros included. Each run sums one sampled day per working day left.
    Remaining ≤ 0 → 100; no working day left → 0; no active sprint, no snapshot, no closed
    sprint or no sample → None with ``reason``.
    """
    _check(as_of, runs)
    today = calendar.local_date(as_of)
    known = _sprints(sprints, today=today)
    sprint = _active_sprint(known, today=today, sprint_id=sprint_id)
    if sprint is None:
        return SprintConfidence(
            sprint_id=None,
            confidence_pct=None,
            remaining_count=None,
            working_days_left=None,
            closed_sprints=0,
            mean_daily_throughput=None,
            simulations=0,
            sample_size=0,
            reason="no active sprint",
        )
    closed = sorted(
        (s for s in known if s.state == "closed" and s.end < today and s.id != sprint.id),
        key=lambda s: (s.end, s.start),
    )[-CLOSED_SPRINTS_SAMPLED:]
    days = sorted({d for s in closed for d in _working_days(calendar, s.start, s.end)})
    samples = _samples(_daily_counts(cycles, as_of=as_of, calendar=calendar), days)
    result = SprintConfidence(
        sprint_id=sprint.id,
        confidence_pct=None,
        remaining_count=_remaining_count(snapshots, sprint_id=sprint.id, today=today),
        working_days_left=calendar.working_days(today, sprint.end),
        closed_sprints=len(closed),
        mean_daily_throughput=_mean(samples),
        simulations=0,
        sample_size=int(samples.size),
    )
    remaining, days_left = result.remaining_count, result.working_days_left or 0
    if remaining is None:
        return replace(result, reason="no sprint snapshot on or before as_of's date")
    if remaining <= 0:
        return replace(result, confidence_pct=100.0)
    if days_left == 0:
        return replace(result, confidence_pct=0.0, reason="no working days left in the sprint")
    if not closed:
        return replace(result, reason="no closed sprint to sample throughput from")
    if samples.size == 0:
        return replace(result, reason="the closed sprints have no working days")
    totals = _sum_of_days(samples, days=days_left, runs=runs, seed=seed)
    share = np.count_nonzero(totals >= remaining) / runs
    return replace(result, confidence_pct=round(share * 100, 1), simulations=runs)


@metric(
    "forecast_how_many",
    spec="§6.5",
    summary="How many items will the stream complete by the end of the active sprint?",
)
def forecast_how_many(
    cycles: pd.DataFrame,
    sprints: pd.DataFrame,
    *,
    as_of: datetime,
    calendar: WorkCalendar,
    window: int = HOW_MANY_WINDOW_WEEKS,
    sprint_id: object | None = None,
    runs: int = HOW_MANY_RUNS,
    seed: int | None = 0,
) -> HowManyForecast:
    """Items completed by sprint end in at least 50/85/95 % of runs (API ``forecast``).

    Inputs: ``cycles`` (completed_at) and ``sprints`` (sprint_id, state, start_date,
    end_date). Samples = completions on each working day of the ``window`` weeks before
    today (today excluded, history from the first completion on, zeros included); each run
    sums one sampled day per working day left in the active sprint. ``pN`` = the largest
    count reached in at least N % of runs, so p95 ≤ p85 ≤ p50. No working day left → all 0;
    no active sprint or no completion ever → None with ``reason``.
    """
    _check(as_of, runs)
    if window < 1:
        raise MetricInputError(f"window must be at least 1 week, got {window}")
    today = calendar.local_date(as_of)
    counts = _daily_counts(cycles, as_of=as_of, calendar=calendar)
    days: list[date] = []
    if counts:  # history starts at the first completion
        start = max(today - timedelta(weeks=window), min(counts))
        days = _working_days(calendar, start, today - timedelta(days=1))
    samples = _samples(counts, days)
    sprint = _active_sprint(_sprints(sprints, today=today), today=today, sprint_id=sprint_id)
    days_left = None if sprint is None else calendar.working_days(today, sprint.end)
    result = HowManyForecast(
        p50=None,
        p85=None,
        p95=None,
        simulations=0,
        weeks_remaining=None if days_left is None else round(days_left / 5, 1),
        working_days_left=days_left,
        sprint_id=None if sprint is None else sprint.id,
        window_weeks=window,
        sample_size=int(samples.size),
    )
    if days_left is None:
        return replace(result, reason="no active sprint")
    if days_left == 0:
        return replace(result, p50=0, p85=0, p95=0, reason="no working days left in the sprint")
    if samples.size == 0:
        return replace(result, reason="no completed items to sample throughput from")
    totals = np.sort(_sum_of_days(samples, days=days_left, runs=runs, seed=seed))
    p50, p85, p95 = (count_reached_in_share(totals, n) for n in (50, 85, 95))
    return replace(result, p50=p50, p85=p85, p95=p95, simulations=runs)


@metric(
    "forecast_when",
    spec="§6.5.1",
    summary="By when will the stream's remaining scope be done, with what probability?",
)
def forecast_when(
    cycles: pd.DataFrame,
    items: pd.DataFrame,
    *,
    as_of: datetime,
    calendar: WorkCalendar,
    window: int = WHEN_WINDOW_WEEKS,
    runs: int = WHEN_RUNS,
    seed: int | None = 0,
) -> WhenForecast:
    """p50/p70/p85/p95 completion dates of the remaining scope (Monte Carlo, §6.5.1).

    Inputs: ``items`` (stage, created_at, completed_at) — scope = items created before
    as_of, in a stage of ``SCOPE_STAGES`` and not completed (unmapped stage: not scope);
    ``cycles`` (completed_at). Samples = completions per full week (Monday–Sunday, local)
    over the trailing ``window`` full weeks, the current week excluded, from the week of the
    stream's first completion on (``sample_size`` weeks, zeros included). Simulated week k
    covers today + 7(k − 1) … today + 7k − 1; its date is the last working day of that span.
    ``pN`` = the earliest date by which at least N % of runs finished. Fewer than
    ``MIN_HISTORY_WEEKS`` weeks: linear projection (scope ÷ mean weekly throughput),
    low-confidence, no percentiles. No scope or no throughput: no forecast, with ``reason``.
    """
    _check(as_of, runs)
    if window < 1:
        raise MetricInputError(f"window must be at least 1 week, got {window}")
    today, this_week = calendar.local_date(as_of), calendar.week_start(as_of)
    weekly = Counter(d - timedelta(days=d.weekday()) for d in _local_dates(cycles, as_of, calendar))
    first = min(weekly, default=this_week)
    history = min(window, max(0, (this_week - first).days // 7))
    weeks = [this_week - timedelta(weeks=i) for i in range(history, 0, -1)]
    samples = _samples(weekly, weeks)
    scope = _scope_count(items, as_of)
    result = WhenForecast(
        method="none",
        scope_item_count=scope,
        sample_size=history,
        weeks_needed=max(0, MIN_HISTORY_WEEKS - history),
        mean_weekly_throughput=_mean(samples),
    )
    if scope == 0:
        return replace(result, reason="no remaining scope to forecast")
    if not weekly:
        return replace(result, reason="no completed items: no throughput to forecast from")
    if int(samples.sum()) == 0:
        why = f"no items completed in the last {history} full weeks" if history else ""
        return replace(result, reason=why or "no full week of throughput yet")
    if history < MIN_HISTORY_WEEKS:
        projected = scope / float(samples.mean())
        return replace(
            result,
            method="linear",
            projected_weeks=round(projected, 1),
            projected_completion_date=_week_date(calendar, today, projected),
            reason=f"low confidence: {history} weeks of throughput history, "
            f"{result.weeks_needed} more needed for the Monte Carlo forecast",
        )
    finished = np.sort(_weeks_to_finish(samples, scope=scope, runs=runs, seed=seed))
    dates = {n: week_reached_by_share(finished, n) for n in (50, 70, 85, 95)}
    p = {n: None if k > MAX_WEEKS else _week_date(calendar, today, k) for n, k in dates.items()}
    late = int(np.count_nonzero(finished > MAX_WEEKS))
    return replace(
        result,
        method="monte_carlo",
        simulation_runs=runs,
        p50_completion_date=p[50],
        p70_completion_date=p[70],
        p85_completion_date=p[85],
        p95_completion_date=p[95],
        histogram=_histogram(finished, calendar=calendar, today=today),
        reason=f"{late} of {runs} runs do not finish within {MAX_WEEKS} weeks" if late else None,
    )


def count_reached_in_share(totals: IntArray, pct: int) -> int:
    """The largest count at least ``pct`` % of the runs reached (``totals`` sorted up)."""
    needed = -(-pct * totals.size // 100)  # ⌈pct × runs / 100⌉, in integers
    return int(totals[totals.size - max(needed, 1)])


def week_reached_by_share(weeks: IntArray, pct: int) -> int:
    """The earliest week by which at least ``pct`` % of the runs finished (sorted up)."""
    needed = -(-pct * weeks.size // 100)
    return int(weeks[max(needed, 1) - 1])


@dataclass(frozen=True)
class _Sprint:
    id: object
    state: str
    start: date
    end: date


def _check(as_of: datetime, runs: int) -> None:
    if as_of.tzinfo is None:
        raise MetricInputError(f"as_of {as_of.isoformat()} must be timezone-aware")
    if runs < 1:
        raise MetricInputError(f"runs must be at least 1, got {runs}")


def _as_date(value: Any) -> date | None:
    if value is None or (not isinstance(value, date) and pd.isna(value)):
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return pd.Timestamp(value).date()


def _sprints(frame: pd.DataFrame, *, today: date) -> list[_Sprint]:
    """Sprints that had started by ``today`` (later ones did not exist yet)."""
    out = []
    for row in frame[["sprint_id", "state", "start_date", "end_date"]].to_dict("records"):
        start, end = _as_date(row["start_date"]), _as_date(row["end_date"])
        if start is not None and end is not None and start <= today:
            out.append(_Sprint(row["sprint_id"], str(row["state"]), start, end))
    return out


def _active_sprint(sprints: list[_Sprint], *, today: date, sprint_id: object) -> _Sprint | None:
    if sprint_id is not None:
        return next((s for s in sprints if s.id == sprint_id), None)
    running = [s for s in sprints if s.start <= today <= s.end and s.state != "future"]
    running = running or [s for s in sprints if s.state == "active"]
    return max(running, key=lambda s: (s.state == "active", s.start, s.end), default=None)


def _remaining_count(snapshots: pd.DataFrame, *, sprint_id: object, today: date) -> int | None:
    rows = snapshots[snapshots["sprint_id"] == sprint_id]
    pairs = zip(rows["snapshot_date"].map(_as_date), rows["remaining_count"], strict=True)
    known = {day: n for day, n in pairs if day is not None and day <= today and not pd.isna(n)}
    return int(known[max(known)]) if known else None


def _scope_count(items: pd.DataFrame, as_of: datetime) -> int:
    created = pd.to_datetime(items["created_at"], utc=True)
    completed = pd.to_datetime(items["completed_at"], utc=True)
    in_scope = (
        items["stage"].isin(SCOPE_STAGES)
        & ~(created >= as_of)
        & ~(completed < as_of)  # NaT compares False: not completed
    )
    return int(in_scope.sum())


def _local_dates(cycles: pd.DataFrame, as_of: datetime, calendar: WorkCalendar) -> list[date]:
    times = pd.to_datetime(cycles["completed_at"], utc=True)
    times = times[times.notna() & (times < as_of)]
    return list(times.dt.tz_convert(calendar.time_zone).dt.date)


def _daily_counts(
    cycles: pd.DataFrame, *, as_of: datetime, calendar: WorkCalendar
) -> Counter[date]:
    """Completions per working day; a weekend or holiday one counts on the working day before."""
    counts: Counter[date] = Counter()
    for day, n in Counter(_local_dates(cycles, as_of, calendar)).items():
        back = day
        while not calendar.is_working_day(back) and (day - back).days < 366:
            back -= timedelta(days=1)
        counts[back] += n
    return counts


def _working_days(calendar: WorkCalendar, first: date, last: date) -> list[date]:
    span = (last - first).days + 1
    days = (first + timedelta(days=i) for i in range(max(span, 0)))
    return [d for d in days if calendar.is_working_day(d)]


def _samples(counts: Counter[date], days: list[date]) -> IntArray:
    return np.array([counts.get(d, 0) for d in days], dtype=np.int64)


def _mean(samples: IntArray) -> float | None:
    return round(float(samples.mean()), 2) if samples.size else None


def _sum_of_days(samples: IntArray, *, days: int, runs: int, seed: int | None) -> IntArray:
    """Per run, the sum of ``days`` throughputs drawn with replacement from ``samples``."""
    draws = np.random.default_rng(seed).choice(samples, size=(runs, days))
    return np.asarray(draws.sum(axis=1), dtype=np.int64)


def _weeks_to_finish(samples: IntArray, *, scope: int, runs: int, seed: int | None) -> IntArray:
    """Per run, the 1-based week the cumulative sampled throughput first reaches ``scope``.

    Vectorised in blocks of weeks sized from the mean throughput, so a typical forecast
    is one block; runs unfinished after ``MAX_WEEKS`` weeks get ``MAX_WEEKS + 1``.
    """
    rng = np.random.default_rng(seed)
    finished = np.full(runs, MAX_WEEKS + 1, dtype=np.int64)
    if int(samples.max()) * MAX_WEEKS < scope:  # not even the best weeks get there
        return finished
    block = min(260, max(8, math.ceil(1.5 * scope / float(samples.mean())) + 2))
    totals = np.zeros(runs, dtype=np.int64)
    open_runs = np.arange(runs)
    week = 0
    while open_runs.size and week < MAX_WEEKS:
        width = min(block, MAX_WEEKS - week)
        draws = rng.choice(samples, size=(open_runs.size, width))
        cumulative = totals[open_runs, None] + draws.cumsum(axis=1)
        reached = cumulative >= scope
        done = reached.any(axis=1)
        finished[open_runs[done]] = week + 1 + reached[done].argmax(axis=1)
        totals[open_runs] = cumulative[:, -1]
        open_runs, week = open_runs[~done], week + width
    return finished


def _week_date(calendar: WorkCalendar, today: date, weeks: float) -> date:
    """The last working day of the span today … today + ⌈7 × weeks⌉ − 1 (its end if none)."""
    last = today + timedelta(days=max(math.ceil(7 * weeks), 1) - 1)
    day = last
    while day >= today:
        if calendar.is_working_day(day):
            return day
        day -= timedelta(days=1)
    return last


def _histogram(finished: IntArray, *, calendar: WorkCalendar, today: date) -> tuple[WhenBin, ...]:
    weeks, runs = np.unique(finished[finished <= MAX_WEEKS], return_counts=True)
    cumulative = np.cumsum(runs)
    return tuple(
        WhenBin(
            weeks=int(k),
            completion_date=_week_date(calendar, today, int(k)),
            runs=int(n),
            pct=round(100 * int(n) / finished.size, 2),
            cumulative_pct=round(100 * int(c) / finished.size, 2),
        )
        for k, n, c in zip(weeks, runs, cumulative, strict=True)
    )
