"""The scheduler's decisions with a controllable clock and a recording executor, on both
backends: due slots run once, restarts follow the catch-up policy, runs never overlap
(also across runner instances sharing the database), failures are recorded and alerted."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from dpp_lib.scheduler.execute import Execution, Outcome
from dpp_lib.scheduler.runner import SchedulerError
from dpp_lib.store.schema import schedule_runs, system_alerts
from dpp_lib.views.alerts import active_alerts
from tests.scheduler.conftest import HOURLY, FakeExecutor, Kit, make_job

SLOT = datetime(2026, 11, 10, 10, 10, tzinfo=UTC)


def _alerts(kit: Kit) -> dict[str, dict[str, Any]]:
    with kit.engine.connect() as conn:
        return {a["condition"]: a for a in active_alerts(conn)}


def test_a_due_slot_runs_once(kit: Kit) -> None:
    executor = FakeExecutor()
    runner = kit.runner(executor=executor)
    first = runner.run_slot(HOURLY, SLOT, kit.clock())
    again = runner.run_slot(HOURLY, SLOT, kit.clock.advance(seconds=30))
    assert first is not None and first.status == "succeeded" and again is None
    assert len(executor.calls) == 1
    call = executor.calls[0]
    assert call.parameters == {"as_of": "2026-11-10T10:10:00Z", "n": 2}
    assert call.timeout_seconds == 300
    assert call.output == kit.reports.resolve() / (
        f"runs/hourly/2026-11-10/hourly-101000-{first.run_id.hex[:8]}.ipynb"
    )
    (row,) = kit.rows()
    assert (row.status, row.trigger, row.scheduled_for) == ("succeeded", "schedule", SLOT)
    assert row.started_at == row.finished_at - timedelta(seconds=0) and row.error is None
    assert row.pid == os.getpid() and row.host == socket.gethostname()
    assert row.parameters == {"as_of": "2026-11-10T10:10:00Z", "n": 2}


def test_fire_runs_the_latest_slot_and_labels_catch_ups(kit: Kit) -> None:
    executor = FakeExecutor()
    runner = kit.runner(executor=executor)  # started at 10:10:05
    result = runner.fire("daily")  # 01:30 today, before the runner started
    assert result is not None and (result.trigger, result.scheduled_for) == (
        "catch_up",
        datetime(2026, 11, 10, 1, 30, tzinfo=UTC),
    )
    kit.clock.now = datetime(2026, 11, 10, 11, 10, 0, tzinfo=UTC)
    result = runner.fire("hourly")
    assert result is not None and result.trigger == "schedule"
    assert result.scheduled_for == datetime(2026, 11, 10, 11, 10, tzinfo=UTC)
    assert runner.fire("hourly") is None  # APScheduler firing twice: the slot ran
    assert len(executor.calls) == 2


def test_a_restart_catches_up_the_latest_slot_and_records_the_gap(kit: Kit) -> None:
    before = FakeExecutor()
    kit.runner(executor=before).run_slot(HOURLY, SLOT, kit.clock())
    # stopped from 10:11 to 15:30; a new process starts
    kit.clock.now = datetime(2026, 11, 10, 15, 30, tzinfo=UTC)
    executor = FakeExecutor()
    results = kit.runner(executor=executor).catch_up(kit.clock())
    ran = {(r.job, r.trigger, r.scheduled_for, r.status) for r in results}
    assert ran == {
        ("hourly", "catch_up", datetime(2026, 11, 10, 15, 10, tzinfo=UTC), "succeeded"),
        # never run before: its latest slot runs, no earlier history is invented
        ("daily", "catch_up", datetime(2026, 11, 10, 1, 30, tzinfo=UTC), "succeeded"),
    }
    assert [c.parameters["as_of"] for c in executor.calls] == [
        "2026-11-10T15:10:00Z",
        "2026-11-10T01:30:00Z",
    ]
    missed = [r for r in kit.rows("hourly") if r.status == "missed"]
    assert len(missed) == 1  # one row for the gap, naming it
    assert missed[0].scheduled_for == datetime(2026, 11, 10, 14, 10, tzinfo=UTC)
    assert missed[0].parameters == {
        "missed_slots": 4,
        "first": "2026-11-10T11:10:00Z",
        "last": "2026-11-10T14:10:00Z",
    }
    assert "4 slots not run" in missed[0].error
    assert len(kit.rows("daily")) == 1

    # another restart a minute later: nothing to do, nothing recorded twice
    kit.clock.advance(minutes=1)
    again = FakeExecutor()
    assert kit.runner(executor=again).catch_up(kit.clock()) == []
    assert again.calls == [] and len(kit.rows()) == 4


def test_a_slot_older_than_the_catch_up_window_is_missed_not_run(kit: Kit) -> None:
    strict = make_job("hourly", "10 * * * *", catch_up=timedelta(minutes=5))
    never = make_job("daily", "30 1 * * *", catch_up=timedelta(0))
    executor = FakeExecutor()
    kit.clock.now = datetime(2026, 11, 10, 15, 30, tzinfo=UTC)
    assert kit.runner(strict, never, executor=executor).catch_up(kit.clock()) == []
    assert executor.calls == []
    rows = {r.job_name: r for r in kit.rows()}
    assert rows["hourly"].status == "missed"
    assert rows["hourly"].scheduled_for == datetime(2026, 11, 10, 15, 10, tzinfo=UTC)
    assert "too late to catch up" in rows["hourly"].error
    assert rows["daily"].status == "missed"
    # APScheduler firing late (a suspended process) follows the same window
    late = kit.runner(strict, executor=executor).run_slot(
        strict, datetime(2026, 11, 10, 16, 10, tzinfo=UTC), kit.clock.advance(minutes=50)
    )
    assert late is not None and late.status == "missed" and executor.calls == []


def test_disabled_jobs_are_not_caught_up(kit: Kit) -> None:
    off = make_job("daily", "30 1 * * *", enabled=False)
    executor = FakeExecutor()
    kit.runner(HOURLY, off, executor=executor).catch_up(kit.clock())
    assert [c.job for c in executor.calls] == ["hourly"]


def test_no_overlap_across_runner_instances(kit: Kit) -> None:
    """While runner A runs the job, runner B (another process, same database) refuses
    to run it: the next slot and a manual run are recorded as skipped, naming A's run;
    A's own slot is not run twice."""
    b_executor = FakeExecutor()
    b = kit.runner(executor=b_executor)
    seen: dict[str, Any] = {}

    def while_a_runs(execution: Execution) -> None:
        seen["same_slot"] = b.run_slot(HOURLY, SLOT, kit.clock())
        seen["next_slot"] = b.run_slot(HOURLY, SLOT + timedelta(hours=1), kit.clock())
        seen["manual"] = b.run_now("hourly")
        seen["other_job"] = b.run_now("daily")

    a = kit.runner(executor=FakeExecutor(during=while_a_runs))
    result = a.run_slot(HOURLY, SLOT, kit.clock())
    assert result is not None and result.status == "succeeded"
    assert seen["same_slot"] is None
    assert seen["next_slot"].status == "skipped" and seen["manual"].status == "skipped"
    assert str(result.run_id) in seen["next_slot"].error
    assert "already running" in seen["manual"].error
    assert seen["other_job"].status == "succeeded"  # one at a time per job, not globally
    assert [c.job for c in b_executor.calls] == ["daily"]
    statuses = sorted((r.trigger, r.status) for r in kit.rows("hourly"))
    assert statuses == [("manual", "skipped"), ("schedule", "skipped"), ("schedule", "succeeded")]
    # once A has finished, B runs the job
    assert b.run_now("hourly").status == "succeeded"


