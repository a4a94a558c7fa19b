"""Team pulse (spec §6.6.1, §4.4.7; DESIGN §5): hand-computed cases and properties."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dpp_lib.metrics.common import MetricInputError
from dpp_lib.metrics.frames import make_frame
from dpp_lib.metrics.pulse import PulseAggregate, pulse_aggregate_rows, team_pulse
from dpp_lib.metrics.registry import load_all

AS_OF = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)
FEB = datetime(2026, 2, 3, 10, 0, tzinfo=UTC)  # when February's survey was answered
JAN = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)
PAY, CORE = "payments", "core"

AGGREGATE_COLUMNS = {  # spec §4.4.7 without aggregate_id and computed_at
    "delivery_stream_id",
    "survey_period",
    "response_count",
    "team_size",
    "response_rate_pct",
    "pace_avg",
    "pace_trend",
    "tooling_avg",
    "tooling_trend",
    "clarity_avg",
    "clarity_trend",
    "overall_avg",
}


def make_response(
    respondent: str = "r1",
    scores: tuple[int, int, int] = (3, 3, 3),
    *,
    stream: object = PAY,
    period: str = "2026-02",
    at: datetime | None = FEB,
    **overrides: Any,
) -> dict[str, Any]:
    pace, tooling, clarity = scores
    return {
        "delivery_stream_id": stream,
        "survey_period": period,
        "respondent_hash": respondent,
        "pace_score": pace,
        "tooling_score": tooling,
        "clarity_score": clarity,
        "event_timestamp": at,
        **overrides,
    }


def survey(
    *scores: tuple[int, int, int], period: str = "2026-02", at: datetime = FEB, **kw: Any
) -> list[dict[str, Any]]:
    """One response per score triple, by distinct people, a minute apart."""
    return [
        make_response(f"{period}-r{i}", s, period=period, at=at + timedelta(minutes=i), **kw)
        for i, s in enumerate(scores)
    ]


def pulse(rows: list[dict[str, Any]], **kw: Any) -> dict[str, PulseAggregate]:
    """The aggregates of ``team_pulse`` keyed by period, for the one stream PAY."""
    kw.setdefault("team_sizes", {PAY: 8})
    kw.setdefault("as_of", AS_OF)
    result = team_pulse(make_frame("pulse", rows), **kw)
    return {a.survey_period: a for a in result.for_stream(PAY)}


# --- suppression and averages ------------------------------------------------------------


@pytest.mark.parametrize(
    ("scores", "suppressed", "pace", "tooling", "clarity", "overall"),
    [
        pytest.param([(5, 5, 5)], True, None, None, None, None, id="one response"),
        pytest.param([(5, 1, 2), (3, 3, 3)], True, None, None, None, None, id="two responses"),
        # (3+4+5)/3 = 4, (2+2+5)/3 = 3, (1+3+4)/3 = 2.667, overall (4+3+2.667)/3 = 3.222
        pytest.param([(3, 2, 1), (4, 2, 3), (5, 5, 4)], False, 4.0, 3.0, 2.67, 3.22, id="three"),
        # pace 14/4 = 3.5, tooling 10/4 = 2.5, clarity 7/4 = 1.75; overall 7.75/3 = 2.583
        pytest.param(
            [(2, 1, 1), (4, 3, 2), (3, 4, 1), (5, 2, 3)], False, 3.5, 2.5, 1.75, 2.58, id="four"
        ),
    ],
)
def test_averages_need_three_responses(
    scores: list[tuple[int, int, int]],
    suppressed: bool,
    pace: float | None,
    tooling: float | None,
    clarity: float | None,
    overall: float | None,
) -> None:
    feb = pulse(survey(*scores))["2026-02"]
    assert feb.response_count == len(scores)  # the count is shown even when suppressed
    assert feb.suppressed is suppressed
    assert (feb.pace_avg, feb.tooling_avg, feb.clarity_avg) == (pace, tooling, clarity)
    assert feb.overall_avg == overall


@pytest.mark.parametrize(
    ("team_size", "responses", "rate"),
    [(8, 2, 25.0), (4, 3, 75.0), (8, 5, 62.5), (3, 3, 100.0), (6, 4, 66.67), (2, 3, 150.0)],
)
def test_response_rate_is_responses_over_team_size(
    team_size: int, responses: int, rate: float
) -> None:
    feb = pulse(survey(*[(3, 3, 3)] * responses), team_sizes={PAY: team_size})["2026-02"]
    assert feb.team_size == team_size
    assert feb.response_rate_pct == rate


def test_response_rate_without_a_team_size_is_none() -> None:
    feb = pulse(survey((3, 3, 3)), team_sizes={})["2026-02"]
    assert (feb.team_size, feb.response_rate_pct, feb.response_count) == (None, None, 1)


def test_a_team_size_below_one_is_refused() -> None:
    with pytest.raises(MetricInputError, match="team size"):
        pulse(survey((3, 3, 3)), team_sizes={PAY: 0})


# --- trends ------------------------------------------------------------------------------


def test_trend_is_current_minus_previous_month() -> None:
    # January: pace 3, tooling 4, clarity 2; February: pace 4, tooling 3, clarity 3.667
    jan = survey((2, 4, 2), (3, 4, 2), (4, 4, 2), period="2026-01", at=JAN)
    feb = survey((3, 3, 3), (4, 3, 4), (5, 3, 4))
    got = pulse(jan + feb)
    assert (got["2026-02"].pace_trend, got["2026-02"].tooling_trend) == (1.0, -1.0)
    assert got["2026-02"].clarity_trend == 1.67  # 11/3 − 2, rounded once
    assert got["2026-01"].pace_trend is None  # no December


def test_no_trend_when_the_previous_period_is_suppressed() -> None:
    jan = survey((1, 1, 1), (2, 2, 2), period="2026-01", at=JAN)  # 2 responses
    feb = pulse(jan + survey((3, 3, 3), (4, 4, 4), (5, 5, 5)))["2026-02"]
    assert feb.suppressed is False
    assert feb.pace_avg == 4.0
    assert (feb.pace_trend, feb.tooling_trend, feb.clarity_trend) == (None, None, None)


def test_no_trend_when_the_current_period_is_suppressed() -> None:
    jan = survey((1, 1, 1), (2, 2, 2), (3, 3, 3), period="2026-01", at=JAN)
    feb = pulse(jan + survey((5, 5, 5), (5, 5, 5)))["2026-02"]
    assert feb.suppressed is True
    assert (feb.pace_avg, feb.pace_trend) == (None, None)


def test_previous_period_is_the_previous_calendar_month_across_a_year() -> None:
    dec = survey((2, 2, 2), (2, 2, 2), (2, 2, 2), period="2025-12", at=JAN - timedelta(days=30))
    jan = survey((3, 3, 3), (3, 3, 3), (3, 3, 3), period="2026-01", at=JAN)
    mar = survey((4, 4, 4), (4, 4, 4), (4, 4, 4), period="2026-03", at=AS_OF - timedelta(days=1))
    got = pulse(dec + jan + mar)
    assert got["2026-01"].pace_trend == 1.0  # against December 2025
    assert got["2026-02"].response_count == 0 and got["2026-02"].suppressed
    assert got["2026-03"].pace_trend is None  # February had no responses: no trend over a gap


# --- periods, as_of, one response per person -----------------------------------------------


def test_reports_the_requested_number_of_months_ending_at_the_latest_period() -> None:
    result = team_pulse(
        make_frame("pulse", survey((3, 3, 3))), as_of=AS_OF, team_sizes={PAY: 8}, periods=3
    )
    assert result.period == "2026-02"
    assert result.periods == ("2025-12", "2026-01", "2026-02")
    assert [a.response_count for a in result.aggregates] == [0, 0, 1]
    assert result.sample_size == 1


def test_an_explicit_period_and_streams_without_responses() -> None:
    result = team_pulse(
        make_frame("pulse", survey((3, 3, 3))),
        as_of=AS_OF,
        team_sizes={PAY: 8, CORE: 5},
        period="2026-03",
        periods=1,
    )
    assert [
        (a.delivery_stream_id, a.survey_period, a.response_count) for a in result.aggregates
    ] == [
        (CORE, "2026-03", 0),
        (PAY, "2026-03", 0),
    ]
    assert result.aggregates[0].response_rate_pct == 0.0
    assert result.sample_size == 0


def test_responses_at_or_after_as_of_are_ignored() -> None:
    rows = [
        *survey((3, 3, 3), (4, 4, 4)),
        make_response("late", (5, 5, 5), at=AS_OF),  # exactly as_of: not yet known
        make_response("later", (1, 1, 1), at=AS_OF + timedelta(days=1)),
    ]
    feb = pulse(rows)["2026-02"]
    assert (feb.response_count, feb.suppressed) == (2, True)
    assert pulse(rows, as_of=AS_OF + timedelta(days=2))["2026-02"].response_count == 4


def test_the_latest_resubmission_wins() -> None:
    rows = [
        *survey((3, 3, 3), (3, 3, 3)),
        make_response("r9", (1, 1, 1), at=FEB),
        make_response("r9", (5, 5, 5), at=FEB + timedelta(hours=2)),  # resubmitted
        make_response("r9", (2, 2, 2), at=FEB + timedelta(hours=1)),
    ]
    feb = pulse(rows)["2026-02"]
    assert feb.response_count == 3  # one response per person
    assert feb.pace_avg == round(11 / 3, 2)  # 3, 3 and the resubmitted 5


def test_a_resubmission_after_as_of_is_not_yet_known() -> None:
    rows = [
        *survey((3, 3, 3), (3, 3, 3)),
        make_response("r9", (3, 3, 3), at=FEB),
        make_response("r9", (5, 5, 5), at=AS_OF + timedelta(hours=1)),
    ]
    assert pulse(rows)["2026-02"].pace_avg == 3.0


def test_the_same_respondent_in_two_streams_counts_in_each() -> None:
    rows = [make_response("r1", stream=PAY), make_response("r1", stream=CORE)]
    result = team_pulse(make_frame("pulse", rows), as_of=AS_OF, team_sizes={PAY: 4, CORE: 4})
    assert [a.response_count for a in result.aggregates if a.survey_period == "2026-02"] == [1, 1]


def test_rows_without_a_delivery_stream_or_time_are_ignored() -> None:
    rows = [*survey((3, 3, 3)), make_response("x", stream=None), make_response("y", at=None)]
    assert pulse(rows)["2026-02"].response_count == 1


def test_uuid_stream_ids() -> None:
    stream = uuid.UUID(int=7)
    rows = survey((1, 2, 3), (2, 3, 4), (3, 4, 5), stream=stream)
    result = team_pulse(make_frame("pulse", rows), as_of=AS_OF, team_sizes={stream: 3})
    (feb,) = (a for a in result.for_stream(stream) if a.survey_period == "2026-02")
    assert (feb.pace_avg, feb.tooling_avg, feb.clarity_avg, feb.overall_avg) == (2, 3, 4, 3)
    assert feb.response_rate_pct == 100.0


def test_empty_frame() -> None:
    result = team_pulse(make_frame("pulse"), as_of=AS_OF, team_sizes={PAY: 8})
    assert (result.period, result.periods, result.aggregates, result.sample_size) == (
        None,
        (),
        (),
        0,
    )
    assert pulse_aggregate_rows(make_frame("pulse"), as_of=AS_OF, team_sizes={PAY: 8}) == []


# --- free text, validation ---------------------------------------------------------------


def test_free_text_is_never_part_of_a_result() -> None:
    frame = make_frame("pulse", survey((1, 1, 1), (2, 2, 2), (3, 3, 3)))
    frame["free_text"] = "the standups with Alice are too long"
    result = team_pulse(frame, as_of=AS_OF, team_sizes={PAY: 8})
    rows = pulse_aggregate_rows(frame, as_of=AS_OF, team_sizes={PAY: 8})
    assert result.sample_size == 3
    assert "Alice" not in repr(result) and "Alice" not in repr(rows)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"pace_score": 6}, "pace_score"),
        ({"tooling_score": 0}, "tooling_score"),
        ({"clarity_score": None}, "clarity_score"),
        ({"survey_period": "2026-13"}, "YYYY-MM"),
        ({"survey_period": "Feb 2026"}, "YYYY-MM"),
    ],
)
def test_invalid_responses_are_refused_with_context(
    overrides: dict[str, Any], message: str
) -> None:
    with pytest.raises(MetricInputError, match=message):
        pulse([make_response(**overrides)])


def test_invalid_parameters_are_refused() -> None:
    frame = make_frame("pulse", survey((3, 3, 3)))
    with pytest.raises(MetricInputError, match="timezone-aware"):
        team_pulse(frame, as_of=AS_OF.replace(tzinfo=None), team_sizes={})
    with pytest.raises(MetricInputError, match="YYYY-MM"):
        team_pulse(frame, as_of=AS_OF, team_sizes={}, period="2026-2")
    with pytest.raises(MetricInputError, match="periods"):
        team_pulse(frame, as_of=AS_OF, team_sizes={}, periods=0)
    with pytest.raises(MetricInputError, match="lacks"):
        team_pulse(frame.drop(columns=["respondent_hash"]), as_of=AS_OF, team_sizes={})


# --- pulse_aggregates rows ---------------------------------------------------------------


def test_aggregate_rows_cover_every_stream_and_period_up_to_as_of() -> None:
    rows = [
        *survey((2, 4, 2), (3, 4, 2), (4, 4, 2), period="2026-01", at=JAN),
        *survey((3, 3, 3), (4, 3, 4), (5, 3, 4)),
        make_response("c1", (4, 4, 4), stream=CORE, period="2026-02"),
        make_response("m1", (4, 4, 4), period="2026-03", at=AS_OF + timedelta(hours=1)),
    ]
    got = pulse_aggregate_rows(make_frame("pulse", rows), as_of=AS_OF, team_sizes={PAY: 8, CORE: 5})
    assert all(set(r) == AGGREGATE_COLUMNS for r in got)
    assert [(r["delivery_stream_id"], r["survey_period"]) for r in got] == [
        (CORE, "2026-02"),
        (PAY, "2026-01"),
        (PAY, "2026-02"),
    ]
    core, jan, feb = got
    assert (core["response_count"], core["response_rate_pct"], core["pace_avg"]) == (1, 20.0, None)
    assert (jan["pace_avg"], jan["pace_trend"], jan["overall_avg"]) == (3.0, None, 3.0)
    assert (feb["pace_avg"], feb["pace_trend"], feb["tooling_trend"]) == (4.0, 1.0, -1.0)
    assert feb["response_rate_pct"] == 37.5


def test_rows_and_metric_agree() -> None:
    rows = survey((3, 2, 1), (4, 2, 3), (5, 5, 4))
    table = pulse_aggregate_rows(make_frame("pulse", rows), as_of=AS_OF, team_sizes={PAY: 8})
    assert table == [pulse(rows)["2026-02"].as_row()]


def test_team_pulse_is_registered() -> None:
    info = load_all()["team_pulse"]
    assert info.func is team_pulse and info.spec == "§6.6.1"


# --- properties --------------------------------------------------------------------------

STREAMS = (PAY, CORE)
PERIODS = ("2026-01", "2026-02")
response_rows = st.lists(
    st.builds(
        make_response,
        respondent=st.sampled_from(["a", "b", "c", "d", "e"]),
        scores=st.tuples(*[st.integers(1, 5)] * 3),
        stream=st.sampled_from(STREAMS),
        period=st.sampled_from(PERIODS),
        at=st.integers(0, 40 * 24).map(lambda h: JAN + timedelta(hours=h)),
    ),
    max_size=30,
)


def _both(rows: list[dict[str, Any]]) -> tuple[object, object]:
    frame = make_frame("pulse", rows)
    sizes = {PAY: 5, CORE: 4}
    return (
        team_pulse(frame, as_of=AS_OF, team_sizes=sizes, periods=3),
        pulse_aggregate_rows(frame, as_of=AS_OF, team_sizes=sizes),
    )


@settings(max_examples=60, deadline=None)
@given(rows=response_rows, seed=st.integers(0, 2**32 - 1))
def test_row_order_changes_nothing(rows: list[dict[str, Any]], seed: int) -> None:
    frame = make_frame("pulse", rows)
    shuffled = frame.sample(frac=1, random_state=seed).reset_index(drop=True)
    sizes = {PAY: 5, CORE: 4}
    assert team_pulse(shuffled, as_of=AS_OF, team_sizes=sizes) == team_pulse(
        frame, as_of=AS_OF, team_sizes=sizes
    )
    assert pulse_aggregate_rows(shuffled, as_of=AS_OF, team_sizes=sizes) == pulse_aggregate_rows(
        frame, as_of=AS_OF, team_sizes=sizes
    )


@settings(max_examples=60, deadline=None)
@given(rows=response_rows, picks=st.lists(st.integers(0, 29), max_size=10))
def test_duplicated_rows_never_change_a_result(
    rows: list[dict[str, Any]], picks: list[int]
) -> None:
    copies = [rows[i % len(rows)] for i in picks] if rows else []
    assert _both(rows + copies) == _both(rows)


@settings(max_examples=60, deadline=None)
@given(
    rows=response_rows,
    earlier=st.lists(
        st.tuples(st.integers(0, 29), st.tuples(*[st.integers(1, 5)] * 3)), max_size=8
    ),
)
def test_older_submissions_of_the_same_person_never_change_a_result(
    rows: list[dict[str, Any]], earlier: list[tuple[int, tuple[int, int, int]]]
) -> None:
    # Another answer by the same respondent, stream and period, submitted before theirs.
    older = (
        [
            {
                **rows[i % len(rows)],
                "event_timestamp": JAN - timedelta(days=1),
                "pace_score": s[0],
                "tooling_score": s[1],
                "clarity_score": s[2],
            }
            for i, s in earlier
        ]
        if rows
        else []
    )
    assert _both(rows + older) == _both(rows)


@settings(max_examples=40, deadline=None)
@given(rows=response_rows)
def test_suppressed_exactly_when_fewer_than_three_people_answered(
    rows: list[dict[str, Any]],
) -> None:
    result = team_pulse(make_frame("pulse", rows), as_of=AS_OF, team_sizes={PAY: 5, CORE: 4})
    frame = pd.DataFrame(rows, columns=["delivery_stream_id", "survey_period", "respondent_hash"])
    for a in result.aggregates:
        people = frame[
            (frame["delivery_stream_id"] == a.delivery_stream_id)
            & (frame["survey_period"] == a.survey_period)
        ]["respondent_hash"].nunique()
        assert a.response_count == people
        assert a.suppressed is (people < 3)
        assert (a.pace_avg is None) is a.suppressed
        if a.pace_avg is not None:
            assert 1 <= a.pace_avg <= 5
