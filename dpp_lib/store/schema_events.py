"""The raw inbox and the event tables of spec §4.3, with their per-table unique keys."""

from __future__ import annotations

import sqlalchemy as sa

from dpp_lib.store.schema_config import STAGES, _in, metadata
from dpp_lib.store.types import JSONB, StrArray, UtcDateTime, UuidArray, new_id

SOURCES = ("jira", "github", "deployment", "monitoring", "survey")
INBOX_SOURCES = ("github", "jira", "deployment", "incident", "pulse")
INBOX_STATES = ("pending", "done", "ignored", "dead")
SEVERITIES = ("critical", "high", "medium", "low")


def _common() -> list[sa.Column[object]]:
    """§4.3.1 common event columns."""
    return [
        sa.Column("event_id", sa.Uuid, primary_key=True, default=new_id),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("delivery_stream_id", sa.Uuid, sa.ForeignKey("delivery_streams.stream_id")),
        sa.Column("tech_stream_id", sa.Uuid, sa.ForeignKey("tech_streams.stream_id")),
        sa.Column("received_at", UtcDateTime, nullable=False, server_default=sa.func.now()),
        sa.Column("event_timestamp", UtcDateTime, nullable=False),
        # Addition: the raw_events row this event came from (traceability, rebuilds).
        sa.Column("raw_event_id", sa.BigInteger),
    ]


def _source_check() -> sa.CheckConstraint:
    return sa.CheckConstraint(_in("source", SOURCES), name="source")


# --- DESIGN §3: the raw inbox ---------------------------------------------------------------
raw_events = sa.Table(
    "raw_events",
    metadata,
    sa.Column(
        "id",
        sa.BigInteger().with_variant(sa.Integer, "sqlite"),
        primary_key=True,
        autoincrement=True,
    ),
    sa.Column("source", sa.String(16), nullable=False),
    sa.Column("delivery_id", sa.String(200), nullable=False),
    sa.Column("event_kind", sa.String(100)),
    sa.Column("headers", JSONB, nullable=False),
    sa.Column("body", sa.LargeBinary, nullable=False),
    sa.Column("body_sha256", sa.String(64), nullable=False),
    sa.Column("api_key_id", sa.Uuid),
    sa.Column("received_at", UtcDateTime, nullable=False),
    sa.Column("state", sa.String(16), nullable=False, server_default="pending"),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("next_attempt_at", UtcDateTime, nullable=False),
    sa.Column("processed_at", UtcDateTime),
    sa.Column("last_error", sa.Text),
    sa.Column("ignored_reason", sa.Text),
    sa.Column("outcome", JSONB),
    sa.Column("archived_at", UtcDateTime),
    sa.UniqueConstraint("source", "delivery_id"),
    sa.CheckConstraint(_in("source", INBOX_SOURCES), name="source"),
    sa.CheckConstraint(_in("state", INBOX_STATES), name="state"),
    sa.Index("ix_raw_events_state_due", "state", "next_attempt_at", "id"),
    sa.Index(None, "received_at"),
)

# --- §4.3.2 ---------------------------------------------------------------------------------
work_item_events = sa.Table(
    "work_item_events",
    metadata,
    *_common(),
    sa.Column("event_type", sa.String(16), nullable=False),
    sa.Column("ticket_id", sa.String(64), nullable=False),
    sa.Column("ticket_type", sa.String(64)),
    sa.Column("from_stage", sa.String(16)),
    sa.Column("to_stage", sa.String(16)),
    sa.Column("assignee_hash", sa.String(64)),
    sa.Column("story_points", sa.Numeric),
    sa.Column("priority", sa.String(64)),
    sa.Column("sprint_id", sa.Uuid, sa.ForeignKey("sprints.sprint_id")),
    sa.Column("labels", StrArray),
    sa.Column("blocked_reason", sa.Text),
    sa.Column("blocking_tech_stream_id", sa.Uuid, sa.ForeignKey("tech_streams.stream_id")),
    # Additions: Jira status names (timelines, unmapped statuses) and all tech streams.
    sa.Column("from_status", sa.String(200)),
    sa.Column("to_status", sa.String(200)),
    sa.Column("tech_stream_ids", UuidArray),
    sa.UniqueConstraint("ticket_id", "event_type", "event_timestamp"),
    sa.Index(None, "ticket_id"),
    sa.Index(None, "delivery_stream_id", "event_timestamp"),
    sa.Index(None, "to_stage", "event_timestamp"),
    _source_check(),
    sa.CheckConstraint(
        _in(
            "event_type",
            (
                "created",
                "transitioned",
                "completed",
                "blocked",
                "unblocked",
                "flagged",
                "unflagged",
            ),
        ),
        name="event_type",
    ),
    sa.CheckConstraint(f"from_stage IS NULL OR {_in('from_stage', STAGES)}", name="from_stage"),
    sa.CheckConstraint(f"to_stage IS NULL OR {_in('to_stage', STAGES)}", name="to_stage"),
)

