"""Tables of the scheduler (DESIGN §7): one row per run of a scheduled notebook job."""

from __future__ import annotations

import sqlalchemy as sa

from dpp_lib.store.schema_config import _in, metadata
from dpp_lib.store.types import JSONB, UtcDateTime, new_id

RUN_TRIGGERS = ("schedule", "catch_up", "manual")
RUN_STATUSES = ("running", "succeeded", "failed", "skipped", "missed")

# Addition (0009): every run of a job of schedules/schedules.yaml, and every slot that was
# skipped (the job was still running) or missed (no scheduler was running). The unique key
# (job_name, scheduled_for) makes a scheduled slot run at most once, whatever the number of
# schedulers or restarts; manual runs have no slot (NULLs are distinct). The partial unique
# index lets one row per job be 'running' at a time, so a second run is refused atomically.
schedule_runs = sa.Table(
    "schedule_runs",
    metadata,
    sa.Column("run_id", sa.Uuid, primary_key=True, default=new_id),
    sa.Column("job_name", sa.String(64), nullable=False),
    sa.Column("trigger", sa.String(16), nullable=False),
    sa.Column("scheduled_for", UtcDateTime),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("recorded_at", UtcDateTime, nullable=False),
    sa.Column("started_at", UtcDateTime),
    sa.Column("finished_at", UtcDateTime),
    # when a 'running' row is considered abandoned: start + timeout + grace
    sa.Column("deadline_at", UtcDateTime),
    sa.Column("output_path", sa.Text),
    sa.Column("error", sa.Text),
    sa.Column("parameters", JSONB),
    sa.Column("host", sa.String(255)),
    sa.Column("pid", sa.Integer),
    sa.UniqueConstraint("job_name", "scheduled_for"),
    sa.Index(None, "job_name", "recorded_at"),
    sa.Index(
        "uq_schedule_runs_one_running",
        "job_name",
        unique=True,
        postgresql_where=sa.text("status = 'running'"),
        sqlite_where=sa.text("status = 'running'"),
    ),
    sa.CheckConstraint(_in("trigger", RUN_TRIGGERS), name="trigger"),
    sa.CheckConstraint(_in("status", RUN_STATUSES), name="status"),
)
