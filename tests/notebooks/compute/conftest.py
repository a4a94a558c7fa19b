"""Writable copies of the demo organisation (the shared one is read-only) and one
papermill run of every compute notebook on each backend, made once per session.

The runs go through a small pool: a run is mostly a kernel starting and importing, on a
CPU each, and the computations of different notebooks write different rows, so they may
share a database. The Postgres runs get no ``database_url``: like the scheduler, they
leave it empty and the kernel finds ``DPP_DATABASE_URL`` in its environment.
"""

from __future__ import annotations

import os
import sqlite3
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import papermill
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from dpp_lib.store.db import make_engine
from dpp_lib.store.migrate import upgrade
from dpp_lib.store.schema import metadata
from tests.conftest import DEMO_AS_OF, PG_URL, DemoOrg

ROOT = Path(__file__).resolve().parents[3]
NOTEBOOKS = ROOT / "notebooks" / "compute"
COMPUTE = (
    "sprint_snapshots",
    "cross_stream",
    "daily_metrics",
    "diagnostics",
    "forecasts",
    "pulse_aggregates",
    "data_quality",
)
WORKERS = 3


@dataclass(frozen=True)
class Copy:
    backend: str
    url: str
    engine: sa.Engine


@dataclass(frozen=True)
class Run:
    """One papermill execution: the executed notebook, or the error that stopped it."""

    path: Path
    parameters: dict[str, Any]
    error: BaseException | None
    seconds: float


@pytest.fixture(scope="session")
def compute_sqlite(
    demo_sqlite: DemoOrg, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Copy]:
    path = tmp_path_factory.mktemp("compute-sqlite") / "demo.sqlite3"
    source = sqlite3.connect(str(make_url(demo_sqlite.url).database))
    target = sqlite3.connect(str(path))
    with target:
        source.backup(target)  # a consistent copy, write-ahead log included
    source.close()
    target.close()
    copy = Copy("sqlite", f"sqlite:///{path}", make_engine(f"sqlite:///{path}"))
    yield copy
    copy.engine.dispose()


@pytest.fixture(scope="session")
def compute_postgres(demo_postgres: DemoOrg) -> Iterator[Copy]:
    source = demo_postgres.url.rsplit("search_path%3D", 1)[1]
    schema = f"dpp_compute_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    admin = make_engine(PG_URL)
    with admin.begin() as conn:
        conn.exec_driver_sql(f'create schema "{schema}"')
    url = f"{PG_URL}?options=-csearch_path%3D{schema}"
    engine = make_engine(url)
    upgrade(engine)
    with admin.begin() as conn:
        for table in metadata.sorted_tables:  # parents before children
            columns = ", ".join(f'"{c.name}"' for c in table.columns)
            conn.exec_driver_sql(
                f'insert into "{schema}"."{table.name}" ({columns}) '
                f'select {columns} from "{source}"."{table.name}"'
            )
            for c in table.columns:
                if c.autoincrement is True:
                    conn.exec_driver_sql(
                        f'select setval(pg_get_serial_sequence(\'"{schema}"."{table.name}"\', '
                        f"'{c.name}'), coalesce((select max(\"{c.name}\") from "
                        f'"{schema}"."{table.name}"), 0) + 1, false)'
                    )
    yield Copy("postgres", url, engine)
    engine.dispose()
    with admin.begin() as conn:
        conn.exec_driver_sql(f'drop schema "{schema}" cascade')
    admin.dispose()


@pytest.fixture(params=["sqlite", "postgres"])
def compute_db(request: pytest.FixtureRequest) -> Copy:
    """A writable copy of the demo organisation on each backend (shared by this package's
    tests: every computation they run is for DEMO_AS_OF and the default window, so each
    leaves its rows as any other run of it would)."""
    copy: Copy = request.getfixturevalue(f"compute_{request.param}")
    return copy


def execute(name: str, out: Path, **parameters: Any) -> Run:
    import time

    started = time.perf_counter()
    try:
        papermill.execute_notebook(
            str(NOTEBOOKS / f"{name}.ipynb"),
            str(out),
            parameters=parameters,
            kernel_name="python3",
            # No cwd=: papermill changes the process's directory for it, which races with
            # the other runs of this thread pool (and any relative path in the process).
            progress_bar=False,
        )
        error: BaseException | None = None
    except Exception as exc:  # the test asserts on it
        error = exc
    return Run(out, parameters, error, time.perf_counter() - started)


BAD = {  # a run whose parameter the notebook must refuse, naming it
    "unknown_stream": ("daily_metrics", {"stream": "no-such-stream", "as_of": DEMO_AS_OF}),
    "naive_as_of": ("forecasts", {"as_of": "2026-11-12T18:00:00"}),
}


@pytest.fixture(scope="session")
def executed(
    compute_sqlite: Copy, compute_postgres: Copy, tmp_path_factory: pytest.TempPathFactory
) -> dict[tuple[str, str], Run]:
    """Every compute notebook run once per backend for DEMO_AS_OF with ``stream = "all"``,
    plus the bad-parameter runs (on SQLite), keyed (backend or "bad", notebook or case)."""
    out = tmp_path_factory.mktemp("compute-runs")
    jobs: dict[tuple[str, str], tuple[str, Path, dict[str, Any]]] = {}
    for name in COMPUTE:
        jobs[("sqlite", name)] = (
            name,
            out / f"sqlite-{name}.ipynb",
            {"as_of": DEMO_AS_OF, "database_url": compute_sqlite.url},
        )
        jobs[("postgres", name)] = (name, out / f"postgres-{name}.ipynb", {"as_of": DEMO_AS_OF})
    for case, (name, params) in BAD.items():
        jobs[("bad", case)] = (
            name,
            out / f"bad-{case}.ipynb",
            {**params, "database_url": compute_sqlite.url},
        )
    before = os.environ.get("DPP_DATABASE_URL")
    os.environ["DPP_DATABASE_URL"] = compute_postgres.url  # as the scheduler's kernels get it
    try:
        with ThreadPoolExecutor(WORKERS) as pool:
            futures = {k: pool.submit(execute, n, p, **kw) for k, (n, p, kw) in jobs.items()}
            return {k: f.result() for k, f in futures.items()}
    finally:
        if before is None:
            os.environ.pop("DPP_DATABASE_URL", None)
        else:
            os.environ["DPP_DATABASE_URL"] = before
