"""The Admin page in a real browser (Debian Chromium through Playwright), through the front
door, on a writable copy of the demo organisation with three dead letters added: every zone
shows a chart, a table or an explicit empty state, with no console error and no request
leaving the machine; the data-quality rates and integration health equal the API's; a
signed-in user without the platform_admin role gets the access message and no data; the
manual link links a pull request (database and audit row naming the admin) and requeue moves
dead letters back to pending, one or all (audited).

One Voila (serving only this page, two preheated kernels) + API site and one browser for the
module. The action tests write to the module's copy, so they run after the read-only ones.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa
from playwright.sync_api import Browser, Page, expect, sync_playwright

from dpp_lib.access import Principal
from dpp_lib.charts.admin import RATE_LABELS
from dpp_lib.dashboards.admin import unlinked_prs
from dpp_lib.dashboards.overview import Window
from dpp_lib.dashboards.voila import VoilaServer
from dpp_lib.errors import DppError
from dpp_lib.settings import ensure_secrets
from dpp_lib.store import audit
from dpp_lib.store.config_tables import load_lookups
from dpp_lib.store.db import make_engine
from dpp_lib.store.pr_links import check_ticket_key
from dpp_lib.store.schema import audit_log, pr_events, raw_events, work_item_events
from dpp_lib.store.types import now_utc
from dpp_lib.widgets.admin_sections import pct, pr_label
from ingest_service.runtime import free_port, running_api
from tests.conftest import DEMO_AS_OF, DemoOrg
from tests.dashboards.conftest import CHROMIUM, CHROMIUM_ARGS, SignedIn, make_user
from tests.support import ROOT

pytestmark = pytest.mark.slow

TIMEOUT_MS = 90_000
NOTEBOOK = "admin.ipynb"
PAGE = f"/dashboards/voila/render/{NOTEBOOK}"
ZONES = ("quality", "health", "unlinked", "config", "dead")
RATES = {
    "pr_linkage": "prLinkageRate",
    "ticket_tagging": "ticketTaggingRate",
    "deployment_traceability": "deploymentTraceability",
    "defect_attribution": "defectAttributionRate",
    "pulse_response": "pulseResponseRate",
}
CONFIG_FILE = "config/example.yaml"


@dataclass(frozen=True)
class AdminSite:
    base: str
    var_dir: Path
    engine: sa.Engine
    admin: SignedIn
    viewer: SignedIn  # viewer of every stream, not an admin
    dead: tuple[int, ...]  # the dead letters' ids, oldest first


@dataclass
class Recorded:
    page: Page
    requests: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)

    def hosts(self) -> set[str]:
        return {urlsplit(u).hostname or "" for u in self.requests if not u.startswith("data:")}


def _dead_letters(conn: sa.Connection, n: int) -> tuple[int, ...]:
    received = now_utc() - timedelta(hours=3)
    ids = []
    for i in range(n):
        ids.append(
            conn.execute(
                raw_events.insert()
                .values(
                    source="github",
                    delivery_id=f"dead-{i}-{uuid.uuid4()}",
                    event_kind="pull_request",
                    headers={},
                    body=b"{}",
                    body_sha256="0" * 64,
                    received_at=received + timedelta(minutes=i),
                    state="dead",
                    attempts=8,
                    next_attempt_at=received,
                    last_error=f"KeyError: 'pull_request' (delivery {i})",
                )
                .returning(raw_events.c.id)
            ).scalar_one()
        )
    return tuple(ids)


@pytest.fixture(scope="module")
def site(demo_sqlite: DemoOrg, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AdminSite]:
    base = tmp_path_factory.mktemp("admin")
    shutil.copy(Path(demo_sqlite.url.removeprefix("sqlite:///")), base / "dpp.sqlite3")
    url = f"sqlite:///{base / 'dpp.sqlite3'}"
    pages = base / "dashboards"  # only this page: Voila preheats kernels for every notebook
    pages.mkdir()
    (pages / NOTEBOOK).symlink_to(ROOT / "notebooks" / "dashboards" / NOTEBOOK)
    engine = make_engine(url)
    with engine.begin() as conn:
        admin = make_user(conn, "Ada Admin", ("platform_admin", None))
        viewer = make_user(conn, "Vic Viewer", ("viewer", None))
        dead = _dead_letters(conn, 3)
        # As `dpp config load` records it (the demo's tables were loaded without the CLI).
        audit.record(
            conn,
            actor_type="cli",
            action="config.load",
            target_type="file",
            target_id=CONFIG_FILE,
            details={"settings": 5},
        )
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
        yield AdminSite(api, base, engine, admin, viewer, dead)
    engine.dispose()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield chromium
        chromium.close()


def _open(browser: Browser, site: AdminSite, user: SignedIn, query: str = "") -> Recorded:
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
    page.locator("#dpp-rendered, .dpp-message").first.wait_for(state="attached")
    return recorded


def _close(recorded: Recorded) -> None:
    assert recorded.console_errors == []
    assert recorded.hosts() == {"127.0.0.1"}, sorted(recorded.requests)
    recorded.page.close(run_before_unload=True)
    recorded.page.context.close()


def _screenshot(page: Page, site: AdminSite, name: str) -> None:
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


def _api(page: Page, site: AdminSite, path: str, **params: str) -> dict[str, Any]:
    answer = page.request.get(f"{site.base}/api/v1/admin/{path}", params=params)
    assert answer.ok, answer.text()
    data: dict[str, Any] = answer.json()["data"]
    return data


def _cells(page: Page, table: str) -> list[list[str]]:
    return [
        [c.replace("\xa0", " ") for c in r.locator("td").all_text_contents()]
        for r in page.locator(f"{table} tr").all()[1:]
    ]


def test_every_zone_draws_offline_with_the_apis_figures(browser: Browser, site: AdminSite) -> None:
    recorded = _open(browser, site, site.admin, f"?as_of={DEMO_AS_OF}")
    page = recorded.page
    for zone in ZONES:
        box = page.locator(f".dpp-zone-{zone}")
        assert box.is_visible(), zone
        # Widgets (buttons, rows) are drawn after the page's HTML: wait for them.
        expect(
            box.locator("svg, table, .dpp-empty, .dpp-dead-row").first,
            f"zone {zone} shows neither a chart, a table nor an empty state",
        ).to_be_attached(timeout=TIMEOUT_MS)
    quality = _api(page, site, "data-quality", as_of=DEMO_AS_OF, window="30")
    for name, api in RATES.items():
        shown = page.locator(f"#dpp-tile-rate-{name} .dpp-value").inner_text()
        assert shown == (pct(quality[api]) if quality[api] is not None else "—"), name
    stream_rates = {
        (r["stream"], rate): pct(v["value"])
        for r in quality["streams"]
        for rate, v in r["rates"].items()
    }
    table = _cells(page, "#dpp-quality-table")
    assert len(table) == len(stream_rates)
    labels = {label: rate for rate, label in RATE_LABELS.items()}
    assert {(r[0], labels[r[2]]): r[3] for r in table} == stream_rates
    health = _api(page, site, "integration-health")["integrations"]
    shown_health = {r[0]: r[1] for r in _cells(page, "#dpp-integrations-table")}
    assert shown_health == {name: i["status"] for name, i in health.items()}
    # The demo's unlinked PRs of the window, the config's source file, the dead letters.
    assert page.locator("#dpp-unlinked-table tr").count() > 1
    assert (
        page.locator(".dpp-link-pr select option").count()
        == page.locator("#dpp-unlinked-table tr").count() - 1
    )
    assert CONFIG_FILE in page.locator("#dpp-config-source").inner_text()
    assert page.locator("#dpp-config-mappings tr").count() > 1
    assert page.locator(".dpp-dead-row").count() == len(site.dead)
    _screenshot(page, site, "admin.png")
    _close(recorded)


def test_a_user_who_is_not_a_platform_admin_gets_the_access_message(
    browser: Browser, site: AdminSite
) -> None:
    recorded = _open(browser, site, site.viewer, f"?as_of={DEMO_AS_OF}")
    page = recorded.page
    assert "for platform administrators only" in page.get_by_role("alert").inner_text()
    assert page.locator(".dpp-zone, .dpp-filter-bar, table, svg.marks, .dpp-tile").count() == 0
    assert page.locator("#dpp-unlinked-summary, #dpp-unlinked-table, .dpp-dead-row").count() == 0
    _screenshot(page, site, "admin-denied.png")
    _close(recorded)


def _ticket_for(conn: sa.Connection, event_id: uuid.UUID) -> str:
    """A ticket of the demo that the PR's tech stream accepts."""
    lookups = load_lookups(conn)
    tech = conn.execute(
        sa.select(pr_events.c.tech_stream_id).where(pr_events.c.event_id == event_id)
    ).scalar_one()
    created = conn.execute(
        sa.select(work_item_events.c.ticket_id)
        .where(
            work_item_events.c.event_type == "created",
            work_item_events.c.delivery_stream_id.is_not(None),
        )
        .order_by(work_item_events.c.ticket_id)
    ).scalars()
    for key in created:
        try:
            check_ticket_key(key, lookups, tech_stream_id=tech)
        except DppError:
            continue
        return str(key)
    raise AssertionError("the demo has no ticket this PR's tech stream accepts")