# Addition: field changes of a ticket that are not state transitions (sprint membership,
# labels, story points, ...), needed for sprint scope change and re-derivation.
work_item_field_changes = sa.Table(
    "work_item_field_changes",
    metadata,
    *_common(),
    sa.Column("ticket_id", sa.String(64), nullable=False),
    sa.Column("field", sa.String(32), nullable=False),
    sa.Column("from_value", JSONB),
    sa.Column("to_value", JSONB),
    sa.UniqueConstraint("ticket_id", "field", "event_timestamp"),
    sa.Index(None, "field", "event_timestamp"),
    _source_check(),
)

# --- §4.3.3 ---------------------------------------------------------------------------------
pr_events = sa.Table(
    "pr_events",
    metadata,
    *_common(),
    sa.Column("event_type", sa.String(24), nullable=False),
    sa.Column("pr_number", sa.Integer, nullable=False),
    sa.Column("repo_id", sa.Uuid, sa.ForeignKey("repositories.repo_id")),
    sa.Column("github_org", sa.String(100), nullable=False),
    sa.Column("github_repo", sa.String(200), nullable=False),
    sa.Column("author_hash", sa.String(64), nullable=False),
    sa.Column("branch_name", sa.String(300), nullable=False),
    sa.Column("linked_ticket_id", sa.String(64)),
    sa.Column("base_branch", sa.String(300)),
    sa.Column("lines_added", sa.Integer),
    sa.Column("lines_removed", sa.Integer),
    sa.Column("files_changed", sa.Integer),
    sa.Column("reviewer_hash", sa.String(64)),
    sa.Column("review_state", sa.String(32)),
    sa.Column("comments_count", sa.Integer),
    # Additions: commits for deploy → PR linking (DESIGN §3), how the ticket was linked.
    sa.Column("head_sha", sa.String(64)),
    sa.Column("merge_commit_sha", sa.String(64)),
    sa.Column("link_method", sa.String(16)),
    sa.UniqueConstraint("repo_id", "pr_number", "event_type", "event_timestamp"),
    # Addition: the same key by name, so events of unregistered repos (repo_id NULL)
    # are deduplicated too (NULLs never conflict in a unique constraint).
    sa.UniqueConstraint(
        "github_org",
        "github_repo",
        "pr_number",
        "event_type",
        "event_timestamp",
        name="uq_pr_events_by_name",
    ),
    sa.Index(None, "linked_ticket_id"),
    sa.Index(None, "tech_stream_id", "event_timestamp"),
    sa.Index(None, "repo_id", "pr_number"),
    # Deploy → PR linking looks a commit up as a PR's merge or head commit (migration 0002).
    sa.Index(None, "repo_id", "merge_commit_sha"),
    sa.Index(None, "repo_id", "head_sha"),
    _source_check(),
    sa.CheckConstraint(
        _in(
            "event_type",
            ("opened", "review_submitted", "changes_requested", "approved", "merged", "closed"),
        ),
        name="event_type",
    ),
)

# --- §4.3.4 ---------------------------------------------------------------------------------
cicd_events = sa.Table(
    "cicd_events",
    metadata,
    *_common(),
    sa.Column("event_type", sa.String(24), nullable=False),
    sa.Column("pipeline_id", sa.String(300), nullable=False),
    sa.Column("pipeline_run_id", sa.String(200), nullable=False),
    sa.Column("repo_id", sa.Uuid, sa.ForeignKey("repositories.repo_id")),
    sa.Column("environment", sa.String(100), nullable=False),
    sa.Column("status", sa.String(32), nullable=False),
    sa.Column("duration_seconds", sa.Integer),
    sa.Column("commit_sha", sa.String(64)),
    sa.Column("linked_pr_number", sa.Integer),
    sa.Column("linked_ticket_id", sa.String(64)),
    sa.Column("trigger_type", sa.String(32)),
    sa.Column("artefact_version", sa.String(200)),
    sa.Column("failure_reason", sa.Text),
    sa.UniqueConstraint("pipeline_id", "pipeline_run_id", "event_type"),
    sa.Index(None, "environment", "status", "event_timestamp"),
    sa.Index(None, "commit_sha"),
    sa.Index(None, "linked_ticket_id"),
    _source_check(),
    sa.CheckConstraint(
        _in(
            "event_type",
            (
                "build_started",
                "build_completed",
                "deploy_started",
                "deploy_completed",
                "deploy_failed",
                "rollback_initiated",
                "rollback_completed",
            ),
        ),
        name="event_type",
    ),
)

