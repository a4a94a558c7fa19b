"""The Cross-stream page's model on the demo organisation: the answer is the API's (the same
view, scope and as_of), the impact analysis names the root-cause tech stream or the chosen
one with each impacted stream's own API figures, a stream outside the viewer's roles is
refused in the data layer, and a viewer without tech streams gets no cross-stream data."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import pytest

from dpp_lib.access import Principal
from dpp_lib.dashboards.cross_stream import CrossStream, cross_stream
from dpp_lib.dashboards.overview import Denied
from dpp_lib.metrics.common import Scope
from dpp_lib.store import read
from dpp_lib.store.config_tables import load_lookups
from dpp_lib.views import delivery, diagnostic, team
from dpp_lib.views.common import Org, load_org
from dpp_lib.widgets.filters import FilterState
from tests.conftest import DEMO_AS_OF, DemoOrg

pytestmark = pytest.mark.slow

AS_OF = datetime.fromisoformat(DEMO_AS_OF.replace("Z", "+00:00"))
ADMIN = Principal("user", str(uuid.uuid4()), "Ada", frozenset({"admin", "metrics:read"}))


def _org(demo: DemoOrg) -> Org:
    with demo.engine.connect() as conn:
        return load_org(conn)


def _scoped(org: Org, delivery_name: str, tech_name: str | None) -> Principal:
    d = next(s.stream_id for s in org.delivery if s.name == delivery_name)
    t = {s.stream_id for s in org.tech if s.name == tech_name}
    return Principal(
        "user", str(uuid.uuid4()), "Lena", frozenset({"metrics:read"}), frozenset({d}), frozenset(t)
    )


def _model(demo: DemoOrg, principal: Principal, **state: str) -> CrossStream:
    with demo.engine.connect() as conn:
        model = cross_stream(conn, principal, FilterState(as_of=DEMO_AS_OF, **state))
    assert isinstance(model, CrossStream)
    return model


def _api_answer(demo: DemoOrg, principal: Principal) -> dict[str, object]:
    """What GET /metrics/cross-stream computes for the principal (routes/metrics.py)."""
    with demo.engine.connect() as conn:
        return team.cross_stream_view(
            conn,
            load_lookups(conn),
            load_org(conn),
            scope=principal.tech_scope(),
            delivery_visible=principal.delivery_streams,
            as_of=AS_OF,
        )


def test_the_answer_is_the_apis_and_the_impact_is_the_root_cause(demo_sqlite: DemoOrg) -> None:
    model = _model(demo_sqlite, ADMIN)
    assert model.answer == _api_answer(demo_sqlite, ADMIN)
    assert model.as_of == AS_OF
    assert [s.name for s in model.columns] == [s.name for s in _org(demo_sqlite).delivery]
    top = model.answer["top_tech_stream"]
    assert top is not None and model.impact is not None
    assert model.impact.is_root_cause and str(model.impact.tech.stream_id) == top["id"]
    assert model.impact.row == model.top
    impacted = [s["name"] for s in model.impact.row["impacted_delivery_streams"]]
    assert [s.stream.name for s in model.impact.streams] == impacted
    assert model.impact.hidden_streams == 0


def test_the_impacted_streams_figures_are_the_apis(demo_sqlite: DemoOrg) -> None:
    model = _model(demo_sqlite, ADMIN, tech="core-api", time_range="90d")
    assert model.impact is not None and model.impact.tech.name == "core-api"
    assert not model.impact.is_root_cause or model.answer["top_tech_stream"]["name"] == "core-api"
    assert model.window.days == 90
    with demo_sqlite.engine.connect() as conn:
        lookups, org = load_lookups(conn), load_org(conn)
        for s in model.impact.streams:
            own = Scope(delivery_stream_id=s.stream.stream_id)
            realtime = delivery.realtime(conn, lookups, org, scope=own, as_of=AS_OF)
            flow = diagnostic.diagnostic(conn, org, scope=own, as_of=AS_OF, window_days=90)
            assert s.cycle_time_p85 == realtime["cycle_time"]["p85"]
            assert s.confidence_pct == realtime["sprint_confidence"]["confidence_pct"]
            blocked = [q for q in flow["flow_efficiency"]["queues"] if q["queue"] == "blocked"]
            assert s.blocked_items == (blocked[0]["items"] if blocked else 0)


def test_a_scoped_viewer_gets_their_streams_only(demo_sqlite: DemoOrg) -> None:
    org = _org(demo_sqlite)
    lena = _scoped(org, "lending", "infra")
    model = _model(demo_sqlite, lena)
    assert model.answer == _api_answer(demo_sqlite, lena)
    assert [r["tech_stream"] for r in model.correlations] == ["infra"]
    assert [s.name for s in model.columns] == ["lending"]
    named = {s["name"] for r in model.correlations for s in r["impacted_delivery_streams"]}
    assert named <= {"lending"}
    if model.impact is not None:
        row = model.impact.row
        assert model.impact.hidden_streams == row["impacted_stream_count"] - len(
            row["impacted_delivery_streams"]
        )


@pytest.mark.parametrize(
    ("state", "stream"),
    [({"tech": "core-api"}, "core-api"), ({"delivery": "payments"}, "payments"),
     ({"tech": "no-such-stream"}, "no-such-stream")],
)  # fmt: skip
def test_a_stream_outside_the_viewers_roles_is_refused(
    demo_sqlite: DemoOrg, state: dict[str, str], stream: str
) -> None:
    lena = _scoped(_org(demo_sqlite), "lending", "infra")
    with demo_sqlite.engine.connect() as conn:
        model = cross_stream(conn, lena, FilterState(as_of=DEMO_AS_OF, **state))
    assert isinstance(model, Denied)
    assert f"You do not have access to the stream {stream!r}, or it does not exist" in model.message


def test_a_viewer_without_tech_streams_gets_no_cross_stream_data(demo_sqlite: DemoOrg) -> None:
    ann = _scoped(_org(demo_sqlite), "payments", None)
    model = _model(demo_sqlite, ann)
    assert not model.tech_visible
    assert model.correlations == [] and model.impact is None and model.top is None


def test_the_delivery_filter_keeps_one_column(demo_sqlite: DemoOrg) -> None:
    model = _model(demo_sqlite, ADMIN, delivery="lending")
    assert [s.name for s in model.columns] == ["lending"]
    assert model.impact is not None
    assert all(s.stream.name == "lending" for s in model.impact.streams)


def test_a_bad_as_of_falls_back_to_now_with_a_notice(demo_sqlite: DemoOrg) -> None:
    state = FilterState(as_of=DEMO_AS_OF)
    with demo_sqlite.engine.connect() as conn:
        model = cross_stream(conn, ADMIN, state, now=datetime(2026, 11, 1, tzinfo=AS_OF.tzinfo))
    assert isinstance(model, CrossStream)
    assert model.as_of == datetime(2026, 11, 1, tzinfo=AS_OF.tzinfo)
    assert any("in the future" in n for n in model.notices)


def test_reading_only_block_events_gives_the_answer_every_event_gives(
    demo_sqlite: DemoOrg, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The view reads block and unblock events only; all of them give the same answer."""
    windowed = _api_answer(demo_sqlite, ADMIN)
    every_event = read.transitions

    def all_events(*args: Any, **kwargs: Any) -> Any:
        kwargs.pop("event_types", None)
        return every_event(*args, **kwargs)

    monkeypatch.setattr(read, "transitions", all_events)
    assert _api_answer(demo_sqlite, ADMIN) == windowed
    assert windowed["sample_size"] and windowed["correlations"]
