"""The Cross-stream page's model (spec §7.1.2): which shared tech streams block which delivery
streams, read through ``views.team.cross_stream_view`` (what ``GET /api/v1/metrics/cross-stream``
answers) with the viewer's ``Principal`` scope, and, for a selected tech stream, the figures
of each delivery stream it impacts. No maths here: the page picks the streams and the views.

Which filter drives what (recorded in ``docs/dashboards/cross-stream.md``):

- the heatmap and the root-cause signal: every tech stream the viewer sees, over the 14 days
  to ``as_of`` (spec §6.7 fixes the window: the time range does not apply); the delivery
  stream filter keeps its column only;
- impact analysis: the tech stream filter (none selected: the root-cause tech stream), for
  each impacted delivery stream the viewer sees (only the selected one when a delivery
  stream is chosen) its sprint confidence and cycle-time p85 (``/metrics/realtime``: what the
  severity averages) and its time blocked over the time range (``/metrics/diagnostic``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from dpp_lib.access import Principal
from dpp_lib.dashboards import data
from dpp_lib.dashboards.overview import (
    ConfidenceWarning,
    Denied,
    Window,
    confidence_warnings,
    resolve_window,
    tech_stream,
)
from dpp_lib.ingest.lookups import OrgLookups
from dpp_lib.metrics.common import Scope
from dpp_lib.store.config_tables import load_lookups
from dpp_lib.views import delivery, team
from dpp_lib.views.common import Org, Stream, load_org
from dpp_lib.widgets.filters import ALL, FilterError, FilterState, moment

BLOCK_WINDOW_DAYS = 14  # spec §6.7, as the view computes it
# What the impacted streams' figures are computed from (``data_quality.AFFECTS`` names):
# sprint confidence samples throughput; cycle time is cycle time.
IMPACT_METRICS = frozenset({"throughput", "cycle_time"})


@dataclass(frozen=True)
class StreamImpact:
    """One delivery stream a tech stream blocks: its own figures, as the API gives them."""

    stream: Stream
    blocked_now: bool  # a ticket of it is blocked by the tech stream at as_of
    confidence_pct: float | None  # /metrics/realtime sprint confidence
    confidence_reason: str | None  # why there is no confidence figure
    cycle_time_p85: float | None  # /metrics/realtime cycle time p85, business days
    blocked_items: int  # /metrics/diagnostic: completed items that were blocked in the window
    blocked_mean_days: float | None  # their mean time blocked


@dataclass(frozen=True)
class Impact:
    """The impact analysis of one tech stream: its row of the API's answer (``row``), and
    the figures of each impacted delivery stream the viewer may see."""

    tech: Stream
    row: dict[str, Any]
    streams: tuple[StreamImpact, ...]
    hidden_streams: int  # impacted streams the viewer may not see (counted, not named)
    is_root_cause: bool
    warnings: tuple[ConfidenceWarning, ...] = ()  # §5.6 rates below target behind the figures


@dataclass(frozen=True)
class CrossStream:
    """Everything the page draws for one filter state."""

    state: FilterState
    as_of: datetime
    delivery: Stream | None  # the delivery stream filter (None: all the viewer's)
    tech: Stream | None  # the tech stream filter (None: all)
    notices: tuple[str, ...]
    window: Window  # the time range (impact analysis: time blocked)
    answer: dict[str, Any]  # cross_stream_view's answer, as /metrics/cross-stream gives it
    columns: tuple[Stream, ...]  # the heatmap's delivery streams
    impact: Impact | None  # None: no tech stream selected and none impacts anything
    tech_visible: bool  # the viewer sees at least one tech stream

    @property
    def correlations(self) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = self.answer["correlations"]
        return rows

    @property
    def top(self) -> dict[str, Any] | None:
        """The root-cause signal's row (the answer's ``top_tech_stream``), if any."""
        top = self.answer["top_tech_stream"]
        if top is None:
            return None
        return next((r for r in self.correlations if r["tech_stream_id"] == top["id"]), None)


def cross_stream(
    conn: sa.Connection,
    principal: Principal,
    state: FilterState,
    *,
    now: datetime | None = None,
    notices: Sequence[str] = (),
) -> CrossStream | Denied:
    """The page for ``state`` as ``principal`` may see it; a stream outside the principal's
    scope (or unknown) gives ``Denied`` with the data layer's message and no figures."""
    lookups = load_lookups(conn)
    org = load_org(conn)
    as_of, found = _as_of(state, lookups, now, list(notices))
    try:
        chosen_delivery = (
            None if state.delivery == ALL else data.delivery_stream(org, principal, state.delivery)
        )
        chosen_tech = None if state.tech == ALL else tech_stream(org, principal, state.tech)
    except data.StreamAccessDenied as exc:
        return Denied(state, as_of, exc.message, tuple(found))
    answer = team.cross_stream_view(
        conn,
        lookups,
        org,
        scope=principal.tech_scope(),
        delivery_visible=principal.delivery_streams,
        as_of=as_of,
    )
    window = resolve_window(conn, org, principal, state, chosen_delivery, as_of, lookups)
    columns = (chosen_delivery,) if chosen_delivery else org.delivery_in(principal.delivery_scope())
    model = CrossStream(
        state,
        as_of,
        chosen_delivery,
        chosen_tech,
        tuple(found),
        window,
        answer,
        columns,
        impact=None,
        tech_visible=bool(org.tech_in(principal.tech_scope())),
    )
    subject = chosen_tech or _top_stream(org, model)
    if subject is None:
        return model
    return dataclasses.replace(model, impact=impact(conn, lookups, org, model, subject))


