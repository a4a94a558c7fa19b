"""Cron slots in the organisation's time zone (APScheduler's CronTrigger underneath)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from dpp_lib.scheduler.slots import Cron, crontab_days_of_week
from tests.scheduler.conftest import LONDON

UTC_ZONE = ZoneInfo("UTC")


def _utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


def _walk(cron: Cron, start: datetime, n: int) -> list[datetime]:
    out, moment = [], start
    for _ in range(n):
        found = cron.next_after(moment)
        assert found is not None
        out.append(found)
        moment = found
    return out


def test_a_time_of_day_follows_summer_time() -> None:
    daily = Cron("30 1 * * *", LONDON)
    assert daily.latest_at_or_before(_utc(2026, 7, 10, 12)) == _utc(2026, 7, 10, 0, 30)
    assert daily.latest_at_or_before(_utc(2026, 11, 10, 12)) == _utc(2026, 11, 10, 1, 30)
    assert daily.latest_at_or_before(_utc(2026, 11, 10, 1, 30)) == _utc(2026, 11, 10, 1, 30)
    assert daily.next_after(_utc(2026, 11, 10, 1, 30)) == _utc(2026, 11, 11, 1, 30)


def test_clocks_going_back_run_a_daily_job_once_and_an_hourly_job_every_hour() -> None:
    """25 October 2026: 01:00–02:00 happens twice in London."""
    daily = Cron("30 1 * * *", LONDON)
    assert _walk(daily, _utc(2026, 10, 24, 12), 2) == [
        _utc(2026, 10, 25, 0, 30),  # 01:30 BST; not again at 01:30 GMT
        _utc(2026, 10, 26, 1, 30),
    ]
    assert daily.period_after(_utc(2026, 10, 25, 0, 30)) == timedelta(hours=25)
    assert daily.latest_at_or_before(_utc(2026, 10, 25, 1, 45)) == _utc(2026, 10, 25, 0, 30)
    hourly = Cron("10 * * * *", LONDON)
    assert _walk(hourly, _utc(2026, 10, 24, 23, 30), 3) == [
        _utc(2026, 10, 25, 0, 10),
        _utc(2026, 10, 25, 1, 10),
        _utc(2026, 10, 25, 2, 10),
    ]


def test_clocks_going_forward_run_a_missing_time_an_hour_later() -> None:
    daily = Cron("30 1 * * *", LONDON)  # 29 March 2026: 01:00–02:00 does not exist
    assert _walk(daily, _utc(2026, 3, 28, 12), 2) == [
        _utc(2026, 3, 29, 1, 30),
        _utc(2026, 3, 30, 0, 30),
    ]


@pytest.mark.parametrize(
    ("expression", "now", "latest"),
    [
        ("0 */2 * * *", _utc(2026, 11, 10, 9, 59), _utc(2026, 11, 10, 8)),
        ("0 3 1 * *", _utc(2026, 11, 10, 9), _utc(2026, 11, 1, 3)),
        ("0 6 * * 1", _utc(2026, 11, 10, 9), _utc(2026, 11, 9, 6)),  # Mondays
        ("0 0 29 2 *", _utc(2026, 11, 10), _utc(2024, 2, 29)),
    ],
)
def test_the_latest_slot(expression: str, now: datetime, latest: datetime) -> None:
    assert Cron(expression, UTC_ZONE).latest_at_or_before(now) == latest


def test_gaps_are_counted_and_capped() -> None:
    hourly = Cron("10 * * * *", UTC_ZONE)
    gap = hourly.slots_between(_utc(2026, 11, 10, 10, 10), _utc(2026, 11, 10, 15, 10))
    assert gap is not None
    assert (gap.count, gap.first, gap.last, gap.capped) == (
        4,
        _utc(2026, 11, 10, 11, 10),
        _utc(2026, 11, 10, 14, 10),
        False,
    )
    assert hourly.slots_between(_utc(2026, 11, 10, 10, 10), _utc(2026, 11, 10, 11, 10)) is None
    year = hourly.slots_between(_utc(2025, 11, 10), _utc(2026, 11, 10), limit=100)
    assert year is not None and year.capped and year.count == 100
    assert year.last == _utc(2026, 11, 9, 23, 10)


@pytest.mark.parametrize(
    ("field", "days"),
    [
        ("1", "mon"),
        ("0", "sun"),
        ("7", "sun"),
        ("SUN", "sun"),
        ("1-5", "mon,tue,wed,thu,fri"),
        ("mon-fri", "mon,tue,wed,thu,fri"),
        ("*/2", "sun,tue,thu,sat"),
        ("5-7", "sun,fri,sat"),
        ("1,3/2", "sun,mon,wed,fri"),  # 3/2: from Wednesday to 7 (Sunday) in steps of 2
    ],
)
def test_day_of_week_numbers_are_crontabs(field: str, days: str) -> None:
    """APScheduler 3 reads 0 as Monday; crontab (and the schedules file) as Sunday."""
    assert crontab_days_of_week(field) == days
    first = Cron(f"0 6 * * {field}", UTC_ZONE).next_after(_utc(2026, 11, 7, 12))  # a Saturday
    assert first is not None and first.strftime("%a").lower() in days.split(",")


@pytest.mark.parametrize("field", ["8", "fri-mon", "*/x", "monday"])
def test_bad_day_of_week(field: str) -> None:
    with pytest.raises(ValueError, match=r"day of week|step"):
        crontab_days_of_week(field)
