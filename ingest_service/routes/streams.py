"""Configuration endpoints (API reference "Stream Endpoints", spec §7.3.2)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from dpp_lib.views import streams
from ingest_service.compute import view_call
from ingest_service.deps import service
from ingest_service.openapi import documented
from ingest_service.serving import authorise, resolve_stream, serve

router = APIRouter(prefix="/api/v1", tags=["configuration"])


@router.get("/streams/delivery", **documented("streams/delivery"))
async def delivery_streams(request: Request) -> Response:
    """Active delivery streams (only those the key may see)."""
    principal = await authorise(request, "metrics:read", "summary")
    return await serve(
        request,
        endpoint="streams/delivery",
        principal=principal,
        params={},
        meta={},
        compute=view_call(streams.delivery_streams, "org", scope=principal.delivery_scope()),
    )


@router.get("/streams/tech", **documented("streams/tech"))
async def tech_streams(request: Request) -> Response:
    """Active tech streams (only those the key may see)."""
    principal = await authorise(request, "metrics:read", "summary")
    return await serve(
        request,
        endpoint="streams/tech",
        principal=principal,
        params={},
        meta={},
        compute=view_call(streams.tech_streams, "org", scope=principal.tech_scope()),
    )


@router.get("/sprints", **documented("sprints"))
async def sprints(
    request: Request,
    stream: Annotated[str, Query(description="Delivery stream, by name or UUID", min_length=1)],
    state: Annotated[
        str | None,
        Query(description="future, active or closed", pattern="^(future|active|closed)$"),
    ] = None,
) -> Response:
    """A delivery stream's sprints, newest first."""
    principal = await authorise(request, "metrics:read", "summary")
    ref = resolve_stream(
        await service(request).lookups(), principal, stream, kinds=("delivery",), parameter="stream"
    )
    return await serve(
        request,
        endpoint="sprints",
        principal=principal,
        params={"stream": ref.stream_id, "state": state},
        meta={"stream_type": "delivery", "stream_id": str(ref.stream_id), "stream": ref.name},
        compute=view_call(
            streams.sprint_list, "conn", delivery_stream_id=ref.stream_id, state=state
        ),
    )
