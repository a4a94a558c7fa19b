"""Run records (``schedule_runs``): claiming a run, finishing it, skipped and missed slots,
and closing runs whose process died.

The database does the exclusion: a scheduled slot has one row at most (unique job and
slot) and a job has one ``running`` row at most (a partial unique index), so two
schedulers, a restart or a ``dpp schedule run`` during a scheduled run cannot overlap.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from dpp_lib.store.schema import schedule_runs
from dpp_lib.store.types import new_id

Trigger = Literal["schedule", "catch_up", "manual"]
Status = Literal["running", "succeeded", "failed", "skipped", "missed"]
ERROR_MAX = 2000

r = schedule_runs


@dataclass(frozen=True)
class RunRecord:
    run_id: uuid.UUID
    job_name: str
    trigger: str
    scheduled_for: datetime | None
    status: str
    recorded_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    deadline_at: datetime | None
    output_path: str | None
    error: str | None
    parameters: dict[str, Any] | None
    host: str | None
    pid: int | None

    @classmethod
    def of(cls, row: sa.Row[Any]) -> RunRecord:
        return cls(**{c.name: getattr(row, c.name) for c in r.columns})


@dataclass(frozen=True)
class Claim:
    """A run about to start: inserted as ``running`` if the job is free."""

    job_name: str
    trigger: Trigger
    scheduled_for: datetime | None
    started_at: datetime
    deadline_at: datetime
    output_path: str
    parameters: dict[str, Any]
    host: str
    pid: int
    run_id: uuid.UUID


def new_run_id() -> uuid.UUID:
    return new_id()


def trim(error: str, limit: int = ERROR_MAX) -> str:
    error = error.strip()
    return error if len(error) <= limit else error[: limit - 1] + "…"


def _insert_ignoring_conflicts(conn: sa.Connection, values: dict[str, Any]) -> bool:
    """Insert a row unless it breaks a unique key; True when it was inserted. Both
    backends check every unique key atomically (a concurrent insert is waited for)."""
    module = postgresql if conn.dialect.name == "postgresql" else sqlite
    stmt = module.insert(r).values(**values).on_conflict_do_nothing().returning(r.c.run_id)
    return conn.execute(stmt).first() is not None


def try_claim(conn: sa.Connection, claim: Claim) -> bool:
    return _insert_ignoring_conflicts(
        conn,
        {
            "run_id": claim.run_id,
            "job_name": claim.job_name,
            "trigger": claim.trigger,
            "scheduled_for": claim.scheduled_for,
            "status": "running",
            "recorded_at": claim.started_at,
            "started_at": claim.started_at,
            "deadline_at": claim.deadline_at,
            "output_path": claim.output_path,
            "parameters": claim.parameters,
            "host": claim.host,
            "pid": claim.pid,
        },
    )


def record_slot(
    conn: sa.Connection,
    *,
    job_name: str,
    trigger: Trigger,
    scheduled_for: datetime | None,
    status: Literal["skipped", "missed"],
    now: datetime,
    error: str,
    details: dict[str, Any] | None = None,
    host: str | None = None,
    pid: int | None = None,
) -> bool:
    """A slot that did not run (skipped: the job was running; missed: nobody ran it);
    False when the slot was recorded already."""
    return _insert_ignoring_conflicts(
        conn,
        {
            "run_id": new_id(),
            "job_name": job_name,
            "trigger": trigger,
            "scheduled_for": scheduled_for,
            "status": status,
            "recorded_at": now,
            "error": trim(error),
            "parameters": details,
            "host": host,
            "pid": pid,
        },
    )


def finish(
    conn: sa.Connection,
    run_id: uuid.UUID,
    *,
    status: Literal["succeeded", "failed"],
    now: datetime,
    error: str | None,
) -> None:
    error = None if error is None else trim(error)
    conn.execute(
        r.update().where(r.c.run_id == run_id).values(status=status, finished_at=now, error=error)
    )


def slot_row(conn: sa.Connection, job_name: str, slot: datetime) -> RunRecord | None:
    row = conn.execute(
        sa.select(r).where(r.c.job_name == job_name, r.c.scheduled_for == slot)
    ).first()
    return None if row is None else RunRecord.of(row)


def last_slot(conn: sa.Connection, job_name: str) -> datetime | None:
    """The latest slot of the job with a row of any status."""
    found: datetime | None = conn.execute(
        sa.select(sa.func.max(r.c.scheduled_for)).where(r.c.job_name == job_name)
    ).scalar()
    return found


def running(conn: sa.Connection, job_name: str | None = None) -> list[RunRecord]:
    query = sa.select(r).where(r.c.status == "running").order_by(r.c.started_at)
    if job_name is not None:
        query = query.where(r.c.job_name == job_name)
    return [RunRecord.of(row) for row in conn.execute(query)]


def close_interrupted(conn: sa.Connection, run: RunRecord, *, now: datetime, reason: str) -> bool:
    """Close a ``running`` row as failed; False when it was no longer running."""
    done = conn.execute(
        r.update()
        .where(r.c.run_id == run.run_id, r.c.status == "running")
        .values(status="failed", finished_at=now, error=trim(f"interrupted: {reason}"))
    )
    return bool(done.rowcount)


def get(conn: sa.Connection, run_id: uuid.UUID) -> RunRecord | None:
    row = conn.execute(sa.select(r).where(r.c.run_id == run_id)).first()
    return None if row is None else RunRecord.of(row)


def history(
    conn: sa.Connection, *, job_name: str | None = None, limit: int = 20
) -> list[RunRecord]:
    """The latest rows first."""
    query = sa.select(r).order_by(r.c.recorded_at.desc(), r.c.run_id).limit(limit)
    if job_name is not None:
        query = query.where(r.c.job_name == job_name)
    return [RunRecord.of(row) for row in conn.execute(query)]


def latest_per_job(conn: sa.Connection) -> dict[str, RunRecord]:
    """Each job's latest row that is a run (not a skipped or missed slot)."""
    ranked = (
        sa.select(
            r,
            sa.func.row_number()
            .over(partition_by=r.c.job_name, order_by=(r.c.recorded_at.desc(), r.c.run_id))
            .label("rank"),
        )
        .where(r.c.status.in_(("running", "succeeded", "failed")))
        .subquery()
    )
    rows = conn.execute(sa.select(ranked).where(ranked.c.rank == 1)).all()
    return {row.job_name: RunRecord.of(row) for row in rows}
