"""The pulse survey's page model (dpp_lib.dashboards.pulse_survey): the monthly window in the
organisation's time zone, who may answer for which stream, and a submission stored under the
ingestion API's HMAC of the user (SQLite and Postgres)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from dpp_lib.access import Principal
from dpp_lib.auth.roles import grant_role, principal_for_user
from dpp_lib.auth.users import create_user
from dpp_lib.dashboards import pulse_survey as model
from dpp_lib.ingest.anonymise import make_anonymiser
from dpp_lib.ingest.types import Anonymiser
from dpp_lib.settings import Settings
from dpp_lib.store.config_tables import SETTINGS_KEYS
from dpp_lib.store.pulse_survey import PulseResponseError, SavedResponse
from dpp_lib.store.schema import org_settings, pulse_responses
from dpp_lib.views.common import load_org


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


@pytest.mark.parametrize(
    ("now", "zone", "period", "upcoming"),
    [
        # first and last moments of the window 1-7 November, London (GMT)
        ("2026-11-01T00:00:00+00:00", "Europe/London", "2026-11", "2026-12"),
        ("2026-11-07T23:59:59+00:00", "Europe/London", "2026-11", "2026-12"),
        ("2026-11-08T00:00:00+00:00", "Europe/London", None, "2026-12"),
        ("2026-10-31T23:59:59+00:00", "Europe/London", None, "2026-11"),
        # summer time: the window opens at local midnight, 23:00 UTC the day before
        ("2026-06-30T23:30:00+00:00", "Europe/London", "2026-07", "2026-08"),
        ("2026-06-30T22:30:00+00:00", "Europe/London", None, "2026-07"),
        # already 1 December in Auckland, still 30 November in New York
        ("2026-11-30T12:00:00+00:00", "Pacific/Auckland", "2026-12", "2027-01"),
        ("2026-12-01T03:00:00+00:00", "America/New_York", None, "2026-12"),
        # the year boundary
        ("2026-12-31T23:00:00+00:00", "Asia/Tokyo", "2027-01", "2027-02"),
    ],
)
def test_window_of_the_first_seven_days_in_the_org_time_zone(
    now: str, zone: str, period: str | None, upcoming: str
) -> None:
    plan = model.schedule(_at(now), start_day=1, days=7, time_zone=zone)
    assert (plan.current.period if plan.current else None) == period
    assert plan.upcoming.period == upcoming
    assert str(plan.upcoming.opens.tzinfo) == zone
    assert (plan.upcoming.opens.hour, plan.upcoming.opens.minute) == (0, 0)


@pytest.mark.parametrize(
    ("now", "period", "upcoming"),
    [
        # a window opening on the 28th runs into the next month, and belongs to the first
        ("2027-01-28T00:00:00+00:00", "2027-01", "2027-02"),
        ("2027-02-03T12:00:00+00:00", "2027-01", "2027-02"),
        ("2027-02-04T00:00:00+00:00", None, "2027-02"),
        # February 2027 has 28 days: its window (28 Feb - 6 Mar) never overlaps March's
        ("2027-03-06T23:59:00+00:00", "2027-02", "2027-03"),
        ("2027-03-07T00:00:00+00:00", None, "2027-03"),
    ],
)
def test_a_window_across_the_month_end_keeps_its_opening_month(
    now: str, period: str | None, upcoming: str
) -> None:
    plan = model.schedule(_at(now), start_day=28, days=7, time_zone="UTC")
    assert (plan.current.period if plan.current else None) == period
    assert plan.upcoming.period == upcoming


def test_window_words_and_limits() -> None:
    plan = model.schedule(_at("2026-11-03T10:00:00+00:00"), start_day=1, days=7, time_zone="UTC")
    window = plan.current
    assert window is not None
    assert window.describe() == "Sunday 1 November to Saturday 7 November 2026 (UTC)"
    assert window.period_label == "November 2026"
    assert plan.upcoming.opening() == "Tuesday 1 December 2026 at 00:00 (UTC)"
    one_day = model.schedule(_at("2026-11-03T10:00:00+00:00"), start_day=9, days=1, time_zone="UTC")
    assert one_day.upcoming.describe() == "Monday 9 November 2026 (UTC)"
    with pytest.raises(ValueError, match="aware"):
        model.schedule(datetime(2026, 11, 3), start_day=1, days=7, time_zone="UTC")


# --- on a database ------------------------------------------------------------------------

IN_WINDOW = _at("2026-11-03T10:00:00+00:00")  # test org: 1-7 of the month, Europe/London
OUTSIDE = _at("2026-11-20T10:00:00+00:00")


def _user(conn: sa.Connection, name: str, *grants: tuple[str, uuid.UUID | None]) -> Principal:
    user = create_user(
        conn,
        email=f"{name}@example.com",
        display_name=name,
        password=None,
        auth_source="oidc",
        actor=None,
    )
    for role, stream in grants:
        grant_role(conn, user_id=user.user_id, role=role, delivery_stream_id=stream, actor=None)
    principal = principal_for_user(conn, user.user_id)
    assert principal is not None
    return principal


@pytest.fixture
def people(org: sa.Engine) -> dict[str, Principal]:
    with org.begin() as conn:
        s = {x.name: x.stream_id for x in load_org(conn).delivery}
        return {
            "member": _user(conn, "mia", ("team_member", s["payments"]), ("viewer", s["lending"])),
            "lead": _user(
                conn, "leo", ("stream_lead", s["lending"]), ("team_member", s["insights"])
            ),
            "viewer": _user(conn, "vic", ("viewer", s["payments"])),
            "admin": _user(conn, "ada", ("platform_admin", None)),
            "everywhere": _user(conn, "eve", ("team_member", None)),
        }


def _anonymise(settings: Settings) -> Anonymiser:
    return make_anonymiser(settings.anonymisation_key())


@pytest.mark.parametrize(
    ("who", "streams"),
    [
        ("member", ["payments"]),  # a viewer grant elsewhere adds nothing
        ("lead", ["insights", "lending"]),
        ("viewer", []),
        ("admin", ["insights", "lending", "onboarding", "payments"]),
        ("everywhere", ["insights", "lending", "onboarding", "payments"]),
    ],
)
def test_who_answers_for_which_stream(
    org: sa.Engine, people: dict[str, Principal], who: str, streams: list[str]
) -> None:
    with org.connect() as conn:
        found = model.respondable_streams(conn, load_org(conn), people[who])
    assert sorted(s.name for s in found) == streams


def test_a_viewer_is_told_why_and_what_would_fix_it(
    org: sa.Engine, settings: Settings, people: dict[str, Principal]
) -> None:
    with org.connect() as conn:
        page = model.survey_page(conn, people["viewer"], _anonymise(settings), now=IN_WINDOW)
    assert isinstance(page, model.NotAllowed)
    assert "viewer: delivery stream payments" in page.message
    assert "ask a platform administrator to grant you team_member" in page.message
    with org.begin() as conn, pytest.raises(model.PulseNotAllowed):
        model.submit(
            conn,
            people["viewer"],
            _anonymise(settings),
            stream="payments",
            scores={"pace_score": 3, "tooling_score": 3, "clarity_score": 3},
            free_text="",
            now=IN_WINDOW,
        )


def test_outside_the_window_the_page_names_the_next_one(
    org: sa.Engine, settings: Settings, people: dict[str, Principal]
) -> None:
    with org.connect() as conn:
        page = model.survey_page(conn, people["member"], _anonymise(settings), now=OUTSIDE)
    assert isinstance(page, model.Closed)
    assert page.upcoming.period == "2026-12"
    assert page.upcoming.opening() == "Tuesday 1 December 2026 at 00:00 (Europe/London)"
    with org.begin() as conn, pytest.raises(model.SurveyClosed, match="1 December 2026"):
        _submit(conn, people["member"], settings, now=OUTSIDE)


def _submit(
    conn: sa.Connection,
    who: Principal,
    settings: Settings,
    *,
    now: datetime = IN_WINDOW,
    stream: str = "payments",
    **scores: int | None,
) -> SavedResponse:
    values: dict[str, int | None] = {"pace_score": 2, "tooling_score": 4, "clarity_score": 5}
    values.update(scores)
    return model.submit(
        conn,
        who,
        _anonymise(settings),
        stream=stream,
        scores=values,
        free_text="the build is slow",
        now=now,
    )


def test_a_member_answers_anonymously_and_a_second_answer_replaces_the_first(
    org: sa.Engine, settings: Settings, people: dict[str, Principal]
) -> None:
    member = people["member"]
    with org.begin() as conn:
        _submit(conn, member, settings)
    with org.begin() as conn:
        saved = _submit(conn, member, settings, now=IN_WINDOW + timedelta(hours=1), pace_score=5)
    assert saved.replaced is True
    with org.connect() as conn:
        rows = list(conn.execute(sa.select(pulse_responses)))
        page = model.survey_page(conn, member, _anonymise(settings), now=IN_WINDOW)
    assert len(rows) == 1
    row = rows[0]
    assert (row.pace_score, row.tooling_score, row.clarity_score) == (5, 4, 5)
    assert row.free_text == "the build is slow"
    assert row.survey_period == "2026-11"
    # the same HMAC as POST /api/v1/events/pulse with respondent_id = the user id
    assert row.respondent_hash == make_anonymiser(settings.anonymisation_key())(
        "survey", member.subject
    )
    assert all(member.subject not in str(value) for value in row)
    assert isinstance(page, model.OpenSurvey)
    assert page.selected is not None and page.selected.name == "payments"  # the only stream
    assert list(page.answered.values()) == [IN_WINDOW + timedelta(hours=1)]


def test_the_hash_is_stable_across_months_and_differs_between_people(
    org: sa.Engine, settings: Settings, people: dict[str, Principal]
) -> None:
    with org.begin() as conn:
        _submit(conn, people["member"], settings)
        _submit(conn, people["member"], settings, now=IN_WINDOW + timedelta(days=30))
        _submit(conn, people["admin"], settings)
    with org.connect() as conn:
        rows = conn.execute(
            sa.select(pulse_responses.c.survey_period, pulse_responses.c.respondent_hash)
        ).all()
    by_period: dict[str, set[str]] = {}
    for period, digest in rows:
        by_period.setdefault(period, set()).add(digest)
    assert sorted(by_period) == ["2026-11", "2026-12"]
    assert len(by_period["2026-11"]) == 2  # two people
    assert by_period["2026-12"] < by_period["2026-11"]  # the member's hash again


def test_a_missing_score_or_stream_is_refused_and_nothing_is_stored(
    org: sa.Engine, settings: Settings, people: dict[str, Principal]
) -> None:
    with org.begin() as conn, pytest.raises(PulseResponseError) as missing:
        _submit(conn, people["member"], settings, tooling_score=None)
    assert "How much do your tools and processes help" in missing.value.message
    assert [p.field for p in missing.value.details] == ["tooling_score"]
    with org.begin() as conn, pytest.raises(PulseResponseError, match="choose the delivery"):
        _submit(conn, people["member"], settings, stream="")
    with org.begin() as conn, pytest.raises(model.PulseNotAllowed, match="'lending'"):
        _submit(conn, people["member"], settings, stream="lending")  # a viewer there only
    with org.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(pulse_responses)).scalar() == 0


def test_the_url_stream_preselects_or_says_it_cannot(
    org: sa.Engine, settings: Settings, people: dict[str, Principal]
) -> None:
    with org.connect() as conn:
        chosen = model.survey_page(
            conn, people["lead"], _anonymise(settings), now=IN_WINDOW, requested="Lending"
        )
        refused = model.survey_page(
            conn, people["lead"], _anonymise(settings), now=IN_WINDOW, requested="payments"
        )
    assert isinstance(chosen, model.OpenSurvey) and isinstance(refused, model.OpenSurvey)
    assert chosen.selected is not None and chosen.selected.name == "lending"
    assert refused.selected is None  # two streams, none chosen
    assert "'payments'" in refused.notices[0]


def test_the_org_config_moves_the_window(
    org: sa.Engine, settings: Settings, people: dict[str, Principal]
) -> None:
    assert "pulse" in SETTINGS_KEYS
    with org.begin() as conn:
        conn.execute(
            org_settings.update()
            .where(org_settings.c.key == "pulse")
            .values(value={"window_start_day": 15, "window_days": 10})
        )
    with org.connect() as conn:
        page = model.survey_page(conn, people["member"], _anonymise(settings), now=OUTSIDE)
    assert isinstance(page, model.OpenSurvey)
    assert (
        page.window.describe() == "Sunday 15 November to Tuesday 24 November 2026 (Europe/London)"
    )
