"""Events pushed to the ingestion API: deployment, incident and pulse bodies.

The pydantic models validate a body on receipt (400/422 naming the field); the registered
normalisers turn the stored body into event rows in the worker.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictInt, StrictStr

from dpp_lib.ingest.registry import register
from dpp_lib.ingest.types import EventRow, NormaliseContext, Normalised, utc


def _aware(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("timestamp needs a time zone (e.g. 2024-01-15T14:30:00Z)")
    return utc(value)


Timestamp = Annotated[datetime, AfterValidator(_aware)]
Text = Annotated[StrictStr, Field(min_length=1, max_length=500)]


class _Body(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class DeploymentBody(_Body):
    """API reference: POST /api/v1/events/deployment."""

    repo_full_name: Annotated[StrictStr, Field(pattern=r"^[^/\s]+/[^/\s]+$")]
    environment: Text
    status: Literal["success", "failed", "rolled_back", "cancelled"]
    deployed_at: Timestamp
    commit_sha: Annotated[StrictStr, Field(max_length=64)] | None = None
    pipeline_id: Text | None = None
    trigger_type: Literal["push", "merge", "manual", "schedule", "config"] | None = None
    pr_number: Annotated[StrictInt, Field(ge=1)] | None = None
    artefact_version: Text | None = None
    failure_reason: Annotated[StrictStr, Field(max_length=5000)] | None = None
    duration_seconds: Annotated[StrictInt, Field(ge=0)] | None = None


SEVERITY_ALIASES = {
    "p1": "critical",
    "sev1": "critical",
    "critical": "critical",
    "p0": "critical",
    "sev0": "critical",
    "p2": "high",
    "sev2": "high",
    "high": "high",
    "major": "high",
    "p3": "medium",
    "sev3": "medium",
    "medium": "medium",
    "moderate": "medium",
    "p4": "low",
    "p5": "low",
    "sev4": "low",
    "sev5": "low",
    "low": "low",
    "minor": "low",
    "info": "low",
}


def _severity(value: str | None) -> str | None:
    if value is None:
        return None
    mapped = SEVERITY_ALIASES.get(re.sub(r"[\s_-]", "", value).casefold())
    if mapped is None:
        raise ValueError(
            f"unknown severity {value!r}; use P1–P5, SEV1–SEV5 or critical/high/medium/low"
        )
    return mapped


class IncidentBody(_Body):
    """API reference: POST /api/v1/events/incident."""

    event_type: Literal["alarm_triggered", "incident_opened", "alarm_resolved", "incident_resolved"]
    incident_id: Text
    service_name: Text
    occurred_at: Timestamp
    severity: Annotated[StrictStr | None, AfterValidator(_severity)] = None
    description: Annotated[StrictStr, Field(max_length=5000)] | None = None


Score = Annotated[StrictInt, Field(ge=1, le=5)]


class PulseBody(_Body):
    """POST /api/v1/events/pulse: one survey response from an external tool (spec §5.5.1).

    ``respondent_id`` is any stable identifier of the person in the survey tool; it is
    replaced by its HMAC before the body is stored, so it never reaches the database.
    """

    delivery_stream: Text
    survey_period: Annotated[StrictStr, Field(pattern=r"^\d{4}-(0[1-9]|1[0-2])$")]
    respondent_id: Text
    pace_score: Score
    tooling_score: Score
    clarity_score: Score
    free_text: Annotated[StrictStr, Field(max_length=5000)] | None = None
    submitted_at: Timestamp


class StoredPulse(_Body):
    """The pulse body as stored in the inbox: respondent already hashed."""

    delivery_stream: str
    survey_period: str
    respondent_hash: str
    pace_score: int
    tooling_score: int
    clarity_score: int
    free_text: str | None = None
    submitted_at: datetime


DEPLOY_STATUS = {
    "success": ("deploy_completed", "success"),
    "failed": ("deploy_failed", "failed"),
    "rolled_back": ("rollback_completed", "rolled_back"),
    "cancelled": ("deploy_completed", "cancelled"),
}


@register("deployment", "deployment")
def normalise_deployment(payload: Mapping[str, Any], ctx: NormaliseContext) -> Normalised:
    body = DeploymentBody.model_validate(payload)
    event_type, status = DEPLOY_STATUS[body.status]
    env = body.environment.strip()
    # The reference's pipeline_id identifies the run; the pipeline is repo + environment.
    run_id = body.pipeline_id or f"{body.commit_sha or 'no-sha'}@{body.deployed_at.isoformat()}"
    values = {
        "source": "deployment",
        "event_type": event_type,
        "event_timestamp": body.deployed_at,
        "pipeline_id": f"api:{body.repo_full_name.lower()}:{env.lower()}",
        "pipeline_run_id": run_id,
        "environment": env,
        "status": status,
        "duration_seconds": body.duration_seconds,
        "commit_sha": body.commit_sha,
        "linked_pr_number": body.pr_number,
        "trigger_type": body.trigger_type,
        "artefact_version": body.artefact_version,
        "failure_reason": body.failure_reason,
    }
    hints = {"repo_full_name": body.repo_full_name}
    return Normalised(rows=(EventRow("cicd_events", values, hints),))


@register("incident", "incident")
def normalise_incident(payload: Mapping[str, Any], ctx: NormaliseContext) -> Normalised:
    body = IncidentBody.model_validate(payload)
    resolved = body.event_type in ("alarm_resolved", "incident_resolved")
    values = {
        "source": "monitoring",
        "event_type": body.event_type,
        "event_timestamp": body.occurred_at,
        "incident_id": body.incident_id,
        "service_name": body.service_name,
        "severity": body.severity,
        "description": body.description,
        "resolved_at": body.occurred_at if resolved else None,
    }
    return Normalised(
        rows=(EventRow("incident_events", values, {"service_name": body.service_name}),)
    )


@register("pulse", "pulse")
def normalise_pulse(payload: Mapping[str, Any], ctx: NormaliseContext) -> Normalised:
    body = StoredPulse.model_validate(payload)
    values = {
        "source": "survey",
        "event_timestamp": utc(body.submitted_at),
        "survey_period": body.survey_period,
        "respondent_hash": body.respondent_hash,
        "pace_score": body.pace_score,
        "tooling_score": body.tooling_score,
        "clarity_score": body.clarity_score,
        "free_text": body.free_text,
    }
    hints = {"delivery_stream": body.delivery_stream}
    return Normalised(rows=(EventRow("pulse_responses", values, hints),))
