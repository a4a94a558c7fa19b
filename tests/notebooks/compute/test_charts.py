"""The compute notebooks' charts (``dpp_lib.charts.compute``) from summaries shaped like
the computations' (dates as ``date``, missing values as None/NaN) and from empty ones:
each carries the summary's values and renders to SVG offline."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

import altair as alt
import pandas as pd
import pytest
import vl_convert

from dpp_lib.charts import compute as charts

NAN = float("nan")
SUMMARIES: dict[str, tuple[Callable[[pd.DataFrame], Any], pd.DataFrame, str, list[Any]]] = {
    "sprint_confidence": (
        charts.sprint_confidence,
        pd.DataFrame(
            {
                "stream": ["payments", "lending"],
                "kind": ["delivery"] * 2,
                "confidence_pct": [62.5, NAN],
                "sprint": ["PAY 105", None],
                "remaining_items": [36, None],
                "working_days_left": [2, None],
                "note": ["", "no active sprint"],
            }
        ),
        "confidence_pct",
        [62.5, None],
    ),
    "cycle_time": (
        charts.cycle_time,
        pd.DataFrame(
            {
                "stream": ["payments", "core-api"],
                "kind": ["delivery", "tech"],
                "cycle_time_p50_days": [19.2, 16.1],
                "cycle_time_p85_days": [26.8, NAN],
                "cycle_time_p95_days": [32.5, 31.6],
            }
        ),
        "cycle_time_p85_days",
        [26.8, None],
    ),
    "diagnostics": (
        charts.diagnostics,
        pd.DataFrame(
            {
                "stream": ["payments", "auth"],
                "kind": ["delivery", "tech"],
                "flow_efficiency_pct": [41.2, NAN],
                "defect_escape_rate_pct": [8.3, NAN],
                "review_p50_hours": [3.3, 3.3],
                "review_p85_hours": [24.8, 20.6],
                "slowest_queue": ["dev_queue", ""],
            }
        ),
        "flow_efficiency_pct",
        [41.2],  # tech streams have no flow efficiency of their own
    ),
    "forecasts": (
        charts.forecasts,
        pd.DataFrame(
            {
                "stream": ["payments", "lending"],
                "method": ["monte_carlo", "linear"],
                "remaining_items": [67, 80],
                "weeks_of_history": [9, 4],
                **{f"p{q}_date": [date(2027, 1, q % 28 + 1), None] for q in (50, 70, 85, 95)},
                "linear_date": [None, date(2027, 2, 1)],
                "stored": [True, False],
                "note": ["", "low confidence"],
            }
        ),
        "p85_date",
        ["2027-01-02"],  # the linear projection is not drawn
    ),
    "cross_stream": (
        charts.cross_stream,
        pd.DataFrame(
            {
                "tech_stream": ["infra", "auth"],
                "severity": ["high", "none"],
                "block_count_14d": [4, 0],
                "impacted_streams": ["insights, lending", ""],
                "blocked_now": ["insights", ""],
                "avg_confidence_pct": [0.0, None],
                "avg_cycle_time_p85_days": [24.07, None],
            }
        ),
        "block_count_14d",
        [4, 0],
    ),
    "pulse": (
        charts.pulse,
        pd.DataFrame(
            {
                "stream": ["payments", "payments"],
                "survey_period": ["2026-10", "2026-11"],
                "response_count": [6, 2],
                "response_rate_pct": [75.0, 25.0],
                "overall_avg": [3.44, None],  # withheld: under three answers
            }
        ),
        "overall_avg",
        [3.44, None],
    ),
    "data_quality": (
        charts.data_quality,
        pd.DataFrame(
            {
                "stream": ["auth", "lending"],
                "kind": ["tech", "delivery"],
                "pr_linkage_pct": [84.2, NAN],
                "ticket_tagging_pct": [100.0, NAN],
                "deployment_traceability_pct": [75.0, NAN],
                "defect_attribution_pct": [NAN, 76.9],
                "pulse_response_pct": [NAN, 55.6],
                "below_target": ["deployment_traceability", "pulse_response"],
                "alerts": ["deployment_traceability", "pulse_response"],
            }
        ),
        "pct",
        [84.2, 100.0, 75.0, 76.9, 55.6],
    ),
}


def _values(spec: dict[str, Any], field: str) -> list[Any]:
    """``field`` of every row of the chart's datasets."""
    return [row.get(field) for rows in spec["datasets"].values() for row in rows if field in row]


@pytest.mark.parametrize("name", list(SUMMARIES))
def test_chart_carries_the_summary_and_renders_offline(name: str) -> None:
    build, summary, field, expected = SUMMARIES[name]
    chart = build(summary)
    spec = chart.to_dict()
    assert sorted(map(str, _values(spec, field))) == sorted(map(str, expected))
    svg = vl_convert.vegalite_to_svg(chart.to_json())
    assert svg.lstrip().startswith("<svg") and "http" not in svg.split(">", 1)[0].replace(
        "http://www.w3.org", ""
    )


def test_data_quality_marks_the_rates_below_target() -> None:
    build, summary, _, _ = SUMMARIES["data_quality"]
    spec = build(summary).to_dict()
    status = {
        (r["stream"], r["rate"]): r["status"] for rows in spec["datasets"].values() for r in rows
    }
    assert status[("auth", "Deploy traceability")] == "below target"
    assert status[("auth", "PR linkage")] == "on target"
    assert status[("lending", "Pulse response")] == "below target"


@pytest.mark.parametrize("name", list(SUMMARIES))
def test_an_empty_summary_gives_a_chart_that_says_so(name: str) -> None:
    build, summary, _, _ = SUMMARIES[name]
    chart = build(summary.iloc[0:0])
    assert isinstance(chart, alt.Chart)
    assert "nothing to show" in str(_values(chart.to_dict(), "text"))
