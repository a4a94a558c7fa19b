"""The Overview's charts from view answers (checked through ``to_dict()``), and their SVG."""

from __future__ import annotations

from typing import Any

from dpp_lib.charts import dashboard as charts


def _layers(spec: dict[str, Any]) -> list[dict[str, Any]]:
    return list(spec.get("layer", [spec]))


def _data(spec: dict[str, Any]) -> list[dict[str, Any]]:
    """The rows of the chart's (single) inline data set."""
    datasets = spec["datasets"]
    assert len(datasets) >= 1
    rows: list[dict[str, Any]] = next(iter(datasets.values()))
    return rows


def test_wip_stacks_each_stage_by_age_in_stage_order() -> None:
    spec = charts.wip_by_stage({"qa": {">7d": 3}, "dev": {"<24h": 1, "24-72h": 2}}).to_dict()
    rows = _data(spec)
    assert [r["stage"] for r in rows][:: len(charts.AGING)] == ["Development", "QA"]
    assert {(r["stage"], r["age"]): r["items"] for r in rows}[("QA", ">7d")] == 3
    assert spec["encoding"]["color"]["scale"]["domain"] == list(charts.AGING)


def test_the_scatter_draws_the_p85_line_and_names_the_first_outliers() -> None:
    points = [
        {"ticket_id": f"T-{i}", "cycle_time_days": float(i), "completed_at": "2026-11-0{}T10:00Z"}
        for i in range(1, 10)
    ]
    outliers = [f"T-{i}" for i in range(9, 0, -1)][: charts.LABELLED_OUTLIERS + 2]
    spec = charts.cycle_scatter(points, p85=7.5, outliers=outliers[:2]).to_dict()
    layers = _layers(spec)
    rules = [layer for layer in layers if layer["mark"]["type"] == "rule"]
    assert len(rules) == 1
    rows = _data(spec)
    labelled = {r["ticket"] for r in rows if r["label"]}
    assert labelled == {"T-9", "T-8"}
    no_line = charts.cycle_scatter(points, p85=None, outliers=[]).to_dict()
    assert all(layer["mark"]["type"] != "rule" for layer in _layers(no_line))


def test_the_forecast_marks_each_percentile_date() -> None:
    when = {
        "histogram": [
            {"completion_date": "2027-01-06", "pct": 40.0},
            {"completion_date": "2027-01-13", "pct": 60.0},
        ],
        "p50": "2027-01-13",
        "p70": "2027-01-13",
        "p85": "2027-01-13",
        "p95": None,
    }
    spec = charts.forecast_when(when).to_dict()
    labels = [r["label"] for rows in spec["datasets"].values() for r in rows if "label" in r]
    assert labels == ["p50 2027-01-13", "p70 2027-01-13", "p85 2027-01-13"]


def test_pulse_of_several_streams_draws_each_streams_overall_average() -> None:
    base = {"pace_avg": 3.0, "tooling_avg": 2.0, "clarity_avg": 4.0, "response_rate_pct": 70.0}
    aggregates = [
        {**base, "survey_period": "2026-10", "delivery_stream": s, "overall_avg": avg}
        for s, avg in (("payments", 3.0), ("lending", 2.5))
    ]
    spec = charts.pulse_trend(aggregates).to_dict()
    lines = {r["line"] for rows in spec["datasets"].values() for r in rows if "line" in r}
    assert lines == {"payments", "lending"}
    one = charts.pulse_trend(aggregates[:1]).to_dict()
    lines = {r["line"] for rows in one["datasets"].values() for r in rows if "line" in r}
    assert lines == {"Pace", "Tooling", "Clarity"}


def test_svg_ids_are_unique_per_chart() -> None:
    chart = charts.defect_matrix({"dev": {"qa": 2, "uat": 1}})
    first, second = charts.svg(chart), charts.svg(chart)
    assert first.startswith("<svg")
    assert ">2<" in first  # the counts are written in the cells
    ids = charts._ID.findall(first)  # the colour legend's gradient
    assert ids and not set(ids) & set(charts._ID.findall(second))
    assert all(f"url(#{i})" in first for i in ids)  # references follow their element
