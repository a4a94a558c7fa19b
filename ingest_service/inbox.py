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

import asyncio
import sys
import threading
import uuid
from datetime import datetime, timedelta
from types import SimpleNamespace
from typing import Any, Protocol

import orjson
import sqlalchemy as sa
from fastapi.concurrency import run_in_threadpool
from psycopg.rows import dict_row
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


# One statement for any number of deliveries: the arrays are zipped row by row. Binary
# parameters (%b): a 12 KB body in a text-format bytea[] would be escaped byte by byte.
INSERT_SQL = """
INSERT INTO raw_events (source, delivery_id, event_kind, headers, body, body_sha256,
                        api_key_id, received_at, state, attempts, next_attempt_at)
SELECT source, delivery_id, event_kind, headers::jsonb, body, body_sha256,
       api_key_id, received_at, 'pending', 0, received_at
FROM unnest(%b::varchar[], %b::varchar[], %b::varchar[], %b::text[], %b::bytea[],
            %b::varchar[], %b::uuid[], %b::timestamptz[])
     AS d(source, delivery_id, event_kind, headers, body, body_sha256, api_key_id, received_at)
ON CONFLICT (source, delivery_id) DO NOTHING
RETURNING source, delivery_id
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
    """Postgres through a psycopg asyncio pool: no thread hop, no ORM work per request.

    Appends are group-committed: a request hands its row to the writers and waits for the
    commit that contains it. A writer takes every row queued so far (up to ``MAX_BATCH``)
    and inserts them with one statement in one transaction; while it waits for Postgres, the
    next requests queue up for the next writer. A lone request is written at once, alone, so
    an idle service answers as fast as before; a busy one commits many rows per round trip
    and per WAL flush. Nothing is acknowledged before its commit, so a ``202`` still means
    stored.
    """

    MAX_BATCH = 256

    def __init__(self, url: str, *, size: int, writers: int = 4) -> None:
        self.pool = AsyncConnectionPool(
            libpq_conninfo(url),
            min_size=min(4, size),
            max_size=size,
            open=False,
            kwargs={"autocommit": True},
            name="dpp-inbox",
        )
        self.touches = KeyTouches()
        self.writers = max(1, min(writers, size - 1))
        self._queue: list[tuple[InboxRecord, datetime, asyncio.Future[bool]]] = []
        self._active = 0
        self.batches = 0  # statistics: statements and rows written
        self.rows = 0

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
        done: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._queue.append((rec, now_utc(), done))
        if self._active < self.writers:
            self._active += 1
            asyncio.get_running_loop().create_task(self._write_queued())
        return await done

    async def _write_queued(self) -> None:
        try:
            while self._queue:
                batch = self._queue[: self.MAX_BATCH]
                del self._queue[: self.MAX_BATCH]
                try:
                    await self._write(batch)
                except BaseException as exc:  # cancelled (shutdown): nobody is acknowledged
                    for _, _, done in batch:
                        if not done.done():
                            done.set_exception(exc)
                    raise
        finally:
            self._active -= 1

    async def _write(self, batch: list[tuple[InboxRecord, datetime, asyncio.Future[bool]]]) -> None:
        """Write a batch; if it fails, write its rows one by one so that one bad row (or a
        broken connection) fails only the requests it belongs to."""
        try:
            inserted = await self._insert(batch)
        except Exception:
            if len(batch) == 1:
                raise_into(batch[0][2])
                return
            for one in batch:
                await self._write([one])
            return
        for rec, _, done in batch:
            if not done.done():
                done.set_result(inserted.pop((rec.source, rec.delivery_id), False))

    async def _insert(
        self, batch: list[tuple[InboxRecord, datetime, asyncio.Future[bool]]]
    ) -> dict[tuple[str, str], bool]:
        recs = [rec for rec, _, _ in batch]
        columns = (
            [r.source for r in recs],
            [r.delivery_id for r in recs],
            [r.event_kind for r in recs],
            [orjson.dumps(r.headers).decode() for r in recs],
            [r.body for r in recs],
            [body_sha256(r.body) for r in recs],
            [r.api_key_id for r in recs],
            [received for _, received, _ in batch],
        )
        touch = {
            r.api_key_id: received
            for r, received, _ in batch
            if r.api_key_id is not None and self.touches.due(r.api_key_id, received)
        }
        async with self.pool.connection() as conn:
            # One autocommitted statement: atomic on its own, no BEGIN/COMMIT round trips.
            cur = await conn.execute(INSERT_SQL, columns)
            rows = await cur.fetchall()
            for key_id, when in touch.items():
                await conn.execute(TOUCH_SQL, (when, key_id))
        self.batches += 1
        self.rows += len(recs)
        # The same delivery twice in one batch: the first is stored, the other a duplicate.
        return {(source, delivery): True for source, delivery in rows}


def raise_into(done: asyncio.Future[bool]) -> None:
    """Hand the exception being handled to the request waiting on ``done``."""
    exc = sys.exc_info()[1]
    if not done.done() and exc is not None:
        done.set_exception(exc)


def _json(value: Any) -> Any:
    return orjson.loads(value) if isinstance(value, str | bytes) else value


def make_inbox(engine: sa.Engine, url: str, *, pool_size: int) -> Inbox:
    if engine.dialect.name == "postgresql":
        return PostgresInbox(url, size=pool_size)
    return SqlAlchemyInbox(engine)
