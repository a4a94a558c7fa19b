"""The dashboards' front door as the service wires it: the proxy to this deployment's Voila,
signed-in users identified by their session cookie (``sessions.current_user``)."""

from __future__ import annotations

from starlette.requests import HTTPConnection, Request

from dpp_lib.access import Principal
from dpp_lib.dashboards.voila import known_static_roots, read_token, upstream_url
from dpp_lib.settings import Settings
from ingest_service.proxy import DashboardProxy
from ingest_service.sessions import SESSION_COOKIE, current_user
from ingest_service.voila_static import VoilaStaticFiles


async def session_principal(conn: HTTPConnection) -> Principal | None:
    """The signed-in user of an HTTP request or a WebSocket handshake (its cookies)."""
    scope = conn.scope if conn.scope["type"] == "http" else {**conn.scope, "type": "http"}
    principal = await current_user(Request(scope))
    return principal if principal is not None and principal.kind == "user" else None


def dashboard_proxy(settings: Settings) -> DashboardProxy:
    return DashboardProxy(
        upstream=upstream_url(settings),
        identify=session_principal,
        token=lambda: read_token(settings),
        session_cookie=SESSION_COOKIE,
        static=VoilaStaticFiles(lambda: known_static_roots(settings)),
    )
