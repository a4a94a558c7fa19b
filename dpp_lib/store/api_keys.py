"""API keys (spec §3.2.3): generated once, stored only as a SHA-256 hash, scoped, expiring.

Keys are 256-bit random tokens, so a fast unsalted hash is enough to make the stored value
useless to an attacker (a slow KDF protects low-entropy passwords, not random keys) and lets
a request find its key with one indexed lookup.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from dpp_lib.errors import DppError
from dpp_lib.store import data_versions
from dpp_lib.store.schema import api_keys
from dpp_lib.store.types import now_utc

PERMISSIONS = ("events:write", "metrics:read", "admin")
KEY_PREFIX = "dpp_"


class ApiKeyError(DppError):
    code = "api_key_error"


@dataclass(frozen=True)
class ApiKey:
    key_id: uuid.UUID
    display_name: str
    permissions: tuple[str, ...]
    delivery_streams: frozenset[uuid.UUID] | None  # None = not restricted
    tech_streams: frozenset[uuid.UUID] | None
    is_active: bool
    expires_at: datetime | None
    last_used_at: datetime | None
    key_prefix: str

    @property
    def is_scoped(self) -> bool:
        return self.delivery_streams is not None or self.tech_streams is not None

    def usable(self, now: datetime) -> bool:
        return self.is_active and (self.expires_at is None or self.expires_at > now)


KEYS_TOPIC = "api_keys"  # the data version every change of a key moves


def hash_key(plaintext: str) -> str:
    return hashlib.sha256(plaintext.encode()).hexdigest()


def row_to_key(row: Any) -> ApiKey:
    scope = row.stream_scope or {}
    ds = scope.get("delivery_streams")
    ts = scope.get("tech_streams")
    return ApiKey(
        key_id=row.key_id,
        display_name=row.display_name,
        permissions=tuple(row.permissions or ()),
        delivery_streams=frozenset(uuid.UUID(s) for s in ds) if ds is not None else None,
        tech_streams=frozenset(uuid.UUID(s) for s in ts) if ts is not None else None,
        is_active=row.is_active,
        expires_at=row.expires_at,
        last_used_at=row.last_used_at,
        key_prefix=row.key_prefix,
    )


def create_key(
    conn: sa.Connection,
    *,
    name: str,
    permissions: list[str],
    delivery_streams: list[uuid.UUID] | None = None,
    tech_streams: list[uuid.UUID] | None = None,
    expires_days: int | None = None,
    created_by: uuid.UUID | None = None,
) -> tuple[ApiKey, str]:
    """Create a key; returns it and the plaintext, which is never stored or shown again."""
    bad = [p for p in permissions if p not in PERMISSIONS]
    if bad or not permissions:
        raise ApiKeyError(
            f"unknown permission(s) {', '.join(bad) or '(none given)'}; "
            f"choose from {', '.join(PERMISSIONS)}"
        )
    if not name.strip():
        raise ApiKeyError("an API key needs a name")
    if expires_days is not None and expires_days < 1:
        raise ApiKeyError("--expires-days must be at least 1")
    plaintext = KEY_PREFIX + secrets.token_urlsafe(32)
    scope: dict[str, list[str]] = {}
    if delivery_streams:
        scope["delivery_streams"] = sorted(str(s) for s in delivery_streams)
    if tech_streams:
        scope["tech_streams"] = sorted(str(s) for s in tech_streams)
    now = now_utc()
    key_id = uuid.uuid4()
    conn.execute(
        api_keys.insert().values(
            key_id=key_id,
            key_hash=hash_key(plaintext),
            key_prefix=plaintext[: len(KEY_PREFIX) + 6],
            display_name=name.strip(),
            permissions=sorted(set(permissions)),
            stream_scope=scope or None,
            created_by=created_by,
            created_at=now,
            expires_at=now + timedelta(days=expires_days) if expires_days else None,
        )
    )
    # No data-version bump: a new key changes no key an API process may hold in memory
    # (revocation and rotation do bump it).
    key = get_key(conn, key_id)
    assert key is not None  # just inserted in this transaction
    return key, plaintext


def get_key(conn: sa.Connection, key_id: uuid.UUID) -> ApiKey | None:
    row = conn.execute(sa.select(api_keys).where(api_keys.c.key_id == key_id)).first()
    return row_to_key(row) if row else None


def find_key(conn: sa.Connection, plaintext: str) -> ApiKey | None:
    row = conn.execute(
        sa.select(api_keys).where(api_keys.c.key_hash == hash_key(plaintext))
    ).first()
    return row_to_key(row) if row else None


def list_keys(conn: sa.Connection) -> list[ApiKey]:
    rows = conn.execute(sa.select(api_keys).order_by(api_keys.c.created_at))
    return [row_to_key(r) for r in rows]


def resolve_key(conn: sa.Connection, ident: str) -> uuid.UUID:
    """The id of the one key named by its id or its displayed prefix."""
    cond: Any
    try:
        cond = api_keys.c.key_id == uuid.UUID(ident)
    except ValueError:
        cond = api_keys.c.key_prefix == ident
    rows = conn.execute(sa.select(api_keys.c.key_id).where(cond)).scalars().all()
    if len(rows) != 1:
        raise ApiKeyError(f"no single API key matches {ident!r} (found {len(rows)})")
    found: uuid.UUID = rows[0]
    return found


def rotate_key(
    conn: sa.Connection, ident: str, *, created_by: uuid.UUID | None = None
) -> tuple[ApiKey, str, ApiKey]:
    """A new secret for a key: a new key with the same name, permissions, scope and expiry,
    and the old one revoked. Returns the new key, its plaintext (shown once) and the old key."""
    old = get_key(conn, resolve_key(conn, ident))
    assert old is not None
    if not old.is_active:
        raise ApiKeyError(f"API key {old.key_prefix} is revoked: create a new one instead")
    new, plaintext = create_key(
        conn,
        name=old.display_name,
        permissions=list(old.permissions),
        delivery_streams=sorted(old.delivery_streams or [], key=str) or None,
        tech_streams=sorted(old.tech_streams or [], key=str) or None,
        created_by=created_by,
    )
    conn.execute(
        api_keys.update().where(api_keys.c.key_id == new.key_id).values(expires_at=old.expires_at)
    )
    revoked = revoke_key(conn, str(old.key_id))
    refreshed = get_key(conn, new.key_id)
    assert refreshed is not None
    return refreshed, plaintext, revoked


def revoke_key(conn: sa.Connection, ident: str) -> ApiKey:
    """Revoke by key id or by the key's displayed prefix."""
    key_id = resolve_key(conn, ident)
    rows = [key_id]
    conn.execute(api_keys.update().where(api_keys.c.key_id == rows[0]).values(is_active=False))
    # API processes keep recently used keys in memory while this version holds
    data_versions.bump(conn, [KEYS_TOPIC])
    key = get_key(conn, rows[0])
    assert key is not None
    return key


def touch(conn: sa.Connection, key_id: uuid.UUID, when: datetime) -> None:
    conn.execute(api_keys.update().where(api_keys.c.key_id == key_id).values(last_used_at=when))
