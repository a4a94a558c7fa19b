"""Users (spec §3.2): created by an administrator (database sign-in) or on first OIDC
sign-in; deactivated, never deleted (the audit log names them)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from dpp_lib.auth import passwords
from dpp_lib.auth.audit import record
from dpp_lib.auth.errors import AccessError, AccessNotFound, require_printable
from dpp_lib.store.schema import users
from dpp_lib.store.schema_config import AUTH_SOURCES
from dpp_lib.store.types import now_utc


@dataclass(frozen=True)
class User:
    user_id: uuid.UUID
    email: str
    display_name: str
    auth_source: str
    is_active: bool
    created_at: datetime
    last_login_at: datetime | None
    has_password: bool

    def as_dict(self) -> dict[str, Any]:
        return {
            "user_id": str(self.user_id),
            "email": self.email,
            "display_name": self.display_name,
            "auth_source": self.auth_source,
            "is_active": self.is_active,
            "created_at": self.created_at.isoformat(),
            "last_login_at": self.last_login_at.isoformat() if self.last_login_at else None,
        }


def normalise_email(email: str) -> str:
    text = require_printable(email, "the email address").strip().lower()
    local, at, domain = text.partition("@")
    if not at or not local or "." not in domain or " " in text or len(text) > 320:
        raise AccessError(f"{email!r} is not an email address")
    return text


def _row_to_user(row: Any) -> User:
    return User(
        user_id=row.user_id,
        email=row.email,
        display_name=row.display_name,
        auth_source=row.auth_source,
        is_active=row.is_active,
        created_at=row.created_at,
        last_login_at=row.last_login_at,
        has_password=row.password_hash is not None,
    )


def create_user(
    conn: sa.Connection,
    *,
    email: str,
    display_name: str,
    password: str | None,
    auth_source: str,
    actor: str | None,
    source_ip: str | None = None,
) -> User:
    """A new active user. Database users need a password (at least 12 characters); OIDC
    users have none. Refuses an email already in use."""
    if auth_source not in AUTH_SOURCES:
        raise AccessError(f"auth_source {auth_source!r}: choose from {', '.join(AUTH_SOURCES)}")
    address = normalise_email(email)
    name = require_printable(display_name, "the display name").strip()
    if not name:
        raise AccessError("a user needs a display name")
    if auth_source == "database" and not password:
        raise AccessError("a database user needs a password")
    if auth_source == "oidc" and password:
        raise AccessError("an OIDC user signs in at the provider: give no password")
    if find_user_by_email(conn, address) is not None:
        raise AccessError(f"a user with the email {address!r} already exists")
    user_id = uuid.uuid4()
    conn.execute(
        users.insert().values(
            user_id=user_id,
            email=address,
            display_name=name,
            password_hash=passwords.hash_password(password) if password else None,
            auth_source=auth_source,
            created_at=now_utc(),
        )
    )
    record(
        conn,
        actor=actor,
        action="user.create",
        target_type="user",
        target_id=str(user_id),
        source_ip=source_ip,
        details={"email": address, "auth_source": auth_source},
    )
    return _require(conn, user_id)


def set_password(
    conn: sa.Connection,
    user_id: uuid.UUID,
    password: str,
    *,
    actor: str | None,
    source_ip: str | None = None,
) -> User:
    user = _require(conn, user_id)
    if user.auth_source != "database":
        raise AccessError(f"{user.email} signs in through OIDC: it has no password here")
    conn.execute(
        users.update()
        .where(users.c.user_id == user_id)
        .values(password_hash=passwords.hash_password(password))
    )
    record(
        conn,
        actor=actor,
        action="user.set_password",
        target_type="user",
        target_id=str(user_id),
        source_ip=source_ip,
    )
    return _require(conn, user_id)


def deactivate_user(
    conn: sa.Connection,
    user_id: uuid.UUID,
    *,
    actor: str | None,
    source_ip: str | None = None,
) -> User:
    """Deactivate and sign out everywhere (every session revoked)."""
    from dpp_lib.auth.sessions import revoke_user_sessions

    _require(conn, user_id)
    conn.execute(users.update().where(users.c.user_id == user_id).values(is_active=False))
    revoked = revoke_user_sessions(conn, user_id, now_utc())
    record(
        conn,
        actor=actor,
        action="user.deactivate",
        target_type="user",
        target_id=str(user_id),
        source_ip=source_ip,
        details={"sessions_revoked": revoked},
    )
    return _require(conn, user_id)


def list_users(conn: sa.Connection, *, include_inactive: bool = True) -> list[User]:
    query = sa.select(users).order_by(users.c.email)
    if not include_inactive:
        query = query.where(users.c.is_active)
    return [_row_to_user(r) for r in conn.execute(query)]


def get_user(conn: sa.Connection, user_id: uuid.UUID) -> User | None:
    row = conn.execute(sa.select(users).where(users.c.user_id == user_id)).first()
    return _row_to_user(row) if row else None


def find_user_by_email(conn: sa.Connection, email: str) -> User | None:
    row = conn.execute(sa.select(users).where(users.c.email == email.strip().lower())).first()
    return _row_to_user(row) if row else None


def resolve_user(conn: sa.Connection, ident: str) -> User:
    """A user named by id or email (CLI and admin API): AccessNotFound when none."""
    require_printable(ident, "the user id or email")
    try:
        found = get_user(conn, uuid.UUID(ident))
    except ValueError:
        found = find_user_by_email(conn, ident)
    if found is None:
        raise AccessNotFound(f"no user has the id or email {ident!r}")
    return found


def authenticate(conn: sa.Connection, email: str, password: str, now: datetime) -> User | None:
    """The active database user with this email and password, else None (same cost either
    way). Records the sign-in time and upgrades an outdated hash."""
    row = conn.execute(sa.select(users).where(users.c.email == email.strip().lower())).first()
    stored = row.password_hash if row is not None else None
    ok = passwords.verify_password(stored, password)
    if row is None or not ok or not row.is_active or row.auth_source != "database":
        return None
    values: dict[str, Any] = {"last_login_at": now}
    if passwords.needs_rehash(stored or ""):
        values["password_hash"] = passwords.hash_password(password)
    conn.execute(users.update().where(users.c.user_id == row.user_id).values(**values))
    return _require(conn, row.user_id)


def upsert_external_user(
    conn: sa.Connection,
    *,
    email: str,
    display_name: str,
    groups: Sequence[str],
    now: datetime,
) -> User:
    """An OIDC sign-in: create the user (auth_source 'oidc') or refresh its display name,
    then replace its group-derived roles from ``group_role_mappings``. Manual grants stay.
    An inactive user stays inactive (``principal_for_user`` then refuses it)."""
    from dpp_lib.auth.roles import sync_group_roles

    address = normalise_email(email)
    name = display_name.strip() or address
    existing = find_user_by_email(conn, address)
    if existing is None:
        user_id = uuid.uuid4()
        conn.execute(
            users.insert().values(
                user_id=user_id,
                email=address,
                display_name=name,
                password_hash=None,
                auth_source="oidc",
                created_at=now,
                last_login_at=now,
            )
        )
        record(
            conn,
            actor="system",
            action="user.create",
            target_type="user",
            target_id=str(user_id),
            details={"email": address, "auth_source": "oidc"},
        )
    else:
        user_id = existing.user_id
        conn.execute(
            users.update()
            .where(users.c.user_id == user_id)
            .values(display_name=name, last_login_at=now)
        )
    sync_group_roles(conn, user_id, groups, now)
    return _require(conn, user_id)


def _require(conn: sa.Connection, user_id: uuid.UUID) -> User:
    found = get_user(conn, user_id)
    if found is None:
        raise AccessNotFound(f"no user has the id {user_id}")
    return found


__all__ = [
    "User",
    "authenticate",
    "create_user",
    "deactivate_user",
    "find_user_by_email",
    "get_user",
    "list_users",
    "resolve_user",
    "set_password",
    "upsert_external_user",
]
