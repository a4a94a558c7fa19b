"""The schedules file (``schedules/schedules.yaml``): its schema, validated with pydantic,
and the checks that need the notebooks (each exists, each parameter an entry sets is one
of its ``parameters`` cell).

Every problem is reported at once, each naming the job and the field:
``jobs.daily-metrics.cron: ...``.
"""

from __future__ import annotations

import ast
import json
import re
import string
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path, PurePosixPath
from types import MappingProxyType
from typing import Any
from zoneinfo import ZoneInfo

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    ValidationError,
    field_validator,
)

from dpp_lib.errors import DppError, FieldProblem
from dpp_lib.scheduler.slots import Cron

JOB_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
DEFAULT_OUTPUT = "runs/{job}/{date}/{job}-{time}-{run}.ipynb"
OUTPUT_FIELDS = frozenset({"job", "date", "time", "run"})
# What the scheduler passes itself: the run's moment. The database is never a parameter
# (a URL may hold a password and papermill writes parameters into the executed notebook):
# the kernel inherits DPP_DATABASE_URL from the scheduler's environment.
AS_OF = "as_of"
FORBIDDEN_PARAMETERS = frozenset({"database_url"})

ParameterValue = StrictBool | StrictInt | StrictFloat | StrictStr


class SchedulesFileError(DppError):
    """The schedules file is invalid: names the file, the job and the field."""

    code = "invalid_schedules"

    def __init__(self, file: str, problems: list[FieldProblem]) -> None:
        lines = [f"{file}: {p.field}: {p.problem}" for p in problems]
        super().__init__("invalid schedules file\n" + "\n".join(lines), details=problems)
        self.file = file


class JobEntry(BaseModel):
    """One job as written in the file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    cron: str = Field(description="5 fields, in the organisation's time zone")
    notebook: str = Field(description="Relative to Settings.notebooks_dir (or absolute)")
    parameters: dict[str, ParameterValue] = Field(default_factory=dict)
    output: str = Field(DEFAULT_OUTPUT, description="Executed notebook, under reports_dir")
    timeout_minutes: float = Field(gt=0, description="The run is killed after this")
    catch_up_minutes: float | None = Field(
        None, ge=0, description="Run a missed slot this late at most; default one period"
    )
    enabled: bool = True
    description: str = ""

    @field_validator("cron")
    @classmethod
    def _cron(cls, value: str) -> str:
        try:
            Cron(value, ZoneInfo("UTC"))
        except ValueError as exc:
            raise ValueError(f"{value!r} is not a valid cron expression: {exc}") from None
        return value

    @field_validator("output")
    @classmethod
    def _output(cls, value: str) -> str:
        problem = output_template_problem(value)
        if problem:
            raise ValueError(problem)
        return value


class SchedulesFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    jobs: dict[str, JobEntry]

    @field_validator("jobs")
    @classmethod
    def _names(cls, value: dict[str, JobEntry]) -> dict[str, JobEntry]:
        bad = [n for n in value if not JOB_NAME.match(n)]
        if bad:
            raise ValueError(
                f"job name(s) {', '.join(map(repr, bad))}: use 1–64 of a-z 0-9 _ -"
                " starting with a letter or digit"
            )
        return value


@dataclass(frozen=True)
class Job:
    """A validated job: the notebook resolved, its durations as timedeltas."""

    name: str
    cron: str
    notebook: Path
    parameters: MappingProxyType[str, Any]
    output: str
    timeout: timedelta
    catch_up: timedelta | None  # None: one period (the latest missed slot always runs)
    enabled: bool = True
    description: str = ""
    notebook_parameters: frozenset[str] = field(default_factory=frozenset)


@dataclass(frozen=True)
class Schedules:
    file: Path
    jobs: tuple[Job, ...]

    def get(self, name: str) -> Job | None:
        return next((j for j in self.jobs if j.name == name), None)

    @property
    def enabled(self) -> tuple[Job, ...]:
        return tuple(j for j in self.jobs if j.enabled)


def output_template_problem(template: str) -> str | None:
    """Why an output template is unusable, or None."""
    try:
        names = {f for _, f, _, _ in string.Formatter().parse(template) if f is not None}
    except ValueError as exc:
        return f"{template!r} is not a valid template: {exc}"
    unknown = names - OUTPUT_FIELDS
    if unknown:
        return (
            f"unknown placeholder(s) {', '.join(sorted(unknown))}; "
            f"known: {', '.join(sorted(OUTPUT_FIELDS))}"
        )
    if "run" not in names:
        return "must contain {run}, so that two runs never write the same file"
    path = PurePosixPath(template)
    if path.is_absolute() or ".." in path.parts or path.parts[0] != "runs":
        return "must be a relative path under runs/ (inside the reports directory)"
    if path.suffix != ".ipynb":
        return "must end with .ipynb"
    return None


def notebook_parameters(path: Path) -> frozenset[str]:
    """The names the notebook's cell tagged ``parameters`` assigns."""
    try:
        nb = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DppError(f"notebook {path} cannot be read: {exc}") from None
    for cell in nb.get("cells", []):
        if cell.get("cell_type") != "code":
            continue
        if "parameters" not in cell.get("metadata", {}).get("tags", []):
            continue
        source = cell.get("source", "")
        source = "".join(source) if isinstance(source, list) else source
        try:
            tree = ast.parse(source)
        except SyntaxError as exc:
            raise DppError(f"notebook {path}: the parameters cell does not parse: {exc}") from None
        names: set[str] = set()
        for node in tree.body:
            targets = (
                node.targets
                if isinstance(node, ast.Assign)
                else [node.target]
                if isinstance(node, ast.AnnAssign)
                else []
            )
            names |= {t.id for t in targets if isinstance(t, ast.Name)}
        return frozenset(names)
    raise DppError(f"notebook {path} has no code cell tagged 'parameters'")


