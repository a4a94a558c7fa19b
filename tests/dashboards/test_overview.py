"""The Overview page in a real browser (Debian Chromium through Playwright), through the front
door, on the demo organisation: every zone shows a chart or an explicit empty state, with no
console error and no request leaving the machine; a filter change redraws and updates the
URL, which restores the same view; a viewer of one stream sees only it, and a hand-edited
URL for another stream gets the access message, not data; the figures equal the API's.

One Voila + API site and one browser for the module. Voila serves only the overview notebook
and preheats two kernels for it, so pages opened one after another do not wait for a kernel
to start (every notebook of the folder would get a pool of its own)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from dpp_lib.dashboards.voila import VoilaServer
from dpp_lib.settings import ensure_secrets
from dpp_lib.store.db import make_engine
from dpp_lib.views.common import load_org
from dpp_lib.widgets.overview_signals import fmt
from ingest_service.runtime import free_port, running_api
from tests.conftest import DEMO_AS_OF, DemoOrg
from tests.dashboards.conftest import CHROMIUM, CHROMIUM_ARGS, SignedIn, Site, make_user
from tests.support import ROOT

pytestmark = pytest.mark.slow

TIMEOUT_MS = 150_000  # a loaded machine; the module takes ~40 s on an idle one
PAGE = "/dashboards/voila/render/overview.ipynb"
ZONES = ("summary", "realtime", "diagnostic", "trend", "forecast", "health")


@dataclass
class Recorded:
    page: Page
    requests: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)

    def hosts(self) -> set[str]:
        """Hosts of every request the page made (data: URLs of inline images excluded)."""
        return {urlsplit(u).hostname or "" for u in self.requests if not u.startswith("data:")}


@pytest.fixture(scope="module")
def site(demo_sqlite: DemoOrg, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    base = tmp_path_factory.mktemp("overview")
    shutil.copy(Path(demo_sqlite.url.removeprefix("sqlite:///")), base / "dpp.sqlite3")
    url = f"sqlite:///{base / 'dpp.sqlite3'}"
    engine = make_engine(url)
    with engine.begin() as conn:
        streams = {s.name: s.stream_id for s in load_org(conn).delivery}
        ann = make_user(conn, "Ann Payments", ("viewer", streams["payments"]))
        bob = make_user(conn, "Bob Lending", ("viewer", streams["lending"]))
        admin = make_user(conn, "Ada Admin", ("platform_admin", None))
    shutil.copytree(demo_sqlite.settings.secrets_dir, base / "secrets")
    # Voila preheats a kernel pool for every notebook of its folder: serve this one only.
    notebooks = base / "notebooks"
    notebooks.mkdir()
    shutil.copy(ROOT / "notebooks" / "dashboards" / "overview.ipynb", notebooks)
    settings = demo_sqlite.settings.model_copy(
        update={
            "database_url": url,
            "var_dir": base,
            "secrets_dir": base / "secrets",
            "api_compute_in": "threads",
            "voila_port": free_port(),
            "voila_pool_size": 2,
            "dashboards_dir": notebooks,
        }
    )
    ensure_secrets(settings)
    with VoilaServer(settings) as voila, running_api(settings) as api:
        yield Site(api, voila, settings, engine, streams, ann, bob, admin)
    engine.dispose()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield chromium
        chromium.close()


def _open(browser: Browser, site: Site, user: SignedIn, query: str) -> Recorded:
    """A new signed-in page at the overview with ``query``, once its figures are drawn."""
    context = browser.new_context(viewport={"width": 1280, "height": 1000})
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
    page.goto(f"{site.base}{PAGE}{query}")
    page.locator("#dpp-rendered").wait_for(state="attached")
    return recorded


def _close(page: Page) -> None:
    """Close like a person leaving: the page's unload handler shuts its kernel down."""
    page.close(run_before_unload=True)
    page.context.close()


