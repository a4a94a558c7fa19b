"""Response models for the OpenAPI document (field names and units of the API reference).
Routes render their answers directly (cached bytes); these models document them, and the
contract tests and schemathesis check real answers against them."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

T = TypeVar("T")


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class Meta(_Open):
    computed_at: datetime | None = None
    as_of: datetime | None = Field(None, description="The moment computed for; null = now")
    request_id: str | None = None
    cached: bool | None = None
    stale: bool | None = Field(
        None,
        description="Present (true) when an answer for now is past its TTL and is being"
        " computed again; served meanwhile (X-Cache: STALE)",
    )
    stream_type: Literal["delivery", "tech"] | None = None
    stream_id: str | None = None
    stream: str | None = None
    window_days: int | None = None


class Envelope(_Open, Generic[T]):
    status: Literal["ok"]
    data: T
    meta: Meta | None = None


class ErrorBody(_Open):
    code: str
    message: str
    details: list[dict[str, str]]


class ErrorEnvelope(_Open):
    status: Literal["error"]
    message: str
    error: ErrorBody
    request_id: str
    timestamp: datetime | None = None


# --- configuration ------------------------------------------------------------------------
class DeliveryStream(_Open):
    id: str
    name: str
    display_name: str
    team_size: int | None


class TechStream(_Open):
    id: str
    name: str
    display_name: str
    github_org: str | None


class Sprint(_Open):
    id: str
    name: str
    state: Literal["future", "active", "closed"] | None
    start_date: date
    end_date: date


# --- metrics ------------------------------------------------------------------------------
class CycleTimeSummary(_Open):
    p50: float | None = Field(description="business days")
    p85: float | None
    sample_size: int


class ScatterPoint(_Open):
    ticket_id: str
    cycle_time_days: float | None
    completed_at: datetime


class Realtime(_Open):
    wip_by_stage: dict[str, int]
    cycle_time: CycleTimeSummary
    cycle_scatter: list[ScatterPoint]
    sprint_confidence: dict[str, Any] | None
    sprint_confidence_by_stream: list[dict[str, Any]]


class FlowEfficiency(_Open):
    percentage: float | None = Field(description="0–100")
    active_days: float | None
    wait_days: float | None


class DefectEscape(_Open):
    rate: float | None = Field(description="0–100")
    defect_count: int
    total_completed: int


class ReviewTurnaround(_Open):
    median_hours: float | None
    p85_hours: float | None
    reviewer_concentration: float | None = Field(description="largest reviewer's share, 0–1")
    is_suppressed: bool


class Diagnostic(_Open):
    flow_efficiency: FlowEfficiency
    defect_escape: DefectEscape
    pr_review_turnaround: ReviewTurnaround


class TrendPoint(_Open):
    weekStart: date
    deploymentFrequency: int = Field(description="deploys in the week (raw count)")
    changeFailureRate: float | None = Field(description="percent")
    ttrMedian: float | None = Field(description="minutes")
    leadTimeP50: float | None = Field(description="hours")
    leadTimeP85: float | None = Field(description="hours")


class DoraSummary(_Open):
    techStreamId: str
    techStreamName: str
    deploymentFrequency: float | None = Field(description="deploys per week")
    changeFailureRate: float | None
    ttrMedian: float | None
    ttrMean: float | None
    leadTimeP50: float | None
    leadTimeP85: float | None
    deployCount: int
    incidentCount: int
    leadTimeDeployCount: int


class Trends(_Open):
    series: list[TrendPoint] | None = Field(None, description="with tech_stream")
    dora: list[DoraSummary] | None = Field(None, description="without tech_stream")


class HowMany(_Open):
    p50: int | None
    p85: int | None
    p95: int | None
    simulations: int
    weeks_remaining: float | None


class When(_Open):
    method: Literal["monte_carlo", "linear", "none"]
    low_confidence: bool
    p50: date | None
    p70: date | None
    p85: date | None
    p95: date | None
    histogram: list[dict[str, Any]]


class Forecast(_Open):
    forecast: HowMany
    when: When


class PulseAggregate(_Open):
    survey_period: str
    response_count: int
    response_rate_pct: float | None
    pace_avg: float | None
    pace_trend: float | None
    tooling_avg: float | None
    tooling_trend: float | None
    clarity_avg: float | None
    clarity_trend: float | None
    overall_avg: float | None


class Pulse(_Open):
    aggregates: list[PulseAggregate]


class Correlation(_Open):
    tech_stream_id: str
    block_count_14d: int
    avg_confidence_pct: float | None
    avg_cycle_time_p85: float | None
    severity: Literal["NONE", "LOW", "MEDIUM", "HIGH", "CRITICAL"]
    computed_at: datetime


class CrossStreamAnswer(_Open):
    correlations: list[Correlation]


class BreakdownRow(_Open):
    dimension_value: str
    value: float | None
    percentage: float | None
    count: int | None = None


class Breakdown(_Open):
    metric: str
    dimension: str
    breakdown: list[BreakdownRow]


class DrillItem(_Open):
    task_id: str
    value: float | None
    contributing_factors: list[dict[str, Any]]


class Pagination(_Open):
    total: int
    limit: int
    offset: int
    has_more: bool


class Drilldown(_Open):
    metric: str
    items: list[DrillItem]
    pagination: Pagination


# --- admin --------------------------------------------------------------------------------
class DataQuality(_Open):
    prLinkageRate: float | None
    ticketTaggingRate: float | None
    deploymentTraceability: float | None
    pulseResponseRate: float | None
    pulseStreamsSampled: int
    warnings: list[dict[str, Any]]


class Integration(_Open):
    status: Literal["healthy", "stale", "no_data"]
    lastEventAt: datetime | None
    eventCount24h: int


class IntegrationHealth(_Open):
    integrations: dict[str, Integration]


class Alert(_Open):
    condition: str
    severity: Literal["LOW", "MEDIUM", "HIGH", "CRITICAL"]
    message: str
    triggeredAt: datetime


class SystemAlerts(_Open):
    alerts: list[Alert]


class LinkResultBody(_Open):
    ok: bool
    status: Literal["ok"]
    data: dict[str, Any]


MODELS: dict[str, Any] = {
    "streams/delivery": Envelope[list[DeliveryStream]],
    "streams/tech": Envelope[list[TechStream]],
    "sprints": Envelope[list[Sprint]],
    "metrics/realtime": Envelope[Realtime],
    "metrics/diagnostic": Envelope[Diagnostic],
    "metrics/trends": Envelope[Trends],
    "metrics/forecast": Envelope[Forecast],
    "metrics/pulse": Envelope[Pulse],
    "metrics/cross-stream": Envelope[CrossStreamAnswer],
    "metrics/breakdown": Envelope[Breakdown],
    "metrics/drilldown": Envelope[Drilldown],
    "admin/data-quality": Envelope[DataQuality],
    "admin/integration-health": Envelope[IntegrationHealth],
    "admin/system-alerts": Envelope[SystemAlerts],
    "pr-events/link-ticket": LinkResultBody,
    "cache/stats": Envelope[dict[str, Any]],
    "cache/invalidate": Envelope[dict[str, Any]],
}