def test_the_database_refuses_a_second_running_row(kit: Kit) -> None:
    values = {"job_name": "hourly", "trigger": "manual", "status": "running"}
    with kit.engine.begin() as conn:
        conn.execute(schedule_runs.insert().values(recorded_at=SLOT, **values))
    with pytest.raises(sa.exc.IntegrityError), kit.engine.begin() as conn:
        conn.execute(schedule_runs.insert().values(recorded_at=SLOT, **values))


def test_a_failure_is_recorded_and_alerted_until_a_success(kit: Kit) -> None:
    executor = FakeExecutor(outcomes=[Outcome("failed", "ValueError: bad window (code cell 2)")])
    runner = kit.runner(executor=executor)
    failed = runner.run_slot(HOURLY, SLOT, kit.clock())
    assert failed is not None and failed.status == "failed"
    (row,) = kit.rows()
    assert row.status == "failed" and row.error == "ValueError: bad window (code cell 2)"
    alert = _alerts(kit)["metric_computation_failure:hourly"]
    assert alert["severity"] == "HIGH"
    assert "hourly: ValueError: bad window" in alert["message"]

    kit.clock.advance(hours=1)
    runner.run_slot(HOURLY, SLOT + timedelta(hours=1), kit.clock())
    assert "metric_computation_failure:hourly" not in _alerts(kit)
    with kit.engine.connect() as conn:
        resolved = conn.execute(sa.select(system_alerts.c.resolved_at)).scalar_one()
    assert resolved == kit.clock()


