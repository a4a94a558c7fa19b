"""Sign-in, sign-out and who am I (spec §3.2.2, §3.3): the database sign-in form at
``/login``; in OIDC mode ``/login`` hands over to ``/login/oidc`` (routes/oidc.py)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from urllib.parse import quote

import sqlalchemy as sa
from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from starlette.responses import HTMLResponse, RedirectResponse, Response

from dpp_lib.auth import attempts
from dpp_lib.auth.audit import record
from dpp_lib.auth.roles import list_roles
from dpp_lib.auth.sessions import revoke_session, session_id_for, sign_in
from dpp_lib.auth.users import authenticate, get_user
from dpp_lib.store.schema import delivery_streams, tech_streams
from dpp_lib.store.types import now_utc
from ingest_service.deps import service
from ingest_service.errors import ApiError
from ingest_service.fastpath import token_digest
from ingest_service.responses import JsonResponse
from ingest_service.sessions import (
    CSRF_FIELD,
    LOGIN_CSRF_COOKIE,
    SESSION_COOKIE,
    check_session_csrf,
    clear_session_cookie,
    client_ip,
    csrf_matches,
    current_session,
    is_https,
    login_csrf_token,
    new_pre_session,
    safe_next,
    session_csrf_token,
    set_session_cookie,
)
from ingest_service.templates.login import login_page, message_page

router = APIRouter(tags=["sign-in"], include_in_schema=False)

GENERIC_FAILURE = "The email address or password is incorrect."
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}
MAX_FORM_FIELD = 2000


def _html(text: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(text, status_code=status, headers=SECURITY_HEADERS)


def _form_page(
    request: Request, next_url: str, *, email: str = "", error: str | None = None, status: int = 200
) -> HTMLResponse:
    """The form with a fresh pre-session cookie and the CSRF token bound to it."""
    pre = new_pre_session()
    response = _html(
        login_page(
            csrf_token=login_csrf_token(request, pre), next_url=next_url, email=email, error=error
        ),
        status,
    )
    response.set_cookie(
        LOGIN_CSRF_COOKIE,
        pre,
        max_age=3600,
        path="/login",
        httponly=True,
        samesite="lax",
        secure=is_https(request),
    )
    return response


@router.get("/login")
async def login_form(request: Request, next: str | None = None) -> Response:
    target = safe_next(next)
    if service(request).settings.auth_method == "oidc":
        return RedirectResponse(f"/login/oidc?next={quote(target, safe='/')}", status_code=303)
    return _form_page(request, target)


@router.post("/login")
async def login_submit(request: Request) -> Response:
    state = service(request)
    form = await request.form()
    field = {
        k: str(form.get(k, ""))[:MAX_FORM_FIELD] for k in ("email", "password", "next", CSRF_FIELD)
    }
    target = safe_next(field["next"])
    if state.settings.auth_method == "oidc":
        return RedirectResponse(f"/login/oidc?next={quote(target, safe='/')}", status_code=303)
    pre = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not pre or not csrf_matches(login_csrf_token(request, pre), field[CSRF_FIELD]):
        return _form_page(
            request,
            target,
            email=field["email"],
            status=403,
            error="The sign-in form expired or was not sent from this site. Please try again.",
        )
    email, password = field["email"].strip().lower(), field["password"]
    ip = client_ip(request)
    agent = request.headers.get("user-agent", "")[:500]
    now = now_utc()
    keys = [attempts.account_key(email), attempts.ip_key(ip)]

    def attempt() -> tuple[str, Any]:
        with state.engine.begin() as conn:
            wait = attempts.blocked_for(conn, keys, now)
            if wait:
                record(
                    conn,
                    actor=None,
                    action="login.throttled",
                    target_type="account",
                    target_id=email,
                    source_ip=ip,
                    details={"retry_after": wait},
                    bump=False,
                )
                return "throttled", wait
        with state.engine.begin() as conn:
            user = authenticate(conn, email, password, now) if email and password else None
            if user is None:
                attempts.record_failure(conn, keys[0], attempts.ACCOUNT_FREE, now)
                attempts.record_failure(conn, keys[1], attempts.IP_FREE, now)
                record(
                    conn,
                    actor=None,
                    action="login.failure",
                    target_type="account",
                    target_id=email,
                    source_ip=ip,
                    details={"method": "database"},
                    bump=False,
                )
                return "failed", None
            attempts.clear(conn, keys[0])
            _, token = sign_in(
                conn,
                user_id=user.user_id,
                auth_method="database",
                now=now,
                duration=timedelta(minutes=state.settings.session_duration_minutes),
                source_ip=ip,
                user_agent=agent,
            )
            return "ok", token

    outcome, value = await run_in_threadpool(attempt)
    if outcome == "throttled":
        page = _form_page(
            request,
            target,
            email=field["email"],
            status=429,
            error=f"Too many sign-in attempts. Please wait {value} seconds and try again.",
        )
        page.headers["Retry-After"] = str(value)
        return page
    if outcome == "failed":
        return _form_page(request, target, email=field["email"], error=GENERIC_FAILURE, status=401)
    response = RedirectResponse(target, status_code=303)
    set_session_cookie(response, value, request)
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/login")
    return response


@router.post("/logout")
async def logout(request: Request) -> Response:
    """Revoke the session (CSRF token required) and clear the cookie."""
    state = service(request)
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        form = await request.form()
        if not check_session_csrf(request, str(form.get(CSRF_FIELD, ""))):
            return _html(
                message_page(
                    "Sign-out refused",
                    "The sign-out request did not come from this "
                    "site's page. You are still signed in.",
                    link="/auth/me",
                    link_text="Your account",
                ),
                403,
            )
        known = await current_session(request)
        ip = client_ip(request)

        def revoke() -> None:
            with state.engine.begin() as conn:
                done = revoke_session(conn, session_id_for(token), now_utc())
                if done and known is not None:
                    record(
                        conn,
                        actor=f"user:{known.info.user_id}",
                        action="logout",
                        target_type="session",
                        target_id=str(known.info.session_id),
                        source_ip=ip,
                        bump=False,
                    )

        await run_in_threadpool(revoke)
        state.known_sessions.forget(token_digest(token))
        state.versions.expire()
    response = RedirectResponse("/login", status_code=303)
    clear_session_cookie(response, request)
    return response


@router.get("/auth/me")
async def me(request: Request) -> JsonResponse:
    """The signed-in user, its roles, permissions, visible streams and CSRF token."""
    known = await current_session(request)
    if known is None:
        raise ApiError(401, "not signed in: sign in at /login")
    state = service(request)
    principal = known.principal

    def load() -> dict[str, Any]:
        with state.engine.connect() as conn:
            user = get_user(conn, known.info.user_id)
            grants = list_roles(conn, known.info.user_id)
            streams = {
                kind: [
                    {"stream_id": str(r.stream_id), "name": r.name, "display_name": r.display_name}
                    for r in conn.execute(
                        sa.select(t.c.stream_id, t.c.name, t.c.display_name)
                        .where(t.c.is_active)
                        .order_by(t.c.name)
                    )
                    if allowed is None or r.stream_id in allowed
                ]
                for kind, t, allowed in (
                    ("delivery_streams", delivery_streams, principal.delivery_streams),
                    ("tech_streams", tech_streams, principal.tech_streams),
                )
            }
        return {
            "user": user.as_dict() if user else None,
            "roles": [g.as_dict() for g in grants],
            "permissions": sorted(principal.permissions),
            "all_streams": not principal.is_restricted,
            **streams,
        }

    data = await run_in_threadpool(load)
    data["session"] = {
        "auth_method": known.info.auth_method,
        "expires_at": known.info.expires_at.isoformat(),
        "csrf_token": session_csrf_token(request, request.cookies[SESSION_COOKIE]),
    }
    return JsonResponse({"status": "ok", "data": data}, headers={"Cache-Control": "no-store"})