def impact(
    conn: sa.Connection, lookups: OrgLookups, org: Org, model: CrossStream, tech: Stream
) -> Impact:
    """The impact analysis of ``tech`` (one of the answer's rows): each impacted delivery
    stream among the page's columns, with its realtime and diagnostic figures."""
    row = next(r for r in model.correlations if r["tech_stream_id"] == str(tech.stream_id))
    named = {s["id"] for s in row["impacted_delivery_streams"]}
    blocked = {s["id"] for s in row["blocked_delivery_streams"]}
    impacted = [s for s in model.columns if str(s.stream_id) in named]
    signals = delivery.stream_signals(
        conn,
        lookups,
        streams=impacted,
        as_of=model.as_of,
        window_end=model.window.end,
        window_days=model.window.days,
    )
    streams = tuple(
        _stream_impact(s, signals[s.stream_id], blocked_now=str(s.stream_id) in blocked)
        for s in impacted
    )
    top = model.answer["top_tech_stream"]
    warnings = (
        confidence_warnings(
            conn,
            lookups,
            org,
            scope=Scope(
                delivery_in=frozenset(s.stream.stream_id for s in streams),
                tech_stream_id=tech.stream_id,
            ),
            window=model.window,
        )
        if streams
        else ()
    )
    return Impact(
        tech,
        row,
        streams,
        hidden_streams=row["impacted_stream_count"] - len(named),
        is_root_cause=top is not None and top["id"] == str(tech.stream_id),
        warnings=tuple(w for w in warnings if IMPACT_METRICS & set(w.affects)),
    )


def _stream_impact(stream: Stream, signals: dict[str, Any], *, blocked_now: bool) -> StreamImpact:
    flow = signals["flow_efficiency"]
    queue = next((q for q in flow["queues"] if q["queue"] == "blocked"), None)
    confidence = signals["sprint_confidence"] or {}
    return StreamImpact(
        stream,
        blocked_now,
        confidence.get("confidence_pct"),
        confidence.get("reason"),
        signals["cycle_time_p85"],
        int(queue["items"]) if queue else 0,
        queue["mean_days"] if queue else None,
    )


def _top_stream(org: Org, model: CrossStream) -> Stream | None:
    top = model.answer["top_tech_stream"]
    return next((s for s in org.tech if top and str(s.stream_id) == top["id"]), None)


def _as_of(
    state: FilterState, lookups: OrgLookups, now: datetime | None, notices: list[str]
) -> tuple[datetime, list[str]]:
    current = now or datetime.now(UTC)
    if state.as_of is None:
        return current, notices
    try:
        return moment(state.as_of, lookups.time_zone, now=current), notices
    except FilterError as exc:
        return current, [*notices, f"{exc.message}: showing the latest figures instead."]
