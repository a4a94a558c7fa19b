"""APScheduler wiring: one cron job per enabled entry (``max_instances=1``,
``coalesce=True``) calling ``JobRunner.fire``; a catch-up of the latest missed slot at
start; a stop that kills running children and records them as interrupted.

``dpp scheduler`` uses a ``BlockingScheduler`` in the foreground; ``dpp up`` a
``BackgroundScheduler`` in its own process (``running_scheduler``).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import sqlalchemy as sa
from apscheduler.executors.pool import ThreadPoolExecutor  # type: ignore[import-untyped]
from apscheduler.schedulers.background import BackgroundScheduler  # type: ignore[import-untyped]
from apscheduler.schedulers.base import BaseScheduler  # type: ignore[import-untyped]
from apscheduler.schedulers.blocking import BlockingScheduler  # type: ignore[import-untyped]

from dpp_lib.scheduler.config import load_schedules
from dpp_lib.scheduler.execute import Executor, PapermillExecutor, kernel_env
from dpp_lib.scheduler.runner import JobRunner, SchedulerError, iso
from dpp_lib.settings import Settings
from dpp_lib.store.db import make_engine
from dpp_lib.store.migrate import is_up_to_date
from dpp_lib.store.schema import org_settings

log = logging.getLogger(__name__)

# Notebook runs at once (each is a kernel and its data in memory); more wait their turn.
MAX_PARALLEL_RUNS = 3


def org_time_zone(engine: sa.Engine) -> ZoneInfo:
    """The organisation's time zone (the loaded org config), or UTC with a warning when no
    org config is loaded."""
    with engine.connect() as conn:
        organisation = conn.execute(
            sa.select(org_settings.c.value).where(org_settings.c.key == "organisation")
        ).scalar()
    if not organisation:
        log.warning(
            "no organisation config is loaded: the schedules' cron expressions run in UTC "
            "(load one with `dpp config load FILE`, then restart the scheduler)"
        )
        return ZoneInfo("UTC")
    name = str(organisation.get("time_zone") or "UTC")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise SchedulerError(f"the organisation's time zone {name!r} is unknown") from None


def build_runner(
    settings: Settings, *, executor: Executor | None = None, engine: sa.Engine | None = None
) -> JobRunner:
    """A runner for the settings' schedules file, database and reports directory."""
    schedules = load_schedules(settings.schedules_file, notebooks_dir=settings.notebooks_dir)
    engine = engine or make_engine(settings.resolved_database_url())
    if not is_up_to_date(engine):
        raise SchedulerError("the database schema is not up to date: run `dpp db upgrade` first")
    return JobRunner(
        engine,
        schedules,
        reports_dir=settings.reports_dir,
        executor=executor or PapermillExecutor(env=kernel_env(settings)),
        time_zone=org_time_zone(engine),
    )


class SchedulerService:
    """A runner driven by an APScheduler scheduler."""

    def __init__(self, runner: JobRunner, scheduler: BaseScheduler) -> None:
        self.runner = runner
        self.scheduler = scheduler

    @classmethod
    def create(cls, runner: JobRunner, *, background: bool) -> SchedulerService:
        kind = BackgroundScheduler if background else BlockingScheduler
        scheduler = kind(
            executors={"default": ThreadPoolExecutor(MAX_PARALLEL_RUNS)},
            timezone=runner.time_zone,
        )
        return cls(runner, scheduler)

    def add_jobs(self, now: datetime) -> None:
        """One APScheduler job per enabled entry; the ones with a slot to catch up fire at
        once (the runner labels a slot from before its start ``catch_up``)."""
        due = {job.name for job, _ in self.runner.prepare(now)}
        for job in self.runner.schedules.enabled:
            extra: dict[str, Any] = {"next_run_time": now} if job.name in due else {}
            self.scheduler.add_job(
                self.runner.fire,
                self.runner.crons[job.name].trigger,
                args=[job.name],
                id=job.name,
                name=job.name,
                max_instances=1,
                coalesce=True,
                misfire_grace_time=None,  # a late slot is the runner's decision
                **extra,
            )
        for job in self.runner.schedules.jobs:
            if not job.enabled:
                log.info("job %s is disabled", job.name)
        if due:
            log.info("catching up: %s", ", ".join(sorted(due)))

    def start(self) -> None:
        """Add the jobs and start (a BlockingScheduler blocks here until stopped)."""
        logging.getLogger("apscheduler").setLevel(logging.WARNING)
        self.add_jobs(self.runner.clock())
        log.info("scheduler started: %s", self.describe())
        self.scheduler.start()

    def stop(self) -> None:
        """Kill running children (their runs are recorded as interrupted), then wait for
        the job threads to record them."""
        self.runner.stop.set()
        with contextlib.suppress(Exception):  # not running (start failed): nothing to stop
            self.scheduler.shutdown(wait=True)

    def describe(self) -> str:
        enabled = self.runner.schedules.enabled
        now = self.runner.clock()
        upcoming = [
            (nxt, job.name)
            for job in enabled
            if (nxt := self.runner.next_slot(job, now)) is not None
        ]
        first = f", next {min(upcoming)[1]} at {iso(min(upcoming)[0])}" if upcoming else ""
        jobs = f"{len(enabled)} job{'' if len(enabled) == 1 else 's'}"
        return f"{jobs} in {self.runner.time_zone.key}{first}"


@contextlib.contextmanager
def running_scheduler(settings: Settings) -> Iterator[SchedulerService | None]:
    """The scheduler for ``dpp up``: in the background of that process, unless
    ``scheduler_enabled`` is off; stopped (and its running children killed) on exit."""
    if not settings.scheduler_enabled:
        yield None
        return
    service = SchedulerService.create(build_runner(settings), background=True)
    service.start()
    try:
        yield service
    finally:
        service.stop()
