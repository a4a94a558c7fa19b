"""Scheduler test kit: a clock the test moves, an executor that records its calls and can
fail or act while "running", and runners on the test database (both backends)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import MappingProxyType
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from dpp_lib.scheduler.config import DEFAULT_OUTPUT, Job, Schedules
from dpp_lib.scheduler.execute import Execution, Executor, Outcome
from dpp_lib.scheduler.runner import JobRunner
from dpp_lib.settings import Settings

NOTEBOOKS = Path(__file__).parent / "notebooks"
LONDON = ZoneInfo("Europe/London")
# Tuesday 10 November 2026, 10:10:05 UTC (London is on GMT): just after the hourly slot
T0 = datetime(2026, 11, 10, 10, 10, 5, tzinfo=UTC)


@dataclass
class Clock:
    now: datetime = T0

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


@dataclass
class FakeExecutor:
    """Records every execution; returns the queued outcomes in turn (then succeeds).
    ``during`` runs while the run is "running" (its row says so in the database)."""

    outcomes: list[Outcome | BaseException] = field(default_factory=list)
    during: Callable[[Execution], None] | None = None
    calls: list[Execution] = field(default_factory=list)

    def __call__(self, execution: Execution, cancel: threading.Event) -> Outcome:
        self.calls.append(execution)
        if self.during is not None:
            self.during(execution)
        if not self.outcomes:
            return Outcome("succeeded")
        outcome = self.outcomes.pop(0)
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome


def make_job(name: str, cron: str, **overrides: Any) -> Job:
    values: dict[str, Any] = {
        "name": name,
        "cron": cron,
        "notebook": (NOTEBOOKS / "succeeds.ipynb").resolve(),
        "parameters": MappingProxyType({"n": 2}),
        "output": DEFAULT_OUTPUT,
        "timeout": timedelta(minutes=5),
        "catch_up": None,
        "notebook_parameters": frozenset({"as_of", "n", "label"}),
    }
    values.update(overrides)
    return Job(**values)


HOURLY = make_job("hourly", "10 * * * *")
DAILY = make_job("daily", "30 1 * * *")


@dataclass
class Kit:
    """Builds runners sharing one database, clock and reports directory."""

    engine: sa.Engine
    reports: Path
    clock: Clock = field(default_factory=Clock)

    def runner(
        self,
        *jobs: Job,
        executor: Executor | None = None,
        alive: Callable[[int], bool] = lambda pid: True,
        **kwargs: Any,
    ) -> JobRunner:
        return JobRunner(
            self.engine,
            Schedules(Path("schedules.yaml"), jobs or (HOURLY, DAILY)),
            reports_dir=self.reports,
            executor=executor or FakeExecutor(),
            time_zone=LONDON,
            clock=self.clock,
            alive=alive,
            **kwargs,
        )

    def rows(self, job: str | None = None) -> list[Any]:
        from dpp_lib.store.schema import schedule_runs as r

        query = sa.select(r).order_by(r.c.recorded_at, r.c.scheduled_for)
        if job:
            query = query.where(r.c.job_name == job)
        with self.engine.connect() as conn:
            return list(conn.execute(query))


@pytest.fixture
def kit(engine: sa.Engine, settings: Settings) -> Kit:
    return Kit(engine, settings.var_dir / "reports")
