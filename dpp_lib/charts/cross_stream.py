"""Charts of the Cross-stream page (spec §7.1.2): the ``/metrics/cross-stream`` answer's rows
in, Altair charts out (``dpp_lib.charts.dashboard.svg`` draws them offline). No maths: every
value is a field of the answer or of another view's answer; the builders only reshape.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, cast

import altair as alt
import pandas as pd

# The view's severities, least to most severe, and their colours (a cell's colour is its
# tech stream's severity; a stream it does not impact stays grey).
SEVERITIES = ("NONE", "LOW", "MEDIUM", "HIGH", "CRITICAL")
SEVERITY_COLOURS = ("#e4e7eb", "#fde68a", "#f2b134", "#e4572e", "#9b1c1c")
NOT_IMPACTED = "not impacted"
IMPACTED = "impacted"
BLOCKED = "blocked now"
HIDDEN = "Streams you cannot see"
CELL_COLUMNS = ("tech", "delivery", "state", "severity", "label")
CELL = 86
ROW = 30


def heatmap_cells(
    correlations: Sequence[Mapping[str, Any]], columns: Sequence[str]
) -> list[dict[str, Any]]:
    """One cell per tech stream (row) × delivery stream (column, by name): ``state`` is
    ``blocked now`` (a ticket of the column is blocked by the row now), ``impacted`` (blocked
    in the 14 days) or ``not impacted``; ``severity`` the row's when impacted. A last column
    counts impacted streams the viewer may not see, when there are any."""
    hidden_any = any(_hidden(r) for r in correlations)
    cells: list[dict[str, Any]] = []
    for r in correlations:
        impacted = {s["name"] for s in r["impacted_delivery_streams"]}
        blocked = {s["name"] for s in r["blocked_delivery_streams"]}
        for name in columns:
            state = BLOCKED if name in blocked else IMPACTED if name in impacted else NOT_IMPACTED
            cells.append(
                {
                    "tech": r["tech_stream"],
                    "delivery": name,
                    "state": state,
                    "severity": r["severity"] if state != NOT_IMPACTED else "NONE",
                    "label": "" if state == NOT_IMPACTED else state,
                }
            )
        if hidden_any:
            n = _hidden(r)
            cells.append(
                {
                    "tech": r["tech_stream"],
                    "delivery": HIDDEN,
                    "state": IMPACTED if n else NOT_IMPACTED,
                    "severity": r["severity"] if n else "NONE",
                    "label": f"{n} impacted" if n else "",
                }
            )
    return cells


def _hidden(row: Mapping[str, Any]) -> int:
    return int(row["impacted_stream_count"]) - len(row["impacted_delivery_streams"])


def heatmap(
    correlations: Sequence[Mapping[str, Any]],
    columns: Sequence[str],
    *,
    selected: str | None = None,
) -> alt.HConcatChart:
    """Tech streams (rows, the answer's order: highest impact first) × delivery streams,
    each cell coloured by the tech stream's severity where it impacts the delivery stream,
    "blocked now" written where it blocks a ticket at ``as_of``; beside it the block events
    of each tech stream in the 14 days. ``selected``: a tech stream whose label is bold."""
    cells = heatmap_cells(correlations, columns)
    order = [r["tech_stream"] for r in correlations]
    x_order = [*columns, *([HIDDEN] if any(c["delivery"] == HIDDEN for c in cells) else [])]
    y = alt.Y(
        "tech:N",
        sort=order,
        title="Tech stream",
        axis=alt.Axis(
            labelFontWeight=alt.condition(
                f"datum.value == {selected!r}", alt.value("bold"), alt.value("normal")
            )
            if selected
            else "normal",
        ),
    )
    base = alt.Chart(pd.DataFrame(cells, columns=list(CELL_COLUMNS))).encode(
        x=alt.X(
            "delivery:N",
            sort=x_order,
            title="Delivery stream",
            axis=alt.Axis(orient="top", labelAngle=0, labelLimit=CELL + 40),
        ),
        y=y,
    )
    grid = alt.layer(
        base.mark_rect(stroke="#ffffff", strokeWidth=2).encode(
            color=alt.Color(
                "severity:N",
                title="Severity",
                scale=alt.Scale(domain=list(SEVERITIES), range=list(SEVERITY_COLOURS)),
            ),
            tooltip=["tech:N", "delivery:N", "state:N", "severity:N"],
        ),
        base.mark_text(fontSize=11).encode(
            text="label:N",
            color=alt.condition(
                "datum.severity == 'HIGH' || datum.severity == 'CRITICAL'",
                alt.value("#ffffff"),
                alt.value("#1f2933"),
            ),
        ),
    ).properties(width=CELL * max(1, len(x_order)), height=ROW * max(1, len(order)))
    counts = pd.DataFrame(
        [
            {"tech": r["tech_stream"], "blocks": r["block_count_14d"], "severity": r["severity"]}
            for r in correlations
        ],
        columns=["tech", "blocks", "severity"],
    )
    bars = alt.Chart(counts).encode(
        y=alt.Y("tech:N", sort=order, title=None, axis=None),
        x=alt.X("blocks:Q", title="Block events, 14 days", axis=alt.Axis(tickMinStep=1)),
    )
    blocks = alt.layer(
        bars.mark_bar().encode(
            color=alt.Color(
                "severity:N",
                scale=alt.Scale(domain=list(SEVERITIES), range=list(SEVERITY_COLOURS)),
            )
        ),
        bars.mark_text(align="left", dx=3).encode(text="blocks:Q"),
    ).properties(width=160, height=ROW * max(1, len(order)))
    chart = alt.hconcat(grid, blocks, spacing=12).properties(
        title="Which tech streams block which delivery streams"
    )
    return cast(alt.HConcatChart, chart.resolve_scale(color="shared"))


def impact_chart(
    streams: Sequence[Mapping[str, Any]],
    *,
    avg_confidence_pct: float | None,
    avg_cycle_time_p85: float | None,
) -> alt.HConcatChart:
    """Each impacted delivery stream's sprint confidence (%) and cycle-time p85 (business
    days), with the averages the severity is computed from as rules. ``streams``: rows with
    ``stream``, ``confidence_pct`` and ``cycle_time_p85`` (None: no figure, no bar)."""
    frame = pd.DataFrame(
        [
            {
                "stream": s["stream"],
                "confidence": s["confidence_pct"],
                "p85": s["cycle_time_p85"],
            }
            for s in streams
        ],
        columns=["stream", "confidence", "p85"],
    )
    order = list(frame["stream"])
    height = 28 * max(2, len(frame))

    def panel(
        field: str, title: str, average: float | None, colour: str, domain: list[float] | None
    ) -> alt.LayerChart:
        scale = alt.Scale(domain=domain) if domain else alt.Scale(zero=True)
        base = alt.Chart(frame).encode(
            y=alt.Y("stream:N", sort=order, title=None),
            x=alt.X(f"{field}:Q", title=title, scale=scale),
        )
        layers: list[Any] = [
            base.mark_bar(color=colour),
            base.mark_text(align="left", dx=3).encode(text=alt.Text(f"{field}:Q", format=".1f")),
        ]
        if average is not None:
            rule = pd.DataFrame({"value": [average], "label": [f"average {average:.1f}"]})
            layers.append(
                alt.Chart(rule)
                .mark_rule(color="#1f2933", strokeDash=[4, 3])
                .encode(x="value:Q", tooltip=["label:N"])
            )
        return cast(alt.LayerChart, alt.layer(*layers).properties(width=220, height=height))

    return alt.hconcat(
        panel("confidence", "Sprint confidence (%)", avg_confidence_pct, "#4292c6", [0, 100]),
        panel("p85", "Cycle time p85 (business days)", avg_cycle_time_p85, "#f2b134", None),
        spacing=24,
    ).properties(title="The impacted delivery streams (dashed: the averages behind the severity)")
