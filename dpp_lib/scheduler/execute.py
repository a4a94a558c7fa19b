"""Executing a job's notebook with papermill, in a child process that a timeout or a stop
can kill together with its kernel.

papermill runs as ``python -m papermill`` in a process group of its own; the kernel it
starts has a session of its own (jupyter_client), so on a timeout or a stop every
descendant found under ``/proc`` is signalled too (elsewhere the kernel notices its parent
is gone and exits: ipykernel's parent poller). papermill saves the notebook after every
cell, so a failed or killed run still leaves its partial executed notebook.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

from dpp_lib.settings import Settings

log = logging.getLogger(__name__)

POLL_SECONDS = 0.1
TERM_GRACE_SECONDS = 5.0
STDERR_TAIL = 4000


@dataclass(frozen=True)
class Execution:
    """What to run: the notebook, where the executed copy goes, with which parameters."""

    job: str
    notebook: Path
    output: Path
    parameters: Mapping[str, Any]
    timeout_seconds: float


@dataclass(frozen=True)
class Outcome:
    status: Literal["succeeded", "failed"]
    error: str | None = None
    timed_out: bool = False
    interrupted: bool = False


class Executor(Protocol):
    """Runs one execution; returns when it ended, was killed at its timeout, or ``cancel``
    was set (then the outcome is failed and ``interrupted``)."""

    def __call__(self, execution: Execution, cancel: threading.Event) -> Outcome: ...


@dataclass(frozen=True)
class ChildResult:
    returncode: int | None  # None: killed by us
    timed_out: bool
    interrupted: bool


def run_child(
    argv: Sequence[str],
    *,
    timeout_seconds: float,
    cancel: threading.Event,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    log_file: Path | None = None,
) -> ChildResult:
    """Run ``argv`` in a new process group; kill the group and every descendant at the
    timeout or when ``cancel`` is set."""
    with contextlib.ExitStack() as stack:
        out = stack.enter_context(open(log_file, "ab")) if log_file else subprocess.DEVNULL
        process = subprocess.Popen(
            list(argv),
            env=dict(env) if env is not None else None,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    deadline = time.monotonic() + timeout_seconds
    try:
        while process.poll() is None:
            if cancel.is_set() or time.monotonic() >= deadline:
                timed_out = not cancel.is_set()
                kill_tree(process)
                return ChildResult(None, timed_out=timed_out, interrupted=not timed_out)
            cancel.wait(POLL_SECONDS)
    except BaseException:  # KeyboardInterrupt in a foreground run: never leave the child
        kill_tree(process)
        raise
    return ChildResult(process.returncode, timed_out=False, interrupted=False)


def kill_tree(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the child's process group and its descendants, SIGKILL what is left."""
    victims = [process.pid, *descendants(process.pid)]
    _signal_all(process.pid, victims, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(TERM_GRACE_SECONDS)
    victims += [p for p in descendants(process.pid) if p not in victims]
    _signal_all(process.pid, victims, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(TERM_GRACE_SECONDS)


def _signal_all(group: int, pids: Sequence[int], sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(group, sig)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (Linux ``/proc``; elsewhere an empty list)."""
    children: dict[int, list[int]] = {}
    proc = Path("/proc")
    if not proc.is_dir():
        return []
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # "pid (comm) state ppid ...": comm may hold spaces and parentheses
        fields = stat.rsplit(")", 1)[-1].split()
        if len(fields) > 1 and fields[1].isdigit():
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def kernel_env(settings: Settings, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment a job's kernel inherits: the scheduler's, with the database and
    secrets settings made absolute (the kernel runs in the notebook's folder)."""
    env = dict(os.environ if base is None else base)
    env.update(
        {
            "DPP_DATABASE_URL": settings.resolved_database_url(),
            "DPP_VAR_DIR": str(settings.var_dir.resolve()),
            "DPP_SECRETS_DIR": str(settings.secrets_dir.resolve()),
            "DPP_ENVIRONMENT": settings.environment,
            "DPP_NOTEBOOKS_DIR": str(settings.notebooks_dir.resolve()),
            "DPP_REPORTS_DIR": str(settings.reports_dir.resolve()),
            "JUPYTER_RUNTIME_DIR": str((settings.var_dir / "jupyter" / "runtime").resolve()),
        }
    )
    return env


@dataclass
class PapermillExecutor:
    """Runs ``python -m papermill`` with this interpreter (the kernel is this project's)."""

    env: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    python: str = sys.executable

    def argv(self, execution: Execution) -> list[str]:
        return [
            self.python,
            "-m",
            "papermill",
            str(execution.notebook),
            str(execution.output),
            "--parameters_yaml",
            json.dumps(dict(execution.parameters)),  # JSON is YAML
            "--cwd",
            str(execution.notebook.parent),
            "--no-progress-bar",
            "--log-level",
            "WARNING",
        ]

    def __call__(self, execution: Execution, cancel: threading.Event) -> Outcome:
        execution.output.parent.mkdir(parents=True, exist_ok=True)
        log_file = execution.output.with_suffix(".log")
        runtime = self.env.get("JUPYTER_RUNTIME_DIR")
        if runtime:
            Path(runtime).mkdir(parents=True, exist_ok=True)
        result = run_child(
            self.argv(execution),
            timeout_seconds=execution.timeout_seconds,
            cancel=cancel,
            env=self.env,
            cwd=execution.notebook.parent,
            log_file=log_file,
        )
        if result.timed_out:
            minutes = execution.timeout_seconds / 60
            return Outcome("failed", f"timed out after {minutes:g} min", timed_out=True)
        if result.interrupted:
            return Outcome("failed", "interrupted: the scheduler was stopped", interrupted=True)
        if result.returncode == 0:
            with contextlib.suppress(OSError):
                log_file.unlink()  # nothing to keep: the executed notebook has it all
            return Outcome("succeeded")
        error = notebook_error(execution.output) or _tail(log_file)
        return Outcome("failed", error or f"papermill exited with code {result.returncode}")


def notebook_error(path: Path) -> str | None:
    """The failing cell's exception name and message, from an executed notebook, with the
    cell's ``In [n]`` as the executed notebook shows it."""
    try:
        nb = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    for cell in nb.get("cells", []):
        for output in cell.get("outputs", []) if cell.get("cell_type") == "code" else []:
            if output.get("output_type") == "error":
                name, value = output.get("ename", "Error"), output.get("evalue", "")
                where = f" (In [{cell['execution_count']}])" if cell.get("execution_count") else ""
                return f"{name}: {value}{where}"
    return None


def _tail(path: Path) -> str | None:
    try:
        text = path.read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        return None
    if not text:
        return None
    lines = [ln for ln in text.splitlines() if ln.strip()]
    return "\n".join(lines[-8:])[-STDERR_TAIL:]
