"""SQLite transactions: writers take the write lock at BEGIN (and queue on it), readers
(``reader(engine)``) begin deferred and run beside a writer on their snapshot. Dashboards
read for seconds; fifty queued readers used to exceed the busy timeout."""

from __future__ import annotations

import threading
from pathlib import Path

import sqlalchemy as sa

from dpp_lib.store.db import make_engine, reader


def _engine(tmp_path: Path) -> sa.Engine:
    engine = make_engine(f"sqlite:///{tmp_path / 'db.sqlite3'}")
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE t (n INTEGER)")
        conn.exec_driver_sql("INSERT INTO t VALUES (1)")
    return engine


def _count(engine: sa.Engine, out: list[int]) -> None:
    with engine.connect() as conn:
        out.append(conn.execute(sa.text("SELECT count(*) FROM t")).scalar_one())


def test_a_reader_runs_beside_an_open_write_and_a_plain_connection_waits(
    tmp_path: Path,
) -> None:
    engine = _engine(tmp_path)
    with engine.begin() as writer:
        writer.exec_driver_sql("INSERT INTO t VALUES (2)")  # not committed yet
        seen: list[int] = []
        _count(reader(engine), seen)  # at once, on the last committed snapshot
        assert seen == [1]
        queued: list[int] = []
        plain = threading.Thread(target=_count, args=(engine, queued))
        plain.start()
        plain.join(1.5)
        assert plain.is_alive() and queued == []  # BEGIN IMMEDIATE waits for the writer
    plain.join(30)
    assert queued == [2]  # and reads once the write committed


def test_readers_hold_their_transactions_side_by_side(tmp_path: Path) -> None:
    engine = _engine(tmp_path)
    with reader(engine).connect() as first, reader(engine).connect() as second:
        assert first.execute(sa.text("SELECT n FROM t")).scalar_one() == 1
        assert second.execute(sa.text("SELECT n FROM t")).scalar_one() == 1
        assert first.in_transaction() and second.in_transaction()
    with reader(engine).begin() as conn:  # a reader may still write when nobody else does
        conn.exec_driver_sql("INSERT INTO t VALUES (3)")
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM t")).scalar_one() == 2
