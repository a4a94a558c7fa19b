"""schedule_runs: every run of a scheduled notebook job, and every skipped or missed slot

- unique (job_name, scheduled_for): a scheduled slot runs at most once, whatever the number
  of schedulers and restarts (manual runs have no slot);
- a partial unique index on job_name WHERE status = 'running': one run of a job at a time,
  across processes.

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

from dpp_lib.store.types import JSONB, UtcDateTime

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "schedule_runs",
        sa.Column("run_id", sa.Uuid(), nullable=False),
        sa.Column("job_name", sa.String(64), nullable=False),
        sa.Column("trigger", sa.String(16), nullable=False),
        sa.Column("scheduled_for", UtcDateTime(timezone=True), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("recorded_at", UtcDateTime(timezone=True), nullable=False),
        sa.Column("started_at", UtcDateTime(timezone=True), nullable=True),
        sa.Column("finished_at", UtcDateTime(timezone=True), nullable=True),
        sa.Column("deadline_at", UtcDateTime(timezone=True), nullable=True),
        sa.Column("output_path", sa.Text(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("parameters", JSONB, nullable=True),
        sa.Column("host", sa.String(255), nullable=True),
        sa.Column("pid", sa.Integer(), nullable=True),
        sa.CheckConstraint(
            "trigger IN ('schedule', 'catch_up', 'manual')", name=op.f("ck_schedule_runs_trigger")
        ),
        sa.CheckConstraint(
            "status IN ('running', 'succeeded', 'failed', 'skipped', 'missed')",
            name=op.f("ck_schedule_runs_status"),
        ),
        sa.PrimaryKeyConstraint("run_id", name=op.f("pk_schedule_runs")),
        sa.UniqueConstraint(
            "job_name", "scheduled_for", name=op.f("uq_schedule_runs_job_name_scheduled_for")
        ),
    )
    op.create_index(
        op.f("ix_schedule_runs_job_name_recorded_at"),
        "schedule_runs",
        ["job_name", "recorded_at"],
        unique=False,
    )
    op.create_index(
        "uq_schedule_runs_one_running",
        "schedule_runs",
        ["job_name"],
        unique=True,
        postgresql_where=sa.text("status = 'running'"),
        sqlite_where=sa.text("status = 'running'"),
    )


def downgrade() -> None:
    op.drop_index("uq_schedule_runs_one_running", table_name="schedule_runs")
    op.drop_index(op.f("ix_schedule_runs_job_name_recorded_at"), table_name="schedule_runs")
    op.drop_table("schedule_runs")