# --- §4.3.5 ---------------------------------------------------------------------------------
incident_events = sa.Table(
    "incident_events",
    metadata,
    *_common(),
    sa.Column("event_type", sa.String(24), nullable=False),
    sa.Column("incident_id", sa.String(200), nullable=False),
    sa.Column("service_name", sa.String(200), nullable=False),
    sa.Column("severity", sa.String(16)),
    sa.Column("description", sa.Text),
    sa.Column("related_deploy_id", sa.String(200)),
    sa.Column("resolved_at", UtcDateTime),
    sa.Column("time_to_restore_min", sa.Integer),
    sa.UniqueConstraint("incident_id", "event_type"),
    sa.Index(None, "tech_stream_id", "event_timestamp"),
    sa.Index(None, "incident_id"),
    sa.Index(None, "related_deploy_id"),
    _source_check(),
    sa.CheckConstraint(
        _in(
            "event_type",
            ("alarm_triggered", "alarm_resolved", "incident_opened", "incident_resolved"),
        ),
        name="event_type",
    ),
    sa.CheckConstraint(f"severity IS NULL OR {_in('severity', SEVERITIES)}", name="severity"),
)

# --- §4.3.6 ---------------------------------------------------------------------------------
defect_events = sa.Table(
    "defect_events",
    metadata,
    *_common(),
    sa.Column("event_type", sa.String(16), nullable=False),
    sa.Column("ticket_id", sa.String(64), nullable=False),
    sa.Column("severity", sa.String(16)),
    sa.Column("found_in_stage", sa.String(16), nullable=False),
    sa.Column("introduced_in_stage", sa.String(16)),
    sa.Column("linked_work_item_id", sa.String(64)),
    sa.Column("root_cause_category", sa.String(64)),
    sa.UniqueConstraint("ticket_id", "event_type", "event_timestamp"),
    sa.Index(None, "delivery_stream_id", "found_in_stage"),
    sa.Index(None, "tech_stream_id", "event_timestamp"),
    sa.Index(None, "ticket_id", "event_timestamp"),
    _source_check(),
    sa.CheckConstraint(
        _in("event_type", ("logged", "attributed", "reclassified")), name="event_type"
    ),
    sa.CheckConstraint(f"severity IS NULL OR {_in('severity', SEVERITIES)}", name="severity"),
)

# --- §4.3.7 ---------------------------------------------------------------------------------
sprint_snapshots = sa.Table(
    "sprint_snapshots",
    metadata,
    *_common(),
    sa.Column("sprint_id", sa.Uuid, sa.ForeignKey("sprints.sprint_id"), nullable=False),
    sa.Column("snapshot_date", sa.Date, nullable=False),
    sa.Column("committed_count", sa.Integer, nullable=False),
    sa.Column("completed_count", sa.Integer, nullable=False),
    sa.Column("remaining_count", sa.Integer, nullable=False),
    sa.Column("added_after_start", sa.Integer, server_default="0"),
    sa.Column("removed_after_start", sa.Integer, server_default="0"),
    sa.Column("wip_ba", sa.Integer, server_default="0"),
    sa.Column("wip_dev", sa.Integer, server_default="0"),
    sa.Column("wip_qa", sa.Integer, server_default="0"),
    sa.Column("wip_uat", sa.Integer, server_default="0"),
    sa.UniqueConstraint("sprint_id", "snapshot_date"),
    _source_check(),
)

# --- §4.3.8 ---------------------------------------------------------------------------------
pulse_responses = sa.Table(
    "pulse_responses",
    metadata,
    *_common(),
    sa.Column("survey_period", sa.String(7), nullable=False),
    sa.Column("respondent_hash", sa.String(64), nullable=False),
    sa.Column("pace_score", sa.Integer, nullable=False),
    sa.Column("tooling_score", sa.Integer, nullable=False),
    sa.Column("clarity_score", sa.Integer, nullable=False),
    sa.Column("free_text", sa.Text),
    sa.UniqueConstraint("survey_period", "respondent_hash", "delivery_stream_id"),
    _source_check(),
    sa.CheckConstraint("pace_score BETWEEN 1 AND 5", name="pace_score"),
    sa.CheckConstraint("tooling_score BETWEEN 1 AND 5", name="tooling_score"),
    sa.CheckConstraint("clarity_score BETWEEN 1 AND 5", name="clarity_score"),
)

# --- DESIGN §3: deferred enrichment (spec §5.3.6) --------------------------------------------
deferred_enrichments = sa.Table(
    "deferred_enrichments",
    metadata,
    sa.Column("deferral_id", sa.Uuid, primary_key=True, default=new_id),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("subject", sa.String(200), nullable=False),
    sa.Column("state", sa.String(16), nullable=False, server_default="pending"),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("created_at", UtcDateTime, nullable=False, server_default=sa.func.now()),
    sa.Column("next_attempt_at", UtcDateTime, nullable=False),
    sa.Column("resolved_at", UtcDateTime),
    sa.Column("details", JSONB),
    sa.UniqueConstraint("kind", "subject"),
    sa.Index(None, "state", "next_attempt_at"),
    sa.CheckConstraint(_in("state", ("pending", "resolved", "expired")), name="state"),
)
