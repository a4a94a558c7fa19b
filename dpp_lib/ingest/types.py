"""The shapes normalisers produce and the context they read (STYLE habit 4).

A normaliser is a pure function ``(payload, ctx) -> Normalised``. It never touches the
database: everything it needs from the organisation's configuration is in ``ctx``, and
everything enrichment will need later (stream derivation inputs, ticket-key candidates)
goes into each row's ``hints``. Person identifiers are hashed through ``ctx.anonymise``
before they reach ``values``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Literal

EventTable = Literal[
    "work_item_events",
    "work_item_field_changes",
    "pr_events",
    "cicd_events",
    "incident_events",
    "defect_events",
    "pulse_responses",
]


@dataclass(frozen=True)
class EventRow:
    """One row for one event table.

    ``values`` holds column → value for the table (datetimes timezone-aware UTC, person
    identifiers already hashed). The common columns ``delivery_stream_id``,
    ``tech_stream_id`` and ``repo_id`` are filled in by enrichment from ``hints`` unless a
    normaliser sets them. ``hints`` keys by source:

    Jira rows: ``project_key`` (str), ``delivery_stream_option`` (str | None: the value of
    the delivery-stream custom field), ``labels`` (list[str]), ``components`` (list[str]),
    ``tech_stream_options`` (list[str]), ``blocking_tech_stream_option`` (str | None),
    ``linked_ticket_ids`` (list[str]: parent and linked issues, for defects).

    GitHub rows: ``installation_id`` (str | None), ``org_login`` (str | None),
    ``repo_full_name`` (str), and on PR rows ``branch``, ``title``, ``body`` (ticket-key
    candidates, in priority order), ``head_sha``, ``merge_commit_sha``.
    """

    table: EventTable
    values: Mapping[str, Any]
    hints: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SprintInfo:
    """A sprint seen in a Jira payload, for the sprint registry (spec §4.2.5)."""

    jira_sprint_id: str
    name: str
    state: Literal["future", "active", "closed"] | None
    start_date: date | None
    end_date: date | None
    goal: str | None = None
    board_id: str | None = None


@dataclass(frozen=True)
class Normalised:
    """What a delivery turned into: rows to store, or the reason nothing is used."""

    rows: tuple[EventRow, ...] = ()
    sprints: tuple[SprintInfo, ...] = ()
    ignored_reason: str | None = None

    @staticmethod
    def ignored(reason: str) -> Normalised:
        return Normalised(ignored_reason=reason)


@dataclass(frozen=True)
class StageMapping:
    """A Jira status's pipeline stage and whether it is active work (spec §4.2.3)."""

    stage: str
    is_active_work: bool


@dataclass(frozen=True)
class JiraFieldIds:
    """Custom field ids from the org config (``jira_fields``); None when not configured."""

    delivery_stream: str | None = None
    tech_streams: str | None = None
    found_in_stage: str | None = None
    introduced_in_stage: str | None = None
    blocking_tech_stream: str | None = None
    flagged: str | None = None
    sprint: str | None = None
    story_points: str | None = None
    root_cause: str | None = None


Anonymiser = Callable[[str, str | None], str | None]
"""``anonymise(namespace, identifier)``: HMAC-SHA256 hex of ``namespace:identifier``."""


@dataclass(frozen=True)
class NormaliseContext:
    """Read-only configuration a normaliser may consult."""

    anonymise: Anonymiser
    # (jira project key, casefolded status name) → mapping
    status_mappings: Mapping[tuple[str, str], StageMapping] = field(default_factory=dict)
    jira_fields: JiraFieldIds = JiraFieldIds()
    # casefolded option label → stage name (pipeline stages and 'production')
    stage_aliases: Mapping[str, str] = field(default_factory=dict)
    production_environments: frozenset[str] = frozenset({"production"})

    def status_stage(self, project_key: str, status_name: str | None) -> StageMapping | None:
        if status_name is None:
            return None
        return self.status_mappings.get((project_key, status_name.strip().casefold()))

    def stage_from_option(self, label: str | None) -> str | None:
        """A select option naming a stage ('QA', 'In Production', 'uat') → stage name."""
        if label is None:
            return None
        return self.stage_aliases.get(label.strip().casefold())


Normaliser = Callable[[Mapping[str, Any], NormaliseContext], Normalised]


def utc(dt: datetime) -> datetime:
    """Reject naive datetimes; convert aware ones to UTC."""
    from datetime import UTC

    if dt.tzinfo is None:
        raise ValueError(f"naive datetime {dt.isoformat()} has no time zone")
    return dt.astimezone(UTC)
