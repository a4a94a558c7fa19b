"""The API's response cache (spec §7.3.4): rendered answers by endpoint, parameters and the
caller's visible streams, each kept for its endpoint's TTL and dropped as soon as a data
version it was computed from moves (``dpp_lib.store.data_versions``: the worker bumps them in
the transaction that stores events, so a cached answer never outlives the data it shows by
more than one version poll). Least recently used entries go first when the cache is full.
"""

from __future__ import annotations

import asyncio
import fnmatch
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from dpp_lib.store import data_versions
from dpp_lib.store.db import reader
from dpp_lib.store.schema import EVENT_TABLES

EVENTS = tuple(t.name for t in EVENT_TABLES)
WORK = ("work_item_events", "work_item_field_changes", "sprint_snapshots")
DELIVERY_SYSTEMS = ("cicd_events", "incident_events", "pr_events", "deployment_records")


@dataclass(frozen=True)
class Policy:
    """An endpoint's TTL (spec §7.3.4) and the data topics its answers are built from."""

    ttl_seconds: float
    topics: tuple[str, ...]


POLICIES: dict[str, Policy] = {
    "streams/delivery": Policy(300, ()),
    "streams/tech": Policy(300, ()),
    "sprints": Policy(300, WORK),
    "metrics/realtime": Policy(30, WORK),
    "metrics/diagnostic": Policy(900, (*WORK, "defect_events", "pr_events")),
    "metrics/trends": Policy(300, DELIVERY_SYSTEMS),
    "metrics/forecast": Policy(3600, WORK),
    "metrics/pulse": Policy(86_400, ("pulse_responses",)),
    "metrics/cross-stream": Policy(300, WORK),
    "metrics/breakdown": Policy(300, (*EVENTS, "deployment_records", "sprint_snapshots")),
    "metrics/drilldown": Policy(300, (*EVENTS, "deployment_records", "sprint_snapshots")),
    "admin/data-quality": Policy(900, (*EVENTS, "deployment_records")),
    "admin/integration-health": Policy(30, ()),
}
ALWAYS = ("config", "cache:*")  # every answer depends on the org config and a manual flush
# A past view (an explicit ``as_of``) changes only when data about that past arrives, which
# moves a data version: it is kept for a day rather than its endpoint's TTL.
AS_OF_TTL_SECONDS = 86_400.0
# A "now" answer is computed again in the background once this share of its TTL has passed,
# and served while that runs, until one more TTL has passed (stale-while-revalidate).
RENEW_AFTER = 0.5


@dataclass
class _Entry:
    body: bytes
    created: float
    ttl: float
    versions: tuple[tuple[str, int], ...]
    renew: Any = None  # how to compute it again (answers for "now"), else None
    renewing: bool = False


@dataclass(frozen=True)
class Found:
    """A cached answer: ``stale`` when past its TTL (a renewal is computing), ``renew`` when
    the caller should start computing it again (then ``renew`` is what ``put`` was given)."""

    body: bytes
    stale: bool = False
    renew: Any = None


@dataclass
class CacheStats:
    hits: int = 0
    misses: int = 0
    stale: int = 0  # misses because a data version moved
    stale_served: int = 0  # answers past their TTL served while a renewal computed
    renewals: int = 0  # answers computed again in the background
    fast_path: int = 0  # hits answered before routing (``fastpath``)
    evictions: int = 0
    invalidations: int = 0
    by_endpoint: dict[str, dict[str, int]] = field(default_factory=dict)


class VersionWatcher:
    """The data versions, re-read from the database at most every ``interval`` seconds."""

    def __init__(self, engine: sa.Engine, interval: float = 1.0) -> None:
        self.engine, self.interval = engine, interval
        self._versions: dict[str, int] = {}
        self._read_at = -float("inf")
        self._lock = threading.Lock()

    def fresh(self, *, now: float | None = None) -> Mapping[str, int] | None:
        """The versions if read less than ``interval`` ago (no I/O), else None."""
        now = time.monotonic() if now is None else now
        return self._versions if now - self._read_at < self.interval else None

    def current(self, *, now: float | None = None) -> Mapping[str, int]:
        now = time.monotonic() if now is None else now
        if now - self._read_at >= self.interval:
            with self._lock:
                if now - self._read_at >= self.interval:
                    with reader(self.engine).connect() as conn:
                        self._versions = data_versions.current(conn)
                    self._read_at = now
        return self._versions

    def read(self) -> Mapping[str, int]:
        """Read the versions now (the API process's poller)."""
        with self._lock:
            now = time.monotonic()
            with reader(self.engine).connect() as conn:
                self._versions = data_versions.current(conn)
            self._read_at = now
        return self._versions

    def expire(self) -> None:
        """Read the versions again on the next call (after this process bumped one)."""
        self._read_at = -float("inf")


