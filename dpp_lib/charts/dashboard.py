"""Charts of the Overview dashboard: the ``dpp_lib.views`` answers (the API's JSON-shaped
dicts) in, an Altair chart out, and ``svg`` to draw one with no internet (vl-convert bundles
Vega). No maths: every value is a field of the answer; the builders only reshape it.

SVG rather than an interactive chart widget: it needs no extra Javascript package, keeps
each zone's output small (Voila's Output widget hangs above ~600 KB, DESIGN §10) and
redraws by replacing a string.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any, cast

import altair as alt
import pandas as pd
from altair.utils.mimebundle import spec_to_mimebundle

from dpp_lib.charts.retro import STAGE_LABELS, STAGE_ORDER

WIDTH = 420
HEIGHT = 200
AGING = ("<24h", "24-72h", "72h-7d", ">7d")
AGING_COLOURS = ("#9ecae1", "#4292c6", "#f2b134", "#c0392b")
LEVEL_COLOURS = {"elite": "#1a9850", "high": "#91cf60", "medium": "#f2b134", "low": "#d73027"}
PERCENTILES = ("p50", "p70", "p85", "p95")
PULSE_DIMENSIONS = {"pace_avg": "Pace", "tooling_avg": "Tooling", "clarity_avg": "Clarity"}
QUEUE_LABELS = {
    **{
        f"{k}_queue": f"Waiting for {v if v.isupper() else v.lower()}"
        for k, v in STAGE_LABELS.items()
    },
    "done_queue": "Done, waiting to close",
    "blocked": "Blocked",
}
LABELLED_OUTLIERS = 10  # named on the chart; the page lists them all

Chart = alt.Chart | alt.LayerChart | alt.VConcatChart | alt.HConcatChart
_ids = itertools.count(1)


def stage_label(stage: str) -> str:
    return STAGE_LABELS.get(stage, stage)


def _rank(stage: str) -> int:
    return STAGE_ORDER.index(stage) if stage in STAGE_ORDER else len(STAGE_ORDER)


def wip_by_stage(aging_by_stage: Mapping[str, Mapping[str, int]]) -> alt.Chart:
    """Items in progress per stage, stacked by how long they have been in progress."""
    stages = sorted(aging_by_stage, key=_rank)
    rows = [
        {"stage": stage_label(s), "age": bucket, "items": int(aging_by_stage[s].get(bucket, 0))}
        for s in stages
        for bucket in AGING
    ]
    chart = (
        alt.Chart(pd.DataFrame(rows))
        .mark_bar()
        .encode(
            x=alt.X(
                "stage:N",
                sort=[stage_label(s) for s in stages],
                title=None,
                axis=alt.Axis(labelAngle=0),
            ),
            y=alt.Y("sum(items):Q", title="Items in progress", axis=alt.Axis(tickMinStep=1)),
            color=alt.Color(
                "age:N",
                title="In progress for",
                scale=alt.Scale(domain=list(AGING), range=list(AGING_COLOURS)),
            ),
            order=alt.Order("age_rank:Q"),
        )
        .transform_calculate(age_rank=f"indexof({list(AGING)!r}, datum.age)")
        .properties(width=WIDTH - 120, height=HEIGHT, title="Work in progress by stage")
    )
    return cast(alt.Chart, chart)


def confidence_gauge(pct: float, *, title: str = "Sprint confidence") -> alt.LayerChart:
    """A ring filled to ``pct`` (0–100) with the figure in the middle."""
    frame = pd.DataFrame(
        {"part": ["confidence", "rest"], "value": [pct, max(0.0, 100.0 - pct)], "order": [0, 1]}
    )
    colour = "#1a9850" if pct >= 70 else "#f2b134" if pct >= 40 else "#d73027"
    ring = (
        alt.Chart(frame)
        .mark_arc(innerRadius=55, outerRadius=80)
        .encode(
            theta=alt.Theta("value:Q", stack=True),
            order=alt.Order("order:Q"),
            color=alt.Color(
                "part:N",
                scale=alt.Scale(domain=["confidence", "rest"], range=[colour, "#e6e6e6"]),
                legend=None,
            ),
        )
    )
    label = (
        alt.Chart(pd.DataFrame({"text": [f"{pct:g}%"]}))
        .mark_text(fontSize=24, fontWeight="bold")
        .encode(text="text:N")
    )
    chart = alt.layer(ring, label).properties(width=180, height=180, title=title)
    return cast(alt.LayerChart, chart)


def confidence_by_stream(rows: Sequence[Mapping[str, Any]]) -> alt.Chart:
    """Each delivery stream's sprint confidence (%) ("all streams")."""
    frame = pd.DataFrame(
        {
            "stream": [r["stream"] for r in rows],
            "confidence": [r["confidence_pct"] for r in rows],
        }
    )
    chart = (
        alt.Chart(frame)
        .mark_bar()
        .encode(
            x=alt.X("confidence:Q", title="Confidence (%)", scale=alt.Scale(domain=[0, 100])),
            y=alt.Y("stream:N", title=None),
        )
        .properties(width=WIDTH - 160, height=26 * max(2, len(frame)), title="Sprint confidence")
    )
    return cast(alt.Chart, chart)


