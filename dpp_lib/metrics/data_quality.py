"""Data quality rates with their targets and warnings (spec §5.6), and integration health
(API reference: admin/integration-health). DESIGN §5 "Data quality"."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import pandas as pd

from dpp_lib.metrics.common import DEFAULT_WINDOW_DAYS, Window, records, to_datetime
from dpp_lib.metrics.frames import check_frame
from dpp_lib.metrics.registry import metric

# Spec §5.6 targets, percent.
TARGETS = {
    "pr_linkage": 90.0,
    "ticket_tagging": 95.0,
    "defect_attribution": 70.0,
    "pulse_response": 60.0,
    "deployment_traceability": 80.0,
}
# The metrics whose confidence each rate affects (the dashboard's "reduced confidence").
AFFECTS = {
    "pr_linkage": ("lead_time_for_changes", "review_turnaround", "deployment_frequency"),
    "ticket_tagging": ("wip_by_stage", "cycle_time", "throughput", "flow_efficiency"),
    "defect_attribution": ("defect_escape",),
    "pulse_response": ("team_pulse",),
    "deployment_traceability": (
        "deployment_frequency",
        "change_failure_rate",
        "lead_time_for_changes",
    ),
}
REACHED = ("success", "rolled_back")


@dataclass(frozen=True)
class Rate:
    name: str
    value: float | None  # percent; None without any item to rate
    numerator: int
    denominator: int
    target: float

    @property
    def below_target(self) -> bool:
        return self.value is not None and self.value < self.target


@dataclass(frozen=True)
class Warning:
    issue: str  # e.g. deployment_traceability_low
    value: float
    threshold: float
    affects: tuple[str, ...]


@dataclass(frozen=True)
class DataQuality:
    window: Window
    rates: dict[str, Rate]
    warnings: tuple[Warning, ...]
    sample_size: int  # items rated, all rates together


def _rate(name: str, numerator: int, denominator: int) -> Rate:
    value = round(numerator / denominator * 100, 1) if denominator else None
    return Rate(name, value, numerator, denominator, TARGETS[name])


@metric(
    "data_quality", spec="§5.6", summary="Can the numbers be trusted: how complete is the data?"
)
def data_quality(
    prs: pd.DataFrame,
    transitions: pd.DataFrame,
    deploys: pd.DataFrame,
    defects: pd.DataFrame,
    pulse: pd.DataFrame,
    *,
    as_of: datetime,
    window_days: int = DEFAULT_WINDOW_DAYS,
    team_size: int | None = None,
) -> DataQuality:
    """Over ``[as_of − window_days, as_of)`` (DESIGN §5): PR linkage over PRs opened in the
    window; ticket tagging over work items created in it (a ticket is tagged when any of its
    events carries a delivery stream); deployment traceability over deploys that reached
    production in it (config-only deploys excluded; traceable = the deploy's linked PR has a
    ticket); defect attribution over defects logged in it (their latest attribution); pulse
    response over the latest survey period in the window: distinct respondents ÷
    ``team_size`` (for all streams, sum of team sizes). A rate without anything to rate is
    None and never warns."""
    for name, frame in (
        ("prs", prs),
        ("transitions", transitions),
        ("deploys", deploys),
        ("defects", defects),
        ("pulse", pulse),
    ):
        check_frame(name, frame)
    window = Window.trailing(as_of, window_days)

    opened = prs[window.mask(prs["opened_at"])]
    pr_rate = _rate("pr_linkage", int(opened["linked_ticket_id"].notna().sum()), len(opened))

    known = transitions[transitions["event_timestamp"] < as_of]
    created = known[(known["event_type"] == "created") & window.mask(known["event_timestamp"])]
    tickets = set(created["ticket_id"])
    tagged = set(known[known["delivery_stream_id"].notna()]["ticket_id"]) & tickets
    tag_rate = _rate("ticket_tagging", len(tagged), len(tickets))

    shipped = deploys[
        window.mask(deploys["deployed_at"])
        & deploys["status"].isin(REACHED)
        & (deploys["trigger_type"].fillna("") != "config")
    ]
    trace_rate = _rate(
        "deployment_traceability", int(shipped["linked_ticket_id"].notna().sum()), len(shipped)
    )

    from dpp_lib.metrics.quality import latest_attribution

    latest = latest_attribution(defects, as_of=as_of)
    logged = latest[window.mask(latest["logged_at"])] if not latest.empty else latest
    defect_rate = _rate(
        "defect_attribution", int(logged["introduced_in_stage"].notna().sum()), len(logged)
    )

    answered = pulse[window.mask(pulse["event_timestamp"])]
    if len(answered) and team_size:
        period = max(answered["survey_period"])
        people = answered[answered["survey_period"] == period]["respondent_hash"].nunique()
        pulse_rate = _rate("pulse_response", min(int(people), team_size), team_size)
    else:
        pulse_rate = _rate("pulse_response", 0, 0)

    rates = {r.name: r for r in (pr_rate, tag_rate, trace_rate, defect_rate, pulse_rate)}
    warnings = tuple(
        Warning(f"{r.name}_low", r.value, r.target, AFFECTS[r.name])
        for r in rates.values()
        if r.below_target and r.value is not None
    )
    return DataQuality(
        window=window,
        rates=rates,
        warnings=warnings,
        sample_size=sum(r.denominator for r in rates.values()),
    )


STALE_AFTER = timedelta(hours=2)


@dataclass(frozen=True)
class Integration:
    source: str
    status: str  # healthy | stale | no_data
    last_event_at: datetime | None
    event_count_24h: int


@dataclass(frozen=True)
class IntegrationHealth:
    as_of: datetime
    integrations: dict[str, Integration]
    sample_size: int  # deliveries in the last 24 h, all sources


SOURCES = ("jira", "github", "deployment", "incident", "pulse")


@metric(
    "integration_health",
    spec="API reference: GET /api/v1/admin/integration-health",
    summary="Is every event source still sending?",
)
def integration_health(integrations: pd.DataFrame, *, as_of: datetime) -> IntegrationHealth:
    """Per inbox source (frame ``integrations``: latest delivery, deliveries in the last
    24 h, both up to ``as_of``): ``healthy`` with a delivery in the last 2 h, ``stale`` with
    older ones only, ``no_data`` when nothing was ever received."""
    check_frame("integrations", integrations)
    found = {r["source"]: r for r in records(integrations)}
    out: dict[str, Integration] = {}
    for source in (*SOURCES, *sorted(set(found) - set(SOURCES))):
        row = found.get(source)
        last = to_datetime(row["last_received_at"]) if row else None
        if last is not None and last > as_of:
            last = as_of
        count = int(row["count_24h"]) if row and not pd.isna(row["count_24h"]) else 0
        if last is None:
            status = "no_data"
        elif as_of - last <= STALE_AFTER:
            status = "healthy"
        else:
            status = "stale"
        out[source] = Integration(source, status, last, count)
    return IntegrationHealth(as_of, out, sum(i.event_count_24h for i in out.values()))
