"""The dashboards' front door over real servers (uvicorn + Voila on loopback): no page, file or
socket without a session; identity only from the session; a scoped user cannot read another
stream by editing the URL; Voila itself unreachable but through the proxy."""

from __future__ import annotations

import asyncio
import hashlib
import html
import json
import re
import socket
import time
from urllib.parse import quote

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from dpp_lib.auth.sessions import revoke_session, session_id_for
from dpp_lib.dashboards.voila import IDENTITY_HEADER, read_static_roots
from dpp_lib.store.types import now_utc
from tests.dashboards.conftest import Site, make_user

pytestmark = pytest.mark.slow

PAGE_HEADERS = {"Accept": "text/html,application/xhtml+xml", "Sec-Fetch-Mode": "navigate"}
KERNEL_ID = re.compile(r'"kernelId":\s*"([0-9a-f-]{36})"')


def _get(site: Site, path: str, token: str | None = None, **headers: str) -> httpx.Response:
    cookies = {"dpp_session": token} if token else None
    return httpx.get(
        site.base + path, headers=headers, cookies=cookies, timeout=120, follow_redirects=False
    )


OUTPUT = re.compile(
    r'<script type="application/vnd\.voila\.cell-output\+json">(.*?)</script>', re.S
)


def _shown(page: str, element_id: str) -> str | None:
    """The text of an element in the cells' HTML outputs (Voila embeds them as JSON)."""
    outputs = "".join(
        json.loads(found).get("data", {}).get("text/html", "") for found in OUTPUT.findall(page)
    )
    element = re.search(rf'id="{element_id}"[^>]*>(.*?)</(?:p|ul|div|h2)>', outputs, re.S)
    return html.unescape(re.sub(r"<[^>]+>", "", element.group(1))) if element else None


def _ws_status(url: str, *, token: str | None, origin: str | None = None) -> int:
    """The HTTP status of a WebSocket handshake through the proxy (101 when accepted)."""
    headers = [("Cookie", f"dpp_session={token}")] if token else []
    if origin:
        headers.append(("Origin", origin))

    async def attempt() -> int:
        try:
            async with connect(url, additional_headers=headers, proxy=None, open_timeout=20):
                return 101
        except InvalidStatus as exc:
            return exc.response.status_code

    return asyncio.run(attempt())


# --- without a session ------------------------------------------------------------------


def test_a_page_without_a_session_redirects_to_login(site: Site) -> None:
    answer = _get(site, "/dashboards/voila/render/whoami.ipynb?stream=payments", **PAGE_HEADERS)
    assert answer.status_code == 302
    wanted = quote("/dashboards/voila/render/whoami.ipynb?stream=payments", safe="/")
    assert answer.headers["location"] == f"/login?next={wanted}"
    tree = _get(site, "/dashboards/", **PAGE_HEADERS)
    assert tree.status_code == 302 and tree.headers["location"] == "/login?next=/dashboards/"


@pytest.mark.parametrize(
    ("path", "headers"),
    [
        ("/dashboards/voila/render/whoami.ipynb", {"X-Requested-With": "XMLHttpRequest"}),
        ("/dashboards/voila/render/whoami.ipynb", {"Accept": "application/json"}),
        ("/dashboards/voila/static/voila.js", {"Sec-Fetch-Mode": "no-cors"}),
        ("/dashboards/api/kernels/00000000-0000-4000-8000-000000000000", {}),
    ],
)
def test_scripts_and_files_without_a_session_get_401(
    site: Site, path: str, headers: dict[str, str]
) -> None:
    answer = _get(site, path, **headers)
    assert answer.status_code == 401
    assert "sign in" in answer.text


def test_a_bad_or_revoked_session_is_no_session(site: Site) -> None:
    answer = _get(site, "/dashboards/voila/render/whoami.ipynb", "not-a-session", **PAGE_HEADERS)
    assert answer.status_code == 302
    assert _get(site, "/dashboards/voila/static/voila.js", "not-a-session").status_code == 401


