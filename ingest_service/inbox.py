"""Where accepted deliveries are written: the ``raw_events`` inbox, on either backend.

The request path does two things with the database: find the caller's API key and append
the delivery. On Postgres both run on an asyncio connection pool (psycopg), so a request
never waits for a thread; each append is one autocommitted ``INSERT … ON CONFLICT DO
NOTHING RETURNING``, durable before the ``202`` is sent. On the embedded SQLite file the
same statements run through SQLAlchemy in the threadpool (SQLite has one writer anyway).

Both implementations write identical rows; the suite runs every webhook and event test
against each (tests/ingest_service).
"""

from __future__ import annotations

import threading
import uuid
from datetime import datetime, timedelta
from types import SimpleNamespace
from typing import Any, Protocol

import orjson
import sqlalchemy as sa
from fastapi.concurrency import run_in_threadpool
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool
from sqlalchemy.engine import make_url

from dpp_lib.store import api_keys
from dpp_lib.store.schema import raw_events
from dpp_lib.store.types import now_utc
from dpp_lib.store.write import dialect_insert
from ingest_service.records import InboxRecord, body_sha256

KEY_TOUCH_INTERVAL = timedelta(seconds=60)


class Inbox(Protocol):
    async def open(self) -> None: ...
    async def close(self) -> None: ...
    async def find_api_key(self, plaintext: str) -> api_keys.ApiKey | None: ...
    async def append(self, rec: InboxRecord) -> bool:
        """Write one accepted delivery; False when (source, delivery_id) was already there."""
        ...


class KeyTouches:
    """``last_used_at`` to the minute: one UPDATE per key per minute, not one per request."""

    def __init__(self) -> None:
        self._last: dict[uuid.UUID, datetime] = {}
        self._lock = threading.Lock()

    def due(self, key_id: uuid.UUID, now: datetime) -> bool:
        with self._lock:
            last = self._last.get(key_id)
            if last is not None and now - last < KEY_TOUCH_INTERVAL:
                return False
            self._last[key_id] = now
            return True


def _row_values(rec: InboxRecord, now: datetime) -> dict[str, Any]:
    return {
        "source": rec.source,
        "delivery_id": rec.delivery_id,
        "event_kind": rec.event_kind,
        "headers": rec.headers,
        "body": rec.body,
        "body_sha256": body_sha256(rec.body),
        "api_key_id": rec.api_key_id,
        "received_at": now,
        "state": "pending",
        "attempts": 0,
        "next_attempt_at": now,
    }


class SqlAlchemyInbox:
    """Any SQLAlchemy engine (the embedded SQLite default); statements run in the threadpool."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        self.touches = KeyTouches()

    async def open(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def find_api_key(self, plaintext: str) -> api_keys.ApiKey | None:
        return await run_in_threadpool(self._find, plaintext)

    def _find(self, plaintext: str) -> api_keys.ApiKey | None:
        with self.engine.connect() as conn:
            return api_keys.find_key(conn, plaintext)

    async def append(self, rec: InboxRecord) -> bool:
        return await run_in_threadpool(self.append_sync, rec)

    def append_sync(self, rec: InboxRecord) -> bool:
        now = now_utc()
        with self.engine.begin() as conn:
            stmt = (
                dialect_insert(conn, raw_events)
                .values(**_row_values(rec, now))
                .on_conflict_do_nothing()
                .returning(raw_events.c.id)
            )
            inserted = conn.execute(stmt).first() is not None
            if rec.api_key_id is not None and self.touches.due(rec.api_key_id, now):
                api_keys.touch(conn, rec.api_key_id, now)
        return inserted


INSERT_SQL = """
INSERT INTO raw_events (source, delivery_id, event_kind, headers, body, body_sha256,
                        api_key_id, received_at, state, attempts, next_attempt_at)
VALUES (%(source)s, %(delivery_id)s, %(event_kind)s, %(headers)s, %(body)s, %(body_sha256)s,
        %(api_key_id)s, %(received_at)s, %(state)s, %(attempts)s, %(next_attempt_at)s)
ON CONFLICT (source, delivery_id) DO NOTHING
RETURNING id
"""
FIND_KEY_SQL = """
SELECT key_id, display_name, permissions, stream_scope, is_active, expires_at, last_used_at,
       key_prefix
FROM api_keys WHERE key_hash = %s
"""
TOUCH_SQL = "UPDATE api_keys SET last_used_at = %s WHERE key_id = %s"


def libpq_conninfo(url: str) -> str:
    """A SQLAlchemy Postgres URL as a libpq URI (query options such as search_path kept)."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


class PostgresInbox:
    """Postgres through a psycopg asyncio pool: no thread hop, no ORM work per request."""

    def __init__(self, url: str, *, size: int) -> None:
        self.pool = AsyncConnectionPool(
            libpq_conninfo(url),
            min_size=min(4, size),
            max_size=size,
            open=False,
            kwargs={"autocommit": True},
            name="dpp-inbox",
        )
        self.touches = KeyTouches()

    async def open(self) -> None:
        await self.pool.open(wait=True, timeout=30)

    async def close(self) -> None:
        await self.pool.close()

    async def find_api_key(self, plaintext: str) -> api_keys.ApiKey | None:
        async with self.pool.connection() as conn:
            cur = conn.cursor(row_factory=dict_row)
            await cur.execute(FIND_KEY_SQL, (api_keys.hash_key(plaintext),))
            row = await cur.fetchone()
        if row is None:
            return None
        row["stream_scope"] = _json(row["stream_scope"])
        return api_keys.row_to_key(SimpleNamespace(**row))

    async def append(self, rec: InboxRecord) -> bool:
        now = now_utc()
        values = _row_values(rec, now)
        values["headers"] = Jsonb(values["headers"])
        async with self.pool.connection() as conn:
            cur = await conn.execute(INSERT_SQL, values)
            inserted = await cur.fetchone() is not None
            if rec.api_key_id is not None and self.touches.due(rec.api_key_id, now):
                await conn.execute(TOUCH_SQL, (now, rec.api_key_id))
        return inserted


def _json(value: Any) -> Any:
    return orjson.loads(value) if isinstance(value, str | bytes) else value


def make_inbox(engine: sa.Engine, url: str, *, pool_size: int) -> Inbox:
    if engine.dialect.name == "postgresql":
        return PostgresInbox(url, size=pool_size)
    return SqlAlchemyInbox(engine)
