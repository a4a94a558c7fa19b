"""Turn a batch of raw inbox rows into stored, enriched, deduplicated events.

``process_raw_batch`` runs inside the caller's transaction: the events, the projections
they touch and the inbox rows' new state commit together, so a crash at any point leaves
every delivery either fully processed or still pending (exactly once, DESIGN §3).
"""

from __future__ import annotations

import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import orjson
import sqlalchemy as sa

from dpp_lib.ingest.enrich import DEPLOY_EVENTS, Enriched, enrich
from dpp_lib.ingest.lookups import OrgLookups
from dpp_lib.ingest.registry import normalise
from dpp_lib.ingest.types import NormaliseContext, Normalised, SprintInfo
from dpp_lib.jobs.deploy_links import refresh_deploy_links
from dpp_lib.projections.deferred import apply_ticket_streams, defer, pending_subjects
from dpp_lib.projections.deployments import refresh_deployment_records, runs_naming_prs
from dpp_lib.projections.incidents import update_time_to_restore
from dpp_lib.projections.pull_requests import refresh_pr_cycles
from dpp_lib.projections.work_item_store import refresh_work_item_cycles
from dpp_lib.store import write
from dpp_lib.store.pr_lookup import PrIndex


@dataclass(frozen=True)
class RawDelivery:
    id: int
    source: str
    delivery_id: str
    event_kind: str | None
    body: bytes
    received_at: datetime


@dataclass
class Outcome:
    """What became of one delivery: stored rows, an ignored reason, or an error."""

    inserted: Counter[str] = field(default_factory=Counter)
    duplicates: int = 0
    problems: list[str] = field(default_factory=list)
    ignored_reason: str | None = None
    error: str | None = None
    discovered_repositories: int = 0

    def as_json(self) -> dict[str, Any]:
        return {
            "inserted": dict(self.inserted),
            "duplicates": self.duplicates,
            "problems": sorted(set(self.problems)),
        }


def make_context(lookups: OrgLookups, anonymise: Any) -> NormaliseContext:
    return NormaliseContext(
        anonymise=anonymise,
        status_mappings=lookups.status_mappings,
        jira_fields=lookups.jira_fields,
        stage_aliases=lookups.stage_aliases,
        production_environments=lookups.production_environments,
    )


def normalise_raw(raw: RawDelivery, ctx: NormaliseContext) -> Normalised:
    try:
        payload = orjson.loads(raw.body)
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"stored body is not JSON: {exc}") from exc
    if not isinstance(payload, dict):
        return Normalised.ignored("body is not a JSON object")
    kind = raw.event_kind
    if raw.source == "jira":
        kind = payload.get("webhookEvent") if isinstance(payload.get("webhookEvent"), str) else None
        if kind is None:
            return Normalised.ignored("Jira body has no webhookEvent (not a webhook delivery)")
    elif raw.source in ("deployment", "incident", "pulse"):
        kind = raw.source
    return normalise(raw.source, kind, payload, ctx)


