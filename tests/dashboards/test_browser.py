"""The front door in a real browser (Debian Chromium through Playwright): sign-in redirect,
the whoami page with its kernel over the proxied WebSocket, no console error, no request
leaving the machine, and the access message for a hand-edited URL."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from dpp_lib.auth.roles import principal_for_user
from dpp_lib.dashboards import data
from tests.dashboards.conftest import CHROMIUM, CHROMIUM_ARGS, PASSWORD, SignedIn, Site

pytestmark = pytest.mark.slow

LOOPBACK = {"127.0.0.1"}
TIMEOUT_MS = 90_000


@dataclass
class Recorded:
    page: Page
    requests: list[str] = field(default_factory=list)
    websockets: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)

    def hosts(self) -> set[str]:
        return {urlsplit(u).hostname or "" for u in self.requests + self.websockets}


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield chromium
        chromium.close()


def _open(browser: Browser, site: Site, user: SignedIn | None) -> Recorded:
    context = browser.new_context()
    if user is not None:
        context.add_cookies([{"name": "dpp_session", "value": user.token, "url": site.base}])
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    recorded = Recorded(page)
    page.on("request", lambda r: recorded.requests.append(r.url))
    page.on("websocket", lambda ws: recorded.websockets.append(ws.url))
    page.on(
        "console", lambda m: recorded.console_errors.append(m.text) if m.type == "error" else None
    )
    page.on("pageerror", lambda e: recorded.console_errors.append(str(e)))
    return recorded


def test_without_a_session_login_leads_back_to_the_page(browser: Browser, site: Site) -> None:
    recorded = _open(browser, site, None)
    page = recorded.page
    page.goto(site.page("?stream=payments"))
    address = urlsplit(page.url)
    assert address.path == "/login"
    assert "next=/dashboards/voila/render/whoami.ipynb" in address.query
    page.get_by_label("Email address").fill(site.ann.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.locator("#dpp-user").wait_for()
    assert page.url == site.page("?stream=payments")
    assert "Ann Payments" in page.locator("#dpp-user").inner_text()
    assert page.locator("#dpp-stream-figure").count() == 1
    assert recorded.hosts() == LOOPBACK
    page.context.close()


def test_a_signed_in_user_sees_whoami_and_the_kernel_answers(browser: Browser, site: Site) -> None:
    recorded = _open(browser, site, site.ann)
    page = recorded.page
    page.goto(site.page("?stream=payments"))
    user = page.locator("#dpp-user")
    user.wait_for()
    assert "Ann Payments" in user.inner_text()
    assert page.locator("#dpp-delivery-streams li").all_inner_texts() == ["payments"]
    figure = page.locator("#dpp-stream-figure").inner_text()
    with site.engine.connect() as conn:
        principal = principal_for_user(conn, site.ann.user_id)
        assert principal is not None
        wip = data.stream_wip(conn, principal, "payments", as_of=datetime.now(UTC))
    assert figure.startswith(f"Work in progress: {wip.wip_total} items")
    # The widget's click travels to the kernel and back over the proxied WebSocket.
    page.get_by_role("button", name="Ask the kernel").click()
    page.get_by_text("The kernel answered.").wait_for()
    assert any("/dashboards/api/kernels/" in u for u in recorded.websockets)
    page.screenshot(path=site.settings.var_dir / "whoami.png", full_page=True)
    assert recorded.console_errors == []
    assert recorded.hosts() == LOOPBACK, sorted(recorded.requests)
    page.context.close()


def test_a_hand_edited_url_shows_the_access_message(browser: Browser, site: Site) -> None:
    recorded = _open(browser, site, site.ann)
    page = recorded.page
    page.goto(site.page("?stream=lending"))
    message = page.get_by_role("alert")
    message.wait_for()
    assert "You do not have access to the stream 'lending'" in message.inner_text()
    page.get_by_role("button", name="Ask the kernel").wait_for()  # the page has finished
    assert page.locator("#dpp-stream-figure").count() == 0
    assert page.get_by_text("Work in progress").count() == 0
    page.screenshot(path=site.settings.var_dir / "whoami-denied.png", full_page=True)
    assert recorded.console_errors == []
    assert recorded.hosts() == LOOPBACK
    page.context.close()
