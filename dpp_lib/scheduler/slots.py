"""Cron slots: the moments a job is due, from APScheduler's ``CronTrigger`` (the maintained
library's cron arithmetic, time zones and daylight-saving changes included).

Every function returns aware UTC datetimes; the trigger works in the organisation's zone.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from apscheduler.triggers.cron import CronTrigger  # type: ignore[import-untyped]

_TICK = timedelta(microseconds=1)
_FIRST_LOOKBACK = timedelta(hours=1)
_MAX_LOOKBACK = timedelta(days=800)  # "0 0 29 2 *" fires every four years: treated as never


def trigger(cron: str, time_zone: ZoneInfo) -> CronTrigger:
    return CronTrigger.from_crontab(cron, timezone=time_zone)


def first_at_or_after(trig: CronTrigger, moment: datetime) -> datetime | None:
    found = trig.get_next_fire_time(None, moment)
    return None if found is None else found.astimezone(UTC)


def next_after(trig: CronTrigger, moment: datetime) -> datetime | None:
    """The first slot strictly after ``moment``."""
    return first_at_or_after(trig, moment + _TICK)


def latest_at_or_before(trig: CronTrigger, now: datetime) -> datetime | None:
    """The last slot at or before ``now`` (cron has no "previous": look back further and
    further, then walk forward to the last slot before ``now``)."""
    lookback = _FIRST_LOOKBACK
    while lookback <= _MAX_LOOKBACK:
        found = first_at_or_after(trig, now - lookback)
        if found is not None and found <= now:
            while (after := next_after(trig, found)) is not None and after <= now:
                found = after
            return found
        lookback *= 2
    return None


def period_after(trig: CronTrigger, slot: datetime) -> timedelta:
    """From ``slot`` to the next one (a job's default catch-up window)."""
    after = next_after(trig, slot)
    return _MAX_LOOKBACK if after is None else after - slot


@dataclass(frozen=True)
class Gap:
    """Slots strictly between two moments: how many (at most ``limit``), first and last."""

    count: int
    first: datetime
    last: datetime
    capped: bool


def slots_between(
    trig: CronTrigger, after: datetime, before: datetime, *, limit: int = 10_000
) -> Gap | None:
    """The slots strictly after ``after`` and strictly before ``before``; None when none.
    Counting stops at ``limit`` (a minutely job stopped for a year); ``capped`` says so and
    ``last`` is then the last slot before ``before`` all the same."""
    first = next_after(trig, after)
    if first is None or first >= before:
        return None
    count, last = 1, first
    while count < limit and (nxt := next_after(trig, last)) is not None and nxt < before:
        count, last = count + 1, nxt
    capped = count >= limit
    if capped:
        latest = latest_at_or_before(trig, before - _TICK)
        last = latest if latest is not None else last
    return Gap(count, first, last, capped)
