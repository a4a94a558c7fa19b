"""The Cross-stream page in a real browser (Debian Chromium through Playwright), through the
front door, on a copy of the demo organisation: every zone shows a chart or an explicit empty
state, with no console error and no request leaving the machine; the heatmap's table and the
root-cause signal equal the API's ``/metrics/cross-stream`` answer for the same ``as_of``;
choosing a tech stream updates the URL and the impact analysis (equal to the API's answer for
that tech stream); a viewer scoped to one delivery and one tech stream sees only those, and a
hand-edited URL for another tech stream gets the access message, not data.

One Voila (serving only this page, two preheated kernels) + API site and one browser for the
module."""

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

from dpp_lib.auth.roles import grant_role
from dpp_lib.dashboards.voila import VoilaServer
from dpp_lib.settings import ensure_secrets
from dpp_lib.store.db import make_engine
from dpp_lib.views.common import load_org
from dpp_lib.widgets.cross_stream_sections import fmt, names
from ingest_service.runtime import free_port, running_api
from tests.conftest import DEMO_AS_OF, DemoOrg
from tests.dashboards.conftest import CHROMIUM, CHROMIUM_ARGS, SignedIn, make_user
from tests.support import ROOT

pytestmark = pytest.mark.slow

TIMEOUT_MS = 90_000
NOTEBOOK = "cross_stream.ipynb"
PAGE = f"/dashboards/voila/render/{NOTEBOOK}"
ZONES = ("root-cause", "heatmap", "impact")


@dataclass(frozen=True)
class CrossSite:
    base: str
    var_dir: Path
    admin: SignedIn  # platform admin: every stream
    lena: SignedIn  # viewer of the lending delivery stream and the infra tech stream


@dataclass
class Recorded:
    page: Page
    requests: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)

    def hosts(self) -> set[str]:
        return {urlsplit(u).hostname or "" for u in self.requests if not u.startswith("data:")}


@pytest.fixture(scope="module")
def site(demo_sqlite: DemoOrg, tmp_path_factory: pytest.TempPathFactory) -> Iterator[CrossSite]:
    base = tmp_path_factory.mktemp("cross-stream")
    shutil.copy(Path(demo_sqlite.url.removeprefix("sqlite:///")), base / "dpp.sqlite3")
    url = f"sqlite:///{base / 'dpp.sqlite3'}"
    pages = base / "dashboards"  # only this page: Voila preheats kernels for every notebook
    pages.mkdir()
    (pages / NOTEBOOK).symlink_to(ROOT / "notebooks" / "dashboards" / NOTEBOOK)
    engine = make_engine(url)
    with engine.begin() as conn:
        org = load_org(conn)
        delivery = {s.name: s.stream_id for s in org.delivery}
        tech = {s.name: s.stream_id for s in org.tech}
        admin = make_user(conn, "Ada Admin", ("platform_admin", None))
        lena = make_user(conn, "Lena Lending", ("viewer", delivery["lending"]))
        grant_role(
            conn, user_id=lena.user_id, role="viewer", tech_stream_id=tech["infra"], actor=None
        )
    engine.dispose()
    shutil.copytree(demo_sqlite.settings.secrets_dir, base / "secrets")
    settings = demo_sqlite.settings.model_copy(
        update={
            "database_url": url,
            "var_dir": base,
            "secrets_dir": base / "secrets",
            "api_compute_in": "threads",
            "voila_port": free_port(),
            "voila_pool_size": 2,
            "dashboards_dir": pages,
        }
    )
    ensure_secrets(settings)
    with VoilaServer(settings), running_api(settings) as api:
        yield CrossSite(api, base, admin, lena)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield chromium
        chromium.close()


def _open(browser: Browser, site: CrossSite, user: SignedIn, query: str) -> Recorded:
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


def _close(recorded: Recorded) -> None:
    assert recorded.console_errors == []
    assert recorded.hosts() == {"127.0.0.1"}, sorted(recorded.requests)
    recorded.page.close(run_before_unload=True)
    recorded.page.context.close()


def _screenshot(page: Page, site: CrossSite, name: str) -> None:
    # Voila scrolls inside the page: make the window as tall as the page to shoot it whole.
    page.set_viewport_size({"width": 1280, "height": 6000})
    bottom = page.evaluate(
        "() => Math.max(...[...document.querySelectorAll('.dpp-page, .dpp-message')]"
        ".map(e => e.getBoundingClientRect().bottom))"
    )
    page.set_viewport_size({"width": 1280, "height": int(bottom) + 40})
    path = site.var_dir / name
    page.screenshot(path=path, full_page=True)
    page.set_viewport_size({"width": 1280, "height": 1000})
    target = os.environ.get("DPP_SCREENSHOTS_DIR")
    if target:
        Path(target).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(target) / name)


def _api(page: Page, site: CrossSite, **params: str) -> dict[str, Any]:
    answer = page.request.get(f"{site.base}/api/v1/metrics/cross-stream", params=params)
    assert answer.ok, answer.text()
    data: dict[str, Any] = answer.json()["data"]
    return data


def _expected_rows(answer: dict[str, Any]) -> list[list[str]]:
    """The API's rows as the page's table writes them."""
    return [
        [
            r["tech_stream"],
            r["severity"],
            str(r["block_count_14d"]),
            str(r["blocked_ticket_count"]),
            f"{r['impacted_stream_count']}: "
            + names(
                r["impacted_delivery_streams"],
                r["impacted_stream_count"] - len(r["impacted_delivery_streams"]),
            ),
            names(r["blocked_delivery_streams"]),
            fmt(r["avg_confidence_pct"], unit="%"),
            fmt(r["avg_cycle_time_p85"], unit=" d"),
        ]
        for r in answer["correlations"]
    ]


