"""What the dashboards benchmark runs against: the datasets (the demo organisation in a new
SQLite file; the metric-engine benchmark's 4-million-event Postgres database), signed-in bench
users, and a site (Voila + the API's front door as a uvicorn process)."""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from bench import api, procstat

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks" / "dashboards"


def log(msg: str) -> None:
    print(f"[bench-dashboards {datetime.now():%H:%M:%S}] {msg}", file=sys.stderr, flush=True)


# --- datasets and users -----------------------------------------------------------------------


@dataclass(frozen=True)
class Dataset:
    key: str
    url: str
    delivery: list[str]
    info: dict[str, Any]


def demo_dataset(workdir: Path, secrets_dir: Path) -> Dataset:
    """The demo organisation (``dpp demo load``: 84 days, seed 11) in a new SQLite file."""
    from dpp_lib.jobs.rebuild import rebuild
    from dpp_lib.orgconfig import read_config
    from dpp_lib.settings import Settings
    from dpp_lib.store.config_tables import apply_config
    from dpp_lib.store.db import make_engine
    from dpp_lib.store.migrate import upgrade
    from ingest_service.demo_load import load_demo

    url = f"sqlite:///{workdir / 'demo.sqlite3'}"
    settings = Settings(
        _env_file=None, environment="test", database_url=url, secrets_dir=secrets_dir,
        var_dir=workdir / "demo-load", worker_backoff_seconds=0.0,
    )  # fmt: skip
    config = ROOT / "config" / "example.yaml"
    engine = make_engine(url)
    started = time.perf_counter()
    upgrade(engine)
    with engine.begin() as conn:
        apply_config(conn, read_config(config))
    log("loading the demo organisation (84 days)")
    loaded = load_demo(
        settings, days=84, seed=11, until="2026-11-16", config_file=config, progress=False
    )
    rebuild(engine, settings)
    engine.dispose()
    events = {"deliveries": loaded["deliveries"], "seconds": round(time.perf_counter() - started)}
    return Dataset("demo", url, _delivery(url), events)


def big_dataset(args: argparse.Namespace) -> Dataset:
    info = api.ensure_dataset(args)
    return Dataset("4m", args.url, api.stream_names(args.url)[0], info)


def _delivery(url: str) -> list[str]:
    from dpp_lib.store.db import make_engine
    from dpp_lib.views.common import load_org

    engine = make_engine(url)
    with engine.connect() as conn:
        names = [s.name for s in load_org(conn).delivery]
    engine.dispose()
    return names


@dataclass(frozen=True)
class Users:
    """Signed-in bench users: ``viewers[i]`` sees one delivery stream, ``streams[i]``."""

    admin: str
    member: str
    viewers: list[str]
    streams: list[str]
    ids: list[uuid.UUID]


def make_users(url: str, delivery: list[str], count: int) -> Users:
    from dpp_lib.auth.roles import grant_role
    from dpp_lib.auth.sessions import create_session
    from dpp_lib.auth.users import create_user
    from dpp_lib.store.db import make_engine
    from dpp_lib.store.types import now_utc
    from dpp_lib.views.common import load_org

    tag = uuid.uuid4().hex[:8]
    engine = make_engine(url)
    tokens: list[str] = []
    ids: list[uuid.UUID] = []
    with engine.begin() as conn:
        by_name = {s.name: s.stream_id for s in load_org(conn).delivery}
        grants: list[tuple[str, str | None]] = [
            ("platform_admin", None),
            ("team_member", delivery[0]),
        ]
        grants += [("viewer", delivery[i % len(delivery)]) for i in range(count)]
        for n, (role, stream) in enumerate(grants):
            user = create_user(
                conn, email=f"bench-{tag}-{n}@example.com", display_name=f"Bench user {n}",
                password=None, auth_source="oidc", actor=None,
            )  # fmt: skip
            grant_role(
                conn, user_id=user.user_id, role=role,
                delivery_stream_id=by_name[stream] if stream else None, actor=None,
            )  # fmt: skip
            _, token = create_session(
                conn, user_id=user.user_id, auth_method="oidc", now=now_utc(),
                duration=timedelta(hours=6),
            )  # fmt: skip
            tokens.append(token)
            ids.append(user.user_id)
    engine.dispose()
    streams = [delivery[i % len(delivery)] for i in range(count)]
    return Users(tokens[0], tokens[1], tokens[2:], streams, ids)


def retire_users(url: str, users: Users) -> None:
    """Deactivate the bench users (every session revoked); the rows stay for the audit log."""
    from dpp_lib.auth.users import deactivate_user
    from dpp_lib.store.db import make_engine

    engine = make_engine(url)
    with engine.begin() as conn:
        for user_id in users.ids:
            deactivate_user(conn, user_id, actor=None)
    engine.dispose()


