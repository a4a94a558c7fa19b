"""The Cross-stream page's charts and zones from hand-made answers (no kernel, no database):
the heatmap's cells, the hidden-streams column, every zone's empty states, the table as the
API's rows, and a filter bar without zone toggles."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from typing import Any

import pytest

from dpp_lib.charts import cross_stream as charts
from dpp_lib.dashboards.cross_stream import CrossStream, Impact, StreamImpact
from dpp_lib.dashboards.data import VisibleStreams
from dpp_lib.dashboards.overview import Window
from dpp_lib.views.common import Stream
from dpp_lib.widgets import cross_stream_sections as page
from dpp_lib.widgets.filters import FilterBar, FilterState

AS_OF = datetime(2026, 11, 12, 18, tzinfo=UTC)
PAYMENTS = Stream(uuid.uuid4(), "payments", "Payments")
LENDING = Stream(uuid.uuid4(), "lending", "Lending")
INFRA = Stream(uuid.uuid4(), "infra", "Infrastructure")
AUTH = Stream(uuid.uuid4(), "auth", "Auth <Service>")


def _row(tech: Stream, impacted: list[Stream], blocked: list[Stream], **kw: Any) -> dict[str, Any]:
    return {
        "tech_stream_id": str(tech.stream_id),
        "tech_stream": tech.name,
        "block_count_14d": kw.get("blocks", len(impacted)),
        "blocked_ticket_count": kw.get("tickets", len(impacted)),
        "impacted_stream_count": kw.get("count", len(impacted)),
        "impacted_delivery_streams": [{"id": str(s.stream_id), "name": s.name} for s in impacted],
        "blocked_delivery_streams": [{"id": str(s.stream_id), "name": s.name} for s in blocked],
        "avg_confidence_pct": kw.get("confidence"),
        "avg_cycle_time_p85": kw.get("p85"),
        "severity": kw.get("severity", "NONE"),
        "computed_at": AS_OF,
    }


def _model(
    rows: list[dict[str, Any]],
    *,
    top: Stream | None = None,
    impact: Impact | None = None,
    tech_visible: bool = True,
    columns: tuple[Stream, ...] = (PAYMENTS, LENDING),
) -> CrossStream:
    answer = {
        "correlations": rows,
        "top_tech_stream": {"id": str(top.stream_id), "name": top.name} if top else None,
        "calibration": True,
        "window_start": AS_OF,
        "sample_size": 3,
    }
    return CrossStream(
        FilterState(as_of="2026-11-12T18:00:00Z"),
        AS_OF,
        None,
        None,
        (),
        Window(AS_OF, 30, "the 30 days to 12 Nov 2026"),
        answer,
        columns,
        impact,
        tech_visible,
    )


def test_cells_mark_blocked_impacted_and_hidden_streams() -> None:
    rows = [
        _row(INFRA, [PAYMENTS], [PAYMENTS], count=2, severity="HIGH"),
        _row(AUTH, [], []),
    ]
    cells = {
        (c["tech"], c["delivery"]): c for c in charts.heatmap_cells(rows, ["payments", "lending"])
    }
    assert cells[("infra", "payments")]["state"] == charts.BLOCKED
    assert cells[("infra", "payments")]["severity"] == "HIGH"
    assert cells[("infra", "lending")]["state"] == charts.NOT_IMPACTED
    assert cells[("infra", "lending")]["severity"] == "NONE"
    assert cells[("infra", charts.HIDDEN)]["label"] == "1 impacted"
    assert cells[("auth", charts.HIDDEN)]["label"] == ""
    assert len(cells) == 6


def test_without_hidden_streams_there_is_no_hidden_column() -> None:
    cells = charts.heatmap_cells([_row(INFRA, [LENDING], [])], ["payments", "lending"])
    assert {c["delivery"] for c in cells} == {"payments", "lending"}
    assert {c["state"] for c in cells} == {charts.IMPACTED, charts.NOT_IMPACTED}


def test_the_heatmap_keeps_the_answers_order_and_bolds_the_selected_row() -> None:
    rows = [_row(INFRA, [PAYMENTS], [], severity="LOW"), _row(AUTH, [], [])]
    spec = charts.heatmap(rows, ["payments"], selected="auth").to_dict()
    grid, bars = spec["hconcat"]
    y = grid["layer"][0]["encoding"]["y"]
    assert y["sort"] == ["infra", "auth"]
    assert "auth" in str(y["axis"]["labelFontWeight"])
    assert bars["layer"][0]["encoding"]["x"]["field"] == "blocks"


def test_the_impact_chart_draws_the_averages_as_rules() -> None:
    streams = [{"stream": "payments", "confidence_pct": 40.0, "cycle_time_p85": 12.5}]
    spec = charts.impact_chart(streams, avg_confidence_pct=40.0, avg_cycle_time_p85=None).to_dict()
    confidence, p85 = spec["hconcat"]
    assert len(confidence["layer"]) == 3  # bars, labels, the average
    assert len(p85["layer"]) == 2  # no average: no rule
    assert confidence["layer"][0]["encoding"]["x"]["scale"]["domain"] == [0, 100]


def test_no_tech_stream_gives_every_zone_an_empty_state() -> None:
    model = _model([], tech_visible=False)
    for render in (page.root_cause, page.heatmap, page.impact):
        html = render(model)
        assert "your roles cover none" in html and 'class="dpp-empty"' in html


def test_no_block_says_what_would_record_one() -> None:
    model = _model([_row(INFRA, [], []), _row(AUTH, [], [])])
    root = page.root_cause(model)
    assert "No tech stream blocked a delivery stream in the 14 days to 12 Nov 2026" in root
    assert "blocking_tech_stream" in root
    assert 'id="dpp-empty-impact"' in page.impact(model)
    assert page.heatmap(model).count("<tr data-tech=") == 2


def test_the_table_writes_the_answers_rows_escaped() -> None:
    rows = [
        _row(AUTH, [PAYMENTS, LENDING], [LENDING], count=3, confidence=55.25, p85=8.0),
    ]
    rows[0]["tech_stream"] = "auth<x>"
    html = page.table(rows)
    assert "auth&lt;x&gt;" in html and "auth<x>" not in html
    assert "<td>3: payments, lending, 1 you cannot see</td>" in html
    assert "<td>lending</td><td>55.2%</td><td>8.0 d</td>" in html


def test_the_root_cause_names_the_top_stream_and_the_calibration() -> None:
    rows = [_row(INFRA, [PAYMENTS, LENDING], [PAYMENTS], severity="HIGH", confidence=61.0)]
    html = page.root_cause(_model(rows, top=INFRA))
    assert "<strong>infra</strong> has the highest cross-stream impact" in html
    assert "impacting 2 delivery streams (payments, lending); blocking payments now" in html
    assert "average sprint confidence is 61.0%" in html
    assert "being calibrated" in html


def test_the_impact_zone_shows_each_stream_or_why_not() -> None:
    row = _row(INFRA, [PAYMENTS], [], count=2, severity="MEDIUM", confidence=None, p85=9.0)
    streams = (StreamImpact(PAYMENTS, False, None, "no active sprint", 9.0, 2, 0.5),)
    impact = Impact(INFRA, row, streams, hidden_streams=1, is_root_cause=True)
    html = page.impact(_model([row], top=INFRA, impact=impact))
    assert "Infrastructure (infra) — the root-cause signal." in html
    assert "<td>no active sprint</td>" in html
    assert "payments, 1 you cannot see" in html
    assert "A stream without a bar has no figure" in html
    none_seen = Impact(INFRA, row, (), hidden_streams=1, is_root_cause=True)
    html = page.impact(_model([row], top=INFRA, impact=none_seen))
    assert "blocked no work of any delivery stream you can see" in html
    assert "outside your roles" in html


@pytest.mark.parametrize("query_zones", [None, ("realtime",)])
def test_a_bar_without_zone_toggles_hides_the_row_and_keeps_the_zones(
    query_zones: tuple[str, ...] | None,
) -> None:
    state = FilterState() if query_zones is None else FilterState(zones=query_zones)
    bar = FilterBar(
        state, VisibleStreams((PAYMENTS,), (INFRA,)), today=date(2026, 11, 12), zones=()
    )
    assert bar.widget.children[2].layout.display == "none"
    bar.tech.value = "infra"
    assert bar.state.tech == "infra"
    assert bar.state.zones == state.zones  # not rewritten to "none"
    assert bar.url.last == state.replace(tech="infra").query_string()