def cycle_scatter(
    points: Sequence[Mapping[str, Any]], *, p85: float | None, outliers: Sequence[str]
) -> alt.LayerChart:
    """Completion moment × cycle time of each item of the window, the p85 line, and the
    first ``LABELLED_OUTLIERS`` outliers (above p85, the view's order) named."""
    named = set(outliers)
    labelled = set(outliers[:LABELLED_OUTLIERS])
    frame = pd.DataFrame(
        {
            "ticket": [p["ticket_id"] for p in points],
            "completed": [p["completed_at"] for p in points],
            "days": [p["cycle_time_days"] for p in points],
            "outlier": ["above p85" if p["ticket_id"] in named else "p85 or less" for p in points],
            "label": [p["ticket_id"] if p["ticket_id"] in labelled else "" for p in points],
        }
    )
    base = alt.Chart(frame).encode(
        x=alt.X("completed:T", title="Completed", scale=alt.Scale(type="utc")),
        y=alt.Y("days:Q", title="Cycle time (working days)"),
    )
    layers: list[Any] = [
        base.mark_circle(size=45, opacity=0.8).encode(
            color=alt.Color(
                "outlier:N",
                title=None,
                scale=alt.Scale(domain=["p85 or less", "above p85"], range=["#4292c6", "#c0392b"]),
            )
        ),
        base.mark_text(align="left", dx=5, fontSize=9, color="#7f1d1d").encode(text="label:N"),
    ]
    if p85 is not None:
        rule = alt.Chart(pd.DataFrame({"p85": [p85], "label": [f"p85 {p85:.1f} d"]})).encode(
            y="p85:Q"
        )
        layers += [
            rule.mark_rule(strokeDash=[6, 4], color="#c0392b"),
            rule.mark_text(align="left", dx=4, dy=-6, color="#c0392b").encode(
                text="label:N", x=alt.value(0)
            ),
        ]
    chart = alt.layer(*layers).properties(
        width=WIDTH + 80, height=HEIGHT + 40, title="Cycle time of the items completed"
    )
    return cast(alt.LayerChart, chart)


def queue_waits(queues: Sequence[Mapping[str, Any]]) -> alt.Chart:
    """Mean waiting days per item in each queue (and blocked), slowest first."""
    frame = pd.DataFrame(
        {
            "queue": [QUEUE_LABELS.get(q["queue"], q["queue"]) for q in queues],
            "days": [q["mean_days"] for q in queues],
            "items": [q["items"] for q in queues],
        }
    )
    chart = (
        alt.Chart(frame)
        .mark_bar(color="#f2b134")
        .encode(
            y=alt.Y("queue:N", sort=list(frame["queue"]), title=None),
            x=alt.X("days:Q", title="Mean waiting days per item"),
        )
        .properties(width=WIDTH - 140, height=26 * max(2, len(frame)), title="Where items waited")
    )
    return cast(alt.Chart, chart)


