"""The pulse survey page in a real browser (Debian Chromium through Playwright), through the
front door, on a writable database with the test organisation: a team member answers (a
missing score is refused first), the row carries the HMAC of the user and never the user id,
and a second answer from the same page replaces the first; outside the window the form is not
offered; a viewer is refused. No console error, no request leaving the machine; screenshots
saved.

The survey window comes from the org config in the database, which each test sets around
today's date (the page reads it on every load). Voila serves a folder holding only this
notebook (a copy of the committed one), so it preheats kernels for this page alone: three,
one per page load.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from playwright.sync_api import Browser, Page, sync_playwright

from dpp_lib.dashboards.voila import VoilaServer
from dpp_lib.ingest.anonymise import make_anonymiser
from dpp_lib.settings import Settings, ensure_secrets
from dpp_lib.store.db import make_engine
from dpp_lib.store.schema import org_settings, pulse_responses
from dpp_lib.views.common import load_org
from ingest_service.runtime import free_port, running_api
from tests.dashboards.conftest import CHROMIUM, CHROMIUM_ARGS, SignedIn, make_user
from tests.support import ROOT, TEST_SECRETS, load_test_config

pytestmark = pytest.mark.slow

TIMEOUT_MS = 90_000  # a loaded CI machine: a kernel still warming up delays the first page
NOTEBOOK = ROOT / "notebooks" / "dashboards" / "pulse_survey.ipynb"
PAGE = "/dashboards/voila/render/pulse_survey.ipynb"
ZONE = ZoneInfo("Europe/London")  # the test organisation's time zone


@dataclass(frozen=True)
class SurveySite:
    base: str
    settings: Settings
    engine: sa.Engine
    member: SignedIn  # team_member of payments
    viewer: SignedIn  # viewer of payments


@dataclass
class Recorded:
    page: Page
    requests: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)

    def hosts(self) -> set[str]:
        return {urlsplit(u).hostname or "" for u in self.requests if not u.startswith("data:")}


@pytest.fixture(scope="module")
def site(sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SurveySite]:
    base = tmp_path_factory.mktemp("pulse-survey")
    shutil.copy(sqlite_template, base / "dpp.sqlite3")
    notebooks = base / "notebooks"
    notebooks.mkdir()
    shutil.copy(NOTEBOOK, notebooks / NOTEBOOK.name)
    secrets = base / "secrets"
    secrets.mkdir()
    for name, value in TEST_SECRETS.items():
        (secrets / name).write_text(value)
    settings = Settings(
        environment="test",
        database_url=f"sqlite:///{base / 'dpp.sqlite3'}",
        secrets_dir=secrets,
        var_dir=base,
        api_compute_in="threads",
        voila_port=free_port(),
        voila_pool_size=3,  # three page loads in a row, none waiting for a kernel to start
        dashboards_dir=notebooks,
    )
    ensure_secrets(settings)  # session_key signs the sign-in form's CSRF token
    engine = make_engine(settings.resolved_database_url())
    load_test_config(engine)
    with engine.begin() as conn:
        streams = {s.name: s.stream_id for s in load_org(conn).delivery}
        member = make_user(conn, "Mia Member", ("team_member", streams["payments"]))
        viewer = make_user(conn, "Vic Viewer", ("viewer", streams["payments"]))
    with VoilaServer(settings), running_api(settings) as api:
        yield SurveySite(api, settings, engine, member, viewer)
    engine.dispose()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield chromium
        chromium.close()


def _set_window(site: SurveySite, *, today_inside: bool) -> None:
    """Put today (in the org's zone) inside a 7-day window, or outside a 1-day one."""
    today = datetime.now(UTC).astimezone(ZONE).day
    value = (
        {"window_start_day": min(today, 28), "window_days": 7}
        if today_inside
        else {"window_start_day": today % 28 + 1, "window_days": 1}
    )
    with site.engine.begin() as conn:
        conn.execute(org_settings.update().where(org_settings.c.key == "pulse").values(value=value))


def _open(browser: Browser, site: SurveySite, user: SignedIn) -> Recorded:
    context = browser.new_context(viewport={"width": 1100, "height": 1300})
    context.add_cookies([{"name": "dpp_session", "value": user.token, "url": site.base}])
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    recorded = Recorded(page)
    page.on("request", lambda r: recorded.requests.append(r.url))
    page.on("websocket", lambda ws: recorded.requests.append(ws.url))
    page.on(
        "console", lambda m: recorded.console_errors.append(m.text) if m.type == "error" else None
    )
    page.on("pageerror", lambda e: recorded.console_errors.append(str(e)))
    page.goto(f"{site.base}{PAGE}")
    page.locator("#dpp-pulse-ready").wait_for(state="attached")
    return recorded


def _score(page: Page, question: str, value: int) -> None:
    page.locator(f".dpp-pulse-{question}").get_by_role(
        "button", name=str(value), exact=True
    ).click()


def _screenshot(page: Page, site: SurveySite, name: str) -> None:
    path = site.settings.var_dir / name
    page.screenshot(path=path, full_page=True)
    target = os.environ.get("DPP_SCREENSHOTS_DIR")
    if target:
        Path(target).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(target) / name)