class ResponseCache:
    def __init__(
        self,
        *,
        max_bytes: int,
        enabled: bool = True,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_bytes, self.enabled, self.clock = max_bytes, enabled, clock
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._size = 0
        self._lock = threading.Lock()
        self.stats = CacheStats()

    @staticmethod
    def key(endpoint: str, params: Iterable[tuple[str, str]], scope_key: str) -> str:
        query = "&".join(f"{k}={v}" for k, v in sorted(params))
        return f"{endpoint}?{query}#{scope_key}"

    @staticmethod
    def endpoint_of(key: str) -> str:
        return key.split("?", 1)[0]

    def get(self, key: str, versions: Mapping[str, int], *, count: bool = True) -> Found | None:
        """The cached answer, if its data versions hold and it is fresh (or stale while being
        renewed); ``count=False`` for a second look at the same request (after waiting for
        another request's computation)."""
        if not self.enabled:
            return None
        endpoint = self.endpoint_of(key)
        counts = self.stats.by_endpoint.setdefault(endpoint, {"hits": 0, "misses": 0})
        with self._lock:
            entry = self._entries.get(key)
            found = None if entry is None else self._usable(entry, versions)
            if found is not None:
                self._entries.move_to_end(key)
                if count:
                    self.stats.hits += 1
                    counts["hits"] += 1
                elif self.stats.misses:  # it waited on a miss that another request paid
                    self.stats.misses -= 1
                    self.stats.hits += 1
                    counts["misses"] -= 1
                    counts["hits"] += 1
                self.stats.stale_served += found.stale
                self.stats.renewals += found.renew is not None
                return found
            if entry is not None:
                if entry.versions and any(versions.get(t, 0) != v for t, v in entry.versions):
                    self.stats.stale += count
                self._drop(key)
            if count:
                self.stats.misses += 1
                counts["misses"] += 1
            return None

    def _usable(self, entry: _Entry, versions: Mapping[str, int]) -> Found | None:
        if any(versions.get(t, 0) != v for t, v in entry.versions):
            return None
        age = self.clock() - entry.created
        if age >= entry.ttl * (2 if entry.renew is not None else 1):
            return None
        stale = age >= entry.ttl
        if stale and not entry.renewing and entry.renew is None:
            return None
        due = entry.renew is not None and not entry.renewing and age >= entry.ttl * RENEW_AFTER
        if due:
            entry.renewing = True
        return Found(entry.body, stale=stale, renew=entry.renew if due else None)

    def renewal_failed(self, key: str) -> None:
        """A background renewal failed: the next request computes the answer itself."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None:
                entry.renew, entry.renewing = None, False

    def put(
        self,
        key: str,
        body: bytes,
        versions: Mapping[str, int],
        *,
        fixed: bool = False,
        renew: Any = None,
    ) -> None:
        """Keep ``body``: for the endpoint's TTL, or a day when ``fixed`` (a past view). With
        ``renew`` (how to compute it again), it is renewed in the background before expiry."""
        if not self.enabled or len(body) > self.max_bytes:
            return
        endpoint = self.endpoint_of(key)
        policy = POLICIES[endpoint]
        topics = (*ALWAYS, f"cache:{endpoint}", *policy.topics)
        entry = _Entry(
            body,
            self.clock(),
            max(policy.ttl_seconds, AS_OF_TTL_SECONDS) if fixed else policy.ttl_seconds,
            tuple((t, versions.get(t, 0)) for t in sorted(set(topics))),
            renew=None if fixed else renew,
        )
        with self._lock:
            if key in self._entries:
                self._drop(key)
            self._entries[key] = entry
            self._size += len(body)
            while self._size > self.max_bytes and self._entries:
                self._drop(next(iter(self._entries)))
                self.stats.evictions += 1

    def invalidate(self, *, keys: Iterable[str] = (), pattern: str | None = None) -> int:
        """Drop the named keys and every key whose endpoint (or whole key) matches the glob
        ``pattern``; returns how many were dropped here."""
        wanted = set(keys)
        with self._lock:
            doomed = [k for k in self._entries if k in wanted or _matches(k, pattern)]
            for k in doomed:
                self._drop(k)
            self.stats.invalidations += len(doomed)
            return len(doomed)

    def _drop(self, key: str) -> None:
        entry = self._entries.pop(key)
        self._size -= len(entry.body)

    def snapshot(self) -> dict[str, object]:
        s = self.stats
        total = s.hits + s.misses
        with self._lock:
            entries, size = len(self._entries), self._size
        return {
            "enabled": self.enabled,
            "hit_rate": round(s.hits / total, 4) if total else None,
            "total_requests": total,
            "cache_hits": s.hits,
            "cache_misses": s.misses,
            "stale_misses": s.stale,
            "stale_served": s.stale_served,
            "renewals": s.renewals,
            "answered_before_routing": s.fast_path,
            "evicted_entries": s.evictions,
            "invalidated_entries": s.invalidations,
            "entries": entries,
            "current_size_bytes": size,
            "max_size_bytes": self.max_bytes,
            "by_endpoint": {k: dict(v) for k, v in sorted(s.by_endpoint.items())},
            "ttl_seconds": {k: p.ttl_seconds for k, p in POLICIES.items()},
            "past_view_ttl_seconds": AS_OF_TTL_SECONDS,
        }


def _matches(key: str, pattern: str | None) -> bool:
    if pattern is None:
        return False
    return fnmatch.fnmatch(ResponseCache.endpoint_of(key), pattern) or fnmatch.fnmatch(key, pattern)


class SingleFlight:
    """One computation per cache key at a time; later callers wait and take the cached answer
    (a burst of identical cold requests costs one computation, not fifty)."""

    def __init__(self) -> None:
        self._locks: dict[str, asyncio.Lock] = {}

    def __call__(self, key: str) -> asyncio.Lock:
        lock = self._locks.get(key)
        if lock is None:
            if len(self._locks) > 10_000:
                self._locks = {k: v for k, v in self._locks.items() if v.locked()}
            lock = self._locks[key] = asyncio.Lock()
        return lock
