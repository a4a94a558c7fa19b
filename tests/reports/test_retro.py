"""Reading a sprint for its retro, on both backends: which sprint and window, numbers that
are the metric functions' own, errors that name the unknown stream or sprint, and sections
that say what is missing instead of drawing an empty chart."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest
import sqlalchemy as sa

from dpp_lib.metrics import flow
from dpp_lib.metrics.common import Scope
from dpp_lib.notebook import NotebookParameterError
from dpp_lib.reports import retro, sections
from dpp_lib.reports.errors import UnknownSprint
from dpp_lib.store import read
from dpp_lib.store.schema import sprint_snapshots
from tests.conftest import DemoOrg

NOW = datetime(2026, 11, 16, 6, tzinfo=UTC)


def _retro(org: DemoOrg, **kw: Any) -> retro.SprintRetro:
    with org.engine.connect() as conn:
        return retro.sprint_retro(conn, now=NOW, **kw)


def test_a_closed_sprint_is_read_over_its_own_days(demo_org: DemoOrg) -> None:
    r = _retro(demo_org, stream="payments", sprint="pay-sprint-104")  # by its file name
    assert r.sprint.name == "PAY Sprint 104" and not r.is_open
    # Mon 19 Oct – Fri 30 Oct, Europe/London: the window ends at local midnight after it.
    assert (r.sprint.start_date, r.sprint.end_date) == (date(2026, 10, 19), date(2026, 10, 30))
    assert r.as_of == datetime(2026, 10, 31, tzinfo=UTC) and r.window_days == 12
    with demo_org.engine.connect() as conn:
        own = Scope(delivery_stream_id=r.sprint.stream.stream_id)
        cycles = read.cycles(conn, as_of=r.as_of, scope=own)
        last = conn.execute(
            sa.select(sprint_snapshots).where(
                sprint_snapshots.c.sprint_id == r.sprint.sprint_id,
                sprint_snapshots.c.snapshot_date == date(2026, 10, 30),
            )
        ).one()
    assert r.cycle_time == flow.cycle_time(cycles, as_of=r.as_of, window_days=12)
    assert r.cycle_time.sample_size > 5
    assert r.outcome is not None and r.outcome.day == date(2026, 10, 30)
    assert (r.outcome.committed, r.outcome.completed, r.outcome.remaining) == (
        last.committed_count,
        last.completed_count,
        last.remaining_count,
    )
    # one confidence point per working day: 10 in a two-week sprint
    assert [p.day.weekday() < 5 for p in r.confidence] == [True] * 10
    assert r.dora and all(t.deployment_frequency.window == r.window for t in r.dora)
    assert r.pulse_periods == ("2026-10",) and r.pulse[0].survey_period == "2026-10"
    assert r.queue_names["qa_queue"] == "Ready for QA"


def test_an_open_sprint_is_read_until_now(demo_org: DemoOrg) -> None:
    r = _retro(demo_org, stream="Payments", sprint="PAY Sprint 105", as_of="2026-11-12T18:00:00Z")
    assert r.is_open and r.as_of == datetime(2026, 11, 12, 18, tzinfo=UTC)
    assert r.window.start <= r.sprint.starts_at and r.window_days == 11
    assert r.confidence[-1].day == date(2026, 11, 12)
    assert r.outcome is not None and r.outcome.day == date(2026, 11, 12)
    # empty: the latest sprint that has started by now
    assert _retro(demo_org, stream="payments", sprint="").sprint.name == "PAY Sprint 106"


def test_unknown_stream_or_sprint_is_named_with_what_exists(demo_org: DemoOrg) -> None:
    with pytest.raises(NotebookParameterError) as stream:
        _retro(demo_org, stream="treasury", sprint="x")
    assert stream.value.message == (
        "unknown delivery stream 'treasury'; known: insights, lending, onboarding, payments"
    )
    with pytest.raises(UnknownSprint) as sprint:
        _retro(demo_org, stream="payments", sprint="PAY Sprint 99")
    assert sprint.value.message.startswith(
        "unknown sprint 'PAY Sprint 99' in delivery stream 'payments'; its sprints: "
        "PAY Sprint 106, PAY Sprint 105, PAY Sprint 104"
    )
    with pytest.raises(NotebookParameterError, match="stream is required"):
        _retro(demo_org, stream="", sprint="")
    with pytest.raises(NotebookParameterError, match="before sprint 'PAY Sprint 104' started"):
        _retro(demo_org, stream="payments", sprint="PAY Sprint 104", as_of="2026-10-01T00:00:00Z")


def test_sections_without_data_say_what_is_missing(
    demo_sqlite: DemoOrg, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ONB Sprint 92 on its first morning: nothing completed, reviewed or deployed yet."""
    r = _retro(demo_sqlite, stream="onboarding", sprint="ONB Sprint 92", as_of="2026-11-16T10:00Z")
    shown: list[Any] = []
    monkeypatch.setattr(sections, "_show", shown.append)
    sections.cycle_time(r)
    sections.flow(r)
    sections.defects(r)
    texts = [getattr(s, "data", "") for s in shown]
    assert texts == [
        "*No item of onboarding was completed during the sprint.*",
        "*No item completed during the sprint had active time: no flow efficiency.*",
        "- No defects were logged during the sprint.",
    ]
    shown.clear()
    sections.outcome(r)  # a snapshot exists for the first day: numbers and a burn-up
    assert [type(s).__name__ for s in shown] == ["Markdown", "HTML", "LayerChart"]