def test_a_session_revoked_after_sign_in_loses_the_dashboards(site: Site) -> None:
    """New requests are refused, and the open kernel socket is closed (policy violation)."""
    with site.engine.begin() as conn:
        cy = make_user(conn, "Cy Revoked", ("viewer", site.streams["payments"]))
    page = _get(site, "/dashboards/voila/render/whoami.ipynb", cy.token)
    found = KERNEL_ID.search(page.text)
    assert found is not None
    url = site.base.replace("http", "ws", 1) + f"/dashboards/api/kernels/{found[1]}/channels"
    headers = [("Cookie", f"dpp_session={cy.token}"), ("Origin", site.base)]

    async def revoke_while_open() -> int | None:
        async with connect(url, additional_headers=headers, proxy=None, open_timeout=20) as ws:
            with site.engine.begin() as conn:
                assert revoke_session(conn, session_id_for(cy.token), now_utc())
            try:
                while True:
                    await asyncio.wait_for(ws.recv(), timeout=60)
            except ConnectionClosed as closed:
                return closed.rcvd.code if closed.rcvd else None

    assert asyncio.run(revoke_while_open()) == 1008
    assert _get(site, "/dashboards/voila/static/voila.js", cy.token).status_code == 401


def test_a_websocket_without_a_session_is_refused(site: Site) -> None:
    ws = site.base.replace("http", "ws", 1)
    kernel = "00000000-0000-4000-8000-000000000000"
    assert _ws_status(f"{ws}/dashboards/api/kernels/{kernel}/channels", token=None) == 401


# --- identity ---------------------------------------------------------------------------


def test_a_forged_identity_header_is_ignored(site: Site) -> None:
    forged = {IDENTITY_HEADER: str(site.admin.user_id), "X_Forwarded_User": str(site.admin.user_id)}
    without_session = _get(site, "/dashboards/voila/render/whoami.ipynb", **PAGE_HEADERS, **forged)
    assert without_session.status_code == 302
    page = _get(
        site, "/dashboards/voila/render/whoami.ipynb?stream=lending", site.ann.token, **forged
    )
    assert page.status_code == 200
    assert "Ann Payments" in (_shown(page.text, "dpp-user") or "")
    assert "Ada Admin" not in page.text
    assert _shown(page.text, "dpp-access-denied") is not None
    assert _shown(page.text, "dpp-stream-figure") is None


def test_voila_refuses_whoever_bypasses_the_front_door(site: Site) -> None:
    """Voila requires the launch token, so a local process cannot set an identity."""
    direct = httpx.get(
        f"{site.voila.url}/dashboards/voila/render/whoami.ipynb",
        headers={IDENTITY_HEADER: str(site.admin.user_id)},
        timeout=30,
    )
    assert direct.status_code in (302, 401, 403)
    assert "dpp-user" not in direct.text


def test_voila_listens_on_loopback_only(site: Site) -> None:
    port = site.settings.voila_port
    listening = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as fh:
            for line in list(fh)[1:]:
                local, state = line.split()[1], line.split()[3]
                address, hex_port = local.rsplit(":", 1)
                if state == "0A" and int(hex_port, 16) == port:
                    listening.append(address)
    assert listening == ["0100007F"]  # 127.0.0.1, and nothing on IPv6 or 0.0.0.0
    # Bound to 127.0.0.1 exactly: another address of the machine (here 127.0.0.2, which a
    # wildcard bind would answer on) gets no connection.
    with socket.socket() as s:
        s.settimeout(5)
        assert s.connect_ex(("127.0.0.2", port)) != 0


# --- what a signed-in user gets --------------------------------------------------------


def test_a_scoped_user_sees_their_stream(site: Site) -> None:
    page = _get(site, "/dashboards/voila/render/whoami.ipynb?stream=payments", site.ann.token)
    assert page.status_code == 200
    assert _shown(page.text, "dpp-delivery-streams") == "payments"
    assert _shown(page.text, "dpp-roles") == "viewer: delivery stream payments"
    figure = _shown(page.text, "dpp-stream-figure") or ""
    assert figure.startswith("Work in progress: ")
    assert _shown(page.text, "dpp-access-denied") is None
    # the lab-offline template: nothing loaded from another host
    assert not re.search(r'(?:src|href)="(?:https?:)?//', page.text)


