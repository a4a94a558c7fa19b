"""Charts of the scheduled computations (``notebooks/compute``): a ``ComputeResult``
summary frame (``dpp_lib.jobs.compute``) in, an Altair chart out. No maths: every value is
a column of the summary; the builders only reshape it for plotting."""

from __future__ import annotations

import altair as alt
import pandas as pd

WIDTH = 480
ROW = 26  # height per stream
SEVERITY_COLOURS = {
    "none": "#bdbdbd",
    "low": "#8fbf6a",
    "medium": "#f2b134",
    "high": "#e8743b",
    "critical": "#c0392b",
}
RATES = {
    "pr_linkage_pct": "PR linkage",
    "ticket_tagging_pct": "Ticket tagging",
    "deployment_traceability_pct": "Deploy traceability",
    "defect_attribution_pct": "Defect attribution",
    "pulse_response_pct": "Pulse response",
}


Chart = alt.Chart | alt.LayerChart | alt.HConcatChart


def _sized(chart: Chart, *, title: str, height: int, width: int = WIDTH) -> Chart:
    out: Chart = chart.properties(width=width, height=height, title=title)
    return out


def _height(frame: pd.DataFrame, key: str = "stream") -> int:
    return max(ROW * int(frame[key].nunique()), ROW * 2)


def _empty(title: str) -> alt.Chart:
    note = pd.DataFrame({"text": [f"{title}: nothing to show"]})
    chart: alt.Chart = alt.Chart(note).mark_text(size=13, color="#555").encode(text="text:N")
    return chart


def sprint_confidence(summary: pd.DataFrame) -> Chart:
    """Confidence (%) of finishing each stream's active sprint. Columns: stream,
    confidence_pct, sprint, remaining_items, working_days_left."""
    if summary.empty:
        return _empty("Sprint confidence")
    chart = (
        alt.Chart(summary)
        .mark_bar()
        .encode(
            x=alt.X(
                "confidence_pct:Q", title="Sprint confidence (%)", scale=alt.Scale(domain=[0, 100])
            ),
            y=alt.Y("stream:N", title=None, sort="x"),
            tooltip=["stream", "sprint", "confidence_pct", "remaining_items", "working_days_left"],
        )
    )
    return _sized(chart, title="Sprint confidence by stream", height=_height(summary))


def cycle_time(summary: pd.DataFrame) -> Chart:
    """Each stream's cycle time: a bar from p50 to p95 with a tick at p85. Columns: stream,
    kind, cycle_time_p50_days, cycle_time_p85_days, cycle_time_p95_days."""
    if summary.empty:
        return _empty("Cycle time")
    base = alt.Chart(summary).encode(
        y=alt.Y(
            "stream:N",
            title=None,
            sort=alt.EncodingSortField("cycle_time_p85_days", order="descending"),
        ),
        color=alt.Color("kind:N", title="Stream"),
        tooltip=[
            "stream",
            "kind",
            "cycle_time_p50_days",
            "cycle_time_p85_days",
            "cycle_time_p95_days",
        ],
    )
    spread = base.mark_bar(opacity=0.35, height=12).encode(
        x=alt.X(
            "cycle_time_p50_days:Q", title="Cycle time (business days): p50 to p95, tick at p85"
        ),
        x2="cycle_time_p95_days:Q",
    )
    p85 = base.mark_tick(thickness=3, size=18).encode(x="cycle_time_p85_days:Q")
    return _sized(spread + p85, title="Cycle time", height=_height(summary))


