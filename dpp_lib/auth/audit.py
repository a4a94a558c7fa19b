"""Who did it: actors of access changes as one string, recorded in the audit log.

An actor is ``"user:<id>"``, ``"api_key:<id>"``, ``"cli"`` / ``"cli:<os user>"``,
``"system"`` or None (the system); a bare id is taken as a user.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from dpp_lib.store import audit, data_versions

ACTOR_TYPES = ("user", "api_key", "cli", "system")
ACCESS_TOPIC = "access"  # the data version every user, role, mapping or session change moves


def split_actor(actor: str | None) -> tuple[str, str | None]:
    if actor is None:
        return "system", None
    kind, sep, ident = actor.partition(":")
    if kind in ACTOR_TYPES:
        return kind, (ident or None) if sep else None
    return "user", actor


def record(
    conn: sa.Connection,
    *,
    actor: str | None,
    action: str,
    target_type: str | None = None,
    target_id: str | None = None,
    source_ip: str | None = None,
    details: dict[str, Any] | None = None,
    bump: bool = True,
) -> None:
    """One audit row; ``bump`` also moves the access version (API processes drop the
    principals they cached)."""
    actor_type, actor_id = split_actor(actor)
    audit.record(
        conn,
        actor_type=actor_type,
        actor_id=actor_id,
        action=action,
        target_type=target_type,
        target_id=target_id,
        source_ip=source_ip,
        details=details,
    )
    if bump:
        data_versions.bump(conn, [ACCESS_TOPIC])


def actor_uuid(actor: str | None) -> Any:
    """The user id in ``actor`` (for granted_by / created_by columns), else None."""
    import uuid

    kind, ident = split_actor(actor)
    if kind != "user" or ident is None:
        return None
    try:
        return uuid.UUID(ident)
    except ValueError:
        return None
