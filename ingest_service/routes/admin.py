"""Admin endpoints (API reference "Admin Endpoints" and "PR Link Endpoint"; cache statistics
and invalidation from the operations API). They need a key with the ``admin`` permission;
those that cover the whole organisation also need an unscoped key."""

from __future__ import annotations

import fnmatch
import uuid
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field
from starlette.responses import Response

from dpp_lib.store import data_versions
from dpp_lib.store.pr_links import link_ticket
from dpp_lib.store.schema import pr_events
from dpp_lib.store.types import now_utc
from dpp_lib.views import admin, alerts
from ingest_service.cache import POLICIES
from ingest_service.compute import NOW, view_call
from ingest_service.deps import parse_json_object, read_body, service, validate_body
from ingest_service.errors import ApiError
from ingest_service.openapi import documented
from ingest_service.responses import JsonResponse
from ingest_service.serving import authorise, parse_as_of, require_unrestricted, serve

router = APIRouter(prefix="/api/v1", tags=["administration"])


@router.get("/admin/data-quality", **documented("admin/data-quality"))
async def data_quality(
    request: Request,
    window: Annotated[int, Query(ge=1, le=730, description="Window in days")] = 30,
    as_of: Annotated[str | None, Query(description="ISO 8601 moment or date")] = None,
) -> Response:
    """The data quality rates of spec §5.6 over the streams the key may see, each stream's
    own rates, and a warning per stream rate below its target. Cache: 15 minutes."""
    principal = await authorise(request, "admin", "summary")
    when = parse_as_of(as_of, await service(request).lookups())
    return await serve(
        request,
        endpoint="admin/data-quality",
        principal=principal,
        params={"window": window, "as_of": when},
        meta={"window_days": window, "as_of": when},
        compute=view_call(
            admin.data_quality_report,
            "conn",
            "lookups",
            "org",
            scope=principal.visible_scope(),
            as_of=when or NOW,
            window_days=window,
        ),
    )


@router.get("/admin/integration-health", **documented("admin/integration-health"))
async def integration_health(request: Request) -> Response:
    """Per event source: ``healthy`` (events in the last 2 h), ``stale`` (none in 2 h but
    some before) or ``no_data``, with the last event and the last 24 h's count."""
    principal = await authorise(request, "admin", "summary")
    require_unrestricted(principal, "integration health")
    return await serve(
        request,
        endpoint="admin/integration-health",
        principal=principal,
        params={},
        meta={},
        compute=view_call(admin.integration_health_view, "conn", now=NOW),
    )


@router.get("/admin/system-alerts", **documented("admin/system-alerts"))
async def system_alerts(request: Request) -> JsonResponse:
    """The active alert conditions of spec §8.5, evaluated now (and recorded: an alert keeps
    the time it was first triggered until it clears)."""
    principal = await authorise(request, "admin", "summary")
    require_unrestricted(principal, "system alerts")
    state = service(request)
    p95, measured = state.latency.p95()

    def evaluate() -> list[dict[str, Any]]:
        lookups = state.lookups_sync()  # before the write transaction (SQLite: one writer)
        with state.engine.begin() as conn:
            return alerts.refresh_system_alerts(
                conn,
                lookups,
                now=now_utc(),
                api_latency_p95_ms=p95,
                api_requests=measured,
            )

    found = await run_in_threadpool(evaluate)
    return JsonResponse(
        {
            "status": "ok",
            "data": {"alerts": found},
            "meta": {"evaluated_at": now_utc(), "request_id": request.scope["state"]["request_id"]},
        }
    )


class LinkTicketBody(BaseModel):
    ticket_id: str = Field(min_length=1, max_length=64, description="Jira key, e.g. PAY-456")


@router.post("/pr-events/{event_id}/link-ticket", **documented("pr-events/link-ticket"))
async def link_pr_ticket(request: Request, event_id: str) -> JsonResponse:
    """Link a pull request to a Jira ticket by hand (retroactive linkage): validates the key,
    re-enriches the PR (its delivery stream, cycle and the deploys that shipped it) and
    refreshes the linkage metrics. ``event_id`` is the UUID of any event of the PR (the
    drilldown lists it)."""
    principal = await authorise(request, "admin", "summary")
    try:
        pr_event_id = uuid.UUID(event_id)
    except ValueError:
        raise ApiError(404, f"no PR event has the id {event_id!r} (a UUID)") from None
    state = service(request)
    body = parse_json_object(await read_body(request, 64 * 1024))
    parsed = validate_body(LinkTicketBody, body)

    def link() -> Any:
        lookups = state.lookups_sync()  # before the write transaction (SQLite: one writer)
        with state.engine.begin() as conn:
            owner = conn.execute(
                sa.select(pr_events.c.tech_stream_id).where(pr_events.c.event_id == pr_event_id)
            ).scalar()
            if owner is not None and not principal.sees_tech(owner):
                raise ApiError(403, "API key is not scoped to this pull request's tech stream")
            return link_ticket(
                conn,
                lookups,
                pr_event_id=pr_event_id,
                ticket_id=parsed.ticket_id,
                now=now_utc(),
                actor=principal.subject,
                actor_type="api_key",
            )

    result = await run_in_threadpool(link)
    return JsonResponse(
        {
            "ok": True,
            "status": "ok",
            "data": {
                "repository": result.repo,
                "pr_number": result.pr_number,
                "ticket_id": result.ticket_id,
                "previous_ticket_id": result.previous_ticket_id,
                "delivery_stream_id": result.delivery_stream_id,
                "events_updated": result.events_updated,
            },
        }
    )


@router.get("/cache/stats", **documented("cache/stats"))
async def cache_stats(request: Request) -> JsonResponse:
    """This API process's response cache: hit rate, size, evictions, per endpoint."""
    principal = await authorise(request, "admin", "summary")
    require_unrestricted(principal, "cache statistics")
    return JsonResponse({"status": "ok", "data": service(request).cache.snapshot()})


class InvalidateBody(BaseModel):
    keys: list[str] = Field(default_factory=list, description="Exact cache keys (this process)")
    pattern: str | None = Field(
        None, description="Glob over endpoints or keys, e.g. metrics/* or * (every process)"
    )


@router.post("/cache/invalidate", **documented("cache/invalidate"))
async def cache_invalidate(request: Request) -> JsonResponse:
    """Drop cached answers. A ``pattern`` naming endpoints is applied in every API process
    (through the data versions); exact ``keys`` in this one."""
    principal = await authorise(request, "admin", "summary")
    require_unrestricted(principal, "cache invalidation")
    state = service(request)
    raw = await read_body(request, 64 * 1024)
    parsed = validate_body(InvalidateBody, parse_json_object(raw) if raw.strip() else {})
    if not parsed.keys and parsed.pattern is None:
        raise ApiError(400, "give 'keys', a 'pattern', or both")
    endpoints = (
        [e for e in POLICIES if fnmatch.fnmatch(e, parsed.pattern)] if parsed.pattern else []
    )
    if parsed.pattern in ("*", "**"):
        endpoints = ["*"]
    if endpoints:

        def bump() -> None:
            with state.engine.begin() as conn:
                data_versions.bump(conn, [f"cache:{e}" for e in endpoints])

        await run_in_threadpool(bump)
        state.versions.expire()
    dropped = state.cache.invalidate(keys=parsed.keys, pattern=parsed.pattern)
    return JsonResponse(
        {
            "status": "ok",
            "data": {
                "invalidated": dropped,
                "endpoints": endpoints,
                "total_entries": state.cache.snapshot()["entries"],
            },
        }
    )