def defect_matrix(matrix: Mapping[str, Mapping[str, int]]) -> alt.LayerChart:
    """Defects by the stage they were introduced in (rows) × found in (columns)."""
    rows = [
        {"introduced": stage_label(i), "found": stage_label(f), "defects": int(n)}
        for i, found in matrix.items()
        for f, n in found.items()
    ]
    introduced = sorted(matrix, key=_rank)
    found_in = sorted({f for v in matrix.values() for f in v}, key=_rank)
    base = alt.Chart(pd.DataFrame(rows)).encode(
        x=alt.X("found:N", sort=[stage_label(s) for s in found_in], title="Found in"),
        y=alt.Y("introduced:N", sort=[stage_label(s) for s in introduced], title="Introduced in"),
    )
    chart = alt.layer(
        base.mark_rect().encode(
            color=alt.Color("defects:Q", title="Defects", scale=alt.Scale(scheme="oranges"))
        ),
        base.mark_text(fontSize=12).encode(text="defects:Q"),
    ).properties(
        width=70 * max(2, len(found_in)),
        height=32 * max(2, len(introduced)),
        title="Where defects were introduced and found",
    )
    return cast(alt.LayerChart, chart)


def dora_trends(series: Sequence[Mapping[str, Any]]) -> alt.VConcatChart:
    """Weekly deploys, change failure rate (%), median time to restore (minutes) and lead
    time p50/p85 (hours); a week without a value is a gap. Partial weeks are marked."""
    frame = pd.DataFrame(
        {
            "week": [_week_label(w["weekStart"]) for w in series],
            "deploys": [w["deploymentFrequency"] for w in series],
            "cfr": [w["changeFailureRate"] for w in series],
            "ttr": [w["ttrMedian"] for w in series],
            "lead p50": [w["leadTimeP50"] for w in series],
            "lead p85": [w["leadTimeP85"] for w in series],
            "week kind": ["partial week" if w["partial"] else "full week" for w in series],
        }
    )
    angle = 0 if len(frame) <= 6 else -45
    x = alt.X("week:O", title="Week of", sort=list(frame["week"]), axis=alt.Axis(labelAngle=angle))
    base = alt.Chart(frame).properties(width=WIDTH - 170, height=120)
    deploys = base.mark_bar().encode(
        x=x,
        y=alt.Y("deploys:Q", title="Deploys"),
        opacity=alt.Opacity(
            "week kind:N",
            scale=alt.Scale(domain=["full week", "partial week"], range=[1.0, 0.4]),
            title=None,
        ),
    )
    cfr = base.mark_line(point=True, color="#c0392b").encode(
        x=x, y=alt.Y("cfr:Q", title="Change failure rate (%)")
    )
    ttr = base.mark_line(point=True, color="#8e44ad").encode(
        x=x, y=alt.Y("ttr:Q", title="Time to restore (min, median)")
    )
    lead = (
        base.transform_fold(["lead p50", "lead p85"], as_=["percentile", "hours"])
        .mark_line(point=True)
        .encode(
            x=x,
            y=alt.Y("hours:Q", title="Lead time (hours)"),
            color=alt.Color("percentile:N", title=None),
        )
    )
    chart = alt.vconcat(
        alt.hconcat(
            deploys.properties(title="Deployment frequency"),
            cfr.properties(title="Change failure rate"),
        ),
        alt.hconcat(
            ttr.properties(title="Time to restore"),
            lead.properties(title="Lead time for changes"),
        ),
    ).resolve_scale(color="independent", opacity="independent")
    return cast(alt.VConcatChart, chart)


def _week_label(monday: str) -> str:
    day = date.fromisoformat(monday)
    return f"{day.day} {day:%b}"


