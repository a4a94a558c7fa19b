"""Metrics endpoints (API reference "Metrics Endpoints", spec §7.3.2; breakdown and
drilldown from the metrics contract). Each accepts ``as_of`` (ISO 8601) to reproduce a past
view; without it the answer is for now. Streams are named by name or UUID."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from dpp_lib.access import Principal
from dpp_lib.errors import BadParameter
from dpp_lib.metrics.common import Scope
from dpp_lib.metrics.forecast import HOW_MANY_WINDOW_WEEKS
from dpp_lib.views import breakdown, delivery, diagnostic, drilldown, team, trends
from ingest_service.compute import NOW, Moment, view_call
from ingest_service.deps import service
from ingest_service.openapi import documented
from ingest_service.serving import (
    StreamRef,
    authorise,
    delivery_scope,
    parse_as_of,
    resolve_stream,
    serve,
    stream_meta,
    tech_scope,
)

router = APIRouter(prefix="/api/v1/metrics", tags=["metrics"])

AsOf = Annotated[
    str | None,
    Query(description="ISO 8601 moment or date (its end) to compute for; default now"),
]
Stream = Annotated[str | None, Query(description="Delivery stream, by name or UUID; default all")]
TechStream = Annotated[str | None, Query(description="Tech stream, by name or UUID; default all")]


def _at(as_of: datetime | None) -> datetime | Moment:
    """The moment to compute for: ``NOW`` is taken when the computation starts."""
    return as_of if as_of is not None else NOW


def _meta(as_of: datetime | None, **extra: Any) -> dict[str, Any]:
    return {**extra, "as_of": as_of}


async def _stream(
    request: Request,
    principal: Principal,
    value: str | None,
    kinds: tuple[str, ...],
    parameter: str,
) -> tuple[StreamRef | None, Any]:
    lookups = await service(request).lookups()
    ref = (
        resolve_stream(lookups, principal, value, kinds=kinds, parameter=parameter)
        if value
        else None
    )
    return ref, lookups


def _all_streams(principal: Principal) -> Scope:
    """ "All streams" for an endpoint of either dimension: what the key may see, by the
    dimension it is scoped in (delivery first)."""
    if not principal.is_restricted:
        return Scope()
    if principal.delivery_streams:
        return principal.delivery_scope()
    return principal.tech_scope()


def _either(principal: Principal, ref: StreamRef | None) -> Scope:
    """The scope of an endpoint that takes a delivery or a tech stream."""
    if ref is None:
        return _all_streams(principal)
    if ref.kind == "delivery":
        return delivery_scope(principal, ref)
    return tech_scope(principal, ref)


@router.get("/realtime", **documented("metrics/realtime"))
async def realtime(request: Request, stream: Stream = None, as_of: AsOf = None) -> Response:
    """WIP by stage with aging, sprint confidence, and the cycle-time percentiles and scatter
    of the last 30 days (cycle times in business days). Cache: 30 s."""
    principal = await authorise(request, "metrics:read", "summary")
    ref, lookups = await _stream(request, principal, stream, ("delivery",), "stream")
    when = parse_as_of(as_of, lookups)
    scope = delivery_scope(principal, ref)
    return await serve(
        request,
        endpoint="metrics/realtime",
        principal=principal,
        params={"stream": ref and ref.stream_id, "as_of": when},
        meta=_meta(when, **stream_meta(ref, "delivery"), window_days=30),
        compute=view_call(
            delivery.realtime, "conn", "lookups", "org", scope=scope, as_of=_at(when)
        ),
    )


@router.get("/diagnostic", **documented("metrics/diagnostic"))
async def diagnostic_metrics(
    request: Request,
    stream: Annotated[
        str | None, Query(description="Delivery or tech stream, by name or UUID; default all")
    ] = None,
    stream_type: Annotated[
        str | None,
        Query(description="delivery or tech, when a name is both", pattern="^(delivery|tech)$"),
    ] = None,
    window: Annotated[int, Query(ge=1, le=730, description="Rolling window in days")] = 30,
    as_of: AsOf = None,
) -> Response:
    """Flow efficiency with per-queue waits, defect escape with the introduced × found
    matrix, and PR review turnaround (suppressed below the minimum contributors). Cache:
    15 minutes."""
    principal = await authorise(request, "metrics:read", "summary")
    kinds = (stream_type,) if stream_type else ("delivery", "tech")
    ref, lookups = await _stream(request, principal, stream, kinds, "stream")
    when = parse_as_of(as_of, lookups)
    scope = _either(principal, ref)
    return await serve(
        request,
        endpoint="metrics/diagnostic",
        principal=principal,
        params={"stream": ref and ref.stream_id, "window": window, "as_of": when},
        meta=_meta(when, **stream_meta(ref, "delivery"), window_days=window),
        compute=view_call(
            diagnostic.diagnostic, "conn", "org", scope=scope, as_of=_at(when), window_days=window
        ),
    )


@router.get("/trends", **documented("metrics/trends"))
async def trend_metrics(
    request: Request,
    tech_stream: TechStream = None,
    stream: Annotated[str | None, Query(description="Alias of tech_stream (spec §7.3.2)")] = None,
    window: Annotated[int, Query(ge=7, le=730, description="Window in days")] = 90,
    as_of: AsOf = None,
) -> Response:
    """DORA metrics: a weekly series for one tech stream, or the window's figures for every
    tech stream. Units: deploys per week (series: raw count per week), change failure rate
    %, time to restore minutes, lead time hours. Cache: 5 minutes."""
    principal = await authorise(request, "metrics:read", "trends")
    name = tech_stream or stream
    ref, lookups = await _stream(
        request, principal, name, ("tech",), "tech_stream" if tech_stream else "stream"
    )
    when = parse_as_of(as_of, lookups)
    scope = tech_scope(principal, ref)
    meta = _meta(when, tech_stream_id=str(ref.stream_id) if ref else None, window_days=window)
    if ref is not None:
        meta["tech_stream"] = ref.name
    return await serve(
        request,
        endpoint="metrics/trends",
        principal=principal,
        params={"tech_stream": ref and ref.stream_id, "window": window, "as_of": when},
        meta=meta,
        compute=(
            view_call(
                trends.trend_series,
                "conn",
                "lookups",
                scope=scope,
                as_of=_at(when),
                window_days=window,
            )
            if ref is not None
            else view_call(
                trends.trend_summary,
                "conn",
                "lookups",
                "org",
                scope=scope,
                as_of=_at(when),
                window_days=window,
            )
        ),
    )


@router.get("/forecast", **documented("metrics/forecast"))
async def forecast_metrics(
    request: Request,
    stream: Stream = None,
    window: Annotated[
        int, Query(ge=1, le=104, description="Weeks of throughput history to sample")
    ] = HOW_MANY_WINDOW_WEEKS,
    as_of: AsOf = None,
) -> Response:
    """Monte Carlo forecasts: how many items by the end of the active sprint (p50/p85/p95,
    1,000 runs) and when the remaining scope is done (p50/p70/p85/p95 dates and histogram,
    10,000 runs; a low-confidence linear projection with under 6 weeks of history).
    Cache: 1 hour."""
    principal = await authorise(request, "metrics:read", "summary")
    ref, lookups = await _stream(request, principal, stream, ("delivery",), "stream")
    when = parse_as_of(as_of, lookups)
    scope = delivery_scope(principal, ref)
    return await serve(
        request,
        endpoint="metrics/forecast",
        principal=principal,
        params={"stream": ref and ref.stream_id, "window": window, "as_of": when},
        meta=_meta(when, **stream_meta(ref, "delivery"), window_weeks=window),
        compute=view_call(
            delivery.forecast_view,
            "conn",
            "lookups",
            scope=scope,
            as_of=_at(when),
            window_weeks=window,
        ),
    )


@router.get("/pulse", **documented("metrics/pulse"))
async def pulse_metrics(
    request: Request,
    stream: Stream = None,
    periods: Annotated[int, Query(ge=1, le=36, description="Recent survey periods")] = 6,
    as_of: AsOf = None,
) -> Response:
    """Team pulse aggregates per survey period (1–5 averages and month-on-month trends;
    periods under the minimum responses are suppressed). Cache: 24 hours."""
    principal = await authorise(request, "metrics:read", "summary")
    ref, lookups = await _stream(request, principal, stream, ("delivery",), "stream")
    when = parse_as_of(as_of, lookups)
    scope = delivery_scope(principal, ref)
    return await serve(
        request,
        endpoint="metrics/pulse",
        principal=principal,
        params={"stream": ref and ref.stream_id, "periods": periods, "as_of": when},
        meta=_meta(when, **stream_meta(ref, "delivery"), periods=periods),
        compute=view_call(
            team.pulse_view, "conn", "org", scope=scope, as_of=_at(when), periods=periods
        ),
    )


@router.get("/cross-stream", **documented("metrics/cross-stream"))
async def cross_stream_metrics(
    request: Request, tech_stream: TechStream = None, as_of: AsOf = None
) -> Response:
    """Which tech streams block which delivery streams over the last 14 days, with severity
    and the tech stream of highest cross-stream impact. Cache: 5 minutes."""
    principal = await authorise(request, "metrics:read", "summary")
    ref, lookups = await _stream(request, principal, tech_stream, ("tech",), "tech_stream")
    when = parse_as_of(as_of, lookups)
    scope = tech_scope(principal, ref)
    return await serve(
        request,
        endpoint="metrics/cross-stream",
        principal=principal,
        params={"tech_stream": ref and ref.stream_id, "as_of": when},
        meta=_meta(when, tech_stream_id=str(ref.stream_id) if ref else None),
        compute=view_call(
            team.cross_stream_view,
            "conn",
            "lookups",
            "org",
            scope=scope,
            delivery_visible=principal.delivery_streams,
            as_of=_at(when),
        ),
    )


def _window(window: int | None, time_range: str | None) -> int:
    """``window`` in days, or the contract's ``time_range`` (24h, 7d, 30d, 90d …)."""
    if time_range is None:
        return window or 30
    text = time_range.strip().lower()
    number, unit = text[:-1], text[-1:]
    if not number.isdigit() or unit not in ("h", "d") or int(number) < 1:
        raise BadParameter("time_range", f"{time_range!r} is not like 24h, 7d, 30d or 90d")
    days = max(1, int(number) // 24) if unit == "h" else int(number)
    if days > 730:
        raise BadParameter("time_range", "at most 730 days")
    return days


@router.get("/breakdown", **documented("metrics/breakdown"))
async def breakdown_metrics(
    request: Request,
    metric: Annotated[
        str,
        Query(
            description="Metric to break down",
            json_schema_extra={"enum": list(breakdown.BREAKDOWN_METRICS)},
        ),
    ],
    dimension: Annotated[
        str,
        Query(
            description="The grouping (not every metric has every one)",
            json_schema_extra={"enum": list(breakdown.DIMENSIONS)},
        ),
    ],
    stream: Annotated[
        str | None, Query(description="Delivery or tech stream, by name or UUID; default all")
    ] = None,
    window: Annotated[int | None, Query(ge=1, le=730, description="Window in days")] = None,
    time_range: Annotated[
        str | None, Query(description="Alternative to window: 24h, 7d, 30d, 90d")
    ] = None,
    as_of: AsOf = None,
) -> Response:
    """A metric grouped by a dimension, with each group's share and its change against the
    previous window of the same length (metrics contract "breakdown"). Cache: 5 minutes."""
    principal = await authorise(request, "metrics:read", "breakdown")
    ref, lookups = await _stream(request, principal, stream, ("delivery", "tech"), "stream")
    when = parse_as_of(as_of, lookups)
    days = _window(window, time_range)
    scope = _either(principal, ref)
    return await serve(
        request,
        endpoint="metrics/breakdown",
        principal=principal,
        params={
            "metric": metric,
            "dimension": dimension,
            "stream": ref and ref.stream_id,
            "window": days,
            "as_of": when,
        },
        meta=_meta(when, **stream_meta(ref, "delivery"), window_days=days),
        compute=view_call(
            breakdown.breakdown,
            "conn",
            "lookups",
            metric=metric,
            dimension=dimension,
            scope=scope,
            as_of=_at(when),
            window_days=days,
        ),
    )


@router.get("/drilldown", **documented("metrics/drilldown"))
async def drilldown_metrics(
    request: Request,
    metric: Annotated[
        str,
        Query(
            description="Metric whose items to list",
            json_schema_extra={"enum": list(drilldown.DRILLDOWN_METRICS)},
        ),
    ],
    stream: Annotated[
        str | None, Query(description="Delivery or tech stream, by name or UUID; default all")
    ] = None,
    window: Annotated[int, Query(ge=1, le=730, description="Window in days")] = 30,
    sort_by: Annotated[
        str, Query(json_schema_extra={"enum": list(drilldown.SORT_FIELDS)})
    ] = "value",
    sort_order: Annotated[str, Query(pattern="^(asc|desc)$")] = "desc",
    limit: Annotated[int, Query(ge=1, le=500, description="Items per page (max 500)")] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    filters: Annotated[
        str | None, Query(description='JSON object, e.g. {"ticket_type": "Bug"}')
    ] = None,
    as_of: AsOf = None,
) -> Response:
    """The tickets, pull requests, deploys or incidents behind a metric, with each one's
    value, context and contributing factors (from stage durations), sorted and paginated
    (metrics contract "drilldown"). Cache: 5 minutes."""
    principal = await authorise(request, "metrics:read", "drilldown")
    ref, lookups = await _stream(request, principal, stream, ("delivery", "tech"), "stream")
    when = parse_as_of(as_of, lookups)
    wanted = _filters(filters)
    scope = _either(principal, ref)
    return await serve(
        request,
        endpoint="metrics/drilldown",
        principal=principal,
        params={
            "metric": metric,
            "stream": ref and ref.stream_id,
            "window": window,
            "sort_by": sort_by,
            "sort_order": sort_order,
            "limit": limit,
            "offset": offset,
            "filters": orjson.dumps(wanted, option=orjson.OPT_SORT_KEYS).decode(),
            "as_of": when,
        },
        meta=_meta(when, **stream_meta(ref, "delivery"), window_days=window),
        compute=view_call(
            drilldown.drilldown,
            "conn",
            "lookups",
            metric=metric,
            scope=scope,
            as_of=_at(when),
            window_days=window,
            sort_by=sort_by,
            sort_order=sort_order,
            limit=limit,
            offset=offset,
            filters=wanted,
        ),
    )


def _filters(text: str | None) -> dict[str, str]:
    if text is None or not text.strip():
        return {}
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        raise BadParameter("filters", "must be a JSON object of strings") from None
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise BadParameter("filters", "must be a JSON object of strings")
    return value
