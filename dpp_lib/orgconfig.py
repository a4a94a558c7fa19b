"""The organisation config file (DESIGN §4): schema and parsing.

``parse_config`` turns YAML text into a validated ``OrgConfig`` or raises ``ConfigError``
naming the file, the path inside it (``tech_streams[2].github_org``) and the problem.
Loading it into the database lives in ``dpp_lib.store.config_tables``.
"""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from dpp_lib.errors import ConfigError, FieldProblem

PIPELINE_STAGES = ("backlog", "ba", "dev", "code_review", "qa", "uat", "done", "cancelled")
# Where a defect can be found: the pipeline stages plus production (spec §6.3.2).
FOUND_STAGES = ("backlog", "ba", "dev", "code_review", "qa", "uat", "production")
DEFAULT_TICKET_KEY_PATTERN = r"^(?:feature|bugfix|hotfix|chore|spike)?/?([A-Z][A-Z0-9]+-\d+)"
DERIVATION_METHODS = ("custom_field", "project", "label", "component")

Stage = Literal["backlog", "ba", "dev", "code_review", "qa", "uat", "done", "cancelled"]
Slug = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$")]
DerivationMethod = Literal["custom_field", "project", "label", "component"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Organisation(_Strict):
    name: str = Field(min_length=1)
    time_zone: str = "UTC"
    holidays: list[date] = []
    production_environments: list[str] = ["production"]
    incident_correlation_window_minutes: int = Field(60, ge=1, le=24 * 60)
    min_contributors: int = Field(6, ge=1)

    @field_validator("time_zone")
    @classmethod
    def _tz(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r} (use an IANA name)") from exc
        return value

    @field_validator("production_environments")
    @classmethod
    def _envs(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("at least one production environment name is needed")
        return [v.strip().lower() for v in value]


class JiraFields(_Strict):
    """Jira custom field ids (``customfield_NNNNN``); any may be absent."""

    delivery_stream: str | None = None
    tech_streams: str | None = None
    found_in_stage: str | None = None
    introduced_in_stage: str | None = None
    blocking_tech_stream: str | None = None
    flagged: str | None = None
    sprint: str | None = None
    story_points: str | None = None
    root_cause: str | None = None

    @model_validator(mode="after")
    def _ids(self) -> JiraFields:
        for name, value in self.model_dump().items():
            if value is not None and not re.fullmatch(r"customfield_\d+", value):
                raise ValueError(f"{name}: {value!r} is not a custom field id (customfield_NNNNN)")
        return self


class ValueMap(_Strict):
    """Extra labels for Jira select options: option text → stage / stream name."""

    stages: dict[str, str] = {}
    streams: dict[str, str] = {}

    @field_validator("stages")
    @classmethod
    def _stages(cls, value: dict[str, str]) -> dict[str, str]:
        for label, stage in value.items():
            if stage not in FOUND_STAGES and stage not in PIPELINE_STAGES:
                raise ValueError(f"{label!r} maps to unknown stage {stage!r}")
        return value


class DeliveryStream(_Strict):
    name: Slug
    renamed_from: Slug | None = None
    display_name: str = Field(min_length=1)
    description: str | None = None
    team_size: int = Field(ge=1)
    min_contributors: int | None = Field(None, ge=1)
    labels: list[str] = []


class TechStream(_Strict):
    name: Slug
    renamed_from: Slug | None = None
    display_name: str = Field(min_length=1)
    description: str | None = None
    github_org: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9-]{0,38}$")
    github_install_id: str = Field(pattern=r"^\d+$")
    ticket_key_pattern: str = DEFAULT_TICKET_KEY_PATTERN
    min_contributors: int | None = Field(None, ge=1)

    @field_validator("github_install_id", mode="before")
    @classmethod
    def _install_id(cls, value: object) -> object:
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value

    @field_validator("ticket_key_pattern")
    @classmethod
    def _pattern(cls, value: str) -> str:
        try:
            compiled = re.compile(value)
        except re.error as exc:
            raise ValueError(f"not a valid regular expression: {exc}") from exc
        if compiled.groups < 1:
            raise ValueError("the pattern needs one capturing group holding the ticket key")
        return value


class Repository(_Strict):
    full_name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9-]*/[A-Za-z0-9._-]+$")
    deploy_target: str | None = None
    deployable: bool = True
    default_branch: str = "main"


class StatusMapping(_Strict):
    status: str = Field(min_length=1)
    stage: Stage
    active: bool = False


class JiraProject(_Strict):
    key: str = Field(pattern=r"^[A-Z][A-Z0-9_]+$")
    delivery_stream: str | None = None
    derivation: list[DerivationMethod] = ["custom_field", "project", "label", "component"]
    components: dict[str, str] = {}
    status_mappings: list[StatusMapping] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_statuses(self) -> JiraProject:
        seen: set[str] = set()
        for mapping in self.status_mappings:
            key = mapping.status.casefold()
            if key in seen:
                raise ValueError(f"status {mapping.status!r} is mapped twice")
            seen.add(key)
        if "project" in self.derivation and self.delivery_stream is None:
            raise ValueError("derivation uses 'project' but no delivery_stream is set")
        return self


class SeverityRule(_Strict):
    """A row of spec §6.7's table; the most severe matching rule wins."""

    severity: Literal["low", "medium", "high", "critical"]
    min_impacted_streams: int = Field(ge=1)
    confidence_below: float | None = Field(None, ge=0, le=100)
    confidence_at_least: float | None = Field(None, ge=0, le=100)


