"""The Admin page's zones as HTML (spec §7.1.3): an ``AdminView`` in, one HTML string per zone
out, each a chart, a table or an explicit empty state that says what is missing and what
would fix it. Pure functions: testable without a kernel or a browser. The action rows
(link, requeue) are widgets: ``dpp_lib.widgets.admin``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from html import escape
from typing import Any

from dpp_lib.charts import admin as charts
from dpp_lib.charts.dashboard import svg
from dpp_lib.dashboards.admin import (
    CONFIG_EDITED_IN,
    AdminView,
    DeadLetter,
    UnlinkedPr,
)
from dpp_lib.views.admin import API_NAMES
from dpp_lib.widgets.layout import Tile, empty_state, figure, paragraph, row, tile

STYLE = """<style>
.dpp-table { border-collapse: collapse; margin: 0.6em 0; font-size: 0.9em; }
.dpp-table th, .dpp-table td { border-bottom: 1px solid #d9dee3; padding: 0.2em 0.6em;
  text-align: left; vertical-align: top; }
.dpp-below { color: #b3261e; font-weight: 600; }
.dpp-feedback { padding: 0.3em 0.8em; margin: 0.3em 0; max-width: 60em; }
.dpp-feedback-ok { border-left: 4px solid #1a9850; background: #ecf8f0; }
.dpp-feedback-error { border-left: 4px solid #b3261e; background: #fdeceb; }
.dpp-line { font-size: 0.9em; min-width: 34em; }
.dpp-line code { font-size: 0.95em; }
</style>"""
SOURCE_FIXES = {
    "github": "the GitHub App's webhook deliveries",
    "jira": "the Jira webhook",
    "deployment": "the CI/CD pipelines' deployment events",
    "incident": "the monitoring tools' incident events",
    "pulse": "the pulse survey",
}


def pct(value: float | None) -> str:
    """How the page writes a rate (the browser tests compare the API's values this way)."""
    return "—" if value is None else f"{value:.1f}%"


def when(at: datetime | str | None) -> str:
    if at is None:
        return "—"
    moment = datetime.fromisoformat(at.replace("Z", "+00:00")) if isinstance(at, str) else at
    return moment.strftime("%d %b %Y %H:%M")


def plural(n: int, word: str, many: str | None = None) -> str:
    """``1 delivery``, ``2 deliveries``."""
    return f"{n} {word if n == 1 else many or word + 's'}"


def table(key: str, head: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A table of plain-text cells (escaped here)."""
    th = "".join(f"<th>{escape(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{escape(c)}</td>" for c in r) + "</tr>" for r in rows)
    return f'<table class="dpp-table" id="dpp-{escape(key)}"><tr>{th}</tr>{body}</table>'


def feedback(text: str, *, ok: bool) -> str:
    kind = "ok" if ok else "error"
    role = "status" if ok else "alert"
    return (
        f'<div class="dpp-feedback dpp-feedback-{kind}" role="{role}"><p>{escape(text)}</p></div>'
    )


# --- data quality -----------------------------------------------------------------------------


def quality(v: AdminView) -> str:
    dq = v.data_quality
    tiles = row(
        tile(
            Tile(
                f"rate-{name}",
                charts.RATE_LABELS[name],
                pct(dq[api]),
                f"target ≥ {dq['targets'][api]:g}%; {dq['sampleSizes'][api]} in the sample",
                empty=None if dq[api] is not None else f"No data in {v.window.label}.",
            )
        )
        for name, api in API_NAMES.items()
    )
    rows = v.stream_rows()
    if not rows:
        return tiles + empty_state(
            "No stream to report on.",
            "Streams come from the org config file; load it with `dpp config load FILE`.",
            key="quality",
        )
    chart = figure(
        "quality",
        svg(charts.data_quality(rows)),
        caption=f"Each stream's rates over {v.window.label}; a tech stream owns PR linkage,"
        " ticket tagging and deploy traceability, a delivery stream defect attribution and"
        " pulse response. Rates below target mark the dashboards' figures they affect.",
    )
    below = [rate for r in rows for rate in r["rates"].values() if rate["below_target"]]
    lines = [
        [
            r["stream"],
            r["kind"],
            charts.RATE_LABELS[name],
            pct(rate["value"]),
            f"≥ {rate['target']:g}%",
            f"{rate['numerator']} of {rate['denominator']}",
            "below target" if rate["below_target"] else "",
        ]
        for r in rows
        for name, rate in r["rates"].items()
    ]
    summary = paragraph(
        f"{plural(len(below), 'stream rate')} below target."
        if below
        else "Every stream rate is on target.",
        key="quality-summary",
    )
    head = ("Stream", "Kind", "Rate", "Value", "Target", "Sample", "")
    details = (
        "<details><summary>Every stream rate with its sample</summary>"
        f"{table('quality-table', head, lines)}</details>"
    )
    return tiles + chart + summary + details


# --- integration health and alerts --------------------------------------------------------------


def health(v: AdminView) -> str:
    sources: Mapping[str, Mapping[str, Any]] = v.integrations
    quiet = [name for name, i in sources.items() if i["status"] != "healthy"]
    chart = figure(
        "integrations",
        svg(charts.integrations(sources)),
        caption="Healthy: events in the last 2 hours; stale: none in 2 hours but some before;"
        " no data: never." + (f" Not healthy: {', '.join(quiet)}." if quiet else ""),
    )
    lines = [
        [
            name,
            i["status"],
            when(i["lastEventAt"]),
            str(i["eventCount24h"]),
            "" if i["status"] == "healthy" else f"Check {SOURCE_FIXES.get(name, name)}.",
        ]
        for name, i in sources.items()
    ]
    sources_table = table(
        "integrations-table", ("Source", "Status", "Last event", "Events, 24 h", ""), lines
    )
    return chart + sources_table + _alerts(v.alerts)


def _alerts(active: Sequence[Mapping[str, Any]]) -> str:
    if not active:
        return empty_state(
            "No active system alert.",
            "Alerts are evaluated hourly by the data-quality schedule and on each"
            " GET /api/v1/admin/system-alerts.",
            key="alerts",
        )
    lines = [[a["severity"], a["condition"], a["message"], when(a["triggeredAt"])] for a in active]
    return "<h3>Active system alerts</h3>" + table(
        "alerts-table", ("Severity", "Condition", "Message", "Since"), lines
    )


# --- unlinked pull requests ---------------------------------------------------------------------


def unlinked(v: AdminView) -> str:
    scope = v.tech.display_name if v.tech else "any tech stream"
    if not v.unlinked.total:
        return empty_state(
            f"No unlinked pull request of {scope} opened in {v.window.label}.",
            "Every PR names its ticket; widen the time range to look further back.",
            key="unlinked",
        )
    shown = len(v.unlinked.rows)
    more = f" The newest {shown} are listed." if v.unlinked.total > shown else ""
    summary = paragraph(
        f"Unlinked: {plural(v.unlinked.total, 'pull request')} of {scope} opened in"
        f" {v.window.label} (no ticket named).{more} Choose one below, type its Jira key and"
        " press Link: the PR takes the ticket's delivery stream, its derived records are"
        " refreshed, and the audit log names you.",
        key="unlinked-summary",
    )
    lines = [
        [
            f"{pr.repository}#{pr.pr_number}",
            pr.tech_stream,
            pr.branch,
            when(pr.opened_at),
            when(pr.merged_at) if pr.merged_at else "open",
        ]
        for pr in v.unlinked.rows
    ]
    head = ("Pull request", "Tech stream", "Branch", "Opened", "Merged")
    return summary + table("unlinked-table", head, lines)


def pr_label(pr: UnlinkedPr) -> str:
    """How the link form names a pull request."""
    return f"{pr.repository}#{pr.pr_number} · {pr.tech_stream} · {pr.branch}"


# --- configuration ------------------------------------------------------------------------------


def config(v: AdminView) -> str:
    c = v.config
    src = c.source
    if src.file:
        origin = paragraph(
            f"Loaded from {src.file} on {when(src.loaded_at)} UTC by {src.loaded_by}"
            f" (`dpp config load`; configuration {src.sha256[:12]}). Read-only here: edit that"
            " file and load it again to change these tables.",
            key="config-source",
        )
    else:
        origin = paragraph(
            "The file these tables were loaded from is not recorded (they were loaded without"
            f" `dpp config load`; configuration {src.sha256[:12]}). They are edited in the org"
            f" config file ({CONFIG_EDITED_IN} in this repository) and loaded with"
            " `dpp config load FILE`, which records the file here.",
            key="config-source",
        )
    delivery = table(
        "config-delivery",
        ("Delivery stream", "Display name", "Team size", "Min contributors", "Labels", "Active"),
        [
            [
                s["name"],
                s["display_name"],
                _text(s["team_size"]),
                _text(s["min_contributors"]),
                ", ".join(s["labels"] or []),
                _active(s["is_active"]),
            ]
            for s in c.delivery_streams
        ],
    )
    tech = table(
        "config-tech",
        ("Tech stream", "Display name", "GitHub org", "Ticket key pattern", "Active"),
        [
            [
                s["name"],
                s["display_name"],
                s["github_org"],
                s["ticket_key_pattern"] or "",
                _active(s["is_active"]),
            ]
            for s in c.tech_streams
        ],
    )
    projects = table(
        "config-projects",
        ("Jira project", "Delivery stream", "Derivation", "Active"),
        [
            [
                p["project_key"],
                p["delivery_stream"] or "—",
                " → ".join(p["derivation"]),
                _active(p["is_active"]),
            ]
            for p in c.jira_projects
        ],
    )
    by_project: dict[str, list[str]] = {}
    for m in c.status_mappings:
        active = ", active work" if m["is_active_work"] else ""
        by_project.setdefault(m["jira_project_key"], []).append(
            f"{m['jira_status_name']} → {m['pipeline_stage']}{active}"
        )
    mappings = (
        table(
            "config-mappings",
            ("Jira project", "Jira status → pipeline stage, in board order"),
            [[key, "; ".join(lines)] for key, lines in by_project.items()],
        )
        if by_project
        else empty_state(
            "No status mapping.",
            "Map each Jira status to a pipeline stage under jira_projects in the org config.",
            key="config-mappings",
        )
    )
    return (
        origin
        + "<h3>Delivery streams</h3>"
        + delivery
        + "<h3>Tech streams</h3>"
        + tech
        + "<h3>Jira projects</h3>"
        + projects
        + "<h3>Status mappings</h3>"
        + mappings
    )


def _text(value: object) -> str:
    return "—" if value is None else str(value)


def _active(value: object) -> str:
    return "yes" if value else "archived"


# --- dead letters -------------------------------------------------------------------------------


def dead(v: AdminView) -> str:
    if not v.dead.total:
        return empty_state(
            "No dead letter: every delivery the inbox received was processed or is pending.",
            "A delivery is dead-lettered after the worker's last retry fails; it appears here"
            " to be requeued once the cause is fixed.",
            key="dead",
        )
    more = (
        f" The newest {len(v.dead.rows)} are listed; Requeue all moves every one."
        if v.dead.total > len(v.dead.rows)
        else ""
    )
    return paragraph(
        f"{plural(v.dead.total, 'delivery', 'deliveries')} failed every retry.{more} Requeue"
        " one, or all, once the cause in its last error is fixed: the worker processes them"
        " again.",
        key="dead-summary",
    )


def dead_line(letter: DeadLetter) -> str:
    kind = f" {escape(letter.event_kind)}" if letter.event_kind else ""
    return (
        f'<div class="dpp-line"><strong>#{letter.id}</strong> {escape(letter.source)}{kind}'
        f" · delivery <code>{escape(letter.delivery_id)}</code> · received"
        f" {when(letter.received_at)} · {letter.attempts} attempts"
        f"<br><span>{escape(letter.last_error or 'no error recorded')}</span></div>"
    )
