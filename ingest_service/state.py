"""Process-wide state of the service: settings, secrets, engine, config lookups, the inbox."""

from __future__ import annotations

import hashlib
import logging
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from dpp_lib.ingest.anonymise import make_anonymiser
from dpp_lib.ingest.lookups import OrgLookups
from dpp_lib.ingest.types import Anonymiser
from dpp_lib.settings import Settings, warn_missing_webhook_secrets
from dpp_lib.store import api_keys
from dpp_lib.store.config_tables import config_version, load_lookups
from dpp_lib.store.db import make_engine
from dpp_lib.store.schema import raw_events
from dpp_lib.store.types import now_utc
from dpp_lib.store.write import dialect_insert

log = logging.getLogger(__name__)

LOOKUPS_TTL_SECONDS = 5.0
KEY_TOUCH_INTERVAL = timedelta(seconds=60)
STORED_HEADERS = (
    "content-type",
    "user-agent",
    "x-github-event",
    "x-github-delivery",
    "x-github-hook-id",
    "x-github-hook-installation-target-id",
    "x-atlassian-webhook-identifier",
    "x-atlassian-webhook-retry",
    "x-atlassian-webhook-flow",
    "x-idempotency-key",
)


@dataclass(frozen=True)
class InboxRecord:
    source: str
    delivery_id: str
    event_kind: str | None
    headers: dict[str, str]
    body: bytes
    api_key_id: uuid.UUID | None = None


def body_sha256(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


@dataclass
class ServiceState:
    settings: Settings
    engine: sa.Engine
    github_secret: bytes | None
    jira_secret: bytes | None
    anonymise: Anonymiser
    _lookups: OrgLookups | None = None
    _lookups_checked: float = 0.0
    _touched: dict[uuid.UUID, datetime] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def from_settings(cls, settings: Settings) -> ServiceState:
        warn_missing_webhook_secrets(settings)
        return cls(
            settings=settings,
            engine=make_engine(settings.resolved_database_url(), pool_size=20),
            github_secret=settings.read_secret("github_webhook_secret"),
            jira_secret=settings.read_secret("jira_webhook_secret"),
            anonymise=make_anonymiser(settings.anonymisation_key()),
        )

    def lookups(self, conn: sa.Connection) -> OrgLookups:
        """The config snapshot, re-read when the loaded config changed (checked every 5 s)."""
        now = time.monotonic()
        with self._lock:
            current = self._lookups
            fresh = current is not None and now - self._lookups_checked < LOOKUPS_TTL_SECONDS
        if fresh and current is not None:
            return current
        if current is None or current.version != config_version(conn):
            current = load_lookups(conn)
        with self._lock:
            self._lookups, self._lookups_checked = current, now
        return current

    def find_api_key(self, conn: sa.Connection, plaintext: str) -> api_keys.ApiKey | None:
        return api_keys.find_key(conn, plaintext)

    def append(self, conn: sa.Connection, rec: InboxRecord) -> bool:
        """Write one accepted delivery to the inbox; False when it was already there."""
        now = now_utc()
        stmt = (
            dialect_insert(conn, raw_events)
            .values(
                source=rec.source,
                delivery_id=rec.delivery_id,
                event_kind=rec.event_kind,
                headers=rec.headers,
                body=rec.body,
                body_sha256=body_sha256(rec.body),
                api_key_id=rec.api_key_id,
                received_at=now,
                state="pending",
                attempts=0,
                next_attempt_at=now,
            )
            .on_conflict_do_nothing()
            .returning(raw_events.c.id)
        )
        inserted = conn.execute(stmt).first() is not None
        if rec.api_key_id is not None:
            self._touch_key(conn, rec.api_key_id, now)
        return inserted

    def _touch_key(self, conn: sa.Connection, key_id: uuid.UUID, now: datetime) -> None:
        # last_used_at to the minute: one UPDATE per key per minute, not one per request.
        with self._lock:
            last = self._touched.get(key_id)
            due = last is None or now - last >= KEY_TOUCH_INTERVAL
            if due:
                self._touched[key_id] = now
        if due:
            api_keys.touch(conn, key_id, now)


def selected_headers(headers: Any) -> dict[str, str]:
    return {h: headers[h] for h in STORED_HEADERS if h in headers}
