"""Every registered metric, ready to call for one moment and scope: the frames are read
once, each metric is a zero-argument callable. Used by the benchmark and the tests that
prove the registry computes on a real organisation; the API and notebooks call the metric
functions the same way."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pandas as pd
import sqlalchemy as sa

from dpp_lib.metrics import (
    cross_stream,
    data_quality,
    dora,
    dora_trend,
    flow,
    forecast,
    pulse,
    quality,
    review,
)
from dpp_lib.metrics.common import Scope
from dpp_lib.store import read
from dpp_lib.store.config_tables import load_lookups
from dpp_lib.store.schema import delivery_streams


@dataclass(frozen=True)
class MetricFrames:
    """The frames the registered metrics read, for one moment and scope (whole history up
    to ``as_of``: the metrics apply their own windows)."""

    as_of: datetime
    frames: dict[str, pd.DataFrame]
    team_sizes: dict[Any, int]
    team_size: int | None  # the delivery scope's team (summed over streams for all)


def metric_frames(
    conn: sa.Connection,
    *,
    as_of: datetime,
    delivery: Scope = Scope(),
    tech: Scope = Scope(),
) -> MetricFrames:
    """Flow, quality, forecast and pulse frames for the ``delivery`` scope; deployments,
    incidents, PRs and reviews for the ``tech`` scope; transitions for all."""
    lk = load_lookups(conn)
    sizes = dict(
        conn.execute(sa.select(delivery_streams.c.stream_id, delivery_streams.c.team_size)).all()
    )
    team = (
        sum(v for v in sizes.values() if v)
        if delivery.delivery_stream_id is None
        else sizes.get(delivery.delivery_stream_id)
    )
    sprints = read.sprint_frame(conn, scope=delivery)
    frames = {
        "cycles": read.cycles(conn, as_of=as_of, scope=delivery),
        "items": read.items(conn, lk, as_of=as_of, scope=delivery),
        "sprints": sprints,
        "snapshots": read.snapshots(conn, as_of=as_of, sprint_ids=list(sprints["sprint_id"])),
        "defects": read.defects(conn, as_of=as_of, scope=delivery),
        "pulse": read.pulse(conn, as_of=as_of, scope=delivery),
        "deploys": read.deploys(conn, as_of=as_of, scope=tech),
        "incidents": read.incidents(conn, as_of=as_of, scope=tech),
        "prs": read.prs(conn, as_of=as_of, scope=tech),
        "reviews": read.reviews(conn, as_of=as_of, scope=tech),
        "transitions": read.transitions(conn, lk, as_of=as_of),
    }
    return MetricFrames(as_of, frames, {k: v for k, v in sizes.items() if v}, team)


def metric_calls(
    conn: sa.Connection,
    *,
    as_of: datetime,
    delivery: Scope = Scope(),
    tech: Scope = Scope(),
    window_days: int = 30,
    frames: MetricFrames | None = None,
) -> dict[str, Callable[[], Any]]:
    """Flow, quality, forecast and pulse metrics for the ``delivery`` scope; DORA and review
    for the ``tech`` scope; cross-stream, data quality and integration health for all.
    ``frames`` (read by :func:`metric_frames` for the same moment and scopes) saves reading
    them again."""
    lk = load_lookups(conn)
    cal = lk.calendar()
    mf = frames or metric_frames(conn, as_of=as_of, delivery=delivery, tech=tech)
    f = mf.frames
    sizes, team = mf.team_sizes, mf.team_size
    w = window_days
    cycles, items, sprints, snapshots = f["cycles"], f["items"], f["sprints"], f["snapshots"]
    defects, responses = f["defects"], f["pulse"]
    deploys, incidents, prs, reviews = f["deploys"], f["incidents"], f["prs"], f["reviews"]
    moves = f["transitions"]
    all_prs = prs if tech.is_all else read.prs(conn, as_of=as_of)
    all_deploys = deploys if tech.is_all else read.deploys(conn, as_of=as_of)
    now = datetime.now(UTC)
    sources = read.integrations(conn, as_of=now)
    return {
        "wip_by_stage": lambda: flow.wip_by_stage(items, as_of=as_of),
        "cycle_time": lambda: flow.cycle_time(cycles, as_of=as_of, window_days=w),
        "throughput": lambda: flow.throughput(cycles, as_of=as_of, window_days=w, calendar=cal),
        "flow_efficiency": lambda: flow.flow_efficiency(cycles, as_of=as_of, window_days=w),
        "defect_escape": lambda: quality.defect_escape(defects, cycles, as_of=as_of, window_days=w),
        "review_turnaround": lambda: review.review_turnaround(
            prs, reviews, as_of=as_of, window_days=w
        ),
        "deployment_frequency": lambda: dora.deployment_frequency(
            deploys, as_of=as_of, window_days=w, calendar=cal
        ),
        "change_failure_rate": lambda: dora.change_failure_rate(
            deploys, incidents, as_of=as_of, window_days=w
        ),
        "time_to_restore": lambda: dora.time_to_restore(incidents, as_of=as_of, window_days=w),
        "lead_time_for_changes": lambda: dora.lead_time_for_changes(
            prs, deploys, as_of=as_of, window_days=w
        ),
        "dora_trend": lambda: dora_trend.dora_trend(
            deploys, incidents, prs, as_of=as_of, window_days=w, calendar=cal
        ),
        "sprint_confidence": lambda: forecast.sprint_confidence(
            cycles, sprints, snapshots, as_of=as_of, calendar=cal
        ),
        "forecast_how_many": lambda: forecast.forecast_how_many(
            cycles, sprints, as_of=as_of, calendar=cal
        ),
        "forecast_when": lambda: forecast.forecast_when(cycles, items, as_of=as_of, calendar=cal),
        "team_pulse": lambda: pulse.team_pulse(responses, as_of=as_of, team_sizes=sizes),
        "cross_stream_bottleneck": lambda: cross_stream.cross_stream_bottleneck(
            moves, as_of=as_of, sprint_confidence_pct={}, cycle_time_p85_days={}
        ),
        "data_quality": lambda: data_quality.data_quality(
            all_prs,
            moves,
            all_deploys,
            defects,
            responses,
            as_of=as_of,
            window_days=w,
            team_size=team,
        ),
        "integration_health": lambda: data_quality.integration_health(sources, as_of=now),
    }