def test_the_actions_link_a_pr_and_requeue_dead_letters_with_audit_rows(
    browser: Browser, site: AdminSite
) -> None:
    recorded = _open(browser, site, site.admin, f"?as_of={DEMO_AS_OF}")
    page = recorded.page
    _link(page, site)
    _requeue(page, site)
    _close(recorded)


def _link(page: Page, site: AdminSite) -> None:
    admin = Principal("user", str(site.admin.user_id), "Ada Admin", frozenset({"admin"}))
    as_of = datetime.fromisoformat(DEMO_AS_OF.replace("Z", "+00:00"))
    with site.engine.connect() as conn:  # what the page lists: the default 30 days
        listed = unlinked_prs(conn, admin, window=Window(as_of, 30, ""))
        pr = listed.rows[0]
        ticket = _ticket_for(conn, pr.event_id)
    name = f"{pr.repository}#{pr.pr_number}"
    chosen = page.locator(".dpp-link-pr select option:checked").inner_text()
    assert chosen.replace("\xa0", " ") == pr_label(pr)  # the newest is offered first
    page.locator(".dpp-link-pr select").select_option(label=pr_label(pr))
    # A malformed key is refused with the reason; nothing changes.
    page.locator(".dpp-link-ticket input").fill(ticket.lower())
    page.get_by_role("button", name="Link").click()
    error = page.locator(".dpp-zone-unlinked .dpp-feedback-error")
    error.wait_for()
    assert "not a Jira ticket key in canonical form" in error.inner_text()
    page.locator(".dpp-link-ticket input").fill(ticket)
    page.get_by_role("button", name="Link").click()
    done = page.locator(".dpp-zone-unlinked .dpp-feedback-ok")
    done.wait_for()
    assert f"{name} is linked to {ticket}" in done.inner_text()
    summary = page.locator("#dpp-unlinked-summary")
    summary.filter(has_text=f"{listed.total - 1} pull requests").wait_for()
    listed_now = page.locator("#dpp-unlinked-table td").get_by_text(name, exact=True)
    listed_now.wait_for(state="detached")  # redrawn without it
    with site.engine.connect() as conn:
        e = pr_events
        owner = sa.select(e.c.repo_id, e.c.pr_number).where(e.c.event_id == pr.event_id).subquery()
        links = conn.execute(
            sa.select(e.c.linked_ticket_id, e.c.link_method).join(
                owner, sa.and_(owner.c.repo_id == e.c.repo_id, owner.c.pr_number == e.c.pr_number)
            )
        ).all()
        assert links and set(links) == {(ticket, "manual")}
        entry = conn.execute(
            sa.select(audit_log).where(audit_log.c.action == "pr.link_ticket")
        ).one()
    assert (entry.actor_type, entry.actor_id) == ("user", str(site.admin.user_id))
    assert entry.target_id == f"{pr.repository}#{pr.pr_number}"


