"""The inbox worker (``dpp worker``): claims raw deliveries and processes them.

Each batch is one transaction: claim (``FOR UPDATE SKIP LOCKED`` on Postgres, so any number
of workers can run), process, record each row's new state, commit. Killing the process at
any point loses nothing and processes nothing twice. A delivery that fails is retried with
exponential backoff and dead-lettered after ``worker_max_attempts``.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from dpp_lib.ingest.anonymise import make_anonymiser
from dpp_lib.ingest.lookups import OrgLookups
from dpp_lib.ingest.types import Anonymiser, NormaliseContext
from dpp_lib.jobs.ingest_batch import Outcome, RawDelivery, make_context, process_raw_batch
from dpp_lib.projections.deferred import sweep_due
from dpp_lib.settings import Settings
from dpp_lib.store import data_versions
from dpp_lib.store.config_tables import config_version, load_lookups
from dpp_lib.store.db import is_postgres, make_engine
from dpp_lib.store.schema import raw_events
from dpp_lib.store.types import now_utc

log = logging.getLogger(__name__)


@dataclass
class WorkerStats:
    batches: int = 0
    processed: int = 0
    ignored: int = 0
    failed: int = 0
    dead: int = 0


@dataclass
class Worker:
    settings: Settings
    engine: sa.Engine
    anonymise: Anonymiser
    stats: WorkerStats = field(default_factory=WorkerStats)
    _lookups: OrgLookups | None = None
    _ctx: NormaliseContext | None = None
    _last_sweep: float = 0.0

    @classmethod
    def from_settings(cls, settings: Settings, engine: sa.Engine | None = None) -> Worker:
        engine = engine or make_engine(settings.resolved_database_url())
        return cls(settings, engine, make_anonymiser(settings.anonymisation_key()))

    def _context(self, conn: sa.Connection) -> tuple[OrgLookups, NormaliseContext]:
        version = config_version(conn)
        if self._lookups is None or self._ctx is None or self._lookups.version != version:
            self._lookups = load_lookups(conn)
            self._ctx = make_context(self._lookups, self.anonymise)
        return self._lookups, self._ctx

    def run_batch(self) -> int:
        """Claim and process one batch; returns how many deliveries it handled."""
        with self.engine.begin() as conn:
            now = now_utc()
            raws = claim(conn, self.settings.worker_batch_size, now)
            if not raws:
                return 0
            lookups, ctx = self._context(conn)
            delay = timedelta(seconds=self.settings.deferred_enrichment_delay_seconds)
            try:
                with conn.begin_nested():
                    outcomes = process_raw_batch(
                        conn, raws, lookups=lookups, ctx=ctx, now=now, defer_delay=delay
                    )
            except Exception:
                log.warning(
                    "batch of %d failed as a whole; isolating row by row", len(raws), exc_info=True
                )
                # The lookups may have been refreshed by rolled-back work (repositories).
                self._lookups = None
                lookups, ctx = self._context(conn)
                outcomes = {}
                for raw in raws:
                    try:
                        with conn.begin_nested():
                            outcomes |= process_raw_batch(
                                conn, [raw], lookups=lookups, ctx=ctx, now=now, defer_delay=delay
                            )
                    except Exception as exc:
                        outcomes[raw.id] = Outcome(error=f"{type(exc).__name__}: {exc}")
            self._mark(conn, raws, outcomes, now)
            # Cached API answers built on these tables are stale from this commit on.
            data_versions.bump(conn, {t for o in outcomes.values() for t in o.inserted})
        self.stats.batches += 1
        if any(o.discovered_repositories for o in outcomes.values()):
            self._lookups = None  # the registry grew: read it again next batch
        return len(raws)

    def _mark(
        self,
        conn: sa.Connection,
        raws: list[RawDelivery],
        outcomes: dict[int, Outcome],
        now: datetime,
    ) -> None:
        attempts = dict(
            conn.execute(
                sa.select(raw_events.c.id, raw_events.c.attempts).where(
                    raw_events.c.id.in_([r.id for r in raws])
                )
            ).all()
        )
        params: list[dict[str, Any]] = []
        for raw in raws:
            o = outcomes[raw.id]
            p: dict[str, Any] = {
                "rid": raw.id,
                "processed_at": now,
                "last_error": None,
                "ignored_reason": None,
                "outcome": None,
                "attempts": attempts[raw.id],
                "next_attempt_at": now,
            }
            if o.error is not None:
                n = attempts[raw.id] + 1
                dead = n >= self.settings.worker_max_attempts
                backoff = self.settings.worker_backoff_seconds * 2 ** (n - 1)
                p |= {
                    "state": "dead" if dead else "pending",
                    "attempts": n,
                    "last_error": o.error[:4000],
                    "processed_at": None,
                    "next_attempt_at": now + timedelta(seconds=backoff),
                }
                self.stats.failed += 1
                self.stats.dead += dead
                log.warning(
                    "delivery %s/%s failed (attempt %d%s): %s",
                    raw.source,
                    raw.delivery_id,
                    n,
                    ", dead-lettered" if dead else "",
                    o.error,
                )
            elif o.ignored_reason is not None:
                p |= {"state": "ignored", "ignored_reason": o.ignored_reason[:2000]}
                self.stats.ignored += 1
            else:
                p |= {"state": "done", "outcome": o.as_json()}
                self.stats.processed += 1
            params.append(p)
        r = raw_events
        conn.execute(
            r.update()
            .where(r.c.id == sa.bindparam("rid"))
            .values(
                state=sa.bindparam("state"),
                attempts=sa.bindparam("attempts"),
                next_attempt_at=sa.bindparam("next_attempt_at"),
                processed_at=sa.bindparam("processed_at"),
                last_error=sa.bindparam("last_error"),
                ignored_reason=sa.bindparam("ignored_reason"),
                outcome=sa.bindparam("outcome"),
            ),
            params,
        )

    def sweep_deferrals(self, *, force: bool = False) -> tuple[int, int]:
        if not force and time.monotonic() - self._last_sweep < 30:
            return 0, 0
        self._last_sweep = time.monotonic()
        with self.engine.begin() as conn:
            resolved, failed = sweep_due(
                conn,
                now=now_utc(),
                delay=timedelta(seconds=self.settings.deferred_enrichment_delay_seconds),
                max_attempts=self.settings.deferred_enrichment_max_attempts,
            )
            if resolved:
                data_versions.bump(conn, ["pr_events", "deployment_records"])
            return resolved, failed

    def drain(self) -> int:
        """Process everything that is due now, then return the count (``dpp worker --once``)."""
        total = 0
        while n := self.run_batch():
            total += n
        self.sweep_deferrals(force=True)
        return total

    def run_forever(self, stop: threading.Event | None = None) -> None:
        stop = stop or _stop_on_signals()
        log.info("worker started on %s", self.engine.url.render_as_string(hide_password=True))
        while not stop.is_set():
            try:
                handled = self.run_batch()
                self.sweep_deferrals()
            except sa.exc.OperationalError:
                log.exception("database unavailable; retrying in 2 s")
                handled = 0
                stop.wait(2)
            if not handled:
                stop.wait(self.settings.worker_poll_seconds)
        log.info("worker stopped: %s", self.stats)


def claim(conn: sa.Connection, limit: int, now: datetime) -> list[RawDelivery]:
    r = raw_events
    stmt = (
        sa.select(r.c.id, r.c.source, r.c.delivery_id, r.c.event_kind, r.c.body, r.c.received_at)
        .where(r.c.state == "pending", r.c.next_attempt_at <= now)
        .order_by(r.c.id)
        .limit(limit)
    )
    if is_postgres(conn):
        stmt = stmt.with_for_update(skip_locked=True)
    return [
        RawDelivery(
            row.id, row.source, row.delivery_id, row.event_kind, bytes(row.body), row.received_at
        )
        for row in conn.execute(stmt)
    ]


def inbox_status(conn: sa.Connection) -> dict[str, Any]:
    r = raw_events
    counts: dict[str, int] = dict(
        conn.execute(sa.select(r.c.state, sa.func.count()).group_by(r.c.state)).all()
    )
    retrying = conn.execute(
        sa.select(sa.func.count()).where(r.c.state == "pending", r.c.attempts > 0)
    ).scalar_one()
    by_source = {
        f"{s}:{st}": n
        for s, st, n in conn.execute(
            sa.select(r.c.source, r.c.state, sa.func.count()).group_by(r.c.source, r.c.state)
        )
    }
    return {
        "pending": counts.get("pending", 0),
        "retrying": retrying,
        "done": counts.get("done", 0),
        "ignored": counts.get("ignored", 0),
        "dead": counts.get("dead", 0),
        "total": sum(counts.values()),
        "by_source": dict(sorted(by_source.items())),
    }


def retry_dead(conn: sa.Connection, *, ids: Collection[int] | None = None) -> int:
    """Requeue the dead-lettered deliveries (only those of ``ids`` when given); how many."""
    r = raw_events
    which = r.c.state == "dead" if ids is None else sa.and_(r.c.state == "dead", r.c.id.in_(ids))
    result = conn.execute(
        r.update()
        .where(which)
        .values(state="pending", attempts=0, next_attempt_at=now_utc(), last_error=None)
    )
    return result.rowcount or 0


def _stop_on_signals() -> threading.Event:
    stop = threading.Event()
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
    return stop
