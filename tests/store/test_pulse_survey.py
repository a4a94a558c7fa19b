"""Storing built-in pulse survey responses (dpp_lib.store.pulse_survey) on SQLite and Postgres:
one row per respondent, stream and period, a later submission replaces it, the data version
moves, bad input is refused with the field named."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from dpp_lib.store import data_versions
from dpp_lib.store.pulse_survey import (
    PulseResponseError,
    SavedResponse,
    SurveyAnswers,
    check_answers,
    save_response,
    submitted_at,
)
from dpp_lib.store.schema import pulse_responses
from dpp_lib.views.common import load_org

AT = datetime(2026, 11, 3, 9, 30, tzinfo=UTC)
HASH = "a" * 64
OTHER = "b" * 64


def _streams(engine: sa.Engine) -> dict[str, uuid.UUID]:
    with engine.connect() as conn:
        return {s.name: s.stream_id for s in load_org(conn).delivery}


def _save(
    engine: sa.Engine,
    stream: uuid.UUID,
    answers: SurveyAnswers,
    *,
    respondent_hash: str = HASH,
    survey_period: str = "2026-11",
    submitted: datetime = AT,
) -> SavedResponse:
    with engine.begin() as conn:
        return save_response(
            conn,
            respondent_hash=respondent_hash,
            delivery_stream_id=stream,
            survey_period=survey_period,
            answers=answers,
            submitted=submitted,
        )


def _rows(engine: sa.Engine) -> list[sa.Row[tuple[object, ...]]]:
    with engine.connect() as conn:
        return list(conn.execute(sa.select(pulse_responses)))


def test_a_resubmission_replaces_the_response_and_moves_the_data_version(org: sa.Engine) -> None:
    payments = _streams(org)["payments"]
    first = _save(org, payments, SurveyAnswers(2, 3, 4, "too many meetings"))
    with org.connect() as conn:
        version = data_versions.current(conn)["pulse_responses"]
    second = _save(org, payments, SurveyAnswers(5, 4, 1), submitted=AT + timedelta(hours=2))
    rows = _rows(org)
    assert len(rows) == 1
    row = rows[0]
    assert (row.pace_score, row.tooling_score, row.clarity_score) == (5, 4, 1)
    assert row.free_text is None  # the new answer has no comment: the old one is gone too
    assert row.event_timestamp == AT + timedelta(hours=2)
    assert (row.source, row.survey_period, row.respondent_hash) == ("survey", "2026-11", HASH)
    assert first.replaced is False and second.replaced is True
    with org.connect() as conn:
        assert data_versions.current(conn)["pulse_responses"] == version + 1


def test_other_people_streams_and_periods_are_separate_rows(org: sa.Engine) -> None:
    streams = _streams(org)
    _save(org, streams["payments"], SurveyAnswers(3, 3, 3))
    _save(org, streams["lending"], SurveyAnswers(4, 4, 4))
    _save(org, streams["payments"], SurveyAnswers(1, 1, 1), respondent_hash=OTHER)
    _save(org, streams["payments"], SurveyAnswers(2, 2, 2), survey_period="2026-12")
    assert len(_rows(org)) == 4
    with org.connect() as conn:
        found = submitted_at(
            conn,
            respondent_hash=OTHER,
            delivery_stream_id=streams["payments"],
            survey_period="2026-11",
        )
        missing = submitted_at(
            conn,
            respondent_hash=OTHER,
            delivery_stream_id=streams["lending"],
            survey_period="2026-11",
        )
    assert (found, missing) == (AT, None)


def test_an_older_submission_does_not_replace_a_newer_one(org: sa.Engine) -> None:
    payments = _streams(org)["payments"]
    _save(org, payments, SurveyAnswers(4, 4, 4))
    with pytest.raises(PulseResponseError, match="already stored"):
        _save(org, payments, SurveyAnswers(1, 1, 1), submitted=AT - timedelta(minutes=1))
    assert [r.pace_score for r in _rows(org)] == [4]


@pytest.mark.parametrize(
    ("answers", "field"),
    [
        (SurveyAnswers(0, 3, 3), "pace_score"),
        (SurveyAnswers(3, 6, 3), "tooling_score"),
        (SurveyAnswers(3, 3, True), "clarity_score"),  # a bool is not a score
        (SurveyAnswers(3, 3, 3, "x" * 5001), "free_text"),
    ],
)
def test_bad_answers_are_refused_naming_the_field(answers: SurveyAnswers, field: str) -> None:
    with pytest.raises(PulseResponseError) as caught:
        check_answers(answers)
    assert [p.field for p in caught.value.details] == [field]
    assert field in caught.value.message


def test_blank_free_text_is_stored_as_none() -> None:
    assert check_answers(SurveyAnswers(1, 2, 3, "  \n ")).free_text is None
    assert check_answers(SurveyAnswers(1, 2, 3, " fine ")).free_text == "fine"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"survey_period": "2026-13"}, "not a month"),
        ({"respondent_hash": "3f9c2e4a-user-id"}, "HMAC"),
        ({"submitted": datetime(2026, 11, 3, 9, 30)}, "time zone"),
    ],
)
def test_malformed_keys_are_refused_before_any_write(
    org: sa.Engine, change: dict[str, Any], message: str
) -> None:
    with pytest.raises(PulseResponseError, match=message):
        _save(org, _streams(org)["payments"], SurveyAnswers(3, 3, 3), **change)
    assert _rows(org) == []
