"""The Overview page without a browser: its model and zones on the demo organisation and on
an organisation with no events (every zone says what is missing), access refusal, and a
zone toggle that redraws without recomputing."""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest
import sqlalchemy as sa

from dpp_lib.access import Principal
from dpp_lib.dashboards import data
from dpp_lib.dashboards.overview import Denied, Overview, overview
from dpp_lib.store.db import make_engine
from dpp_lib.views.common import load_org
from dpp_lib.widgets import overview as page_module
from dpp_lib.widgets import overview_outlook, overview_signals
from dpp_lib.widgets.filters import FilterState
from dpp_lib.widgets.overview import OverviewPage, open_page
from tests.conftest import DEMO_AS_OF, DemoOrg

EVERYTHING = Principal("user", str(uuid.uuid4()), "Ada Admin", frozenset({"metrics:read"}))
RENDERERS = (
    overview_signals.health_bar,
    overview_signals.realtime,
    overview_signals.diagnostics,
    overview_outlook.dora,
    overview_outlook.forecast,
    overview_outlook.team_health,
)


def _viewer_of(engine: sa.Engine, stream: str) -> Principal:
    with engine.connect() as conn:
        ids = {s.name: s.stream_id for s in load_org(conn).delivery}
    return Principal(
        "user", str(uuid.uuid4()), "Ann", frozenset({"metrics:read"}),
        frozenset({ids[stream]}), frozenset(),
    )  # fmt: skip


def _model(engine: sa.Engine, principal: Principal, state: FilterState) -> Overview | Denied:
    with engine.connect() as conn:
        return overview(conn, principal, state)


def test_an_organisation_without_events_says_what_is_missing_in_every_zone(
    org: sa.Engine,
) -> None:
    model = _model(org, EVERYTHING, FilterState())
    assert isinstance(model, Overview)
    html = {r.__name__: r(model) for r in RENDERERS}
    for name, text in html.items():
        assert "<svg" not in text, f"{name} drew a chart without data"
        assert "dpp-empty" in text or "dpp-none" in text, f"{name} shows no empty state"
    assert "No work in progress" in html["realtime"]
    assert "No item completed in the last 30 days" in html["realtime"]
    assert "No completion forecast: no remaining scope" in html["forecast"]
    assert "No pulse survey results" in html["team_health"]
    assert "No production deploy or incident" in html["dora"]


@pytest.mark.slow
def test_the_demo_draws_every_zone_with_the_views_figures(demo_sqlite: DemoOrg) -> None:
    state = FilterState(delivery="payments", as_of=DEMO_AS_OF)
    model = _model(demo_sqlite.engine, EVERYTHING, state)
    assert isinstance(model, Overview)
    assert model.delivery is not None and model.delivery.name == "payments"
    assert model.window.days == 30
    html = overview_signals.realtime(model)
    assert f"{model.realtime['wip_total']} items in progress" in html
    # WIP by stage, the confidence gauge (or why there is none), the cycle-time scatter
    charts = re.findall(r'id="dpp-chart-([a-z-]+)"', html)
    if model.realtime["sprint_confidence"]["confidence_pct"] is None:
        assert charts == ["wip", "cycle-time"]
        assert 'id="dpp-empty-sprint-confidence"' in html
    else:
        assert charts == ["wip", "sprint-confidence", "cycle-time"]
    assert "<svg" in overview_outlook.dora(model)
    assert 'id="dpp-dora-table"' in overview_outlook.dora(model)
    # The demo's tech streams include some below their data-quality targets.
    assert model.warnings
    assert all(w.value < w.target for w in model.warnings)
    assert "Reduced confidence" in overview_signals.health_bar(model)


@pytest.mark.slow
def test_the_sprint_range_starts_at_the_sprint_holding_as_of(demo_sqlite: DemoOrg) -> None:
    state = FilterState(delivery="payments", time_range="sprint", as_of=DEMO_AS_OF)
    model = _model(demo_sqlite.engine, EVERYTHING, state)
    assert isinstance(model, Overview)
    assert model.window.label.startswith("the current sprint, since ")
    assert 1 <= model.window.days <= 14


@pytest.mark.slow
def test_a_stream_outside_the_viewers_scope_is_refused(demo_sqlite: DemoOrg) -> None:
    ann = _viewer_of(demo_sqlite.engine, "payments")
    for state in (FilterState(delivery="lending"), FilterState(tech="core-api")):
        model = _model(demo_sqlite.engine, ann, state)
        assert isinstance(model, Denied)
        assert "You do not have access to the stream" in model.message
    unknown = _model(demo_sqlite.engine, ann, FilterState(delivery="no-such-stream"))
    assert isinstance(unknown, Denied)  # the same answer: names cannot be probed
    page = OverviewPage(
        demo_sqlite.engine,
        ann,
        FilterState.from_query({"stream": "lending"}, _visible(demo_sqlite, ann)),
        _visible(demo_sqlite, ann),
    )
    page.refresh()
    assert 'id="dpp-access-denied"' in page.status.value
    assert all(z.hidden and z.body.value == "" for z in page.zones.values())


def _visible(demo: DemoOrg, principal: Principal) -> data.VisibleStreams:
    with demo.engine.connect() as conn:
        return data.visible_streams(load_org(conn), principal)


@pytest.mark.slow
def test_a_zone_toggle_redraws_without_recomputing(
    demo_sqlite: DemoOrg, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[FilterState] = []

    def counted(conn: sa.Connection, principal: Principal, state: FilterState, **kw: Any) -> Any:
        calls.append(state)
        return overview(conn, principal, state, **kw)

    monkeypatch.setattr(page_module, "overview", counted)
    visible = _visible(demo_sqlite, EVERYTHING)
    read = FilterState.from_query({"stream": "payments", "as_of": DEMO_AS_OF}, visible)
    page = OverviewPage(demo_sqlite.engine, EVERYTHING, read, visible)
    page.refresh()
    assert len(calls) == 1
    page.bar.zone_toggles["forecast"].value = False
    assert len(calls) == 1 and page.zones["forecast"].hidden
    page.bar.zone_toggles["forecast"].value = True  # its answer is still in the model
    assert len(calls) == 1 and not page.zones["forecast"].hidden
    assert "dpp-chart-forecast-when" in page.zones["forecast"].body.value
    page.bar.delivery.value = "lending"
    assert len(calls) == 2
    assert 'data-state="stream=lending&amp;as_of=' in page.status.value


def test_without_a_signed_in_user_the_page_says_so(org: sa.Engine) -> None:
    widget = open_page(org, environ={})
    assert 'id="dpp-not-signed-in"' in widget.value


def test_the_warm_up_never_stops_a_page(tmp_path: Any, caplog: pytest.LogCaptureFixture) -> None:
    broken = make_engine(f"sqlite:///{tmp_path / 'missing' / 'dpp.sqlite3'}")
    page_module.warm_up(broken)  # no database there: logged, not raised
    assert "warm-up failed" in caplog.text
