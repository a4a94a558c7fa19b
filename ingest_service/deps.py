"""Request helpers shared by routes: the service state, bounded body reading, API keys."""

from __future__ import annotations

from typing import Any, TypeVar

import orjson
from fastapi import Request
from pydantic import BaseModel, ValidationError

from dpp_lib.errors import FieldProblem
from dpp_lib.store.api_keys import ApiKey
from dpp_lib.store.types import now_utc
from ingest_service.errors import ApiError, problems_from_pydantic
from ingest_service.state import ServiceState

M = TypeVar("M", bound=BaseModel)


def service(request: Request) -> ServiceState:
    state: ServiceState = request.app.state.dpp
    return state


async def read_body(request: Request, limit: int) -> bytes:
    """The raw body, refusing more than ``limit`` bytes (413) without reading it all."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise ApiError(413, f"request body is {declared} bytes; the limit is {limit}")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ApiError(413, f"request body exceeds the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def parse_json_object(body: bytes) -> dict[str, Any]:
    if not body.strip():
        raise ApiError(
            400,
            "request body is empty; a JSON object is expected",
            details=[FieldProblem("(body)", "empty")],
        )
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise ApiError(
            400,
            f"request body is not valid JSON: {exc}",
            details=[FieldProblem("(body)", "malformed JSON")],
        ) from None
    if not isinstance(data, dict):
        raise ApiError(
            400,
            "request body must be a JSON object",
            details=[FieldProblem("(body)", f"got a JSON {type(data).__name__}")],
        )
    return data


def validate_body(model: type[M], data: dict[str, Any]) -> M:
    """400 when required fields are missing, 422 for wrong types or values; names each field."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        errors = list(exc.errors())
        details = problems_from_pydantic(errors)
        missing = [d.field for d, e in zip(details, errors, strict=True) if e["type"] == "missing"]
        if missing:
            raise ApiError(
                400, f"missing required field(s): {', '.join(missing)}", details=details
            ) from None
        names = ", ".join(d.field for d in details)
        raise ApiError(422, f"invalid field(s): {names}", details=details) from None


async def bearer_key(request: Request, state: ServiceState, permission: str | None) -> ApiKey:
    """The request's API key: 401 when missing/unknown/revoked/expired, 403 without permission."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiError(
            401,
            "missing API key: send 'Authorization: Bearer <api key>'",
            headers={"WWW-Authenticate": "Bearer"},
        )
    key = await state.inbox.find_api_key(token.strip())
    if key is None:
        raise ApiError(401, "unknown API key", headers={"WWW-Authenticate": "Bearer"})
    if not key.is_active:
        raise ApiError(401, "API key has been revoked", headers={"WWW-Authenticate": "Bearer"})
    if not key.usable(now_utc()):
        raise ApiError(401, "API key has expired", headers={"WWW-Authenticate": "Bearer"})
    if permission is not None and permission not in key.permissions:
        raise ApiError(403, f"API key lacks the '{permission}' permission")
    return key
