"""Sessions (spec §3.3): the browser holds a random token; the database holds a row whose
id is derived from the token's SHA-256, so a copy of the database opens no session."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from dpp_lib.auth.audit import ACCESS_TOPIC, record
from dpp_lib.auth.errors import AccessError
from dpp_lib.store import data_versions
from dpp_lib.store.schema import sessions, users

AUTH_METHODS = ("database", "oidc")
ACTIVITY_RESOLUTION = timedelta(minutes=1)  # last_activity_at is written at most this often


@dataclass(frozen=True)
class SessionInfo:
    session_id: uuid.UUID
    user_id: uuid.UUID
    auth_method: str
    created_at: datetime
    expires_at: datetime
    last_activity_at: datetime | None
    source_ip: str | None = None
    user_agent: str | None = None


def session_id_for(token: str) -> uuid.UUID:
    """The row id of a cookie token: the first 128 bits of its SHA-256."""
    return uuid.UUID(bytes=hashlib.sha256(token.encode()).digest()[:16])


def create_session(
    conn: sa.Connection,
    *,
    user_id: uuid.UUID,
    auth_method: str,
    now: datetime,
    duration: timedelta,
    source_ip: str | None = None,
    user_agent: str | None = None,
) -> tuple[SessionInfo, str]:
    """A new session; returns it and the cookie token (``secrets.token_urlsafe(32)``), which
    is stored nowhere."""
    if auth_method not in AUTH_METHODS:
        raise AccessError(f"auth_method {auth_method!r}: choose from {', '.join(AUTH_METHODS)}")
    if duration <= timedelta(0):
        raise AccessError("a session needs a positive duration")
    token = secrets.token_urlsafe(32)
    info = SessionInfo(
        session_id=session_id_for(token),
        user_id=user_id,
        auth_method=auth_method,
        created_at=now,
        expires_at=now + duration,
        last_activity_at=now,
        source_ip=(source_ip or None) and source_ip[:64],
        user_agent=(user_agent or None) and user_agent[:500],
    )
    conn.execute(
        sessions.insert().values(
            session_id=info.session_id,
            user_id=user_id,
            auth_method=auth_method,
            created_at=now,
            expires_at=info.expires_at,
            last_activity_at=now,
            source_ip=info.source_ip,
            user_agent=info.user_agent,
        )
    )
    return info, token


def resolve_session(conn: sa.Connection, token: str, now: datetime) -> SessionInfo | None:
    """The live session of ``token``: None when unknown, expired, revoked or its user is
    inactive. Refreshes last_activity_at when it is a minute old or more."""
    if not token or len(token) > 200:
        return None
    sid = session_id_for(token)
    row = conn.execute(
        sa.select(sessions, users.c.is_active.label("user_active"))
        .join(users, users.c.user_id == sessions.c.user_id)
        .where(sessions.c.session_id == sid)
    ).first()
    if row is None or row.is_revoked or row.expires_at <= now or not row.user_active:
        return None
    last = row.last_activity_at
    if last is None or now - last >= ACTIVITY_RESOLUTION:
        conn.execute(
            sessions.update().where(sessions.c.session_id == sid).values(last_activity_at=now)
        )
        last = now
    return _info(row, last)


def _info(row: Any, last: datetime | None) -> SessionInfo:
    return SessionInfo(
        row.session_id,
        row.user_id,
        row.auth_method,
        row.created_at,
        row.expires_at,
        last,
        row.source_ip,
        row.user_agent,
    )


def revoke_session(conn: sa.Connection, session_id: uuid.UUID, now: datetime) -> bool:
    """Revoke one session (False when it was unknown or already revoked)."""
    done = conn.execute(
        sessions.update()
        .where(sessions.c.session_id == session_id, sessions.c.is_revoked.is_(False))
        .values(is_revoked=True, revoked_at=now)
    ).rowcount
    if done:
        data_versions.bump(conn, [ACCESS_TOPIC])
    return bool(done)


def revoke_user_sessions(conn: sa.Connection, user_id: uuid.UUID, now: datetime) -> int:
    """Revoke every live session of the user; returns how many."""
    done = conn.execute(
        sessions.update()
        .where(
            sessions.c.user_id == user_id,
            sessions.c.is_revoked.is_(False),
            sessions.c.expires_at > now,
        )
        .values(is_revoked=True, revoked_at=now)
    ).rowcount
    if done:
        data_versions.bump(conn, [ACCESS_TOPIC])
    return int(done)


def list_sessions(conn: sa.Connection, user_id: uuid.UUID, now: datetime) -> list[SessionInfo]:
    rows = conn.execute(
        sa.select(sessions)
        .where(
            sessions.c.user_id == user_id,
            sessions.c.is_revoked.is_(False),
            sessions.c.expires_at > now,
        )
        .order_by(sessions.c.created_at)
    )
    return [_info(r, r.last_activity_at) for r in rows]


def sign_in(
    conn: sa.Connection,
    *,
    user_id: uuid.UUID,
    auth_method: str,
    now: datetime,
    duration: timedelta,
    source_ip: str | None,
    user_agent: str | None,
    details: dict[str, Any] | None = None,
) -> tuple[SessionInfo, str]:
    """A session for a user who has just proved who they are, with its ``login.success``
    audit row (``details`` adds to ``{"method": auth_method}``); returns it and its token."""
    info, token = create_session(
        conn,
        user_id=user_id,
        auth_method=auth_method,
        now=now,
        duration=duration,
        source_ip=source_ip,
        user_agent=user_agent,
    )
    record(
        conn,
        actor=f"user:{user_id}",
        action="login.success",
        target_type="session",
        target_id=str(info.session_id),
        source_ip=source_ip,
        details={"method": auth_method, **(details or {})},
        bump=False,
    )
    return info, token
