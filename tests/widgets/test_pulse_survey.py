"""The pulse survey form without a browser (dpp_lib.widgets.pulse_survey): what each state
draws, and the send button's handler storing, refusing and confirming (SQLite and Postgres).
The browser test (tests/dashboards/test_pulse_survey.py) covers the same through Voila."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from dpp_lib.auth.roles import grant_role, principal_for_user
from dpp_lib.auth.users import create_user
from dpp_lib.dashboards import pulse_survey as model
from dpp_lib.ingest.anonymise import make_anonymiser
from dpp_lib.ingest.types import Anonymiser
from dpp_lib.settings import Settings
from dpp_lib.store.schema import pulse_responses
from dpp_lib.views.common import load_org
from dpp_lib.widgets.pulse_survey import SurveyForm, open_page

IN_WINDOW = datetime(2026, 11, 3, 10, 0, tzinfo=UTC)  # test org: 1-7 of the month, London
OUTSIDE = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)


def _user(engine: sa.Engine, role: str, stream: str | None) -> uuid.UUID:
    with engine.begin() as conn:
        ids = {s.name: s.stream_id for s in load_org(conn).delivery}
        user = create_user(
            conn,
            email=f"{role}-{uuid.uuid4().hex[:6]}@example.com",
            display_name=role,
            password=None,
            auth_source="oidc",
            actor=None,
        )
        grant_role(
            conn,
            user_id=user.user_id,
            role=role,
            delivery_stream_id=ids[stream] if stream else None,
            actor=None,
        )
    return user.user_id


def _html(widget: Any) -> str:
    """Every HTML value in a widget tree."""
    if hasattr(widget, "children"):
        return "".join(_html(c) for c in widget.children)
    value = getattr(widget, "value", "")
    return value if isinstance(value, str) else ""


def _anonymise(settings: Settings) -> Anonymiser:
    return make_anonymiser(settings.anonymisation_key())


def _form(org: sa.Engine, settings: Settings, user_id: uuid.UUID, now: datetime) -> SurveyForm:
    with org.connect() as conn:
        principal = principal_for_user(conn, user_id)
        assert principal is not None
        survey = model.survey_page(conn, principal, _anonymise(settings), now=now)
    assert isinstance(survey, model.OpenSurvey)
    return SurveyForm(org, principal, _anonymise(settings), survey, clock=lambda: now)


def test_each_state_draws_its_message(org: sa.Engine, settings: Settings) -> None:
    member = _user(org, "team_member", "payments")
    viewer = _user(org, "viewer", "payments")
    anonymise = _anonymise(settings)
    closed = _html(
        open_page(org, anonymise, environ={"HTTP_X_FORWARDED_USER": str(member)}, now=OUTSIDE)
    )
    assert 'id="dpp-pulse-closed"' in closed and "Tuesday 1 December 2026" in closed
    refused = _html(
        open_page(org, anonymise, environ={"HTTP_X_FORWARDED_USER": str(viewer)}, now=IN_WINDOW)
    )
    assert 'id="dpp-pulse-not-allowed"' in refused and 'role="alert"' in refused
    nobody = _html(open_page(org, anonymise, environ={}, now=IN_WINDOW))
    assert 'id="dpp-not-signed-in"' in nobody
    form = _html(
        open_page(org, anonymise, environ={"HTTP_X_FORWARDED_USER": str(member)}, now=IN_WINDOW)
    )
    assert "Team pulse — November 2026" in form and "HMAC-SHA256" in form
    for question in model.QUESTIONS:
        assert question.text in form


def test_the_send_button_refuses_then_stores_then_replaces(
    org: sa.Engine, settings: Settings
) -> None:
    member = _user(org, "team_member", "payments")
    form = _form(org, settings, member, IN_WINDOW)
    assert form.stream.label == "Payments"  # the only team, preselected
    form.scores["pace_score"].value = 3
    form.submit()
    assert 'id="dpp-pulse-error"' in form.result.value
    assert "Unanswered" in form.result.value and "How much do your tools" in form.result.value
    form.scores["tooling_score"].value = 4
    form.scores["clarity_score"].value = 2
    form.text.value = "more pairing please"
    form.submit()
    assert 'id="dpp-pulse-confirmation"' in form.result.value
    assert "period 2026-11" in form.result.value and "replace" not in form.result.value
    assert "You already answered" in form.previous.value
    assert not form.send.disabled
    form.clock = lambda: IN_WINDOW + timedelta(minutes=5)
    form.scores["pace_score"].value = 1
    form.submit()
    assert "replace the answers you sent earlier" in form.result.value
    with org.connect() as conn:
        rows = conn.execute(sa.select(pulse_responses)).all()
    assert [(r.pace_score, r.tooling_score, r.clarity_score) for r in rows] == [(1, 4, 2)]


def test_a_page_left_open_past_the_window_stores_nothing(
    org: sa.Engine, settings: Settings
) -> None:
    form = _form(org, settings, _user(org, "stream_lead", "lending"), IN_WINDOW)
    form.clock = lambda: IN_WINDOW + timedelta(days=5)  # 8 November: the window closed on the 7th
    for buttons in form.scores.values():
        buttons.value = 5
    form.submit()
    assert "The survey is closed" in form.result.value and "1 December 2026" in form.result.value
    with org.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(pulse_responses)).scalar() == 0
