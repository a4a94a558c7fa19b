"""``/metrics/trends``: the DORA four, as a weekly series for one tech stream or as the
current-window summary of every tech stream the caller may see (API reference units:
deploys per week or per bucket, change failure rate %, time to restore minutes, lead time
hours)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pandas as pd
import sqlalchemy as sa

from dpp_lib.ingest.lookups import OrgLookups
from dpp_lib.metrics import dora, dora_trend
from dpp_lib.metrics.common import Scope
from dpp_lib.store import read
from dpp_lib.views.common import Org, num


def _frames(
    conn: sa.Connection, scope: Scope, as_of: datetime
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    return (
        read.deploys(conn, as_of=as_of, scope=scope),
        read.incidents(conn, as_of=as_of, scope=scope),
        read.prs(conn, as_of=as_of, scope=scope),
    )


def trend_series(
    conn: sa.Connection, lookups: OrgLookups, *, scope: Scope, as_of: datetime, window_days: int
) -> dict[str, Any]:
    """One point per week (Monday, org time zone) the window touches; the first and last
    weeks are clipped to the window (``partial``), all as known at ``as_of``."""
    deploys, incidents, prs = _frames(conn, scope, as_of)
    trend = dora_trend.dora_trend(
        deploys,
        incidents,
        prs,
        as_of=as_of,
        window_days=window_days,
        calendar=lookups.calendar(),
        correlation_window_minutes=lookups.incident_correlation_window_minutes,
    )
    return {
        "series": [
            {
                "weekStart": w.week_start.isoformat(),
                "deploymentFrequency": w.deploy_count,
                "changeFailureRate": num(w.change_failure_rate),
                "ttrMedian": num(w.ttr_median),
                "leadTimeP50": num(w.lead_time_p50),
                "leadTimeP85": num(w.lead_time_p85),
                "failedDeployCount": w.failed_count,
                "incidentCount": w.incident_count,
                "leadTimeSampleSize": w.lead_time_sample,
                "partial": w.partial,
            }
            for w in trend.weeks
        ]
    }


def trend_summary(
    conn: sa.Connection,
    lookups: OrgLookups,
    org: Org,
    *,
    scope: Scope,
    as_of: datetime,
    window_days: int,
) -> dict[str, Any]:
    """Every covered tech stream's DORA figures over the trailing window."""
    deploys, incidents, prs = _frames(conn, scope, as_of)
    calendar = lookups.calendar()
    minutes = lookups.incident_correlation_window_minutes
    rows = []
    for t in org.tech_in(scope):
        own = Scope(tech_stream_id=t.stream_id)
        d, i, p = own.apply(deploys), own.apply(incidents), own.apply(prs)
        df = dora.deployment_frequency(d, as_of=as_of, window_days=window_days, calendar=calendar)
        cfr = dora.change_failure_rate(
            d, i, as_of=as_of, window_days=window_days, correlation_window_minutes=minutes
        )
        ttr = dora.time_to_restore(i, as_of=as_of, window_days=window_days)
        lt = dora.lead_time_for_changes(p, d, as_of=as_of, window_days=window_days)
        rows.append(
            {
                "techStreamId": str(t.stream_id),
                "techStreamName": t.display_name,
                "techStream": t.name,
                "deploymentFrequency": num(df.deployment_frequency),
                "changeFailureRate": num(cfr.change_failure_rate),
                "ttrMedian": num(ttr.ttr_median),
                "ttrMean": num(ttr.ttr_mean),
                "leadTimeP50": num(lt.lead_time_p50),
                "leadTimeP85": num(lt.lead_time_p85),
                "deployCount": df.deploy_count,
                "incidentCount": ttr.incident_count,
                "leadTimeDeployCount": lt.lead_time_deploy_count,
                "levels": {
                    "deploymentFrequency": df.level,
                    "changeFailureRate": cfr.level,
                    "ttr": ttr.level,
                    "leadTime": lt.level,
                },
            }
        )
    return {"dora": rows}
