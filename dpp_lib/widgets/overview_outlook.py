"""The Overview page's lower zones as HTML (spec §7.1.1): DORA trends, forecast, team
health. An ``Overview`` model in, one HTML string per zone out; a hidden zone gives ""."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

from dpp_lib.charts import dashboard as charts
from dpp_lib.dashboards.overview import Overview
from dpp_lib.widgets.layout import Tile, empty_state, figure, row, tile
from dpp_lib.widgets.overview_signals import NO_TECH, fix_for, fmt

# --- DORA trends ----------------------------------------------------------------------------


def dora(m: Overview) -> str:
    if not m.tech_visible:
        return empty_state(*NO_TECH, key="dora")
    series = (m.trend_series or {}).get("series", [])
    active = any(w["deploymentFrequency"] or w["incidentCount"] for w in series)
    warnings = [*m.warnings_for("deployment_frequency"), *m.warnings_for("change_failure_rate")]
    chart = (
        figure(
            "dora",
            charts.svg(charts.dora_trends(series)),
            caption=f"Weekly, {m.tech_label}, {m.window.label}."
            " Pale bars: weeks only partly inside the window.",
            warnings=list(dict.fromkeys(warnings)),
        )
        if active
        else empty_state(
            f"No production deploy or incident for {m.tech_label} in the window.",
            "Deploys arrive from the CI/CD pipelines and incidents from monitoring webhooks.",
            key="dora",
        )
    )
    return chart + _dora_table(m)


def _dora_table(m: Overview) -> str:
    if not m.dora:
        return ""
    head = "".join(
        f"<th>{h}</th>"
        for h in ("Tech stream", "Deploys/week", "Change failure", "Restore (median)", "Lead time")
    )
    rows = "".join(
        "<tr>"
        f"<td>{escape(r['techStreamName'])}</td>"
        f"<td>{_cell(r['deploymentFrequency'], '', r['levels']['deploymentFrequency'])}</td>"
        f"<td>{_cell(r['changeFailureRate'], '%', r['levels']['changeFailureRate'])}</td>"
        f"<td>{_cell(r['ttrMedian'], ' min', r['levels']['ttr'])}</td>"
        f"<td>{_cell(r['leadTimeP50'], ' h', r['levels']['leadTime'])}</td>"
        "</tr>"
        for r in m.dora
    )
    return f'<table class="dpp-dora-table" id="dpp-dora-table"><tr>{head}</tr>{rows}</table>'


def _cell(value: float | None, unit: str, level: str | None) -> str:
    if not level:
        return f"{fmt(value)}{unit}"
    pill = escape(level)
    return f'{fmt(value)}{unit} <span class="dpp-level dpp-level-{pill}">{pill}</span>'


# --- forecast -------------------------------------------------------------------------------


def forecast(m: Overview) -> str:
    if m.forecast is None:
        return ""
    hm, when = m.forecast["forecast"], m.forecast["when"]
    warnings = m.warnings_for("forecast")
    return _when(m, when, warnings) + _how_many(hm, warnings)


def _when(m: Overview, when: Mapping[str, Any], warnings: Sequence[Any]) -> str:
    remaining = f"{when['scope_item_count']} items remaining in {m.delivery_label}"
    if when["method"] == "monte_carlo":
        dates = row(
            tile(Tile(f"when-{p}", f"Done by ({p})", when[p] or "beyond a year"))
            for p in charts.PERCENTILES
        )
        note = f" {when['reason']}." if when["reason"] else ""
        return (
            figure(
                "forecast-when",
                charts.svg(charts.forecast_when(when)),
                caption=f"{remaining}; {when['simulations']} simulations sampling"
                f" {when['sample_size']} weeks of throughput.{note}",
                warnings=warnings,
            )
            + dates
        )
    if when["method"] == "linear":
        return (
            '<div id="dpp-forecast-when" class="dpp-low-confidence">'
            + tile(
                Tile(
                    "when-projected",
                    "Done by (low confidence)",
                    str(when["projected_completion_date"]),
                    f"{remaining}; straight line at {fmt(when['mean_weekly_throughput'])} items a"
                    f" week. {when['reason']}.",
                    warnings=warnings,
                )
            )
            + "</div>"
        )
    return empty_state(
        f"No completion forecast: {when['reason']}.",
        "The forecast samples weekly throughput; it needs remaining scope and completed items.",
        key="forecast-when",
    )


def _how_many(hm: Mapping[str, Any], warnings: Sequence[Any]) -> str:
    if hm["p50"] is None:
        return empty_state(
            f"No sprint-end forecast: {hm['reason']}.",
            fix_for(hm["reason"]) or "It appears during an active sprint with completed items.",
            key="forecast-how-many",
        )
    days = f"{hm['working_days_left']} working days left"
    return '<div id="dpp-forecast-how-many">' + row(
        [
            tile(Tile("how-many-p85", "By sprint end (85% of runs)", f"≥ {hm['p85']} items",
                      days, warnings=warnings)),
            tile(Tile("how-many-p50", "By sprint end (50%)", f"≥ {hm['p50']} items")),
            tile(Tile("how-many-p95", "By sprint end (95%)", f"≥ {hm['p95']} items")),
        ]
    ) + "</div>"  # fmt: skip


# --- team health ----------------------------------------------------------------------------


def team_health(m: Overview) -> str:
    if m.pulse is None:
        return ""
    aggregates = m.pulse["aggregates"]
    shown = [a for a in aggregates if not a["is_suppressed"]]
    warnings = m.warnings_for("team_pulse")
    if not shown:
        return empty_state(
            f"No pulse survey results for {m.delivery_label} in the last six periods.",
            "Results appear for a period once enough team members answer the monthly survey"
            " (fewer are suppressed to keep answers anonymous).",
            key="pulse",
        )
    chart = figure(
        "pulse",
        charts.svg(charts.pulse_trend(aggregates)),
        caption="Survey periods with too few answers are left out (anonymity).",
        warnings=warnings,
    )
    if m.delivery is None:
        return chart
    latest = shown[-1]
    tiles = [
        Tile(
            f"pulse-{key.removesuffix('_avg')}",
            f"{label} ({latest['survey_period']})",
            fmt(latest[key], 2),
            _trend(latest[key.replace("_avg", "_trend")]),
        )
        for key, label in charts.PULSE_DIMENSIONS.items()
    ]
    tiles.append(
        Tile(
            "pulse-response",
            "Response rate",
            f"{fmt(latest['response_rate_pct'], 0)}%",
            f"{latest['response_count']} of {latest['team_size']} people",
            warnings=warnings,
        )
    )
    return chart + row(tile(t) for t in tiles)


def _trend(value: float | None) -> str:
    if value is None:
        return "no previous period to compare"
    return f"{value:+.2f} on the previous period"
