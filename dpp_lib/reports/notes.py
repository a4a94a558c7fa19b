"""Plain-language notes on a sprint's metric results, for the retro report.

Each function reads the results already computed (``SprintRetro``) and says what they show
in a sentence or two ("Items spent 62 % of their time waiting, most of it in Ready for QA");
it computes nothing new but shares and differences of the results' own numbers. A section
with nothing to say returns no note; the report says what is missing instead.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date

from dpp_lib.metrics.pulse import MIN_RESPONSES
from dpp_lib.reports.retro import SprintRetro

STAGE_NAMES = {
    "backlog": "backlog",
    "ba": "analysis",
    "dev": "development",
    "code_review": "code review",
    "qa": "QA",
    "uat": "UAT",
    "production": "production",
    "done": "done",
    "unknown": "an unrecorded stage",
}
LEVEL_ORDER = ("low", "medium", "high", "elite")
OUTLIERS_NAMED = 3


def pct(value: float) -> str:
    return f"{value:.0f} %"


def day_label(day: date) -> str:
    return f"{day.day} {day:%b}"


def plural(n: int, one: str, many: str | None = None) -> str:
    return f"{n} {one if n == 1 else (many or one + 's')}"


def names(items: Sequence[str]) -> str:
    """``a``, ``a and b``, ``a, b and c``."""
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def queue_label(key: str, queue_names: dict[str, str]) -> str:
    """A wait queue in the words of the board: its statuses' names, else its stage."""
    if key == "blocked":
        return "blocked"
    if key in queue_names:
        return queue_names[key]
    stage = key.removesuffix("_queue")
    return f"waiting for {STAGE_NAMES.get(stage, stage)}"


def outcome_notes(r: SprintRetro) -> list[str]:
    o = r.outcome
    if o is None:
        return []
    total = o.completed + o.remaining
    share = f" ({pct(o.completed / total * 100)})" if total else ""
    when = "So far" if r.is_open else "By its end"
    notes = [
        f"{when}, {o.completed} of the sprint's {total} items {'are' if r.is_open else 'were'} "
        f"done{share}; "
        f"{plural(o.remaining, 'item')} {'are' if r.is_open else 'were'} not finished."
    ]
    change = f"{plural(o.added, 'item')} added after the start and {o.removed} removed"
    if o.added > o.committed:
        notes.append(
            f"More work was added during the sprint than was committed at its start: "
            f"{change}, against {o.committed} committed."
        )
    else:
        notes.append(f"It started with {o.committed} committed; {change}.")
    return notes


def confidence_notes(r: SprintRetro) -> list[str]:
    # The close of the last day has no working day left: its confidence is the outcome.
    known = [
        p
        for p in r.confidence
        if p.result.confidence_pct is not None and (p.result.working_days_left or 0) > 0
    ]
    if not known:
        return []
    first, last = known[0], known[-1]
    a, b = first.result.confidence_pct or 0.0, last.result.confidence_pct or 0.0
    top = max(known, key=lambda p: p.result.confidence_pct or 0.0)
    high = top.result.confidence_pct or 0.0
    if len(known) == 1:
        return [f"Confidence of finishing the sprint was {pct(a)} on {day_label(first.day)}."]
    if high == 0:
        return ["Confidence of finishing the sprint's items was 0 % on every day."]
    if high < 50:
        return [
            f"Confidence of finishing the sprint's items stayed below 50 % on every day "
            f"(highest {pct(high)}, on {day_label(top.day)})."
        ]
    verb = "rose" if b > a else "fell" if b < a else "stayed"
    span = f"from {pct(a)} on {day_label(first.day)} to {pct(b)} on {day_label(last.day)}"
    if verb == "stayed":
        span = f"at {pct(a)} from {day_label(first.day)} to {day_label(last.day)}"
    return [f"Confidence of finishing the sprint {verb} {span}."]


def cycle_time_notes(r: SprintRetro) -> list[str]:
    ct = r.cycle_time
    if ct.sample_size == 0 or ct.p50 is None or ct.p85 is None:
        return []
    notes = [
        f"Half of the {plural(ct.sample_size, 'item')} completed in the sprint took "
        f"{ct.p50:.1f} working days or less from start to done; 85 % took {ct.p85:.1f} or less."
    ]
    if ct.outliers:
        slow = list(ct.outliers[:OUTLIERS_NAMED])
        more = len(ct.outliers) - len(slow)
        tail = f" and {more} more" if more else ""
        notes.append(f"Slowest, above the 85th percentile: {names(slow)}{tail}.")
    return notes


def flow_notes(r: SprintRetro) -> list[str]:
    fe = r.flow_efficiency
    if fe.flow_efficiency_pct is None:
        return []
    waiting = 100 - fe.flow_efficiency_pct
    note = (
        f"Items spent {pct(waiting)} of their time waiting "
        f"(flow efficiency {pct(fe.flow_efficiency_pct)})"
    )
    top = fe.queues[0] if fe.queues else None
    if top is None or not fe.wait_days or top.mean_days <= 0:
        return [note + "."]
    share = top.mean_days / fe.wait_days
    where = "most of it" if share > 0.5 else "the largest part"
    label = queue_label(top.key, r.queue_names)
    return [
        f"{note}, {where} in {label} ({top.mean_days:.1f} of {fe.wait_days:.1f} waiting days "
        f"per item)."
    ]