def _screenshot(page: Page, site: Site, name: str) -> None:
    # Voila scrolls inside the page: make the window as tall as the page to shoot it whole.
    page.set_viewport_size({"width": 1280, "height": 6000})
    bottom = page.locator(".dpp-page").evaluate("p => p.getBoundingClientRect().bottom")
    page.set_viewport_size({"width": 1280, "height": int(bottom) + 40})
    path = site.settings.var_dir / name
    page.screenshot(path=path, full_page=True)
    page.set_viewport_size({"width": 1280, "height": 1000})
    target = os.environ.get("DPP_SCREENSHOTS_DIR")
    if target:
        Path(target).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(target) / name)


def _api(page: Page, site: Site, path: str, **params: str) -> dict[str, Any]:
    """The metrics API's answer for the page's user (the same session cookie)."""
    query: dict[str, str | float | bool] = dict(params)
    answer = page.request.get(f"{site.base}/api/v1/metrics/{path}", params=query)
    assert answer.ok, answer.text()
    data: dict[str, Any] = answer.json()["data"]
    return data


def _query(page: Page) -> dict[str, list[str]]:
    return parse_qs(urlsplit(page.url).query)


def _text(page: Page, selector: str) -> str:
    return page.locator(selector).inner_text().replace("\xa0", " ")


def _options(page: Page, selector: str) -> list[str]:
    return [o.replace("\xa0", " ") for o in page.locator(f"{selector} option").all_inner_texts()]


@pytest.fixture(scope="module")
def admin_page(browser: Browser, site: Site) -> Iterator[Recorded]:
    """The platform admin's overview of payments at the demo's as_of (the first test reads
    it as loaded; the second changes its filters)."""
    recorded = _open(browser, site, site.admin, f"?stream=payments&as_of={DEMO_AS_OF}")
    yield recorded
    _close(recorded.page)


def test_every_zone_draws_offline_with_the_apis_figures(admin_page: Recorded, site: Site) -> None:
    page = admin_page.page
    for zone in ZONES:
        box = page.locator(f".dpp-zone-{zone}")
        assert box.is_visible(), zone
        # Widgets (buttons, rows) are drawn after the page's HTML: wait for them.
        expect(
            box.locator("svg, .dpp-empty, .dpp-tile").first,
            f"zone {zone} shows neither a chart nor an empty state",
        ).to_be_attached(timeout=TIMEOUT_MS)
    assert page.locator(".dpp-zone figure svg").count() >= 6
    # The figures equal the API's for the same stream and as_of.
    api = _api(page, site, "realtime", stream="payments", as_of=DEMO_AS_OF)
    assert (
        _text(page, "#dpp-tile-cycle-time-p85 .dpp-value") == f"{fmt(api['cycle_time']['p85'])} d"
    )
    assert _text(page, "#dpp-chart-wip figcaption").startswith(
        f"{api['wip_total']} items in progress"
    )
    confidence = api["sprint_confidence"]
    shown = _text(page, "#dpp-tile-sprint-confidence")
    if confidence["confidence_pct"] is None:
        assert confidence["reason"] in shown  # the demo has no sprint snapshot: say why
    else:
        assert f"{fmt(confidence['confidence_pct'], 0)}%" in shown
    outliers = _text(page, "#dpp-chart-cycle-time figcaption")
    assert api["outliers"] and all(name in outliers for name in api["outliers"])
    diagnostic = _api(page, site, "diagnostic", stream="payments", as_of=DEMO_AS_OF, window="30")
    assert _text(page, "#dpp-tile-flow-efficiency .dpp-value") == (
        f"{fmt(diagnostic['flow_efficiency']['percentage'])}%"
    )
    # Tech streams below their data-quality targets mark the DORA figures (spec §5.6).
    badge = _text(page, "#dpp-tile-deployment-frequency .dpp-reduced-confidence")
    assert badge.startswith("Reduced confidence: ") and "(target ≥ " in badge
    _screenshot(page, site, "overview.png")
    assert admin_page.console_errors == []
    assert admin_page.hosts() == {"127.0.0.1"}, sorted(admin_page.requests)


