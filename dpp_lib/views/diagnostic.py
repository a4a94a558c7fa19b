"""``/metrics/diagnostic``: flow efficiency (with the per-queue waits), defect escape (with the
introduced × found matrix) and PR review turnaround, for a delivery or a tech stream."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from dpp_lib.metrics import flow, quality, review
from dpp_lib.metrics.common import Scope
from dpp_lib.store import read
from dpp_lib.views.common import Org, num


def diagnostic(
    conn: sa.Connection, org: Org, *, scope: Scope, as_of: datetime, window_days: int
) -> dict[str, Any]:
    since = as_of - timedelta(days=window_days)
    cycles = read.cycles(conn, as_of=as_of, since=since, scope=scope)
    defects = read.defects(conn, as_of=as_of, scope=scope)
    prs = read.prs(conn, as_of=as_of, scope=scope)
    reviews = read.reviews(conn, as_of=as_of, scope=scope)
    fe = flow.flow_efficiency(cycles, as_of=as_of, window_days=window_days)
    de = quality.defect_escape(defects, cycles, as_of=as_of, window_days=window_days)
    rt = review.review_turnaround(
        prs,
        reviews,
        as_of=as_of,
        window_days=window_days,
        min_contributors=_min_contributors(org, scope),
    )
    return {
        "flow_efficiency": flow_efficiency_answer(fe),
        "defect_escape": {
            "rate": num(de.rate),
            "defect_count": de.defect_count,
            "total_defects": de.total_defects,
            "total_completed": de.total_completed,
            "matrix": {k: dict(v) for k, v in de.matrix.items()},
            "by_found_stage": dict(de.by_found_stage),
            "unattributed_pct": num(de.unattributed_pct),
            "sample_size": de.sample_size,
        },
        "pr_review_turnaround": {
            "median_hours": num(rt.p50_hours),
            "p85_hours": num(rt.p85_hours),
            "reviewer_concentration": num(rt.reviewer_concentration),
            "uneven_review_load": rt.uneven_review_load,
            "is_suppressed": rt.is_suppressed,
            "contributor_count": None if rt.is_suppressed else rt.contributor_count,
            "review_count": rt.review_count,
            "sample_size": rt.sample_size,
        },
    }


def flow_efficiency_answer(fe: flow.FlowEfficiency) -> dict[str, Any]:
    """Flow efficiency with its per-queue waits, as ``/metrics/diagnostic`` gives it."""
    return {
        "percentage": num(fe.flow_efficiency_pct),
        "active_days": num(fe.active_days),
        "wait_days": num(fe.wait_days),
        "queues": [
            {"queue": q.key, "mean_days": num(q.mean_days), "items": q.items} for q in fe.queues
        ],
        "slowest_queue": fe.slowest_queue,
        "sample_size": fe.sample_size,
    }


def _min_contributors(org: Org, scope: Scope) -> int:
    """A stream's own minimum (§4.6) when one stream is asked for, else the org's."""
    for s in (*org.delivery, *org.tech):
        if s.stream_id in (scope.delivery_stream_id, scope.tech_stream_id) and s.min_contributors:
            return s.min_contributors
    return org.min_contributors
