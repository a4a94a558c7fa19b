"""Per-process memory of the access layer: signed-in sessions' principals (no database or
argon2 work per request) and API key usage counters (written once a minute, not per request).
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from dpp_lib.access import Principal
from dpp_lib.auth.audit import ACCESS_TOPIC
from dpp_lib.auth.sessions import SessionInfo
from dpp_lib.store.key_usage import add_usage

SESSION_RECHECK_SECONDS = 60.0  # a session is read again this often even if nothing moved
MAX_SESSIONS = 10_000
USAGE_FLUSH_SECONDS = 60.0


@dataclass(frozen=True)
class KnownSession:
    info: SessionInfo
    principal: Principal
    version: int  # the ``access`` data version when it was read
    read_at: float


class KnownSessions:
    """Sessions read recently, by the SHA-256 of their token: valid while the ``access``
    version holds (sign-outs, revocations, deactivations, role and mapping changes move it),
    for a minute at most, and only until the session expires."""

    def __init__(self) -> None:
        self._known: dict[bytes, KnownSession] = {}
        self._lock = threading.Lock()

    def get(self, digest: bytes, versions: Mapping[str, int], now: datetime) -> KnownSession | None:
        known = self._known.get(digest)
        if known is None:
            return None
        if (
            known.version != versions.get(ACCESS_TOPIC, 0)
            or time.monotonic() - known.read_at > SESSION_RECHECK_SECONDS
            or known.info.expires_at <= now
        ):
            self.forget(digest)
            return None
        return known

    def put(
        self, digest: bytes, info: SessionInfo, principal: Principal, versions: Mapping[str, int]
    ) -> KnownSession:
        known = KnownSession(info, principal, versions.get(ACCESS_TOPIC, 0), time.monotonic())
        with self._lock:
            if len(self._known) >= MAX_SESSIONS:
                self._known.clear()
            self._known[digest] = known
        return known

    def forget(self, digest: bytes) -> None:
        with self._lock:
            self._known.pop(digest, None)


class KeyUsage:
    """Requests per API key per hour, counted in memory and added to ``api_key_usage``."""

    def __init__(self, flush_seconds: float = USAGE_FLUSH_SECONDS) -> None:
        self._counts: dict[tuple[uuid.UUID, datetime], tuple[int, datetime]] = {}
        self._lock = threading.Lock()
        self._flushed = time.monotonic()
        self._flushing = False
        self.flush_seconds = flush_seconds

    def hit(self, key_id: uuid.UUID, now: datetime) -> bool:
        """Count one request; True when a flush is due (the caller schedules it)."""
        hour = now.replace(minute=0, second=0, microsecond=0)
        with self._lock:
            count, _ = self._counts.get((key_id, hour), (0, now))
            self._counts[(key_id, hour)] = (count + 1, now)
            due = not self._flushing and time.monotonic() - self._flushed >= self.flush_seconds
            if due:
                self._flushing = True
            return due

    def pending(self) -> dict[tuple[uuid.UUID, datetime], tuple[int, datetime]]:
        with self._lock:
            return dict(self._counts)

    def flush(self, engine: sa.Engine) -> int:
        """Write the counts so far; returns how many (key, hour) rows. Counts come back on
        failure, to be written next time."""
        with self._lock:
            counts, self._counts = self._counts, {}
        try:
            with engine.begin() as conn:
                add_usage(conn, counts)
        except Exception:
            with self._lock:
                for k, (n, last) in counts.items():
                    m, later = self._counts.get(k, (0, last))
                    self._counts[k] = (n + m, max(last, later))
            raise
        finally:
            with self._lock:
                self._flushed = time.monotonic()
                self._flushing = False
        return len(counts)
