"""The audit log (spec §8.4): who did what, when, from where."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa

from dpp_lib.store.schema import audit_log
from dpp_lib.store.types import new_id, now_utc


def record(
    conn: sa.Connection,
    *,
    actor_type: str,
    action: str,
    actor_id: str | None = None,
    target_type: str | None = None,
    target_id: str | None = None,
    source_ip: str | None = None,
    details: dict[str, Any] | None = None,
) -> None:
    conn.execute(
        audit_log.insert().values(
            audit_id=new_id(),
            occurred_at=now_utc(),
            actor_type=actor_type,
            actor_id=actor_id,
            action=action,
            target_type=target_type,
            target_id=target_id,
            source_ip=source_ip,
            details=details,
        )
    )


def search(
    conn: sa.Connection,
    *,
    action: str | None = None,
    actor: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 100,
    offset: int = 0,
) -> tuple[list[dict[str, Any]], int]:
    """Audit rows, newest first, and how many match in all. ``action`` is exact or a prefix
    ending in ``*`` (``login.*``); ``actor`` is an actor id or ``<type>:<id>``."""
    conds: list[Any] = []
    if action:
        if action.endswith("*"):
            prefix = action[:-1].replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            conds.append(audit_log.c.action.like(prefix + "%", escape="\\"))
        else:
            conds.append(audit_log.c.action == action)
    if actor:
        kind, sep, ident = actor.partition(":")
        if sep and kind in ("user", "api_key", "cli", "system"):
            conds.append(audit_log.c.actor_type == kind)
            if ident:
                conds.append(audit_log.c.actor_id == ident)
        else:
            conds.append(audit_log.c.actor_id == actor)
    if since is not None:
        conds.append(audit_log.c.occurred_at >= since)
    if until is not None:
        conds.append(audit_log.c.occurred_at < until)
    where = sa.and_(sa.true(), *conds)
    total = conn.execute(
        sa.select(sa.func.count()).select_from(audit_log).where(where)
    ).scalar_one()
    rows = conn.execute(
        sa.select(audit_log)
        .where(where)
        .order_by(audit_log.c.occurred_at.desc(), audit_log.c.audit_id)
        .limit(limit)
        .offset(offset)
    )
    out = [
        {
            "audit_id": str(r.audit_id),
            "occurred_at": r.occurred_at.isoformat(),
            "actor_type": r.actor_type,
            "actor_id": r.actor_id,
            "action": r.action,
            "target_type": r.target_type,
            "target_id": r.target_id,
            "source_ip": r.source_ip,
            "details": r.details,
        }
        for r in rows
    ]
    return out, int(total)