@pytest.mark.parametrize(
    "query",
    [
        "?stream=LENDING",
        "?stream=payments&stream=lending",  # the last value counts, as it is the one read
        "?stream=no-such-stream",
    ],
)
def test_a_scoped_user_cannot_read_another_stream_by_editing_the_query(
    site: Site, query: str
) -> None:
    page = _get(site, f"/dashboards/voila/render/whoami.ipynb{query}", site.ann.token)
    assert page.status_code == 200
    denied = _shown(page.text, "dpp-access-denied") or ""
    assert "You do not have access to the stream" in denied
    assert _shown(page.text, "dpp-stream-figure") is None
    assert "Work in progress" not in page.text


def test_a_stream_named_by_its_id_is_checked_too(site: Site) -> None:
    lending = site.streams["lending"]
    page = _get(site, f"/dashboards/voila/render/whoami.ipynb?stream={lending}", site.ann.token)
    assert _shown(page.text, "dpp-access-denied") is not None
    allowed = _get(site, f"/dashboards/voila/render/whoami.ipynb?stream={lending}", site.bob.token)
    assert _shown(allowed.text, "dpp-access-denied") is None
    assert (_shown(allowed.text, "dpp-stream") or "").endswith("(lending)")


# --- kernels and sockets ----------------------------------------------------------------


def test_a_kernel_is_reachable_only_by_the_user_whose_page_started_it(site: Site) -> None:
    page = _get(site, "/dashboards/voila/render/whoami.ipynb", site.ann.token)
    found = KERNEL_ID.search(page.text)
    assert found is not None
    url = site.base.replace("http", "ws", 1) + f"/dashboards/api/kernels/{found[1]}/channels"
    assert _ws_status(url, token=site.bob.token) == 403
    assert _ws_status(url, token=site.ann.token, origin=site.base) == 101
    assert _get(site, f"/dashboards/api/kernels/{found[1]}", site.bob.token).status_code == 403


def test_a_websocket_from_another_site_is_refused(site: Site) -> None:
    page = _get(site, "/dashboards/voila/render/whoami.ipynb", site.ann.token)
    found = KERNEL_ID.search(page.text)
    assert found is not None
    url = site.base.replace("http", "ws", 1) + f"/dashboards/api/kernels/{found[1]}/channels"
    assert _ws_status(url, token=site.ann.token, origin="http://evil.example") == 403


def test_voilas_request_info_socket_is_not_relayed(site: Site) -> None:
    ws = site.base.replace("http", "ws", 1)
    kernel = "00000000-0000-4000-8000-000000000000"
    assert _ws_status(f"{ws}/dashboards/voila/query/{kernel}", token=site.ann.token) == 404


def test_voilas_scripts_come_from_the_front_door_and_are_voilas(site: Site) -> None:
    """Voila's launch recorded its static folders; the front door answers a script from
    them (the ETag is the front door's, made from that file) with Voila's own bytes."""
    roots = read_static_roots(site.settings)
    assert roots is not None
    script = next(f / "voila.js" for f in roots.static if (f / "voila.js").is_file())
    stat = script.stat()
    disk_etag = hashlib.md5(f"{stat.st_mtime}-{stat.st_size}".encode()).hexdigest()
    path = "/dashboards/voila/static/voila.js"
    deadline = time.monotonic() + 30
    answer = _get(site, path, site.ann.token)  # the first request starts the lookup
    while answer.headers.get("etag") != f'"{disk_etag}"' and time.monotonic() < deadline:
        time.sleep(0.2)
        answer = _get(site, path, site.ann.token)
    assert answer.status_code == 200
    assert answer.headers["etag"] == f'"{disk_etag}"'
    assert answer.headers["cache-control"] == "no-cache"
    voilas = httpx.get(
        f"{site.voila.url}{path}",
        headers={"Authorization": f"token {site.voila.token}"},
        timeout=30,
    )
    assert voilas.status_code == 200
    assert answer.content == voilas.content
    assert _get(site, path).status_code == 401  # still not without a session