def defect_notes(r: SprintRetro) -> list[str]:
    de = r.defects
    if de.total_defects == 0:
        return ["No defects were logged during the sprint."]
    logged = f"{plural(de.total_defects, 'defect')} {'was' if de.total_defects == 1 else 'were'}"
    if de.defect_count == 0:
        notes = [f"{logged} logged during the sprint; none escaped to UAT or production."]
    else:
        rate = f" ({pct(de.rate)})" if de.rate is not None else ""
        notes = [
            f"{logged} logged during the sprint; {de.defect_count} escaped to UAT or "
            f"production{rate}."
        ]
    found = {k: v for k, v in de.by_found_stage.items() if k != "unknown"}
    if found and de.total_defects > 1:
        stage, n = max(found.items(), key=lambda kv: (kv[1], kv[0]))
        notes.append(f"Most were found in {STAGE_NAMES.get(stage, stage)} ({n}).")
    introduced: dict[str, int] = {}
    for intro, by_found in de.matrix.items():
        introduced[intro] = introduced.get(intro, 0) + sum(by_found.values())
    if introduced:
        stage, n = max(introduced.items(), key=lambda kv: (kv[1], kv[0]))
        notes.append(
            f"Of those attributed, most were introduced in {STAGE_NAMES.get(stage, stage)} ({n})."
        )
    return notes


def review_notes(r: SprintRetro) -> list[str]:
    rt = r.review
    notes = []
    if rt.sample_size == 0 or rt.p50_hours is None:
        notes.append("No pull request had its first review during the sprint.")
    else:
        p85 = f"; 85 % within {rt.p85_hours:.1f} hours" if rt.p85_hours is not None else ""
        notes.append(
            f"Pull requests waited {rt.p50_hours:.1f} hours (median) for a first review{p85}."
        )
    if rt.is_suppressed:
        notes.append(
            f"Reviewer concentration is not shown: fewer than {r.min_contributors} people "
            f"contributed to pull requests in the sprint, too few to keep it anonymous."
            + (" The review load was uneven." if rt.uneven_review_load else "")
        )
    elif rt.reviewer_concentration is not None:
        share = pct(rt.reviewer_concentration * 100)
        if rt.uneven_review_load:
            notes.append(f"One reviewer did {share} of the reviews: the review load is uneven.")
        else:
            notes.append(f"The busiest reviewer did {share} of the {rt.review_count} reviews.")
    return notes


def dora_notes(r: SprintRetro) -> list[str]:
    if not r.dora:
        return []
    quiet = [t.stream.name for t in r.dora if t.deployment_frequency.deploy_count == 0]
    worst: dict[str, list[str]] = {}
    for t in r.dora:
        for label, level in (
            ("deployment frequency", t.deployment_frequency.level),
            ("change failure rate", t.change_failure_rate.level),
            ("time to restore", t.time_to_restore.level),
            ("lead time for changes", t.lead_time.level),
        ):
            if level in ("low", "medium"):
                worst.setdefault(level, []).append(f"{label} on {t.stream.name}")
    notes = [f"The sprint's items touched {plural(len(r.dora), 'tech stream')}."]
    lowest = next((lv for lv in LEVEL_ORDER if lv in worst), None)
    if lowest is None:
        notes[0] += " Every DORA figure measured in the sprint was high or elite."
    else:
        notes.append(f"At the {lowest} DORA level: {names(worst[lowest])}.")
    if quiet:
        notes.append(f"No production deploys during the sprint on {names(quiet)}.")
    return notes


def pulse_notes(r: SprintRetro) -> list[str]:
    months = names(list(r.pulse_periods))
    answered = [a for a in r.pulse if a.response_count > 0]
    if not answered:
        return [f"No pulse results for {months} yet."]
    notes = []
    for a in answered:
        rate = f" of {a.team_size}" if a.team_size else ""
        if a.suppressed:
            notes.append(
                f"Pulse {a.survey_period}: {plural(a.response_count, 'response')}{rate}, fewer "
                f"than {MIN_RESPONSES}, so the averages are withheld."
            )
            continue
        scores = {"pace": a.pace_avg, "tooling": a.tooling_avg, "clarity": a.clarity_avg}
        known = [(k, v) for k, v in scores.items() if v is not None]
        low_name, low = min(known, key=lambda kv: kv[1], default=("", 0.0))
        note = (
            f"Pulse {a.survey_period} ({a.response_count}{rate} answered): overall "
            f"{a.overall_avg:.2f} of 5, lowest on {low_name} ({low:.2f})"
        )
        trends = {"pace": a.pace_trend, "tooling": a.tooling_trend, "clarity": a.clarity_trend}
        moved = [(k, v) for k, v in trends.items() if v is not None and abs(v) >= 0.5]
        if moved:
            k, v = max(moved, key=lambda kv: abs(kv[1]))
            note += f"; {k} {'up' if v > 0 else 'down'} {abs(v):.2f} on the month before"
        notes.append(note + ".")
    return notes


SECTIONS: dict[str, Callable[[SprintRetro], list[str]]] = {
    "outcome": outcome_notes,
    "confidence": confidence_notes,
    "cycle_time": cycle_time_notes,
    "flow": flow_notes,
    "defects": defect_notes,
    "review": review_notes,
    "dora": dora_notes,
    "pulse": pulse_notes,
}


def summary(r: SprintRetro) -> list[str]:
    """The first note of every section that has one: what stands out, for the top."""
    return [found[0] for notes in SECTIONS.values() if (found := notes(r))]
