"""The scheduler's decisions, with the clock and the executor injected: which slot is due,
what a restart catches up, what is recorded as missed or skipped, and the run itself.

APScheduler only says *when* to look (``fire``); everything here is testable by calling
``run_slot``, ``catch_up`` and ``run_now`` with chosen moments.

Policy (docs/notebooks/scheduler.md):
- a slot runs at most once (the database's unique key on job and slot);
- a job runs once at a time: a slot due while the job is still running (here or in any
  other process) is recorded as ``skipped`` with the running run named;
- after a stop, the latest missed slot of each job runs once (``catch_up``) when it is at
  most ``catch_up_minutes`` old (default: one period, so the latest missed slot always
  runs); older missed slots are recorded as one ``missed`` row per gap, never run;
- a ``running`` row whose process is gone (same host, dead pid) or is past its timeout plus
  a grace period is closed as failed ("interrupted"), which raises the failure alert.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from dpp_lib.errors import DppError
from dpp_lib.scheduler import runs, slots
from dpp_lib.scheduler.config import AS_OF, Job, Schedules
from dpp_lib.scheduler.execute import Execution, Executor, Outcome, pid_alive
from dpp_lib.store.types import now_utc
from dpp_lib.views.alerts import record_computation_failure, resolve_computation_failure

log = logging.getLogger(__name__)

STALE_GRACE = timedelta(minutes=10)


class SchedulerError(DppError):
    """A job cannot be run as asked (unknown job, bad parameter, no database schema)."""

    code = "scheduler_error"


@dataclass(frozen=True)
class RunResult:
    """What became of a slot or a manual run."""

    job: str
    status: str  # succeeded | failed | skipped | missed
    trigger: runs.Trigger
    scheduled_for: datetime | None
    run_id: Any = None
    output_path: Path | None = None
    error: str | None = None


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


class JobRunner:
    """Runs the jobs of ``schedules`` against ``engine``."""

    def __init__(
        self,
        engine: sa.Engine,
        schedules: Schedules,
        *,
        reports_dir: Path,
        executor: Executor,
        time_zone: ZoneInfo,
        clock: Callable[[], datetime] = now_utc,
        host: str | None = None,
        pid: int | None = None,
        alive: Callable[[int], bool] = pid_alive,
        stale_grace: timedelta = STALE_GRACE,
    ) -> None:
        self.engine = engine
        self.schedules = schedules
        self.reports_dir = reports_dir.resolve()
        self.executor = executor
        self.time_zone = time_zone
        self.clock = clock
        self.host = host or socket.gethostname()
        self.pid = pid or os.getpid()
        self.alive = alive
        self.stale_grace = stale_grace
        self.stop = threading.Event()
        self.started_at = clock()
        self.crons = {j.name: slots.Cron(j.cron, time_zone) for j in schedules.jobs}

    # --- slots ----------------------------------------------------------------------------
    def job(self, name: str) -> Job:
        found = self.schedules.get(name)
        if found is None:
            known = ", ".join(j.name for j in self.schedules.jobs)
            raise SchedulerError(f"unknown job {name!r}; known: {known}")
        return found

    def latest_slot(self, job: Job, now: datetime) -> datetime | None:
        return self.crons[job.name].latest_at_or_before(now)

    def next_slot(self, job: Job, now: datetime) -> datetime | None:
        return self.crons[job.name].next_after(now)

    def catch_up_window(self, job: Job, slot: datetime) -> timedelta:
        if job.catch_up is not None:
            return job.catch_up
        return self.crons[job.name].period_after(slot)

    # --- entry points ---------------------------------------------------------------------
    def fire(self, name: str) -> RunResult | None:
        """APScheduler's callback: run the job's latest slot, now. A slot from before this
        runner started is a catch-up."""
        job = self.job(name)
        now = self.clock()
        slot = self.latest_slot(job, now)
        if slot is None or self.stop.is_set():  # stopping: leave the slot to the next start
            return None
        trigger: runs.Trigger = "catch_up" if slot < self.started_at else "schedule"
        return self.run_slot(job, slot, now, trigger=trigger)

    def prepare(self, now: datetime) -> list[tuple[Job, datetime]]:
        """On start: close abandoned runs, record the gaps of every enabled job, and return
        the (job, slot) pairs a catch-up should run."""
        self.close_stale(now)
        due = []
        for job in self.schedules.enabled:
            slot = self.latest_slot(job, now)
            if slot is None:
                continue
            with self.engine.begin() as conn:
                if runs.slot_row(conn, job.name, slot) is not None:
                    continue
                self._record_gap(conn, job, before=slot, now=now)
                if now - slot > self.catch_up_window(job, slot):
                    self._record_missed(conn, job, slot, now=now, reason="too late to catch up")
                    continue
            due.append((job, slot))
        return due

    def catch_up(self, now: datetime) -> list[RunResult]:
        """``prepare``, then run each due slot once, one after the other."""
        out = []
        for job, slot in self.prepare(now):
            if self.stop.is_set():
                break
            result = self.run_slot(job, slot, now, trigger="catch_up")
            if result is not None:
                out.append(result)
        return out

    def run_slot(
        self, job: Job, slot: datetime, now: datetime, *, trigger: runs.Trigger = "schedule"
    ) -> RunResult | None:
        """Run ``slot`` of ``job`` unless it is recorded already (None), too late (missed)
        or the job is running (skipped)."""
        with self.engine.begin() as conn:
            if runs.slot_row(conn, job.name, slot) is not None:
                return None
            self._record_gap(conn, job, before=slot, now=now)
            if now - slot > self.catch_up_window(job, slot):
                self._record_missed(conn, job, slot, now=now, reason="too late to run")
                return RunResult(job.name, "missed", trigger, slot)
        return self._run(job, trigger=trigger, slot=slot, moment=slot, overrides={})

    def run_now(self, name: str, overrides: Mapping[str, Any] | None = None) -> RunResult:
        """Run a job now (``dpp schedule run``), enabled or not; ``as_of`` is now unless
        given."""
        job = self.job(name)
        overrides = dict(overrides or {})
        bad = sorted(set(overrides) - job.notebook_parameters - {AS_OF})
        if "database_url" in overrides:
            raise SchedulerError("database_url is never passed; set DPP_DATABASE_URL instead")
        if bad:
            raise SchedulerError(
                f"{job.notebook.name} has no parameter(s) {', '.join(bad)}; its parameters "
                f"cell has: {', '.join(sorted(job.notebook_parameters))}"
            )
        moment = self.clock().replace(microsecond=0)
        result = self._run(job, trigger="manual", slot=None, moment=moment, overrides=overrides)
        # None means "the slot was taken": a manual run has no slot, so it never is
        return result or RunResult(job.name, "skipped", "manual", None, error="refused")

    # --- runs -----------------------------------------------------------------------------
    def _run(
        self,
        job: Job,
        *,
        trigger: runs.Trigger,
        slot: datetime | None,
        moment: datetime,
        overrides: Mapping[str, Any],
    ) -> RunResult | None:
        parameters = {AS_OF: iso(moment), **job.parameters, **overrides}
        run_id = runs.new_run_id()
        output = self.output_path(job, moment, run_id.hex[:8])
        started = self.clock()
        claim = runs.Claim(
            job_name=job.name,
            trigger=trigger,
            scheduled_for=slot,
            started_at=started,
            deadline_at=started + job.timeout + self.stale_grace,
            output_path=str(output),
            parameters=parameters,
            host=self.host,
            pid=self.pid,
            run_id=run_id,
        )
        self.close_stale(started, job=job.name)
        with self.engine.begin() as conn:
            if not runs.try_claim(conn, claim):
                return self._refused(conn, job, trigger, slot, started)
        log.info("job %s: run %s started (%s, %s)", job.name, run_id, trigger, output)
        execution = Execution(
            job=job.name,
            notebook=job.notebook,
            output=output,
            parameters=parameters,
            timeout_seconds=job.timeout.total_seconds(),
        )
        try:
            outcome = self.executor(execution, self.stop)
        except Exception as exc:  # the executor itself broke: still a recorded failure
            log.exception("job %s: run %s could not be executed", job.name, run_id)
            outcome = Outcome("failed", f"{type(exc).__name__}: {exc}")
        except BaseException:  # Ctrl-C in a foreground run: record, then stop
            self._finish(job, run_id, Outcome("failed", "interrupted", interrupted=True))
            raise
        self._finish(job, run_id, outcome)
        return RunResult(job.name, outcome.status, trigger, slot, run_id, output, outcome.error)

    def _refused(
        self,
        conn: sa.Connection,
        job: Job,
        trigger: runs.Trigger,
        slot: datetime | None,
        now: datetime,
    ) -> RunResult | None:
        """The claim conflicted: the slot was taken meanwhile (None), or the job runs."""
        if slot is not None and runs.slot_row(conn, job.name, slot) is not None:
            return None
        holder = runs.running(conn, job.name)
        if holder:
            h = holder[0]
            reason = (
                f"job already running: run {h.run_id} ({h.trigger}) since "
                f"{iso(h.started_at or h.recorded_at)}, pid {h.pid} on {h.host}"
            )
        else:
            reason = "job already running (the run ended while this one was refused)"
        runs.record_slot(
            conn,
            job_name=job.name,
            trigger=trigger,
            scheduled_for=slot,
            status="skipped",
            now=now,
            error=reason,
            host=self.host,
            pid=self.pid,
        )
        log.warning("job %s: %s skipped: %s", job.name, iso(slot) if slot else "manual run", reason)
        return RunResult(job.name, "skipped", trigger, slot, error=reason)

    def _finish(self, job: Job, run_id: Any, outcome: Outcome) -> None:
        now = self.clock()
        with self.engine.begin() as conn:
            runs.finish(conn, run_id, status=outcome.status, now=now, error=outcome.error)
            if outcome.status == "failed":
                error = runs.trim(outcome.error or "failed", 1000)
                record_computation_failure(conn, job=job.name, error=error, now=now)
            else:
                resolve_computation_failure(conn, job=job.name, now=now)
        log.log(
            logging.INFO if outcome.status == "succeeded" else logging.ERROR,
            "job %s: run %s %s%s",
            job.name,
            run_id,
            outcome.status,
            f": {outcome.error}" if outcome.error else "",
        )

    def output_path(self, job: Job, moment: datetime, run: str) -> Path:
        local = moment.astimezone(self.time_zone)
        name = job.output.format(
            job=job.name, date=local.strftime("%Y-%m-%d"), time=local.strftime("%H%M%S"), run=run
        )
        return self.reports_dir / name

    # --- bookkeeping ----------------------------------------------------------------------
    def close_stale(self, now: datetime, *, job: str | None = None) -> list[runs.RunRecord]:
        """Close ``running`` rows whose process is gone or whose deadline passed; each
        closed run raises its job's failure alert."""
        closed = []
        with self.engine.begin() as conn:
            for run in runs.running(conn, job):
                reason = self._stale_reason(run, now)
                if reason and runs.close_interrupted(conn, run, now=now, reason=reason):
                    record_computation_failure(
                        conn, job=run.job_name, error=f"interrupted: {reason}", now=now
                    )
                    log.error("job %s: run %s interrupted: %s", run.job_name, run.run_id, reason)
                    closed.append(run)
        return closed

    def _stale_reason(self, run: runs.RunRecord, now: datetime) -> str | None:
        if run.host == self.host and run.pid is not None and not self.alive(run.pid):
            return f"process {run.pid} on {run.host} ended without recording the run's end"
        if run.deadline_at is not None and now > run.deadline_at:
            return f"no end recorded by {iso(run.deadline_at)} (timeout plus grace)"
        return None

    def _record_gap(
        self, conn: sa.Connection, job: Job, *, before: datetime, now: datetime
    ) -> None:
        """One ``missed`` row for the slots between the job's last recorded slot and
        ``before`` (none for a job never recorded: no history is invented)."""
        last = runs.last_slot(conn, job.name)
        if last is None:
            return
        gap = self.crons[job.name].slots_between(last, before)
        if gap is None:
            return
        more = "+" if gap.capped else ""
        noun = "slot" if gap.count == 1 else "slots"
        reason = (
            f"{gap.count}{more} {noun} not run, {iso(gap.first)} to {iso(gap.last)}: "
            "no scheduler was running (or the job was disabled)"
        )
        runs.record_slot(
            conn,
            job_name=job.name,
            trigger="schedule",
            scheduled_for=gap.last,
            status="missed",
            now=now,
            error=reason,
            details={"missed_slots": gap.count, "first": iso(gap.first), "last": iso(gap.last)},
        )
        log.warning("job %s: %s", job.name, reason)

    def _record_missed(
        self, conn: sa.Connection, job: Job, slot: datetime, *, now: datetime, reason: str
    ) -> None:
        late = now - slot
        runs.record_slot(
            conn,
            job_name=job.name,
            trigger="catch_up",
            scheduled_for=slot,
            status="missed",
            now=now,
            error=f"{reason}: {late} late (catch-up window {self.catch_up_window(job, slot)})",
            details={"missed_slots": 1, "first": iso(slot), "last": iso(slot)},
        )
        log.warning("job %s: slot %s missed: %s", job.name, iso(slot), reason)
