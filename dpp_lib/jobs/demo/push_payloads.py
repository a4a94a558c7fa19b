"""Bodies for the event-ingestion API (api-reference.md "Event Ingestion") and the pulse
endpoint: deployment, incident and pulse events exactly as documented."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from dpp_lib.jobs.demo.model import Deploy, Incident, PulseResponse

DEPLOYMENT_FIELDS = frozenset(
    {
        "repo_full_name",
        "environment",
        "status",
        "deployed_at",
        "commit_sha",
        "pipeline_id",
        "trigger_type",
        "pr_number",
    }
)
INCIDENT_FIELDS = frozenset(
    {"event_type", "incident_id", "service_name", "occurred_at", "severity", "description"}
)
PULSE_FIELDS = frozenset(
    {
        "delivery_stream",
        "survey_period",
        "respondent_id",
        "pace_score",
        "tooling_score",
        "clarity_score",
        "free_text",
        "submitted_at",
    }
)


def iso_z(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def deployment_body(d: Deploy) -> dict[str, Any]:
    body: dict[str, Any] = {
        "repo_full_name": d.repo.full_name,
        "environment": d.environment,
        "status": d.status,
        "deployed_at": iso_z(d.at),
        "commit_sha": d.sha,
        "pipeline_id": d.pipeline_id,
        "trigger_type": d.trigger,
    }
    if d.pr_number is not None:
        body["pr_number"] = d.pr_number
    return body


def incident_bodies(i: Incident) -> list[tuple[str, datetime, dict[str, Any]]]:
    """(event type, time, body) for the opening and the resolving event."""
    opening, closing = (
        ("alarm_triggered", "alarm_resolved")
        if i.kind == "alarm"
        else ("incident_opened", "incident_resolved")
    )
    out = []
    for event, at in ((opening, i.opened), (closing, i.resolved)):
        out.append(
            (
                event,
                at,
                {
                    "event_type": event,
                    "incident_id": i.id,
                    "service_name": i.service,
                    "occurred_at": iso_z(at),
                    "severity": i.severity,
                    "description": i.description,
                },
            )
        )
    return out


def pulse_body(r: PulseResponse) -> dict[str, Any]:
    body: dict[str, Any] = {
        "delivery_stream": r.stream,
        "survey_period": r.period,
        "respondent_id": r.respondent.email,
        "pace_score": r.pace,
        "tooling_score": r.tooling,
        "clarity_score": r.clarity,
    }
    if r.free_text is not None:
        body["free_text"] = r.free_text
    body["submitted_at"] = iso_z(r.at)
    return body
