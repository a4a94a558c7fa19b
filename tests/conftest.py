"""Test harness: every database test runs on SQLite and on Postgres.

Postgres comes from ``DPP_TEST_POSTGRES_URL`` (default: the local/CI server,
``postgresql://postgres@127.0.0.1:5432/test``). With ``CI=true`` an unreachable server fails
the run with a clear message; elsewhere the Postgres half is skipped with the reason.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from dpp_lib.settings import Settings
from dpp_lib.store.db import make_engine
from dpp_lib.store.migrate import upgrade
from dpp_lib.store.schema import metadata
from tests.support import GITHUB_FIXTURES, JIRA_FIXTURES, TEST_SECRETS, load_test_config

PG_URL = os.environ.get("DPP_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def pytest_sessionstart(session: pytest.Session) -> None:
    # The real payloads are the golden inputs: without them the fixture tests would
    # parametrise to nothing and pass vacuously.
    for folder in (GITHUB_FIXTURES, JIRA_FIXTURES):
        if not any(folder.glob("**/*.json")):
            pytest.exit(f"fixture payloads not found in {folder} (set DPP_FIXTURES)", returncode=4)


def _pg_reachable() -> str | None:
    try:
        engine = make_engine(PG_URL)
        with engine.connect() as conn:
            conn.exec_driver_sql("select 1")
        engine.dispose()
        return None
    except Exception as exc:
        return f"{type(exc).__name__}: {str(exc).splitlines()[0]}"


@pytest.fixture(scope="session")
def pg_schema_url() -> Iterator[str]:
    """A migrated schema of its own in the Postgres test database, for this session."""
    problem = _pg_reachable()
    if problem:
        message = f"Postgres at {PG_URL} is unreachable ({problem})"
        if IN_CI:
            pytest.exit(f"CI requires Postgres for the suite: {message}", returncode=3)
        pytest.skip(message)
    schema = f"dpp_test_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    admin = make_engine(PG_URL)
    with admin.begin() as conn:
        conn.exec_driver_sql(f'create schema "{schema}"')
    url = f"{PG_URL}?options=-csearch_path%3D{schema}"
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    yield url
    with admin.begin() as conn:
        conn.exec_driver_sql(f'drop schema "{schema}" cascade')
    admin.dispose()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sqlite-template") / "template.sqlite3"
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    engine.dispose()
    return path


def _truncate_all(url: str) -> None:
    engine = make_engine(url)
    names = ", ".join(f'"{t.name}"' for t in metadata.sorted_tables)
    with engine.begin() as conn:
        conn.exec_driver_sql(f"TRUNCATE {names} RESTART IDENTITY CASCADE")
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A migrated, empty database on each backend."""
    if request.param == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")
        path = tmp_path / "dpp.sqlite3"
        shutil.copy(template, path)
        return f"sqlite:///{path}"
    url: str = request.getfixturevalue("pg_schema_url")
    _truncate_all(url)
    return url


@pytest.fixture
def settings(db_url: str, tmp_path: Path) -> Settings:
    secrets_dir = tmp_path / "secrets"
    secrets_dir.mkdir()
    for name, value in TEST_SECRETS.items():
        (secrets_dir / name).write_text(value)
    return Settings(
        environment="test",
        database_url=db_url,
        secrets_dir=secrets_dir,
        var_dir=tmp_path,
        worker_backoff_seconds=0.0,
        deferred_enrichment_delay_seconds=0,
        # each app would start its computing processes (~2 s); the API's contract, scope,
        # schemathesis and fast-path tests run on the demo organisation's settings, with them
        api_compute_in="threads",
    )


@pytest.fixture
def engine(settings: Settings) -> Iterator[sa.Engine]:
    engine = make_engine(settings.resolved_database_url())
    yield engine
    engine.dispose()


@pytest.fixture
def org(engine: sa.Engine) -> sa.Engine:
    """The database with the test organisation loaded (example.yaml + fixture orgs)."""
    load_test_config(engine)
    return engine


DEMO_AS_OF = "2026-11-12T18:00:00Z"  # a Thursday evening, mid-sprint, inside the demo history


class DemoOrg:
    """The demo organisation (84 days to 2026-11-16, seed 11) loaded through the real
    endpoints and rebuilt, once per backend per test session. Read-only for tests."""

    def __init__(self, url: str, settings: Settings) -> None:
        self.url = url
        self.settings = settings
        self.engine = make_engine(url)


def _load_demo_org(url: str, base: Path) -> DemoOrg:
    from dpp_lib.jobs.rebuild import rebuild
    from dpp_lib.orgconfig import read_config
    from dpp_lib.store.config_tables import apply_config
    from ingest_service.demo_load import load_demo
    from tests.support import EXAMPLE_CONFIG

    secrets_dir = base / "secrets"
    secrets_dir.mkdir(exist_ok=True)
    for name, value in TEST_SECRETS.items():
        (secrets_dir / name).write_text(value)
    settings = Settings(
        environment="test",
        database_url=url,
        secrets_dir=secrets_dir,
        var_dir=base,
        worker_backoff_seconds=0.0,
        deferred_enrichment_delay_seconds=0,
    )
    org = DemoOrg(url, settings)
    with org.engine.begin() as conn:
        apply_config(conn, read_config(EXAMPLE_CONFIG))
    report = load_demo(
        settings, days=84, seed=11, until="2026-11-16", config_file=EXAMPLE_CONFIG, progress=False
    )
    if report["inbox"]["dead"]:
        pytest.exit(f"demo load dead-lettered deliveries: {report['inbox']}", returncode=4)
    rebuild(org.engine, settings)
    return org


@pytest.fixture(scope="session")
def demo_sqlite(tmp_path_factory: pytest.TempPathFactory, sqlite_template: Path) -> DemoOrg:
    base = tmp_path_factory.mktemp("demo-sqlite")
    shutil.copy(sqlite_template, base / "demo.sqlite3")
    return _load_demo_org(f"sqlite:///{base / 'demo.sqlite3'}", base)


@pytest.fixture(scope="session")
def demo_postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoOrg]:
    problem = _pg_reachable()
    if problem:
        if IN_CI:
            pytest.exit(f"CI requires Postgres for the suite: {problem}", returncode=3)
        pytest.skip(f"Postgres at {PG_URL} is unreachable ({problem})")
    schema = f"dpp_demo_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    admin = make_engine(PG_URL)
    with admin.begin() as conn:
        conn.exec_driver_sql(f'create schema "{schema}"')
    url = f"{PG_URL}?options=-csearch_path%3D{schema}"
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    org = _load_demo_org(url, tmp_path_factory.mktemp("demo-postgres"))
    yield org
    org.engine.dispose()
    with admin.begin() as conn:
        conn.exec_driver_sql(f'drop schema "{schema}" cascade')
    admin.dispose()


@pytest.fixture(params=["sqlite", "postgres"])
def demo_org(request: pytest.FixtureRequest) -> DemoOrg:
    """The demo organisation on each backend (shared by the session: do not write to it)."""
    org: DemoOrg = request.getfixturevalue(f"demo_{request.param}")
    return org