def _rows(site: SurveySite) -> list[sa.Row[tuple[object, ...]]]:
    with site.engine.connect() as conn:
        return list(conn.execute(sa.select(pulse_responses)))


def _done(recorded: Recorded) -> None:
    assert recorded.console_errors == []
    assert recorded.hosts() == {"127.0.0.1"}, sorted(recorded.requests)
    recorded.page.context.close()


def test_a_member_answers_and_a_second_answer_replaces_the_first(
    browser: Browser, site: SurveySite
) -> None:
    _set_window(site, today_inside=True)
    recorded = _open(browser, site, site.member)
    page = recorded.page
    # one team: preselected
    assert page.locator(".dpp-pulse-stream select option:checked").inner_text() == "Payments"
    assert "anonymous" in page.locator("#dpp-pulse-anonymity").inner_text()
    _score(page, "pace_score", 4)
    _score(page, "tooling_score", 2)
    page.locator(".dpp-pulse-submit").click()  # the clarity question is unanswered
    error = page.locator("#dpp-pulse-error")
    error.wait_for()
    assert "How clear are the current priorities" in error.inner_text()
    assert _rows(site) == []
    _score(page, "clarity_score", 5)
    page.locator(".dpp-pulse-text textarea").fill("Release freeze slowed us down")
    page.locator(".dpp-pulse-submit").click()
    confirmation = page.locator("#dpp-pulse-confirmation")
    confirmation.wait_for()
    period = datetime.now(UTC).astimezone(ZONE).strftime("%Y-%m")
    text = confirmation.inner_text()
    assert f"period {period}" in text and "Payments" in text
    _screenshot(page, site, "pulse-survey.png")
    rows = _rows(site)
    assert len(rows) == 1
    row = rows[0]
    assert (row.pace_score, row.tooling_score, row.clarity_score) == (4, 2, 5)
    assert (row.survey_period, row.free_text) == (period, "Release freeze slowed us down")
    anonymise = make_anonymiser(site.settings.anonymisation_key())
    assert row.respondent_hash == anonymise("survey", str(site.member.user_id))
    assert all(str(site.member.user_id) not in str(v) for v in row)
    assert all(site.member.email not in str(v) for v in row)
    # a second answer in the same month, from the same page: it replaces the first
    assert "You already answered" in page.locator("#dpp-pulse-previous").inner_text()
    _score(page, "pace_score", 1)
    _score(page, "tooling_score", 1)
    _score(page, "clarity_score", 3)
    page.locator(".dpp-pulse-text textarea").fill("")
    page.locator(".dpp-pulse-submit").click()
    page.locator(
        "#dpp-pulse-confirmation", has_text="replace the answers you sent earlier"
    ).wait_for()
    rows = _rows(site)
    assert len(rows) == 1
    assert (rows[0].pace_score, rows[0].tooling_score, rows[0].clarity_score) == (1, 1, 3)
    assert rows[0].free_text is None
    assert rows[0].respondent_hash == row.respondent_hash
    _done(recorded)


def test_outside_the_window_the_form_is_not_offered(browser: Browser, site: SurveySite) -> None:
    _set_window(site, today_inside=False)
    recorded = _open(browser, site, site.member)
    page = recorded.page
    closed = page.locator("#dpp-pulse-closed").inner_text()
    assert "closed right now" in closed and "opens on" in closed
    assert page.locator(".dpp-pulse-submit").count() == 0
    _screenshot(page, site, "pulse-survey-closed.png")
    _done(recorded)


def test_a_viewer_is_refused_with_a_message(browser: Browser, site: SurveySite) -> None:
    _set_window(site, today_inside=True)
    recorded = _open(browser, site, site.viewer)
    page = recorded.page
    message = page.locator("#dpp-pulse-not-allowed").inner_text()
    assert "team_member" in message and "viewer: delivery stream payments" in message
    assert page.locator(".dpp-pulse-submit").count() == 0
    _done(recorded)
