"""``dpp schedule check|list|run|runs`` through Typer's CliRunner, with real papermill
runs of the test notebooks: one succeeds with the parameters given, one raises; both leave
their executed notebook under the reports directory, the failure its error and an alert
the admin API shows. SQLite only (the runner's database side runs on both backends in
test_runner.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from dpp_lib.cli import app
from dpp_lib.settings import Settings
from dpp_lib.store.api_keys import create_key
from ingest_service.app import create_app
from tests.scheduler.conftest import NOTEBOOKS

SQLITE_ONLY = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)

SCHEDULES = """
jobs:
  echo:
    cron: "*/5 * * * *"
    notebook: succeeds.ipynb
    parameters: {n: 2, label: "from the schedule"}
    timeout_minutes: 2
  broken:
    cron: "0 4 * * *"
    notebook: fails.ipynb
    parameters: {window_days: 7}
    timeout_minutes: 2
  paused:
    cron: "0 5 * * 1"
    notebook: succeeds.ipynb
    timeout_minutes: 1
    enabled: false
"""


@pytest.fixture
def files_env(tmp_path: Path) -> dict[str, str]:
    """The schedules, notebooks and reports (``dpp schedule check`` needs no database)."""
    schedules = tmp_path / "schedules.yaml"
    schedules.write_text(SCHEDULES)
    return {
        "DPP_ENVIRONMENT": "test",
        "DPP_VAR_DIR": str(tmp_path),
        "DPP_SCHEDULES_FILE": str(schedules),
        "DPP_NOTEBOOKS_DIR": str(NOTEBOOKS),
        "DPP_REPORTS_DIR": str(tmp_path / "reports"),
    }


@pytest.fixture
def env(files_env: dict[str, str], settings: Settings) -> dict[str, str]:
    return files_env | {
        "DPP_DATABASE_URL": settings.resolved_database_url(),
        "DPP_SECRETS_DIR": str(settings.secrets_dir),
    }


def _code_outputs(path: Path) -> str:
    nb = json.loads(path.read_text())
    return "".join("".join(o.get("text", "")) for c in nb["cells"] for o in c.get("outputs", []))


def test_check(files_env: dict[str, str], tmp_path: Path) -> None:
    env = files_env | {"DPP_DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none"}
    runner = CliRunner()
    ok = runner.invoke(app, ["schedule", "check"], env=env)
    assert ok.exit_code == 0, ok.output
    assert "3 jobs valid (1 disabled: paused)" in ok.stdout
    bad = tmp_path / "bad.yaml"
    bad.write_text(SCHEDULES.replace('"0 4 * * *"', '"0 4 * *"').replace("n: 2", "m: 2"))
    result = runner.invoke(app, ["schedule", "check"], env=env | {"DPP_SCHEDULES_FILE": str(bad)})
    assert result.exit_code == 1
    assert f"{bad}: jobs.broken.cron: " in result.stderr
    assert f"{bad}: jobs.echo.parameters.m: " not in result.stderr  # schema errors first


@SQLITE_ONLY
def test_run_list_and_runs(env: dict[str, str], settings: Settings, org: sa.Engine) -> None:
    runner = CliRunner()
    ok = runner.invoke(app, ["schedule", "run", "echo", "--param", "n=3"], env=env)
    assert ok.exit_code == 0, ok.output
    assert "echo: run " in ok.stdout and " succeeded in " in ok.stdout
    executed = Path(ok.stdout.split("executed notebook: ")[1].strip())
    assert executed.is_relative_to(Path(env["DPP_REPORTS_DIR"]).resolve() / "runs" / "echo")
    printed = json.loads(_code_outputs(executed))
    assert printed["double"] == 6 and printed["label"] == "from the schedule"
    assert printed["database_from_env"] is True
    assert printed["as_of"].endswith("Z")

    failed = runner.invoke(app, ["schedule", "run", "broken"], env=env)
    assert failed.exit_code == 1
    error = "ValueError: window_days=7 is too short (In [4])"  # after injected-parameters
    assert f"broken failed: {error}" in failed.stderr
    partial = Path(failed.stdout.split("executed notebook: ")[1].strip())
    assert "is too short" in partial.read_text()  # the executed notebook, up to the error

    listed = runner.invoke(app, ["schedule", "list"], env=env)
    assert listed.exit_code == 0, listed.output
    assert "time zone Europe/London" in listed.stdout
    lines = {line.split()[0]: line for line in listed.stdout.splitlines()[2:]}
    assert "succeeded" in lines["echo"] and "failed" in lines["broken"]
    assert "disabled" in lines["paused"] and "never" in lines["paused"]
    as_json = json.loads(runner.invoke(app, ["schedule", "list", "--json"], env=env).stdout)
    assert {j["job"]: j["last_status"] for j in as_json} == {
        "echo": "succeeded",
        "broken": "failed",
        "paused": None,
    }
    assert all(j["time_zone"] == "Europe/London" for j in as_json)

    history = runner.invoke(app, ["schedule", "runs", "--job", "broken", "--json"], env=env)
    (run,) = json.loads(history.stdout)
    assert (run["status"], run["trigger"], run["error"]) == ("failed", "manual", error)
    assert run["output_path"] == str(partial) and run["parameters"]["window_days"] == 7
    table = runner.invoke(app, ["schedule", "runs", "--limit", "5"], env=env).stdout
    assert table.count("manual") == 2 and f"error  {error}" in table

    # the failure is the "metric computation failure" alert of the admin API
    with settings_engine(env).begin() as conn:
        _, token = create_key(conn, name="ops", permissions=["admin"])
    with TestClient(create_app(settings)) as client:
        answer = client.get(
            "/api/v1/admin/system-alerts", headers={"Authorization": f"Bearer {token}"}
        )
    assert answer.status_code == 200, answer.text
    alerts = {a["condition"]: a for a in answer.json()["data"]["alerts"]}
    alert = alerts["metric_computation_failure:broken"]
    assert alert["severity"] == "HIGH" and error in alert["message"]
    assert "metric_computation_failure:echo" not in alerts


def settings_engine(env: dict[str, str]) -> sa.Engine:
    from dpp_lib.store.db import make_engine

    return make_engine(env["DPP_DATABASE_URL"])


@SQLITE_ONLY
def test_run_refuses_what_it_cannot_run(env: dict[str, str], org: sa.Engine) -> None:
    runner = CliRunner()
    unknown = runner.invoke(app, ["schedule", "run", "nope"], env=env)
    assert unknown.exit_code == 1 and "unknown job 'nope'; known: echo, broken, paused" in (
        unknown.stderr
    )
    bad = runner.invoke(app, ["schedule", "run", "echo", "-p", "window=3"], env=env)
    assert bad.exit_code == 1 and "succeeds.ipynb has no parameter(s) window" in bad.stderr
    malformed = runner.invoke(app, ["schedule", "run", "echo", "-p", "n"], env=env)
    assert malformed.exit_code == 1 and "--param 'n' is not KEY=VALUE" in malformed.stderr
    missing = runner.invoke(app, ["schedule", "runs", "--job", "nope"], env=env)
    assert missing.exit_code == 1
    with org.connect() as conn:
        assert conn.execute(sa.text("select count(*) from schedule_runs")).scalar() == 0
