"""The Cross-stream page's zones as HTML (spec §7.1.2): a ``CrossStream`` model in, one HTML
string per zone out — the root-cause signal, the heatmap with its table, the impact
analysis — each a chart, a table or an explicit empty state that says what is missing and
what would fix it. Pure functions: testable without a kernel or a browser."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from html import escape
from typing import Any

from dpp_lib.charts import cross_stream as charts
from dpp_lib.charts.dashboard import svg
from dpp_lib.dashboards.cross_stream import (
    BLOCK_WINDOW_DAYS,
    CrossStream,
    Impact,
    StreamImpact,
)
from dpp_lib.widgets.layout import Tile, empty_state, figure, paragraph, row, tile

NO_TECH = (
    "Cross-stream figures belong to tech streams, and your roles cover none.",
    "Ask a platform administrator for a role on a tech stream to see which ones block work.",
)
BLOCK_FIX = (
    "A block counts when a ticket is flagged blocked in Jira with its blocking tech stream"
    " field set (the org config's jira_fields.blocking_tech_stream)."
)
TABLE_HEAD = (
    "Tech stream",
    "Severity",
    "Block events (14 d)",
    "Blocked tickets",
    "Impacted delivery streams",
    "Blocked now",
    "Avg sprint confidence",
    "Avg cycle time p85",
)


def fmt(value: float | None, digits: int = 1, unit: str = "") -> str:
    """How the page writes a figure (the browser tests compare the API's values this way)."""
    return "—" if value is None else f"{value:.{digits}f}{unit}"


def names(streams: Sequence[Mapping[str, Any]], hidden: int = 0) -> str:
    """``insights, lending`` (+ ``and 1 you cannot see``); ``none`` when empty."""
    parts = [s["name"] for s in streams]
    if hidden:
        parts.append(f"{hidden} you cannot see")
    return ", ".join(parts) or "none"


STYLE = """<style>
.dpp-table { border-collapse: collapse; margin: 0.6em 0; font-size: 0.9em; }
.dpp-table th, .dpp-table td { border-bottom: 1px solid #d9dee3; padding: 0.2em 0.6em;
  text-align: left; vertical-align: top; }
.dpp-severity { display: inline-block; border-radius: 3px; padding: 0 0.4em; color: #fff;
  background: #7b8794; font-size: 0.8em; }
.dpp-severity-low { background: #b7950b; } .dpp-severity-medium { background: #d69e2e; }
.dpp-severity-high { background: #e4572e; } .dpp-severity-critical { background: #9b1c1c; }
.dpp-root-cause { border-left: 4px solid #e4572e; padding: 0.2em 0.8em; background: #fff5f2; }
</style>"""


def root_cause(m: CrossStream) -> str:
    if not m.tech_visible:
        return empty_state(*NO_TECH, key="root-cause")
    top = m.top
    if top is None:
        return empty_state(
            f"No tech stream blocked a delivery stream in the {BLOCK_WINDOW_DAYS} days"
            f" to {when(m.as_of)}.",
            BLOCK_FIX,
            key="root-cause",
        )
    hidden = top["impacted_stream_count"] - len(top["impacted_delivery_streams"])
    text = (
        f"{top['block_count_14d']} block events on {top['blocked_ticket_count']} tickets in the"
        f" {BLOCK_WINDOW_DAYS} days to {when(m.as_of)}, impacting"
        f" {top['impacted_stream_count']} delivery streams"
        f" ({names(top['impacted_delivery_streams'], hidden)}); blocking"
        f" {names(top['blocked_delivery_streams'])} now. Their average sprint confidence is"
        f" {fmt(top['avg_confidence_pct'], unit='%')} and cycle time p85"
        f" {fmt(top['avg_cycle_time_p85'], unit=' business days')}."
    )
    calibration = (
        paragraph(
            "Severities are being calibrated (spec §6.7): recorded, no alert is raised yet.",
            key="calibration",
        )
        if m.answer["calibration"]
        else ""
    )
    return (
        '<div class="dpp-root-cause" id="dpp-root-cause">'
        f'<p><span class="dpp-severity dpp-severity-{escape(top["severity"].lower())}">'
        f"{escape(top['severity'])}</span> <strong>{escape(top['tech_stream'])}</strong> has the"
        " highest cross-stream impact.</p>"
        f"{paragraph(text, key='root-cause-detail')}{calibration}</div>"
    )


def heatmap(m: CrossStream) -> str:
    if not m.tech_visible:
        return empty_state(*NO_TECH, key="heatmap")
    columns = [s.name for s in m.columns]
    hidden = any(
        r["impacted_stream_count"] > len(r["impacted_delivery_streams"]) for r in m.correlations
    )
    selected = m.tech.name if m.tech else None
    chart = (
        figure(
            "heatmap",
            svg(charts.heatmap(m.correlations, columns, selected=selected)),
            caption=f"Blocks over the {BLOCK_WINDOW_DAYS} days to {when(m.as_of)} (spec §6.7:"
            " a fixed window; the time range does not apply). A cell is coloured by its tech"
            " stream's severity where the tech stream blocked the delivery stream's work.",
        )
        if columns or hidden
        else empty_state(
            "You see no delivery stream to draw the tech streams' impact against.",
            "Ask a platform administrator for a role on a delivery stream.",
            key="heatmap",
        )
    )
    return chart + table(m.correlations)


def table(correlations: Sequence[Mapping[str, Any]]) -> str:
    """The answer's rows as the API gives them (one per tech stream)."""
    head = "".join(f"<th>{escape(h)}</th>" for h in TABLE_HEAD)
    body = "".join(
        f'<tr data-tech="{escape(r["tech_stream"])}">'
        + "".join(
            f"<td>{escape(str(v))}</td>"
            for v in (
                r["tech_stream"],
                r["severity"],
                r["block_count_14d"],
                r["blocked_ticket_count"],
                f"{r['impacted_stream_count']}: "
                + names(
                    r["impacted_delivery_streams"],
                    r["impacted_stream_count"] - len(r["impacted_delivery_streams"]),
                ),
                names(r["blocked_delivery_streams"]),
                fmt(r["avg_confidence_pct"], unit="%"),
                fmt(r["avg_cycle_time_p85"], unit=" d"),
            )
        )
        + "</tr>"
        for r in correlations
    )
    return f'<table class="dpp-table" id="dpp-cross-table"><tr>{head}</tr>{body}</table>'


def impact(m: CrossStream) -> str:
    if not m.tech_visible:
        return empty_state(*NO_TECH, key="impact")
    if m.impact is None:
        return empty_state(
            "No tech stream to analyse: none blocked a delivery stream in the"
            f" {BLOCK_WINDOW_DAYS} days.",
            "Choose a tech stream above to see its figures.",
            key="impact",
        )
    i = m.impact
    r = i.row
    why = (
        "the root-cause signal"
        if i.is_root_cause and m.tech is None
        else "selected"
        if m.tech
        else ""
    )
    heading = paragraph(
        f"{i.tech.display_name} ({i.tech.name}){f' — {why}' if why else ''}.", key="impact-heading"
    )
    tiles = row(
        tile(t)
        for t in (
            Tile("impact-severity", "Severity", r["severity"], "spec §6.7 rules"),
            Tile("impact-blocks", "Block events", str(r["block_count_14d"]),
                 f"{r['blocked_ticket_count']} tickets, {BLOCK_WINDOW_DAYS} days"),
            Tile("impact-streams", "Impacted delivery streams", str(r["impacted_stream_count"]),
                 names(r["impacted_delivery_streams"], i.hidden_streams)),
            Tile("impact-blocked-now", "Blocking now",
                 str(len(r["blocked_delivery_streams"])),
                 names(r["blocked_delivery_streams"])
                 + (" of the streams you can see" if i.hidden_streams else "")),
            Tile("impact-confidence", "Avg sprint confidence",
                 fmt(r["avg_confidence_pct"], unit="%"), "of the impacted streams",
                 warnings=i.warnings),
            Tile("impact-p85", "Avg cycle time p85", fmt(r["avg_cycle_time_p85"], unit=" d"),
                 "business days, impacted streams", warnings=i.warnings),
        )
    )  # fmt: skip
    return heading + tiles + _streams(m, i)


def _streams(m: CrossStream, i: Impact) -> str:
    if not i.streams:
        shown = m.delivery.display_name if m.delivery else "any delivery stream you can see"
        return empty_state(
            f"{i.tech.display_name} blocked no work of {shown} in the {BLOCK_WINDOW_DAYS} days.",
            "" if i.hidden_streams == 0 else "The streams it impacted are outside your roles.",
            key="impact-streams",
        )
    rows = [
        {
            "stream": s.stream.name,
            "confidence_pct": s.confidence_pct,
            "cycle_time_p85": s.cycle_time_p85,
        }
        for s in i.streams
    ]
    chart = figure(
        "impact",
        svg(
            charts.impact_chart(
                rows,
                avg_confidence_pct=i.row["avg_confidence_pct"],
                avg_cycle_time_p85=i.row["avg_cycle_time_p85"],
            )
        ),
        caption="Sprint confidence and cycle time p85 as of the page's moment (the API's"
        " real-time figures)."
        + (
            " A stream without a bar has no figure: the table says why."
            if any(x.confidence_pct is None or x.cycle_time_p85 is None for x in i.streams)
            else ""
        ),
        warnings=i.warnings,
    )
    head = "".join(
        f"<th>{h}</th>"
        for h in (
            "Delivery stream",
            "Blocked now",
            "Sprint confidence",
            "Cycle time p85",
            f"Items blocked, {m.window.label}",
            "Mean time blocked",
        )
    )
    body = "".join(_stream_row(s) for s in i.streams)
    note = paragraph(
        "Items blocked: completed items of the stream that spent time blocked (by any cause)"
        f" over {m.window.label} (the time range), from the diagnostic figures.",
        key="impact-note",
    )
    table = f'<table class="dpp-table" id="dpp-impact-table"><tr>{head}</tr>{body}</table>'
    return chart + table + note


def _stream_row(s: StreamImpact) -> str:
    confidence = (
        fmt(s.confidence_pct, unit="%") if s.confidence_pct is not None else s.confidence_reason
    )
    cells = (
        s.stream.display_name,
        "yes" if s.blocked_now else "no",
        confidence or "—",
        fmt(s.cycle_time_p85, unit=" d"),
        str(s.blocked_items),
        fmt(s.blocked_mean_days, 2, " d"),
    )
    tds = "".join(f"<td>{escape(c)}</td>" for c in cells)
    return f'<tr data-stream="{escape(s.stream.name)}">{tds}</tr>'


def when(at: datetime) -> str:
    return at.strftime("%d %b %Y %H:%M UTC")