def process_raw_batch(
    conn: sa.Connection,
    raws: list[RawDelivery],
    *,
    lookups: OrgLookups,
    ctx: NormaliseContext,
    now: datetime,
    defer_delay: timedelta,
) -> dict[int, Outcome]:
    outcomes: dict[int, Outcome] = {r.id: Outcome() for r in raws}
    staged: list[tuple[RawDelivery, Enriched]] = []
    sprints_seen: list[tuple[SprintInfo, uuid.UUID | None]] = []
    for raw in raws:
        out = outcomes[raw.id]
        try:
            result = normalise_raw(raw, ctx)
        except Exception as exc:  # a bad delivery must not stop the batch; it is retried
            out.error = f"{type(exc).__name__}: {exc}"
            continue
        if result.ignored_reason is not None:
            out.ignored_reason = result.ignored_reason
            continue
        enriched = [enrich(row, lookups) for row in result.rows]
        kept = [e for e in enriched if e.drop_reason is None]
        if not kept:
            reasons = {e.drop_reason for e in enriched if e.drop_reason}
            out.ignored_reason = "; ".join(sorted(r for r in reasons if r)) or "no rows"
            continue
        stream = next(
            (
                e.values.get("delivery_stream_id")
                for e in kept
                if e.values.get("delivery_stream_id")
            ),
            None,
        )
        sprints_seen.extend((s, stream) for s in result.sprints)
        for e in kept:
            out.problems.extend(e.problems)
            staged.append((raw, e))

    for raw_id in _register_repositories(conn, staged):
        outcomes[raw_id].discovered_repositories += 1
    sprint_ids = write.upsert_sprints(conn, sprints_seen)
    for _, e in staged:
        if e.jira_sprint_id is not None:
            e.values["sprint_id"] = sprint_ids.get(e.jira_sprint_id)
    _fill_defect_stages(conn, staged)
    _link_cicd_to_prs(conn, staged)
    ticket_streams = _batch_ticket_streams(staged)
    _stream_from_tickets(conn, staged, ticket_streams, now=now, delay=defer_delay)

    by_table: dict[str, list[dict[str, Any]]] = defaultdict(list)
    owner: dict[uuid.UUID, tuple[int, str]] = {}
    for raw, e in staged:
        event_id = uuid.uuid4()
        e.values.update(event_id=event_id, received_at=raw.received_at, raw_event_id=raw.id)
        by_table[e.table].append(e.values)
        owner[event_id] = (raw.id, e.table)
    inserted: set[uuid.UUID] = set()
    for table, rows in by_table.items():
        inserted |= write.insert_events(conn, table, rows)
    for event_id, (raw_id, table) in owner.items():
        if event_id in inserted:
            outcomes[raw_id].inserted[table] += 1
        else:
            outcomes[raw_id].duplicates += 1

    _update_projections(conn, staged, ticket_streams, lookups, now=now)
    return outcomes


def _register_repositories(
    conn: sa.Connection, staged: list[tuple[RawDelivery, Enriched]]
) -> list[int]:
    """Register unknown repositories of known orgs; returns the raw ids that found one."""
    wanted = [e.discover_repo for _, e in staged if e.discover_repo is not None]
    if not wanted:
        return []
    repos = write.register_repositories(conn, wanted)
    found = []
    for raw, e in staged:
        if e.discover_repo is not None:
            _, org, name = e.discover_repo
            info = repos.get(f"{org}/{name}".casefold())
            e.values["repo_id"] = info.repo_id if info else None
            found.append(raw.id)
    return found


def _fill_defect_stages(conn: sa.Connection, staged: list[tuple[RawDelivery, Enriched]]) -> None:
    """A bug without a found-in stage takes the current stage of the ticket it relates to
    (spec §5.2.7); a done parent means the bug was found after release (production)."""
    unknown = [
        e
        for _, e in staged
        if e.table == "defect_events" and e.values.get("found_in_stage") == "unknown"
    ]
    if not unknown:
        return
    stages = write.ticket_stages(conn, [t for e in unknown for t in e.linked_ticket_ids])
    for e in unknown:
        stage = next((stages[t] for t in e.linked_ticket_ids if t in stages), None)
        if stage == "done":
            stage = "production"
        if stage is not None and stage != "cancelled":
            e.values["found_in_stage"] = stage
        else:
            e.problems.append("defect_found_stage_unknown")


def _link_cicd_to_prs(conn: sa.Connection, staged: list[tuple[RawDelivery, Enriched]]) -> None:
    """CI/CD events take the ticket of the PR they name (spec §4.3.4: via PR → branch → ticket)."""
    wanted = [
        e
        for _, e in staged
        if e.table == "cicd_events"
        and e.values.get("repo_id") is not None
        and (e.values.get("linked_pr_number") is not None or e.values.get("commit_sha"))
    ]
    if not wanted:
        return
    refs = [
        (e.values["repo_id"], e.values.get("linked_pr_number"), e.values.get("commit_sha"))
        for e in wanted
    ]
    prs = PrIndex(conn, refs)
    for e, ref in zip(wanted, refs, strict=True):
        row = next((r for r in prs.candidates(*ref) if r.linked_ticket_id), None)
        if row is not None:
            e.values["linked_ticket_id"] = row.linked_ticket_id
            if e.values.get("linked_pr_number") is None:
                e.values["linked_pr_number"] = row.pr_number
            e.ticket_for_stream = row.linked_ticket_id