def _requeue(page: Page, site: AdminSite) -> None:
    first, *rest = site.dead
    page.locator(".dpp-dead-row").filter(has_text=f"#{first} ").get_by_role(
        "button", name="Requeue"
    ).click()
    done = page.locator(".dpp-zone-dead .dpp-feedback-ok")
    done.wait_for()
    assert f"Requeued dead letter {first}: 1 moved back to pending" in done.inner_text()
    page.locator(".dpp-requeue-all", has_text=f"Requeue all {len(rest)}").wait_for()
    with site.engine.connect() as conn:
        states = dict(
            conn.execute(
                sa.select(raw_events.c.id, raw_events.c.state).where(raw_events.c.id.in_(site.dead))
            ).all()
        )
    assert states == {first: "pending", **dict.fromkeys(rest, "dead")}
    page.locator(".dpp-requeue-all").click()
    page.locator("#dpp-empty-dead").wait_for()
    assert f"Requeued every dead letter: {len(rest)} moved" in done.inner_text()
    with site.engine.connect() as conn:
        left = conn.execute(
            sa.select(sa.func.count()).where(raw_events.c.state == "dead")
        ).scalar_one()
        entries = conn.execute(
            sa.select(audit_log.c.actor_id, audit_log.c.target_id, audit_log.c.details)
            .where(audit_log.c.action == "inbox.retry")
            .order_by(audit_log.c.occurred_at)
        ).all()
    assert left == 0
    assert [(e.actor_id, e.target_id, e.details["requeued"]) for e in entries] == [
        (str(site.admin.user_id), str(first), 1),
        (str(site.admin.user_id), "all", len(rest)),
    ]
