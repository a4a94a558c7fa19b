"""Computed tables of spec §4.4: rebuildable from the events at any time."""

from __future__ import annotations

import sqlalchemy as sa

from dpp_lib.store.schema_config import _in, metadata
from dpp_lib.store.types import JSONB, StrArray, UtcDateTime, UuidArray, new_id


def _computed_at() -> sa.Column[object]:
    return sa.Column("computed_at", UtcDateTime, nullable=False, server_default=sa.func.now())


daily_stream_metrics = sa.Table(
    "daily_stream_metrics",
    metadata,
    sa.Column("metric_id", sa.Uuid, primary_key=True, default=new_id),
    sa.Column("metric_date", sa.Date, nullable=False),
    sa.Column("stream_type", sa.String(16), nullable=False),
    sa.Column("stream_id", sa.Uuid, nullable=False),
    sa.Column("metric_name", sa.String(64), nullable=False),
    sa.Column("metric_value", sa.Numeric, nullable=False),
    sa.Column("metric_unit", sa.String(16), nullable=False),
    sa.Column("percentile", sa.Integer),
    sa.Column("sample_size", sa.Integer, nullable=False),
    _computed_at(),
    sa.UniqueConstraint("metric_date", "stream_type", "stream_id", "metric_name", "percentile"),
    sa.Index(None, "stream_id", "metric_name", "metric_date"),
    sa.CheckConstraint(_in("stream_type", ("delivery", "tech")), name="stream_type"),
)

work_item_cycles = sa.Table(
    "work_item_cycles",
    metadata,
    sa.Column("cycle_id", sa.Uuid, primary_key=True, default=new_id),
    sa.Column("ticket_id", sa.String(64), nullable=False, unique=True),
    sa.Column("delivery_stream_id", sa.Uuid, sa.ForeignKey("delivery_streams.stream_id")),
    sa.Column("tech_stream_ids", UuidArray),
    sa.Column("ticket_type", sa.String(64)),
    sa.Column("story_points", sa.Numeric),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("first_in_progress", UtcDateTime),
    sa.Column("completed_at", UtcDateTime, nullable=False),
    sa.Column("lead_time_days", sa.Numeric, nullable=False),
    # Null for items never in an active status (DESIGN §5, which wins over the spec's NOT NULL).
    sa.Column("cycle_time_days", sa.Numeric),
    sa.Column("active_time_days", sa.Numeric, nullable=False),
    sa.Column("wait_time_days", sa.Numeric, nullable=False),
    sa.Column("flow_efficiency_pct", sa.Numeric),
    sa.Column("stage_durations", JSONB, nullable=False),
    sa.Column("sprint_id", sa.Uuid, sa.ForeignKey("sprints.sprint_id")),
    sa.Index(None, "delivery_stream_id", "completed_at"),
    sa.Index(None, "completed_at"),
)

pr_cycles = sa.Table(
    "pr_cycles",
    metadata,
    sa.Column("cycle_id", sa.Uuid, primary_key=True, default=new_id),
    sa.Column("repo_id", sa.Uuid, sa.ForeignKey("repositories.repo_id"), nullable=False),
    sa.Column("tech_stream_id", sa.Uuid, sa.ForeignKey("tech_streams.stream_id"), nullable=False),
    sa.Column("delivery_stream_id", sa.Uuid, sa.ForeignKey("delivery_streams.stream_id")),
    sa.Column("pr_number", sa.Integer, nullable=False),
    sa.Column("linked_ticket_id", sa.String(64)),
    sa.Column("author_hash", sa.String(64), nullable=False),
    sa.Column("opened_at", UtcDateTime, nullable=False),
    sa.Column("first_review_at", UtcDateTime),
    sa.Column("approved_at", UtcDateTime),
    sa.Column("merged_at", UtcDateTime),
    sa.Column("time_to_first_review_hrs", sa.Numeric),
    sa.Column("time_to_merge_hrs", sa.Numeric),
    sa.Column("review_rounds", sa.Integer),
    sa.Column("reviewer_hashes", StrArray),
    sa.Column("reviewer_count", sa.Integer),
    sa.Column("lines_changed", sa.Integer),
    sa.Column("files_changed", sa.Integer),
    # Additions (migration 0007): the commits deploys name, so DORA lead time reads the PR
    # records alone instead of grouping every PR event.
    sa.Column("merge_commit_sha", sa.String(64)),
    sa.Column("head_sha", sa.String(64)),
    sa.UniqueConstraint("repo_id", "pr_number"),
    sa.Index(None, "tech_stream_id", "merged_at"),
    sa.Index(None, "delivery_stream_id", "merged_at"),
)

