"""Charts of the sprint retro report: metric results (and the sprint's daily snapshots as a
frame) in, an Altair chart out. No maths: every value comes from the result given.

Days are shown as ordinal labels ("19 Oct"), moments on a UTC time scale, so a chart looks
the same whatever the time zone of the machine that renders it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import date
from typing import Any, cast

import altair as alt
import pandas as pd

from dpp_lib.metrics.flow import CycleTime, FlowEfficiency
from dpp_lib.metrics.pulse import PulseAggregate
from dpp_lib.metrics.quality import ESCAPED_STAGES, DefectEscape

WIDTH = 560
HEIGHT = 220
STAGE_ORDER = ("backlog", "ba", "dev", "code_review", "qa", "uat", "production", "unknown")
WIP_LABELS = {"ba": "Analysis", "dev": "Development", "qa": "QA", "uat": "UAT"}
STAGE_LABELS = {
    "backlog": "Backlog",
    "ba": "Analysis",
    "dev": "Development",
    "code_review": "Code review",
    "qa": "QA",
    "uat": "UAT",
    "production": "Production",
    "unknown": "Not recorded",
}


def day_label(day: date) -> str:
    return f"{day:%a} {day.day} {day:%b}"


def _days(days: Iterable[Any]) -> list[str]:
    return [day_label(d) for d in days]


def burnup(days: pd.DataFrame) -> alt.LayerChart:
    """Items done and items in the sprint (done + remaining), per day. ``days``: columns
    day (date), completed, scope."""
    frame = pd.DataFrame(
        {
            "day": _days(days["day"]) * 2,
            "series": ["In the sprint"] * len(days) + ["Done"] * len(days),
            "items": list(days["scope"]) + list(days["completed"]),
        }
    )
    order = _days(days["day"])
    base = alt.Chart(frame).encode(
        x=alt.X("day:O", sort=order, title=None, axis=alt.Axis(labelAngle=-45)),
        y=alt.Y("items:Q", title="Items"),
        color=alt.Color("series:N", title=None, sort=["In the sprint", "Done"]),
    )
    chart = (base.mark_line() + base.mark_point(filled=True)).properties(
        width=WIDTH, height=HEIGHT, title="Sprint burn-up"
    )
    return cast(alt.LayerChart, chart)


def confidence_history(points: pd.DataFrame) -> alt.LayerChart:
    """Sprint confidence (%) at the close of each working day. ``points``: day, confidence."""
    frame = pd.DataFrame({"day": _days(points["day"]), "confidence": points["confidence"]})
    base = alt.Chart(frame).encode(
        x=alt.X("day:O", sort=list(frame["day"]), title=None, axis=alt.Axis(labelAngle=-45)),
        y=alt.Y("confidence:Q", title="Confidence (%)", scale=alt.Scale(domain=[0, 100])),
    )
    chart = (base.mark_line() + base.mark_point(filled=True)).properties(
        width=WIDTH, height=HEIGHT, title="Confidence of finishing the sprint"
    )
    return cast(alt.LayerChart, chart)


def cycle_time_scatter(ct: CycleTime) -> alt.LayerChart:
    """Each item completed in the window: completion moment × cycle time, with the p85
    line; items above it stand out."""
    frame = pd.DataFrame(
        {
            "ticket": [p.ticket_id for p in ct.scatter],
            "completed": [p.completed_at.isoformat() for p in ct.scatter],
            "days": [p.cycle_time_days for p in ct.scatter],
            "above p85": ["yes" if p.above_p85 else "no" for p in ct.scatter],
        }
    )
    end = ct.window.end.isoformat()
    points = (
        alt.Chart(frame)
        .mark_circle(size=60, opacity=0.8)
        .encode(
            x=alt.X(
                "completed:T",
                title="Completed",
                scale=alt.Scale(type="utc", domain=[ct.window.start.isoformat(), end]),
            ),
            y=alt.Y("days:Q", title="Cycle time (working days)"),
            color=alt.Color("above p85:N", scale=alt.Scale(domain=["no", "yes"])),
            tooltip=["ticket:N", "days:Q"],
        )
    )
    layers: list[alt.Chart] = [points]
    if ct.p85 is not None:
        line = pd.DataFrame({"p85": [ct.p85], "label": [f"p85 {ct.p85:.1f} d"]})
        rule = alt.Chart(line).encode(y="p85:Q")
        layers += [
            rule.mark_rule(strokeDash=[6, 4], color="#c0392b"),
            rule.mark_text(align="left", dx=4, dy=-6, color="#c0392b").encode(
                text="label:N", x=alt.value(0)
            ),
        ]
    chart = alt.layer(*layers).properties(
        width=WIDTH, height=HEIGHT, title="Cycle time of the items completed"
    )
    return cast(alt.LayerChart, chart)


def queue_waits(fe: FlowEfficiency, labels: Mapping[str, str]) -> alt.Chart:
    """Mean waiting days per item in each queue (and blocked), slowest first."""
    frame = pd.DataFrame(
        {
            "queue": [labels.get(q.key, q.key) for q in fe.queues],
            "days": [q.mean_days for q in fe.queues],
            "items": [q.items for q in fe.queues],
        }
    )
    chart = (
        alt.Chart(frame)
        .mark_bar()
        .encode(
            y=alt.Y("queue:N", sort=list(frame["queue"]), title=None),
            x=alt.X("days:Q", title="Mean waiting days per item"),
            tooltip=["queue:N", "days:Q", "items:Q"],
        )
        .properties(width=WIDTH, height=max(60, 28 * len(frame)), title="Where items waited")
    )
    return cast(alt.Chart, chart)


def wip(days: pd.DataFrame) -> alt.Chart:
    """Work in progress per stage at the end of each day. ``days``: day plus one column
    per stage of ``WIP_LABELS``."""
    rows = [
        {"day": day_label(r["day"]), "stage": label, "items": int(r[stage])}
        for r in days.to_dict("records")
        for stage, label in WIP_LABELS.items()
    ]
    chart = (
        alt.Chart(pd.DataFrame(rows))
        .mark_bar()
        .encode(
            x=alt.X("day:O", sort=_days(days["day"]), title=None, axis=alt.Axis(labelAngle=-45)),
            y=alt.Y("items:Q", title="Items in progress"),
            color=alt.Color("stage:N", sort=list(WIP_LABELS.values()), title="Stage"),
            order=alt.Order("stage:N"),
        )
        .properties(width=WIDTH, height=HEIGHT, title="Work in progress")
    )
    return cast(alt.Chart, chart)


def defects_found(de: DefectEscape) -> alt.Chart:
    """Defects logged in the window by the stage they were found in; escaped ones (UAT,
    production) in their own colour."""
    found = sorted(de.by_found_stage.items(), key=lambda kv: _rank(kv[0]))
    frame = pd.DataFrame(
        {
            "stage": [STAGE_LABELS.get(k, k) for k, _ in found],
            "defects": [v for _, v in found],
            "escaped": ["escaped" if k in ESCAPED_STAGES else "caught" for k, _ in found],
        }
    )
    chart = (
        alt.Chart(frame)
        .mark_bar()
        .encode(
            x=alt.X(
                "stage:N", sort=list(frame["stage"]), title="Found in", axis=alt.Axis(labelAngle=0)
            ),
            y=alt.Y("defects:Q", title="Defects", axis=alt.Axis(tickMinStep=1)),
            color=alt.Color("escaped:N", scale=alt.Scale(domain=["caught", "escaped"])),
        )
        .properties(width=min(WIDTH, 110 * len(frame)), height=HEIGHT, title="Defects found")
    )
    return cast(alt.Chart, chart)


def _rank(stage: str) -> int:
    return STAGE_ORDER.index(stage) if stage in STAGE_ORDER else len(STAGE_ORDER)


def pulse_scores(aggregates: Sequence[PulseAggregate]) -> alt.Chart:
    """Pace, tooling and clarity averages (1–5) of each unsuppressed survey period."""
    rows = [
        {"period": a.survey_period, "dimension": name, "score": value}
        for a in aggregates
        if not a.suppressed
        for name, value in (
            ("pace", a.pace_avg),
            ("tooling", a.tooling_avg),
            ("clarity", a.clarity_avg),
        )
        if value is not None
    ]
    chart = (
        alt.Chart(pd.DataFrame(rows))
        .mark_bar()
        .encode(
            x=alt.X("dimension:N", title=None, sort=["pace", "tooling", "clarity"]),
            y=alt.Y("score:Q", title="Average (1–5)", scale=alt.Scale(domain=[0, 5])),
            color=alt.Color("dimension:N", legend=None),
            column=alt.Column("period:N", title=None),
        )
        .properties(width=160, height=HEIGHT, title="Team pulse")
    )
    return cast(alt.Chart, chart)
