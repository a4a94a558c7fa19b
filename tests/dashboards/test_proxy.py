"""The proxy's decisions without Voila: what it forwards, what it refuses, and the page it
shows when Voila is down (an in-process stand-in upstream records what reached it)."""

from __future__ import annotations

import asyncio
import logging
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import HTTPConnection, Request
from starlette.responses import HTMLResponse, JSONResponse
from starlette.routing import Mount, Route

from dpp_lib.access import Principal
from dpp_lib.dashboards.voila import (
    StaticRoots,
    VoilaPaths,
    read_static_roots,
    static_roots,
    write_static_roots,
)
from dpp_lib.settings import Settings
from ingest_service.proxy import DashboardProxy, _without_cookie
from ingest_service.runtime import free_port
from ingest_service.voila_static import VoilaStaticFiles

ANN = Principal("user", str(uuid.uuid4()), "Ann", frozenset({"metrics:read"}))
KERNEL = "0f0e0d0c-0b0a-4909-8807-060504030201"


async def _identify(conn: HTTPConnection) -> Principal | None:
    return ANN if conn.cookies.get("dpp_session") == "good" else None


async def _echo(request: Request) -> JSONResponse:
    return JSONResponse(
        {"headers": dict(request.headers), "path": request.url.path, "query": request.url.query}
    )


async def _page(request: Request) -> HTMLResponse:
    return HTMLResponse(f'<script>{{"kernelId": "{KERNEL}"}}</script>')


CROWD = 120  # more than httpx's default cap of 100 connections per client
ARRIVED: dict[str, Any] = {}  # the stand-in's count of waiting requests (its own loop)


async def _held(request: Request) -> JSONResponse:
    """Answers once ``CROWD`` requests are held open at once (as Voila holds a page's HTML
    while its kernel computes), or 504 after 20 s if they never all arrive."""
    if "event" not in ARRIVED:
        ARRIVED.update(event=asyncio.Event(), count=0)
    ARRIVED["count"] += 1
    if ARRIVED["count"] >= CROWD:
        ARRIVED["event"].set()
    try:
        await asyncio.wait_for(ARRIVED["event"].wait(), 20)
    except TimeoutError:
        return JSONResponse({"arrived": ARRIVED["count"]}, status_code=504)
    return JSONResponse({"arrived": ARRIVED["count"]})


@pytest.fixture(scope="module")
def upstream() -> Iterator[str]:
    """A stand-in for Voila on loopback that echoes what it received."""
    app = Starlette(
        routes=[
            Route("/dashboards/voila/render/page.ipynb", _page),
            Route("/dashboards/voila/held", _held),
            Route("/dashboards/{rest:path}", _echo, methods=["GET", "POST"]),
        ]
    )
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_until_complete, args=(server.serve(),), daemon=True)
    thread.start()
    while not server.started:
        thread.join(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)


def _front(upstream: str, static: VoilaStaticFiles | None = None) -> Starlette:
    proxy = DashboardProxy(
        upstream=upstream, identify=_identify, token=lambda: "launch-token", static=static
    )
    return Starlette(routes=[Mount("/dashboards", proxy)])


async def _call(app: Starlette, method: str, path: str, **kwargs: Any) -> httpx.Response:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://front.test") as client:
        return await client.request(method, path, **kwargs)


def _run(app: Starlette, method: str, path: str, **kwargs: Any) -> httpx.Response:
    return asyncio.run(_call(app, method, path, **kwargs))


def test_identity_credentials_and_session_cookie_are_replaced(upstream: str) -> None:
    forged = str(uuid.uuid4())
    answer = _run(
        _front(upstream),
        "GET",
        "/dashboards/voila/api/echo?stream=a%20b&x=1",
        headers={
            "X-Forwarded-User": forged,
            "X_Forwarded_User": forged,
            "Authorization": "token guessed",
            "Cookie": "dpp_session=good; _xsrf=abc",
            "Connection": "keep-alive, X-Secret-Hop",
            "X-Secret-Hop": "1",
        },
    )
    assert answer.status_code == 200
    seen = answer.json()
    assert seen["path"] == "/dashboards/voila/api/echo"
    assert seen["query"] == "stream=a%20b&x=1"
    headers = seen["headers"]
    assert headers["x-forwarded-user"] == ANN.subject
    assert forged not in str(headers)
    assert headers["authorization"] == "token launch-token"
    assert headers["cookie"] == "_xsrf=abc"
    assert "x-secret-hop" not in headers


def test_without_a_session_nothing_reaches_voila(upstream: str) -> None:
    page = _run(_front(upstream), "GET", "/dashboards/x?y=1", headers={"Accept": "text/html"})
    assert page.status_code == 302
    assert page.headers["location"] == "/login?next=/dashboards/x%3Fy%3D1"
    posted = _run(_front(upstream), "POST", "/dashboards/voila/api/shutdown/x", content=b"{}")
    assert posted.status_code == 401


