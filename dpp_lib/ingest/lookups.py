"""A read-only snapshot of the organisation's configuration, for normalising and enriching.

Built from the configuration tables by ``dpp_lib.store.config_tables.load_lookups``; pure
data, so enrichment can be tested without a database.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date

from dpp_lib.calendar import WorkCalendar
from dpp_lib.ingest.types import JiraFieldIds, StageMapping


@dataclass(frozen=True)
class TechStreamInfo:
    stream_id: uuid.UUID
    name: str
    display_name: str
    github_org: str
    github_install_id: str
    ticket_key_pattern: str


@dataclass(frozen=True)
class RepositoryInfo:
    repo_id: uuid.UUID
    tech_stream_id: uuid.UUID
    full_name: str
    is_deployable: bool
    deploy_target: str | None


@dataclass(frozen=True)
class JiraProjectInfo:
    key: str
    delivery_stream_id: uuid.UUID | None
    derivation: tuple[str, ...]
    components: Mapping[str, uuid.UUID]  # casefolded component name → delivery stream


@dataclass(frozen=True)
class OrgLookups:
    version: str
    delivery_by_label: Mapping[str, uuid.UUID]  # casefolded name/display/label/alias → id
    delivery_by_key: Mapping[str, uuid.UUID]  # casefolded name or str(uuid) → id
    tech_streams: tuple[TechStreamInfo, ...]
    tech_by_label: Mapping[str, uuid.UUID]  # casefolded name/display/org/alias → id
    repositories: Mapping[str, RepositoryInfo]  # casefolded full_name → repo
    repos_by_target: Mapping[str, RepositoryInfo]  # casefolded deploy_target → repo
    jira_projects: Mapping[str, JiraProjectInfo]
    status_mappings: Mapping[tuple[str, str], StageMapping]
    jira_fields: JiraFieldIds = field(default_factory=JiraFieldIds)
    stage_aliases: Mapping[str, str] = field(default_factory=dict)
    production_environments: frozenset[str] = frozenset({"production"})
    time_zone: str = "UTC"
    holidays: frozenset[date] = frozenset()
    incident_correlation_window_minutes: int = 60

    def calendar(self) -> WorkCalendar:
        return WorkCalendar.of(self.time_zone, self.holidays)

    def stage_of(self, ticket_id: str, status: str) -> tuple[str, bool] | None:
        """(stage, active) of a ticket's status under the current mappings, or None."""
        project = ticket_id.rsplit("-", 1)[0]
        found = self.status_mappings.get((project, status.strip().casefold()))
        return (found.stage, found.is_active_work) if found is not None else None

    def tech_stream_by_install(self, installation_id: str | None) -> TechStreamInfo | None:
        if installation_id is None:
            return None
        return next((t for t in self.tech_streams if t.github_install_id == installation_id), None)

    def tech_stream_by_org(self, org: str | None) -> TechStreamInfo | None:
        if org is None:
            return None
        org = org.casefold()
        return next((t for t in self.tech_streams if t.github_org.casefold() == org), None)

    def tech_stream(self, stream_id: uuid.UUID) -> TechStreamInfo | None:
        return next((t for t in self.tech_streams if t.stream_id == stream_id), None)

    def repository(self, full_name: str | None) -> RepositoryInfo | None:
        return None if full_name is None else self.repositories.get(full_name.casefold())

    def repository_by_target(self, target: str | None) -> RepositoryInfo | None:
        return None if target is None else self.repos_by_target.get(target.strip().casefold())

    def delivery_stream(self, key: str | None) -> uuid.UUID | None:
        """A delivery stream addressed by name or UUID (API, CLI)."""
        return None if key is None else self.delivery_by_key.get(key.strip().casefold())

    def tech_stream_id(self, key: str | None) -> uuid.UUID | None:
        """A tech stream addressed by name or UUID (API, CLI)."""
        if key is None:
            return None
        key = key.strip().casefold()
        for t in self.tech_streams:
            if key in (t.name.casefold(), str(t.stream_id)):
                return t.stream_id
        return None
