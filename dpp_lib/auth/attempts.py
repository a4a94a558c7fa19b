"""Sign-in throttling, shared by every API process through the ``login_attempts`` table.

Failures are counted per account (``account:<email>``, whether or not it exists, so the
throttle reveals nothing) and per client address (``ip:<address>``). After ``free``
failures, each further failure blocks that key for an exponentially growing time
(1 s, 2 s, 4 s … capped at 15 minutes). A success clears the account's count; a count
with no failure for an hour starts again from zero.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from dpp_lib.store.schema import login_attempts

ACCOUNT_FREE = 5
IP_FREE = 20
MAX_BLOCK = timedelta(minutes=15)
FORGET_AFTER = timedelta(hours=1)


def account_key(email: str) -> str:
    return "account:" + email.strip().lower()[:320]


def ip_key(address: str | None) -> str:
    return "ip:" + (address or "unknown")[:64]


def backoff(failures: int, free: int) -> timedelta:
    """How long a key is blocked after its ``failures``-th failure."""
    over = failures - free
    if over <= 0:
        return timedelta(0)
    return min(MAX_BLOCK, timedelta(seconds=2 ** min(over - 1, 20)))


def blocked_for(conn: sa.Connection, keys: Sequence[str], now: datetime) -> int:
    """Seconds until every key may try again (0 = now)."""
    rows = conn.execute(
        sa.select(login_attempts.c.blocked_until).where(login_attempts.c.attempt_key.in_(keys))
    ).scalars()
    waits = [(until - now).total_seconds() for until in rows if until is not None and until > now]
    return int(max(waits) + 0.999) if waits else 0


def record_failure(conn: sa.Connection, key: str, free: int, now: datetime) -> int:
    """Count one failure for ``key``; returns its failure count. Safe when processes count
    the same key at once (the row is created if missing, then locked on Postgres)."""
    insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    conn.execute(
        insert(login_attempts)
        .values(attempt_key=key, failures=0, last_failure_at=now - 2 * FORGET_AFTER)
        .on_conflict_do_nothing(index_elements=["attempt_key"])
    )
    row = conn.execute(
        sa.select(login_attempts).where(login_attempts.c.attempt_key == key).with_for_update()
    ).one()
    failures = row.failures + 1 if now - row.last_failure_at < FORGET_AFTER else 1
    wait = backoff(failures, free)
    conn.execute(
        login_attempts.update()
        .where(login_attempts.c.attempt_key == key)
        .values(failures=failures, last_failure_at=now, blocked_until=now + wait if wait else None)
    )
    return failures


def clear(conn: sa.Connection, key: str) -> None:
    conn.execute(login_attempts.delete().where(login_attempts.c.attempt_key == key))
