"""Engines for the two backends: Postgres (psycopg 3) and the embedded SQLite file (WAL)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import make_url


def normalise_url(url: str) -> str:
    """Accept ``postgres://`` and ``postgresql://`` and use the psycopg 3 driver."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url.removeprefix("postgres://")
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    return url


def make_engine(url: str, *, pool_size: int = 5, echo: bool = False) -> sa.Engine:
    url = normalise_url(url)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(
            url, echo=echo, connect_args={"timeout": 30, "check_same_thread": False}
        )
        sa.event.listen(engine, "connect", _sqlite_pragmas)
        sa.event.listen(engine, "begin", _sqlite_begin_immediate)
        return engine
    engine = sa.create_engine(
        url, echo=echo, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True
    )
    sa.event.listen(engine, "connect", _postgres_session)
    return engine


def _postgres_session(dbapi_conn: Any, _record: Any) -> None:
    # JIT compiled the metric reads' expressions for ~340 ms a query on 4 M events and won
    # nothing back at this size (bench-api); the planner's other settings are left alone.
    with dbapi_conn.cursor() as cur:
        cur.execute("SET jit = off")
    dbapi_conn.commit()


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    # Let SQLAlchemy (not the driver) open transactions, so BEGIN IMMEDIATE below applies.
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


READ_ONLY = "dpp_read_only"


def reader(engine: sa.Engine) -> sa.Engine:
    """``engine`` (the same pool) for transactions that only read. On SQLite they begin
    DEFERRED: under WAL readers then run side by side on a snapshot instead of queuing for
    the write lock that every other transaction takes at BEGIN (a dashboard's page reads for
    seconds; fifty of them queued past the 30 s busy timeout). No effect on Postgres."""
    return engine.execution_options(**{READ_ONLY: True})


def _sqlite_begin_immediate(conn: sa.Connection) -> None:
    if conn.get_execution_options().get(READ_ONLY):
        conn.exec_driver_sql("BEGIN DEFERRED")
        return
    # Take the write lock at BEGIN: two writers then queue on busy_timeout instead of
    # failing with "database is locked" when a read transaction tries to upgrade.
    conn.exec_driver_sql("BEGIN IMMEDIATE")


def is_postgres(engine_or_conn: sa.Engine | sa.Connection) -> bool:
    return engine_or_conn.dialect.name == "postgresql"
