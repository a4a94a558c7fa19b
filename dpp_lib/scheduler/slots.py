"""Cron slots: the moments a job is due, from APScheduler's ``CronTrigger`` (the maintained
library's cron arithmetic, time zones and daylight-saving changes included).

Two corrections. Day-of-week numbers are crontab's (0 or 7 is Sunday, 1 Monday): APScheduler
3 reads 0 as Monday (its documented historical mistake), so numbers are turned into day
names first. And, as classic cron does: on the night the clocks go back, a job at a time of
day (its hour field is not ``*``) is due once, at the first of the two identical local
times; APScheduler alone would fire it at both. Hourly jobs keep every real hour. On the
night the clocks go forward, a time that does not exist runs an hour later (APScheduler).

Every method returns aware UTC datetimes; the trigger works in the organisation's zone.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from apscheduler.triggers.cron import CronTrigger  # type: ignore[import-untyped]

_TICK = timedelta(microseconds=1)
_FIRST_LOOKBACK = timedelta(hours=1)
_MAX_LOOKBACK = timedelta(days=1500)  # "0 0 29 2 *" fires every four years (1461 days)
_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")


def _day(text: str) -> int:
    if text.isdigit() and int(text) <= 7:
        return int(text)
    if text.lower()[:3] in _DAYS and len(text) == 3:
        return _DAYS.index(text.lower())
    raise ValueError(f"day of week {text!r} is not 0–7 or sun–sat")


def crontab_days_of_week(field: str) -> str:
    """A crontab day-of-week field (0 or 7 Sunday; ranges, lists, steps, names) as the list
    of day names APScheduler reads the same way."""
    if field == "*":
        return field
    days: set[int] = set()
    for item in field.split(","):
        part, slash, step_text = item.partition("/")
        if slash and not step_text.isdigit():
            raise ValueError(f"step {step_text!r} in day of week {field!r} is not a number")
        step = int(step_text) if slash else 1
        if part == "*":
            low, high = 0, 6
        elif "-" in part:
            low, high = (_day(p) for p in part.split("-", 1))
        else:
            low = high = _day(part)
            if slash:
                high = 7
        if low > high or step < 1:
            raise ValueError(f"day of week {item!r} is not an increasing range")
        days |= {d % 7 for d in range(low, high + 1, step)}
    return ",".join(_DAYS[d] for d in sorted(days))


@dataclass(frozen=True)
class Gap:
    """Slots strictly between two moments: how many (at most a limit), first and last."""

    count: int
    first: datetime
    last: datetime
    capped: bool


class Cron:
    """A 5-field cron expression in a time zone."""

    def __init__(self, expression: str, time_zone: ZoneInfo) -> None:
        self.expression = expression
        self.time_zone = time_zone
        fields = expression.split()
        if len(fields) != 5:
            raise ValueError(f"{expression!r} has {len(fields)} fields, not 5")
        fields[4] = crontab_days_of_week(fields[4])
        self.trigger = CronTrigger.from_crontab(" ".join(fields), timezone=time_zone)
        self._once_a_night = fields[1] != "*"

    def _fire(self, moment: datetime) -> datetime | None:
        found = self.trigger.get_next_fire_time(None, moment)
        return None if found is None else found.astimezone(UTC)

    def repeated(self, slot: datetime) -> bool:
        """The second of two identical local times (clocks going back), for a job at a
        time of day."""
        if not self._once_a_night:
            return False
        local = slot.astimezone(self.time_zone)
        first = local.replace(fold=0).astimezone(UTC)
        return first != slot and self._fire(first) == first

    def first_at_or_after(self, moment: datetime) -> datetime | None:
        found = self._fire(moment)
        while found is not None and self.repeated(found):
            found = self._fire(found + _TICK)
        return found

    def next_after(self, moment: datetime) -> datetime | None:
        """The first slot strictly after ``moment``."""
        return self.first_at_or_after(moment + _TICK)

    def latest_at_or_before(self, now: datetime) -> datetime | None:
        """The last slot at or before ``now`` (cron has no "previous": look back further
        and further, then walk forward to the last slot before ``now``)."""
        lookback = _FIRST_LOOKBACK
        while lookback <= _MAX_LOOKBACK:
            found = self.first_at_or_after(now - lookback)
            if found is not None and found <= now:
                while (after := self.next_after(found)) is not None and after <= now:
                    found = after
                return found
            lookback *= 2
        return None

    def period_after(self, slot: datetime) -> timedelta:
        """From ``slot`` to the next one (a job's default catch-up window)."""
        after = self.next_after(slot)
        return _MAX_LOOKBACK if after is None else after - slot

    def slots_between(
        self, after: datetime, before: datetime, *, limit: int = 10_000
    ) -> Gap | None:
        """The slots strictly after ``after`` and strictly before ``before``; None when
        none. Counting stops at ``limit`` (a minutely job stopped for a year): ``capped``
        says so, and ``last`` is still the last slot before ``before``."""
        first = self.next_after(after)
        if first is None or first >= before:
            return None
        count, last = 1, first
        while count < limit and (nxt := self.next_after(last)) is not None and nxt < before:
            count, last = count + 1, nxt
        capped = count >= limit
        if capped:
            last = self.latest_at_or_before(before - _TICK) or last
        return Gap(count, first, last, capped)
