"""The plain-language notes, from fixed metric results."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from dpp_lib.metrics.common import Window
from dpp_lib.metrics.dora import (
    ChangeFailureRate,
    DeploymentFrequency,
    LeadTimeForChanges,
    TimeToRestore,
)
from dpp_lib.metrics.flow import CycleTime, FlowEfficiency, QueueWait
from dpp_lib.metrics.forecast import SprintConfidence
from dpp_lib.metrics.pulse import PulseAggregate
from dpp_lib.metrics.quality import DefectEscape
from dpp_lib.metrics.review import ReviewTurnaround
from dpp_lib.reports import notes
from dpp_lib.reports.retro import ConfidencePoint, SprintDay, SprintInfo, SprintRetro, TechDora
from dpp_lib.views.common import Stream

START = datetime(2026, 10, 19, tzinfo=UTC)
END = datetime(2026, 10, 31, tzinfo=UTC)
WINDOW = Window(START, END)
PAYMENTS = Stream(uuid.uuid4(), "payments", "Payments", team_size=8)


def confidence(day: int, pct: float | None, days_left: int = 5) -> ConfidencePoint:
    result = SprintConfidence("s", pct, 10, days_left, 6, 2.0, 1000, 60)
    return ConfidencePoint(date(2026, 10, day), result)


def flow_efficiency(pct: float | None = 38.0, **overrides: Any) -> FlowEfficiency:
    queues = (QueueWait("qa_queue", 4.0, 9), QueueWait("dev_queue", 2.0, 7))
    fe = FlowEfficiency(WINDOW, pct, 3.7, 6.0, queues, "qa_queue", 12)
    return replace(fe, **overrides)


def review(**overrides: Any) -> ReviewTurnaround:
    rt = ReviewTurnaround(5.5, 20.25, 14, 30, 0.2, False, False, 9)
    return replace(rt, **overrides)


def dora(name: str, cfr_level: str | None = "high", deploys: int = 6) -> TechDora:
    tech = Stream(uuid.uuid4(), name, name.title())
    return TechDora(
        tech,
        DeploymentFrequency(3.5 if deploys else None, deploys, {}, "high", WINDOW, deploys),
        ChangeFailureRate(20.0, deploys, 1, 1, 0, cfr_level, WINDOW, deploys),  # type: ignore[arg-type]
        TimeToRestore(30.0, 30.0, 1, "elite", WINDOW, 1),
        LeadTimeForChanges(20.0, 40.0, 3, 5, "elite", WINDOW, 5),
    )


def pulse(period: str = "2026-10", count: int = 6, **overrides: Any) -> PulseAggregate:
    agg = PulseAggregate(
        PAYMENTS.stream_id, period, count, 8, count / 8 * 100, False,
        4.33, 0.83, 3.67, -0.17, 2.33, 0.0, 3.44,
    )  # fmt: skip
    return replace(agg, **overrides)


def make_retro(**overrides: Any) -> SprintRetro:
    info = SprintInfo(
        "s", "PAY Sprint 104", "closed", date(2026, 10, 19), date(2026, 10, 30), PAYMENTS,
        START, END,
    )  # fmt: skip
    day = SprintDay(date(2026, 10, 30), 10, 9, 3, 3, 1, {"ba": 0, "dev": 1, "qa": 1, "uat": 1})
    retro = SprintRetro(
        sprint=info,
        as_of=END,
        window=WINDOW,
        days=(day,),
        confidence=(confidence(19, 80.0), confidence(29, 35.5), confidence(30, 0.0, 0)),
        cycle_time=CycleTime(WINDOW, 4.25, 9.5, 12.0, (), ("PAY-9", "PAY-3", "PAY-7", "PAY-1"), 12),
        flow_efficiency=flow_efficiency(),
        queue_names={"qa_queue": "Ready for QA", "dev_queue": "Ready for Dev"},
        defects=DefectEscape(WINDOW, None, 0, 0, 12, {}, {}, None, 0),
        review=review(),
        min_contributors=6,
        dora=(dora("core-api"),),
        pulse_periods=("2026-10",),
        pulse=(pulse(),),
    )
    return replace(retro, **overrides)


def test_flow_says_how_much_time_was_waiting_and_where() -> None:
    assert notes.flow_notes(make_retro()) == [
        "Items spent 62 % of their time waiting (flow efficiency 38 %), most of it in "
        "Ready for QA (4.0 of 6.0 waiting days per item)."
    ]


@pytest.mark.parametrize(
    ("fe", "names", "expected"),
    [
        (  # the slowest queue holds half the wait or less: "the largest part"
            flow_efficiency(queues=(QueueWait("dev_queue", 3.0, 9), QueueWait("blocked", 3.0, 2))),
            {},
            "the largest part in waiting for development (3.0 of 6.0",
        ),
        (
            flow_efficiency(queues=(QueueWait("blocked", 5.0, 3),)),
            {"qa_queue": "Ready for QA"},
            "most of it in blocked (5.0 of 6.0",
        ),
    ],
)
def test_flow_names_the_queue_in_the_boards_words_or_by_stage(
    fe: FlowEfficiency, names: dict[str, str], expected: str
) -> None:
    (note,) = notes.flow_notes(make_retro(flow_efficiency=fe, queue_names=names))
    assert expected in note


def test_no_flow_efficiency_no_note() -> None:
    assert notes.flow_notes(make_retro(flow_efficiency=flow_efficiency(None))) == []


def test_outcome_counts_done_unfinished_added_and_removed() -> None:
    assert notes.outcome_notes(make_retro()) == [
        "By its end, 9 of the sprint's 12 items were done (75 %); 3 items were not finished.",
        "It started with 10 committed; 3 items added after the start and 1 removed.",
    ]
    busy = SprintDay(date(2026, 10, 22), 2, 1, 9, 8, 0, {})
    open_notes = notes.outcome_notes(make_retro(days=(busy,), as_of=END - timedelta(days=8)))
    assert (
        open_notes[0]
        == "So far, 1 of the sprint's 10 items are done (10 %); 9 items are not finished."
    )
    assert open_notes[1].startswith("More work was added during the sprint than was committed")
    assert notes.outcome_notes(make_retro(days=())) == []


@pytest.mark.parametrize(
    ("points", "expected"),
    [
        ((confidence(19, 80.0), confidence(29, 35.5), confidence(30, 0.0, 0)),
         "Confidence of finishing the sprint fell from 80 % on 19 Oct to 36 % on 29 Oct."),
        ((confidence(19, 30.0), confidence(20, 90.0)),
         "Confidence of finishing the sprint rose from 30 % on 19 Oct to 90 % on 20 Oct."),
        ((confidence(19, 10.0), confidence(20, 42.0), confidence(21, 5.0)),
         "Confidence of finishing the sprint's items stayed below 50 % on every day "
         "(highest 42 %, on 20 Oct)."),
        ((confidence(19, 0.0), confidence(20, 0.0)),
         "Confidence of finishing the sprint's items was 0 % on every day."),
    ],
)  # fmt: skip
def test_confidence_describes_the_sprint_until_its_last_day(
    points: tuple[ConfidencePoint, ...], expected: str
) -> None:
    assert notes.confidence_notes(make_retro(confidence=points)) == [expected]


def test_confidence_without_a_value_has_no_note() -> None:
    assert notes.confidence_notes(make_retro(confidence=(confidence(19, None),))) == []


def test_cycle_time_names_the_slowest_three() -> None:
    assert notes.cycle_time_notes(make_retro()) == [
        "Half of the 12 items completed in the sprint took 4.2 working days or less from start "
        "to done; 85 % took 9.5 or less.",
        "Slowest, above the 85th percentile: PAY-9, PAY-3 and PAY-7 and 1 more.",
    ]


def test_defects_say_how_many_escaped_and_where_they_were_found() -> None:
    assert notes.defect_notes(make_retro()) == ["No defects were logged during the sprint."]
    found = DefectEscape(
        WINDOW, 25.0, 2, 8, 12, {"dev": {"qa": 4, "uat": 1}, "ba": {"production": 1}},
        {"qa": 5, "uat": 1, "production": 1, "unknown": 1}, 12.5, 8,
    )  # fmt: skip
    assert notes.defect_notes(make_retro(defects=found)) == [
        "8 defects were logged during the sprint; 2 escaped to UAT or production (25 %).",
        "Most were found in QA (5).",
        "Of those attributed, most were introduced in development (5).",
    ]


def test_review_turnaround_and_concentration() -> None:
    assert notes.review_notes(make_retro()) == [
        "Pull requests waited 5.5 hours (median) for a first review; 85 % within 20.2 hours.",
        "The busiest reviewer did 20 % of the 30 reviews.",
    ]
    uneven = make_retro(review=review(reviewer_concentration=0.64, uneven_review_load=True))
    assert notes.review_notes(uneven)[1] == (
        "One reviewer did 64 % of the reviews: the review load is uneven."
    )


def test_a_suppressed_concentration_is_never_shown() -> None:
    small = review(reviewer_concentration=None, is_suppressed=True, uneven_review_load=True)
    said = notes.review_notes(make_retro(review=small, min_contributors=6))
    assert said[1] == (
        "Reviewer concentration is not shown: fewer than 6 people contributed to pull requests "
        "in the sprint, too few to keep it anonymous. The review load was uneven."
    )
    assert "%" not in said[1]


def test_no_review_says_so() -> None:
    none = review(p50_hours=None, p85_hours=None, sample_size=0, review_count=0)
    assert notes.review_notes(make_retro(review=none))[0] == (
        "No pull request had its first review during the sprint."
    )


def test_dora_names_the_lowest_level_and_quiet_streams() -> None:
    retro = make_retro(
        dora=(dora("core-api", "low"), dora("auth", "medium"), dora("infra", "high", 0))
    )
    assert notes.dora_notes(retro) == [
        "The sprint's items touched 3 tech streams.",
        "At the low DORA level: change failure rate on core-api.",
        "No production deploys during the sprint on infra.",
    ]
    assert notes.dora_notes(make_retro()) == [
        "The sprint's items touched 1 tech stream. Every DORA figure measured in the sprint was "
        "high or elite."
    ]
    assert notes.dora_notes(make_retro(dora=())) == []


def test_pulse_results_withheld_or_missing() -> None:
    assert notes.pulse_notes(make_retro()) == [
        "Pulse 2026-10 (6 of 8 answered): overall 3.44 of 5, lowest on clarity (2.33); "
        "pace up 0.83 on the month before."
    ]
    few = pulse(count=2, suppressed=True, pace_avg=None, tooling_avg=None, clarity_avg=None)
    assert notes.pulse_notes(make_retro(pulse=(few,))) == [
        "Pulse 2026-10: 2 responses of 8, fewer than 3, so the averages are withheld."
    ]
    months = ("2026-09", "2026-10")
    empty = make_retro(pulse_periods=months, pulse=(pulse("2026-09", 0), pulse("2026-10", 0)))
    assert notes.pulse_notes(empty) == ["No pulse results for 2026-09 and 2026-10 yet."]


def test_the_summary_is_the_first_note_of_each_section() -> None:
    retro = make_retro()
    assert notes.summary(retro) == [
        found[0] for section in notes.SECTIONS.values() if (found := section(retro))
    ]
    assert notes.summary(retro)[0].startswith("By its end, 9 of the sprint's 12 items")
    assert len(notes.summary(retro)) == 8
