"""Working time in the organisation's time zone, for placing simulated events.

A working day is Monday–Friday, not a configured holiday; working hours are 08:30–18:30
local. Simulated durations are in *working days* of 10 working hours, so a duration of 1.0
measured by the platform's business-day clock (DESIGN §5) is about one working day here.
"""

from __future__ import annotations

import random
from bisect import bisect_left
from collections.abc import Iterable
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

DAY_START = time(8, 30)
DAY_MINUTES = 600  # 08:30–18:30


class WorkClock:
    """Working-day arithmetic for one time zone and holiday list."""

    def __init__(self, time_zone: str, holidays: Iterable[date]) -> None:
        self.tz = ZoneInfo(time_zone)
        self.holidays = frozenset(holidays)

    def is_workday(self, day: date) -> bool:
        return day.weekday() < 5 and day not in self.holidays

    def workdays(self, first: date, last: date) -> list[date]:
        """Working days in ``[first, last]``."""
        n = (last - first).days + 1
        days = (first + timedelta(days=i) for i in range(max(n, 0)))
        return [d for d in days if self.is_workday(d)]

    def local(self, t: datetime) -> datetime:
        return t.astimezone(self.tz)

    def at(self, day: date, minute: float) -> datetime:
        """The instant ``minute`` working minutes after 08:30 local on ``day``, in UTC."""
        start = datetime.combine(day, DAY_START, tzinfo=self.tz)
        return (start + timedelta(minutes=minute)).astimezone(UTC)

    def at_local(self, day: date, hour: int, minute: int = 0) -> datetime:
        return datetime.combine(day, time(hour, minute), tzinfo=self.tz).astimezone(UTC)

    def random_time(self, rng: random.Random, day: date) -> datetime:
        """A working-hours instant on ``day``, denser mid-morning and mid-afternoon."""
        minute = min(max(rng.triangular(0, DAY_MINUTES, 240), 5), DAY_MINUTES - 5)
        return self.at(day, minute)

    def add(self, t: datetime, work_days: float) -> datetime:
        """``t`` moved forward by ``work_days`` × 10 working hours, skipping nights and days off."""
        remaining = max(work_days, 0.0) * DAY_MINUTES
        local = self.local(t)
        day = local.date()
        minute = (local.hour * 60 + local.minute + local.second / 60) - (8 * 60 + 30)
        while True:
            if not self.is_workday(day) or minute >= DAY_MINUTES:
                day, minute = self._next_workday(day), 0.0
                continue
            minute = max(minute, 0.0)
            available = DAY_MINUTES - minute
            if remaining <= available:
                return self.at(day, minute + remaining)
            remaining -= available
            day, minute = self._next_workday(day), 0.0

    def work_between(self, start: datetime, end: datetime) -> float:
        """Working days (of 10 working hours) in ``[start, end)``."""
        minutes = 0.0
        day, last = self.local(start).date(), self.local(end).date()
        while day <= last:
            if self.is_workday(day):
                lo, hi = max(start, self.at(day, 0)), min(end, self.at(day, DAY_MINUTES))
                minutes += max((hi - lo).total_seconds() / 60, 0.0)
            day += timedelta(days=1)
        return minutes / DAY_MINUTES

    def between(self, start: datetime, end: datetime, fraction: float) -> datetime:
        """The instant ``fraction`` of the way from ``start`` to ``end`` in working time
        (so a point between Friday and Monday lands on Friday or Monday, in hours)."""
        if end <= start:
            return start
        moved = self.add(start, self.work_between(start, end) * fraction)
        return min(max(moved, start), end)

    def _next_workday(self, day: date) -> date:
        day += timedelta(days=1)
        while not self.is_workday(day):
            day += timedelta(days=1)
        return day


def index_on_or_after(days: list[date], day: date) -> int:
    """Index of the first of the sorted ``days`` on or after ``day`` (len(days) if none)."""
    return bisect_left(days, day)