def test_an_executor_that_breaks_is_a_recorded_failure(kit: Kit) -> None:
    runner = kit.runner(executor=FakeExecutor(outcomes=[OSError("no such interpreter")]))
    result = runner.run_now("hourly")
    assert result.status == "failed" and result.error == "OSError: no such interpreter"
    assert kit.rows()[0].status == "failed"


def test_ctrl_c_during_a_foreground_run_records_it_as_interrupted(kit: Kit) -> None:
    runner = kit.runner(executor=FakeExecutor(outcomes=[KeyboardInterrupt()]))
    with pytest.raises(KeyboardInterrupt):
        runner.run_now("hourly")
    (row,) = kit.rows()
    assert (row.status, row.error) == ("failed", "interrupted")
    assert "metric_computation_failure:hourly" in _alerts(kit)


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def _running_row(kit: Kit, **values: Any) -> None:
    with kit.engine.begin() as conn:
        conn.execute(
            schedule_runs.insert().values(
                job_name="hourly",
                trigger="schedule",
                status="running",
                recorded_at=SLOT - timedelta(hours=1),
                started_at=SLOT - timedelta(hours=1),
                scheduled_for=SLOT - timedelta(hours=1),
                **values,
            )
        )


def test_a_run_whose_process_died_is_closed_as_interrupted(kit: Kit) -> None:
    from dpp_lib.scheduler.execute import pid_alive

    pid = _dead_pid()
    _running_row(kit, host=socket.gethostname(), pid=pid, deadline_at=SLOT + timedelta(hours=5))
    runner = kit.runner(alive=pid_alive)
    (closed,) = runner.close_stale(kit.clock())  # also done before every run
    old = kit.rows("hourly")[0]
    assert closed.run_id == old.run_id
    assert old.status == "failed" and old.finished_at == kit.clock()
    assert old.error.startswith(f"interrupted: process {pid} on {socket.gethostname()} ended")
    assert "interrupted" in _alerts(kit)["metric_computation_failure:hourly"]["message"]
    result = runner.run_slot(HOURLY, SLOT, kit.clock())
    assert result is not None and result.status == "succeeded"
    assert _alerts(kit) == {}


def test_a_run_elsewhere_blocks_until_its_deadline(kit: Kit) -> None:
    _running_row(kit, host="elsewhere", pid=1, deadline_at=SLOT + timedelta(minutes=20))
    runner = kit.runner()
    blocked = runner.run_slot(HOURLY, SLOT, kit.clock())
    assert blocked is not None and blocked.status == "skipped"
    assert "pid 1 on elsewhere" in (blocked.error or "")
    kit.clock.now = SLOT + timedelta(hours=1, minutes=0, seconds=5)  # past the deadline
    result = runner.run_slot(HOURLY, SLOT + timedelta(hours=1), kit.clock())
    assert result is not None and result.status == "succeeded"
    stale = kit.rows("hourly")[0]
    assert stale.status == "failed" and "timeout plus grace" in stale.error


def test_manual_runs_check_their_parameters(kit: Kit) -> None:
    executor = FakeExecutor()
    runner = kit.runner(executor=executor)
    with pytest.raises(SchedulerError, match="no parameter"):
        runner.run_now("hourly", {"window_days": 3})
    with pytest.raises(SchedulerError, match="database_url is never passed"):
        runner.run_now("hourly", {"database_url": "postgresql://u:p@h/db"})
    with pytest.raises(SchedulerError, match="unknown job 'nope'; known: hourly, daily"):
        runner.run_now("nope")
    result = runner.run_now("hourly", {"n": 5, "as_of": "2026-11-01T00:00:00Z"})
    assert result.status == "succeeded" and result.trigger == "manual"
    assert executor.calls[0].parameters == {"as_of": "2026-11-01T00:00:00Z", "n": 5}
    assert kit.rows()[0].scheduled_for is None
