"""The audit log (spec §8.4): who did what, when, from where."""

from __future__ import annotations

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
