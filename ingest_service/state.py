"""Process-wide state of the service: settings, secrets, engine, config lookups, the inbox."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from dataclasses import dataclass, field

import sqlalchemy as sa
from fastapi.concurrency import run_in_threadpool

from dpp_lib.ingest.anonymise import make_anonymiser
from dpp_lib.ingest.lookups import OrgLookups
from dpp_lib.ingest.types import Anonymiser
from dpp_lib.settings import Settings, warn_missing_webhook_secrets
from dpp_lib.store.config_tables import config_version, load_lookups
from dpp_lib.store.db import make_engine
from ingest_service.cache import ResponseCache, SingleFlight, VersionWatcher
from ingest_service.compute import Computer
from ingest_service.fastpath import Aliases, KnownKeys
from ingest_service.inbox import Inbox, make_inbox
from ingest_service.middleware import LatencyWindow
from ingest_service.ratelimit import RateLimiter
from ingest_service.session_cache import KeyUsage, KnownSessions

log = logging.getLogger(__name__)

LOOKUPS_TTL_SECONDS = 5.0


@dataclass
class ServiceState:
    settings: Settings
    engine: sa.Engine
    inbox: Inbox
    github_secret: bytes | None
    jira_secret: bytes | None
    anonymise: Anonymiser
    cache: ResponseCache
    versions: VersionWatcher
    rate_limiter: RateLimiter
    computer: Computer
    known_keys: KnownKeys = field(default_factory=KnownKeys)
    aliases: Aliases = field(default_factory=Aliases)
    known_sessions: KnownSessions = field(default_factory=KnownSessions)
    key_usage: KeyUsage = field(default_factory=KeyUsage)
    latency: LatencyWindow = field(default_factory=LatencyWindow)
    single_flight: SingleFlight = field(default_factory=SingleFlight)
    _lookups: OrgLookups | None = None
    _lookups_checked: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def from_settings(cls, settings: Settings) -> ServiceState:
        warn_missing_webhook_secrets(settings)
        url = settings.resolved_database_url()
        engine = make_engine(url, pool_size=4)
        return cls(
            settings=settings,
            engine=engine,
            inbox=make_inbox(engine, url, pool_size=settings.api_pool_size),
            github_secret=settings.read_secret("github_webhook_secret"),
            jira_secret=settings.read_secret("jira_webhook_secret"),
            anonymise=make_anonymiser(settings.anonymisation_key()),
            cache=ResponseCache(
                max_bytes=settings.api_cache_max_mb * 1024 * 1024,
                enabled=settings.api_cache_enabled,
            ),
            versions=VersionWatcher(engine, settings.api_version_poll_seconds),
            rate_limiter=RateLimiter(settings.rate_limits()),
            computer=Computer(
                url,
                engine,
                slots=settings.api_max_computations,
                processes=settings.api_compute_in == "processes",
            ),
        )

    async def lookups(self) -> OrgLookups:
        """The config snapshot, re-read when the loaded config changed (checked every 5 s)."""
        current = self._fresh_lookups()
        return current if current is not None else await run_in_threadpool(self._refresh_lookups)

    async def poll_versions(self) -> None:
        """Keep the data versions fresh, so no request waits for them (runs until cancelled)."""
        interval = max(0.01, self.versions.interval / 2)
        while True:
            try:
                await run_in_threadpool(self.versions.read)
            except Exception:  # the database is away: requests read them and get the error
                log.warning("reading the data versions failed", exc_info=True)
            await asyncio.sleep(interval)

    def lookups_sync(self) -> OrgLookups:
        """``lookups`` for code already running in the threadpool."""
        current = self._fresh_lookups()
        return current if current is not None else self._refresh_lookups()

    def _fresh_lookups(self) -> OrgLookups | None:
        with self._lock:
            current = self._lookups
            if time.monotonic() - self._lookups_checked < LOOKUPS_TTL_SECONDS:
                return current
        return None

    def _refresh_lookups(self) -> OrgLookups:
        now = time.monotonic()
        with self.engine.connect() as conn:
            current = self._lookups
            if current is None or current.version != config_version(conn):
                current = load_lookups(conn)
        with self._lock:
            self._lookups, self._lookups_checked = current, now
        return current
