"""OIDC sign-in in a real browser (Playwright on Debian Chromium): the API under uvicorn on
loopback with ``AUTH_METHOD=oidc``, a real OpenID provider (npm oidc-provider) and Voila
behind the front door. A dashboard page without a session leads to ``/login``, then to the
provider's login and consent pages, back to ``/auth/callback`` and on to the dashboard,
which shows only the stream the user's group maps to."""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from playwright.sync_api import Browser, Page, sync_playwright

from dpp_lib.auth.roles import map_group
from dpp_lib.dashboards.voila import VoilaServer
from dpp_lib.settings import Settings
from dpp_lib.store.schema import audit_log, delivery_streams
from ingest_service.runtime import free_port
from tests.auth.oidc_support import (
    CLIENT_ID,
    CLIENT_SECRET,
    IN_CI,
    ROOT,
    client_registration,
    reserve_port,
    run_provider,
    serving,
)

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
DASHBOARD = "/dashboards/voila/render/whoami.ipynb?stream=payments"

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not (os.path.exists(CHROMIUM) and shutil.which(CHROMIUM)):
        reason = f"{CHROMIUM} is missing; `make browser` installs Debian's chromium"
        if IN_CI:
            pytest.fail(reason)
        pytest.skip(reason)
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


def map_payments_leads(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        payments = conn.execute(
            sa.select(delivery_streams.c.stream_id).where(delivery_streams.c.name == "payments")
        ).scalar_one()
        map_group(
            conn,
            group_pattern="dpp-payments-leads",
            role="viewer",
            delivery_stream_id=payments,
            actor=None,
        )


def test_sign_in_through_the_provider_to_a_dashboard(
    settings: Settings, org: sa.Engine, browser: Browser, tmp_path: Path
) -> None:
    map_payments_leads(org)
    sock = reserve_port()
    origin = f"http://127.0.0.1:{sock.getsockname()[1]}"
    clients = [client_registration(CLIENT_ID, CLIENT_SECRET, [f"{origin}/auth/callback"])]
    (settings.secrets_dir / "oidc_client_secret").write_text(CLIENT_SECRET)
    (settings.secrets_dir / "session_key").write_text("session-key-for-the-oidc-browser-test")
    with run_provider(tmp_path / "provider", clients=clients) as provider:
        app_settings = settings.model_copy(
            update={
                "auth_method": "oidc",
                "oidc_issuer_url": provider.issuer,
                "oidc_client_id": CLIENT_ID,
                "oidc_redirect_uri": f"{origin}/auth/callback",
                "dashboards_enabled": True,
                "voila_port": free_port(),
                "voila_pool_size": 0,
                "dashboards_dir": ROOT / "notebooks" / "dashboards",
            }
        )
        with VoilaServer(app_settings), serving(app_settings, sock) as base:
            assert base == origin
            page = browser.new_page()
            # A cold kernel (no pool) on a loaded CI machine: the redirect to the page can
            # take longer than Playwright's 30 s default.
            page.set_default_timeout(90_000)
            try:
                visited = walk_through_sign_in(page, base, provider.issuer)
                assert f"{base}/login?next=" in visited[1]
                assert visited[2].startswith(f"{base}/login/oidc?next=")
                assert any(u.startswith(f"{base}/auth/callback?") for u in visited)

                # signed in: the dashboard shows the user's stream only
                page.wait_for_selector("#dpp-delivery-streams")
                assert page.url == base + DASHBOARD
                assert page.locator("#dpp-delivery-streams").inner_text().strip() == "payments"

                page.goto(f"{base}/auth/me")
                me = json.loads(page.locator("body").inner_text())["data"]
                assert me["user"]["email"] == "pat.payments@example.com"
                assert me["session"]["auth_method"] == "oidc"
                assert [(r["role"], r["source"]) for r in me["roles"]] == [("viewer", "group")]
                assert [s["name"] for s in me["delivery_streams"]] == ["payments"]
            finally:
                page.close()
    with org.connect() as conn:
        actions = conn.execute(
            sa.select(audit_log.c.action, audit_log.c.details).where(
                audit_log.c.action.like("login.%")
            )
        ).all()
    assert [(a.action, a.details["method"]) for a in actions] == [("login.success", "oidc")]


def walk_through_sign_in(page: Page, base: str, issuer: str) -> list[str]:
    """Open the dashboard without a session and sign in at the provider as Pat; returns
    the URLs the browser navigated to (main frame)."""
    visited: list[str] = []
    page.on(
        "request",
        lambda request: (
            visited.append(request.url)
            if request.is_navigation_request() and request.frame == page.main_frame
            else None
        ),
    )
    page.goto(base + DASHBOARD)
    assert page.url.startswith(f"{issuer}/interaction/")
    assert page.locator("input[name=login]").is_visible()  # the provider's sign-in form
    page.fill("input[name=login]", "pat")
    page.fill("input[name=password]", "any password")
    page.click("button[type=submit]")
    page.wait_for_selector("input[name=prompt][value=consent]", state="attached")
    assert page.url.startswith(f"{issuer}/interaction/")
    page.click("button[type=submit]")  # the consent page's "Continue"
    page.wait_for_url(re.compile(re.escape(base) + "/dashboards/"))
    return visited
