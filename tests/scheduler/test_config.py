"""The schedules file: the real one against the real notebooks, and every kind of mistake
reported with the job and the field."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from dpp_lib.scheduler.config import (
    AS_OF,
    SchedulesFileError,
    load_schedules,
    notebook_parameters,
    parse_schedules,
)
from dpp_lib.scheduler.slots import Cron
from tests.scheduler.conftest import LONDON, NOTEBOOKS

MONDAY = datetime(2026, 11, 9, tzinfo=UTC)
ROOT = Path(__file__).resolve().parents[2]
SCHEDULES = ROOT / "schedules" / "schedules.yaml"
AGREED = {
    "sprint-snapshots": ("0 */2 * * *", "compute/sprint_snapshots.ipynb"),
    "cross-stream": ("10 * * * *", "compute/cross_stream.ipynb"),
    "daily-metrics": ("30 1 * * *", "compute/daily_metrics.ipynb"),
    "diagnostics": ("40 1 * * *", "compute/diagnostics.ipynb"),
    "forecasts": ("50 1 * * *", "compute/forecasts.ipynb"),
    "pulse-aggregates": ("0 3 1 * *", "compute/pulse_aggregates.ipynb"),
    "data-quality": ("20 * * * *", "compute/data_quality.ipynb"),
    "sprint-reports": ("0 6 * * *", "compute/sprint_reports.ipynb"),
}


def test_the_schedules_file_runs_every_agreed_job_on_existing_notebooks() -> None:
    """Every cron is valid, every notebook exists and every parameter an entry sets is in
    that notebook's parameters cell (load_schedules checks them all, naming each problem)."""
    schedules = load_schedules(SCHEDULES, notebooks_dir=ROOT / "notebooks")
    found = {j.name: (j.cron, j.notebook) for j in schedules.jobs}
    assert found == {
        name: (cron, (ROOT / "notebooks" / notebook).resolve())
        for name, (cron, notebook) in AGREED.items()
    }
    for job in schedules.jobs:
        assert Cron(job.cron, LONDON).next_after(MONDAY) is not None
        assert set(job.parameters) <= job.notebook_parameters
        assert AS_OF in job.notebook_parameters and "database_url" not in job.parameters
        assert job.enabled and timedelta(0) < job.timeout <= timedelta(hours=2)


def _parse(text: str) -> SchedulesFileError:
    with pytest.raises(SchedulesFileError) as caught:
        parse_schedules(text, file="s.yaml", notebooks_dir=NOTEBOOKS)
    return caught.value


GOOD = """
jobs:
  echo:
    cron: "*/5 * * * *"
    notebook: succeeds.ipynb
    parameters: {n: 3, label: "x"}
    timeout_minutes: 2
"""


def test_a_valid_file() -> None:
    schedules = parse_schedules(GOOD, file="s.yaml", notebooks_dir=NOTEBOOKS)
    (job,) = schedules.jobs
    assert job.name == "echo" and job.notebook == (NOTEBOOKS / "succeeds.ipynb").resolve()
    assert dict(job.parameters) == {"n": 3, "label": "x"}
    assert job.timeout == timedelta(minutes=2) and job.catch_up is None and job.enabled
    assert job.output == "runs/{job}/{date}/{job}-{time}-{run}.ipynb"
    assert job.notebook_parameters == {"as_of", "n", "label"}


T = "timeout_minutes: 2"


def _add(line: str) -> tuple[str, str]:
    return T, f"{T}\n    {line}"


@pytest.mark.parametrize(
    ("change", "field", "problem"),
    [
        (_add("retries: 3"), "jobs.echo.retries", "unknown key"),
        (('"*/5 * * * *"', '"61 * * * *"'), "jobs.echo.cron", "not a valid cron expression"),
        (('"*/5 * * * *"', '"* * * *"'), "jobs.echo.cron", "4 fields, not 5"),
        (('"*/5 * * * *"', '"0 6 * * 9"'), "jobs.echo.cron", "day of week '9'"),
        (("succeeds.ipynb", "missing.ipynb"), "jobs.echo.notebook", "no notebook at"),
        (('label: "x"', "window: 7"), "jobs.echo.parameters.window", "has no such parameter"),
        (('label: "x"', "database_url: x"), "jobs.echo.parameters.database_url", "never passed"),
        ((T, "timeout_minutes: 0"), "jobs.echo.timeout_minutes", "greater than 0"),
        ((f"    {T}\n", ""), "jobs.echo.timeout_minutes", "is required"),
        (_add("output: runs/{job}.ipynb"), "jobs.echo.output", "must contain {run}"),
        (_add("output: ../{run}.ipynb"), "jobs.echo.output", "under runs/"),
        (_add("output: runs/{run}-{who}.ipynb"), "jobs.echo.output", "unknown placeholder"),
        (_add("catch_up_minutes: -1"), "jobs.echo.catch_up_minutes", "greater than or equal"),
        (("echo:", "Echo Job:"), "jobs", "job name(s) 'Echo Job'"),
    ],
)
def test_each_mistake_names_the_job_and_the_field(
    change: tuple[str, str], field: str, problem: str
) -> None:
    error = _parse(GOOD.replace(*change))
    fields = {p.field: p.problem for p in error.details}
    assert field in fields, error.message
    assert problem in fields[field]
    assert f"s.yaml: {field}: " in error.message


def test_every_problem_is_reported_at_once() -> None:
    text = (
        GOOD
        + """
  other:
    cron: "0 25 * * *"
    notebook: fails.ipynb
    parameters: {window_days: 3, n: 1}
    timeout_minutes: 5
"""
    )
    bad = text.replace('label: "x"', "nope: 1")
    error = _parse(bad)
    assert {p.field for p in error.details} == {"jobs.other.cron"}  # schema first
    error = _parse(bad.replace('"0 25 * * *"', '"0 5 * * *"'))
    assert {p.field for p in error.details} == {
        "jobs.echo.parameters.nope",
        "jobs.other.parameters.n",
    }


def test_a_notebook_without_as_of_is_refused(tmp_path: Path) -> None:
    (tmp_path / "nb.ipynb").write_text(
        (NOTEBOOKS / "succeeds.ipynb").read_text().replace('"as_of = ', '"when = ')
    )
    error = _parse_in(tmp_path, GOOD.replace("succeeds.ipynb", "nb.ipynb"))
    assert "has no as_of parameter" in error.message


def _parse_in(folder: Path, text: str) -> SchedulesFileError:
    with pytest.raises(SchedulesFileError) as caught:
        parse_schedules(text, file="s.yaml", notebooks_dir=folder)
    return caught.value


def test_unreadable_files() -> None:
    assert "not valid YAML" in _parse("jobs: [").message
    assert "expected a mapping" in _parse("- a").message
    with pytest.raises(SchedulesFileError, match="cannot be read"):
        load_schedules(Path("/nonexistent/schedules.yaml"), notebooks_dir=NOTEBOOKS)


def test_notebook_parameters_reads_the_tagged_cell() -> None:
    assert notebook_parameters(NOTEBOOKS / "fails.ipynb") == {"as_of", "window_days"}
    assert notebook_parameters(NOTEBOOKS / "sleeps.ipynb") == {"as_of", "pid_file"}
