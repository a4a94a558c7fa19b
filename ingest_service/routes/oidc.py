"""OIDC sign-in (spec §3.2.1): ``/login/oidc`` sends the browser to the identity provider
(Entra ID in production); ``/auth/callback`` takes it back, validates the sign-in
(``dpp_lib.auth.oidc``), creates or refreshes the user and its group-derived roles, opens a
session and returns to the local page the user asked for.

The pending login lives in the database (any API process can finish it); the browser that
started it gets a short-lived cookie named after a hash of its ``state``, and the callback
refuses a state that browser did not start (login CSRF). One cookie per sign-in, so several
tabs can sign in at once.

A refused sign-in is logged and audited (``login.failure`` with the reason); the browser
sees a generic page, so nothing about tokens or keys reaches it.
"""

from __future__ import annotations

import hashlib
import logging
from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from starlette.responses import HTMLResponse, RedirectResponse, Response

from dpp_lib.auth.audit import record
from dpp_lib.auth.oidc import (
    LOGIN_STATE_TTL,
    CompletedLogin,
    OidcClient,
    OidcConfig,
    OidcRefused,
    OidcUnavailable,
    StartedLogin,
    begin_login,
    complete_login,
)
from dpp_lib.auth.sessions import sign_in as open_session
from dpp_lib.auth.users import upsert_external_user
from dpp_lib.errors import DppError, SettingsError
from dpp_lib.store.types import now_utc
from ingest_service.deps import service
from ingest_service.errors import ApiError
from ingest_service.routes.auth import SECURITY_HEADERS
from ingest_service.sessions import client_ip, is_https, safe_next, set_session_cookie
from ingest_service.state import ServiceState
from ingest_service.templates.login import message_page

log = logging.getLogger(__name__)
router = APIRouter(tags=["sign-in"], include_in_schema=False)

REFUSED = "Sign-in failed. Please try again; if it keeps failing, contact a platform administrator."
UNAVAILABLE = "Sign-in is unavailable right now: the identity provider cannot be reached."
MAX_PARAM = 4000
CALLBACK_PATH = "/auth/callback"


def _page(title: str, message: str, status: int) -> HTMLResponse:
    return HTMLResponse(
        message_page(title, message, link="/login", link_text="Try again"),
        status_code=status,
        headers=SECURITY_HEADERS,
    )


def oidc_client(request: Request) -> OidcClient:
    """The process's client (discovery and keys cached), made on first use."""
    app_state = request.app.state
    client: OidcClient | None = getattr(app_state, "oidc_client", None)
    if client is None:
        client = OidcClient(OidcConfig.from_settings(service(request).settings))
        app_state.oidc_client = client
    return client


def started_cookie(state_value: str) -> str:
    """The cookie that marks the browser which started the sign-in of ``state_value``."""
    return "dpp_oidc_" + hashlib.sha256(state_value.encode()).hexdigest()[:24]


def _require_oidc(state: ServiceState) -> None:
    if state.settings.auth_method != "oidc":
        raise ApiError(404, "OIDC sign-in is off (AUTH_METHOD is not 'oidc')")


@router.get("/login/oidc")
async def login_oidc(request: Request, next: str | None = None) -> Response:
    """302 to the provider's authorization endpoint, with PKCE, state and nonce."""
    state = service(request)
    _require_oidc(state)
    target = safe_next(next)

    def begin() -> StartedLogin:
        client = oidc_client(request)
        with state.engine.begin() as conn:
            return begin_login(conn, client, next_url=target, now=now_utc())

    try:
        started = await run_in_threadpool(begin)
    except (OidcUnavailable, SettingsError) as exc:
        log.error("OIDC sign-in cannot start: %s", exc.message)
        return _page("Sign-in unavailable", UNAVAILABLE, 503)
    response = RedirectResponse(started.url, status_code=302, headers={"Cache-Control": "no-store"})
    response.set_cookie(
        started_cookie(started.state),
        "1",
        max_age=int(LOGIN_STATE_TTL.total_seconds()),
        path=CALLBACK_PATH,
        httponly=True,
        samesite="lax",  # sent on the provider's top-level redirect back to us
        secure=is_https(request),
    )
    return response


@router.get(CALLBACK_PATH)
async def callback(request: Request) -> Response:
    """Where the provider sends the browser back (``code`` and ``state``, or ``error``)."""
    state = service(request)
    _require_oidc(state)
    params = {
        k: request.query_params.get(k, "")[:MAX_PARAM]
        for k in ("state", "code", "error", "error_description")
    }
    ip = client_ip(request)
    agent = request.headers.get("user-agent", "")[:500]
    now = now_utc()
    marker = started_cookie(params["state"])

    def sign_in() -> tuple[CompletedLogin, str]:
        done = complete_login(
            state.engine,
            oidc_client(request),
            state=params["state"],
            code=params["code"],
            started_here=request.cookies.get(marker) == "1",
            error=params["error"],
            error_description=params["error_description"],
            now=now,
        )
        who = done.identity
        with state.engine.begin() as conn:
            user = upsert_external_user(
                conn, email=who.email, display_name=who.display_name, groups=who.groups, now=now
            )
            if not user.is_active:
                raise OidcRefused("user_inactive", f"{user.email} is deactivated")
            _, token = open_session(
                conn,
                user_id=user.user_id,
                auth_method="oidc",
                now=now,
                duration=timedelta(minutes=state.settings.session_duration_minutes),
                source_ip=ip,
                user_agent=agent,
                details={"subject": who.subject, "groups": list(who.groups)},
            )
        return done, token

    response: Response
    try:
        done, token = await run_in_threadpool(sign_in)
    except OidcRefused as exc:
        log.warning("OIDC sign-in refused from %s: %s", ip, exc.message)
        await run_in_threadpool(_audit_failure, state, ip, exc.reason, exc.message)
        response = _page("Sign-in failed", REFUSED, 401)
    except (OidcUnavailable, SettingsError) as exc:
        log.error("OIDC sign-in failed: %s", exc.message)
        await run_in_threadpool(_audit_failure, state, ip, "provider_unavailable", exc.message)
        response = _page("Sign-in unavailable", UNAVAILABLE, 503)
    except DppError as exc:  # the identity could not be stored (an unusable email, say)
        log.warning("OIDC sign-in refused from %s: %s", ip, exc.message)
        await run_in_threadpool(_audit_failure, state, ip, "invalid_identity", exc.message)
        response = _page("Sign-in failed", REFUSED, 401)
    else:
        response = RedirectResponse(safe_next(done.next_url), status_code=302)
        response.headers["Cache-Control"] = "no-store"
        set_session_cookie(response, token, request)
    if marker in request.cookies:
        response.delete_cookie(
            marker, path=CALLBACK_PATH, httponly=True, samesite="lax", secure=is_https(request)
        )
    return response


def _audit_failure(state: ServiceState, ip: str | None, reason: str, message: str) -> None:
    details: dict[str, Any] = {"method": "oidc", "reason": reason, "detail": message[:500]}
    with state.engine.begin() as conn:
        record(
            conn,
            actor=None,
            action="login.failure",
            target_type="account",
            source_ip=ip,
            details=details,
            bump=False,
        )
