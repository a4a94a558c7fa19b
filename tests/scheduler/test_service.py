"""APScheduler wiring: one cron job per enabled entry (max_instances=1, coalesce), the
catch-up fired at start, a stop that interrupts a running notebook and records it; the
organisation's time zone; ``dpp up``'s background scheduler."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from dpp_lib.scheduler.execute import Execution, Outcome
from dpp_lib.scheduler.service import SchedulerService, org_time_zone, running_scheduler
from dpp_lib.settings import Settings
from tests.scheduler.conftest import DAILY, HOURLY, NOTEBOOKS, FakeExecutor, Kit, make_job

SQLITE_ONLY = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


def _until(condition: object, seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.02)


def test_the_organisations_time_zone(engine: sa.Engine, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        assert org_time_zone(engine).key == "UTC"
    assert "no organisation config is loaded" in caplog.text
    from tests.support import load_test_config

    load_test_config(engine)
    assert org_time_zone(engine).key == "Europe/London"


@SQLITE_ONLY
def test_jobs_are_added_and_missed_slots_caught_up_at_start(kit: Kit) -> None:
    executor = FakeExecutor()
    paused = make_job("paused", "0 5 * * *", enabled=False)
    runner = kit.runner(HOURLY, DAILY, paused, executor=executor)
    service = SchedulerService.create(runner, background=True)
    service.start()
    try:
        _until(lambda: len(executor.calls) == 2)
        jobs = {j.id: j for j in service.scheduler.get_jobs()}
        assert set(jobs) == {"hourly", "daily"}
        for name, job in jobs.items():
            assert (job.max_instances, job.coalesce, job.misfire_grace_time) == (1, True, None)
            assert job.trigger is runner.crons[name].trigger
            assert job.args == (name,)
    finally:
        service.stop()
    assert not service.scheduler.running
    assert sorted((r.job_name, r.trigger, r.status) for r in kit.rows()) == [
        ("daily", "catch_up", "succeeded"),
        ("hourly", "catch_up", "succeeded"),
    ]
    assert service.describe().startswith("2 jobs in Europe/London, next hourly at ")


class Hangs:
    """An executor that runs until it is cancelled."""

    def __init__(self) -> None:
        self.started = threading.Event()

    def __call__(self, execution: Execution, cancel: threading.Event) -> Outcome:
        self.started.set()
        cancel.wait(30)
        return Outcome("failed", "interrupted: the scheduler was stopped", interrupted=True)


@SQLITE_ONLY
def test_stopping_interrupts_a_running_job_and_records_it(kit: Kit) -> None:
    executor = Hangs()
    service = SchedulerService.create(kit.runner(HOURLY, executor=executor), background=True)
    service.start()
    assert executor.started.wait(20)
    service.stop()  # returns once the run is recorded
    (row,) = kit.rows()
    assert (row.status, row.error) == ("failed", "interrupted: the scheduler was stopped")


@SQLITE_ONLY
def test_dpp_up_starts_the_scheduler_unless_disabled(settings: Settings, tmp_path: Path) -> None:
    schedules = tmp_path / "schedules.yaml"
    schedules.write_text(
        "jobs:\n  echo:\n    cron: '*/5 * * * *'\n    notebook: succeeds.ipynb\n"
        "    timeout_minutes: 1\n    catch_up_minutes: 0\n"
    )
    ours = settings.model_copy(
        update={"schedules_file": schedules, "notebooks_dir": NOTEBOOKS, "reports_dir": tmp_path}
    )
    with running_scheduler(ours.model_copy(update={"scheduler_enabled": False})) as off:
        assert off is None
    with running_scheduler(ours) as service:
        assert service is not None and service.scheduler.running
        assert [j.id for j in service.scheduler.get_jobs()] == ["echo"]
        assert service.describe().startswith("1 job in UTC, next echo at ")
    assert not service.scheduler.running
    with service.runner.engine.connect() as conn:
        (status,) = conn.execute(sa.text("select status from schedule_runs")).one()
    assert status == "missed"  # catch_up_minutes: 0 — the latest slot is recorded, not run