deployment_records = sa.Table(
    "deployment_records",
    metadata,
    sa.Column("record_id", sa.Uuid, primary_key=True, default=new_id),
    sa.Column("tech_stream_id", sa.Uuid, sa.ForeignKey("tech_streams.stream_id"), nullable=False),
    sa.Column("delivery_stream_id", sa.Uuid, sa.ForeignKey("delivery_streams.stream_id")),
    sa.Column("repo_id", sa.Uuid, sa.ForeignKey("repositories.repo_id")),
    sa.Column("environment", sa.String(100), nullable=False),
    sa.Column("deployed_at", UtcDateTime, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("commit_sha", sa.String(64)),
    sa.Column("linked_pr_number", sa.Integer),
    sa.Column("linked_ticket_id", sa.String(64)),
    sa.Column("lead_time_hrs", sa.Numeric),
    sa.Column("caused_incident", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("incident_id", sa.String(200)),
    sa.Column("rollback_at", UtcDateTime),
    # Additions: the pipeline run the record comes from (its natural key) and the trigger
    # (config-only deploys are excluded from DORA, DESIGN §5).
    sa.Column("pipeline_id", sa.String(300), nullable=False),
    sa.Column("pipeline_run_id", sa.String(200), nullable=False),
    sa.Column("trigger_type", sa.String(32)),
    sa.UniqueConstraint("pipeline_id", "pipeline_run_id"),
    sa.Index(None, "tech_stream_id", "environment", "deployed_at"),
    sa.Index(None, "environment", "deployed_at"),
    sa.Index(None, "linked_ticket_id"),
    sa.CheckConstraint(_in("status", ("success", "failed", "rolled_back")), name="status"),
)

cross_stream_correlations = sa.Table(
    "cross_stream_correlations",
    metadata,
    sa.Column("correlation_id", sa.Uuid, primary_key=True, default=new_id),
    sa.Column("analysis_date", sa.Date, nullable=False),
    sa.Column("tech_stream_id", sa.Uuid, sa.ForeignKey("tech_streams.stream_id"), nullable=False),
    sa.Column("impacted_delivery_streams", UuidArray, nullable=False),
    sa.Column("blocked_delivery_streams", UuidArray),
    sa.Column("block_count_14d", sa.Integer, nullable=False),
    sa.Column("avg_confidence_pct", sa.Numeric),
    sa.Column("avg_cycle_time_p85", sa.Numeric),
    sa.Column("severity", sa.String(16)),
    _computed_at(),
    sa.UniqueConstraint("analysis_date", "tech_stream_id"),
    sa.CheckConstraint(
        _in("severity", ("none", "low", "medium", "high", "critical")), name="severity"
    ),
)

forecast_snapshots = sa.Table(
    "forecast_snapshots",
    metadata,
    sa.Column("forecast_id", sa.Uuid, primary_key=True, default=new_id),
    sa.Column(
        "delivery_stream_id", sa.Uuid, sa.ForeignKey("delivery_streams.stream_id"), nullable=False
    ),
    sa.Column("forecast_date", sa.Date, nullable=False),
    sa.Column("scope_item_count", sa.Integer, nullable=False),
    sa.Column("throughput_samples", sa.Integer, nullable=False),
    sa.Column("simulation_runs", sa.Integer, nullable=False),
    sa.Column("p50_completion_date", sa.Date, nullable=False),
    sa.Column("p70_completion_date", sa.Date, nullable=False),
    sa.Column("p85_completion_date", sa.Date, nullable=False),
    sa.Column("p95_completion_date", sa.Date, nullable=False),
    sa.Column("distribution_data", JSONB, nullable=False),
    _computed_at(),
    sa.Index(None, "delivery_stream_id", "forecast_date"),
)

pulse_aggregates = sa.Table(
    "pulse_aggregates",
    metadata,
    sa.Column("aggregate_id", sa.Uuid, primary_key=True, default=new_id),
    sa.Column(
        "delivery_stream_id", sa.Uuid, sa.ForeignKey("delivery_streams.stream_id"), nullable=False
    ),
    sa.Column("survey_period", sa.String(7), nullable=False),
    sa.Column("response_count", sa.Integer, nullable=False),
    # Nullable (DESIGN §5 wins over the spec's NOT NULL): averages of a period with fewer than
    # 3 responses are withheld; a stream without a team size has no response rate.
    sa.Column("team_size", sa.Integer),
    sa.Column("response_rate_pct", sa.Numeric),
    sa.Column("pace_avg", sa.Numeric),
    sa.Column("pace_trend", sa.Numeric),
    sa.Column("tooling_avg", sa.Numeric),
    sa.Column("tooling_trend", sa.Numeric),
    sa.Column("clarity_avg", sa.Numeric),
    sa.Column("clarity_trend", sa.Numeric),
    sa.Column("overall_avg", sa.Numeric),
    _computed_at(),
    sa.UniqueConstraint("delivery_stream_id", "survey_period"),
)