def _batch_ticket_streams(staged: list[tuple[RawDelivery, Enriched]]) -> dict[str, uuid.UUID]:
    """Delivery streams derived for tickets by the Jira rows of this batch (latest wins)."""
    found: dict[str, tuple[datetime, uuid.UUID]] = {}
    for _, e in staged:
        if e.table != "work_item_events" or e.values.get("delivery_stream_id") is None:
            continue
        ticket, ts = e.values["ticket_id"], e.values["event_timestamp"]
        if ticket not in found or ts >= found[ticket][0]:
            found[ticket] = (ts, e.values["delivery_stream_id"])
    return {t: s for t, (_, s) in found.items()}


def _stream_from_tickets(
    conn: sa.Connection,
    staged: list[tuple[RawDelivery, Enriched]],
    batch_streams: dict[str, uuid.UUID],
    *,
    now: datetime,
    delay: timedelta,
) -> None:
    """Spec §5.3.6: a PR's delivery stream is its ticket's; unknown tickets are deferred."""
    wanted = {e.ticket_for_stream for _, e in staged if e.ticket_for_stream}
    if not wanted:
        return
    streams = write.ticket_delivery_streams(conn, wanted - set(batch_streams)) | batch_streams
    missing = set()
    for _, e in staged:
        ticket = e.ticket_for_stream
        if ticket is None or e.values.get("delivery_stream_id") is not None:
            continue
        if ticket in streams:
            e.values["delivery_stream_id"] = streams[ticket]
        else:
            missing.add(ticket)
            e.problems.append("ticket_not_seen_yet")
    defer(conn, missing, now=now, delay=delay)


def _update_projections(
    conn: sa.Connection,
    staged: list[tuple[RawDelivery, Enriched]],
    ticket_streams: dict[str, uuid.UUID],
    lookups: OrgLookups,
    *,
    now: datetime,
) -> None:
    incidents = {e.values["incident_id"] for _, e in staged if e.table == "incident_events"}
    update_time_to_restore(conn, incidents)
    tickets = {e.values["ticket_id"] for _, e in staged if e.table == "work_item_events"}
    refresh_work_item_cycles(conn, tickets, lookups)
    prs = {
        (e.values.get("repo_id"), e.values["pr_number"])
        for _, e in staged
        if e.table == "pr_events" and e.values.get("repo_id") is not None
    }
    refresh_pr_cycles(conn, prs)
    runs = {
        (e.values["pipeline_id"], e.values["pipeline_run_id"])
        for _, e in staged
        if e.table == "cicd_events" and e.values.get("event_type") in DEPLOY_EVENTS
    }
    # A PR whose events arrive after the deploy that ships it changes that deploy's record.
    pr_rows = [e.values for _, e in staged if e.table == "pr_events" and e.values.get("repo_id")]
    runs |= runs_naming_prs(
        conn,
        [(v["repo_id"], v["pr_number"]) for v in pr_rows],
        [
            (v["repo_id"], sha)
            for v in pr_rows
            for sha in (v.get("head_sha"), v.get("merge_commit_sha"))
            if sha
        ],
    )
    refresh_deployment_records(conn, runs, lookups.production_environments)
    touched: set[uuid.UUID] = {
        e.values["tech_stream_id"]
        for _, e in staged
        if e.values.get("tech_stream_id") is not None
        and (
            e.table == "incident_events"
            or (e.table == "cicd_events" and e.values.get("event_type") in DEPLOY_EVENTS)
        )
    }
    if touched:
        refresh_deploy_links(
            conn,
            tech_stream_ids=touched,
            window_minutes=lookups.incident_correlation_window_minutes,
        )
    if ticket_streams:
        write.fill_missing_streams(conn, ticket_streams)
        waiting = pending_subjects(conn, ticket_streams)
        if waiting:
            apply_ticket_streams(conn, {t: ticket_streams[t] for t in waiting}, now=now)
