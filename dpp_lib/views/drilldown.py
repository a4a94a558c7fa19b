"""GET /api/v1/metrics/drilldown (metrics API contract v1 §4): the items behind a metric —
tickets, pull requests, deploys or incidents — with the value each contributes, where it
belongs, what made it slow or failed, a page of them and statistics over all of them.

The items are exactly those the metric function counts for the window; where the metric
exposes them (cycle time's scatter, ``shipped_prs``, ``correlate_incidents``,
``latest_attribution``) they are taken from it (``docs/api/breakdown-drilldown.md``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from itertools import pairwise
from typing import Any

import pandas as pd
import sqlalchemy as sa

from dpp_lib.errors import BadParameter
from dpp_lib.ingest.lookups import OrgLookups
from dpp_lib.metrics import dora, flow, quality
from dpp_lib.metrics.common import Scope, Window, percentiles, records, to_datetime
from dpp_lib.views._frames import (
    Frames,
    Names,
    check_window,
    hours,
    iso,
    load_names,
    num,
    opened_event_ids,
)

SORT_FIELDS = ("value", "timestamp", "item_id")
SORT_ORDERS = ("asc", "desc")
MAX_LIMIT = 500
TOP_FACTORS = 3

PrKey = tuple[Any, int]


@dataclass(frozen=True)
class Item:
    """One item behind a metric; ``match``: filter name → the (casefolded) values that
    select it, names and ids."""

    item_type: str  # ticket | pull_request | deployment | incident
    item_id: str
    value: float | None
    timestamp: datetime | None
    context: dict[str, Any]
    factors: list[dict[str, Any]]
    match: dict[str, frozenset[str]]
    pr: PrKey | None = None  # for the PR's opened event
    uid: str = ""  # tie-break after item_id (two pipelines may reuse a run id)


@dataclass(frozen=True)
class Source:
    """What the item builders read: the frames at ``as_of``, names and the window."""

    frames: Mapping[str, pd.DataFrame]
    names: Names
    lookups: OrgLookups
    as_of: datetime
    window_days: int

    @property
    def window(self) -> Window:
        return Window.trailing(self.as_of, self.window_days)


@dataclass(frozen=True)
class DrilldownMetric:
    """What a metric's drilldown needs: the frames it reads, the items' type, the unit and
    decimals of their values, the filters it accepts, and the function listing them."""

    item_type: str
    unit: str
    digits: int
    reads: tuple[str, ...]
    filters: tuple[str, ...]
    items: Callable[[Source], list[Item]] = field(repr=False)


# --- matching and naming ------------------------------------------------------------------


def _match(*pairs: tuple[dict[Any, str] | None, Iterable[Any]]) -> frozenset[str]:
    """Values that select an item: each key's name (through ``table``) and its id/text."""
    out: set[str] = set()
    for table, keys in pairs:
        for key in keys:
            if key is None or (not isinstance(key, str) and pd.isna(key)):
                continue
            out.add(str(key).casefold())
            if table is not None and key in table:
                out.add(table[key].casefold())
    return frozenset(out)


