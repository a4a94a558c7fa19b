"""Charts of the Admin page (spec §7.1.3): the admin views' answers in, Altair charts out
(``dpp_lib.charts.dashboard.svg`` draws them offline). No maths: every value is a field of
an answer; the builders only reshape it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, cast

import altair as alt
import pandas as pd

# The data-quality rates of spec §5.6 in the page's order, with their labels.
RATE_LABELS = {
    "pr_linkage": "PR linkage",
    "ticket_tagging": "Ticket tagging",
    "deployment_traceability": "Deploy traceability",
    "defect_attribution": "Defect attribution",
    "pulse_response": "Pulse response",
}
VERDICTS = ("below target", "on target", "no data")
VERDICT_COLOURS = ("#e4572e", "#66a61e", "#e4e7eb")
HEALTH = ("healthy", "stale", "no_data")
HEALTH_COLOURS = ("#66a61e", "#f2b134", "#9aa5b1")


def rate_label(rate: str, target: float) -> str:
    return f"{RATE_LABELS.get(rate, rate)} ≥ {target:g}%"


def quality_cells(streams: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One cell per stream × rate the stream's kind has (``data_quality_report``'s
    ``streams`` rows): the value, its target, and the verdict."""
    return [
        {
            "stream": f"{s['stream']} ({s['kind']})",
            "rate": rate_label(name, r["target"]),
            "value": r["value"],
            "text": "—" if r["value"] is None else f"{r['value']:.1f}%",
            "verdict": "no data"
            if r["value"] is None
            else "below target"
            if r["below_target"]
            else "on target",
            "sample": f"{r['numerator']} of {r['denominator']}",
        }
        for s in streams
        for name, r in s["rates"].items()
    ]


def data_quality(streams: Sequence[Mapping[str, Any]]) -> alt.HConcatChart:
    """Streams (rows) × data-quality rates (columns, with their targets), one panel per kind
    of stream (each kind owns its rates), each cell the stream's rate: red below its target,
    green on it, grey without data."""
    panels = [
        _quality_panel([s for s in streams if s["kind"] == kind])
        for kind in ("delivery", "tech")
        if any(s["kind"] == kind for s in streams)
    ]
    return alt.hconcat(*panels, spacing=30).properties(
        title="Data quality per stream against the spec §5.6 targets"
    )


def _quality_panel(streams: Sequence[Mapping[str, Any]]) -> alt.LayerChart:
    cells = pd.DataFrame(
        quality_cells(streams), columns=["stream", "rate", "value", "text", "verdict", "sample"]
    )
    rates = list(dict.fromkeys(cells["rate"]))
    order = [c for name in RATE_LABELS for c in rates if c.startswith(RATE_LABELS[name] + " ")]
    rows = list(dict.fromkeys(cells["stream"]))
    base = alt.Chart(cells).encode(
        x=alt.X("rate:N", sort=order, title=None, axis=alt.Axis(orient="top", labelAngle=0)),
        y=alt.Y("stream:N", sort=rows, title=None),
    )
    chart = alt.layer(
        base.mark_rect(stroke="#ffffff", strokeWidth=2).encode(
            color=alt.Color(
                "verdict:N",
                title="Rate",
                scale=alt.Scale(domain=list(VERDICTS), range=list(VERDICT_COLOURS)),
            ),
            tooltip=["stream:N", "rate:N", "text:N", "sample:N"],
        ),
        base.mark_text(fontSize=11).encode(
            text="text:N",
            color=alt.condition(
                "datum.verdict == 'no data'", alt.value("#1f2933"), alt.value("#ffffff")
            ),
        ),
    ).properties(width=130 * max(1, len(order)), height=24 * max(1, len(rows)))
    return cast(alt.LayerChart, chart)


def integrations(sources: Mapping[str, Mapping[str, Any]]) -> alt.LayerChart:
    """Events received in the last 24 hours per source, coloured by its health."""
    frame = pd.DataFrame(
        [
            {"source": name, "events": int(i["eventCount24h"]), "status": i["status"]}
            for name, i in sources.items()
        ],
        columns=["source", "events", "status"],
    )
    base = alt.Chart(frame).encode(
        y=alt.Y("source:N", sort=list(frame["source"]), title=None),
        x=alt.X("events:Q", title="Events in the last 24 hours", axis=alt.Axis(tickMinStep=1)),
    )
    chart = alt.layer(
        base.mark_bar().encode(
            color=alt.Color(
                "status:N",
                title="Status",
                scale=alt.Scale(domain=list(HEALTH), range=list(HEALTH_COLOURS)),
            )
        ),
        base.mark_text(align="left", dx=3).encode(text="events:Q"),
    ).properties(width=300, height=26 * max(2, len(frame)), title="Integration health")
    return cast(alt.LayerChart, chart)
