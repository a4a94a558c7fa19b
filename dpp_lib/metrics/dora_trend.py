"""The DORA four keys week by week (API reference ``GET /metrics/trends`` with a tech
stream): one pass over the deploys, incidents and PRs, bucketed by the organisation's Monday
weeks. Built from the same pieces as the single-window functions of ``dora`` (which deploys
count, which failed, which PRs each deploy shipped), so a week's figures are those functions'
figures for that week, all as known at ``as_of``."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

import pandas as pd

from dpp_lib.calendar import WorkCalendar
from dpp_lib.metrics.common import DEFAULT_WINDOW_DAYS, Window, percentiles, round_or_none
from dpp_lib.metrics.dora import (
    DEFAULT_CORRELATION_MINUTES,
    _counts_for_dora,
    _known_at,
    _ship,
    _text,
    correlate_incidents,
    time_to_restore,
)
from dpp_lib.metrics.registry import metric


@dataclass(frozen=True)
class DoraWeek:
    week_start: date  # Monday, org time zone
    window: Window  # the week clipped to the trend's window
    partial: bool  # clipped (the first and the current week)
    deploy_count: int  # deploys that count for DORA, deployed in the week
    failed_count: int
    change_failure_rate: float | None  # percent, 0–100
    ttr_median: float | None  # minutes, incidents resolved in the week
    incident_count: int  # incidents opened in the week
    lead_time_p50: float | None  # hours, PRs shipped by the week's deploys
    lead_time_p85: float | None
    lead_time_sample: int


@dataclass(frozen=True)
class DoraTrend:
    window: Window
    weeks: tuple[DoraWeek, ...]  # oldest first
    sample_size: int  # deploys counted over the whole window


@metric(
    "dora_trend",
    spec="§6.4; API reference GET /metrics/trends (series)",
    summary="How did deploys, failures, restore and lead times move week by week?",
)
def dora_trend(
    deploys: pd.DataFrame,
    incidents: pd.DataFrame,
    prs: pd.DataFrame,
    *,
    as_of: datetime,
    window_days: int = DEFAULT_WINDOW_DAYS,
    calendar: WorkCalendar | None = None,
    correlation_window_minutes: int = DEFAULT_CORRELATION_MINUTES,
) -> DoraTrend:
    """Per week that ``[as_of − window_days, as_of)`` touches (frames as for the ``dora``
    functions): the raw count of deploys that count for DORA, the change failure rate
    (rolled back by ``as_of`` or caused an incident opened before ``as_of``), the median time
    to restore of incidents resolved in the week, and p50/p85 lead time of the PRs the
    week's deploys shipped. Everything is as known at ``as_of``: a deploy late on Sunday whose
    incident opened on Monday morning failed in its own week."""
    window = Window.trailing(as_of, window_days)
    cal = calendar if calendar is not None else WorkCalendar.of("UTC")
    known = _known_at(deploys, as_of)
    opened = incidents[incidents["opened_at"] < as_of]
    linked = correlate_incidents(known, opened, window_minutes=correlation_window_minutes)
    counted = linked[_counts_for_dora(linked)]
    failed = (_text(counted["status"]) == "rolled_back") | counted["caused_incident"].astype(bool)

    known_prs = prs[~(prs["opened_at"] >= as_of)]
    known_prs = known_prs.assign(
        merged_at=known_prs["merged_at"].where(known_prs["merged_at"] < as_of)
    )
    ships = known.reset_index(drop=True)
    _, deploy_pos, _, lead = _ship(known_prs, ships)
    shipped_at = ships["deployed_at"].iloc[deploy_pos].tolist() if deploy_pos else []

    weeks = []
    for win, partial in weekly_windows(cal, window):
        in_week = win.mask(counted["deployed_at"])
        n, f = int(in_week.sum()), int((failed & in_week).sum())
        ttr = time_to_restore(incidents, window=win)
        hours = [
            h
            for at, h in zip(shipped_at, lead, strict=True)
            if h is not None and win.start <= at < win.end
        ]
        got = percentiles(hours, (50, 85))
        weeks.append(
            DoraWeek(
                week_start=cal.week_start(win.start),
                window=win,
                partial=partial,
                deploy_count=n,
                failed_count=f,
                change_failure_rate=round_or_none(f / n * 100) if n else None,
                ttr_median=ttr.ttr_median,
                incident_count=ttr.incident_count,
                lead_time_p50=round_or_none(got[50]),
                lead_time_p85=round_or_none(got[85]),
                lead_time_sample=len(hours),
            )
        )
    return DoraTrend(window, tuple(weeks), int(window.mask(counted["deployed_at"]).sum()))


def weekly_windows(calendar: WorkCalendar, window: Window) -> list[tuple[Window, bool]]:
    """The Monday weeks (``calendar``'s time zone) that ``window`` touches, each clipped to
    it, with whether it was clipped."""
    out: list[tuple[Window, bool]] = []
    week = calendar.week_start(window.start)
    while True:
        lo = _local_midnight(calendar, week)
        hi = _local_midnight(calendar, week + timedelta(days=7))
        if lo >= window.end:
            return out
        clipped = Window(max(lo, window.start), min(hi, window.end))
        out.append((clipped, clipped.start != lo or clipped.end != hi))
        week += timedelta(days=7)


def _local_midnight(calendar: WorkCalendar, day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=calendar.zone).astimezone(UTC)
