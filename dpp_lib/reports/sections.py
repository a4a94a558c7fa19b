"""The retro report's sections as the notebook shows them: the section's notes, then its
chart or table, or a sentence saying what is missing (never an empty chart or a traceback).

Each function displays into the running notebook (IPython) and returns nothing, so a
report cell is one call: ``sections.outcome(report)``.
"""

from __future__ import annotations

import html
from collections.abc import Iterable
from typing import Any

import pandas as pd
from IPython.display import HTML, Markdown, display

from dpp_lib.charts import retro as charts
from dpp_lib.reports import notes
from dpp_lib.reports.retro import SprintRetro

TABLE_CLASSES = "dpp-table"


def _show(thing: object) -> None:
    display(thing)  # type: ignore[no-untyped-call]


def _markdown(text: str) -> None:
    _show(Markdown(text))  # type: ignore[no-untyped-call]


def _say(lines: Iterable[str]) -> None:
    text = "\n".join(f"- {line}" for line in lines)
    if text:
        _markdown(text)


def _missing(text: str) -> None:
    _markdown(f"*{text}*")


def _table(frame: pd.DataFrame) -> None:
    page = frame.to_html(index=False, border=0, classes=TABLE_CLASSES, na_rep="–")
    _show(HTML(page))  # type: ignore[no-untyped-call]


def _when(r: SprintRetro) -> str:
    return f"{r.as_of:%d %b %Y %H:%M} UTC"


def header(r: SprintRetro) -> None:
    """Which stream and sprint, its dates, the moment the figures are from, and the first
    note of every section."""
    s = r.sprint
    span = (
        f"still open: figures as of {_when(r)}, over its first {r.window_days} days"
        if r.is_open
        else f"closed: figures as of its end, {_when(r)}, over its {r.window_days} days"
    )
    _markdown(
        f"## {html.escape(s.stream.display_name)} · {html.escape(s.name)}\n\n"
        f"{s.start_date:%a %d %b} – {s.end_date:%a %d %b %Y}; {span}."
    )
    _markdown("### What stands out")
    _say(notes.summary(r))


def outcome(r: SprintRetro) -> None:
    o = r.outcome
    if o is None:
        _missing(
            f"No sprint snapshot of {r.sprint.name} yet: the sprint-snapshots job has not "
            f"recorded this sprint, so its outcome and burn-up are unknown."
        )
        return
    _say(notes.outcome_notes(r))
    _table(
        pd.DataFrame(
            [
                {
                    "Committed at start": o.committed,
                    "Added after start": o.added,
                    "Removed after start": o.removed,
                    "Done": o.completed,
                    "Not finished": o.remaining,
                }
            ]
        )
    )
    days = pd.DataFrame(
        {
            "day": [d.day for d in r.days],
            "completed": [d.completed for d in r.days],
            "scope": [d.completed + d.remaining for d in r.days],
        }
    )
    _show(charts.burnup(days))


def confidence(r: SprintRetro) -> None:
    known = [p for p in r.confidence if p.result.confidence_pct is not None]
    if not known:
        reasons = sorted({p.result.reason for p in r.confidence if p.result.reason})
        why = "; ".join(reasons) or "no working day in the sprint so far"
        _missing(f"No sprint confidence for {r.sprint.name}: {why}.")
        return
    _say(notes.confidence_notes(r))
    points = pd.DataFrame(
        {"day": [p.day for p in known], "confidence": [p.result.confidence_pct for p in known]}
    )
    _show(charts.confidence_history(points))


def cycle_time(r: SprintRetro) -> None:
    if r.cycle_time.sample_size == 0:
        _missing(f"No item of {r.sprint.stream.name} was completed during the sprint.")
        return
    _say(notes.cycle_time_notes(r))
    _show(charts.cycle_time_scatter(r.cycle_time))


def flow(r: SprintRetro) -> None:
    fe = r.flow_efficiency
    if fe.flow_efficiency_pct is None:
        _missing("No item completed during the sprint had active time: no flow efficiency.")
        return
    _say(notes.flow_notes(r))
    if fe.queues:
        labels = {q.key: notes.queue_label(q.key, r.queue_names) for q in fe.queues}
        _show(charts.queue_waits(fe, labels))


def wip(r: SprintRetro) -> None:
    if not r.days:
        _missing(f"No sprint snapshot of {r.sprint.name} yet: work in progress is unknown.")
        return
    frame = pd.DataFrame([{"day": d.day, **d.wip} for d in r.days])
    last = r.days[-1]
    _say(
        [
            f"At the end of {notes.day_label(last.day)}, {sum(last.wip.values())} of the "
            f"sprint's items were in progress."
        ]
    )
    _show(charts.wip(frame))


def defects(r: SprintRetro) -> None:
    _say(notes.defect_notes(r))
    if r.defects.total_defects:
        _show(charts.defects_found(r.defects))


def review(r: SprintRetro) -> None:
    _say(notes.review_notes(r))
    rt = r.review
    if rt.sample_size == 0 and rt.review_count == 0:
        return
    concentration: Any = (
        "withheld (too few contributors)"
        if rt.is_suppressed
        else None
        if rt.reviewer_concentration is None
        else f"{rt.reviewer_concentration * 100:.0f} %"
    )
    _table(
        pd.DataFrame(
            [
                {
                    "PRs first reviewed": rt.sample_size,
                    "Median wait (h)": rt.p50_hours,
                    "85th percentile (h)": rt.p85_hours,
                    "Reviews": rt.review_count,
                    "Busiest reviewer's share": concentration,
                }
            ]
        )
    )


def dora(r: SprintRetro) -> None:
    if not r.dora:
        _missing(
            "None of the sprint's items is linked to a tech stream, so there are no DORA "
            "figures for it."
        )
        return
    _say(notes.dora_notes(r))

    def cell(value: float | None, unit: str, level: str | None) -> str | None:
        return None if value is None else f"{value:g} {unit}" + (f" ({level})" if level else "")

    _table(
        pd.DataFrame(
            [
                {
                    "Tech stream": t.stream.display_name,
                    "Deploys": t.deployment_frequency.deploy_count,
                    "Deployment frequency": cell(
                        t.deployment_frequency.deployment_frequency,
                        "/ week",
                        t.deployment_frequency.level,
                    ),
                    "Change failure rate": cell(
                        t.change_failure_rate.change_failure_rate,
                        "%",
                        t.change_failure_rate.level,
                    ),
                    "Time to restore (median)": cell(
                        t.time_to_restore.ttr_median, "min", t.time_to_restore.level
                    ),
                    "Lead time (median)": cell(t.lead_time.lead_time_p50, "h", t.lead_time.level),
                }
                for t in r.dora
            ]
        )
    )


def pulse(r: SprintRetro) -> None:
    _say(notes.pulse_notes(r))
    if any(not a.suppressed for a in r.pulse):
        _show(charts.pulse_scores(r.pulse))
