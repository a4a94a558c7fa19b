"""The canonical frames metric functions take: one per entity, columns fixed here.

``dpp_lib.store.read`` produces them from the database, tests build them with
``make_frame``. Times are timezone-aware UTC ``pandas.Timestamp`` (``NaT`` when missing);
ids are ``uuid.UUID`` or ``str``; lists are Python lists. A metric function may rely on
these columns and nothing else (STYLE: one canonical frame per entity).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import pandas as pd

from dpp_lib.metrics.common import MetricInputError

FRAMES: dict[str, tuple[str, ...]] = {
    # Work item events that shape a timeline (work_item_events), with each status's
    # active/wait flag resolved from the status mappings (None: unmapped status).
    "transitions": (
        "ticket_id",
        "event_type",  # created | transitioned | completed | blocked | unblocked
        "event_timestamp",
        "to_status",
        "to_stage",
        "to_active",
        "delivery_stream_id",
        "tech_stream_ids",
        "ticket_type",
        "story_points",
        "sprint_id",
        "blocking_tech_stream_id",
    ),
    # One row per completed work item (work_item_cycles, spec §4.4.2). first_in_progress,
    # cycle_time_days and flow_efficiency_pct are null for items never in an active status.
    "cycles": (
        "ticket_id",
        "delivery_stream_id",
        "tech_stream_ids",
        "ticket_type",
        "story_points",
        "sprint_id",
        "created_at",
        "first_in_progress",
        "completed_at",
        "lead_time_days",
        "cycle_time_days",
        "active_time_days",
        "wait_time_days",
        "flow_efficiency_pct",
        "stage_durations",  # dict: stage / <stage>_queue / blocked → business days
    ),
    # Every known work item's state at as_of (derived from transitions).
    "items": (
        "ticket_id",
        "delivery_stream_id",
        "tech_stream_ids",
        "ticket_type",
        "stage",  # current stage (None: never mapped)
        "status",
        "is_blocked",
        "created_at",
        "left_backlog_at",  # first time it left backlog (aging WIP), NaT if never
        "completed_at",  # last entry into done, NaT if not done now
    ),
    # Pull requests (pr_cycles plus the commits deploys name).
    "prs": (
        "repo_id",
        "pr_number",
        "tech_stream_id",
        "delivery_stream_id",
        "linked_ticket_id",
        "author_hash",
        "opened_at",
        "first_review_at",
        "approved_at",
        "merged_at",
        "time_to_first_review_hrs",
        "time_to_merge_hrs",
        "review_rounds",
        "reviewer_hashes",
        "lines_changed",
        "files_changed",
        "merge_commit_sha",
        "head_sha",
        "is_deployable",  # its repository deploys (DORA lead time uses only those)
    ),
    # Review submissions (pr_events review_submitted / approved / changes_requested).
    "reviews": (
        "repo_id",
        "pr_number",
        "tech_stream_id",
        "delivery_stream_id",
        "author_hash",  # the PR's author
        "reviewer_hash",
        "review_state",
        "event_timestamp",
    ),
    # Production deployment records (spec §4.4.4) with their repository's flags.
    "deploys": (
        "record_id",
        "pipeline_id",
        "pipeline_run_id",
        "tech_stream_id",
        "delivery_stream_id",
        "repo_id",
        "environment",
        "deployed_at",
        "status",  # success | failed | rolled_back
        "trigger_type",  # "config": configuration-only, excluded from DORA
        "commit_sha",
        "linked_pr_number",
        "linked_ticket_id",
        "rollback_at",
        "is_deployable",
    ),
    # One row per incident: its first open and first resolve (spec §5.4.2).
    "incidents": (
        "incident_id",
        "tech_stream_id",
        "severity",
        "opened_at",
        "resolved_at",
        "time_to_restore_min",
    ),
    # Defect events (logged / attributed / reclassified), spec §4.3.6.
    "defects": (
        "ticket_id",
        "event_type",
        "event_timestamp",
        "delivery_stream_id",
        "tech_stream_id",
        "found_in_stage",
        "introduced_in_stage",
        "severity",
    ),
    "pulse": (
        "delivery_stream_id",
        "survey_period",  # YYYY-MM
        "respondent_hash",
        "pace_score",
        "tooling_score",
        "clarity_score",
        "event_timestamp",
    ),
    "sprints": (
        "sprint_id",
        "delivery_stream_id",
        "name",
        "state",  # future | active | closed
        "start_date",
        "end_date",
    ),
    # Per inbox source: the latest delivery and the deliveries of the last 24 h.
    "integrations": (
        "source",  # jira | github | deployment | incident | pulse
        "last_received_at",
        "count_24h",
    ),
    "snapshots": (
        "sprint_id",
        "snapshot_date",
        "committed_count",
        "completed_count",
        "remaining_count",
        "added_after_start",
        "removed_after_start",
        "wip_ba",
        "wip_dev",
        "wip_qa",
        "wip_uat",
    ),
}

TIME_COLUMNS = frozenset(
    {
        "event_timestamp",
        "created_at",
        "first_in_progress",
        "completed_at",
        "left_backlog_at",
        "opened_at",
        "first_review_at",
        "approved_at",
        "merged_at",
        "deployed_at",
        "rollback_at",
        "resolved_at",
        "last_received_at",
    }
)


def make_frame(name: str, rows: Iterable[Mapping[str, Any]] = ()) -> pd.DataFrame:
    """A canonical frame from row dicts; missing columns are None/NaT, unknown ones refused."""
    columns = FRAMES[name]
    records = [dict(r) for r in rows]
    unknown = sorted({k for r in records for k in r} - set(columns))
    if unknown:
        raise MetricInputError(f"{name} frame has no column(s) {', '.join(unknown)}")
    frame = pd.DataFrame.from_records(
        [{c: r.get(c) for c in columns} for r in records], columns=list(columns)
    )
    for column in columns:
        if column in TIME_COLUMNS:
            frame[column] = pd.to_datetime(frame[column], utc=True)
    return frame


def check_frame(name: str, frame: pd.DataFrame) -> None:
    missing = [c for c in FRAMES[name] if c not in frame.columns]
    if missing:
        raise MetricInputError(f"{name} frame lacks column(s): {', '.join(missing)}")
