"""``/reports/``: the retro reports, served to signed-in users within their scope.

- No session: a redirect to ``/login?next=<path>``, like ``/dashboards/``.
- ``GET /reports/`` lists the reports of the delivery streams the user may see.
- ``GET /reports/<stream>/<sprint>.html`` serves one report. A report of a stream the user
  may not see, a missing one and any other path under ``/reports/`` all get the same 404
  page, so a URL tells nobody which streams or sprints have reports.
- Only files the renderer published (a sidecar beside the page) are served; names are
  checked against a strict pattern and the resolved path must stay in the reports
  directory (no traversal).
- Every page goes out with a Content-Security-Policy that lets it load nothing at all: the
  reports are self-contained, and a browser would refuse anything else even by mistake.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from urllib.parse import quote

import sqlalchemy as sa
from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from starlette.responses import FileResponse, HTMLResponse, RedirectResponse, Response

from dpp_lib.access import Principal
from dpp_lib.reports.index import Report, find_report, index_html, list_reports
from dpp_lib.store.schema import delivery_streams
from ingest_service.deps import service
from ingest_service.sessions import current_user

router = APIRouter(include_in_schema=False)

CONTENT_SECURITY_POLICY = (
    "default-src 'none'; img-src data:; style-src 'unsafe-inline'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'self'"
)
PAGE_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "private, no-cache",
}
NOT_FOUND = "No such report, or not one you may see."


def _login(request: Request) -> RedirectResponse:
    return RedirectResponse(f"/login?next={quote(request.url.path, safe='/')}", status_code=302)


async def _user(request: Request) -> Principal | None:
    principal = await current_user(request)
    return principal if principal is not None and principal.kind == "user" else None


def _root(request: Request) -> Path:
    return service(request).settings.reports_dir.resolve()


def _not_found() -> HTMLResponse:
    page = (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>Not found</title>'
        f'</head><body><p>{NOT_FOUND}</p><p><a href="/reports/">All reports</a></p></body></html>'
    )
    return HTMLResponse(page, status_code=404, headers=PAGE_HEADERS)


def _visible(request: Request, principal: Principal, reports: list[Report]) -> list[Report]:
    """The reports of streams ``principal`` may see (a stream is known by its name)."""
    if principal.delivery_streams is None:
        return reports
    names = {r.stream for r in reports}
    if not names:
        return []
    d = delivery_streams
    with service(request).engine.connect() as conn:
        rows = conn.execute(sa.select(d.c.name, d.c.stream_id).where(d.c.name.in_(names)))
        ids = {name: stream_id for name, stream_id in rows}
    return [r for r in reports if _sees(principal, ids.get(r.stream))]


def _sees(principal: Principal, stream_id: uuid.UUID | None) -> bool:
    return stream_id is not None and principal.sees_delivery(stream_id)


@router.get("/reports")
async def reports_root() -> Response:
    return RedirectResponse("/reports/", status_code=307)


@router.get("/reports/")
async def reports_index(request: Request) -> Response:
    principal = await _user(request)
    if principal is None:
        return _login(request)
    root = _root(request)

    def page() -> str:
        return index_html(_visible(request, principal, list_reports(root)))

    return HTMLResponse(await run_in_threadpool(page), headers=PAGE_HEADERS)


@router.get("/reports/{stream}/{file}")
async def report_page(request: Request, stream: str, file: str) -> Response:
    principal = await _user(request)
    if principal is None:
        return _login(request)
    if not file.endswith(".html"):
        return _not_found()
    root = _root(request)

    def visible() -> Path | None:
        report = find_report(root, stream, file.removesuffix(".html"))
        if report is None or not _visible(request, principal, [report]):
            return None
        path = (root / report.path).resolve()
        return path if path.is_relative_to(root) and path.is_file() else None

    path = await run_in_threadpool(visible)
    if path is None:
        return _not_found()
    return FileResponse(path, media_type="text/html; charset=utf-8", headers=PAGE_HEADERS)


@router.get("/reports/{rest:path}")
async def anything_else(request: Request, rest: str) -> Response:
    """Any other path under /reports/: the same answer as a missing report."""
    if await _user(request) is None:
        return _login(request)
    return _not_found()
