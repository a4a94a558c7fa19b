"""Executing notebooks: papermill in a child process that a timeout or a stop kills with
everything below it (the kernel runs in a session of its own), and the executed notebook
kept under the output path. SQLite only: the database side is covered on both backends by
test_runner.py; these tests are about processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path
from types import MappingProxyType

import pytest

from dpp_lib.scheduler.execute import (
    Execution,
    PapermillExecutor,
    descendants,
    kernel_env,
    notebook_error,
    pid_alive,
    run_child,
)
from dpp_lib.settings import Settings
from tests.scheduler.conftest import NOTEBOOKS, Kit, make_job

SQLITE_ONLY = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)

# A parent that starts a child in a session of its own (as jupyter_client starts a
# kernel), prints the child's pid and waits.
PARENT = """
import subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"],
                         start_new_session=True)
print(child.pid, flush=True)
time.sleep(60)
"""


def _wait_for(path: Path, seconds: float = 60) -> str:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if path.exists() and path.read_text().strip():
            return path.read_text().strip()
        time.sleep(0.05)
    raise AssertionError(f"{path} was not written within {seconds} s")


def test_a_timeout_kills_the_child_and_what_it_started(tmp_path: Path) -> None:
    out = tmp_path / "child.log"
    started = time.monotonic()
    result = run_child(
        [sys.executable, "-c", PARENT],
        timeout_seconds=1.5,
        cancel=threading.Event(),
        log_file=out,
    )
    assert result.timed_out and not result.interrupted and result.returncode is None
    assert time.monotonic() - started < 10
    grandchild = int(_wait_for(out, 1))
    deadline = time.monotonic() + 5
    while pid_alive(grandchild) and time.monotonic() < deadline:  # reaped by init
        time.sleep(0.05)
    assert not pid_alive(grandchild)


def test_a_child_that_ends_reports_its_exit_code() -> None:
    result = run_child(
        [sys.executable, "-c", "raise SystemExit(3)"], timeout_seconds=30, cancel=threading.Event()
    )
    assert (result.returncode, result.timed_out, result.interrupted) == (3, False, False)


def test_descendants_lists_grandchildren(tmp_path: Path) -> None:
    out = tmp_path / "pid"
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT], stdout=out.open("w"), start_new_session=True
    )
    try:
        grandchild = int(_wait_for(out, 10))
        assert grandchild in descendants(parent.pid)
        os.kill(grandchild, signal.SIGKILL)
    finally:
        parent.kill()
        parent.wait()


@SQLITE_ONLY
def test_a_stop_kills_papermill_and_its_kernel_and_records_the_run(
    kit: Kit, settings: Settings, tmp_path: Path
) -> None:
    """`dpp scheduler` stopped (Ctrl-C, SIGTERM) while a notebook runs: the kernel is gone,
    the run is failed ("interrupted"), the partial executed notebook is kept."""
    pid_file = tmp_path / "kernel.pid"
    job = make_job(
        "sleeper",
        "0 * * * *",
        notebook=(NOTEBOOKS / "sleeps.ipynb").resolve(),
        parameters=MappingProxyType({"pid_file": str(pid_file)}),
        notebook_parameters=frozenset({"as_of", "pid_file"}),
        timeout=timedelta(minutes=5),
    )
    runner = kit.runner(job, executor=PapermillExecutor(env=kernel_env(settings)))

    def stop_when_the_kernel_runs() -> None:
        try:
            _wait_for(pid_file)
            time.sleep(0.3)  # inside time.sleep(600)
        finally:
            runner.stop.set()

    helper = threading.Thread(target=stop_when_the_kernel_runs, daemon=True)
    helper.start()
    result = runner.run_now("sleeper")
    helper.join(5)
    kernel = int(pid_file.read_text())
    assert result.status == "failed" and result.error == "interrupted: the scheduler was stopped"
    deadline = time.monotonic() + 5
    while pid_alive(kernel) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not pid_alive(kernel), "the kernel outlived its run"
    (row,) = kit.rows()
    assert (row.status, row.error) == ("failed", "interrupted: the scheduler was stopped")
    assert result.output_path is not None and result.output_path.exists()
    assert result.output_path.is_relative_to(kit.reports.resolve() / "runs" / "sleeper")


@SQLITE_ONLY
def test_a_papermill_timeout_is_a_failed_run(kit: Kit, settings: Settings, tmp_path: Path) -> None:
    job = make_job(
        "sleeper",
        "0 * * * *",
        notebook=(NOTEBOOKS / "sleeps.ipynb").resolve(),
        parameters=MappingProxyType({"pid_file": str(tmp_path / "kernel.pid")}),
        notebook_parameters=frozenset({"as_of", "pid_file"}),
        timeout=timedelta(minutes=0.05),
    )
    runner = kit.runner(job, executor=PapermillExecutor(env=kernel_env(settings)))
    started = time.monotonic()
    result = runner.run_now("sleeper")
    assert time.monotonic() - started < 20
    assert (result.status, result.error) == ("failed", "timed out after 0.05 min")
    assert kit.rows()[0].error == "timed out after 0.05 min"


def test_kernel_env_makes_the_database_and_dirs_absolute(tmp_path: Path) -> None:
    settings = Settings(
        var_dir=Path("var"), secrets_dir=Path("var/secrets"), database_url="", environment="test"
    )
    env = kernel_env(settings, base={"PATH": "/bin", "DPP_DATABASE_URL": "stale"})
    assert env["PATH"] == "/bin"
    assert env["DPP_DATABASE_URL"] == settings.resolved_database_url()
    assert env["DPP_DATABASE_URL"].startswith("sqlite:////")
    for key in ("DPP_VAR_DIR", "DPP_SECRETS_DIR", "DPP_NOTEBOOKS_DIR", "DPP_REPORTS_DIR"):
        assert Path(env[key]).is_absolute()


def test_papermill_argv_never_carries_the_database_url(tmp_path: Path) -> None:
    execution = Execution(
        job="j",
        notebook=NOTEBOOKS / "succeeds.ipynb",
        output=tmp_path / "out.ipynb",
        parameters={"as_of": "2026-11-10T10:10:00Z", "n": 2},
        timeout_seconds=60,
    )
    executor = PapermillExecutor(env={"DPP_DATABASE_URL": "postgresql://u:secret@h/db"})
    argv = executor.argv(execution)
    assert argv[1:3] == ["-m", "papermill"]
    assert '{"as_of": "2026-11-10T10:10:00Z", "n": 2}' in argv
    assert not any("secret" in a for a in argv)


def test_notebook_error_names_the_exception_and_cell(tmp_path: Path) -> None:
    executed = tmp_path / "x.ipynb"
    executed.write_text(
        '{"cells": [{"cell_type": "code", "outputs": []}, {"cell_type": "markdown"},'
        ' {"cell_type": "code", "execution_count": 5, "outputs": [{"output_type": "error",'
        ' "ename": "KeyError", "evalue": "\'stream\'", "traceback": []}]}]}'
    )
    assert notebook_error(executed) == "KeyError: 'stream' (In [5])"
    assert notebook_error(tmp_path / "missing.ipynb") is None