def test_a_filter_change_redraws_and_the_url_restores_the_view(
    admin_page: Recorded, browser: Browser, site: Site
) -> None:
    page = admin_page.page
    before = page.locator("#dpp-chart-wip svg").inner_html()
    page.locator(".dpp-filter-delivery select").select_option(label="Lending (lending)")
    page.locator('#dpp-rendered[data-state*="stream=lending"]').wait_for(state="attached")
    assert page.locator("#dpp-chart-wip svg").inner_html() != before
    lending = _api(page, site, "realtime", stream="lending", as_of=DEMO_AS_OF)
    caption = _text(page, "#dpp-chart-wip figcaption")
    assert caption.startswith(f"{lending['wip_total']} items in progress")
    assert _query(page) == {"stream": ["lending"], "as_of": [DEMO_AS_OF]}
    # A zone toggle hides its zone and goes into the URL too.
    page.locator(".dpp-zone-toggle-forecast").click()
    page.locator('#dpp-rendered[data-state*="zones="]').wait_for(state="attached")
    assert not page.locator(".dpp-zone-forecast").is_visible()
    assert _query(page)["zones"] == ["realtime,diagnostic,trend,health"]
    bookmarked = page.url
    assert urlsplit(bookmarked).path == PAGE
    assert admin_page.console_errors == []
    # Opening the bookmarked URL restores the same view.
    again = _open(browser, site, site.admin, "?" + urlsplit(bookmarked).query)
    shown = again.page
    assert _text(shown, ".dpp-filter-delivery select option:checked") == "Lending (lending)"
    assert not shown.locator(".dpp-zone-forecast").is_visible()
    assert "mod-active" not in (
        shown.locator(".dpp-zone-toggle-forecast").get_attribute("class") or ""
    )
    assert "mod-active" in (shown.locator(".dpp-zone-toggle-trend").get_attribute("class") or "")
    assert _text(shown, "#dpp-chart-wip figcaption") == caption
    assert again.console_errors == []
    _close(shown)


def test_a_viewer_of_one_stream_sees_only_it_and_no_other_streams_data(
    browser: Browser, site: Site
) -> None:
    # Ann may see payments only; she hand-edits the URL to lending.
    recorded = _open(browser, site, site.ann, f"?stream=lending&as_of={DEMO_AS_OF}")
    page = recorded.page
    message = page.get_by_role("alert")
    assert "You do not have access to the stream 'lending'" in message.inner_text()
    assert page.locator(".dpp-zone").evaluate_all("zones => zones.every(z => !z.offsetParent)")
    assert page.locator(".dpp-chart, .dpp-tile").count() == 0
    assert page.get_by_text("items in progress").count() == 0
    assert page.locator(".dpp-filter-delivery select option:checked").count() == 0
    _screenshot(page, site, "overview-denied.png")
    # Her stream lists hold only what she may see; picking her stream shows its figures.
    assert _options(page, ".dpp-filter-delivery select") == [
        "All delivery streams",
        "Payments (payments)",
    ]
    assert _options(page, ".dpp-filter-tech select") == ["All tech streams"]
    page.locator(".dpp-filter-delivery select").select_option(label="Payments (payments)")
    page.locator('#dpp-rendered[data-state*="stream=payments"]').wait_for(state="attached")
    assert page.get_by_role("alert").count() == 0
    api = _api(page, site, "realtime", stream="payments", as_of=DEMO_AS_OF)
    assert _text(page, "#dpp-chart-wip figcaption").startswith(
        f"{api['wip_total']} items in progress"
    )
    assert "your roles cover none" in _text(page, "#dpp-empty-dora")  # no tech stream role
    assert recorded.console_errors == []
    assert recorded.hosts() == {"127.0.0.1"}, sorted(recorded.requests)
    _close(page)
