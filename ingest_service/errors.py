"""The error envelope (DESIGN §6) and the handlers that produce it for every failure.

``{"status": "error", "message", "error": {"code", "message", "details"}, "request_id"}``
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from dpp_lib.errors import DppError, FieldProblem
from dpp_lib.store.types import now_utc
from ingest_service.responses import JsonResponse

log = logging.getLogger(__name__)

CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_failed",
    429: "rate_limited",
    500: "internal_error",
    503: "unavailable",
}


class ApiError(Exception):
    def __init__(
        self,
        status: int,
        message: str,
        *,
        code: str | None = None,
        details: list[FieldProblem] | None = None,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.extra = extra or {}
        self.status = status
        self.message = message
        self.code = code or CODES.get(status, "error")
        self.details = details or []
        self.headers = headers


def request_id(request: Request) -> str:
    return str(request.scope.get("state", {}).get("request_id", ""))


def envelope(
    request: Request,
    status: int,
    code: str,
    message: str,
    details: list[FieldProblem] | None = None,
    headers: dict[str, str] | None = None,
    extra: dict[str, Any] | None = None,
) -> JsonResponse:
    rid = request_id(request)
    body: dict[str, Any] = {
        "status": "error",
        "message": message,
        "error": {
            "code": code,
            "message": message,
            "details": [d.as_dict() for d in details or []],
            **(extra or {}),
        },
        "request_id": rid,
        "timestamp": now_utc(),
    }
    return JsonResponse(body, status_code=status, headers=headers)


def problems_from_pydantic(errors: list[Any], *, skip: int = 0) -> list[FieldProblem]:
    out = []
    for err in errors:
        loc = [str(p) for p in err.get("loc", ())][skip:]
        path = ".".join(loc) or "(body)"
        message = str(err.get("msg", "invalid")).removeprefix("Value error, ")
        out.append(FieldProblem(path, message))
    return out


def install(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JsonResponse:
        return envelope(
            request, exc.status, exc.code, exc.message, exc.details, exc.headers, exc.extra
        )

    @app.exception_handler(DppError)
    async def _dpp_error(request: Request, exc: DppError) -> JsonResponse:
        return envelope(request, exc.http_status, exc.code, exc.message, exc.details)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JsonResponse:
        details = problems_from_pydantic(list(exc.errors()))
        names = ", ".join(d.field for d in details)
        return envelope(request, 422, "validation_failed", f"invalid request: {names}", details)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JsonResponse:
        code = CODES.get(exc.status_code, "error")
        return envelope(
            request, exc.status_code, code, str(exc.detail), headers=getattr(exc, "headers", None)
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JsonResponse:
        log.exception(
            "unhandled error on %s %s (request %s)",
            request.method,
            request.url.path,
            request_id(request),
        )
        return envelope(
            request,
            500,
            "internal_error",
            "unexpected server error; see the service log for this request_id",
        )
