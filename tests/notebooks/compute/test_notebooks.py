"""The compute notebooks, executed by papermill on a copy of the demo organisation on both
backends (``executed``): each writes the rows its computation owns — as many as streams ×
metrics — with the values the metric functions give when called directly on the stream's
own rows, and shows a headline, a table and a chart. Bad parameters stop a notebook with
an error naming the parameter."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from typing import Any

import nbformat
import pytest
import sqlalchemy as sa

from dpp_lib.metrics import cross_stream, dora, flow, forecast, pulse, quality, review
from dpp_lib.metrics.common import Scope
from dpp_lib.notebook import moment
from dpp_lib.orgconfig import CrossStream
from dpp_lib.store import read
from dpp_lib.store.config_tables import load_lookups
from dpp_lib.store.schema import (
    cross_stream_correlations,
    daily_stream_metrics,
    forecast_snapshots,
    pulse_aggregates,
    pulse_responses,
    sprint_snapshots,
    sprints,
    system_alerts,
)
from dpp_lib.views import alerts
from dpp_lib.views.common import Org, Stream, load_org
from tests.conftest import DEMO_AS_OF
from tests.notebooks.compute.conftest import COMPUTE, NOTEBOOKS, Copy, Run

# The first test builds the writable demo copies and runs 16 notebooks (about 100 s on an idle
# 2-core machine): the default 300 s per test is too tight for that on a loaded one.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]
AS_OF = moment(DEMO_AS_OF)
PARAMETERS = 'stream = "all"\nas_of = ""\nwindow_days = 30\ndatabase_url = ""'


# --- shape (no kernel) ------------------------------------------------------------------------
@pytest.mark.parametrize("name", COMPUTE)
def test_notebook_has_the_agreed_shape_and_no_outputs(name: str) -> None:
    nb = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    nbformat.validate(nb)
    assert nb.metadata["kernelspec"]["name"] == "python3"
    intro, params = nb.cells[0], nb.cells[1]
    assert intro.cell_type == "markdown" and "Scheduled" in intro.source
    assert "Writes" in intro.source
    assert params.cell_type == "code" and params.metadata.get("tags") == ["parameters"]
    assert params.source == PARAMETERS
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(not c.outputs and c.execution_count is None for c in code)
    body = "\n".join(c.source for c in code[1:])
    assert 'offline_charts("svg")' in body and "dpp_lib.jobs.compute" in body
    assert "for " not in body and "while " not in body, "a loop belongs in the library"


# --- what each run wrote --------------------------------------------------------------------
def ran(executed: dict[tuple[str, str], Run], db: Copy, name: str) -> str:
    """The run succeeded and shows a headline, a table and an SVG chart; returns its text."""
    run = executed[(db.backend, name)]
    assert run.error is None, f"{name} on {db.backend} failed: {run.error}"
    nb = nbformat.read(run.path, as_version=4)
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    kinds = {k for o in outputs for k in o.get("data", {})}
    assert {"text/markdown", "text/html", "image/svg+xml"} <= kinds, kinds
    assert not [o for o in outputs if o.output_type == "error"]
    assert "rows written" in _text(outputs).lower()
    return _text(outputs)


def _text(outputs: Iterable[Any]) -> str:
    return "\n".join(str(o.get("data", {}).get("text/markdown", "")) for o in outputs)


def _org(conn: sa.Connection) -> tuple[Any, Org, date]:
    lookups = load_lookups(conn)
    return lookups, load_org(conn), lookups.calendar().local_date(AS_OF)


def _stream(streams: tuple[Stream, ...], name: str) -> Stream:
    return next(s for s in streams if s.name == name)


def _daily(conn: sa.Connection, day: date, names: Iterable[str]) -> list[Any]:
    d = daily_stream_metrics
    return list(
        conn.execute(
            sa.select(d).where(d.c.metric_date == day, d.c.metric_name.in_(list(names)))
        ).all()
    )


def _value(rows: list[Any], stream: Stream, name: str, percentile: int | None = None) -> float:
    found = [
        r
        for r in rows
        if r.stream_id == stream.stream_id and r.metric_name == name and r.percentile == percentile
    ]
    assert len(found) == 1, (stream.name, name, percentile, len(found))
    return float(found[0].metric_value)


def test_sprint_snapshots_notebook(compute_db: Copy, executed: dict[tuple[str, str], Run]) -> None:
    text = ran(executed, compute_db, "sprint_snapshots")
    assert "sprint confidence" in text
    with compute_db.engine.connect() as conn:
        lookups, org, day = _org(conn)
        rows = _daily(conn, day, ["sprint_confidence"])
        assert len(rows) == len(org.delivery) == 4
        s = sprints
        running = conn.execute(
            sa.select(sa.func.count()).where(s.c.start_date <= day, s.c.end_date >= day)
        ).scalar_one()
        snapped = conn.execute(
            sa.select(sa.func.count()).where(sprint_snapshots.c.snapshot_date == day)
        ).scalar_one()
        assert snapped == running > 0
        payments = _stream(org.delivery, "payments")
        scope = Scope(delivery_stream_id=payments.stream_id)
        frame = read.sprint_frame(conn, scope=scope)
        direct = forecast.sprint_confidence(
            read.cycles(conn, as_of=AS_OF, scope=scope),
            frame,
            read.snapshots(conn, as_of=AS_OF, sprint_ids=list(frame["sprint_id"])),
            as_of=AS_OF,
            calendar=lookups.calendar(),
        )
    assert direct.confidence_pct is not None
    assert _value(rows, payments, "sprint_confidence") == direct.confidence_pct


def test_daily_metrics_notebook(compute_db: Copy, executed: dict[tuple[str, str], Run]) -> None:
    text = ran(executed, compute_db, "daily_metrics")
    assert "cycle time p85" in text
    names = ["cycle_time", "throughput", "wip", "deployment_frequency"]
    names += ["change_failure_rate", "ttr_median", "ttr_mean", "lead_time"]
    with compute_db.engine.connect() as conn:
        lookups, org, day = _org(conn)
        rows = _daily(conn, day, names)
        # delivery: cycle time ×3, throughput, WIP; tech: cycle time ×3 and six DORA rows
        assert len(rows) == len(org.delivery) * 5 + len(org.tech) * 9 == 65
        payments, core = _stream(org.delivery, "payments"), _stream(org.tech, "core-api")
        cycles = read.cycles(conn, as_of=AS_OF, scope=Scope(delivery_stream_id=payments.stream_id))
        deploys = read.deploys(conn, as_of=AS_OF, scope=Scope(tech_stream_id=core.stream_id))
        prs = read.prs(conn, as_of=AS_OF, scope=Scope(tech_stream_id=core.stream_id))
    ct = flow.cycle_time(cycles, as_of=AS_OF)
    tp = flow.throughput(cycles, as_of=AS_OF, calendar=lookups.calendar())
    df = dora.deployment_frequency(deploys, as_of=AS_OF, calendar=lookups.calendar())
    lt = dora.lead_time_for_changes(prs, deploys, as_of=AS_OF)
    assert ct.sample_size > 0 and df.sample_size > 0 and lt.sample_size > 0
    assert _value(rows, payments, "cycle_time", 85) == ct.p85
    assert _value(rows, payments, "throughput") == tp.per_week
    assert _value(rows, core, "deployment_frequency") == df.deployment_frequency
    assert _value(rows, core, "lead_time", 50) == lt.lead_time_p50


def test_diagnostics_notebook(compute_db: Copy, executed: dict[tuple[str, str], Run]) -> None:
    text = ran(executed, compute_db, "diagnostics")
    assert "flow efficiency" in text
    with compute_db.engine.connect() as conn:
        _, org, day = _org(conn)
        rows = _daily(conn, day, ["flow_efficiency", "defect_escape_rate", "review_turnaround"])
        # delivery: flow efficiency, defect escape, review p50/p85; tech: review p50/p85
        assert len(rows) == len(org.delivery) * 4 + len(org.tech) * 2 == 26
        payments, auth = _stream(org.delivery, "payments"), _stream(org.tech, "auth")
        scope = Scope(delivery_stream_id=payments.stream_id)
        cycles = read.cycles(conn, as_of=AS_OF, scope=scope)
        defects = read.defects(conn, as_of=AS_OF, scope=scope)
        tech = Scope(tech_stream_id=auth.stream_id)
        prs, reviews = (
            read.prs(conn, as_of=AS_OF, scope=tech),
            read.reviews(conn, as_of=AS_OF, scope=tech),
        )
    fe = flow.flow_efficiency(cycles, as_of=AS_OF)
    de = quality.defect_escape(defects, cycles, as_of=AS_OF)
    rt = review.review_turnaround(prs, reviews, as_of=AS_OF)
    assert fe.sample_size and de.sample_size and rt.sample_size
    assert _value(rows, payments, "flow_efficiency") == fe.flow_efficiency_pct
    assert _value(rows, payments, "defect_escape_rate") == de.rate
    assert _value(rows, auth, "review_turnaround", 50) == rt.p50_hours


def test_forecasts_notebook(compute_db: Copy, executed: dict[tuple[str, str], Run]) -> None:
    text = ran(executed, compute_db, "forecasts")
    assert "Monte Carlo" in text
    with compute_db.engine.connect() as conn:
        lookups, org, day = _org(conn)
        f = forecast_snapshots
        stored = {
            r.delivery_stream_id: r
            for r in conn.execute(sa.select(f).where(f.c.forecast_date == day))
        }
        direct = {}
        for s in org.delivery:
            scope = Scope(delivery_stream_id=s.stream_id)
            direct[s.stream_id] = forecast.forecast_when(
                read.cycles(conn, as_of=AS_OF, scope=scope),
                read.items(conn, lookups, as_of=AS_OF, scope=scope),
                as_of=AS_OF,
                calendar=lookups.calendar(),
            )
    simulated = {k for k, w in direct.items() if w.method == "monte_carlo"}
    assert set(stored) == simulated and simulated
    for stream_id in simulated:
        row, when = stored[stream_id], direct[stream_id]
        assert (row.p50_completion_date, row.p85_completion_date, row.scope_item_count) == (
            when.p50_completion_date,
            when.p85_completion_date,
            when.scope_item_count,
        )


def test_cross_stream_notebook(compute_db: Copy, executed: dict[tuple[str, str], Run]) -> None:
    ran(executed, compute_db, "cross_stream")
    with compute_db.engine.connect() as conn:
        lookups, org, day = _org(conn)
        c = cross_stream_correlations
        stored = {
            r.tech_stream_id: r for r in conn.execute(sa.select(c).where(c.c.analysis_date == day))
        }
        confidence, p85 = {}, {}
        for s in org.delivery:
            scope = Scope(delivery_stream_id=s.stream_id)
            cycles = read.cycles(conn, as_of=AS_OF, scope=scope)
            frame = read.sprint_frame(conn, scope=scope)
            snaps = read.snapshots(conn, as_of=AS_OF, sprint_ids=list(frame["sprint_id"]))
            confidence[s.stream_id] = forecast.sprint_confidence(
                cycles, frame, snaps, as_of=AS_OF, calendar=lookups.calendar()
            ).confidence_pct
            p85[s.stream_id] = flow.cycle_time(cycles, as_of=AS_OF).p85
        rules = CrossStream.model_validate(org.settings.get("cross_stream") or {})
        direct = cross_stream.cross_stream_bottleneck(
            read.transitions(conn, lookups, as_of=AS_OF),
            as_of=AS_OF,
            sprint_confidence_pct=confidence,
            cycle_time_p85_days=p85,
            tech_streams=[t.stream_id for t in org.tech],
            rules=rules.severity_rules,
            calibration=rules.calibration,
        )
    assert set(stored) == {t.stream_id for t in org.tech}
    assert any(r.block_count_14d for r in stored.values())
    for impact in direct.correlations:
        row = stored[impact.tech_stream_id]
        assert (row.block_count_14d, row.severity) == (impact.block_count_14d, impact.severity)
        assert sorted(map(str, row.impacted_delivery_streams)) == sorted(
            map(str, impact.impacted_delivery_streams)
        )


def test_pulse_aggregates_notebook(compute_db: Copy, executed: dict[tuple[str, str], Run]) -> None:
    ran(executed, compute_db, "pulse_aggregates")
    with compute_db.engine.connect() as conn:
        _, org, _ = _org(conn)
        p = pulse_responses
        periods = conn.execute(
            sa.select(p.c.delivery_stream_id, p.c.survey_period)
            .where(p.c.event_timestamp < AS_OF)
            .distinct()
        ).all()
        stored = conn.execute(sa.select(pulse_aggregates)).all()
        payments = _stream(org.delivery, "payments")
        responses = read.pulse(
            conn, as_of=AS_OF, scope=Scope(delivery_stream_id=payments.stream_id)
        )
    assert len(stored) == len(periods) > 0
    direct = pulse.team_pulse(
        responses, as_of=AS_OF, team_sizes={payments.stream_id: payments.team_size}, periods=1
    )
    latest = direct.aggregates[0]
    row = next(
        r
        for r in stored
        if r.delivery_stream_id == payments.stream_id and r.survey_period == latest.survey_period
    )
    assert latest.overall_avg is not None
    assert (row.response_count, float(row.overall_avg)) == (
        latest.response_count,
        latest.overall_avg,
    )


def test_data_quality_notebook(compute_db: Copy, executed: dict[tuple[str, str], Run]) -> None:
    text = ran(executed, compute_db, "data_quality")
    assert "checked over 30 days" in text
    with compute_db.engine.connect() as conn:
        lookups, _, _ = _org(conn)
        expected = {c.condition for c in alerts.evaluate(conn, lookups, now=AS_OF)}
        a = system_alerts
        active = set(
            conn.execute(sa.select(a.c.condition).where(a.c.resolved_at.is_(None))).scalars()
        )
    active = {c for c in active if not c.startswith(alerts.COMPUTATION_FAILURE)}
    assert any(c.startswith(alerts.DATA_QUALITY) for c in expected)
    assert active == expected


# --- bad parameters -------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("case", "names"),
    [("unknown_stream", ("stream='no-such-stream'", "payments")), ("naive_as_of", ("as_of=",))],
)
def test_a_bad_parameter_stops_the_notebook_naming_it(
    executed: dict[tuple[str, str], Run], case: str, names: tuple[str, ...]
) -> None:
    run = executed[("bad", case)]
    assert run.error is not None, f"{case}: the notebook ran to the end"
    assert getattr(run.error, "ename", None) == "NotebookParameterError"
    message = str(getattr(run.error, "evalue", ""))
    assert all(n in message for n in names), message