def parse_schedules(text: str, *, file: str, notebooks_dir: Path) -> Schedules:
    """Validate the file's text; raises ``SchedulesFileError`` listing every problem."""
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise SchedulesFileError(file, [FieldProblem("(file)", f"not valid YAML: {exc}")]) from None
    if not isinstance(raw, dict):
        raise SchedulesFileError(file, [FieldProblem("(file)", "expected a mapping with 'jobs'")])
    try:
        parsed = SchedulesFile.model_validate(raw)
    except ValidationError as exc:
        raise SchedulesFileError(file, [_problem(e) for e in exc.errors()]) from None

    problems: list[FieldProblem] = []
    jobs = []
    for name, entry in parsed.jobs.items():
        notebook = Path(entry.notebook)
        if not notebook.is_absolute():
            notebook = notebooks_dir / notebook
        known: frozenset[str] = frozenset()
        if not notebook.is_file():
            problems.append(FieldProblem(f"jobs.{name}.notebook", f"no notebook at {notebook}"))
        else:
            try:
                known = notebook_parameters(notebook)
            except DppError as exc:
                problems.append(FieldProblem(f"jobs.{name}.notebook", exc.message))
            else:
                problems += parameter_problems(name, entry.parameters, known, notebook)
        jobs.append(
            Job(
                name=name,
                cron=entry.cron,
                notebook=notebook.resolve(),
                parameters=MappingProxyType(dict(entry.parameters)),
                output=entry.output,
                timeout=timedelta(minutes=entry.timeout_minutes),
                catch_up=None
                if entry.catch_up_minutes is None
                else timedelta(minutes=entry.catch_up_minutes),
                enabled=entry.enabled,
                description=entry.description,
                notebook_parameters=known,
            )
        )
    if problems:
        raise SchedulesFileError(file, problems)
    return Schedules(Path(file), tuple(jobs))


def parameter_problems(
    job: str, parameters: dict[str, Any], known: frozenset[str], notebook: Path
) -> list[FieldProblem]:
    """Parameters the notebook does not declare, or that must never be passed."""
    out = []
    for key in parameters:
        where = f"jobs.{job}.parameters.{key}"
        if key in FORBIDDEN_PARAMETERS:
            out.append(
                FieldProblem(
                    where,
                    "is never passed (it would be written into the executed notebook);"
                    " the kernel reads DPP_DATABASE_URL from the scheduler's environment",
                )
            )
        elif key not in known:
            out.append(
                FieldProblem(
                    where,
                    f"{notebook.name} has no such parameter; its parameters cell has: "
                    f"{', '.join(sorted(known)) or 'nothing'}",
                )
            )
    if AS_OF not in known:
        out.append(
            FieldProblem(
                f"jobs.{job}.notebook",
                f"{notebook.name} has no {AS_OF} parameter (the scheduler passes the run's moment)",
            )
        )
    return out


def load_schedules(path: Path, *, notebooks_dir: Path) -> Schedules:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SchedulesFileError(
            str(path), [FieldProblem("(file)", f"cannot be read: {exc.strerror or exc}")]
        ) from None
    return parse_schedules(text, file=str(path), notebooks_dir=notebooks_dir)


def _problem(error: Any) -> FieldProblem:
    loc = ".".join(str(p) for p in error["loc"])
    if error["type"] == "extra_forbidden":
        return FieldProblem(loc, "unknown key")
    if error["type"] == "missing":
        return FieldProblem(loc, "is required")
    message = str(error["msg"]).removeprefix("Value error, ")
    return FieldProblem(loc, message)
