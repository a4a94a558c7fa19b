"""The built-in pulse survey (spec §5.5.1): who may answer, when, and storing an answer.

- **Who**: a signed-in user with a ``team_member`` or ``stream_lead`` grant for a delivery
  stream answers for that stream (an unscoped grant, or ``platform_admin``: any active
  delivery stream). A viewer may read dashboards but not answer.
- **When**: each month from ``pulse.window_start_day`` for ``pulse.window_days`` days
  (org config), from midnight to midnight in the organisation's time zone. A window that runs
  past the month's end still belongs to the month it opened in: that month is the response's
  ``survey_period``.
- **Anonymous**: the response is stored under ``anonymise("survey", user id)``, the HMAC of
  spec §4.6 used by the ingestion API, so the same person has the same hash every month and
  the database holds no user id, name or email. Free text is stored for retrospectives and
  never shown on a dashboard.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from dpp_lib.access import Principal
from dpp_lib.auth.roles import list_roles
from dpp_lib.dashboards import data
from dpp_lib.errors import DppError, FieldProblem
from dpp_lib.ingest.types import Anonymiser
from dpp_lib.orgconfig import Pulse
from dpp_lib.store import pulse_survey as store
from dpp_lib.store.pulse_survey import PulseResponseError, SavedResponse, SurveyAnswers
from dpp_lib.views.common import Org, Stream, load_org

NAMESPACE = "survey"  # as POST /api/v1/events/pulse: one person, one hash across months
RESPONDING_ROLES = frozenset({"team_member", "stream_lead"})
PERMISSION = "pulse:submit"


@dataclass(frozen=True)
class Question:
    field: str
    text: str  # spec §5.5.2, word for word
    low: str  # what 1 means
    high: str  # what 5 means


QUESTIONS = (
    Question(
        "pace_score",
        "How sustainable does the current pace of work feel?",
        "not sustainable at all",
        "fully sustainable",
    ),
    Question(
        "tooling_score",
        "How much do your tools and processes help (vs hinder) your work?",
        "they hinder a lot",
        "they help a lot",
    ),
    Question(
        "clarity_score",
        "How clear are the current priorities and what you should be working on?",
        "not clear at all",
        "completely clear",
    ),
)


class PulseNotAllowed(DppError):
    """The viewer may not answer the survey for that stream (or it does not exist)."""

    code = "pulse_not_allowed"
    http_status = 403


class SurveyClosed(DppError):
    """An answer arrived outside the survey window."""

    code = "pulse_survey_closed"
    http_status = 409


@dataclass(frozen=True)
class SurveyWindow:
    """One month's window: ``opens`` (inclusive) to ``closes`` (exclusive), aware datetimes in
    the organisation's time zone; ``period`` is the month it opened in (``YYYY-MM``)."""

    period: str
    opens: datetime
    closes: datetime

    def contains(self, moment: datetime) -> bool:
        return self.opens <= moment < self.closes

    @property
    def last_day(self) -> date:
        return (self.closes - timedelta(days=1)).date()

    @property
    def period_label(self) -> str:
        return f"{self.opens:%B %Y}"

    def describe(self) -> str:
        """``Sunday 1 November to Saturday 7 November 2026 (Europe/London)``."""
        first, last = self.opens.date(), self.last_day
        if first == last:
            return f"{day_label(first)} {last.year} ({self.opens.tzinfo})"
        return f"{day_label(first)} to {day_label(last)} {last.year} ({self.opens.tzinfo})"

    def opening(self) -> str:
        """``Sunday 1 November 2026 at 00:00 (Europe/London)``."""
        return f"{day_label(self.opens.date())} {self.opens.year} at 00:00 ({self.opens.tzinfo})"


def day_label(day: date) -> str:
    return f"{day:%A} {day.day} {day:%B}"


@dataclass(frozen=True)
class SurveySchedule:
    current: SurveyWindow | None  # the window open at that moment, if any
    upcoming: SurveyWindow  # the next window to open after that moment


def window_of(year: int, month: int, *, start_day: int, days: int, zone: ZoneInfo) -> SurveyWindow:
    first = date(year, month, start_day)
    return SurveyWindow(
        f"{year:04d}-{month:02d}",
        datetime.combine(first, time(), zone),
        datetime.combine(first + timedelta(days=days), time(), zone),
    )


def schedule(now: datetime, *, start_day: int, days: int, time_zone: str) -> SurveySchedule:
    """The window open at ``now`` (aware) and the next one. A window is at most 28 days and
    opens on day 1–28 (org config limits), so windows of consecutive months never overlap."""
    if now.tzinfo is None:
        raise ValueError("now must be an aware datetime")
    zone = ZoneInfo(time_zone)
    local = now.astimezone(zone)
    months = [_shift(local.year, local.month, step) for step in (-1, 0, 1)]
    previous, this, following = (
        window_of(y, m, start_day=start_day, days=days, zone=zone) for y, m in months
    )
    current = next((w for w in (previous, this) if w.contains(now)), None)
    return SurveySchedule(current, this if now < this.opens else following)


def _shift(year: int, month: int, step: int) -> tuple[int, int]:
    index = year * 12 + (month - 1) + step
    return index // 12, index % 12 + 1


def org_schedule(org: Org, now: datetime) -> SurveySchedule:
    """``schedule`` with the organisation's ``pulse`` settings and time zone."""
    config = Pulse.model_validate(org.settings.get("pulse") or {})
    zone = str(org.organisation.get("time_zone") or "UTC")
    return schedule(now, start_day=config.window_start_day, days=config.window_days, time_zone=zone)


