"""One dashboard page load in Chromium (Playwright, async), timed inside the page.

An init script, run before any of the page's own scripts, watches the document and notes
``performance.now()`` (milliseconds since navigation start) when the first chart appears and
when the page marks itself drawn. With the navigation timing entry this splits a load into:
the HTML's first byte (the front door + Voila + a kernel to start or take from the pool), the
HTML's end (Voila streams the notebook's outputs as its kernel executes the cells, so this is
when the kernel has finished), then the browser's part (Voila's Javascript, the widget
manager, the widgets' views).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from playwright.async_api import Browser, Page, Request
from playwright.async_api import Error as PlaywrightError

LOOPBACK = {"127.0.0.1"}

MARKS_JS = """
(() => {
  const first = %s, done = %s, failed = %s;
  const marks = {};
  window.__dppMarks = marks;
  const check = () => {
    if (first && marks.first_chart === undefined && document.querySelector(first)) {
      marks.first_chart = performance.now();
    }
    if (marks.failed === undefined && document.querySelector(failed)) {
      marks.failed = performance.now();
    }
    if (marks.done === undefined && document.querySelector(done)) {
      marks.done = performance.now();
    }
  };
  new MutationObserver(check).observe(document, {subtree: true, childList: true});
})();
"""


@dataclass(frozen=True)
class PageSpec:
    """A dashboard page: ``first`` (CSS) is its first chart (None: it has none), ``done``
    appears once every zone is drawn, ``failed`` is an error message in place of figures."""

    key: str
    notebook: str
    query: str  # formatted with {stream} and {as_of}
    role: str  # which bench user opens it: viewer (one delivery stream) | admin | member
    first: str | None
    done: str
    zones: str = ".dpp-zone"  # every zone: a chart, a tile, a table or an empty state
    failed: str = "#dpp-page-error, #dpp-not-signed-in, #dpp-access-denied"


@dataclass
class Load:
    """What one page load measured (milliseconds from navigation start)."""

    page: str
    user: str
    url: str
    ok: bool = False
    error: str | None = None
    wall_ms: float | None = None  # client clock: from page.goto to the drawn page
    ttfb_ms: float | None = None
    html_end_ms: float | None = None
    dom_content_loaded_ms: float | None = None
    first_chart_ms: float | None = None
    done_ms: float | None = None
    zones: int | None = None
    zones_loading: int | None = None
    console_errors: list[str] = field(default_factory=list)
    foreign_hosts: list[str] = field(default_factory=list)
    # The slowest requests (Chromium's timing, ms): when each was made after navigation
    # began, how long it waited in the browser for a connection (queued), the server's
    # time to first byte (server), the whole; and those never answered (pending).
    slow_requests: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {k: (round(v, 1) if isinstance(v, float) else v) for k, v in vars(self).items()}


async def load(
    browser: Browser,
    *,
    base: str,
    spec: PageSpec,
    user: str,
    token: str,
    stream: str,
    as_of: str,
    timeout_s: float,
) -> Load:
    """Open ``spec`` as the user whose session cookie is ``token``; never raises."""
    query = spec.query.format(stream=stream, as_of=as_of)
    url = f"{base}/dashboards/voila/render/{spec.notebook}{query}"
    out = Load(spec.key, user, url)
    context = await browser.new_context(viewport={"width": 1280, "height": 1000})
    requests: list[str] = []
    clock = Timings()
    try:
        await context.add_cookies([{"name": "dpp_session", "value": token, "url": base}])
        await context.add_init_script(
            MARKS_JS % (json.dumps(spec.first), json.dumps(spec.done), json.dumps(spec.failed))
        )
        page = await context.new_page()
        page.on("request", clock.made)
        page.on("requestfinished", clock.finished)
        page.on("requestfailed", clock.finished)
        page.on("request", lambda r: requests.append(r.url))
        page.on("websocket", lambda ws: requests.append(ws.url))
        page.on(
            "console", lambda m: out.console_errors.append(m.text) if m.type == "error" else None
        )
        page.on("pageerror", lambda e: out.console_errors.append(str(e)))
        started = time.perf_counter()
        await page.goto(url, wait_until="commit", timeout=timeout_s * 1000)
        await page.wait_for_function(
            "() => window.__dppMarks && (window.__dppMarks.done !== undefined"
            " || window.__dppMarks.failed !== undefined)",
            timeout=timeout_s * 1000,
            polling=50,
        )
        out.wall_ms = (time.perf_counter() - started) * 1000
        await _collect(page, spec, out)
    except (PlaywrightError, TimeoutError) as exc:
        out.error = f"{type(exc).__name__}: {str(exc).splitlines()[0][:300]}"
    finally:
        out.slow_requests = clock.slowest()
        await context.close()
    out.foreign_hosts = sorted(
        {urlsplit(u).hostname or "" for u in requests if not u.startswith("data:")} - LOOPBACK
    )
    if out.error is None:
        problems = []
        if out.console_errors:
            problems.append(f"{len(out.console_errors)} console error(s)")
        if out.foreign_hosts:
            problems.append(f"requests to {', '.join(out.foreign_hosts)}")
        if spec.first and out.first_chart_ms is None:
            problems.append("no chart")
        if out.zones_loading:
            problems.append(f"{out.zones_loading} zone(s) still loading")
        out.error = "; ".join(problems) or None
    out.ok = out.error is None
    return out


class Timings:
    """Each request's timing from Chromium (``Request.timing``), keyed by the request."""

    SLOWEST = 12

    def __init__(self) -> None:
        self.started = time.perf_counter()
        self.made_at: dict[Request, float] = {}
        self.done: list[dict[str, Any]] = []

    def made(self, request: Request) -> None:
        self.made_at[request] = (time.perf_counter() - self.started) * 1000

    def finished(self, request: Request) -> None:
        made = self.made_at.pop(request, None)
        if made is None:
            return
        t = request.timing
        queued = t["requestStart"] if t.get("requestStart", -1) >= 0 else None
        first_byte = t["responseStart"] if t.get("responseStart", -1) >= 0 else None
        self.done.append(
            {
                "path": urlsplit(request.url).path,
                "made_ms": round(made),
                "queued_ms": None if queued is None else round(queued),
                "server_ms": (
                    None if queued is None or first_byte is None else round(first_byte - queued)
                ),
                "total_ms": round((time.perf_counter() - self.started) * 1000 - made),
                "failed": request.failure,
            }
        )

    def slowest(self) -> list[dict[str, Any]]:
        now = (time.perf_counter() - self.started) * 1000
        waiting = sorted(self.made_at.items(), key=lambda item: item[1])[: self.SLOWEST]
        pending: list[dict[str, Any]] = [
            {"path": urlsplit(r.url).path, "made_ms": round(m), "pending_ms": round(now - m)}
            for r, m in waiting
        ]
        done = sorted(self.done, key=lambda d: -int(d["total_ms"]))[: self.SLOWEST]
        return [*pending, *done]


async def _collect(page: Page, spec: PageSpec, out: Load) -> None:
    data = await page.evaluate(
        """([zones]) => {
          const nav = performance.getEntriesByType('navigation')[0];
          const all = Array.from(document.querySelectorAll(zones));
          return {
            marks: window.__dppMarks,
            nav: nav ? {ttfb: nav.responseStart, html_end: nav.responseEnd,
                        dcl: nav.domContentLoadedEventEnd} : {},
            zones: all.length,
            loading: all.filter(z => z.querySelector('[id$="-loading"]')).length,
          };
        }""",
        [spec.zones],
    )
    marks, nav = data["marks"], data["nav"]
    if marks.get("failed") is not None:
        text = await page.locator(spec.failed).first.inner_text()
        raise PlaywrightError(f"the page shows an error: {text[:200]}")
    out.first_chart_ms = marks.get("first_chart")
    out.done_ms = marks.get("done")
    out.ttfb_ms = nav.get("ttfb")
    out.html_end_ms = nav.get("html_end")
    out.dom_content_loaded_ms = nav.get("dcl")
    out.zones = int(data["zones"])
    out.zones_loading = int(data["loading"])
