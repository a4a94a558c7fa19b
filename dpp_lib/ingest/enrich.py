"""Enrichment: tag normalised rows with delivery stream, tech stream, repository and ticket.

Pure: it reads an ``OrgLookups`` snapshot. What needs the stored events (a PR's delivery
stream comes from its ticket's events, spec §5.3.6; an unregistered repository of a known
org is registered, spec §4.2.4) is returned as a request for the worker to fulfil.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from dpp_lib.ingest.linking import extract_ticket_key
from dpp_lib.ingest.lookups import OrgLookups, RepositoryInfo, TechStreamInfo
from dpp_lib.ingest.types import EventRow
from dpp_lib.orgconfig import DEFAULT_TICKET_KEY_PATTERN

DEPLOY_EVENTS = (
    "deploy_started",
    "deploy_completed",
    "deploy_failed",
    "rollback_initiated",
    "rollback_completed",
)


@dataclass
class Enriched:
    table: str
    values: dict[str, Any]
    # The ticket whose delivery stream this row takes (PRs, deploys linked to a PR's ticket).
    ticket_for_stream: str | None = None
    # (tech_stream_id, org, repo name) of a repository to register on first sight.
    discover_repo: tuple[uuid.UUID, str, str] | None = None
    jira_sprint_id: str | None = None
    linked_ticket_ids: list[str] = field(default_factory=list)
    # Data-quality notes (spec §5.6): stored with NULLs, counted, never dropped.
    problems: list[str] = field(default_factory=list)
    # Set when the platform deliberately does not use this row (e.g. non-deployable repo).
    drop_reason: str | None = None


def enrich(row: EventRow, lookups: OrgLookups) -> Enriched:
    out = Enriched(row.table, dict(row.values))
    if row.table in ("work_item_events", "work_item_field_changes", "defect_events"):
        _enrich_jira(out, row.hints, lookups)
    elif row.table == "pr_events":
        _enrich_github(out, row.hints, lookups)
        _link_ticket(out, row.hints, lookups)
    elif row.table == "cicd_events":
        _enrich_cicd(out, row.hints, lookups)
    elif row.table == "incident_events":
        repo = lookups.repository_by_target(row.hints.get("service_name"))
        out.values["tech_stream_id"] = repo.tech_stream_id if repo else None
        if repo is None:
            out.problems.append("unknown_service")
    elif row.table == "pulse_responses":
        out.values["delivery_stream_id"] = lookups.delivery_stream(row.hints.get("delivery_stream"))
    return out


def derive_delivery_stream(hints: Any, lookups: OrgLookups) -> uuid.UUID | None:
    """Spec §5.2.4: the project's configured order of custom field, project, label, component."""
    project = lookups.jira_projects.get(hints.get("project_key") or "")
    order = project.derivation if project else ("custom_field", "label", "component")
    for method in order:
        found: uuid.UUID | None = None
        if method == "custom_field":
            option = hints.get("delivery_stream_option")
            found = lookups.delivery_by_label.get(option.strip().casefold()) if option else None
        elif method == "project" and project is not None:
            found = project.delivery_stream_id
        elif method == "label":
            found = _first(hints.get("labels") or [], lookups.delivery_by_label)
        elif method == "component":
            components = [c.strip().casefold() for c in hints.get("components") or []]
            mapped = project.components if project else {}
            found = next((mapped[c] for c in components if c in mapped), None)
            found = found or _first(components, lookups.delivery_by_label)
        if found is not None:
            return found
    return None


def _first(labels: list[str], table: Any) -> uuid.UUID | None:
    for label in labels:
        stream: uuid.UUID | None = table.get(label.strip().casefold())
        if stream is not None:
            return stream
    return None


def _enrich_jira(out: Enriched, hints: Any, lookups: OrgLookups) -> None:
    stream = derive_delivery_stream(hints, lookups)
    out.values["delivery_stream_id"] = stream
    if stream is None:
        out.problems.append("no_delivery_stream")
    techs = [
        lookups.tech_by_label.get(o.strip().casefold())
        for o in hints.get("tech_stream_options") or []
    ]
    tech_ids = list(dict.fromkeys(t for t in techs if t is not None))
    out.values["tech_stream_id"] = tech_ids[0] if tech_ids else None
    if out.table == "work_item_events":
        out.values["tech_stream_ids"] = tech_ids or None
        blocking = hints.get("blocking_tech_stream_option")
        if blocking and out.values.get("event_type") in ("blocked", "flagged"):
            out.values["blocking_tech_stream_id"] = lookups.tech_by_label.get(
                blocking.strip().casefold()
            )
        if out.values.get("to_status") and out.values.get("to_stage") is None:
            out.problems.append("unmapped_status")
        out.jira_sprint_id = hints.get("jira_sprint_id")
    if out.table == "defect_events":
        out.linked_ticket_ids = list(hints.get("linked_ticket_ids") or [])


def _tech_stream(hints: Any, lookups: OrgLookups) -> TechStreamInfo | None:
    return lookups.tech_stream_by_install(
        hints.get("installation_id")
    ) or lookups.tech_stream_by_org(hints.get("org_login"))


def _enrich_github(out: Enriched, hints: Any, lookups: OrgLookups) -> RepositoryInfo | None:
    full_name = hints.get("repo_full_name")
    repo = lookups.repository(full_name)
    tech = lookups.tech_stream(repo.tech_stream_id) if repo else _tech_stream(hints, lookups)
    out.values["tech_stream_id"] = tech.stream_id if tech else None
    out.values["repo_id"] = repo.repo_id if repo else None
    if tech is None:
        out.problems.append("unknown_tech_stream")
    elif repo is None and full_name and "/" in full_name:
        org, name = full_name.split("/", 1)
        out.discover_repo = (tech.stream_id, org, name)
    return repo


def _link_ticket(out: Enriched, hints: Any, lookups: OrgLookups) -> None:
    tech_id = out.values.get("tech_stream_id")
    tech = lookups.tech_stream(tech_id) if tech_id else None
    pattern = (tech.ticket_key_pattern if tech else "") or DEFAULT_TICKET_KEY_PATTERN
    key, method = extract_ticket_key(
        branch=hints.get("branch"),
        title=hints.get("title"),
        body=hints.get("body"),
        pattern=pattern,
    )
    out.values["linked_ticket_id"] = key
    out.values["link_method"] = method
    if key is None:
        out.problems.append("unlinked_pr")
    else:
        out.ticket_for_stream = key


def _enrich_cicd(out: Enriched, hints: Any, lookups: OrgLookups) -> None:
    repo = _enrich_github(out, hints, lookups)
    is_deploy = out.values.get("event_type") in DEPLOY_EVENTS
    if is_deploy and repo is not None and not repo.is_deployable:
        out.drop_reason = f"repository {repo.full_name} is not deployable"