def diagnostics(summary: pd.DataFrame) -> Chart:
    """Flow efficiency of the delivery streams beside every stream's review turnaround
    p50. Columns: stream, kind, flow_efficiency_pct, slowest_queue, review_p50_hours,
    review_p85_hours."""
    if summary.empty:
        return _empty("Diagnostics")
    delivery = summary.loc[
        summary["kind"] == "delivery", ["stream", "flow_efficiency_pct", "slowest_queue"]
    ]
    reviews = summary[["stream", "kind", "review_p50_hours", "review_p85_hours"]]
    efficiency = (
        alt.Chart(delivery)
        .mark_bar()
        .encode(
            x=alt.X(
                "flow_efficiency_pct:Q",
                title="Flow efficiency (%)",
                scale=alt.Scale(domain=[0, 100]),
            ),
            y=alt.Y("stream:N", title=None, sort="x"),
            tooltip=["stream", "flow_efficiency_pct", "slowest_queue"],
        )
        .properties(width=WIDTH // 2, height=_height(summary), title="Active share of cycle time")
    )
    review = (
        alt.Chart(reviews)
        .mark_bar(color="#6f8fb3")
        .encode(
            x=alt.X("review_p50_hours:Q", title="Review turnaround p50 (hours)"),
            y=alt.Y("stream:N", title=None, sort="-x"),
            tooltip=["stream", "kind", "review_p50_hours", "review_p85_hours"],
        )
        .properties(width=WIDTH // 2, height=_height(summary), title="Time to first review")
    )
    both: alt.HConcatChart = alt.hconcat(efficiency, review)
    return both


def forecasts(summary: pd.DataFrame) -> Chart:
    """The simulated completion dates of each stream's remaining scope: a bar from p50 to
    p95, a tick at p85. Columns: stream, remaining_items, stored, p50_date … p95_date."""
    stored = summary[summary["stored"]] if not summary.empty else summary
    if stored.empty:
        return _empty("Forecasts")
    dates = ("p50_date", "p85_date", "p95_date")
    frame = stored[["stream", "remaining_items"]].assign(  # Vega-Lite wants text dates
        **{c: pd.to_datetime(stored[c]).dt.strftime("%Y-%m-%d") for c in dates}
    )
    base = alt.Chart(frame).encode(
        y=alt.Y("stream:N", title=None, sort=alt.EncodingSortField("p85_date", order="descending")),
        tooltip=["stream", "remaining_items", "p50_date", "p85_date", "p95_date"],
    )
    spread = base.mark_bar(opacity=0.35, height=12).encode(
        x=alt.X("p50_date:T", title="Completion date: 50 % to 95 % likely, tick at 85 %"),
        x2="p95_date:T",
    )
    p85 = base.mark_tick(thickness=3, size=18, color="#1f3b5a").encode(x="p85_date:T")
    return _sized(
        spread + p85, title="When will the remaining scope be done?", height=_height(stored)
    )


def cross_stream(summary: pd.DataFrame) -> Chart:
    """Blocks per tech stream over 14 days, coloured by severity. Columns: tech_stream,
    severity, block_count_14d, impacted_streams, avg_confidence_pct."""
    if summary.empty:
        return _empty("Cross-stream blocks")
    chart = (
        alt.Chart(summary)
        .mark_bar()
        .encode(
            x=alt.X("block_count_14d:Q", title="Blocks in the last 14 days"),
            y=alt.Y("tech_stream:N", title=None, sort="-x"),
            color=alt.Color(
                "severity:N",
                title="Severity",
                scale=alt.Scale(
                    domain=list(SEVERITY_COLOURS), range=list(SEVERITY_COLOURS.values())
                ),
            ),
            tooltip=[
                "tech_stream",
                "severity",
                "block_count_14d",
                "impacted_streams",
                "avg_confidence_pct",
            ],
        )
    )
    return _sized(
        chart, title="Which tech stream blocks delivery?", height=_height(summary, "tech_stream")
    )


def pulse(summary: pd.DataFrame) -> Chart:
    """Overall pulse score (1–5) per stream and survey period; withheld periods (fewer
    than three responses) leave a gap. Columns: stream, survey_period, overall_avg,
    response_count, response_rate_pct."""
    if summary.empty:
        return _empty("Pulse")
    base = alt.Chart(summary).encode(
        x=alt.X("survey_period:O", title="Survey period", axis=alt.Axis(labelAngle=0)),
        y=alt.Y("overall_avg:Q", title="Overall score (1–5)", scale=alt.Scale(domain=[1, 5])),
        color=alt.Color("stream:N", title="Stream"),
        tooltip=["stream", "survey_period", "overall_avg", "response_count", "response_rate_pct"],
    )
    return _sized(base.mark_line() + base.mark_point(filled=True), title="Team pulse", height=240)


def data_quality(summary: pd.DataFrame) -> Chart:
    """Each stream's rates (%), red where below target. Columns: stream, the ``*_pct``
    rate columns, below_target (the names of the rates below target, comma-separated)."""
    if summary.empty:
        return _empty("Data quality")
    long = summary.melt(
        id_vars=["stream", "below_target"],
        value_vars=[c for c in RATES if c in summary.columns],
        var_name="column",
        value_name="pct",
    ).dropna(subset=["pct"])
    long["rate"] = long["column"].map(RATES)
    long["status"] = [
        "below target" if c.removesuffix("_pct") in b.split(", ") else "on target"
        for c, b in zip(long["column"], long["below_target"], strict=True)
    ]
    base = alt.Chart(long).encode(
        x=alt.X(
            "rate:N",
            title=None,
            sort=list(RATES.values()),
            axis=alt.Axis(orient="top", labelAngle=0),
        ),
        y=alt.Y("stream:N", title=None),
    )
    cells = base.mark_rect().encode(
        color=alt.Color(
            "status:N",
            scale=alt.Scale(domain=["on target", "below target"], range=["#cfe8c4", "#f4b6a8"]),
            title=None,
        ),
        tooltip=["stream", "rate", "pct", "status"],
    )
    labels = base.mark_text(size=11).encode(text=alt.Text("pct:Q", format=".0f"))
    return _sized(cells + labels, title="Data quality (%)", height=_height(long))
