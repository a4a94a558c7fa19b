"""Data versions: one counter per topic, bumped in the transaction that changes the data.

Topics are table names (``work_item_events``, ``deployment_records`` …), ``config`` for an
organisation config load, and ``cache:<endpoint>`` for an administrator's manual cache
invalidation. A reader that remembers the versions it computed an answer from knows the
answer is stale as soon as one of them moved — in any process (spec §7.3.4).
"""

from __future__ import annotations

from collections.abc import Iterable

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from dpp_lib.store.schema import data_versions
from dpp_lib.store.types import now_utc


def bump(conn: sa.Connection, topics: Iterable[str]) -> None:
    """Increment each topic's version (creating it at 1). Topics are locked in sorted order so
    concurrent writers never deadlock on them."""
    names = sorted(set(topics))
    if not names:
        return
    insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    now = now_utc()
    stmt = insert(data_versions).values(
        [{"topic": t, "version": 1, "changed_at": now} for t in names]
    )
    stmt = stmt.on_conflict_do_update(
        index_elements=["topic"],
        set_={"version": data_versions.c.version + 1, "changed_at": stmt.excluded.changed_at},
    )
    conn.execute(stmt)


def current(conn: sa.Connection) -> dict[str, int]:
    """Every topic's version."""
    rows = conn.execute(sa.select(data_versions.c.topic, data_versions.c.version))
    return {topic: int(version) for topic, version in rows}
