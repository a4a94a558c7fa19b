"""The Overview page's model (spec §7.1.1): what each zone shows for one filter state, read
through the same ``dpp_lib.views`` functions the metrics API calls, with the viewer's
``Principal`` scope. No maths here: the page picks the streams, the window and the views to
call, and hands their answers to the charts.

Which filter drives which zone (recorded in ``docs/dashboards/overview.md``):

- real-time signals and the forecast: the delivery stream (``/metrics/realtime`` and
  ``/metrics/forecast`` take only a delivery stream); the time range does not apply (§7.2);
- diagnostics: the delivery stream, else the tech stream (``/metrics/diagnostic`` takes
  either); the time range's window;
- DORA (trends and the health bar's deploy frequency and change failure rate): the tech
  stream (incidents belong to tech streams; ``/metrics/trends``); the time range's window;
- team health: the delivery stream (``/metrics/pulse``), the last six survey periods;
- "reduced confidence": the data-quality rates (§5.6) of the selected streams, or of every
  stream the viewer sees when "all", over the window.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from dpp_lib.access import Principal
from dpp_lib.dashboards import data
from dpp_lib.ingest.lookups import OrgLookups
from dpp_lib.metrics.common import Scope
from dpp_lib.store.config_tables import load_lookups
from dpp_lib.views import admin, delivery, diagnostic, streams, team, trends
from dpp_lib.views.common import Org, Stream, load_org
from dpp_lib.widgets.filters import ALL, RANGE_DAYS, FilterError, FilterState, moment

PULSE_PERIODS = 6  # the API's default
SPRINT_FALLBACK_DAYS = 14
MIN_TREND_DAYS = 7  # /metrics/trends refuses a shorter window
RATE_LABELS = {
    "pr_linkage": "PR ticket linkage",
    "ticket_tagging": "Ticket stream tagging",
    "defect_attribution": "Defect origin attribution",
    "pulse_response": "Pulse survey response",
    "deployment_traceability": "Deployment traceability",
}
# What each figure on the page is computed from, in ``data_quality.AFFECTS`` names: a
# warning on any of them marks the figure (sprint confidence and forecasts sample the
# throughput of completed items).
PAGE_METRICS = {
    "sprint_confidence": ("throughput", "cycle_time"),
    "cycle_time": ("cycle_time",),
    "wip_by_stage": ("wip_by_stage",),
    "flow_efficiency": ("flow_efficiency",),
    "defect_escape": ("defect_escape",),
    "review_turnaround": ("review_turnaround",),
    "deployment_frequency": ("deployment_frequency",),
    "change_failure_rate": ("change_failure_rate",),
    "time_to_restore": ("time_to_restore",),
    "lead_time_for_changes": ("lead_time_for_changes",),
    "forecast": ("throughput",),
    "team_pulse": ("team_pulse",),
}


@dataclass(frozen=True)
class ConfidenceWarning:
    """One data-quality rate below its target for one stream (spec §5.6)."""

    rate: str  # a data_quality rate name, e.g. pr_linkage
    stream: str  # display name
    value: float
    target: float
    affects: tuple[str, ...]

    def text(self) -> str:
        return (
            f"{RATE_LABELS.get(self.rate, self.rate)} {self.value:g}% in {self.stream}"
            f" (target ≥ {self.target:g}%)"
        )


@dataclass(frozen=True)
class Window:
    """The trend and diagnostic window: ``days`` ending at ``end``."""

    end: datetime
    days: int
    label: str


@dataclass(frozen=True)
class Denied:
    """The page asked for a stream the viewer may not see: the access message, no data."""

    state: FilterState
    as_of: datetime
    message: str
    notices: tuple[str, ...] = ()


@dataclass(frozen=True)
class Overview:
    """Everything the page draws for one filter state (the views' answers as the API gives
    them); the trend, forecast and pulse answers are None when their zone is hidden."""

    state: FilterState
    as_of: datetime
    delivery: Stream | None  # None: all the viewer's delivery streams
    tech: Stream | None
    notices: tuple[str, ...]
    window: Window
    trend_days: int
    realtime: dict[str, Any]
    diagnostic: dict[str, Any]
    dora: list[dict[str, Any]]  # trend_summary rows, one per tech stream
    trend_series: dict[str, Any] | None
    forecast: dict[str, Any] | None
    pulse: dict[str, Any] | None
    warnings: tuple[ConfidenceWarning, ...] = ()
    tech_visible: bool = True  # the viewer sees at least one tech stream (DORA)

    def warnings_for(self, metric: str) -> tuple[ConfidenceWarning, ...]:
        """The warnings that reduce confidence in a figure (a ``PAGE_METRICS`` key)."""
        names = set(PAGE_METRICS[metric])
        return tuple(w for w in self.warnings if names & set(w.affects))

    @property
    def delivery_label(self) -> str:
        return self.delivery.display_name if self.delivery else "all your delivery streams"

    @property
    def tech_label(self) -> str:
        return self.tech.display_name if self.tech else "all your tech streams"


def overview(
    conn: sa.Connection,
    principal: Principal,
    state: FilterState,
    *,
    now: datetime | None = None,
    notices: Sequence[str] = (),
) -> Overview | Denied:
    """The page for ``state`` as ``principal`` may see it. A stream outside the principal's
    scope gives ``denied`` (the data layer's message) and no figures."""
    lookups = load_lookups(conn)
    org = load_org(conn)
    as_of, notices = _as_of(state, lookups, now, list(notices))
    try:
        chosen_delivery = (
            None if state.delivery == ALL else data.delivery_stream(org, principal, state.delivery)
        )
        chosen_tech = None if state.tech == ALL else tech_stream(org, principal, state.tech)
    except data.StreamAccessDenied as exc:
        return Denied(state, as_of, exc.message, tuple(notices))
    delivery_scope = (
        Scope(delivery_stream_id=chosen_delivery.stream_id)
        if chosen_delivery
        else principal.delivery_scope()
    )
    tech_scope = (
        Scope(tech_stream_id=chosen_tech.stream_id) if chosen_tech else principal.tech_scope()
    )
    window = resolve_window(conn, org, principal, state, chosen_delivery, as_of, lookups)
    trend_days = max(window.days, MIN_TREND_DAYS)
    if trend_days != window.days:
        notices.append(
            f"Weekly DORA trends need at least {MIN_TREND_DAYS} days: they show the"
            f" {MIN_TREND_DAYS} days to {window.end:%d %b %Y}."
        )
    tech_visible = bool(org.tech_in(principal.tech_scope()))
    dora = (
        trends.trend_summary(
            conn, lookups, org, scope=tech_scope, as_of=window.end, window_days=window.days
        )["dora"]
        if tech_visible
        else []
    )
    return Overview(
        state,
        as_of,
        chosen_delivery,
        chosen_tech,
        tuple(notices),
        window=window,
        trend_days=trend_days,
        realtime=delivery.realtime(conn, lookups, org, scope=delivery_scope, as_of=as_of),
        diagnostic=diagnostic.diagnostic(
            conn,
            org,
            scope=_diagnostic_scope(principal, chosen_delivery, chosen_tech),
            as_of=window.end,
            window_days=window.days,
        ),
        dora=dora,
        trend_series=(
            trends.trend_series(
                conn, lookups, scope=tech_scope, as_of=window.end, window_days=trend_days
            )
            if state.shows("trend") and tech_visible
            else None
        ),
        forecast=(
            delivery.forecast_view(conn, lookups, scope=delivery_scope, as_of=as_of)
            if state.shows("forecast")
            else None
        ),
        pulse=(
            team.pulse_view(conn, org, scope=delivery_scope, as_of=as_of, periods=PULSE_PERIODS)
            if state.shows("health")
            else None
        ),
        warnings=confidence_warnings(
            conn,
            lookups,
            org,
            scope=Scope(
                delivery_stream_id=delivery_scope.delivery_stream_id,
                delivery_in=delivery_scope.delivery_in,
                tech_stream_id=tech_scope.tech_stream_id,
                tech_in=tech_scope.tech_in,
            ),
            window=window,
        ),
        tech_visible=tech_visible,
    )


def tech_stream(org: Org, principal: Principal, name: str) -> Stream:
    """The active tech stream called ``name`` (name, display name or id, any case) if the
    principal may see it; ``StreamAccessDenied`` otherwise (the same for unknown ones)."""
    wanted = name.strip().casefold()
    for s in org.tech:
        if wanted in (s.name.casefold(), s.display_name.casefold(), str(s.stream_id)):
            if principal.sees_tech(s.stream_id):
                return s
            break
    raise data.StreamAccessDenied(name)


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


def _diagnostic_scope(
    principal: Principal, chosen_delivery: Stream | None, chosen_tech: Stream | None
) -> Scope:
    """As ``/metrics/diagnostic``: one stream, else everything the viewer sees (by the
    dimension they are scoped in, delivery first)."""
    if chosen_delivery is not None:
        return Scope(delivery_stream_id=chosen_delivery.stream_id)
    if chosen_tech is not None:
        return Scope(tech_stream_id=chosen_tech.stream_id)
    if not principal.is_restricted:
        return Scope()
    if principal.delivery_streams:
        return principal.delivery_scope()
    return principal.tech_scope()


def resolve_window(
    conn: sa.Connection,
    org: Org,
    principal: Principal,
    state: FilterState,
    chosen: Stream | None,
    as_of: datetime,
    lookups: OrgLookups,
) -> Window:
    """The time range as a window ending at ``as_of`` (a custom range: at the end of its
    last day, or ``as_of`` if earlier). ``sprint``: from the start of the sprint that holds
    ``as_of`` (the earliest such start among the viewer's streams when "all")."""
    zone = ZoneInfo(lookups.time_zone)
    today = as_of.astimezone(zone).date()
    if state.time_range in RANGE_DAYS:
        days = RANGE_DAYS[state.time_range]
        return Window(as_of, days, f"the {days} days to {_day(today)}")
    if state.time_range == "custom" and state.date_from and state.date_to:
        end = datetime.combine(state.date_to + timedelta(days=1), time(), zone).astimezone(UTC)
        days = (state.date_to - state.date_from).days + 1
        label = f"{_day(state.date_from)} to {_day(state.date_to)}"
        return Window(min(end, as_of), days, label)
    covered = [chosen] if chosen else list(org.delivery_in(principal.delivery_scope()))
    starts = [start for s in covered if (start := _sprint_start(conn, s, today)) is not None]
    if not starts:
        days = SPRINT_FALLBACK_DAYS
        return Window(as_of, days, f"no sprint in progress on {_day(today)}: the last {days} days")
    start = min(starts)
    return Window(as_of, (today - start).days + 1, f"the current sprint, since {_day(start)}")


def _sprint_start(conn: sa.Connection, stream: Stream, today: date) -> date | None:
    for sprint in streams.sprint_list(conn, delivery_stream_id=stream.stream_id):
        start, end = (
            date.fromisoformat(sprint["start_date"]),
            date.fromisoformat(sprint["end_date"]),
        )
        if start <= today <= end:
            return start
    return None


def _day(day: date) -> str:
    return f"{day.day} {day:%b %Y}"


def confidence_warnings(
    conn: sa.Connection, lookups: OrgLookups, org: Org, *, scope: Scope, window: Window
) -> tuple[ConfidenceWarning, ...]:
    """Every rate below target of the streams ``scope`` covers (``data_quality_report``)."""
    report = admin.data_quality_report(
        conn, lookups, org, scope=scope, as_of=window.end, window_days=window.days
    )
    names = {str(s.stream_id): s.display_name for s in (*org.delivery, *org.tech)}
    return tuple(
        ConfidenceWarning(
            rate,
            names.get(row["stream_id"], row["stream"]),
            float(r["value"]),
            float(r["target"]),
            tuple(r["affects"]),
        )
        for row in report["streams"]
        for rate, r in row["rates"].items()
        if r["below_target"] and r["value"] is not None
    )
