"""The computations the notebooks call (``dpp_lib.jobs.compute``), without a kernel: a
second run for the same day replaces the computation's rows with equal ones (no duplicate,
no other computation's row touched), a one-stream run replaces that stream's rows only,
and ``materialise`` writes what the seven computations write."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any

import pandas as pd
import pytest
import sqlalchemy as sa

from dpp_lib.jobs import compute
from dpp_lib.jobs.compute.context import select_streams
from dpp_lib.jobs.compute.result import ComputeResult, extreme, span
from dpp_lib.jobs.materialise import materialise
from dpp_lib.notebook import NotebookParameterError, moment
from dpp_lib.store import data_versions
from dpp_lib.store.schema import (
    cross_stream_correlations,
    daily_stream_metrics,
    delivery_streams,
    forecast_snapshots,
    pulse_aggregates,
    sprint_snapshots,
    sprints,
    system_alerts,
    tech_streams,
)
from dpp_lib.views.common import Org, Stream
from tests.conftest import DEMO_AS_OF
from tests.notebooks.compute.conftest import Copy, Run

# The writable demo copies are built by the first test that needs one (slow on a loaded
# machine): the default 300 s per test is too tight for that.
pytestmark = pytest.mark.timeout(900)

AS_OF = moment(DEMO_AS_OF)
DAY = date(2026, 11, 12)  # DEMO_AS_OF in Europe/London
d = daily_stream_metrics


@dataclass(frozen=True)
class Owned:
    """A computation's rows: a select whose first column is the stream a row belongs to;
    ``marker`` columns change whenever the row is rewritten (ids, write times)."""

    select: Any
    marker: tuple[str, ...]


def _metrics(*names: str) -> Owned:
    return Owned(
        sa.select(d.c.stream_id.label("stream"), d).where(
            d.c.metric_date == DAY, d.c.metric_name.in_(names)
        ),
        ("metric_id", "computed_at"),
    )


SNAPSHOTS = Owned(
    sa.select(sprints.c.delivery_stream_id.label("stream"), sprint_snapshots)
    .join(sprints, sprints.c.sprint_id == sprint_snapshots.c.sprint_id)
    .where(sprint_snapshots.c.snapshot_date == DAY),
    ("received_at", "event_timestamp"),  # an upsert: the row stays, its write time moves
)
CASES: dict[str, tuple[Callable[..., ComputeResult], str, tuple[Owned, ...]]] = {
    "sprints": (compute.refresh_sprints, "payments", (_metrics("sprint_confidence"), SNAPSHOTS)),
    "daily": (
        compute.refresh_daily_metrics,
        "core-api",
        (
            _metrics(
                "cycle_time",
                "throughput",
                "wip",
                "deployment_frequency",
                "change_failure_rate",
                "ttr_median",
                "ttr_mean",
                "lead_time",
            ),
        ),
    ),
    "diagnostics": (
        compute.refresh_diagnostics,
        "payments",
        (_metrics("flow_efficiency", "defect_escape_rate", "review_turnaround"),),
    ),
    "forecasts": (
        compute.refresh_forecasts,
        "lending",
        (
            Owned(
                sa.select(
                    forecast_snapshots.c.delivery_stream_id.label("stream"), forecast_snapshots
                ).where(forecast_snapshots.c.forecast_date == DAY),
                ("forecast_id", "computed_at"),
            ),
        ),
    ),
    "cross_stream": (
        compute.refresh_cross_stream,
        "infra",
        (
            Owned(
                sa.select(
                    cross_stream_correlations.c.tech_stream_id.label("stream"),
                    cross_stream_correlations,
                ).where(cross_stream_correlations.c.analysis_date == DAY),
                ("correlation_id", "computed_at"),
            ),
        ),
    ),
    "pulse": (
        compute.refresh_pulse,
        "onboarding",
        (
            Owned(
                sa.select(pulse_aggregates.c.delivery_stream_id.label("stream"), pulse_aggregates),
                ("aggregate_id", "computed_at"),
            ),
        ),
    ),
}


def _state(engine: sa.Engine, owned: Owned) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(owned.select)]


def _values(rows: list[dict[str, Any]], marker: tuple[str, ...]) -> list[str]:
    return sorted(str(sorted((k, str(v)) for k, v in r.items() if k not in marker)) for r in rows)


def _counts(engine: sa.Engine) -> dict[str, int]:
    """Row counts of the other computed tables (a computation must not touch them)."""
    with engine.connect() as conn:
        return {
            t.name: conn.execute(sa.select(sa.func.count()).select_from(t)).scalar_one()
            for t in (
                daily_stream_metrics,
                forecast_snapshots,
                cross_stream_correlations,
                pulse_aggregates,
            )
        }


@pytest.mark.slow
@pytest.mark.parametrize("case", list(CASES))
def test_a_rerun_replaces_the_day_and_a_one_stream_run_only_that_stream(
    compute_db: Copy, executed: dict[tuple[str, str], Run], case: str
) -> None:
    run, one, owned = CASES[case]
    # the notebooks ran every computation for the day (``executed``)
    states = [_state(compute_db.engine, o) for o in owned]
    counts = _counts(compute_db.engine)
    with compute_db.engine.connect() as conn:
        versions = data_versions.current(conn)

    again = run(compute_db.engine, as_of=AS_OF)
    assert sum(again.rows.values()) >= sum(len(s) for s in states)
    for o, before in zip(owned, states, strict=True):
        after = _state(compute_db.engine, o)
        assert before, f"{case}: nothing written"
        assert _values(after, o.marker) == _values(before, o.marker)  # same rows, no duplicate
        rewritten = {tuple(str(r[m]) for m in o.marker) for r in after}
        assert not rewritten & {tuple(str(r[m]) for m in o.marker) for r in before}
    assert _counts(compute_db.engine) == counts
    with compute_db.engine.connect() as conn:
        moved = data_versions.current(conn)
    assert all(moved[t] == versions[t] + 1 for t in again.rows), (again.rows, versions, moved)

    states = [_state(compute_db.engine, o) for o in owned]
    single = run(compute_db.engine, as_of=AS_OF, stream=one)
    assert single.streams == (one,) and set(single.summary.iloc[:, 0]) == {one}
    stream_id = next(r["stream"] for r in states[0] if _name(compute_db, r["stream"]) == one)
    for o, before in zip(owned, states, strict=True):
        after = _state(compute_db.engine, o)
        assert _values(after, o.marker) == _values(before, o.marker)
        theirs = [r for r in before if r["stream"] != stream_id]
        kept = [r for r in after if r["stream"] != stream_id]
        assert theirs and sorted(map(str, kept)) == sorted(map(str, theirs))  # untouched
        mine_before = {
            str(r[o.marker[0]]) + str(r[o.marker[-1]]) for r in before if r["stream"] == stream_id
        }
        mine_after = {
            str(r[o.marker[0]]) + str(r[o.marker[-1]]) for r in after if r["stream"] == stream_id
        }
        assert mine_after and not mine_after & mine_before  # rewritten


def _ids(db: Copy, name: str) -> set[Any]:
    with db.engine.connect() as conn:
        return {
            r[0]
            for t in (delivery_streams, tech_streams)
            for r in conn.execute(sa.select(t.c.stream_id).where(t.c.name == name))
        }


def _name(db: Copy, stream_id: Any) -> str:
    with db.engine.connect() as conn:
        for t in (delivery_streams, tech_streams):
            found = conn.execute(sa.select(t.c.name).where(t.c.stream_id == stream_id)).scalar()
            if found:
                return str(found)
    return ""


@pytest.mark.slow
def test_data_quality_rerun_changes_no_alert_and_one_stream_narrows_the_table(
    compute_db: Copy, executed: dict[tuple[str, str], Run]
) -> None:
    a = system_alerts
    with compute_db.engine.connect() as conn:
        before = conn.execute(sa.select(a).where(a.c.resolved_at.is_(None))).all()
    first = compute.evaluate_data_quality(compute_db.engine, as_of=AS_OF)
    again = compute.evaluate_data_quality(compute_db.engine, as_of=AS_OF, stream="auth")
    with compute_db.engine.connect() as conn:
        after = conn.execute(sa.select(a).where(a.c.resolved_at.is_(None))).all()
    assert before and sorted(map(str, after)) == sorted(map(str, before))  # ids, times too
    assert first.rows == again.rows == {"system_alerts": 0}
    assert list(again.summary["stream"]) == ["auth"]
    auth = first.summary[first.summary["stream"] == "auth"].reset_index(drop=True)
    pd.testing.assert_frame_equal(again.summary, auth)
    # each stream's "alerts" column lists the rates its active data-quality alerts name
    for line in first.summary.itertuples():
        named = sorted(
            r.details["rate"]
            for r in after
            if r.condition.startswith("data_quality_below_target:")
            and r.details["streamId"] in {str(s) for s in _ids(compute_db, str(line.stream))}
        )
        assert line.alerts == ", ".join(named), line.stream
    assert any(line.alerts for line in first.summary.itertuples())


@pytest.mark.slow
def test_materialise_writes_what_the_computations_write(
    compute_db: Copy, executed: dict[tuple[str, str], Run]
) -> None:
    tables = [o for _, _, owned in CASES.values() for o in owned]
    separate = [_values(_state(compute_db.engine, o), o.marker) for o in tables]  # notebooks'
    assert all(separate)
    report = materialise(compute_db.engine, as_of=AS_OF)
    together = [_values(_state(compute_db.engine, o), o.marker) for o in tables]
    assert together == separate
    assert report.rows["daily_stream_metrics"] == 4 * 10 + 5 * 11


# --- no database ----------------------------------------------------------------------------
def _org() -> Org:
    def s(name: str, n: int) -> Stream:
        return Stream(stream_id=uuid.UUID(int=n), name=name, display_name=name.title())

    return Org(
        delivery=(s("payments", 1), s("shared", 2)),
        tech=(s("core-api", 3), s("shared", 4)),
        settings={},
    )


@pytest.mark.parametrize(
    ("stream", "kinds", "delivery", "tech", "whole"),
    [
        ("all", ("delivery", "tech"), ["payments", "shared"], ["core-api", "shared"], True),
        ("", ("delivery",), ["payments", "shared"], [], True),
        ("Payments", ("delivery", "tech"), ["payments"], [], False),
        ("core-api", ("delivery", "tech"), [], ["core-api"], False),
        ("shared", ("delivery", "tech"), ["shared"], ["shared"], False),
        ("00000000-0000-0000-0000-000000000003", ("tech",), [], ["core-api"], False),
    ],
)
def test_the_stream_parameter_selects_streams(
    stream: str, kinds: Any, delivery: list[str], tech: list[str], whole: bool
) -> None:
    chosen = select_streams(_org(), stream, kinds=kinds)
    assert [s.name for s in chosen.delivery] == delivery
    assert [s.name for s in chosen.tech] == tech
    assert chosen.whole is whole


@pytest.mark.parametrize(
    ("stream", "kinds", "message"),
    [
        ("nope", ("delivery", "tech"), "stream='nope' is not a delivery or tech stream"),
        ("core-api", ("delivery",), "stream='core-api' is not a delivery stream"),
    ],
)
def test_an_unknown_stream_is_refused_naming_it_and_the_known_ones(
    stream: str, kinds: Any, message: str
) -> None:
    with pytest.raises(NotebookParameterError) as caught:
        select_streams(_org(), stream, kinds=kinds)
    assert message in str(caught.value) and "payments" in str(caught.value)


def test_headline_phrases() -> None:
    assert span({"a": 62.0, "b": 91.04, "c": None}, "%") == "62–91 %"
    assert span({"a": 3.0}, "days") == "3 days"
    assert span({"a": None}, "%") == "no data"
    assert extreme({"a": 62.0, "b": 91.0}, lowest=True) == "a"
    assert extreme({"a": 0.0, "b": 0.0}, lowest=True) is None  # no one is lowest
    assert extreme({"a": 5.0, "b": float("nan")}, lowest=False) is None