def respondable_streams(conn: sa.Connection, org: Org, principal: Principal) -> tuple[Stream, ...]:
    """The active delivery streams the signed-in user answers the survey for, from their role
    grants (roles give permissions to the whole user, so the grants decide the streams)."""
    if principal.kind != "user" or not principal.has(PERMISSION):
        return ()
    grants = list_roles(conn, uuid.UUID(principal.subject))
    everywhere = any(
        g.role == "platform_admin"
        or (g.role in RESPONDING_ROLES and (g.delivery_stream_id, g.tech_stream_id) == (None, None))
        for g in grants
    )
    if everywhere:
        return org.delivery
    ids = {g.delivery_stream_id for g in grants if g.role in RESPONDING_ROLES}
    return tuple(s for s in org.delivery if s.stream_id in ids)


def respondent_hash(anonymise: Anonymiser, principal: Principal) -> str:
    value = anonymise(NAMESPACE, principal.subject)
    if value is None:
        raise PulseNotAllowed("the survey needs a signed-in user to answer it")
    return value


@dataclass(frozen=True)
class NotAllowed:
    message: str


@dataclass(frozen=True)
class Closed:
    upcoming: SurveyWindow
    streams: tuple[Stream, ...]


@dataclass(frozen=True)
class OpenSurvey:
    window: SurveyWindow
    streams: tuple[Stream, ...]
    selected: Stream | None  # preselected: the only stream, or the URL's ?stream=
    answered: Mapping[uuid.UUID, datetime]  # the viewer's responses this period, by stream
    notices: tuple[str, ...] = ()


def not_allowed_message(conn: sa.Connection, org: Org, principal: Principal) -> str:
    roles = "; ".join(line.describe() for line in data.role_lines(conn, org, principal))
    return (
        "The pulse survey is answered by the members of a delivery stream's team (the"
        " team_member or stream_lead role for that stream). Your roles"
        f" ({roles or 'none'}) let you read the dashboards but not answer it. If you work in"
        " a team, ask a platform administrator to grant you team_member for its delivery stream."
    )


def survey_page(
    conn: sa.Connection,
    principal: Principal,
    anonymise: Anonymiser,
    *,
    now: datetime,
    requested: str = "",
) -> OpenSurvey | Closed | NotAllowed:
    """What the page shows the viewer at ``now``; ``requested``: a stream name from the URL."""
    org = load_org(conn)
    streams = respondable_streams(conn, org, principal)
    if not streams:
        return NotAllowed(not_allowed_message(conn, org, principal))
    plan = org_schedule(org, now)
    if plan.current is None:
        return Closed(plan.upcoming, streams)
    window = plan.current
    notices: list[str] = []
    selected = streams[0] if len(streams) == 1 else None
    if requested.strip():
        try:
            selected = choose_stream(streams, requested)
        except PulseNotAllowed as exc:
            notices.append(f"{exc.message} Choose one of your streams below.")
    who = respondent_hash(anonymise, principal)
    answered = {
        s.stream_id: at
        for s in streams
        if (
            at := store.submitted_at(
                conn,
                respondent_hash=who,
                delivery_stream_id=s.stream_id,
                survey_period=window.period,
            )
        )
        is not None
    }
    return OpenSurvey(window, streams, selected, answered, tuple(notices))


def choose_stream(streams: tuple[Stream, ...], name: str) -> Stream:
    """The stream called ``name`` (name, display name or id) among ``streams``; unknown and
    not-yours get the same message, so stream names cannot be probed."""
    wanted = name.strip().casefold()
    for s in streams:
        if wanted in (s.name.casefold(), s.display_name.casefold(), str(s.stream_id)):
            return s
    raise PulseNotAllowed(
        f"You cannot answer the survey for the stream {name!r}, or it does not exist."
    )


def answers_from_form(scores: Mapping[str, int | None], free_text: str) -> SurveyAnswers:
    """The form's values as answers; ``PulseResponseError`` naming each unanswered question."""
    missing = [q for q in QUESTIONS if scores.get(q.field) is None]
    if missing:
        questions = " ".join(f"“{q.text}”" for q in missing)
        raise PulseResponseError(
            f"Please answer every question (1 to 5) before sending. Unanswered: {questions}",
            details=[FieldProblem(q.field, "no score chosen") for q in missing],
        )
    pace, tooling, clarity = (int(scores[q.field] or 0) for q in QUESTIONS)
    answers = SurveyAnswers(pace, tooling, clarity, free_text or None)
    return store.check_answers(answers)


def submit(
    conn: sa.Connection,
    principal: Principal,
    anonymise: Anonymiser,
    *,
    stream: str,
    scores: Mapping[str, int | None],
    free_text: str,
    now: datetime,
) -> SavedResponse:
    """Store the viewer's answers for ``stream`` in the window open at ``now`` (replacing an
    earlier answer of theirs for the same stream and period). Run it in a transaction."""
    org = load_org(conn)
    streams = respondable_streams(conn, org, principal)
    if not streams:
        raise PulseNotAllowed(not_allowed_message(conn, org, principal))
    if not stream.strip():
        raise PulseResponseError(
            "Please choose the delivery stream you are answering for.",
            details=[FieldProblem("delivery_stream", "none chosen")],
        )
    chosen = choose_stream(streams, stream)
    plan = org_schedule(org, now)
    window = plan.current
    if window is None:
        raise SurveyClosed(
            "The survey is closed, so your answers were not stored; the next one opens on"
            f" {plan.upcoming.opening()}."
        )
    return store.save_response(
        conn,
        respondent_hash=respondent_hash(anonymise, principal),
        delivery_stream_id=chosen.stream_id,
        survey_period=window.period,
        answers=answers_from_form(scores, free_text),
        submitted=now,
    )
