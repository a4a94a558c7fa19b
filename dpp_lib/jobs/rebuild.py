"""``dpp rebuild``: drop every projection and computed table and recompute them from the
stored events — or, with ``from_inbox``, re-normalise the raw inbox first (spec §1.3: the
event log is the source of truth; DESIGN §3).

Each step reports progress through a callback ``(step, done, total)`` so the CLI can draw a
progress bar. The result equals what the worker built incrementally (tested on the demo
organisation).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

import sqlalchemy as sa

from dpp_lib.settings import Settings
from dpp_lib.store import data_versions
from dpp_lib.store.config_tables import load_lookups
from dpp_lib.store.schema import (
    DERIVED_TABLES,
    EVENT_TABLES,
    cicd_events,
    deferred_enrichments,
    incident_events,
    pr_events,
    raw_events,
    work_item_events,
)
from dpp_lib.store.types import now_utc

Progress = Callable[[str, int, int], None]
K = TypeVar("K")
BATCH = 2_000
DEPLOY_EVENTS = ("deploy_completed", "deploy_failed", "rollback_completed")


def _quiet(_step: str, _done: int, _total: int) -> None:
    return None


@dataclass
class RebuildReport:
    reprocessed_deliveries: int = 0
    counts: dict[str, int] = field(default_factory=dict)


def rebuild(
    engine: sa.Engine,
    settings: Settings,
    *,
    from_inbox: bool = False,
    progress: Progress = _quiet,
) -> RebuildReport:
    report = RebuildReport()
    if from_inbox:
        report.reprocessed_deliveries = _renormalise(engine, settings, progress)
    with engine.begin() as conn:
        for table in DERIVED_TABLES:
            conn.execute(table.delete())
        conn.execute(incident_events.update().values(resolved_at=None, time_to_restore_min=None))
    _projections(engine, progress)
    with engine.begin() as conn:
        data_versions.bump(conn, [t.name for t in (*EVENT_TABLES, *DERIVED_TABLES)])
        for table in DERIVED_TABLES:
            report.counts[table.name] = int(
                conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()
            )
    return report


def _renormalise(engine: sa.Engine, settings: Settings, progress: Progress) -> int:
    """Empty the event tables and let the worker process every inbox row again."""
    from ingest_service.worker import Worker

    with engine.begin() as conn:
        for table in (*DERIVED_TABLES, *reversed(EVENT_TABLES), deferred_enrichments):
            conn.execute(table.delete())
        total = int(conn.execute(sa.select(sa.func.count()).select_from(raw_events)).scalar_one())
        conn.execute(
            raw_events.update().values(
                state="pending",
                attempts=0,
                next_attempt_at=sa.func.now()
                if engine.dialect.name == "postgresql"
                else sa.text("CURRENT_TIMESTAMP"),
                processed_at=None,
                last_error=None,
                ignored_reason=None,
                outcome=None,
            )
        )
    worker = Worker.from_settings(settings, engine)
    done = 0
    progress("re-normalise inbox", 0, total)
    while n := worker.run_batch():
        done += n
        progress("re-normalise inbox", done, total)
    worker.sweep_deferrals(force=True)  # as `dpp worker --once` does after draining
    return done


def _projections(engine: sa.Engine, progress: Progress) -> None:
    from dpp_lib.jobs.deploy_links import refresh_deploy_links
    from dpp_lib.projections.deployments import refresh_deployment_records
    from dpp_lib.projections.incidents import update_time_to_restore
    from dpp_lib.projections.pull_requests import refresh_pr_cycles
    from dpp_lib.projections.sprint_store import refresh_sprint_snapshots
    from dpp_lib.projections.work_item_store import refresh_work_item_cycles

    with engine.connect() as conn:
        lookups = load_lookups(conn)
        tickets = list(
            conn.execute(
                sa.select(work_item_events.c.ticket_id)
                .distinct()
                .order_by(work_item_events.c.ticket_id)
            ).scalars()
        )
        prs = [
            (r.repo_id, r.pr_number)
            for r in conn.execute(
                sa.select(pr_events.c.repo_id, pr_events.c.pr_number)
                .where(pr_events.c.repo_id.is_not(None))
                .distinct()
                .order_by(pr_events.c.repo_id, pr_events.c.pr_number)
            )
        ]
        runs = [
            (r.pipeline_id, r.pipeline_run_id)
            for r in conn.execute(
                sa.select(cicd_events.c.pipeline_id, cicd_events.c.pipeline_run_id)
                .where(cicd_events.c.event_type.in_(DEPLOY_EVENTS))
                .distinct()
            )
        ]
        incidents = list(
            conn.execute(sa.select(incident_events.c.incident_id).distinct()).scalars()
        )
    production = lookups.production_environments
    _in_batches(
        engine,
        "work item cycles",
        tickets,
        progress,
        lambda c, part: refresh_work_item_cycles(c, part, lookups),
    )
    _in_batches(engine, "PR cycles", prs, progress, refresh_pr_cycles)
    _in_batches(
        engine,
        "deployment records",
        runs,
        progress,
        lambda c, part: refresh_deployment_records(c, part, production),
    )
    _in_batches(engine, "time to restore", incidents, progress, update_time_to_restore)
    progress("deployment links", 0, 1)
    with engine.begin() as conn:
        refresh_deploy_links(
            conn, tech_stream_ids=None, window_minutes=lookups.incident_correlation_window_minutes
        )
    progress("deployment links", 1, 1)
    # Sprint snapshots derived from the events, for every day of every sprint so far.
    progress("sprint snapshots", 0, 1)
    with engine.begin() as conn:
        today = lookups.calendar().local_date(now_utc())
        refresh_sprint_snapshots(conn, lookups, today=today, history=True)
    progress("sprint snapshots", 1, 1)


def _in_batches(
    engine: sa.Engine,
    name: str,
    keys: list[K],
    progress: Progress,
    apply: Callable[[sa.Connection, list[K]], object],
) -> None:
    """Apply to ``keys`` in batches, one transaction each, reporting progress."""
    progress(name, 0, len(keys))
    for i in range(0, len(keys), BATCH):
        part = keys[i : i + BATCH]
        with engine.begin() as conn:
            apply(conn, part)
        progress(name, min(i + BATCH, len(keys)), len(keys))
