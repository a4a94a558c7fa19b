"""Browser sessions on the front door: the cookie, the signed-in principal (cached per
process), CSRF tokens, the client's address and safe redirects.

HTTPS detection: the cookie is ``Secure`` when the request's scheme is https. Behind a
reverse proxy that scheme comes from ``X-Forwarded-Proto``, which uvicorn's proxy-headers
support honours only from the addresses in ``--forwarded-allow-ips`` (default 127.0.0.1);
the same mechanism gives the client address used for throttling and the audit log.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import timedelta

from fastapi import Request
from fastapi.concurrency import run_in_threadpool
from starlette.responses import Response

from dpp_lib.access import Principal
from dpp_lib.auth.roles import principal_for_user
from dpp_lib.auth.sessions import SessionInfo, resolve_session
from dpp_lib.errors import SettingsError
from dpp_lib.store.types import now_utc
from ingest_service.deps import service
from ingest_service.fastpath import token_digest
from ingest_service.session_cache import KnownSession

SESSION_COOKIE = "dpp_session"
LOGIN_CSRF_COOKIE = "dpp_login_csrf"  # before a session exists: binds the login form
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"  # API calls that change something, with a session cookie
DEFAULT_NEXT = "/dashboards/"


def client_ip(request: Request) -> str | None:
    return request.client.host if request.client else None


def is_https(request: Request) -> bool:
    return request.url.scheme == "https"


def safe_next(value: str | None, default: str = DEFAULT_NEXT) -> str:
    """A local path to go to after signing in; anything else (another host, a scheme,
    ``//host``, back-slashes, control characters) gives ``default``."""
    if not value or len(value) > 2000:
        return default
    if not value.startswith("/") or value.startswith("//") or "\\" in value:
        return default
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        return default
    return value


def set_session_cookie(response: Response, token: str, request: Request) -> None:
    """HttpOnly, SameSite=Lax, Secure over HTTPS; lives as long as the session setting
    (the server refuses it sooner if the session is revoked)."""
    minutes = service(request).settings.session_duration_minutes
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=int(timedelta(minutes=minutes).total_seconds()),
        path="/",
        httponly=True,
        samesite="lax",
        secure=is_https(request),
    )


def clear_session_cookie(response: Response, request: Request) -> None:
    response.delete_cookie(
        SESSION_COOKIE, path="/", httponly=True, samesite="lax", secure=is_https(request)
    )


async def current_session(request: Request) -> KnownSession | None:
    """The request's live session and its principal, or None. Read from the database at
    most once a minute per process, and again as soon as any access change is made."""
    token = request.cookies.get(SESSION_COOKIE)
    if not token or len(token) > 200:
        return None
    state = service(request)
    versions = state.versions.fresh()
    if versions is None:
        versions = await run_in_threadpool(state.versions.current)
    digest = token_digest(token)
    now = now_utc()
    known = state.known_sessions.get(digest, versions, now)
    if known is not None:
        return known

    def load() -> tuple[SessionInfo, Principal] | None:
        with state.engine.begin() as conn:
            info = resolve_session(conn, token, now)
            principal = principal_for_user(conn, info.user_id) if info else None
        return (info, principal) if info and principal else None

    found = await run_in_threadpool(load)
    if found is None:
        return None
    return state.known_sessions.put(digest, found[0], found[1], versions)


async def current_user(request: Request) -> Principal | None:
    """The signed-in user's principal, or None without a live session."""
    known = await current_session(request)
    return known.principal if known else None


def _session_key(request: Request) -> bytes:
    key = service(request).settings.read_secret("session_key")
    if key is None:
        raise SettingsError("the session_key secret is missing: run 'dpp secrets init'")
    return key


def _mac(request: Request, purpose: str, value: str) -> str:
    message = f"{purpose}:{hashlib.sha256(value.encode()).hexdigest()}".encode()
    return hmac.new(_session_key(request), message, hashlib.sha256).hexdigest()


def session_csrf_token(request: Request, session_token: str) -> str:
    """The CSRF token of a session: an HMAC of its cookie token with ``session_key``."""
    return _mac(request, "session", session_token)


def login_csrf_token(request: Request, pre_session: str) -> str:
    return _mac(request, "login", pre_session)


def new_pre_session() -> str:
    return secrets.token_urlsafe(32)


def csrf_matches(expected: str, submitted: str | None) -> bool:
    return bool(submitted) and hmac.compare_digest(expected, submitted or "")


def check_session_csrf(request: Request, submitted: str | None) -> bool:
    token = request.cookies.get(SESSION_COOKIE)
    return bool(token) and csrf_matches(session_csrf_token(request, token or ""), submitted)