def test_kernels_are_bound_to_the_page_that_started_them(upstream: str) -> None:
    front = _front(upstream)
    cookies = {"Cookie": "dpp_session=good"}

    async def scenario() -> tuple[int, int]:
        before = await _call(front, "GET", f"/dashboards/api/kernels/{KERNEL}", headers=cookies)
        await _call(front, "GET", "/dashboards/voila/render/page.ipynb", headers=cookies)
        after = await _call(front, "GET", f"/dashboards/api/kernels/{KERNEL}", headers=cookies)
        return before.status_code, after.status_code

    assert asyncio.run(scenario()) == (403, 200)


@pytest.mark.parametrize(
    ("path", "status"),
    [
        (f"/dashboards//api/kernels/{KERNEL}", 403),
        (f"/dashboards/x/../api/kernels/{KERNEL}/channels", 403),
        (f"/dashboards/api/kernels/{KERNEL.upper()}", 403),
        ("/dashboards/voila/query/abc", 404),
        ("/dashboards/voila%2Fquery/abc", 404),
        ("/dashboards/x/%2e%2e/voila/query/abc", 404),
        ("/dashboards//voila//query/abc", 404),
    ],
)
def test_spelling_a_path_differently_does_not_pass_the_checks(
    upstream: str, path: str, status: int
) -> None:
    answer = _run(_front(upstream), "GET", path, headers={"Cookie": "dpp_session=good"})
    assert answer.status_code == status


def test_voila_gets_the_path_that_was_checked(upstream: str) -> None:
    answer = _run(
        _front(upstream),
        "GET",
        "/dashboards//voila/./api/x/../echo%20me",
        headers={"Cookie": "dpp_session=good"},
    )
    assert answer.json()["path"] == "/dashboards/voila/api/echo me"


def test_voila_down_gives_a_clear_502_page() -> None:
    nobody = f"http://127.0.0.1:{free_port()}"
    answer = _run(_front(nobody), "GET", "/dashboards/", headers={"Cookie": "dpp_session=good"})
    assert answer.status_code == 502
    assert answer.headers["content-type"].startswith("text/html")
    assert "The dashboards are not available right now" in answer.text
    assert "Traceback" not in answer.text


def test_many_pages_held_open_at_once_all_reach_voila(upstream: str) -> None:
    """50 viewers' pages each hold a connection while their kernels compute, and their
    scripts need more: the proxy must not cap connections to Voila below that."""

    async def crowd() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=_front(upstream))
        async with httpx.AsyncClient(
            transport=transport, base_url="http://front.test", timeout=60
        ) as client:
            return await asyncio.gather(
                *(
                    client.get("/dashboards/voila/held", headers={"Cookie": "dpp_session=good"})
                    for _ in range(CROWD)
                )
            )

    ARRIVED.clear()
    answers = asyncio.run(crowd())
    assert [a.status_code for a in answers] == [200] * CROWD
    assert min(a.json()["arrived"] for a in answers) >= CROWD


@pytest.mark.parametrize(
    ("cookie", "kept"),
    [
        (b"dpp_session=abc", b""),
        (b"a=1; dpp_session=abc; b=2", b"a=1; b=2"),
        (b"dpp_session_other=1", b"dpp_session_other=1"),
    ],
)
def test_only_the_session_cookie_is_removed(cookie: bytes, kept: bytes) -> None:
    assert _without_cookie(cookie, b"dpp_session") == kept


# --- Voila's static files, answered by the front door -----------------------------------


@pytest.fixture
def roots(tmp_path: Path) -> StaticRoots:
    """Two static folders (the first wins) and a lab extensions folder; a secret beside them
    and a link from a static folder to it."""
    first, second, labext = tmp_path / "first", tmp_path / "second", tmp_path / "labext"
    template = tmp_path / "template"
    for folder in (first, second, labext / "@x" / "ext" / "static", template):
        folder.mkdir(parents=True)
    (template / "index.css").write_text("body {}")
    (first / "voila.js").write_text("first")
    (second / "voila.js").write_text("second")
    (second / "9151.voila.js").write_text("chunk")
    (labext / "@x" / "ext" / "static" / "remoteEntry.js").write_text("entry")
    (tmp_path / "secret.txt").write_text("secret")
    (first / "leak.js").symlink_to(tmp_path / "secret.txt")
    return StaticRoots((first, second), (labext,), (template,))


def _signed_in(**headers: str) -> dict[str, str]:
    return {"Cookie": "dpp_session=good", **headers}


