"""The ``dpp`` command (Typer). Thin: parse arguments, call the library, print the result."""

from __future__ import annotations

import json
import logging
import os
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import sqlalchemy as sa
import typer
from rich.progress import TaskID

from dpp_lib.cli_access import apikey_rotate, group_app, role_app, user_app
from dpp_lib.cli_reports import report_app
from dpp_lib.cli_schedule import schedule_app, scheduler_command
from dpp_lib.errors import DppError
from dpp_lib.settings import Settings, ensure_secrets

app = typer.Typer(
    help="Delivery Performance Platform", no_args_is_help=True, pretty_exceptions_enable=False
)
db_app = typer.Typer(help="Database schema", no_args_is_help=True)
config_app = typer.Typer(help="Organisation configuration", no_args_is_help=True)
apikey_app = typer.Typer(
    help="API keys for pipelines, monitoring and integrations", no_args_is_help=True
)
inbox_app = typer.Typer(help="The raw event inbox", no_args_is_help=True)
secrets_app = typer.Typer(help="Secrets in DPP_SECRETS_DIR", no_args_is_help=True)
metrics_app = typer.Typer(help="The metric engine", no_args_is_help=True)
api_app = typer.Typer(help="The platform API", no_args_is_help=True)
dashboards_app = typer.Typer(help="The Voila dashboards", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(config_app, name="config")
app.add_typer(apikey_app, name="apikey")
app.add_typer(inbox_app, name="inbox")
app.add_typer(secrets_app, name="secrets")
app.add_typer(metrics_app, name="metrics")
app.add_typer(api_app, name="api")
app.add_typer(user_app, name="user")
app.add_typer(role_app, name="role")
app.add_typer(group_app, name="group")
apikey_app.command("rotate")(apikey_rotate)
app.add_typer(dashboards_app, name="dashboards")
app.add_typer(schedule_app, name="schedule")
app.command("scheduler")(scheduler_command)
app.add_typer(report_app, name="report")


def _settings() -> Settings:
    settings = Settings()
    ensure_secrets(settings)
    return settings


def _engine(settings: Settings) -> sa.Engine:
    from dpp_lib.store.db import make_engine

    return make_engine(settings.resolved_database_url())


def _fail(message: str, code: int = 1) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def _setup_logging(verbose: bool = False) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    for noisy in ("httpx", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply the migration chain (creates every table on a new database)."""
    from dpp_lib.store.migrate import upgrade

    settings = _settings()
    revision = upgrade(_engine(settings))
    typer.echo(f"database at revision {revision}")


@config_app.command("load")
def config_load(file: Path) -> None:
    """Load the org config FILE (idempotent; an invalid file changes nothing)."""
    from dpp_lib.orgconfig import read_config
    from dpp_lib.store.audit import record
    from dpp_lib.store.config_tables import apply_config

    try:
        cfg = read_config(file)
    except DppError as exc:
        _fail(exc.message)
    settings = _settings()
    with _engine(settings).begin() as conn:
        changes = apply_config(conn, cfg)
        if changes:
            record(
                conn,
                actor_type="cli",
                action="config.load",
                target_type="file",
                target_id=str(file),
                details=dict(changes),
            )
    summary = ", ".join(f"{k} {v}" for k, v in sorted(changes.items())) or "no changes"
    typer.echo(f"loaded {file}: {summary}")


def _stream_ids(conn: sa.Connection, names: list[str], kind: str) -> list[uuid.UUID]:
    from dpp_lib.store.config_tables import load_lookups

    lookups = load_lookups(conn)
    out = []
    for name in names:
        found = (
            lookups.delivery_stream(name) if kind == "delivery" else lookups.tech_stream_id(name)
        )
        if found is None:
            _fail(f"unknown {kind} stream {name!r}")
        else:
            out.append(found)
    return out


@apikey_app.command("create")
def apikey_create(
    name: Annotated[str, typer.Option(help="Who or what uses the key")],
    permissions: Annotated[str, typer.Option(help="events:write[,metrics:read,admin]")],
    delivery_stream: Annotated[list[str], typer.Option(help="Restrict to a delivery stream")] = [],  # noqa: B006
    tech_stream: Annotated[list[str], typer.Option(help="Restrict to a tech stream")] = [],  # noqa: B006
    expires_days: Annotated[int | None, typer.Option(help="Expire after N days")] = None,
) -> None:
    """Create an API key; the key is printed once, as the last line of stdout."""
    from dpp_lib.store.api_keys import create_key
    from dpp_lib.store.audit import record

    settings = _settings()
    with _engine(settings).begin() as conn:
        try:
            key, plaintext = create_key(
                conn,
                name=name,
                permissions=[p.strip() for p in permissions.split(",")],
                delivery_streams=_stream_ids(conn, delivery_stream, "delivery"),
                tech_streams=_stream_ids(conn, tech_stream, "tech"),
                expires_days=expires_days,
            )
        except DppError as exc:
            _fail(exc.message)
        record(
            conn,
            actor_type="cli",
            action="api_key.create",
            target_type="api_key",
            target_id=str(key.key_id),
            details={"name": key.display_name, "permissions": list(key.permissions)},
        )
    typer.echo(
        f"created API key {key.key_id} ({key.key_prefix}…) for {key.display_name}; "
        "store it now, it is not shown again:"
    )
    typer.echo(plaintext)


@apikey_app.command("list")
def apikey_list() -> None:
    """List API keys (never the keys themselves) as JSON."""
    from dpp_lib.store.api_keys import list_keys

    with _engine(_settings()).connect() as conn:
        keys = list_keys(conn)
    typer.echo(
        json.dumps(
            [
                {
                    "key_id": str(k.key_id),
                    "prefix": k.key_prefix,
                    "name": k.display_name,
                    "permissions": list(k.permissions),
                    "active": k.is_active,
                    "delivery_streams": sorted(map(str, k.delivery_streams or [])) or None,
                    "tech_streams": sorted(map(str, k.tech_streams or [])) or None,
                    "expires_at": k.expires_at.isoformat() if k.expires_at else None,
                    "last_used_at": k.last_used_at.isoformat() if k.last_used_at else None,
                }
                for k in keys
            ],
            indent=2,
        )
    )


@apikey_app.command("revoke")
def apikey_revoke(key: Annotated[str, typer.Argument(help="Key id or displayed prefix")]) -> None:
    """Revoke an API key; requests with it get 401 from now on."""
    from dpp_lib.store.api_keys import revoke_key
    from dpp_lib.store.audit import record

    with _engine(_settings()).begin() as conn:
        try:
            revoked = revoke_key(conn, key)
        except DppError as exc:
            _fail(exc.message)
        record(
            conn,
            actor_type="cli",
            action="api_key.revoke",
            target_type="api_key",
            target_id=str(revoked.key_id),
        )
    typer.echo(f"revoked {revoked.key_id} ({revoked.display_name})")


@app.command("worker")
def worker(
    once: Annotated[bool, typer.Option("--once", help="Drain what is due, then exit")] = False,
    verbose: bool = False,
) -> None:
    """Process the inbox: normalise, deduplicate, enrich, store."""
    from ingest_service.worker import Worker

    _setup_logging(verbose)
    settings = _settings()
    if settings.worker_nice and hasattr(os, "nice"):
        # The worker is throughput work behind a durable inbox; the API's requests are the
        # latency-sensitive part, so on a shared machine the worker yields the CPU to them.
        os.nice(settings.worker_nice)
    w = Worker.from_settings(settings)
    if once:
        n = w.drain()
        typer.echo(json.dumps({"processed": n, **w.stats.__dict__}))
    else:
        w.run_forever()


@inbox_app.command("status")
def inbox_status_cmd() -> None:
    """Counts of inbox rows per state, as JSON."""
    from ingest_service.worker import inbox_status

    with _engine(_settings()).connect() as conn:
        typer.echo(json.dumps(inbox_status(conn), indent=2))


@inbox_app.command("retry")
def inbox_retry() -> None:
    """Requeue every dead-lettered delivery."""
    from ingest_service.worker import retry_dead

    with _engine(_settings()).begin() as conn:
        n = retry_dead(conn)
    typer.echo(f"requeued {n} dead-lettered deliveries")


@secrets_app.command("init")
def secrets_init() -> None:
    """Create missing secrets (random, mode 0600); never prints them."""
    settings = Settings()
    created = ensure_secrets(settings)
    typer.echo(
        f"created: {', '.join(created) or 'nothing (all present)'} in {settings.secrets_dir}"
    )


@app.command("serve")
def serve(host: str | None = None, port: int | None = None, workers: int = 1) -> None:
    """Run the HTTP API only."""
    from ingest_service.runtime import serve_api

    _setup_logging()
    settings = _settings()
    serve_api(settings, host=host or settings.host, port=port or settings.port, workers=workers)


@app.command("up")
def up(host: str | None = None, port: int | None = None) -> None:
    """Run the API, the worker, the dashboards (Voila on loopback) and the scheduler
    (schedules/schedules.yaml; off with DPP_SCHEDULER_ENABLED=false) together."""
    import signal

    from dpp_lib.dashboards.voila import running_voila
    from dpp_lib.scheduler.service import running_scheduler
    from ingest_service.runtime import run_platform

    _setup_logging()
    settings = _settings()
    # uvicorn re-raises the SIGTERM it handled once it has stopped; as SystemExit it lets the
    # cleanup below stop the worker and Voila (the default action killed the process first,
    # leaving Voila and its kernels running).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        with running_voila(settings) as voila, running_scheduler(settings) as scheduler:
            if voila is not None:
                front = f"http://{host or settings.host}:{port or settings.port}/dashboards/"
                print(f"  dashboards  {front} (Voila on {voila.url}, sign-in required)")
            if scheduler is not None:
                print(f"  scheduler   {scheduler.describe()} (`dpp schedule list`)")
            run_platform(settings, host=host, port=port)
    except DppError as exc:
        _fail(str(exc))


@dashboards_app.command("serve")
def dashboards_serve() -> None:
    """Run Voila alone on loopback (when the API runs as `dpp serve`); Ctrl-C stops it."""
    import signal

    from dpp_lib.dashboards.voila import VoilaServer

    _setup_logging()
    settings = _settings()
    # Stop Voila and its kernels on Ctrl-C and on SIGTERM (a service manager), even when
    # started in the background with SIGINT ignored.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        with VoilaServer(settings) as voila:
            typer.echo(f"Voila on {voila.url}/dashboards/ behind the API's /dashboards/ (Ctrl-C)")
            code = voila.wait()
        _fail(f"Voila exited with code {code}; see {voila.log_to}")
    except KeyboardInterrupt:
        pass
    except DppError as exc:
        _fail(str(exc))


@app.command("lab")
def lab(
    port: Annotated[int, typer.Option(help="Loopback port for JupyterLab")] = 8888,
    browser: Annotated[bool, typer.Option(help="Open a browser tab")] = True,
) -> None:
    """JupyterLab with the project's kernel, opening notebooks/explore/getting_started.ipynb
    (`make lab` loads the demo organisation first on a new install)."""
    from dpp_lib import lab as jupyter_lab

    settings = _settings()
    jupyter_lab.prepare(settings)
    argv = jupyter_lab.lab_argv(settings, port=port, open_browser=browser)
    os.execve(argv[0], argv, jupyter_lab.lab_env(settings))


@app.command("demo")
def demo(
    action: Annotated[str, typer.Argument(help="load")],
    days: int = 180,
    seed: int = 7,
    until: Annotated[str | None, typer.Option(help="Last day (YYYY-MM-DD); default today")] = None,
    url: Annotated[str | None, typer.Option(help="Send to a running API instead")] = None,
    if_empty: Annotated[bool, typer.Option(help="Only when no events exist yet")] = False,
    config: Annotated[Path, typer.Option(help="The loaded org config file")] = Path(
        "config/example.yaml"
    ),
) -> None:
    """Generate the demo organisation's history and send it through the real endpoints."""
    from ingest_service.demo_load import load_demo

    if action != "load":
        _fail(f"unknown demo action {action!r}; use 'load'")
    _setup_logging()
    try:
        report = load_demo(
            _settings(), days=days, seed=seed, until=until, url=url, if_empty=if_empty
        )
    except DppError as exc:
        _fail(exc.message)
    typer.echo(json.dumps(report, indent=2))


@api_app.command("examples")
def api_examples(
    write: Annotated[bool, typer.Option(help="Write ingest_service/openapi_examples.json")] = False,
) -> None:
    """Regenerate the OpenAPI examples: real answers of the demo organisation (about 40 s)."""
    from ingest_service.examples import generate_from_demo
    from ingest_service.examples import write as write_examples
    from ingest_service.openapi import EXAMPLES_FILE

    _setup_logging()
    found = generate_from_demo()
    if write:
        write_examples(found, EXAMPLES_FILE)
        typer.echo(f"wrote {len(found)} examples to {EXAMPLES_FILE}")
    else:
        typer.echo(json.dumps(found, indent=1, ensure_ascii=False))


@app.command("rebuild")
def rebuild_cmd(
    from_inbox: Annotated[
        bool, typer.Option("--from-inbox", help="Re-normalise every raw inbox row first")
    ] = False,
) -> None:
    """Drop every projection and computed table and recompute them from the stored events."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    from dpp_lib.jobs.rebuild import rebuild

    settings = _settings()
    engine = _engine(settings)
    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        transient=False,
    ) as bar:
        tasks: dict[str, TaskID] = {}

        def progress(step: str, done: int, total: int) -> None:
            if step not in tasks:
                tasks[step] = bar.add_task(step, total=total or 1)
            bar.update(tasks[step], completed=done if total else 1)

        report = rebuild(engine, settings, from_inbox=from_inbox, progress=progress)
    typer.echo(json.dumps({"reprocessed": report.reprocessed_deliveries, **report.counts}))


@metrics_app.command("materialise")
def metrics_materialise(
    as_of: Annotated[
        str | None, typer.Option("--as-of", help="ISO 8601 moment with a zone; default now")
    ] = None,
) -> None:
    """Write the day's computed tables for every stream (re-running replaces the day)."""
    from dpp_lib.jobs.materialise import materialise
    from dpp_lib.views.alerts import computation_alerts

    moment = datetime.now(UTC)
    if as_of is not None:
        try:
            moment = datetime.fromisoformat(as_of.replace("Z", "+00:00"))
        except ValueError:
            _fail(f"--as-of {as_of!r} is not an ISO 8601 date-time")
        if moment.tzinfo is None:
            _fail(f"--as-of {as_of!r} has no time zone (add Z or +01:00)")
    settings = _settings()
    engine = _engine(settings)
    with computation_alerts(engine, job="materialise"):  # failure: HIGH alert until a success
        report = materialise(engine, as_of=moment)
    typer.echo(json.dumps({"metric_date": report.metric_date.isoformat(), **report.rows}))


@metrics_app.command("list")
def metrics_list() -> None:
    """Every registered metric with its spec section and the question it answers."""
    from dpp_lib.metrics.registry import load_all

    for name, info in load_all().items():
        typer.echo(f"{name:28} {info.spec:12} {info.summary}")


if __name__ == "__main__":
    app()
