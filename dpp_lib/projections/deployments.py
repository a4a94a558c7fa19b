"""Deployment records (spec §4.4.4, DESIGN §5 "Deployment records"), one per pipeline run.

A record exists for each production deploy run of a deployable repository: status
``success``/``failed``, or ``rolled_back`` once a rollback of the run is reported. The PR a
deploy names (``pr_number``, or a commit that is a PR's merge or head commit) gives the
linked ticket, the delivery stream and the lead time. Shipping PRs by the time rule, and
deploy → incident correlation, are computed by the metric engine.

The refresh is set-based: one query for the runs' events, one for the repositories, a few
for the PRs they name and one upsert, whatever the number of runs in the batch.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from dpp_lib.store.pr_lookup import CHUNK, PrEventRow, PrIndex
from dpp_lib.store.schema import cicd_events, deployment_records, repositories
from dpp_lib.store.write import dialect_insert

DEPLOY_STATUS = {"deploy_completed": "success", "deploy_failed": "failed"}
DEPLOY_EVENTS = ("deploy_completed", "deploy_failed", "rollback_completed")
RunKey = tuple[str, str]


def refresh_deployment_records(
    conn: sa.Connection, runs: Iterable[RunKey], production: frozenset[str]
) -> int:
    """Recompute the records of the given (pipeline_id, pipeline_run_id) runs."""
    wanted = sorted(set(runs))
    if not wanted:
        return 0
    events = _run_events(conn, wanted)
    bases = {run: _base(evs, production) for run, evs in events.items()}
    repo_ids = {b.repo_id for b in bases.values() if b is not None and b.repo_id is not None}
    deployable = (
        dict(
            conn.execute(
                sa.select(repositories.c.repo_id, repositories.c.is_deployable).where(
                    repositories.c.repo_id.in_(sorted(repo_ids))
                )
            ).all()
        )
        if repo_ids
        else {}
    )
    prs = PrIndex(
        conn,
        [
            (b.repo_id, b.linked_pr_number, b.commit_sha)
            for b in bases.values()
            if b is not None and b.repo_id is not None
        ],
    )
    records = []
    for run in wanted:
        base = bases.get(run)
        if base is None or deployable.get(base.repo_id) is False:
            continue
        pr = (
            _first_pr(prs.candidates(base.repo_id, base.linked_pr_number, base.commit_sha))
            if base.repo_id is not None
            else None
        )
        records.append(_record(events[run], base, pr))
    if not records:
        return 0
    stmt = dialect_insert(conn, deployment_records)
    update = {
        k: stmt.excluded[k]
        for k in records[0]
        if k not in ("record_id", "pipeline_id", "pipeline_run_id")
    }
    conn.execute(
        stmt.on_conflict_do_update(index_elements=["pipeline_id", "pipeline_run_id"], set_=update),
        records,
    )
    return len(records)


def _run_events(conn: sa.Connection, runs: list[RunKey]) -> dict[RunKey, list[Any]]:
    c = cicd_events
    out: dict[RunKey, list[Any]] = defaultdict(list)
    for i in range(0, len(runs), CHUNK):
        rows = conn.execute(
            sa.select(c)
            .where(sa.tuple_(c.c.pipeline_id, c.c.pipeline_run_id).in_(runs[i : i + CHUNK]))
            .order_by(c.c.event_timestamp, c.c.event_id)
        )
        for row in rows:
            out[(row.pipeline_id, row.pipeline_run_id)].append(row)
    return out


def _deploys(events: Sequence[Any]) -> list[Any]:
    return [e for e in events if e.event_type in DEPLOY_STATUS and e.status != "cancelled"]


def _rollbacks(events: Sequence[Any]) -> list[Any]:
    return [e for e in events if e.event_type == "rollback_completed"]


def _base(events: Sequence[Any], production: frozenset[str]) -> Any | None:
    """The event a run's record is built on, or None when the run gets no record."""
    deploys, rollbacks = _deploys(events), _rollbacks(events)
    base = deploys[0] if deploys else (rollbacks[0] if rollbacks else None)
    if base is None or base.environment.strip().lower() not in production:
        return None
    if base.tech_stream_id is None:
        return None
    return base


def _first_pr(rows: list[PrEventRow]) -> dict[str, Any] | None:
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


def _record(events: Sequence[Any], base: Any, pr: dict[str, Any] | None) -> dict[str, Any]:
    deploys, rollbacks = _deploys(events), _rollbacks(events)
    status = DEPLOY_STATUS.get(deploys[-1].event_type, "success") if deploys else "rolled_back"
    if rollbacks:
        status = "rolled_back"
    deployed_at: datetime = base.event_timestamp
    return {
        "record_id": uuid.uuid4(),
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


def runs_naming_prs(
    conn: sa.Connection,
    numbers: Iterable[tuple[uuid.UUID, int]],
    commits: Iterable[tuple[uuid.UUID, str]],
) -> set[RunKey]:
    """Deploy runs that name one of these PRs, by number or by commit: their records must
    be recomputed when the PR's events arrive after the deploy (arrival order)."""
    c = cicd_events
    found: set[RunKey] = set()
    for pairs, column in (
        (sorted(set(numbers)), c.c.linked_pr_number),
        (sorted(set(commits)), c.c.commit_sha),
    ):
        for i in range(0, len(pairs), CHUNK):
            rows = conn.execute(
                sa.select(c.c.pipeline_id, c.c.pipeline_run_id)
                .where(
                    c.c.event_type.in_(DEPLOY_EVENTS),
                    sa.tuple_(c.c.repo_id, column).in_(pairs[i : i + CHUNK]),
                )
                .distinct()
            )
            found.update((r.pipeline_id, r.pipeline_run_id) for r in rows)
    return found