def _shown_rows(page: Page, table: str = "#dpp-cross-table") -> list[list[str]]:
    return [
        [c.replace("\xa0", " ") for c in r.locator("td").all_inner_texts()]
        for r in page.locator(f"{table} tr").all()[1:]
    ]


def _tile(page: Page, key: str) -> str:
    return page.locator(f"#dpp-tile-{key} .dpp-value").inner_text()


def test_every_zone_draws_offline_with_the_apis_answer_and_follows_the_tech_stream(
    browser: Browser, site: CrossSite
) -> None:
    recorded = _open(browser, site, site.admin, f"?as_of={DEMO_AS_OF}")
    page = recorded.page
    for zone in ZONES:
        box = page.locator(f".dpp-zone-{zone}")
        assert box.is_visible(), zone
        # Widgets (buttons, rows) are drawn after the page's HTML: wait for them.
        expect(
            box.locator("svg, .dpp-empty, .dpp-root-cause").first,
            f"zone {zone} shows neither a chart nor an empty state",
        ).to_be_attached(timeout=TIMEOUT_MS)
    assert page.locator("#dpp-chart-heatmap svg").count() == 1
    api = _api(page, site, as_of=DEMO_AS_OF)
    assert api["correlations"], "the demo organisation has cross-stream blocks"
    assert _shown_rows(page) == _expected_rows(api)
    # The root-cause signal is the API's top tech stream, and the impact analysis is its own.
    top = api["top_tech_stream"]
    assert top is not None
    assert top["name"] in page.locator("#dpp-root-cause strong").inner_text()
    row = next(r for r in api["correlations"] if r["tech_stream_id"] == top["id"])
    assert (
        f"({top['name']}) — the root-cause signal"
        in page.locator("#dpp-impact-heading").inner_text()
    )
    assert _tile(page, "impact-blocks") == str(row["block_count_14d"])
    assert _tile(page, "impact-confidence") == fmt(row["avg_confidence_pct"], unit="%")
    shown = page.locator("#dpp-impact-table tr[data-stream]").evaluate_all(
        "rows => rows.map(r => r.dataset.stream)"
    )
    assert shown == [s["name"] for s in row["impacted_delivery_streams"]]
    _screenshot(page, site, "cross-stream.png")
    _choose_a_tech_stream(page, site)
    _close(recorded)


def _choose_a_tech_stream(page: Page, site: CrossSite) -> None:
    """Choosing a tech stream updates the URL and the impact analysis (the API's answer)."""
    before = page.locator("#dpp-impact-heading").inner_text()
    page.locator(".dpp-filter-tech select").select_option(label="Core API (core-api)")
    page.locator('#dpp-rendered[data-state*="tech_stream=core-api"]').wait_for(state="attached")
    assert parse_qs(urlsplit(page.url).query) == {
        "tech_stream": ["core-api"],
        "as_of": [DEMO_AS_OF],
    }
    heading = page.locator("#dpp-impact-heading").inner_text()
    assert heading != before and "(core-api) — selected" in heading
    api = _api(page, site, tech_stream="core-api", as_of=DEMO_AS_OF)
    (row,) = api["correlations"]
    assert _tile(page, "impact-severity") == row["severity"]
    assert _tile(page, "impact-blocks") == str(row["block_count_14d"])
    assert _tile(page, "impact-streams") == str(row["impacted_stream_count"])
    assert _tile(page, "impact-p85") == fmt(row["avg_cycle_time_p85"], unit=" d")
    # The heatmap still shows every tech stream, the selected one in bold.
    assert len(_shown_rows(page)) == len(_api(page, site, as_of=DEMO_AS_OF)["correlations"])
    bold = page.locator('#dpp-chart-heatmap svg text[font-weight="bold"]').all_text_contents()
    assert "core-api" in bold and "infra" not in bold


def test_a_scoped_viewer_sees_only_their_streams(browser: Browser, site: CrossSite) -> None:
    recorded = _open(browser, site, site.lena, f"?as_of={DEMO_AS_OF}")
    page = recorded.page
    options = {
        kind: [
            o.replace("\xa0", " ")
            for o in page.locator(f".dpp-filter-{kind} select option").all_inner_texts()
        ]
        for kind in ("delivery", "tech")
    }
    assert options == {
        "delivery": ["All delivery streams", "Lending (lending)"],
        "tech": ["All tech streams", "Infrastructure (infra)"],
    }
    api = _api(page, site, as_of=DEMO_AS_OF)  # what the API gives Lena
    assert [r["tech_stream"] for r in api["correlations"]] == ["infra"]
    assert _shown_rows(page) == _expected_rows(api)
    assert "insights" not in page.locator(".dpp-zone-heatmap").inner_text()
    _screenshot(page, site, "cross-stream-scoped.png")
    _close(recorded)


def test_a_hand_edited_url_for_another_tech_stream_shows_the_access_message(
    browser: Browser, site: CrossSite
) -> None:
    recorded = _open(browser, site, site.lena, f"?tech_stream=core-api&as_of={DEMO_AS_OF}")
    page = recorded.page
    assert (
        "You do not have access to the stream 'core-api'" in page.get_by_role("alert").inner_text()
    )
    assert page.locator(".dpp-zone").evaluate_all("zones => zones.every(z => !z.offsetParent)")
    assert page.locator("#dpp-cross-table, .dpp-chart, .dpp-tile").count() == 0
    _close(recorded)
