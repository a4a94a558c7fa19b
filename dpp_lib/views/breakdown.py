"""GET /api/v1/metrics/breakdown (metrics API contract v1 §3): one metric per group of a
dimension, each group's share of the whole, and its trend against the previous window.

No maths here: each group's value is the metric function of ``dpp_lib.metrics`` called on
the frames restricted to that group (``docs/api/breakdown-drilldown.md``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pandas as pd
import sqlalchemy as sa

from dpp_lib.errors import BadParameter
from dpp_lib.ingest.lookups import OrgLookups
from dpp_lib.metrics import dora, flow, quality, review
from dpp_lib.metrics.common import Scope
from dpp_lib.metrics.flow import WIP_STAGES
from dpp_lib.views._frames import Frames, Names, check_window, load_names, num

DIMENSIONS = ("delivery_stream", "tech_stream", "ticket_type", "stage", "repository")
STABLE_PCT = 5.0  # a change smaller than this, in either direction, is "stable"

Group = Mapping[str, pd.DataFrame]
_ALL = object()  # the whole scope, not a group


@dataclass(frozen=True)
class Value:
    """One group's figure: the metric's value, its sample size, whether it is suppressed."""

    value: float | None
    count: int
    suppressed: bool = False


@dataclass(frozen=True)
class Context:
    at: datetime  # the moment the metric is evaluated at (as_of, or the previous window's)
    window_days: int
    lookups: OrgLookups
    min_contributors: int


@dataclass(frozen=True)
class BreakdownMetric:
    """What a metric needs for a breakdown.

    ``reads``: the frames it takes; ``grouped``: those restricted to each group (the first
    one's rows define the groups); the others are passed whole. ``compute(group, whole,
    context)`` calls the metric function. ``additive``: the groups' values add up to the
    total, so a group's percentage is its share of the total; otherwise it is its share of
    the sample (count)."""

    unit: str
    additive: bool
    reads: tuple[str, ...]
    grouped: tuple[str, ...]
    dimensions: tuple[str, ...]
    compute: Callable[[Group, Group, Context], Value]


def _cycle_time(g: Group, _: Group, c: Context) -> Value:
    r = flow.cycle_time(g["cycles"], as_of=c.at, window_days=c.window_days)
    return Value(r.p85, r.sample_size)


def _throughput(g: Group, _: Group, c: Context) -> Value:
    cal = c.lookups.calendar()
    r = flow.throughput(g["cycles"], as_of=c.at, window_days=c.window_days, calendar=cal)
    return Value(r.completed, r.sample_size)


def _wip(g: Group, _: Group, c: Context) -> Value:
    r = flow.wip_by_stage(g["items"], as_of=c.at)
    return Value(r.sample_size, r.sample_size)


def _flow_efficiency(g: Group, _: Group, c: Context) -> Value:
    r = flow.flow_efficiency(g["cycles"], as_of=c.at, window_days=c.window_days)
    return Value(r.flow_efficiency_pct, r.sample_size)


def _defect_escape(g: Group, _: Group, c: Context) -> Value:
    r = quality.defect_escape(g["defects"], g["cycles"], as_of=c.at, window_days=c.window_days)
    return Value(r.rate, r.sample_size)


def _review_turnaround(g: Group, whole: Group, c: Context) -> Value:
    prs, reviews = g["prs"], whole["reviews"]
    keys = set(zip(prs["repo_id"], prs["pr_number"], strict=True))
    own = [(r, n) in keys for r, n in zip(reviews["repo_id"], reviews["pr_number"], strict=True)]
    r = review.review_turnaround(
        prs,
        reviews[pd.Series(own, index=reviews.index, dtype=bool)],
        as_of=c.at,
        window_days=c.window_days,
        min_contributors=c.min_contributors,
    )
    return Value(None if r.is_suppressed else r.p50_hours, r.sample_size, r.is_suppressed)


def _deployment_frequency(g: Group, _: Group, c: Context) -> Value:
    cal = c.lookups.calendar()
    r = dora.deployment_frequency(g["deploys"], as_of=c.at, window_days=c.window_days, calendar=cal)
    return Value(r.deployment_frequency, r.deploy_count)


def _change_failure_rate(g: Group, whole: Group, c: Context) -> Value:
    """The group's deploys with the incidents they caused: deploys and incidents are linked
    over the whole scope (an incident goes to the latest deploy of its tech stream,
    whichever group that deploy is in), then the metric sees the group's deploys and the
    incidents linked to them, which link to the same deploys again."""
    minutes = c.lookups.incident_correlation_window_minutes
    deploys, incidents = whole["deploys"], whole["incidents"]
    known = deploys[deploys["deployed_at"] < c.at]
    opened = incidents[incidents["opened_at"] < c.at]
    linked = dora.correlate_incidents(known, opened, window_minutes=minutes)
    mine = linked.loc[linked.index.intersection(g["deploys"].index), "incident_id"]
    caused = opened[opened["incident_id"].isin(set(mine.dropna()))]
    r = dora.change_failure_rate(
        g["deploys"],
        caused,
        as_of=c.at,
        window_days=c.window_days,
        correlation_window_minutes=minutes,
    )
    return Value(r.change_failure_rate, r.deploy_count)


def _lead_time_for_changes(g: Group, whole: Group, c: Context) -> Value:
    # A group's PRs may ship with any deploy of their repository: deploys stay whole.
    r = dora.lead_time_for_changes(
        g["prs"], whole["deploys"], as_of=c.at, window_days=c.window_days
    )
    return Value(r.lead_time_p50, r.sample_size)


def _time_to_restore(g: Group, _: Group, c: Context) -> Value:
    r = dora.time_to_restore(g["incidents"], as_of=c.at, window_days=c.window_days)
    return Value(r.ttr_median, r.sample_size)


TICKET_DIMENSIONS = ("delivery_stream", "tech_stream", "ticket_type")
CODE_DIMENSIONS = ("delivery_stream", "tech_stream", "repository")

BREAKDOWN_METRICS: dict[str, BreakdownMetric] = {
    "cycle_time": BreakdownMetric(
        "business days (p85)", False, ("cycles",), ("cycles",), (*TICKET_DIMENSIONS, "stage"),
        _cycle_time,
    ),
    "throughput": BreakdownMetric(
        "items completed", True, ("cycles",), ("cycles",), TICKET_DIMENSIONS, _throughput
    ),
    "wip": BreakdownMetric(
        "items in progress", True, ("items",), ("items",), (*TICKET_DIMENSIONS, "stage"), _wip
    ),
    "flow_efficiency": BreakdownMetric(
        "percent", False, ("cycles",), ("cycles",), TICKET_DIMENSIONS, _flow_efficiency
    ),
    "defect_escape": BreakdownMetric(
        "percent", False, ("defects", "cycles"), ("defects", "cycles"),
        ("delivery_stream", "tech_stream"), _defect_escape,
    ),
    "review_turnaround": BreakdownMetric(
        "hours (p50)", False, ("prs", "reviews"), ("prs",), CODE_DIMENSIONS, _review_turnaround
    ),
    "deployment_frequency": BreakdownMetric(
        "deploys per week", True, ("deploys",), ("deploys",), CODE_DIMENSIONS,
        _deployment_frequency,
    ),
    "change_failure_rate": BreakdownMetric(
        "percent", False, ("deploys", "incidents"), ("deploys",), CODE_DIMENSIONS,
        _change_failure_rate,
    ),
    "lead_time_for_changes": BreakdownMetric(
        "hours (p50)", False, ("prs", "deploys"), ("prs",), CODE_DIMENSIONS,
        _lead_time_for_changes,
    ),
    "time_to_restore": BreakdownMetric(
        "minutes (median)", False, ("incidents",), ("incidents",), ("tech_stream",),
        _time_to_restore,
    ),
}  # fmt: skip


# --- groups -------------------------------------------------------------------------------

COLUMNS = {
    "delivery_stream": "delivery_stream_id",
    "tech_stream": "tech_stream_id",
    "ticket_type": "ticket_type",
    "stage": "stage",
    "repository": "repo_id",
}


def _column(frame: pd.DataFrame, dimension: str) -> str:
    if dimension == "tech_stream" and "tech_stream_ids" in frame.columns:
        return "tech_stream_ids"  # work items: a ticket belongs to each of its tech streams
    return COLUMNS[dimension]


def _stage_time(cycles: pd.DataFrame, stage: str) -> pd.DataFrame:
    """Items with a cycle time that spent time in ``stage`` (working or waiting, i.e. the
    ``stage`` and ``<stage>_queue`` entries of ``stage_durations``), with that time, in
    business days, as their ``cycle_time_days``: the cycle-time metric then gives its
    percentiles of the time spent in the stage."""
    timed = cycles[cycles["cycle_time_days"].notna()]
    spent = timed["stage_durations"].map(
        lambda d: sum(float(v) for k, v in (d or {}).items() if k in (stage, f"{stage}_queue"))
    )
    return timed[spent > 0].assign(cycle_time_days=spent[spent > 0])


def group_keys(frame: pd.DataFrame, dimension: str) -> list[Any]:
    """The groups of ``frame`` along ``dimension``; None is the group of rows without one."""
    if dimension == "stage" and "stage_durations" in frame.columns:
        return [s for s in WIP_STAGES if len(_stage_time(frame, s))]
    column = _column(frame, dimension)
    keys: set[Any] = set()
    for value in frame[column]:
        if column == "tech_stream_ids":
            keys |= set(value) if value else {None}
        else:
            keys.add(None if pd.isna(value) else value)
    return sorted(keys, key=lambda k: (k is None, str(k)))


def restrict(frame: pd.DataFrame, dimension: str, key: Any) -> pd.DataFrame:
    """The rows of ``frame`` in group ``key`` (streams through ``Scope``, as every view)."""
    if frame.empty:  # Scope.apply on an empty work item frame loses its columns
        return frame
    if dimension == "stage" and "stage_durations" in frame.columns:
        return _stage_time(frame, key)
    column = _column(frame, dimension)
    if key is None:
        if column == "tech_stream_ids":
            return frame[frame[column].map(lambda ids: not ids)]
        return frame[frame[column].isna()]
    if dimension == "delivery_stream":
        return Scope(delivery_stream_id=key).apply(frame)
    if dimension == "tech_stream":
        return Scope(tech_stream_id=key).apply(frame)
    same: pd.Series[bool] = frame[column] == key
    return frame[same]


def _label(names: Names, dimension: str, key: Any) -> tuple[str, str | None]:
    """(dimension_value, dimension_id) of a group."""
    tables = {"delivery_stream": names.delivery, "tech_stream": names.tech}
    tables["repository"] = names.repos
    if dimension in tables:
        return names.of(tables[dimension], key), None if key is None else str(key)
    return names.of({}, key), None


def _minimum(names: Names, dimension: str, key: Any) -> int:
    if dimension in ("delivery_stream", "tech_stream"):
        return names.minimum(key)
    if dimension == "repository":
        return names.minimum(names.repo_tech.get(key))
    return names.org_min_contributors


# --- the view -----------------------------------------------------------------------------


def check_metric(metric: str, dimension: str) -> BreakdownMetric:
    spec = BREAKDOWN_METRICS.get(metric)
    if spec is None:
        raise BadParameter("metric", f"unknown metric {metric!r}", allowed=list(BREAKDOWN_METRICS))
    if dimension not in spec.dimensions:
        problem = (
            f"unknown dimension {dimension!r}"
            if dimension not in DIMENSIONS
            else f"{metric} cannot be broken down by {dimension}"
        )
        raise BadParameter("dimension", problem, allowed=list(spec.dimensions))
    return spec


def trend(now: Value, before: Value) -> dict[str, Any] | None:
    """Change against the previous window, in percent of the previous value; None when
    either value is missing or suppressed, or the previous one is zero."""
    if now.value is None or before.value is None or before.value == 0:
        return None
    if now.suppressed or before.suppressed:
        return None
    change = (now.value - before.value) / abs(before.value) * 100
    direction = "stable" if abs(change) < STABLE_PCT else ("up" if change > 0 else "down")
    return {"direction": direction, "change_pct": round(change, 1)}


def _percentage(spec: BreakdownMetric, group: Value, total: Value) -> float:
    if spec.additive:
        share = (group.value or 0) / total.value if total.value else 0.0
    else:
        share = group.count / total.count if total.count else 0.0
    return round(min(100.0, share * 100), 1)


def breakdown(
    conn: sa.Connection,
    lookups: OrgLookups,
    *,
    metric: str,
    dimension: str,
    scope: Scope,
    as_of: datetime,
    window_days: int,
) -> dict[str, Any]:
    """``metric`` over ``[as_of − window_days, as_of)`` for each group of ``dimension`` within
    ``scope`` (see ``breakdown_of``). Raises ``BadParameter`` naming ``metric``,
    ``dimension`` or ``window_days``."""
    spec = check_metric(metric, dimension)
    check_window(window_days)
    frames = Frames(conn, lookups, scope, as_of)
    previous = as_of - timedelta(days=window_days)
    whole = {at: {n: frames.get(n, at) for n in spec.reads} for at in (as_of, previous)}
    one_stream = scope.tech_stream_id or scope.delivery_stream_id
    return breakdown_of(
        metric,
        dimension,
        whole,
        names=load_names(conn),
        lookups=lookups,
        as_of=as_of,
        window_days=window_days,
        one_stream=one_stream,
    )


def breakdown_of(
    metric: str,
    dimension: str,
    whole: Mapping[datetime, Group],
    *,
    names: Names,
    lookups: OrgLookups,
    as_of: datetime,
    window_days: int,
    one_stream: Any = None,
) -> dict[str, Any]:
    """The breakdown from frames already read: ``whole`` holds, for ``as_of`` and for the
    start of the window (the previous window's end), the frames the metric reads (the same
    ones but for the work item states). Groups without a sample in the window are left out;
    the biggest value comes first, suppressed and empty values last. ``one_stream``: the
    stream the scope is limited to, whose small-team minimum applies to the total."""
    spec = check_metric(metric, dimension)
    previous = as_of - timedelta(days=window_days)

    def value(at: datetime, key: Any, minimum: int) -> Value:
        c = Context(at, window_days, lookups, minimum)
        if key is _ALL:
            return spec.compute(whole[at], whole[at], c)
        group = {**whole[at], **{n: restrict(whole[at][n], dimension, key) for n in spec.grouped}}
        return spec.compute(group, whole[at], c)

    total = value(as_of, _ALL, names.minimum(one_stream))
    rows: list[dict[str, Any]] = []
    for key in group_keys(whole[as_of][spec.grouped[0]], dimension):
        minimum = _minimum(names, dimension, key)
        now = value(as_of, key, minimum)
        if now.count == 0:
            continue
        label, ident = _label(names, dimension, key)
        rows.append(
            {
                "dimension_value": label,
                "dimension_id": ident,
                "value": num(now.value, 3),
                "percentage": _percentage(spec, now, total),
                "count": now.count,
                "suppressed": now.suppressed,
                "trend": trend(now, value(previous, key, minimum)),
            }
        )
    rows.sort(key=lambda r: (r["value"] is None, -(r["value"] or 0), r["dimension_value"]))
    return {
        "metric": metric,
        "dimension": dimension,
        "window_days": window_days,
        "as_of": as_of.isoformat(),
        "unit": spec.unit,
        "total": num(total.value, 3),
        "total_count": total.count,
        "suppressed": total.suppressed,
        "breakdown": rows,
    }
