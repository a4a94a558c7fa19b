"""``dpp schedule check|list|run|runs`` and ``dpp scheduler``: the scheduled notebook jobs
of ``schedules/schedules.yaml`` (docs/notebooks/scheduler.md)."""

from __future__ import annotations

import json
import logging
import signal
import sys
import time
from datetime import datetime
from typing import Annotated, Any, NoReturn
from zoneinfo import ZoneInfo

import typer
import yaml

from dpp_lib.errors import DppError
from dpp_lib.settings import Settings, ensure_secrets

POLICY = """\
Missed runs: after a stop, each job's latest missed slot runs once at start (trigger
catch_up) if it is at most catch_up_minutes old (default: one period, so it always runs;
0: never). Older missed slots are recorded as one 'missed' row per gap and never run.
A slot runs at most once, across restarts and schedulers; a slot due while the job is
still running (anywhere) is recorded as 'skipped'. Runs whose process died are closed as
failed ('interrupted'); every failure raises the metric_computation_failure alert, which a
later success of the job resolves."""

schedule_app = typer.Typer(
    help="Scheduled notebook jobs (schedules/schedules.yaml): check, list, run now, history.\n\n"
    + POLICY,
    no_args_is_help=True,
)

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
EXIT_FAILED = 1
EXIT_SKIPPED = 3


def _settings() -> Settings:
    settings = Settings()
    ensure_secrets(settings)
    return settings


def _fail(message: str, code: int = 1) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def _local(moment: datetime | None, zone: ZoneInfo) -> str:
    if moment is None:
        return "-"
    return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M %Z")


