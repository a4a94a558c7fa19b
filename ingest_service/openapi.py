"""OpenAPI documentation of the read endpoints: each one's response model, the errors it can
answer, and an example that is a real answer of the demo organisation
(``openapi_examples.json``, written by ``dpp api examples`` — never typed by hand)."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from ingest_service.schemas import MODELS, ErrorEnvelope

EXAMPLES_FILE = Path(__file__).with_name("openapi_examples.json")

ERRORS = {
    400: "A parameter is not acceptable (the error names it)",
    401: "Missing, unknown, revoked or expired API key",
    403: "The key lacks the permission, or the stream is outside its scope",
    404: "The stream (or PR event) does not exist",
    422: "A parameter or body field failed validation (the error names it)",
    429: "Rate limit exceeded (see the X-RateLimit-* and Retry-After headers)",
}


@cache
def examples() -> dict[str, Any]:
    if not EXAMPLES_FILE.exists():
        return {}
    loaded: dict[str, Any] = json.loads(EXAMPLES_FILE.read_text())
    return loaded


def documented(endpoint: str) -> dict[str, Any]:
    """``APIRouter`` keyword arguments for ``endpoint``: response model, example, errors."""
    ok: dict[str, Any] = {"model": MODELS[endpoint], "description": "Success"}
    found = {
        k.partition("#")[2] or "default": v
        for k, v in examples().items()
        if k.partition("#")[0] == endpoint
    }
    if len(found) == 1:
        ok["content"] = {"application/json": {"example": next(iter(found.values()))}}
    elif found:
        ok["content"] = {
            "application/json": {"examples": {k: {"value": v} for k, v in found.items()}}
        }
    responses: dict[int | str, dict[str, Any]] = {200: ok}
    for status, text in ERRORS.items():
        responses[status] = {"model": ErrorEnvelope, "description": text}
    return {"responses": responses, "response_model": None}


def example_response(endpoint: str, description: str) -> dict[str, Any]:
    """A ``responses`` entry with the endpoint's generated example, for routes outside
    ``documented`` (the health checks)."""
    entry: dict[str, Any] = {"description": description}
    example = examples().get(endpoint)
    if example is not None:
        entry["content"] = {"application/json": {"example": example}}
    return entry
