"""``/metrics/pulse`` (team pulse aggregates) and ``/metrics/cross-stream`` (block analysis)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import numpy as np
import sqlalchemy as sa

from dpp_lib.ingest.lookups import OrgLookups
from dpp_lib.metrics import cross_stream, flow, forecast, pulse
from dpp_lib.metrics.common import Scope, stream_rows
from dpp_lib.orgconfig import CrossStream
from dpp_lib.store import read
from dpp_lib.views.common import Org, num

NO_ROWS = np.empty(0, dtype=np.intp)


def pulse_view(
    conn: sa.Connection, org: Org, *, scope: Scope, as_of: datetime, periods: int
) -> dict[str, Any]:
    """The last ``periods`` survey months of every covered delivery stream; a period with
    fewer than the minimum responses is suppressed (averages null)."""
    responses = read.pulse(conn, as_of=as_of, scope=scope)
    sizes = org.team_sizes(scope)
    result = pulse.team_pulse(responses, as_of=as_of, team_sizes=sizes, periods=periods)
    return {
        "aggregates": [
            {
                "delivery_stream_id": str(a.delivery_stream_id),
                "delivery_stream": org.name_of(a.delivery_stream_id),
                "survey_period": a.survey_period,
                "response_count": a.response_count,
                "team_size": a.team_size,
                "response_rate_pct": num(a.response_rate_pct),
                "is_suppressed": a.suppressed,
                "pace_avg": num(a.pace_avg),
                "pace_trend": num(a.pace_trend),
                "tooling_avg": num(a.tooling_avg),
                "tooling_trend": num(a.tooling_trend),
                "clarity_avg": num(a.clarity_avg),
                "clarity_trend": num(a.clarity_trend),
                "overall_avg": num(a.overall_avg),
            }
            for a in result.aggregates
        ],
        "latest_period": result.period,
    }


def cross_stream_view(
    conn: sa.Connection,
    lookups: OrgLookups,
    org: Org,
    *,
    scope: Scope,
    delivery_visible: frozenset[object] | None,
    as_of: datetime,
) -> dict[str, Any]:
    """Block analysis over the 14 days before ``as_of`` for every active tech stream,
    reported for the tech streams ``scope`` covers. Impact is measured on every delivery
    stream (a blocker's impact is not smaller because the caller cannot see a stream), but
    only streams in ``delivery_visible`` (None: all) are named."""
    # The analysis reads block and unblock events only (``cross_stream.BLOCK_EVENTS``):
    # every event of every ticket gave the same answer and took 80 s on 4 M events.
    moves = read.transitions(conn, lookups, as_of=as_of, event_types=cross_stream.BLOCK_EVENTS)
    cycles = read.cycles(conn, as_of=as_of)
    sprints = read.sprint_frame(conn)
    snaps = read.snapshots(conn, as_of=as_of)
    calendar = lookups.calendar()
    confidence: dict[Any, float | None] = {}
    p85: dict[Any, float | None] = {}
    # Each stream's rows found in one pass (``stream_rows``), not one filter per stream.
    cycle_rows, sprint_rows = stream_rows(cycles, "delivery"), stream_rows(sprints, "delivery")
    snap_rows = snaps.groupby("sprint_id", sort=False).indices if len(snaps) else {}
    for s in org.delivery:
        own_cycles = cycles.iloc[cycle_rows.get(s.stream_id, NO_ROWS)]
        own_sprints = sprints.iloc[sprint_rows.get(s.stream_id, NO_ROWS)]
        own_snaps = [snap_rows[i] for i in own_sprints["sprint_id"] if i in snap_rows]
        confidence[s.stream_id] = forecast.sprint_confidence(
            own_cycles,
            own_sprints,
            snaps.iloc[np.sort(np.concatenate(own_snaps)) if own_snaps else NO_ROWS],
            as_of=as_of,
            calendar=calendar,
        ).confidence_pct
        p85[s.stream_id] = flow.cycle_time(own_cycles, as_of=as_of).p85
    rules = CrossStream.model_validate(org.settings.get("cross_stream") or {})
    result = cross_stream.cross_stream_bottleneck(
        moves,
        as_of=as_of,
        sprint_confidence_pct=confidence,
        cycle_time_p85_days=p85,
        tech_streams=[t.stream_id for t in org.tech],
        rules=rules.severity_rules,
        calibration=rules.calibration,
    )
    shown = {t.stream_id for t in org.tech_in(scope)}

    def named(ids: tuple[object, ...]) -> list[dict[str, Any]]:
        shown = [i for i in ids if delivery_visible is None or i in delivery_visible]
        return sorted(
            ({"id": str(i), "name": org.name_of(i)} for i in shown),
            key=lambda s: (s["name"] or "", s["id"]),
        )

    correlations = [
        {
            "tech_stream_id": str(c.tech_stream_id),
            "tech_stream": org.name_of(c.tech_stream_id),
            "block_count_14d": c.block_count_14d,
            "blocked_ticket_count": c.blocked_ticket_count,
            "impacted_stream_count": c.impacted_stream_count,
            "impacted_delivery_streams": named(c.impacted_delivery_streams),
            "blocked_delivery_streams": named(c.blocked_delivery_streams),
            "avg_confidence_pct": num(c.avg_confidence_pct),
            "avg_cycle_time_p85": num(c.avg_cycle_time_p85),
            "severity": c.severity.upper(),
            "computed_at": as_of,
        }
        for c in result.correlations
        if c.tech_stream_id in shown
    ]
    top = result.top_tech_stream_id
    return {
        "correlations": correlations,
        "top_tech_stream": (
            {"id": str(top), "name": org.name_of(top)} if top is not None and top in shown else None
        ),
        "calibration": result.calibration,
        "window_start": result.window.start,
        "sample_size": result.sample_size,
    }
