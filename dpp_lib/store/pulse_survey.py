"""Responses of the built-in pulse survey (spec §5.5.1): written to ``pulse_responses`` with
the ingestion worker's own natural-key upsert (``write.insert_events``), so one person has one
response per delivery stream and survey period and a later submission replaces the earlier
one (spec §4.3.8). The ``pulse_responses`` data version is bumped in the same transaction, so
the API's pulse cache and the dashboards see the new answer at once (spec §7.3.4).

The caller passes the respondent's HMAC (never a user id): nothing here can tell who answered.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from dpp_lib.errors import DppError, FieldProblem
from dpp_lib.store import data_versions
from dpp_lib.store.schema import pulse_responses
from dpp_lib.store.write import insert_events

SCORE_FIELDS = ("pace_score", "tooling_score", "clarity_score")  # spec §5.5.2
MAX_FREE_TEXT = 5000  # as POST /api/v1/events/pulse
TOPIC = "pulse_responses"
_PERIOD = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")
_HASH = re.compile(r"^[0-9a-f]{64}$")


class PulseResponseError(DppError):
    """A survey response that cannot be stored: a missing or out-of-range score, free text too
    long, a malformed period or respondent hash. ``details`` names each field."""

    code = "invalid_pulse_response"


@dataclass(frozen=True)
class SurveyAnswers:
    """The three 1–5 Likert scores and the optional free text of one response."""

    pace_score: int
    tooling_score: int
    clarity_score: int
    free_text: str | None = None


@dataclass(frozen=True)
class SavedResponse:
    delivery_stream_id: uuid.UUID
    survey_period: str
    submitted_at: datetime
    replaced: bool  # an earlier response of the same person, stream and period was replaced


def check_answers(answers: SurveyAnswers) -> SurveyAnswers:
    """``answers`` with blank free text as None; ``PulseResponseError`` naming every problem."""
    problems = [
        FieldProblem(name, "must be a whole number from 1 to 5")
        for name in SCORE_FIELDS
        if not _is_score(getattr(answers, name))
    ]
    text = (answers.free_text or "").strip() or None
    if text is not None and len(text) > MAX_FREE_TEXT:
        problems.append(FieldProblem("free_text", f"longer than {MAX_FREE_TEXT} characters"))
    if problems:
        fields = ", ".join(f"{p.field} {p.problem}" for p in problems)
        raise PulseResponseError(
            f"the survey response cannot be stored: {fields}", details=problems
        )
    return SurveyAnswers(answers.pace_score, answers.tooling_score, answers.clarity_score, text)


def _is_score(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 5


def submitted_at(
    conn: sa.Connection, *, respondent_hash: str, delivery_stream_id: uuid.UUID, survey_period: str
) -> datetime | None:
    """When the stored response of this respondent, stream and period was submitted (None:
    no response yet)."""
    p = pulse_responses
    found = conn.execute(
        sa.select(p.c.event_timestamp).where(
            p.c.respondent_hash == respondent_hash,
            p.c.delivery_stream_id == delivery_stream_id,
            p.c.survey_period == survey_period,
        )
    ).scalar_one_or_none()
    return found


def save_response(
    conn: sa.Connection,
    *,
    respondent_hash: str,
    delivery_stream_id: uuid.UUID,
    survey_period: str,
    answers: SurveyAnswers,
    submitted: datetime,
) -> SavedResponse:
    """Store one response, replacing the respondent's earlier one for the stream and period;
    run it in the caller's transaction. ``submitted`` must be aware (UTC) and later than a
    stored response's time, else ``PulseResponseError`` (the upsert keeps the latest)."""
    answers = check_answers(answers)
    if not _PERIOD.match(survey_period):
        raise PulseResponseError(
            f"survey period {survey_period!r} is not a month like 2026-11",
            details=[FieldProblem("survey_period", "expected YYYY-MM")],
        )
    if not _HASH.match(respondent_hash):
        raise PulseResponseError(
            "the respondent must be the 64-character HMAC of the person, never an identifier",
            details=[FieldProblem("respondent_hash", "expected 64 lowercase hex characters")],
        )
    if submitted.tzinfo is None:
        raise PulseResponseError("the submission time needs a time zone (UTC)")
    previous = submitted_at(
        conn,
        respondent_hash=respondent_hash,
        delivery_stream_id=delivery_stream_id,
        survey_period=survey_period,
    )
    if previous is not None and previous >= submitted:
        raise PulseResponseError(
            f"a response for {survey_period} submitted at {previous.isoformat()} is already"
            f" stored, later than this one ({submitted.isoformat()}); it was kept"
        )
    row = {
        "respondent_hash": respondent_hash,
        "delivery_stream_id": delivery_stream_id,
        "survey_period": survey_period,
        "event_id": uuid.uuid4(),
        "source": "survey",
        "event_timestamp": submitted,
        "received_at": submitted,
        "pace_score": answers.pace_score,
        "tooling_score": answers.tooling_score,
        "clarity_score": answers.clarity_score,
        "free_text": answers.free_text,
    }
    insert_events(conn, pulse_responses.name, [row])
    data_versions.bump(conn, [TOPIC])
    return SavedResponse(delivery_stream_id, survey_period, submitted, previous is not None)