def test_voilas_static_files_are_answered_from_disk(upstream: str, roots: StaticRoots) -> None:
    static = VoilaStaticFiles(lambda: roots)
    static.prepare()
    assert static.wait(10)
    front = _front(upstream, static)

    async def scenario() -> list[httpx.Response]:
        return [
            await _call(front, "GET", path, headers=_signed_in())
            for path in (
                "/dashboards/voila/static/voila.js?v=1",
                "/dashboards/voila/static/9151.voila.js",
                "/dashboards/voila/labextensions/@x/ext/static/remoteEntry.js",
                "/dashboards/voila/templates/lab-offline/static/index.css",
            )
        ]

    first, chunk, entry, css = asyncio.run(scenario())
    assert (css.status_code, css.text) == (200, "body {}")
    assert css.headers["content-type"].startswith("text/css")
    assert (first.status_code, first.text) == (200, "first")  # the first folder wins
    assert (chunk.status_code, chunk.text) == (200, "chunk")
    assert (entry.status_code, entry.text) == (200, "entry")
    assert first.headers["content-type"].startswith("text/javascript")
    assert first.headers["cache-control"] == "no-cache"
    again = _run(
        front,
        "GET",
        "/dashboards/voila/static/voila.js",
        headers=_signed_in(**{"If-None-Match": first.headers["etag"]}),
    )
    assert (again.status_code, again.content) == (304, b"")
    head = _run(front, "HEAD", "/dashboards/voila/static/9151.voila.js", headers=_signed_in())
    assert (head.status_code, head.headers["content-length"]) == (200, "5")


def test_what_is_not_a_static_file_on_disk_still_goes_to_voila(
    upstream: str, roots: StaticRoots
) -> None:
    static = VoilaStaticFiles(lambda: roots)
    static.prepare()
    assert static.wait(10)
    front = _front(upstream, static)
    paths = (
        "/dashboards/voila/static/missing.js",  # Voila's own 404 stays the answer
        "/dashboards/voila/static/leak.js",  # a link out of the folder is not followed
        "/dashboards/voila/static/../../secret.txt",
        "/dashboards/voila/static/",
        "/dashboards/voila/render/x.ipynb",
        "/dashboards/voila/templates/lab/static/index.css",  # another template: Voila's
    )

    async def scenario() -> tuple[list[httpx.Response], httpx.Response, httpx.Response]:
        relayed = [await _call(front, "GET", path, headers=_signed_in()) for path in paths]
        posted = await _call(
            front, "POST", "/dashboards/voila/static/voila.js", headers=_signed_in()
        )
        anonymous = await _call(front, "GET", "/dashboards/voila/static/voila.js")
        return relayed, posted, anonymous

    relayed, posted, anonymous = asyncio.run(scenario())
    for path, answer in zip(paths, relayed, strict=True):
        assert answer.status_code == 200, path
        assert answer.json()["headers"]["x-forwarded-user"] == ANN.subject, path
    assert posted.json()["path"] == "/dashboards/voila/static/voila.js"
    assert anonymous.status_code == 401


def test_static_files_are_relayed_until_their_folders_are_known(upstream: str) -> None:
    """Finding the folders never holds a request: until it is done, Voila answers."""
    found = threading.Event()

    def slow(roots: StaticRoots = StaticRoots((), ())) -> StaticRoots:
        found.wait(10)
        return roots

    static = VoilaStaticFiles(slow)
    front = _front(upstream, static)
    assert not static.wait(0)  # nothing is started before the dashboards are asked for
    early = _run(front, "GET", "/dashboards/voila/static/voila.js", headers=_signed_in())
    assert early.json()["path"] == "/dashboards/voila/static/voila.js"
    found.set()
    assert static.wait(10)


def test_static_files_are_relayed_when_their_folders_cannot_be_found(
    upstream: str, caplog: pytest.LogCaptureFixture
) -> None:
    calls: list[int] = []

    def broken() -> StaticRoots:
        calls.append(1)
        raise RuntimeError("voila is not installed")

    with caplog.at_level(logging.WARNING, logger="ingest_service.voila_static"):
        static = VoilaStaticFiles(broken)
        static.prepare()
        assert not static.wait(10)
    front = _front(upstream, static)
    path = "/dashboards/voila/static/voila.js"

    async def scenario() -> list[httpx.Response]:
        return [await _call(front, "GET", path, headers=_signed_in()) for _ in range(3)]

    answers = asyncio.run(scenario())
    assert [a.json()["path"] for a in answers] == [path] * 3
    assert calls == [1]  # not asked again on every request
    assert "voila is not installed" in caplog.text


def test_voila_says_where_its_static_files_are(tmp_path: Path) -> None:
    settings = Settings(_env_file=None, var_dir=tmp_path)
    found = static_roots(settings)
    assert any((folder / "voila.js").is_file() for folder in found.static)
    assert any(
        (folder / "@voila-dashboards" / "widgets-manager8").is_dir()
        for folder in found.labextensions
    )
    assert any((folder / "index.css").is_file() for folder in found.template)


def test_a_launchs_recorded_static_folders_are_read_back(tmp_path: Path) -> None:
    settings = Settings(_env_file=None, var_dir=tmp_path)
    assert read_static_roots(settings) is None  # nothing recorded: asked of Voila instead
    roots = StaticRoots((tmp_path / "a", tmp_path / "b"), (tmp_path / "c",), (tmp_path / "d",))
    (tmp_path / "dashboards").mkdir()
    write_static_roots(settings, roots)
    assert read_static_roots(settings) == roots
    VoilaPaths.for_settings(settings).static_roots_file.write_text("{not json")
    assert read_static_roots(settings) is None
