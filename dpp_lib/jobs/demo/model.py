"""The simulated organisation: plain dataclasses the simulation fills and the payload
builders read. Times are aware UTC datetimes; durations are working days (``clock``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from dpp_lib.orgconfig import Repository

Role = Literal["engineer", "ba", "qa", "po"]
IssueType = Literal["Story", "Task", "Bug", "Spike"]
Channel = Literal["github", "api"]
DeployStatus = Literal["success", "failed", "rolled_back"]
Trigger = Literal["push", "manual", "schedule", "config"]
Severity = Literal["P1", "P2", "P3", "P4"]
IncidentKind = Literal["alarm", "incident"]


@dataclass(frozen=True)
class Person:
    """One invented person with their Jira and GitHub identities."""

    key: str  # stable slug, e.g. "ada-okafor"
    name: str
    email: str
    account_id: str  # Jira Cloud accountId
    login: str  # GitHub login
    github_id: int
    role: Role
    bot: bool = False


@dataclass(frozen=True)
class Sprint:
    """A two-week sprint of one delivery stream's board."""

    id: int
    number: int
    name: str
    stream: str
    board_id: int
    start: datetime
    end: datetime
    goal: str

    def state(self, until: datetime) -> Literal["closed", "active", "future"]:
        """The state as of ``until`` (the same in every payload, so the registry agrees)."""
        if self.end <= until:
            return "closed"
        return "active" if self.start <= until else "future"


@dataclass(frozen=True)
class Status:
    """A Jira status of one project and its mapping (spec §4.2.3)."""

    name: str
    id: str
    stage: str
    active: bool


@dataclass
class Change:
    """One Jira edit: the fields it set (the new values) at ``at`` by ``actor``.

    ``updates`` keys: status (Status), resolution (str | None), assignee (Person | None),
    sprints (tuple[Sprint, ...]), flagged (bool), blocking (str | None: tech stream display
    name), introduced (str | None: option label). ``kind`` picks the webhook event type.
    """

    at: datetime
    kind: Literal["created", "transition", "field"]
    actor: Person
    updates: dict[str, Any]


@dataclass
class Ticket:
    """A Jira issue and its history. ``key`` and ``issue_id`` are set once all exist."""

    uid: str  # stable before the key is known: "<stream>:<n>"
    project: str
    stream: str  # delivery stream name (the truth, whatever the fields say)
    issue_type: IssueType
    summary: str
    priority: str
    created: datetime
    creator: Person
    initial_status: Status
    story_points: float | None = None
    labels: list[str] = field(default_factory=list)
    components: list[str] = field(default_factory=list)
    stream_option: str | None = None  # delivery stream custom field (display name)
    tech_options: list[str] = field(default_factory=list)  # tech streams field (display names)
    tech_streams: list[str] = field(default_factory=list)  # true tech streams (names)
    found_label: str | None = None
    introduced_at_creation: str | None = None
    linked: Ticket | None = None
    changes: list[Change] = field(default_factory=list)
    # (start, end) of each stay in code review, for the pull requests
    review_windows: list[tuple[datetime, datetime]] = field(default_factory=list)
    dev_start: datetime | None = None
    engineer: Person | None = None
    repo: Repository | None = None
    key: str = ""
    issue_id: int = 0

    def status_at(self, t: datetime) -> Status:
        status = self.initial_status
        for change in self.changes:
            if change.at > t:
                break
            status = change.updates.get("status", status)
        return status

    def stage_intervals(self) -> list[tuple[str, datetime, datetime | None]]:
        """(stage, entered, left) for each status stay after creation, in order."""
        out: list[tuple[str, datetime, datetime | None]] = []
        for change in self.changes:
            status = change.updates.get("status")
            if status is None:
                continue
            if out:
                stage, start, _ = out[-1]
                out[-1] = (stage, start, change.at)
            out.append((status.stage, change.at, None))
        return out


@dataclass(frozen=True)
class Review:
    id: int
    reviewer: Person
    state: Literal["approved", "changes_requested", "commented"]
    at: datetime
    body: str | None


@dataclass
class PullRequest:
    uid: str
    repo: Repository
    author: Person
    branch: str
    title: str
    body: str | None
    opened: datetime
    closed: datetime
    merged: bool
    head_sha: str
    merge_sha: str
    additions: int
    deletions: int
    changed_files: int
    commits: int
    reviews: list[Review] = field(default_factory=list)
    ticket: Ticket | None = None
    number: int = 0
    id: int = 0


@dataclass(frozen=True)
class WorkflowRun:
    id: int
    run_number: int
    repo: Repository
    pr: PullRequest
    created: datetime
    completed: datetime
    conclusion: Literal["success", "failure"]


@dataclass(frozen=True)
class Deploy:
    """One deployment outcome. ``channel`` says how it is reported."""

    key: str
    repo: Repository
    channel: Channel
    environment: str
    status: DeployStatus
    at: datetime  # when it finished (or was rolled back)
    started: datetime
    sha: str
    pipeline_id: str
    trigger: Trigger
    pr_number: int | None
    deployment_id: int
    status_id: int
    actor: Person


@dataclass(frozen=True)
class Incident:
    id: str
    service: str
    severity: Severity
    kind: IncidentKind
    opened: datetime
    resolved: datetime
    description: str


@dataclass(frozen=True)
class PulseResponse:
    stream: str
    period: str
    respondent: Person
    pace: int
    tooling: int
    clarity: int
    free_text: str | None
    at: datetime
    attempt: int = 1
