"""Deployment records (spec §4.4.4, DESIGN §5 "Deployment records"), one per pipeline run.

A record exists for each production deploy run of a deployable repository: status
``success``/``failed``, or ``rolled_back`` once a rollback of the run is reported. The PR a
deploy names (``pr_number``, or a commit that is a PR's merge or head commit) gives the
linked ticket, the delivery stream and the lead time. Shipping PRs by the time rule, and
deploy → incident correlation, are computed by the metric engine.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from dpp_lib.store.schema import cicd_events, deployment_records, pr_events, repositories
from dpp_lib.store.write import dialect_insert

DEPLOY_STATUS = {"deploy_completed": "success", "deploy_failed": "failed"}


def refresh_deployment_records(
    conn: sa.Connection, runs: Iterable[tuple[str, str]], production: frozenset[str]
) -> int:
    """Recompute the records of the given (pipeline_id, pipeline_run_id) runs."""
    count = 0
    for pipeline_id, run_id in sorted(set(runs)):
        c = cicd_events
        events = conn.execute(
            sa.select(c)
            .where(c.c.pipeline_id == pipeline_id, c.c.pipeline_run_id == run_id)
            .order_by(c.c.event_timestamp)
        ).all()
        record = _record(conn, events, production)
        if record is None:
            continue
        stmt = dialect_insert(conn, deployment_records).values(record_id=uuid.uuid4(), **record)
        update = {
            k: stmt.excluded[k] for k in record if k not in ("pipeline_id", "pipeline_run_id")
        }
        conn.execute(
            stmt.on_conflict_do_update(
                index_elements=["pipeline_id", "pipeline_run_id"], set_=update
            )
        )
        count += 1
    return count


def _record(
    conn: sa.Connection, events: Sequence[Any], production: frozenset[str]
) -> dict[str, Any] | None:
    deploys = [e for e in events if e.event_type in DEPLOY_STATUS and e.status != "cancelled"]
    rollbacks = [e for e in events if e.event_type == "rollback_completed"]
    base = deploys[0] if deploys else (rollbacks[0] if rollbacks else None)
    if base is None or base.environment.strip().lower() not in production:
        return None
    if base.tech_stream_id is None:
        return None
    if base.repo_id is not None:
        deployable = conn.execute(
            sa.select(repositories.c.is_deployable).where(repositories.c.repo_id == base.repo_id)
        ).scalar()
        if deployable is False:
            return None
    status = DEPLOY_STATUS.get(deploys[-1].event_type, "success") if deploys else "rolled_back"
    if rollbacks:
        status = "rolled_back"
    pr = _linked_pr(conn, base.repo_id, base.linked_pr_number, base.commit_sha)
    deployed_at: datetime = base.event_timestamp
    return {
        "tech_stream_id": base.tech_stream_id,
        "delivery_stream_id": pr["delivery_stream_id"] if pr else None,
        "repo_id": base.repo_id,
        "environment": base.environment,
        "deployed_at": deployed_at,
        "status": status,
        "commit_sha": base.commit_sha,
        "linked_pr_number": pr["pr_number"] if pr else base.linked_pr_number,
        "linked_ticket_id": pr["linked_ticket_id"] if pr else None,
        "lead_time_hrs": round((deployed_at - pr["opened_at"]).total_seconds() / 3600, 3)
        if pr and pr["opened_at"] <= deployed_at
        else None,
        "rollback_at": rollbacks[0].event_timestamp if rollbacks else None,
        "pipeline_id": base.pipeline_id,
        "pipeline_run_id": base.pipeline_run_id,
        "trigger_type": base.trigger_type,
    }


def _linked_pr(
    conn: sa.Connection, repo_id: uuid.UUID | None, pr_number: int | None, sha: str | None
) -> dict[str, Any] | None:
    """The PR a deploy names explicitly: by number, else by its merge or head commit."""
    if repo_id is None:
        return None
    p = pr_events
    cond: Any
    if pr_number is not None:
        cond = p.c.pr_number == pr_number
    elif sha:
        numbers = sa.select(p.c.pr_number).where(
            p.c.repo_id == repo_id, sa.or_(p.c.merge_commit_sha == sha, p.c.head_sha == sha)
        )
        cond = p.c.pr_number.in_(numbers.scalar_subquery())
    else:
        return None
    rows = conn.execute(
        sa.select(
            p.c.pr_number,
            p.c.event_timestamp,
            p.c.linked_ticket_id,
            p.c.delivery_stream_id,
            p.c.event_type,
        )
        .where(p.c.repo_id == repo_id, cond)
        .order_by(p.c.event_timestamp)
    ).all()
    if not rows:
        return None
    opened = [r for r in rows if r.event_type == "opened"]
    first = opened[0] if opened else rows[0]
    return {
        "pr_number": first.pr_number,
        "opened_at": first.event_timestamp,
        "linked_ticket_id": next((r.linked_ticket_id for r in rows if r.linked_ticket_id), None),
        "delivery_stream_id": next(
            (r.delivery_stream_id for r in rows if r.delivery_stream_id), None
        ),
    }
