"""The front door to the dashboards: ``/dashboards/`` (HTTP and WebSocket) proxied to Voila on
loopback once the caller is signed in (DESIGN §8).

- No session: a page is redirected to ``/login?next=<path and query>``; anything else (XHR,
  static files, WebSocket) is refused with 401.
- The caller's identity goes to Voila as ``X-Forwarded-User`` (the user id), which Voila
  hands to the kernel as ``HTTP_X_FORWARDED_USER``. Whatever identity header the client sent
  is dropped first, and so are its ``Authorization`` header and the session cookie: Voila
  gets the launch token instead (``dpp_lib.dashboards.voila``).
- A kernel belongs to the user whose page started it: the proxy learns each kernel id from
  the page it relays and refuses another user's kernel (its WebSocket carries that user's
  data). Voila's request-info socket (``voila/query``) is for kernels only, never relayed.
- Voila's static files (``voila/static``, ``voila/labextensions``) are answered from disk
  (``ingest_service.voila_static``), so a busy Voila never delays a page's scripts.
- A WebSocket must come from this site (``Origin`` = ``Host``): the session cookie would
  otherwise let any web page open a user's kernel (cross-site WebSocket hijacking).
- Voila down: a 502 page that says so.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import logging
import posixpath
import re
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable
from urllib.parse import quote, urlsplit

import httpx
from starlette.requests import HTTPConnection
from starlette.types import Message, Receive, Scope, Send
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus
from websockets.typing import Subprotocol

from dpp_lib.access import Principal
from ingest_service.voila_static import VoilaStaticFiles

log = logging.getLogger(__name__)

PREFIX = "/dashboards"
IDENTITY_HEADER = b"x-forwarded-user"
# RFC 9110 §7.6.1 hop-by-hop fields, plus those the proxy sets itself.
HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"proxy-connection",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
    }
)
DROPPED_FROM_CLIENT = frozenset({b"host", b"authorization", b"forwarded"})
KERNEL_ID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
KERNEL_IN_PAGE = re.compile(rb'"kernelId":\s*"(' + KERNEL_ID.encode() + rb')"')
KERNEL_IN_PATH = re.compile(
    r"^/(?:api/kernels|voila/api/shutdown|voila/execution)/(" + KERNEL_ID + ")(?:/|$)", re.I
)
# Characters left as they are when the checked path is encoded again for Voila (RFC 3986
# pchar), so the path Voila routes is exactly the path the proxy checked.
PATH_SAFE = "/:@!$&'()*+,;=~"
BLOCKED_PATHS = re.compile(r"^/voila/query(?:/|$)")

Identify = Callable[[HTTPConnection], Awaitable[Principal | None]]


class KernelOwners:
    """kernel id → the user whose page started it (the most recent ``limit`` kernels)."""

    def __init__(self, limit: int = 10_000) -> None:
        self.limit = limit
        self._owners: OrderedDict[str, str] = OrderedDict()

    def claim(self, kernel_id: str, subject: str) -> None:
        self._owners[kernel_id] = subject
        self._owners.move_to_end(kernel_id)
        while len(self._owners) > self.limit:
            self._owners.popitem(last=False)

    def owner(self, kernel_id: str) -> str | None:
        return self._owners.get(kernel_id)


class DashboardProxy:
    """ASGI app mounted at ``/dashboards``. ``upstream``: Voila's origin
    (``http://127.0.0.1:<port>``); ``identify``: the signed-in principal or None;
    ``token``: Voila's launch token, read on each request (a restart makes a new one);
    ``session_cookie``: the sign-in cookie, never passed to Voila; an open WebSocket is
    closed within ``session_recheck_seconds`` of its session ending."""

    def __init__(
        self,
        *,
        upstream: str,
        identify: Identify,
        token: Callable[[], str | None],
        login_path: str = "/login",
        session_cookie: str = "dpp_session",
        session_recheck_seconds: float = 10.0,
        static: VoilaStaticFiles | None = None,
    ) -> None:
        self.upstream = upstream.rstrip("/")
        self.identify = identify
        self.token = token
        self.login_path = login_path
        self.session_cookie = session_cookie.encode()
        self.session_recheck_seconds = session_recheck_seconds
        self.kernels = KernelOwners()
        self.static = static
        self._client: httpx.AsyncClient | None = None

    @property
    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(
                base_url=self.upstream,
                # A busy Voila (one process streaming many pages) accepts slowly: wait for it
                # rather than answer 502 after a few seconds.
                timeout=httpx.Timeout(connect=30.0, read=600.0, write=60.0, pool=120.0),
                # A page's HTML holds its connection while the kernel computes, so httpx's
                # default cap of 100 let 50 viewers' pages starve each other's scripts
                # (502s); 512 stays below what floods Voila's accept queue.
                limits=httpx.Limits(max_connections=512, max_keepalive_connections=64),
                follow_redirects=False,
                trust_env=False,  # loopback: no proxy from the environment
            )
        return self._client

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            return
        if scope["type"] == "websocket" and (await receive())["type"] != "websocket.connect":
            return
        conn = HTTPConnection(scope)
        principal = await self.identify(conn)
        if principal is None:
            await self._refuse_anonymous(scope, conn, send)
            return
        path = _checked_path(scope)
        problem = self._forbidden(path, principal)
        if problem is not None:
            await _reject(scope, send, 403 if problem != "not found" else 404, problem)
            return
        if scope["type"] == "websocket":
            await self._relay_websocket(scope, conn, receive, send, principal, path)
        elif self.static is None or not await self.static.serve(scope, receive, send, path):
            await self._relay_http(scope, receive, send, principal, path)

    # --- who may pass -------------------------------------------------------------------

    async def _refuse_anonymous(self, scope: Scope, conn: HTTPConnection, send: Send) -> None:
        if scope["type"] == "http" and _is_page_request(conn):
            query = scope.get("query_string", b"").decode("latin-1")
            next_url = PREFIX + _path_in_voila(scope) + (f"?{query}" if query else "")
            location = f"{self.login_path}?next={quote(next_url, safe='/')}"
            await _send_simple(send, 302, b"", extra=[(b"location", location.encode())])
            return
        await _reject(scope, send, 401, "sign in first: no valid session")

    def _forbidden(self, path: str, principal: Principal) -> str | None:
        if BLOCKED_PATHS.match(path):
            return "not found"
        found = KERNEL_IN_PATH.match(path)
        if found is not None and self.kernels.owner(found[1].lower()) != principal.subject:
            return "this kernel belongs to another page's session"
        return None

    def _upstream_headers(self, scope: Scope, principal: Principal) -> list[tuple[bytes, bytes]]:
        """The client's headers minus hop-by-hop fields, any identity or credentials it sent
        and the session cookie; plus the identity, the token and the forwarding facts."""
        raw: list[tuple[bytes, bytes]] = scope["headers"]
        listed = {
            token.strip().lower()
            for name, value in raw
            if name == b"connection"
            for token in value.split(b",")
        }
        headers: list[tuple[bytes, bytes]] = []
        for name, value in raw:
            lowered = name.lower()
            if lowered in HOP_BY_HOP or lowered in listed or lowered in DROPPED_FROM_CLIENT:
                continue
            if _is_identity_header(lowered) or lowered.startswith(b"x-forwarded-"):
                continue
            if lowered == b"cookie":
                kept = _without_cookie(value, self.session_cookie)
                if not kept:
                    continue
                value = kept
            headers.append((lowered, value))
        client = scope.get("client")
        host = dict(raw).get(b"host", b"")
        headers.append((IDENTITY_HEADER, principal.subject.encode()))
        if client:
            headers.append((b"x-forwarded-for", str(client[0]).encode()))
        if host:
            headers.append((b"x-forwarded-host", host))
        headers.append((b"x-forwarded-proto", scope.get("scheme", "http").encode()))
        token = self.token()
        if token:
            headers.append((b"authorization", f"token {token}".encode()))
        return headers

    # --- HTTP -------------------------------------------------------------------------

    async def _relay_http(
        self, scope: Scope, receive: Receive, send: Send, principal: Principal, path: str
    ) -> None:
        target = _target(scope, path).encode("latin-1")
        request = self.client.build_request(
            scope["method"],
            httpx.URL(self.upstream).copy_with(raw_path=target),
            headers=self._upstream_headers(scope, principal),
            content=_request_body(receive) if _has_body(scope) else None,
        )
        try:
            answer = await self.client.send(request, stream=True)
        except httpx.TransportError as exc:
            log.warning("dashboards: Voila at %s unreachable: %r", self.upstream, exc)
            await _send_simple(send, 502, UNAVAILABLE_PAGE, content_type=b"text/html")
            return
        try:
            headers = []
            for name, value in answer.headers.raw:
                lowered = name.lower()
                if lowered in HOP_BY_HOP:
                    continue
                if lowered == b"set-cookie" and value.startswith(self.session_cookie + b"="):
                    continue  # Voila never sets it; nothing upstream may replace the session
                headers.append((lowered, value))
            await send(
                {"type": "http.response.start", "status": answer.status_code, "headers": headers}
            )
            is_page = answer.headers.get("content-type", "").startswith("text/html")
            tail = b""
            async for chunk in answer.aiter_raw():
                if is_page:
                    tail = self._learn_kernels(tail + chunk, principal)
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            await answer.aclose()

    def _learn_kernels(self, text: bytes, principal: Principal) -> bytes:
        """Claim the kernel ids in a page for its user; returns the tail to carry over."""
        for found in KERNEL_IN_PAGE.finditer(text):
            self.kernels.claim(found.group(1).decode(), principal.subject)
        return text[-80:]

    # --- WebSocket --------------------------------------------------------------------

    async def _relay_websocket(
        self,
        scope: Scope,
        conn: HTTPConnection,
        receive: Receive,
        send: Send,
        principal: Principal,
        path: str,
    ) -> None:
        if not _same_origin(conn):
            await _reject(scope, send, 403, "WebSocket from another site refused")
            return
        offered = [
            Subprotocol(p.strip())
            for p in conn.headers.get("sec-websocket-protocol", "").split(",")
            if p.strip()
        ]
        skip = {b"sec-websocket-key", b"sec-websocket-version", b"sec-websocket-extensions"}
        skip |= {b"sec-websocket-protocol", b"origin"}
        headers = [(k, v) for k, v in self._upstream_headers(scope, principal) if k not in skip]
        url = "ws" + self.upstream[len("http") :] + _target(scope, path)
        try:
            upstream = await connect(
                url,
                additional_headers=[(k.decode(), v.decode("latin-1")) for k, v in headers],
                subprotocols=offered or None,
                proxy=None,
                max_size=None,
                compression=None,
                ping_interval=None,
                open_timeout=10,
                user_agent_header=None,
            )
        except (OSError, InvalidHandshake, TimeoutError) as exc:
            status = exc.response.status_code if isinstance(exc, InvalidStatus) else 502
            log.warning("dashboards: WebSocket %s to Voila failed: %s", path, exc)
            await _reject(scope, send, status, "the dashboards server refused the connection")
            return

        async def still_signed_in() -> bool:
            again = await self.identify(conn)
            return again is not None and again.subject == principal.subject

        async with upstream:
            await send({"type": "websocket.accept", "subprotocol": upstream.subprotocol})
            await _pump(receive, send, upstream, still_signed_in, self.session_recheck_seconds)


async def _pump(
    receive: Receive,
    send: Send,
    upstream: ClientConnection,
    still_signed_in: Callable[[], Awaitable[bool]],
    recheck_seconds: float,
) -> None:
    """Relay messages both ways until either side closes, or the session ends (signed out,
    revoked, expired: checked every ``recheck_seconds``; the socket is closed with 1008)."""

    async def watch_session() -> None:
        while True:
            await asyncio.sleep(recheck_seconds)
            if not await still_signed_in():
                with contextlib.suppress(Exception):
                    await send({"type": "websocket.close", "code": 1008, "reason": "signed out"})
                return

    async def client_to_upstream() -> None:
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                await upstream.close()
                return
            if message.get("bytes") is not None:
                await upstream.send(message["bytes"])
            elif message.get("text") is not None:
                await upstream.send(message["text"])

    async def upstream_to_client() -> None:
        try:
            async for data in upstream:
                if isinstance(data, bytes):
                    await send({"type": "websocket.send", "bytes": data})
                else:
                    await send({"type": "websocket.send", "text": data})
        except ConnectionClosed:
            pass
        with contextlib.suppress(Exception):  # the client may be gone already
            await send({"type": "websocket.close", "code": upstream.close_code or 1000})

    tasks = [
        asyncio.ensure_future(client_to_upstream()),
        asyncio.ensure_future(upstream_to_client()),
        asyncio.ensure_future(watch_session()),
    ]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, ConnectionClosed, OSError):
                await task


# --- helpers ----------------------------------------------------------------------------


def _path_in_voila(scope: Scope) -> str:
    """The path below ``/dashboards`` (``/`` for the tree)."""
    path: str = scope["path"]
    if path.startswith(PREFIX):
        path = path[len(PREFIX) :]
    return path or "/"


def _checked_path(scope: Scope) -> str:
    """The decoded path below ``/dashboards``, normalised (``//`` and ``..`` resolved): the
    path the proxy checks, and the only one it sends to Voila."""
    path = _path_in_voila(scope)
    normal = posixpath.normpath("/" + path.lstrip("/"))
    normal = "/" + normal.lstrip("/")  # normpath keeps a leading "//"
    return normal + "/" if path.endswith("/") and normal != "/" else normal


def _target(scope: Scope, path: str) -> str:
    """Voila's request target: the checked path encoded again, and the query as sent."""
    query = scope.get("query_string", b"").decode("latin-1")
    return PREFIX + quote(path, safe=PATH_SAFE) + (f"?{query}" if query else "")


def _is_identity_header(name: bytes) -> bool:
    """``X-Forwarded-User`` however spelt (``X_Forwarded_User`` reaches some servers as it)."""
    return name.replace(b"_", b"-") == IDENTITY_HEADER


def _without_cookie(value: bytes, name: bytes) -> bytes:
    parts = [p.strip() for p in value.split(b";")]
    return b"; ".join(p for p in parts if p and p.split(b"=", 1)[0].strip() != name)


def _is_page_request(conn: HTTPConnection) -> bool:
    """A browser navigating (``Sec-Fetch-Mode: navigate``, or an HTML ``Accept`` from a
    client that does not say) rather than a script asking for data."""
    if conn.scope.get("method") not in ("GET", "HEAD"):
        return False
    if conn.headers.get("x-requested-with"):
        return False
    mode = conn.headers.get("sec-fetch-mode")
    if mode is not None:
        return mode == "navigate"
    return "text/html" in conn.headers.get("accept", "")


def _same_origin(conn: HTTPConnection) -> bool:
    origin = conn.headers.get("origin")
    if origin is None:
        return True  # not a browser: browsers always send Origin on a WebSocket
    host = conn.headers.get("host", "")
    return bool(host) and urlsplit(origin).netloc.lower() == host.lower()


def _has_body(scope: Scope) -> bool:
    return scope["method"] not in ("GET", "HEAD", "OPTIONS", "DELETE")


async def _request_body(receive: Receive) -> AsyncIterator[bytes]:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
        body = message.get("body", b"")
        if body:
            yield body
        if not message.get("more_body", False):
            return


async def _send_simple(
    send: Send,
    status: int,
    body: bytes,
    *,
    content_type: bytes = b"text/plain; charset=utf-8",
    extra: list[tuple[bytes, bytes]] | None = None,
    websocket: bool = False,
) -> None:
    prefix = "websocket.http.response" if websocket else "http.response"
    headers = [(b"content-type", content_type), (b"content-length", str(len(body)).encode())]
    headers += [(b"cache-control", b"no-store"), *(extra or [])]
    start: Message = {"type": f"{prefix}.start", "status": status, "headers": headers}
    await send(start)
    await send({"type": f"{prefix}.body", "body": body})


async def _reject(scope: Scope, send: Send, status: int, reason: str) -> None:
    """Refuse with ``status``: an HTTP answer, or for a WebSocket a denial response when the
    server supports it (uvicorn does) and a close before accepting otherwise (HTTP 403)."""
    body = f"{status} {html.escape(reason)}\n".encode()
    if scope["type"] == "http":
        await _send_simple(send, status, body)
    elif "websocket.http.response" in scope.get("extensions", {}):
        await _send_simple(send, status, body, websocket=True)
    else:
        await send({"type": "websocket.close", "code": 4000 + status})


UNAVAILABLE_PAGE = b"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Dashboards unavailable</title></head>
<body style="font-family: sans-serif; max-width: 40em; margin: 4em auto">
<h1>The dashboards are not available right now</h1>
<p>The dashboard server is not running or not answering. Try again in a minute; if this
persists, ask a platform administrator to check the dashboards service
(<code>dpp up</code> starts it with the API).</p>
</body></html>
"""
