"""POST /api/v1/events/deployment, /incident and /pulse (API reference: Event Ingestion).

API key with ``events:write``; the key's stream scope must cover the repository's or the
service's tech stream (or the pulse's delivery stream). The body is validated on receipt so
bad input is refused with the field named, and nothing invalid reaches the inbox.
"""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Request
from pydantic import BaseModel

from dpp_lib.errors import FieldProblem
from dpp_lib.ingest.events import DeploymentBody, IncidentBody, PulseBody
from dpp_lib.ingest.lookups import OrgLookups
from dpp_lib.store.api_keys import ApiKey
from ingest_service.deps import bearer_key, parse_json_object, read_body, service, validate_body
from ingest_service.errors import ApiError
from ingest_service.records import InboxRecord, body_sha256, selected_headers
from ingest_service.responses import JsonResponse

router = APIRouter(prefix="/api/v1/events", tags=["event ingestion"])

ACCEPTED = {"ok": True}


RESPONSES: dict[int | str, dict[str, Any]] = {
    202: {"description": "Accepted", "content": {"application/json": {"example": ACCEPTED}}},
    400: {"description": "Malformed body or missing required field"},
    401: {"description": "Missing, unknown, revoked or expired API key"},
    403: {"description": "Key lacks events:write or the stream is outside its scope"},
    413: {"description": "Body over 25 MB"},
    422: {"description": "Invalid field, or unknown repository / service / stream"},
}


def _openapi_body(model: type[BaseModel], example: dict[str, Any]) -> dict[str, Any]:
    schema = model.model_json_schema()
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": schema, "example": example}},
        }
    }


DEPLOY_EXAMPLE = {
    "repo_full_name": "acme-core-api/payments-service",
    "environment": "production",
    "status": "success",
    "deployed_at": "2026-11-02T14:30:00Z",
    "commit_sha": "abc123",
    "pipeline_id": "12345",
    "trigger_type": "push",
    "pr_number": 42,
}
INCIDENT_EXAMPLE = {
    "event_type": "alarm_triggered",
    "incident_id": "INC-2026-001",
    "service_name": "ecs:payments-service",
    "occurred_at": "2026-11-02T15:00:00Z",
    "severity": "P2",
    "description": "Error rate spike on /checkout endpoint",
}
PULSE_EXAMPLE = {
    "delivery_stream": "payments",
    "survey_period": "2026-11",
    "respondent_id": "person@example.com",
    "pace_score": 4,
    "tooling_score": 3,
    "clarity_score": 5,
    "free_text": "Fewer context switches this month.",
    "submitted_at": "2026-11-03T09:12:00Z",
}


@router.post(
    "/deployment",
    status_code=202,
    responses=RESPONSES,
    openapi_extra=_openapi_body(DeploymentBody, DEPLOY_EXAMPLE),
)
async def deployment_event(request: Request) -> JsonResponse:
    """Record a deployment from a CI/CD pipeline. Non-deployable repositories: 202, ignored."""
    body, data = await _read(request)
    parsed = validate_body(DeploymentBody, data)
    await _accept(request, "deployment", body, parsed)
    return JsonResponse(ACCEPTED, status_code=202)


@router.post(
    "/incident",
    status_code=202,
    responses=RESPONSES,
    openapi_extra=_openapi_body(IncidentBody, INCIDENT_EXAMPLE),
)
async def incident_event(request: Request) -> JsonResponse:
    """Record an incident or alarm; ``service_name`` must match a repository's deploy_target."""
    body, data = await _read(request)
    parsed = validate_body(IncidentBody, data)
    await _accept(request, "incident", body, parsed)
    return JsonResponse(ACCEPTED, status_code=202)


@router.post(
    "/pulse",
    status_code=202,
    responses=RESPONSES,
    openapi_extra=_openapi_body(PulseBody, PULSE_EXAMPLE),
)
async def pulse_event(request: Request) -> JsonResponse:
    """Record a pulse survey response from an external tool (spec §5.5.1).

    Scores are integers 1–5. ``respondent_id`` is hashed (HMAC-SHA256) on arrival, before
    anything is stored; one response per person, stream and period — a later
    ``submitted_at`` replaces an earlier one.
    """
    _, data = await _read(request)
    parsed = validate_body(PulseBody, data)
    state = service(request)
    stored = parsed.model_dump(mode="json", exclude={"respondent_id"})
    stored["respondent_hash"] = state.anonymise("survey", parsed.respondent_id)
    body = orjson.dumps(stored, option=orjson.OPT_SORT_KEYS)
    await _accept(request, "pulse", body, parsed)
    return JsonResponse(ACCEPTED, status_code=202)


async def _read(request: Request) -> tuple[bytes, dict[str, Any]]:
    body = await read_body(request, service(request).settings.max_body_bytes)
    return body, parse_json_object(body)


async def _accept(request: Request, source: str, body: bytes, parsed: BaseModel) -> None:
    state = service(request)
    key = await bearer_key(request, state, "events:write")
    _check_reference(await state.lookups(), key, parsed)
    delivery = request.headers.get("x-idempotency-key") or body_sha256(body)
    rec = InboxRecord(
        source,
        delivery[:200],
        source,
        selected_headers(request.headers),
        body,
        api_key_id=key.key_id,
    )
    await state.inbox.append(rec)


def _check_reference(lookups: OrgLookups, key: ApiKey, parsed: BaseModel) -> None:
    """422 for unknown repositories/services/streams; 403 outside the key's stream scope."""
    if isinstance(parsed, DeploymentBody):
        repo = lookups.repository(parsed.repo_full_name)
        if repo is None:
            raise ApiError(
                422,
                f"repository {parsed.repo_full_name!r} is not registered",
                code="unknown_repository",
                details=[FieldProblem("repo_full_name", "not a registered repository")],
            )
        _in_tech_scope(key, repo.tech_stream_id, f"repository {repo.full_name}")
    elif isinstance(parsed, IncidentBody):
        repo = lookups.repository_by_target(parsed.service_name)
        if repo is None:
            raise ApiError(
                422,
                f"service {parsed.service_name!r} matches no repository's deploy_target",
                code="unknown_service",
                details=[FieldProblem("service_name", "no repository deploys it")],
            )
        _in_tech_scope(key, repo.tech_stream_id, f"service {parsed.service_name}")
    elif isinstance(parsed, PulseBody):
        stream = lookups.delivery_stream(parsed.delivery_stream)
        if stream is None:
            raise ApiError(
                422,
                f"delivery stream {parsed.delivery_stream!r} does not exist",
                code="unknown_stream",
                details=[FieldProblem("delivery_stream", "unknown delivery stream")],
            )
        if key.is_scoped and (key.delivery_streams is None or stream not in key.delivery_streams):
            raise ApiError(
                403, f"API key is not scoped to delivery stream {parsed.delivery_stream}"
            )


def _in_tech_scope(key: ApiKey, tech_stream: Any, what: str) -> None:
    if key.is_scoped and (key.tech_streams is None or tech_stream not in key.tech_streams):
        raise ApiError(403, f"API key is not scoped to the tech stream of {what}")