def forecast_when(when: Mapping[str, Any]) -> alt.LayerChart:
    """Share of simulation runs finishing the remaining scope in each week, with the
    p50/p70/p85/p95 dates as rules."""
    frame = pd.DataFrame(
        {
            "date": [b["completion_date"] for b in when["histogram"]],
            "runs": [b["pct"] for b in when["histogram"]],
        }
    )
    marks = pd.DataFrame(
        {
            "date": [when[p] for p in PERCENTILES if when.get(p)],
            "label": [f"{p} {when[p]}" for p in PERCENTILES if when.get(p)],
        }
    )
    x = alt.X("date:T", title="Done by", scale=alt.Scale(type="utc"))
    bars = (
        alt.Chart(frame)
        .mark_bar(color="#4292c6", size=14)
        .encode(x=x, y=alt.Y("runs:Q", title="Simulation runs (%)"))
    )
    rules = alt.Chart(marks).encode(x=x)
    chart = alt.layer(
        bars,
        rules.mark_rule(color="#c0392b", strokeDash=[4, 3]),
        rules.mark_text(angle=270, align="left", dx=-2, dy=-5, fontSize=10, color="#7f1d1d").encode(
            text="label:N", y=alt.value(4)
        ),
    ).properties(width=WIDTH + 80, height=HEIGHT, title="When the remaining scope is done")
    return cast(alt.LayerChart, chart)


def pulse_trend(aggregates: Sequence[Mapping[str, Any]]) -> alt.HConcatChart:
    """Pace, tooling and clarity averages (1–5) of each survey period, and the response
    rate (%); suppressed periods have no averages (gaps)."""
    rates = pd.DataFrame(
        {
            "period": [a["survey_period"] for a in aggregates],
            "stream": [a["delivery_stream"] for a in aggregates],
            "rate": [a["response_rate_pct"] for a in aggregates],
        }
    )
    several = len(set(rates["stream"])) > 1
    # One stream: each dimension; several: each stream's overall average.
    series = {"overall_avg": "Overall"} if several else PULSE_DIMENSIONS
    rows = [
        {
            "period": a["survey_period"],
            "line": a["delivery_stream"] if several else label,
            "score": a[key],
        }
        for a in aggregates
        for key, label in series.items()
        if a[key] is not None
    ]
    scores = (
        alt.Chart(pd.DataFrame(rows, columns=["period", "line", "score"]))
        .mark_line(point=True)
        .encode(
            x=alt.X("period:O", title=None, axis=alt.Axis(labelAngle=0)),
            y=alt.Y("score:Q", title="Average (1–5)", scale=alt.Scale(domain=[1, 5])),
            color=alt.Color("line:N", title=None),
        )
        .properties(
            width=WIDTH - 120,
            height=HEIGHT,
            title="Overall pulse by stream" if several else "Pulse by dimension",
        )
    )
    response = (
        alt.Chart(rates)
        .mark_bar()
        .encode(
            x=alt.X("period:O", title=None, axis=alt.Axis(labelAngle=-45)),
            y=alt.Y("rate:Q", title="Response rate (%)", scale=alt.Scale(domain=[0, 100])),
            xOffset=alt.XOffset("stream:N") if several else alt.Undefined,
            color=alt.Color("stream:N", title=None) if several else alt.Undefined,
        )
        .properties(
            width=max(WIDTH - 200, 55 * rates["period"].nunique()),
            height=HEIGHT,
            title="Response rate",
        )
    )
    chart = alt.hconcat(scores, response).resolve_scale(color="independent")
    return cast(alt.HConcatChart, chart)


_ID = re.compile(r'\bid="([^"]+)"')


def svg(chart: Chart) -> str:
    """The chart as an SVG string (vl-convert, offline). Element ids (clip paths,
    gradients) get a prefix of their own, so several charts can share one page."""
    bundle = spec_to_mimebundle(chart.to_dict(), format="svg", mode="vega-lite")
    text = str(bundle["image/svg+xml"] if isinstance(bundle, dict) else bundle[0]["image/svg+xml"])
    prefix = f"dpp{next(_ids)}-"
    for ident in set(_ID.findall(text)):
        text = (
            text.replace(f'id="{ident}"', f'id="{prefix}{ident}"')
            .replace(f"url(#{ident})", f"url(#{prefix}{ident})")
            .replace(f'href="#{ident}"', f'href="#{prefix}{ident}"')
        )
    return text