def _stream_context(src: Source, row: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Context and match entries for a row's delivery and tech stream(s)."""
    n = src.names
    tech = row.get("tech_stream_ids")
    tech_ids = list(tech) if isinstance(tech, list | tuple) else [row.get("tech_stream_id")]
    tech_ids = [t for t in tech_ids if t is not None and not pd.isna(t)]
    tech_names = sorted(n.of(n.tech, t) for t in tech_ids)
    context = {
        "delivery_stream": n.name(n.delivery, row.get("delivery_stream_id")),
        "tech_stream": ", ".join(tech_names) or None,
    }
    match = {
        "delivery_stream": _match((n.delivery, [row.get("delivery_stream_id")])),
        "tech_stream": _match((n.tech, tech_ids)),
    }
    return context, match


def _pr_id(names: Names, repo_id: Any, number: Any) -> str:
    return f"{names.of(names.repos, repo_id)}#{int(number)}"


# --- contributing factors -----------------------------------------------------------------


def _stage_factors(durations: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """The largest ``stage_durations`` entries (business days) with their share of all."""
    spent = {k: float(v) for k, v in (durations or {}).items() if v and float(v) > 0}
    total = sum(spent.values())
    out = []
    for key, days in sorted(spent.items(), key=lambda kv: (-kv[1], kv[0]))[:TOP_FACTORS]:
        if key == "blocked":
            doing = "blocked"
        elif key.endswith("_queue"):
            doing = f"waiting in {key}"
        else:
            doing = f"being worked on in {key}"
        out.append(
            {
                "factor": key,
                "impact": round(days / total, 3),
                "description": f"{days:.1f} business days {doing}",
            }
        )
    return out


PR_STEPS = {
    ("opened", "first_review"): ("waiting_for_first_review", "waiting for a first review"),
    ("first_review", "approved"): ("review_to_approval", "from first review to approval"),
    ("first_review", "merged"): ("review_to_merge", "from first review to merge"),
    ("approved", "merged"): ("approval_to_merge", "from approval to merge"),
    ("opened", "merged"): ("open_to_merge", "from opening to merge without a review"),
    ("merged", "deployed"): ("merge_to_deploy", "from merge to the production deploy"),
}


def _pr_factors(points: list[tuple[str, Any]]) -> list[dict[str, Any]]:
    """The waits between a PR's successive moments (opened, first review, approved, merged,
    deployed or ``as_of``), largest first, with their share of the whole span."""
    kept: list[tuple[str, datetime]] = []
    for label, moment in points:
        when = to_datetime(moment)
        if when is not None and (not kept or when >= kept[-1][1]):
            kept.append((label, when))
    steps = []
    for (a, start), (b, end) in pairwise(kept):
        length = hours(start, end) or 0.0
        if length > 0:
            factor, phrase = PR_STEPS.get((a, b), (f"{a}_to_{b}", f"from {a} to {b}"))
            steps.append((factor, length, phrase.replace("_", " ")))
    total = sum(length for _, length, _ in steps)
    steps.sort(key=lambda s: (-s[1], s[0]))
    return [
        {"factor": f, "impact": round(h / total, 3), "description": f"{h:.1f} hours {phrase}"}
        for f, h, phrase in steps[:TOP_FACTORS]
    ]


def _pr_points(row: Mapping[str, Any]) -> list[tuple[str, Any]]:
    return [
        ("opened", row["opened_at"]),
        ("first_review", row["first_review_at"]),
        ("approved", row["approved_at"]),
        ("merged", row["merged_at"]),
    ]


# --- item builders ------------------------------------------------------------------------


def _ticket(
    src: Source, row: Mapping[str, Any], value: Any, timestamp: Any, **context: Any
) -> Item:
    streams, match = _stream_context(src, row)
    ticket_type = row.get("ticket_type")
    ticket_type = None if ticket_type is None or pd.isna(ticket_type) else str(ticket_type)
    match["ticket_type"] = _match((None, [ticket_type]))
    match["stage"] = _match((None, [context.get("stage")]))
    return Item(
        item_type="ticket",
        item_id=str(row["ticket_id"]),
        value=None if value is None else float(value),
        timestamp=to_datetime(timestamp),
        context={**streams, "ticket_type": ticket_type, **context},
        factors=_stage_factors(row.get("stage_durations")),
        match=match,
    )


def _completed(src: Source) -> pd.DataFrame:
    cycles = src.frames["cycles"]
    return cycles[src.window.mask(cycles["completed_at"])]


def _done_context(row: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "stage": "done",
        "state": "done",
        "cycle_time_days": num(row["cycle_time_days"], 3),
        "lead_time_days": num(row["lead_time_days"], 3),
    }


def cycle_time_items(src: Source) -> list[Item]:
    """Tickets in ``flow.cycle_time``'s scatter: completed in the window, with a cycle time
    (business days)."""
    result = flow.cycle_time(src.frames["cycles"], as_of=src.as_of, window_days=src.window_days)
    rows = {r["ticket_id"]: r for r in records(_completed(src))}
    out = []
    for point in result.scatter:
        row = rows[point.ticket_id]
        value, done = point.cycle_time_days, point.completed_at
        out.append(_ticket(src, row, value, done, **_done_context(row)))
    return out


def throughput_items(src: Source) -> list[Item]:
    """Tickets completed in the window; each counts 1."""
    return [
        _ticket(src, r, 1, r["completed_at"], **_done_context(r)) for r in records(_completed(src))
    ]


def flow_efficiency_items(src: Source) -> list[Item]:
    """Tickets completed in the window with a flow efficiency (percent)."""
    done = _completed(src)
    done = done[done["flow_efficiency_pct"].notna()]
    return [
        _ticket(src, r, r["flow_efficiency_pct"], r["completed_at"], **_done_context(r))
        for r in records(done)
    ]


def wip_items(src: Source) -> list[Item]:
    """Tickets ``flow.wip_by_stage`` counts at ``as_of``, valued by their age in hours
    (since they first left backlog, else since created), as its aging does. No cycle yet,
    so no contributing factors."""
    items = src.frames["items"]
    live = items[(items["created_at"] < src.as_of) & items["stage"].isin(flow.WIP_STAGES)]
    out = []
    for r in records(live):
        since = to_datetime(r["left_backlog_at"]) or to_datetime(r["created_at"]) or src.as_of
        context = {"stage": r["stage"], "state": r["status"], "blocked": bool(r["is_blocked"])}
        out.append(_ticket(src, r, hours(since, src.as_of), since, **context))
    return out


def defect_escape_items(src: Source) -> list[Item]:
    """Defects logged in the window (each at its latest attribution before ``as_of``):
    1 when found in uat or production (escaped), else 0; the mean × 100 is the rate."""
    latest = quality.latest_attribution(src.frames["defects"], as_of=src.as_of)
    if latest.empty:
        return []
    out = []
    for r in records(latest[src.window.mask(latest["logged_at"])]):
        found = None if pd.isna(r["found_in_stage"]) else str(r["found_in_stage"])
        introduced = r["introduced_in_stage"]
        item = _ticket(
            src,
            r,
            1 if found in quality.ESCAPED_STAGES else 0,
            r["logged_at"],
            stage=found,
            state="escaped" if found in quality.ESCAPED_STAGES else "caught",
            introduced_in_stage=None if pd.isna(introduced) else str(introduced),
            severity=None if pd.isna(r["severity"]) else str(r["severity"]),
        )
        item.match["severity"] = _match((None, [item.context["severity"]]))
        out.append(item)
    return out


def _pr(src: Source, row: Mapping[str, Any], value: Any, timestamp: Any, **extra: Any) -> Item:
    n = src.names
    streams, match = _stream_context(src, row)
    match["repository"] = _match((n.repos, [row["repo_id"]]))
    linked = row.get("linked_ticket_id")
    return Item(
        item_type="pull_request",
        item_id=_pr_id(n, row["repo_id"], row["pr_number"]),
        value=None if value is None else float(value),
        timestamp=to_datetime(timestamp),
        context={
            **streams,
            "repository": n.name(n.repos, row["repo_id"]),
            "state": "merged" if to_datetime(row["merged_at"]) else "open",
            "linked_ticket": None if linked is None or pd.isna(linked) else str(linked),
            "review_rounds": None if pd.isna(row["review_rounds"]) else int(row["review_rounds"]),
            **extra,
        },
        factors=[],
        match=match,
        pr=(row["repo_id"], int(row["pr_number"])),
    )


def review_turnaround_items(src: Source) -> list[Item]:
    """PRs first reviewed in the window with a turnaround (wall-clock hours to the first
    review by someone else), as ``review.review_turnaround`` counts them."""
    prs = src.frames["prs"]
    reviewed = prs[src.window.mask(prs["first_review_at"])]
    reviewed = reviewed[reviewed["time_to_first_review_hrs"].notna()]
    out = []
    for r in records(reviewed):
        item = _pr(src, r, r["time_to_first_review_hrs"], r["first_review_at"])
        points = _pr_points(r)
        if to_datetime(r["merged_at"]) is None:
            points.append(("as_of", src.as_of))
        item.factors.extend(_pr_factors(points))
        out.append(item)
    return out


def _known(src: Source) -> tuple[pd.DataFrame, pd.DataFrame]:
    """PRs and deploys as known at ``as_of``, as the DORA functions see them."""
    prs, deploys = src.frames["prs"], src.frames["deploys"]
    prs = prs[~(prs["opened_at"] >= src.as_of)]
    prs = prs.assign(merged_at=prs["merged_at"].where(prs["merged_at"] < src.as_of))
    return prs, dora._known_at(deploys, src.as_of)


def lead_time_items(src: Source) -> list[Item]:
    """PRs shipped (``dora.shipped_prs``) by a deploy in the window, with a lead time
    (hours from opening to the shipping deploy)."""
    prs, deploys = _known(src)
    shipped = dora.shipped_prs(prs, deploys)
    shipped = shipped[src.window.mask(shipped["deployed_at"]) & shipped["lead_time_hrs"].notna()]
    runs = dict(zip(deploys["record_id"], deploys["pipeline_run_id"], strict=True))
    out = []
    for r in records(shipped):
        item = _pr(
            src,
            r,
            r["lead_time_hrs"],
            r["deployed_at"],
            shipped_by=str(runs.get(r["record_id"])),
            ship_rule=r["ship_rule"],
        )
        item.factors.extend(_pr_factors([*_pr_points(r), ("deployed", r["deployed_at"])]))
        out.append(item)
    return out


def _deploy_items(src: Source, *, failures: bool) -> list[Item]:
    """Deploys that count for DORA in the window, failed or not (rolled back by ``as_of``
    or caused an incident), with the PRs each shipped; value 1 per deploy, or (``failures``)
    1 when it failed, else 0."""
    n = src.names
    prs, known = _known(src)
    incidents = src.frames["incidents"]
    minutes = src.lookups.incident_correlation_window_minutes
    linked = dora.correlate_incidents(
        known, incidents[incidents["opened_at"] < src.as_of], window_minutes=minutes
    )
    counted = dora._dora_in_window(linked, src.window)
    shipped: dict[Any, list[str]] = {}
    for r in records(dora.shipped_prs(prs, known)):
        shipped.setdefault(r["record_id"], []).append(_pr_id(n, r["repo_id"], r["pr_number"]))
    out = []
    for r in records(counted):
        rolled_back = r["status"] == "rolled_back"
        causes = []
        if rolled_back:
            when = iso(r["rollback_at"])
            causes.append(("rolled_back", f"rolled back at {when}" if when else "rolled back"))
        if r["caused_incident"]:
            text = f"incident {r['incident_id']} opened within {minutes} minutes of the deploy"
            causes.append(("caused_incident", text))
        factors = [
            {"factor": f, "impact": round(1 / len(causes), 3), "description": d} for f, d in causes
        ]
        prs_shipped = sorted(shipped.get(r["record_id"], []))
        if prs_shipped:
            listed = ", ".join(prs_shipped[:5]) + (", …" if len(prs_shipped) > 5 else "")
            text = f"shipped {len(prs_shipped)} pull request(s): {listed}"
            factors.append({"factor": "shipped_prs", "impact": 0.0, "description": text})
        failed = rolled_back or bool(r["caused_incident"])
        streams, match = _stream_context(src, r)
        match["repository"] = _match((n.repos, [r["repo_id"]]))
        out.append(
            Item(
                item_type="deployment",
                item_id=str(r["pipeline_run_id"]),
                value=float(failed) if failures else 1.0,
                timestamp=to_datetime(r["deployed_at"]),
                context={
                    **streams,
                    "repository": n.name(n.repos, r["repo_id"]),
                    "state": r["status"],
                    "failed": failed,
                    "incident_id": r["incident_id"],
                    "pipeline_id": r["pipeline_id"],
                    "environment": r["environment"],
                },
                factors=factors[:TOP_FACTORS],
                match=match,
                uid=str(r["record_id"]),
            )
        )
    return out


def deployment_frequency_items(src: Source) -> list[Item]:
    return _deploy_items(src, failures=False)


def change_failure_items(src: Source) -> list[Item]:
    return _deploy_items(src, failures=True)


def time_to_restore_items(src: Source) -> list[Item]:
    """Incidents opened before ``as_of`` and resolved in the window, with their restore
    time in minutes, and the deploy that caused each when one is linked."""
    incidents = src.frames["incidents"]
    known = incidents[~(incidents["opened_at"] >= src.as_of)]
    restored = known[src.window.mask(known["resolved_at"]) & known["time_to_restore_min"].notna()]
    deploys = dora._known_at(src.frames["deploys"], src.as_of)
    minutes = src.lookups.incident_correlation_window_minutes
    linked = dora.correlate_incidents(deploys, known, window_minutes=minutes)
    causes = {r["incident_id"]: r for r in records(linked[linked["caused_incident"]])}
    n = src.names
    out = []
    for r in records(restored):
        factors = []
        deploy = causes.get(r["incident_id"])
        if deploy is not None:
            after = (hours(deploy["deployed_at"], r["opened_at"]) or 0.0) * 60
            text = (
                f"opened {after:.0f} minutes after deploy {deploy['pipeline_run_id']} of "
                f"{n.of(n.repos, deploy['repo_id'])}"
            )
            factors.append({"factor": "caused_by_deploy", "impact": 1.0, "description": text})
        streams, match = _stream_context(src, r)
        severity = None if pd.isna(r["severity"]) else str(r["severity"])
        match["severity"] = _match((None, [severity]))
        out.append(
            Item(
                item_type="incident",
                item_id=str(r["incident_id"]),
                value=float(r["time_to_restore_min"]),
                timestamp=to_datetime(r["resolved_at"]),
                context={
                    "tech_stream": streams["tech_stream"],
                    "severity": severity,
                    "state": "resolved",
                    "opened_at": iso(r["opened_at"]),
                },
                factors=factors,
                match=match,
            )
        )
    return out


TICKET_FILTERS = ("delivery_stream", "tech_stream", "ticket_type")
CODE_FILTERS = ("delivery_stream", "tech_stream", "repository")

DRILLDOWN_METRICS: dict[str, DrilldownMetric] = {
    "cycle_time": DrilldownMetric(
        "ticket", "business days", 3, ("cycles",), TICKET_FILTERS, cycle_time_items
    ),
    "throughput": DrilldownMetric(
        "ticket", "items (1 each)", 0, ("cycles",), TICKET_FILTERS, throughput_items
    ),
    "wip": DrilldownMetric(
        "ticket", "hours (age)", 2, ("items",), (*TICKET_FILTERS, "stage"), wip_items
    ),
    "flow_efficiency": DrilldownMetric(
        "ticket", "percent", 2, ("cycles",), TICKET_FILTERS, flow_efficiency_items
    ),
    "defect_escape": DrilldownMetric(
        "ticket", "escaped (1) or not (0)", 4, ("defects",),
        ("delivery_stream", "tech_stream", "stage", "severity"), defect_escape_items,
    ),
    "review_turnaround": DrilldownMetric(
        "pull_request", "hours", 2, ("prs",), CODE_FILTERS, review_turnaround_items
    ),
    "lead_time_for_changes": DrilldownMetric(
        "pull_request", "hours", 2, ("prs", "deploys"), CODE_FILTERS, lead_time_items
    ),
    "deployment_frequency": DrilldownMetric(
        "deployment", "deploys (1 each)", 0, ("deploys", "incidents", "prs"), CODE_FILTERS,
        deployment_frequency_items,
    ),
    "change_failure_rate": DrilldownMetric(
        "deployment", "failed (1) or not (0)", 4, ("deploys", "incidents", "prs"), CODE_FILTERS,
        change_failure_items,
    ),
    "time_to_restore": DrilldownMetric(
        "incident", "minutes", 2, ("incidents", "deploys"), ("tech_stream", "severity"),
        time_to_restore_items,
    ),
}  # fmt: skip


# --- the view -----------------------------------------------------------------------------


def check_request(
    metric: str,
    *,
    sort_by: str,
    sort_order: str,
    limit: int,
    offset: int,
    filters: Mapping[str, str] | None,
) -> tuple[DrilldownMetric, dict[str, str]]:
    """The metric's spec and the filters, cleaned; ``BadParameter`` names what is wrong."""
    spec = DRILLDOWN_METRICS.get(metric)
    if spec is None:
        raise BadParameter("metric", f"unknown metric {metric!r}", allowed=list(DRILLDOWN_METRICS))
    if sort_by not in SORT_FIELDS:
        raise BadParameter("sort_by", f"cannot sort by {sort_by!r}", allowed=list(SORT_FIELDS))
    if sort_order not in SORT_ORDERS:
        raise BadParameter("sort_order", f"unknown order {sort_order!r}", allowed=["asc", "desc"])
    if isinstance(limit, bool) or not 1 <= limit <= MAX_LIMIT:
        raise BadParameter("limit", f"must be 1..{MAX_LIMIT}, got {limit}")
    if isinstance(offset, bool) or offset < 0:
        raise BadParameter("offset", f"must be 0 or more, got {offset}")
    wanted: dict[str, str] = {}
    for key, value in (filters or {}).items():
        if key not in spec.filters:
            problem = f"{metric} cannot be filtered by {key!r}"
            raise BadParameter("filters", problem, allowed=list(spec.filters))
        if not isinstance(value, str) or not value.strip():
            raise BadParameter("filters", f"filter {key!r} needs a value")
        wanted[key] = value.strip()
    return spec, wanted


def aggregation(values: list[float], digits: int) -> dict[str, float | None]:
    """Sum, mean, extremes and linear percentiles (``dpp_lib.metrics.common.percentiles``,
    as the metrics) of every matching item's value, rounded like the metric."""
    p = percentiles(values, (50, 90, 95))
    stats = {
        "sum": sum(values) if values else None,
        "avg": sum(values) / len(values) if values else None,
        "min": min(values) if values else None,
        "max": max(values) if values else None,
        "p50": p[50],
        "p90": p[90],
        "p95": p[95],
    }
    return {k: num(v, max(digits, 2) if k == "avg" else digits) for k, v in stats.items()}


def sort_items(items: list[Item], *, sort_by: str, sort_order: str) -> list[Item]:
    """Stable and deterministic: ties (and items without the field, always last) by
    ``item_id``, ascending."""
    ordered = sorted(items, key=lambda i: (i.item_id, i.uid))
    descending = sort_order == "desc"
    if sort_by == "item_id":
        return ordered[::-1] if descending else ordered
    if sort_by == "value":
        present = [i for i in ordered if i.value is not None]
        present.sort(key=lambda i: i.value or 0.0, reverse=descending)
        return present + [i for i in ordered if i.value is None]
    timed = [i for i in ordered if i.timestamp is not None]
    timed.sort(key=lambda i: i.timestamp or datetime.min, reverse=descending)
    return timed + [i for i in ordered if i.timestamp is None]


def drilldown(
    conn: sa.Connection,
    lookups: OrgLookups,
    *,
    metric: str,
    scope: Scope,
    as_of: datetime,
    window_days: int,
    sort_by: str = "value",
    sort_order: str = "desc",
    limit: int = 50,
    offset: int = 0,
    filters: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The items behind ``metric`` over ``[as_of − window_days, as_of)`` within ``scope``
    (see ``drilldown_of``). Raises ``BadParameter`` naming ``metric``, ``sort_by``,
    ``sort_order``, ``limit``, ``offset``, ``filters`` or ``window_days``."""
    spec, _ = check_request(
        metric,
        sort_by=sort_by,
        sort_order=sort_order,
        limit=limit,
        offset=offset,
        filters=filters,
    )
    check_window(window_days)
    frames = Frames(conn, lookups, scope, as_of)
    return drilldown_of(
        metric,
        {name: frames.get(name) for name in spec.reads},
        names=load_names(conn),
        lookups=lookups,
        as_of=as_of,
        window_days=window_days,
        sort_by=sort_by,
        sort_order=sort_order,
        limit=limit,
        offset=offset,
        filters=filters,
        event_ids=lambda keys: opened_event_ids(conn, keys),
    )


def drilldown_of(
    metric: str,
    frames: Mapping[str, pd.DataFrame],
    *,
    names: Names,
    lookups: OrgLookups,
    as_of: datetime,
    window_days: int,
    sort_by: str = "value",
    sort_order: str = "desc",
    limit: int = 50,
    offset: int = 0,
    filters: Mapping[str, str] | None = None,
    event_ids: Callable[[list[PrKey]], Mapping[PrKey, str]] = lambda _: {},
) -> dict[str, Any]:
    """The drilldown from frames already read (the metric's ``reads``, at ``as_of``).

    Filters select items whose context matches (stream and repository by name or id, the
    rest by value, case-insensitively); the aggregation covers every matching item, the page
    ``limit`` of them from ``offset``. ``event_ids`` finds the ``opened`` event of the PRs on
    the page."""
    spec, wanted = check_request(
        metric,
        sort_by=sort_by,
        sort_order=sort_order,
        limit=limit,
        offset=offset,
        filters=filters,
    )
    src = Source(frames, names, lookups, as_of, window_days)
    matching = [
        i
        for i in spec.items(src)
        if all(v.casefold() in i.match.get(k, frozenset()) for k, v in wanted.items())
    ]
    values = [i.value for i in matching if i.value is not None]
    page = sort_items(matching, sort_by=sort_by, sort_order=sort_order)[offset : offset + limit]
    events = event_ids([i.pr for i in page if i.pr is not None]) if page else {}
    return {
        "metric": metric,
        "unit": spec.unit,
        "item_type": spec.item_type,
        "window_days": window_days,
        "as_of": as_of.isoformat(),
        "filters_applied": wanted,
        "items": [
            {
                "item_type": i.item_type,
                "item_id": i.item_id,
                "task_id": i.item_id,
                "event_id": events.get(i.pr) if i.pr is not None else None,
                "value": num(i.value, spec.digits),
                "timestamp": iso(i.timestamp),
                "context": i.context,
                "contributing_factors": i.factors,
            }
            for i in page
        ],
        "pagination": {
            "total": len(matching),
            "limit": limit,
            "offset": offset,
            "has_more": offset + len(page) < len(matching),
        },
        "aggregation": aggregation(values, spec.digits),
    }
