"""Flow metrics: WIP by stage with aging (§6.2.1), cycle time (§6.2.3), throughput,
flow efficiency with per-queue waits (§6.3.1). DESIGN §5 settles the details."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

import pandas as pd

from dpp_lib.calendar import WorkCalendar
from dpp_lib.metrics.common import (
    DEFAULT_WINDOW_DAYS,
    Window,
    percentiles,
    records,
    round_or_none,
    to_datetime,
)
from dpp_lib.metrics.frames import check_frame
from dpp_lib.metrics.registry import metric
from dpp_lib.orgconfig import PIPELINE_STAGES

WIP_STAGES = tuple(s for s in PIPELINE_STAGES if s not in ("backlog", "done", "cancelled"))
AGE_BUCKETS = ("<24h", "24-72h", "72h-7d", ">7d")


def _bucket(age: timedelta) -> str:
    hours = age.total_seconds() / 3600
    if hours < 24:
        return "<24h"
    if hours < 72:
        return "24-72h"
    if hours < 24 * 7:
        return "72h-7d"
    return ">7d"


@dataclass(frozen=True)
class AgingItem:
    ticket_id: str
    stage: str
    age_hours: float
    is_blocked: bool


@dataclass(frozen=True)
class WipByStage:
    as_of: datetime
    by_stage: dict[str, int]  # every WIP stage, zeros included
    blocked: int  # currently blocked (also counted in their stage)
    aging: dict[str, int]  # bucket → items
    aging_by_stage: dict[str, dict[str, int]]
    oldest: tuple[AgingItem, ...]  # oldest first, at most 10
    unmapped: int  # items whose status has no stage mapping (not counted)
    sample_size: int


@metric("wip_by_stage", spec="§6.2.1", summary="How much work is in each stage now, and how old?")
def wip_by_stage(items: pd.DataFrame, *, as_of: datetime) -> WipByStage:
    """Items (frame ``items``, states at ``as_of``) whose stage is not backlog, done or
    cancelled, per stage; ``blocked`` counts those blocked now. Aging: calendar hours since
    the item first left backlog (``left_backlog_at``; ``created_at`` when missing), bucketed
    <24 h, 24–72 h, 72 h–7 d, >7 d. Items created after ``as_of`` are ignored."""
    check_frame("items", items)
    live = items[items["created_at"] < as_of]
    unmapped = int(live["stage"].isna().sum())
    wip = live[live["stage"].isin(WIP_STAGES)]
    by_stage = {s: int((wip["stage"] == s).sum()) for s in WIP_STAGES}
    aging = dict.fromkeys(AGE_BUCKETS, 0)
    aging_by_stage = {s: dict.fromkeys(AGE_BUCKETS, 0) for s in WIP_STAGES}
    ages: list[AgingItem] = []
    for row in records(wip):
        since = to_datetime(row["left_backlog_at"]) or to_datetime(row["created_at"]) or as_of
        age = as_of - since
        bucket = _bucket(age)
        aging[bucket] += 1
        aging_by_stage[row["stage"]][bucket] += 1
        hours = age.total_seconds() / 3600
        ages.append(AgingItem(row["ticket_id"], row["stage"], hours, bool(row["is_blocked"])))
    ages.sort(key=lambda a: (-a.age_hours, a.ticket_id))
    return WipByStage(
        as_of=as_of,
        by_stage=by_stage,
        blocked=int(wip["is_blocked"].fillna(False).astype(bool).sum()),
        aging=aging,
        aging_by_stage=aging_by_stage,
        oldest=tuple(ages[:10]),
        unmapped=unmapped,
        sample_size=len(wip),
    )


def _completed_in(cycles: pd.DataFrame, window: Window) -> pd.DataFrame:
    check_frame("cycles", cycles)
    return cycles[window.mask(cycles["completed_at"])]


@dataclass(frozen=True)
class ScatterPoint:
    ticket_id: str
    cycle_time_days: float
    completed_at: datetime
    above_p85: bool


@dataclass(frozen=True)
class CycleTime:
    window: Window
    p50: float | None
    p85: float | None
    p95: float | None
    scatter: tuple[ScatterPoint, ...]  # oldest completion first
    outliers: tuple[str, ...]  # tickets above p85, slowest first
    sample_size: int


@metric("cycle_time", spec="§6.2.3", summary="How long does work take from start to done?")
def cycle_time(
    cycles: pd.DataFrame, *, as_of: datetime, window_days: int = DEFAULT_WINDOW_DAYS
) -> CycleTime:
    """p50/p85/p95 of ``cycle_time_days`` (business days) over items completed in
    ``[as_of − window_days, as_of)``; items never in an active status (null cycle time) are
    left out. The scatter lists every item with its cycle time and completion; outliers are
    the items above p85."""
    window = Window.trailing(as_of, window_days)
    done = _completed_in(cycles, window)
    done = done[done["cycle_time_days"].notna()].sort_values(["completed_at", "ticket_id"])
    values = done["cycle_time_days"].astype(float)
    p = percentiles(values, (50, 85, 95))
    p85 = p[85]
    points = tuple(
        ScatterPoint(
            r["ticket_id"],
            float(r["cycle_time_days"]),
            to_datetime(r["completed_at"]) or as_of,
            p85 is not None and float(r["cycle_time_days"]) > p85,
        )
        for r in records(done)
    )
    outliers = tuple(
        pt.ticket_id for pt in sorted(points, key=lambda x: -x.cycle_time_days) if pt.above_p85
    )
    return CycleTime(
        window=window,
        p50=round_or_none(p[50], 3),
        p85=round_or_none(p85, 3),
        p95=round_or_none(p[95], 3),
        scatter=points,
        outliers=outliers,
        sample_size=len(done),
    )


@dataclass(frozen=True)
class Throughput:
    window: Window
    completed: int
    per_week: float  # completed ÷ window days × 7
    weekly: dict[date, int]  # Monday (org time zone) → items completed that week
    sample_size: int


@metric("throughput", spec="§6.5.1", summary="How many items does the stream finish?")
def throughput(
    cycles: pd.DataFrame,
    *,
    as_of: datetime,
    window_days: int = DEFAULT_WINDOW_DAYS,
    calendar: WorkCalendar | None = None,
) -> Throughput:
    """Items completed (entered ``done``; re-opened items count once, at their last
    completion; cancelled items never) in the window, the rate per week, and a weekly
    series (weeks start Monday in the org time zone; weeks without completions are 0)."""
    cal = calendar or WorkCalendar.of("UTC")
    window = Window.trailing(as_of, window_days)
    done = _completed_in(cycles, window)
    weekly: dict[date, int] = {}
    week = cal.week_start(window.start)
    last = cal.week_start(as_of - timedelta(microseconds=1))
    while week <= last:
        weekly[week] = 0
        week += timedelta(days=7)
    for at in done["completed_at"]:
        moment = to_datetime(at)
        if moment is not None:
            weekly[cal.week_start(moment)] += 1
    n = len(done)
    return Throughput(
        window=window,
        completed=n,
        per_week=round(n / window.days * 7, 3) if window.days else 0.0,
        weekly=weekly,
        sample_size=n,
    )


@dataclass(frozen=True)
class QueueWait:
    key: str  # <stage>_queue, or "blocked"
    mean_days: float  # over every item of the sample (0 where the item never waited there)
    items: int  # items that waited there at all


@dataclass(frozen=True)
class FlowEfficiency:
    window: Window
    flow_efficiency_pct: float | None
    active_days: float | None  # per-item mean
    wait_days: float | None  # per-item mean
    queues: tuple[QueueWait, ...]  # slowest first
    slowest_queue: str | None
    sample_size: int


@metric(
    "flow_efficiency", spec="§6.3.1", summary="What share of the time is work actually worked on?"
)
def flow_efficiency(
    cycles: pd.DataFrame, *, as_of: datetime, window_days: int = DEFAULT_WINDOW_DAYS
) -> FlowEfficiency:
    """Mean of per-item ``flow_efficiency_pct`` over items completed in the window (items
    never active have none and are left out); per-item mean active and wait days; for every
    ``<stage>_queue`` key and ``blocked``, the mean over the sample's items (an item that
    never waited there counts 0, so the queue means add up to the mean wait)."""
    window = Window.trailing(as_of, window_days)
    done = _completed_in(cycles, window)
    done = done[done["flow_efficiency_pct"].notna()]
    n = len(done)
    if n == 0:
        return FlowEfficiency(window, None, None, None, (), None, 0)
    totals: dict[str, float] = {}
    counts: dict[str, int] = {}
    for durations in done["stage_durations"]:
        for key, value in (durations or {}).items():
            if key == "blocked" or key.endswith("_queue"):
                totals[key] = totals.get(key, 0.0) + float(value)
                counts[key] = counts.get(key, 0) + 1
    queues = tuple(
        sorted(
            (QueueWait(k, round(v / n, 4), counts[k]) for k, v in totals.items()),
            key=lambda q: (-q.mean_days, q.key),
        )
    )
    return FlowEfficiency(
        window=window,
        flow_efficiency_pct=round(float(done["flow_efficiency_pct"].astype(float).mean()), 2),
        active_days=round(float(done["active_time_days"].astype(float).mean()), 4),
        wait_days=round(float(done["wait_time_days"].astype(float).mean()), 4),
        queues=queues,
        slowest_queue=queues[0].key if queues else None,
        sample_size=n,
    )