def parse_params(pairs: list[str]) -> dict[str, Any]:
    """``k=v`` pairs: numbers and booleans as YAML reads them, anything else as text."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key.strip():
            raise DppError(f"--param {pair!r} is not KEY=VALUE")
        try:
            value = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError:
            value = raw
        out[key.strip()] = value if isinstance(value, bool | int | float) else raw
    return out


@schedule_app.command("check")
def check() -> None:
    """Validate the schedules file against the notebooks (no database needed); exit 1 with
    every problem, each naming the job and the field."""
    from dpp_lib.scheduler.config import load_schedules

    settings = Settings()
    try:
        schedules = load_schedules(settings.schedules_file, notebooks_dir=settings.notebooks_dir)
    except DppError as exc:
        _fail(exc.message)
    disabled = [j.name for j in schedules.jobs if not j.enabled]
    note = f" ({len(disabled)} disabled: {', '.join(disabled)})" if disabled else ""
    typer.echo(f"{settings.schedules_file}: {len(schedules.jobs)} jobs valid{note}")


@schedule_app.command("list")
def list_jobs(
    as_json: Annotated[bool, typer.Option("--json", help="JSON instead of a table")] = False,
) -> None:
    """Each job: cron, time zone, next run, last run (status and time), enabled."""
    from dpp_lib.scheduler import runs
    from dpp_lib.scheduler.runner import iso
    from dpp_lib.scheduler.service import build_runner

    try:
        runner = build_runner(_settings())
    except DppError as exc:
        _fail(exc.message)
    now = runner.clock()
    with runner.engine.connect() as conn:
        last = runs.latest_per_job(conn)
    zone = runner.time_zone
    rows = []
    for job in runner.schedules.jobs:
        nxt = runner.next_slot(job, now) if job.enabled else None
        run = last.get(job.name)
        rows.append(
            {
                "job": job.name,
                "enabled": job.enabled,
                "cron": job.cron,
                "time_zone": zone.key,
                "next_run": iso(nxt) if nxt else None,
                "last_status": run.status if run else None,
                "last_started_at": iso(run.started_at) if run and run.started_at else None,
                "notebook": str(job.notebook),
                "_next": _local(nxt, zone) if job.enabled else "disabled",
                "_last": f"{run.status} {_local(run.started_at, zone)}" if run else "never",
            }
        )
    if as_json:
        typer.echo(
            json.dumps([{k: v for k, v in r.items() if k[0] != "_"} for r in rows], indent=2)
        )
        return
    typer.echo(f"time zone {zone.key}; {runner.schedules.file}")
    typer.echo(f"{'JOB':18} {'CRON':14} {'NEXT RUN':22} {'LAST RUN'}")
    for row in rows:
        typer.echo(f"{row['job']:18} {row['cron']:14} {row['_next']:22} {row['_last']}")


@schedule_app.command("run")
def run(
    job: Annotated[str, typer.Argument(help="The job's name in the schedules file")],
    param: Annotated[
        list[str], typer.Option("--param", "-p", help="Override a parameter: KEY=VALUE")
    ] = [],  # noqa: B006
) -> None:
    """Run JOB now (trigger manual; also when disabled) and wait for it. as_of is now unless
    given. Exit 0 when it succeeded, 1 when it failed (the error is printed), 3 when it was
    skipped because the job is running elsewhere. Ctrl-C kills the run (recorded as
    failed, interrupted)."""
    from dpp_lib.scheduler.service import build_runner

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("dpp_lib.scheduler.runner").setLevel(logging.CRITICAL)  # printed below
    try:
        overrides = parse_params(param)
        runner = build_runner(_settings())
        runner.job(job)
    except DppError as exc:
        _fail(exc.message)
    # Ctrl-C or SIGTERM: the run's child is killed and the run recorded as interrupted
    previous = {s: signal.signal(s, lambda *_: runner.stop.set()) for s in STOP_SIGNALS}
    started = time.monotonic()
    try:
        result = runner.run_now(job, overrides)
    except DppError as exc:
        _fail(exc.message)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    took = time.monotonic() - started
    if result.status == "skipped":
        _fail(f"{job} skipped: {result.error}", EXIT_SKIPPED)
    typer.echo(f"{job}: run {result.run_id} {result.status} in {took:.1f} s")
    typer.echo(f"  executed notebook: {result.output_path}")
    if result.status != "succeeded":
        _fail(f"{job} failed: {result.error}", EXIT_FAILED)


@schedule_app.command("runs")
def run_history(
    job: Annotated[str | None, typer.Option(help="Only this job")] = None,
    limit: Annotated[int, typer.Option(min=1, help="How many, latest first")] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="JSON instead of a table")] = False,
) -> None:
    """Run history, latest first: runs, and the slots skipped or missed."""
    from dpp_lib.scheduler import runs
    from dpp_lib.scheduler.service import build_runner

    try:
        runner = build_runner(_settings())
        if job is not None:
            runner.job(job)
    except DppError as exc:
        _fail(exc.message)
    with runner.engine.connect() as conn:
        found = runs.history(conn, job_name=job, limit=limit)
    if as_json:
        typer.echo(json.dumps([_as_dict(r) for r in found], indent=2, default=str))
        return
    zone = runner.time_zone
    typer.echo(f"{'RECORDED':22} {'JOB':18} {'TRIGGER':9} {'STATUS':10} {'TOOK':>7}  RUN")
    for r in found:
        took = (
            f"{(r.finished_at - r.started_at).total_seconds():.0f} s"
            if r.finished_at and r.started_at
            else "-"
        )
        typer.echo(
            f"{_local(r.recorded_at, zone):22} {r.job_name:18} {r.trigger:9} {r.status:10} "
            f"{took:>7}  {str(r.run_id)[:8]}"
        )
        if r.scheduled_for:
            typer.echo(f"    slot   {_local(r.scheduled_for, zone)}")
        if r.output_path:
            typer.echo(f"    output {r.output_path}")
        if r.error:
            typer.echo(f"    error  {r.error.splitlines()[0][:300]}")


def _as_dict(r: Any) -> dict[str, Any]:
    from dataclasses import asdict

    return {k: v.isoformat() if isinstance(v, datetime) else v for k, v in asdict(r).items()}


def scheduler_command(
    verbose: Annotated[bool, typer.Option(help="Debug logging")] = False,
) -> None:
    """Run the scheduled jobs in the foreground (APScheduler, one at a time per job);
    Ctrl-C or SIGTERM stops it, killing a running notebook (recorded as interrupted).

    Missed runs: at start each job's latest missed slot runs once if it is at most
    catch_up_minutes old (default one period: always); older ones are recorded as missed."""
    from dpp_lib.scheduler.service import SchedulerService, build_runner

    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger("alembic").setLevel(logging.WARNING)
    try:
        service = SchedulerService.create(build_runner(_settings()), background=False)
    except DppError as exc:
        _fail(exc.message)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    typer.echo(f"scheduler: {service.describe()} (Ctrl-C stops)", err=True)
    try:
        service.start()  # blocks
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        service.stop()
    typer.echo("scheduler stopped", err=True)
