"""Admin views: ``/admin/data-quality`` (spec §5.6 rates with per-stream warnings) and
``/admin/integration-health`` (per source: healthy / stale / no_data)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa

from dpp_lib.ingest.lookups import OrgLookups
from dpp_lib.metrics import data_quality
from dpp_lib.metrics.common import DEFAULT_WINDOW_DAYS, Scope, Window, stream_rows
from dpp_lib.store import read
from dpp_lib.views.common import Org, Stream, num

# Which rates say something about one stream of each kind: a PR, a deploy or a ticket's
# tagging belongs to a tech stream (an untagged ticket has no delivery stream to blame);
# defect attribution and pulse response belong to a delivery stream.
STREAM_RATES = {
    "tech": ("pr_linkage", "ticket_tagging", "deployment_traceability"),
    "delivery": ("defect_attribution", "pulse_response"),
}
API_NAMES = {
    "pr_linkage": "prLinkageRate",
    "ticket_tagging": "ticketTaggingRate",
    "deployment_traceability": "deploymentTraceability",
    "defect_attribution": "defectAttributionRate",
    "pulse_response": "pulseResponseRate",
}


def data_quality_report(
    conn: sa.Connection,
    lookups: OrgLookups,
    org: Org,
    *,
    scope: Scope,
    as_of: datetime,
    window_days: int = DEFAULT_WINDOW_DAYS,
) -> dict[str, Any]:
    """The five rates over every stream the scope covers, each stream's own rates, and a
    warning for each stream rate below its target (spec §5.6)."""
    frames = _frames(conn, lookups, as_of, window_days)
    delivery, tech = org.delivery_in(scope), org.tech_in(scope)
    visible = _visible(frames, scope) if not scope.is_all else frames
    overall = _quality(visible, as_of, window_days, sum(s.team_size or 0 for s in delivery))
    streams: list[dict[str, Any]] = []
    warnings: list[dict[str, Any]] = []
    for kind, members in (("delivery", delivery), ("tech", tech)):
        rows = _stream_rows(frames, kind) if members else {}
        for s in members:
            rates = stream_rates(frames, s, kind, as_of=as_of, window_days=window_days, rows=rows)
            streams.append(
                {"stream": s.name, "stream_id": str(s.stream_id), "kind": kind, "rates": rates}
            )
            warnings += [
                {
                    "stream": s.display_name,
                    "stream_id": str(s.stream_id),
                    "issue": f"{name}_low",
                    "value": r["value"],
                    "threshold": r["target"],
                    "affects": r["affects"],
                }
                for name, r in rates.items()
                if r["below_target"]
            ]
    out: dict[str, Any] = {API_NAMES[n]: num(r.value) for n, r in overall.rates.items()}
    out["pulseStreamsSampled"] = _pulse_streams(visible, overall.window.start, as_of)
    out["targets"] = {API_NAMES[n]: r.target for n, r in overall.rates.items()}
    out["sampleSizes"] = {API_NAMES[n]: r.denominator for n, r in overall.rates.items()}
    out["warnings"] = warnings
    out["streams"] = streams
    out["window_days"] = window_days
    return out


def stream_rates(
    frames: dict[str, pd.DataFrame],
    stream: Stream,
    kind: str,
    *,
    as_of: datetime,
    window_days: int,
    rows: Mapping[str, Mapping[Any, np.ndarray] | None] | None = None,
) -> dict[str, dict[str, Any]]:
    """One stream's rates that concern its kind (``STREAM_RATES``). ``rows``: every
    stream's rows of each frame (``_stream_rows``), when many streams are reported."""
    if rows is None:
        own = (
            Scope(delivery_stream_id=stream.stream_id)
            if kind == "delivery"
            else Scope(tech_stream_id=stream.stream_id)
        )
        scoped = {k: _apply(own, v) for k, v in frames.items()}
    else:
        scoped = {k: _own_rows(v, rows[k], stream.stream_id) for k, v in frames.items()}
    result = _quality(scoped, as_of, window_days, stream.team_size)
    return {
        name: {
            "value": num(r.value),
            "target": r.target,
            "numerator": r.numerator,
            "denominator": r.denominator,
            "below_target": bool(r.below_target and r.value is not None),
            "affects": list(data_quality.AFFECTS[name]),
        }
        for name, r in result.rates.items()
        if name in STREAM_RATES[kind]
    }


