"""Each published report, and the index, opened from a file:// URL in headless Chromium:
every chart the report declares is drawn with marks, nothing is requested but the file
itself, no console error, no code cell."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from tests.dashboards.conftest import CHROMIUM, CHROMIUM_ARGS
from tests.reports.conftest import LENDING, PAYMENTS, Published

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


class Watched:
    """A page with every request and every console error recorded."""

    def __init__(self, browser: Browser) -> None:
        self.page: Page = browser.new_page(viewport={"width": 1100, "height": 900})
        self.requests: list[str] = []
        self.errors: list[str] = []
        self.page.on("request", lambda r: self.requests.append(r.url))
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))


@pytest.mark.parametrize("page_path", [PAYMENTS, LENDING])
def test_a_report_renders_every_chart_offline(
    published: Published, browser: Browser, page_path: str
) -> None:
    url = (published.root / page_path).as_uri()
    w = Watched(browser)
    w.page.goto(url, wait_until="load")

    declared = int(w.page.locator('meta[name="dpp-report-charts"]').get_attribute("content") or 0)
    assert declared == published.report(page_path).charts
    assert declared >= 6  # a demo sprint has data for burn-up, cycle time, queues, WIP, ...
    charts = w.page.locator(".dpp-chart > svg")
    assert charts.count() == declared
    for i in range(declared):
        chart = charts.nth(i)
        box = chart.bounding_box()
        assert box is not None and box["width"] > 100 and box["height"] > 50
        assert chart.locator("g.role-mark > *").count() > 0, f"chart {i} has no marks"

    assert w.page.locator(".jp-InputArea-editor, .jp-InputPrompt, .jp-OutputPrompt").count() == 0
    body = w.page.inner_text("body")
    assert "sections.outcome" not in body and "import" not in body
    assert "What stands out" in body and "Items spent" in body
    assert w.requests == [url]
    assert w.errors == []
    w.page.close()


def test_the_index_lists_both_reports_with_working_relative_links(
    published: Published, browser: Browser
) -> None:
    url = (published.root / "index.html").as_uri()
    w = Watched(browser)
    w.page.goto(url, wait_until="load")
    links = w.page.locator("a")
    hrefs = [links.nth(i).get_attribute("href") for i in range(links.count())]
    assert hrefs == [LENDING, PAYMENTS]  # by stream display name: Lending, Payments
    w.page.click(f'a[href="{PAYMENTS}"]')
    w.page.wait_for_load_state("load")
    assert w.page.url == (published.root / PAYMENTS).as_uri()
    assert "PAY Sprint 105" in w.page.title()
    assert w.requests == [url, w.page.url]
    assert w.errors == []
    w.page.close()