# --- the site: Voila + the API's front door ---------------------------------------------------


@dataclass(frozen=True)
class Site:
    base: str
    voila_pid: int
    api_pid: int
    var_dir: Path


@contextlib.contextmanager
def site(
    url: str, workdir: Path, secrets_dir: Path, *, pool: int, notebooks: list[str]
) -> Iterator[Site]:
    """Voila serving a copy of ``notebooks`` (so only their kernel pools exist) and the API
    in front of it. On exit every process left with the site's folder in its command line (a
    kernel Voila did not stop) is killed."""
    from dpp_lib.dashboards.voila import VoilaServer
    from dpp_lib.settings import Settings

    var_dir = Path(tempfile.mkdtemp(prefix=f"site-pool{pool}-", dir=workdir))
    folder = var_dir / "notebooks"
    folder.mkdir()
    for name in notebooks:
        shutil.copy(NOTEBOOKS / name, folder / name)
    settings = Settings(
        _env_file=None, environment="test", database_url=url, secrets_dir=secrets_dir,
        var_dir=var_dir, voila_port=api.free_port(), voila_pool_size=pool,
        dashboards_dir=folder,
    )  # fmt: skip
    env = api.server_env(url, secrets_dir, cache=True) | {
        "DPP_VAR_DIR": str(var_dir),
        "DPP_VOILA_PORT": str(settings.voila_port),
        "DPP_VOILA_POOL_SIZE": str(pool),
        "DPP_DASHBOARDS_DIR": str(folder),
    }
    port = api.free_port()
    try:
        with VoilaServer(settings, log_to=var_dir / "voila.log") as voila:
            with (var_dir / "uvicorn.log").open("wb") as out:
                proc = subprocess.Popen(
                    api.server_command(port), env=env, cwd=ROOT, stdin=subprocess.DEVNULL,
                    stdout=out, stderr=subprocess.STDOUT,
                )  # fmt: skip
            try:
                api.wait_health(api.Server(proc, port, var_dir / "uvicorn.log"), timeout=300)
                assert voila.process is not None
                yield Site(f"http://{api.HOST}:{port}", voila.process.pid, proc.pid, var_dir)
            finally:
                proc.terminate()
                proc.wait(timeout=30)
    finally:
        kill_processes_of(var_dir)


def _processes_of(folder: Path) -> list[int]:
    mark = str(folder).encode()
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and int(entry) != os.getpid():
            with contextlib.suppress(OSError):
                if mark in Path(f"/proc/{entry}/cmdline").read_bytes():
                    found.append(int(entry))
    return found


def kill_processes_of(folder: Path) -> int:
    """SIGKILL every process whose command line names ``folder`` (Voila's kernels are started
    with a connection file under it); returns how many."""
    pids = _processes_of(folder)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
    return len(pids)


def kernels_rss_mb(folder: Path) -> list[int]:
    """Resident memory of each kernel of the site in ``folder``, MB."""
    out = []
    for pid in _processes_of(folder):
        with contextlib.suppress(OSError, ValueError):
            if b"ipykernel_launcher" not in Path(f"/proc/{pid}/cmdline").read_bytes():
                continue
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    out.append(int(line.split()[1]) // 1024)
    return sorted(out, reverse=True)


def available_gb() -> float:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) / 1024 / 1024
    return float("inf")


class MemoryGuard:
    """Watches the machine's available memory while the benchmark runs; below ``min_free_gb``
    it kills every process of ``workdir`` (the kernels) and says so, so a page that needs more
    memory than the machine has fails the benchmark instead of the machine."""

    def __init__(self, workdir: Path, min_free_gb: float) -> None:
        self.workdir = workdir
        self.min_free_gb = min_free_gb
        self.lowest = float("inf")
        self.trips: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="memory-guard", daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.5):
            free = available_gb()
            self.lowest = min(self.lowest, free)
            if free < self.min_free_gb:
                killed = kill_processes_of(self.workdir)
                message = f"{free:.1f} GB available: killed {killed} benchmark process(es)"
                self.trips.append(message)
                log(f"memory guard: {message}")

    def __enter__(self) -> MemoryGuard:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


def wait_quiet(pid: int, *, at_least: float = 2.0, limit: float = 900.0) -> float:
    """Wait until the process tree ``pid`` used under 5 % of a core over a second (a full
    pool: its kernels parked in ``wait_for_request``); returns the seconds waited."""
    started = time.monotonic()
    time.sleep(at_least)
    before = procstat.snapshot({"t": pid})["t"]
    while time.monotonic() - started < limit:
        time.sleep(1.0)
        now = procstat.snapshot({"t": pid})["t"]
        if now - before < 0.05:
            break
        before = now
    return round(time.monotonic() - started, 1)