def _frames(
    conn: sa.Connection, lookups: OrgLookups, as_of: datetime, window_days: int
) -> dict[str, pd.DataFrame]:
    """What the rates over the window read (``data_quality.data_quality``): PRs opened,
    tickets created, deploys, defects logged and pulse answers in the window; the whole
    history before it would give the same rates and took a minute on 4 M events."""
    since = Window.trailing(as_of, window_days).start
    return {
        "prs": read.prs(conn, as_of=as_of, opened_since=since),
        "transitions": read.transitions(conn, lookups, as_of=as_of, created_since=since),
        "deploys": read.deploys(conn, as_of=as_of, since=since),
        "defects": read.defects(conn, as_of=as_of, logged_since=since),
        "pulse": read.pulse(conn, as_of=as_of, since=since),
    }


def _quality(
    frames: dict[str, pd.DataFrame], as_of: datetime, window_days: int, team_size: int | None
) -> data_quality.DataQuality:
    return data_quality.data_quality(
        frames["prs"],
        frames["transitions"],
        frames["deploys"],
        frames["defects"],
        frames["pulse"],
        as_of=as_of,
        window_days=window_days,
        team_size=team_size or None,
    )


def _stream_rows(
    frames: dict[str, pd.DataFrame], kind: str
) -> dict[str, Mapping[Any, np.ndarray] | None]:
    """Each frame's rows per stream of ``kind``; None where the frame has no stream of that
    kind (pulse answers have no tech stream: ``_apply`` gives them nothing)."""
    out: dict[str, Mapping[Any, np.ndarray] | None] = {}
    for name, frame in frames.items():
        if kind == "tech" and not {"tech_stream_id", "tech_stream_ids"} & set(frame.columns):
            out[name] = None
        else:
            out[name] = stream_rows(frame, kind)
    return out


def _own_rows(
    frame: pd.DataFrame, rows: Mapping[Any, np.ndarray] | None, stream_id: Any
) -> pd.DataFrame:
    if rows is None or stream_id not in rows:
        return frame.iloc[0:0]
    return frame.iloc[rows[stream_id]]


def _apply(scope: Scope, frame: pd.DataFrame) -> pd.DataFrame:
    tech_only = scope.delivery_stream_id is None and scope.delivery_in is None
    if tech_only and not {"tech_stream_id", "tech_stream_ids"} & set(frame.columns):
        return frame.iloc[0:0]  # pulse answers have no tech stream
    return scope.apply(frame)


def _visible(frames: dict[str, pd.DataFrame], scope: Scope) -> dict[str, pd.DataFrame]:
    """Rows of the streams the scope covers, by either dimension it restricts."""
    out = {}
    for name, frame in frames.items():
        keep = pd.Series(False, index=frame.index)
        if scope.delivery_in is not None or scope.delivery_stream_id is not None:
            keep |= frame.index.isin(_apply(scope.delivery_part(), frame).index)
        if scope.tech_in is not None or scope.tech_stream_id is not None:
            keep |= frame.index.isin(_apply(scope.tech_part(), frame).index)
        out[name] = frame[keep]
    return out


def _pulse_streams(frames: dict[str, pd.DataFrame], start: datetime, as_of: datetime) -> int:
    answered = frames["pulse"]
    answered = answered[
        (answered["event_timestamp"] >= start) & (answered["event_timestamp"] < as_of)
    ]
    return int(answered["delivery_stream_id"].nunique())


def integration_health_view(conn: sa.Connection, *, now: datetime) -> dict[str, Any]:
    result = data_quality.integration_health(read.integrations(conn, as_of=now), as_of=now)
    return {
        "integrations": {
            name: {
                "status": i.status,
                "lastEventAt": i.last_event_at,
                "eventCount24h": i.event_count_24h,
            }
            for name, i in result.integrations.items()
        }
    }