DEFAULT_SEVERITY_RULES = [
    SeverityRule(severity="low", min_impacted_streams=1, confidence_at_least=70),
    SeverityRule(severity="medium", min_impacted_streams=1, confidence_below=70),
    SeverityRule(severity="medium", min_impacted_streams=2, confidence_at_least=70),
    SeverityRule(severity="high", min_impacted_streams=2, confidence_below=70),
    SeverityRule(severity="critical", min_impacted_streams=3, confidence_below=60),
]


class CrossStream(_Strict):
    severity_rules: list[SeverityRule] = DEFAULT_SEVERITY_RULES
    calibration: bool = True


class Pulse(_Strict):
    window_start_day: int = Field(1, ge=1, le=28)
    window_days: int = Field(7, ge=1, le=28)


class OrgConfig(_Strict):
    organisation: Organisation
    jira_fields: JiraFields = JiraFields()
    value_map: ValueMap = ValueMap()
    delivery_streams: list[DeliveryStream] = Field(min_length=1)
    tech_streams: list[TechStream] = Field(min_length=1)
    repositories: list[Repository] = []
    jira_projects: list[JiraProject] = []
    cross_stream: CrossStream = CrossStream()
    pulse: Pulse = Pulse()

    @model_validator(mode="after")
    def _references(self) -> OrgConfig:
        problems: list[tuple[str, str]] = []
        _unique(problems, "delivery_streams", [s.name for s in self.delivery_streams], "name")
        _unique(problems, "tech_streams", [s.name for s in self.tech_streams], "name")
        _unique(
            problems,
            "tech_streams",
            [s.github_org.lower() for s in self.tech_streams],
            "github_org",
        )
        _unique(
            problems,
            "tech_streams",
            [s.github_install_id for s in self.tech_streams],
            "github_install_id",
        )
        _unique(
            problems, "repositories", [r.full_name.lower() for r in self.repositories], "full_name"
        )
        _unique(problems, "jira_projects", [p.key for p in self.jira_projects], "key")
        renames: list[tuple[str, list[str], list[str | None]]] = [
            (
                "delivery_streams",
                [d.name for d in self.delivery_streams],
                [d.renamed_from for d in self.delivery_streams],
            ),
            (
                "tech_streams",
                [t.name for t in self.tech_streams],
                [t.renamed_from for t in self.tech_streams],
            ),
        ]
        for section, in_file, old_names in renames:
            for i, old in enumerate(old_names):
                if old is not None and old in in_file:
                    message = f"{old!r} is still in the file; a rename must replace the old name"
                    problems.append((f"{section}[{i}].renamed_from", message))
        targets = [(r.deploy_target or "").casefold() for r in self.repositories]
        _unique(problems, "repositories", targets, "deploy_target")
        delivery = {s.name for s in self.delivery_streams}
        orgs = {s.github_org.lower() for s in self.tech_streams}
        for i, repo in enumerate(self.repositories):
            org = repo.full_name.split("/", 1)[0].lower()
            if org not in orgs:
                problems.append(
                    (
                        f"repositories[{i}].full_name",
                        f"org {org!r} is not the github_org of any tech stream",
                    )
                )
        for i, project in enumerate(self.jira_projects):
            if project.delivery_stream is not None and project.delivery_stream not in delivery:
                problems.append(
                    (
                        f"jira_projects[{i}].delivery_stream",
                        f"unknown delivery stream {project.delivery_stream!r}",
                    )
                )
            for label, stream in project.components.items():
                if stream not in delivery:
                    problems.append(
                        (
                            f"jira_projects[{i}].components.{label}",
                            f"unknown delivery stream {stream!r}",
                        )
                    )
        names = delivery | {s.name for s in self.tech_streams}
        for label, stream in self.value_map.streams.items():
            if stream not in names:
                problems.append((f"value_map.streams.{label}", f"unknown stream {stream!r}"))
        if problems:
            raise _ReferenceErrors(problems)
        return self

    def delivery_stream(self, name: str) -> DeliveryStream:
        return next(s for s in self.delivery_streams if s.name == name)

    def tech_stream(self, name: str) -> TechStream:
        return next(s for s in self.tech_streams if s.name == name)


class _ReferenceErrors(ValueError):
    def __init__(self, problems: list[tuple[str, str]]) -> None:
        super().__init__("; ".join(f"{p}: {m}" for p, m in problems))
        self.problems = problems


def _unique(problems: list[tuple[str, str]], section: str, values: list[str], field: str) -> None:
    seen: dict[str, int] = {}
    for i, value in enumerate(values):
        if not value:
            continue
        if value in seen:
            problems.append(
                (f"{section}[{i}].{field}", f"duplicate {value!r} (also {section}[{seen[value]}])")
            )
        seen.setdefault(value, i)


def _loc_path(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "(top level)"


def parse_config(text: str, *, file: str = "<config>") -> OrgConfig:
    """Validate YAML text; raise ``ConfigError`` listing every problem with its path."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "(parse)"
        raise ConfigError(file, [FieldProblem(where, f"not valid YAML: {exc}")]) from exc
    if not isinstance(data, dict):
        raise ConfigError(file, [FieldProblem("(top level)", "expected a mapping of sections")])
    try:
        return OrgConfig.model_validate(data)
    except ValidationError as exc:
        problems: list[FieldProblem] = []
        for err in exc.errors():
            ctx_err = (err.get("ctx") or {}).get("error")
            if isinstance(ctx_err, _ReferenceErrors):
                problems.extend(FieldProblem(p, m) for p, m in ctx_err.problems)
                continue
            message = str(err["msg"]).removeprefix("Value error, ")
            problems.append(FieldProblem(_loc_path(tuple(err["loc"])), message))
        raise ConfigError(file, problems) from None


def read_config(path: Path | str) -> OrgConfig:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(
            str(path), [FieldProblem("(file)", f"cannot read: {getattr(exc, 'strerror', exc)}")]
        ) from exc
    return parse_config(text, file=str(path))
