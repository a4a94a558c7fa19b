"""The organisation's working-day calendar (DESIGN §5 "Working time").

A working day is Monday–Friday in the organisation's time zone and not a configured holiday.
A *business-day duration* is the part of ``[start, end)`` that falls on working days, in
units of 24 h of elapsed time: Fri 16:00 → Mon 10:00 is 0.75. On a daylight-saving change
a working day lasts 23 or 25 hours and counts as 23/24 or 25/24 (elapsed time, not wall
clock), so durations add up across the change.

Durations are answered from a cumulative table of working seconds per local day (built once
per calendar for the years in use), so each is two binary searches however long it spans.
"""

from __future__ import annotations

import bisect
import functools
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

DAY_SECONDS = 86_400.0


class CalendarError(ValueError):
    pass


@dataclass(frozen=True)
class WorkCalendar:
    time_zone: str = "UTC"
    holidays: frozenset[date] = frozenset()
    first_year: int = 2000
    last_year: int = 2100
    _table: _CumulativeTable = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        try:
            ZoneInfo(self.time_zone)
        except Exception as exc:
            raise CalendarError(f"unknown time zone {self.time_zone!r}") from exc
        object.__setattr__(self, "_table", _CumulativeTable(self))

    @classmethod
    def of(cls, time_zone: str, holidays: Iterable[date] = ()) -> WorkCalendar:
        """A calendar, shared per (time zone, holidays): building one takes ~0.3 s."""
        return _calendar(time_zone, frozenset(holidays))

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.time_zone)

    def is_working_day(self, day: date) -> bool:
        return day.weekday() < 5 and day not in self.holidays

    def local_date(self, moment: datetime) -> date:
        return _aware(moment).astimezone(self.zone).date()

    def business_days(self, start: datetime, end: datetime) -> float:
        """Working time in ``[start, end)`` in days of 24 h; 0 when end ≤ start."""
        if end <= start:
            return 0.0
        return (
            self._table.working_seconds_until(end) - self._table.working_seconds_until(start)
        ) / DAY_SECONDS

    def working_days(self, first: date, last: date) -> int:
        """Working days from ``first`` to ``last``, both inclusive (0 when last < first)."""
        if last < first:
            return 0
        return self._table.working_days_until(
            last + timedelta(days=1)
        ) - self._table.working_days_until(first)

    def add_working_days(self, start: date, n: int) -> date:
        """The date of the ``n``-th working day after ``start`` (n ≥ 1), or start for n ≤ 0."""
        day = start
        while n > 0:
            day += timedelta(days=1)
            if self.is_working_day(day):
                n -= 1
        return day

    def week_start(self, moment: datetime) -> date:
        """Monday of the moment's week in the org time zone (DESIGN §5: weeks start Monday)."""
        local = self.local_date(moment)
        return local - timedelta(days=local.weekday())


class _CumulativeTable:
    """Local midnights and the working seconds before each, for first_year..last_year."""

    def __init__(self, cal: WorkCalendar) -> None:
        zone = cal.zone
        day = date(cal.first_year, 1, 1)
        end = date(cal.last_year + 1, 1, 1)
        self.first_day = day
        self.bounds: list[float] = []  # epoch seconds of each local midnight (+ the last end)
        self.cum: list[float] = []  # working seconds before each midnight
        self.working: list[bool] = []
        self.cum_days: list[int] = []  # working days before each day
        total, days = 0.0, 0
        while day <= end:
            ts = datetime.combine(day, time(), zone).timestamp()
            self.bounds.append(ts)
            self.cum.append(total)
            self.cum_days.append(days)
            is_working = cal.is_working_day(day)
            self.working.append(is_working)
            nxt = day + timedelta(days=1)
            if is_working:
                total += datetime.combine(nxt, time(), zone).timestamp() - ts
                days += 1
            day = nxt

    def working_seconds_until(self, moment: datetime) -> float:
        ts = _aware(moment).timestamp()
        i = bisect.bisect_right(self.bounds, ts) - 1
        if i < 0 or i >= len(self.bounds) - 1:
            raise CalendarError(f"{moment.isoformat()} is outside the calendar's years")
        partial = ts - self.bounds[i] if self.working[i] else 0.0
        return self.cum[i] + partial

    def working_days_until(self, day: date) -> int:
        i = (day - self.first_day).days
        if i < 0 or i >= len(self.cum_days):
            raise CalendarError(f"{day.isoformat()} is outside the calendar's years")
        return self.cum_days[i]


@functools.lru_cache(maxsize=32)
def _calendar(time_zone: str, holidays: frozenset[date]) -> WorkCalendar:
    return WorkCalendar(time_zone, holidays)


def _aware(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise CalendarError(f"naive datetime {moment.isoformat()}: a time zone is required")
    return moment


__all__ = ["DAY_SECONDS", "UTC", "CalendarError", "WorkCalendar"]
