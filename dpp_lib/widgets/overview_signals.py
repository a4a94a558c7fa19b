"""The Overview page's upper zones as HTML (spec §7.1.1): stream health bar, real-time
signals, diagnostics (the lower ones: ``overview_outlook``). An ``Overview`` model in, one
HTML string per zone out, each figure a chart, a tile or an explicit empty state that says
what is missing and what would fix it, with the "reduced confidence" badge where data
quality is below target (§5.6). Pure functions: testable without a kernel or a browser."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from dpp_lib.charts import dashboard as charts
from dpp_lib.dashboards.overview import Overview
from dpp_lib.widgets.layout import Tile, empty_state, figure, paragraph, row, tile

SNAPSHOT_FIX = (
    "Sprint snapshots are taken every 2 hours by the sprint-snapshots schedule;"
    " `dpp schedule run sprint-snapshots` takes one now."
)
REASON_FIXES = {
    "no active sprint": "Start the next sprint in Jira, or check the board maps to this stream.",
    "no sprint snapshot on or before as_of's date": SNAPSHOT_FIX,
    "no closed sprint to sample throughput from": (
        "Confidence samples the throughput of closed sprints; it appears after the first one."
    ),
}
NO_TECH = (
    "DORA figures belong to tech streams, and your roles cover none.",
    "Ask a platform administrator for a role on a tech stream to see them.",
)


def fmt(value: float | None, digits: int = 1) -> str:
    """How the page writes a figure (the browser tests compare the API's values this way)."""
    return "—" if value is None else f"{value:.{digits}f}"


def fix_for(reason: str | None) -> str:
    return REASON_FIXES.get(reason or "", "")


# --- stream health bar ----------------------------------------------------------------------


def health_bar(m: Overview) -> str:
    ct = m.realtime["cycle_time"]
    fe = m.diagnostic["flow_efficiency"]
    de = m.diagnostic["defect_escape"]
    window = m.window.label
    tiles = [
        _confidence_tile(m),
        Tile(
            "cycle-time-p85",
            "Cycle time p85",
            f"{fmt(ct['p85'])} d",
            f"working days; p50 {fmt(ct['p50'])} d; {ct['sample_size']} items, last 30 days",
            warnings=m.warnings_for("cycle_time"),
            empty=None if ct["p85"] is not None else "No item completed in the last 30 days.",
        ),
        Tile(
            "flow-efficiency",
            "Flow efficiency",
            f"{fmt(fe['percentage'])}%",
            f"active ÷ elapsed time of {fe['sample_size']} items, {window}",
            warnings=m.warnings_for("flow_efficiency"),
            empty=None if fe["percentage"] is not None else f"No item completed in {window}.",
        ),
        _dora_tile(m, "deployment-frequency", "Deploy frequency", "deploymentFrequency", "/wk"),
        _dora_tile(m, "change-failure-rate", "Change failure rate", "changeFailureRate", "%"),
        Tile(
            "defect-escape",
            "Defect escape rate",
            f"{fmt(de['rate'])}%",
            f"{de['defect_count']} of {de['total_defects']} defects found in UAT or production",
            warnings=m.warnings_for("defect_escape"),
            empty=None if de["rate"] is not None else f"No defect logged in {window}.",
        ),
    ]
    return row(tile(t) for t in tiles)


def _confidence_tile(m: Overview) -> Tile:
    warnings = m.warnings_for("sprint_confidence")
    one = m.realtime["sprint_confidence"]
    if one is not None:
        if one["confidence_pct"] is None:
            why = f"No figure: {one['reason']}. {fix_for(one['reason'])}".strip()
            return Tile("sprint-confidence", "Sprint confidence", "", empty=why)
        detail = f"{one['remaining_count']} items left, {one['working_days_left']} working days"
        return Tile(
            "sprint-confidence",
            "Sprint confidence",
            f"{fmt(one['confidence_pct'], 0)}%",
            detail,
            warnings=warnings,
        )
    rows = m.realtime["sprint_confidence_by_stream"]
    known = [r for r in rows if r["confidence_pct"] is not None]
    if not known:
        reasons = sorted({r["reason"] for r in rows if r["reason"]})
        why = "; ".join(reasons) or "no delivery stream to show"
        fix = fix_for(reasons[0]) if len(reasons) == 1 else ""
        return Tile("sprint-confidence", "Sprint confidence", "", empty=f"No figure: {why}. {fix}")
    detail = " · ".join(f"{r['stream']} {fmt(r['confidence_pct'], 0)}%" for r in known)
    return Tile(
        "sprint-confidence", "Sprint confidence", f"{len(known)} streams", detail, warnings=warnings
    )


def _dora_tile(m: Overview, key: str, label: str, field: str, unit: str) -> Tile:
    metric = key.replace("-", "_")
    if not m.tech_visible:
        return Tile(key, label, "", empty=NO_TECH[0])
    rows = m.dora
    if len(rows) == 1:
        r = rows[0]
        if r[field] is None:
            return Tile(key, label, "", empty=f"No production deploy of {r['techStreamName']}.")
        return Tile(
            key,
            label,
            f"{fmt(r[field])}{unit}",
            f"{r['techStreamName']}, {r['deployCount']} deploys",
            level=r["levels"][field],
            warnings=m.warnings_for(metric),
        )
    parts = [
        f"{r['techStreamName']} {fmt(r[field])}{unit}"
        + (f" ({r['levels'][field]})" if r["levels"][field] else "")
        for r in rows
    ]
    return Tile(
        key,
        label,
        f"{len(rows)} tech streams",
        " · ".join(parts),
        warnings=m.warnings_for(metric),
    )


# --- real-time signals ----------------------------------------------------------------------


def realtime(m: Overview) -> str:
    rt = m.realtime
    parts: list[str] = []
    if rt["wip_total"]:
        blocked = f"; {rt['blocked']} blocked" if rt["blocked"] else ""
        unmapped = (
            f"; {rt['unmapped']} items in statuses mapped to no stage" if rt["unmapped"] else ""
        )
        parts.append(
            figure(
                "wip",
                charts.svg(charts.wip_by_stage(rt["aging_by_stage"])),
                caption=f"{rt['wip_total']} items in progress{blocked}{unmapped}.",
                warnings=m.warnings_for("wip_by_stage"),
            )
        )
    else:
        parts.append(
            empty_state(
                f"No work in progress in {m.delivery_label}.",
                "Items appear here when their tickets move out of the backlog into a mapped stage.",
                key="wip",
            )
        )
    parts.append(_gauge(m))
    ct = rt["cycle_time"]
    scatter = (
        figure(
            "cycle-time",
            charts.svg(
                charts.cycle_scatter(rt["cycle_scatter"], p85=ct["p85"], outliers=rt["outliers"])
            ),
            caption=_outliers(rt["outliers"]),
            warnings=m.warnings_for("cycle_time"),
        )
        if rt["cycle_scatter"]
        else empty_state(
            "No item completed in the last 30 days.",
            "The scatter shows each item as it reaches done.",
            key="cycle-time",
        )
    )
    return row(parts) + scatter + _oldest(rt["oldest"])


def _gauge(m: Overview) -> str:
    one = m.realtime["sprint_confidence"]
    warnings = m.warnings_for("sprint_confidence")
    if one is not None and one["confidence_pct"] is not None:
        chart = charts.svg(charts.confidence_gauge(one["confidence_pct"]))
        caption = f"{one['remaining_count']} items left, {one['working_days_left']} working days."
        return figure("sprint-confidence", chart, caption=caption, warnings=warnings)
    rows = m.realtime["sprint_confidence_by_stream"]
    known = [r for r in rows if r["confidence_pct"] is not None]
    if one is None and known:
        chart = charts.svg(charts.confidence_by_stream(known))
        return figure("sprint-confidence", chart, warnings=warnings)
    reasons = sorted({r["reason"] for r in rows if r["reason"]}) or ["no delivery stream"]
    return empty_state(
        f"No sprint confidence: {'; '.join(reasons)}.",
        fix_for(reasons[0]) if len(reasons) == 1 else SNAPSHOT_FIX,
        key="sprint-confidence",
    )


def _outliers(names: Sequence[str]) -> str:
    if not names:
        return "No item took longer than the p85 line."
    return f"Above p85 ({len(names)}): {', '.join(names)}."


def _oldest(items: Sequence[Mapping[str, Any]]) -> str:
    if not items:
        return ""
    text = ", ".join(
        f"{i['ticket_id']} ({charts.stage_label(i['stage'])}, {fmt(i['age_hours'] / 24)} d"
        + (", blocked" if i["is_blocked"] else "")
        + ")"
        for i in items[:5]
    )
    return paragraph(f"Oldest in progress: {text}.", key="oldest")


# --- diagnostics ----------------------------------------------------------------------------


def diagnostics(m: Overview) -> str:
    d, window = m.diagnostic, m.window.label
    fe, de, rt = d["flow_efficiency"], d["defect_escape"], d["pr_review_turnaround"]
    parts = [
        figure(
            "flow-efficiency",
            charts.svg(charts.queue_waits(fe["queues"])),
            caption=f"Flow efficiency {fmt(fe['percentage'])}%: {fmt(fe['active_days'])} active"
            f" and {fmt(fe['wait_days'])} waiting days per item, {window}.",
            warnings=m.warnings_for("flow_efficiency"),
        )
        if fe["queues"]
        else empty_state(
            f"No completed item with stage times in {window}.",
            "Flow efficiency needs items that reached done; widen the time range.",
            key="flow-efficiency",
        ),
        figure(
            "defect-escape",
            charts.svg(charts.defect_matrix(de["matrix"])),
            caption=f"Escape rate {fmt(de['rate'])}%; {fmt(de['unattributed_pct'])}% of"
            " defects have no recorded origin stage.",
            warnings=m.warnings_for("defect_escape"),
        )
        if de["matrix"]
        else empty_state(
            f"No defect with an origin stage in {window}.",
            "The matrix fills as defects are logged with the stage they were introduced in.",
            key="defect-escape",
        ),
        _reviews(m, rt),
    ]
    return row(parts)


def _reviews(m: Overview, rt: Mapping[str, Any]) -> str:
    if rt["is_suppressed"]:
        return empty_state(
            "PR review turnaround is not shown: too few contributors in this scope.",
            "Individual review habits would be identifiable below the minimum number of"
            " contributors (spec §4.6); choose a wider scope.",
            key="review-turnaround",
        )
    if rt["median_hours"] is None:
        return empty_state(
            "No reviewed pull request in this window.",
            "Review turnaround appears once pull requests get reviews.",
            key="review-turnaround",
        )
    concentration = (
        f"{fmt(rt['reviewer_concentration'], 2)}"
        + (" — uneven review load" if rt["uneven_review_load"] else "")
        if rt["reviewer_concentration"] is not None
        else "—"
    )
    warnings = m.warnings_for("review_turnaround")
    return '<div class="dpp-review" id="dpp-review-turnaround">' + row(
        [
            tile(Tile("review-median", "Review turnaround p50", f"{fmt(rt['median_hours'])} h",
                      f"{rt['sample_size']} PRs, {rt['review_count']} reviews", warnings=warnings)),
            tile(Tile("review-p85", "Review turnaround p85", f"{fmt(rt['p85_hours'])} h")),
            tile(Tile("reviewer-concentration", "Reviewer concentration", concentration,
                      f"{rt['contributor_count']} contributors")),
        ]
    ) + "</div>"  # fmt: skip
