"""POST /api/v1/webhooks/github and /jira (API reference: Webhooks).

Verify the signature over the raw bytes, check the body is a JSON object, write it to the
inbox, answer 202. Everything else happens in the worker.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from dpp_lib.errors import FieldProblem
from ingest_service.deps import parse_json_object, read_body, service
from ingest_service.errors import ApiError
from ingest_service.records import InboxRecord, body_sha256, selected_headers
from ingest_service.responses import JsonResponse
from ingest_service.security import SignatureError, verify_signature

router = APIRouter(prefix="/api/v1/webhooks", tags=["webhooks"])

ACCEPTED = {"ok": True}
RESPONSES: dict[int | str, dict[str, Any]] = {
    202: {"description": "Accepted", "content": {"application/json": {"example": ACCEPTED}}},
    400: {"description": "Malformed body or missing header"},
    401: {"description": "Signature missing or wrong (when a secret is configured)"},
    413: {"description": "Body over 25 MB"},
}


@router.post("/github", status_code=202, responses=RESPONSES)
async def github_webhook(request: Request) -> JsonResponse:
    """Receive a GitHub App webhook (``X-GitHub-Event``, ``X-Hub-Signature-256``)."""
    state = service(request)
    body = await read_body(request, state.settings.max_body_bytes)
    try:
        verify_signature(
            state.github_secret,
            request.headers.get("x-hub-signature-256"),
            body,
            header_name="X-Hub-Signature-256",
        )
    except SignatureError as exc:
        raise ApiError(401, str(exc), code="invalid_signature") from None
    event = request.headers.get("x-github-event")
    if not event:
        raise ApiError(
            400,
            "missing X-GitHub-Event header",
            details=[FieldProblem("X-GitHub-Event", "required")],
        )
    parse_json_object(body)
    delivery = request.headers.get("x-github-delivery") or body_sha256(body)
    rec = InboxRecord(
        "github", delivery[:200], event[:100], selected_headers(request.headers), body
    )
    await state.inbox.append(rec)
    return JsonResponse(ACCEPTED, status_code=202)


@router.post("/jira", status_code=202, responses=RESPONSES)
async def jira_webhook(request: Request) -> JsonResponse:
    """Receive a Jira Cloud or Data Center webhook (``X-Hub-Signature: sha256=…``)."""
    state = service(request)
    body = await read_body(request, state.settings.max_body_bytes)
    try:
        verify_signature(
            state.jira_secret,
            request.headers.get("x-hub-signature"),
            body,
            header_name="X-Hub-Signature",
        )
    except SignatureError as exc:
        raise ApiError(401, str(exc), code="invalid_signature") from None
    data = parse_json_object(body)
    kind = data.get("webhookEvent")
    delivery = request.headers.get("x-atlassian-webhook-identifier") or body_sha256(body)
    rec = InboxRecord(
        "jira",
        delivery[:200],
        kind[:100] if isinstance(kind, str) else None,
        selected_headers(request.headers),
        body,
    )
    await state.inbox.append(rec)
    return JsonResponse(ACCEPTED, status_code=202)
