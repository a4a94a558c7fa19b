"""API key usage per key per hour (spec §8.4), added in batches from each API process's
in-memory counters (no write per request); also moves ``api_keys.last_used_at``."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from dpp_lib.store.schema import api_key_usage, api_keys

Counts = Mapping[tuple[uuid.UUID, datetime], tuple[int, datetime]]


def add_usage(conn: sa.Connection, counts: Counts) -> None:
    """Add ``(key, hour) → (requests, last use)`` to the table (Postgres and SQLite upsert)."""
    if not counts:
        return
    insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    for (key_id, hour), (count, last) in sorted(counts.items(), key=lambda kv: str(kv[0])):
        stmt = insert(api_key_usage).values(
            key_id=key_id, hour_start=hour, request_count=count, last_used_at=last
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=["key_id", "hour_start"],
            set_={
                "request_count": api_key_usage.c.request_count + stmt.excluded.request_count,
                "last_used_at": sa.func.max(
                    api_key_usage.c.last_used_at, stmt.excluded.last_used_at
                )
                if conn.dialect.name == "sqlite"
                else sa.func.greatest(api_key_usage.c.last_used_at, stmt.excluded.last_used_at),
            },
        )
        conn.execute(stmt)
    latest: dict[uuid.UUID, datetime] = {}
    for (key_id, _hour), (_count, last) in counts.items():
        latest[key_id] = max(last, latest.get(key_id, last))
    for key_id, last in sorted(latest.items(), key=lambda kv: str(kv[0])):
        conn.execute(
            api_keys.update()
            .where(
                api_keys.c.key_id == key_id,
                sa.or_(api_keys.c.last_used_at.is_(None), api_keys.c.last_used_at < last),
            )
            .values(last_used_at=last)
        )


def usage(
    conn: sa.Connection, *, key_id: uuid.UUID | None = None, since: datetime | None = None
) -> list[dict[str, Any]]:
    query = sa.select(api_key_usage).order_by(
        api_key_usage.c.hour_start.desc(), api_key_usage.c.key_id
    )
    if key_id is not None:
        query = query.where(api_key_usage.c.key_id == key_id)
    if since is not None:
        query = query.where(api_key_usage.c.hour_start >= since)
    return [
        {
            "key_id": str(r.key_id),
            "hour_start": r.hour_start.isoformat(),
            "requests": int(r.request_count),
            "last_used_at": r.last_used_at.isoformat(),
        }
        for r in conn.execute(query.limit(1000))
    ]
