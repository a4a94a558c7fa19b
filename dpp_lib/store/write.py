"""Idempotent writes: every event insert uses its table's natural key (spec §4.3, DESIGN §3).

``ON CONFLICT DO NOTHING`` everywhere, except pulse responses, where a later submission
by the same person for the same stream and period replaces the earlier one (spec §4.3.8).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from dpp_lib.ingest.lookups import RepositoryInfo
from dpp_lib.ingest.types import SprintInfo
from dpp_lib.store.schema import (
    metadata,
    pulse_responses,
    repositories,
    sprints,
    work_item_events,
)

PULSE_KEY = ("survey_period", "respondent_hash", "delivery_stream_id")


def dialect_insert(conn: sa.Connection, table: sa.Table) -> Any:
    module = postgresql if conn.dialect.name == "postgresql" else sqlite
    return module.insert(table)


def insert_events(
    conn: sa.Connection, table_name: str, rows: Sequence[dict[str, Any]]
) -> set[uuid.UUID]:
    """Insert rows (each with its ``event_id``); returns the ids actually inserted."""
    if not rows:
        return set()
    table = metadata.tables[table_name]
    columns = sorted({k for row in rows for k in row})
    unknown = [c for c in columns if c not in table.c]
    if unknown:
        raise KeyError(f"{table_name} has no column(s) {', '.join(unknown)}")
    params = [{c: row.get(c) for c in columns} for row in rows]
    stmt = dialect_insert(conn, table)
    if table is pulse_responses:
        return _upsert_pulse(conn, stmt, params)
    stmt = stmt.on_conflict_do_nothing()
    if conn.dialect.name != "postgresql":
        return {r[0] for r in conn.execute(stmt.returning(table.c.event_id), params)}
    # Postgres: one prepared statement executed per row in a pipeline, then one look-up of
    # which new ids exist. A multi-row INSERT … RETURNING (SQLAlchemy's default here) is a
    # statement with thousands of placeholders that both the driver and the server parse
    # anew for every batch: it cost the worker a fifth of its time.
    conn.execute(stmt, params)
    ids = [p["event_id"] for p in params]
    return set(conn.execute(sa.select(table.c.event_id).where(table.c.event_id.in_(ids))).scalars())


def _upsert_pulse(conn: sa.Connection, stmt: Any, params: list[dict[str, Any]]) -> set[uuid.UUID]:
    # Keep the latest submission per key within the batch; the database keeps the latest
    # across batches, whatever order the deliveries arrive in.
    latest: dict[tuple[Any, ...], dict[str, Any]] = {}
    for p in params:
        key = tuple(p[k] for k in PULSE_KEY)
        if key not in latest or p["event_timestamp"] > latest[key]["event_timestamp"]:
            latest[key] = p
    t = pulse_responses
    excluded = stmt.excluded
    update = {
        c: excluded[c]
        for c in (
            "pace_score",
            "tooling_score",
            "clarity_score",
            "free_text",
            "event_timestamp",
            "received_at",
            "raw_event_id",
            "event_id",
        )
    }
    stmt = stmt.on_conflict_do_update(
        index_elements=list(PULSE_KEY),
        set_=update,
        where=excluded.event_timestamp > t.c.event_timestamp,
    ).returning(t.c.event_id)
    return {r[0] for r in conn.execute(stmt, list(latest.values()))}


def upsert_sprints(
    conn: sa.Connection, seen: Iterable[tuple[SprintInfo, uuid.UUID | None]]
) -> dict[str, uuid.UUID]:
    """Register sprints by Jira id; name, state and dates follow the latest payload."""
    by_id: dict[str, tuple[SprintInfo, uuid.UUID | None]] = {}
    for info, stream in seen:
        prev = by_id.get(info.jira_sprint_id)
        by_id[info.jira_sprint_id] = (info, stream or (prev[1] if prev else None))
    if not by_id:
        return {}
    existing = {
        r.jira_sprint_id: r._mapping
        for r in conn.execute(sa.select(sprints).where(sprints.c.jira_sprint_id.in_(list(by_id))))
    }
    ids: dict[str, uuid.UUID] = {}
    for jira_id, (info, stream) in by_id.items():
        row = existing.get(jira_id)
        values: dict[str, Any] = {"name": info.name, "goal": info.goal}
        if info.state:
            values["state"] = info.state
        if info.start_date:
            values["start_date"] = info.start_date
        if info.end_date:
            values["end_date"] = info.end_date
        if row is None:
            if info.start_date is None or info.end_date is None:
                # A future sprint without dates: register it with placeholder-free dates
                # only once Jira sends them; until then the ticket keeps no sprint id.
                continue
            sprint_id = uuid.uuid4()
            stmt = (
                dialect_insert(conn, sprints)
                .values(
                    sprint_id=sprint_id, jira_sprint_id=jira_id, delivery_stream_id=stream, **values
                )
                .on_conflict_do_nothing()
            )
            conn.execute(stmt)
            sprint_id = conn.execute(
                sa.select(sprints.c.sprint_id).where(sprints.c.jira_sprint_id == jira_id)
            ).scalar_one()
        else:
            sprint_id = row["sprint_id"]
            if row["delivery_stream_id"] is None and stream is not None:
                values["delivery_stream_id"] = stream
            changed = {k: v for k, v in values.items() if row[k] != v}
            if changed:
                conn.execute(
                    sprints.update().where(sprints.c.sprint_id == sprint_id).values(changed)
                )
        ids[jira_id] = sprint_id
    return ids


def register_repositories(
    conn: sa.Connection, discovered: Iterable[tuple[uuid.UUID, str, str]]
) -> dict[str, RepositoryInfo]:
    """Register repositories first seen in a webhook of a known org (spec §4.2.4)."""
    out: dict[str, RepositoryInfo] = {}
    for tech_stream_id, org, name in set(discovered):
        stmt = (
            dialect_insert(conn, repositories)
            .values(
                repo_id=uuid.uuid4(),
                tech_stream_id=tech_stream_id,
                github_org=org,
                github_repo_name=name,
                full_name=f"{org}/{name}",
                origin="discovered",
            )
            .on_conflict_do_nothing()
        )
        conn.execute(stmt)
        row = conn.execute(
            sa.select(repositories).where(
                sa.func.lower(repositories.c.github_org) == org.lower(),
                sa.func.lower(repositories.c.github_repo_name) == name.lower(),
            )
        ).one()
        out[row.full_name.casefold()] = RepositoryInfo(
            row.repo_id, row.tech_stream_id, row.full_name, row.is_deployable, row.deploy_target
        )
    return out


def ticket_delivery_streams(conn: sa.Connection, tickets: Iterable[str]) -> dict[str, uuid.UUID]:
    """The delivery stream of each ticket: that of its latest work item event that has one."""
    wanted = sorted(set(tickets))
    if not wanted:
        return {}
    t = work_item_events
    rows = conn.execute(
        sa.select(t.c.ticket_id, t.c.delivery_stream_id, t.c.event_timestamp)
        .where(t.c.ticket_id.in_(wanted), t.c.delivery_stream_id.is_not(None))
        .order_by(t.c.ticket_id, t.c.event_timestamp)
    )
    return {r.ticket_id: r.delivery_stream_id for r in rows}


def ticket_stages(conn: sa.Connection, tickets: Iterable[str]) -> dict[str, str]:
    """The current pipeline stage of each ticket (its latest event with a stage)."""
    wanted = sorted(set(tickets))
    if not wanted:
        return {}
    t = work_item_events
    rows = conn.execute(
        sa.select(t.c.ticket_id, t.c.to_stage)
        .where(t.c.ticket_id.in_(wanted), t.c.to_stage.is_not(None))
        .order_by(t.c.ticket_id, t.c.event_timestamp)
    )
    return {r.ticket_id: r.to_stage for r in rows}


def fill_missing_streams(conn: sa.Connection, streams: dict[str, uuid.UUID]) -> int:
    """Give earlier events of a ticket the delivery stream derived later (spec §5.6 triage).

    Returns how many tickets had events filled in."""
    if not streams:
        return 0
    changed = 0
    for table_name in ("work_item_events", "work_item_field_changes", "defect_events"):
        table = metadata.tables[table_name]
        missing = conn.execute(
            sa.select(table.c.ticket_id)
            .where(table.c.ticket_id.in_(sorted(streams)), table.c.delivery_stream_id.is_(None))
            .distinct()
        ).scalars()
        params = [{"t": ticket, "s": streams[ticket]} for ticket in missing]
        if params:
            conn.execute(
                table.update()
                .where(table.c.ticket_id == sa.bindparam("t"), table.c.delivery_stream_id.is_(None))
                .values(delivery_stream_id=sa.bindparam("s")),
                params,
            )
            changed += len(params)
    return changed
