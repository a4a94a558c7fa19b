"""How a read endpoint answers: authenticate the key, apply its rate limit, resolve the
streams it names within the key's scope, then serve the cached answer or compute it with a
``dpp_lib.views`` function in the threadpool. Routes only declare parameters and say which
view to call."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import sqlalchemy as sa
from fastapi import Request
from fastapi.concurrency import run_in_threadpool
from starlette.responses import Response

from dpp_lib.access import Principal
from dpp_lib.errors import BadParameter, NotFound
from dpp_lib.ingest.lookups import OrgLookups
from dpp_lib.metrics.common import Scope
from dpp_lib.store.types import now_utc
from dpp_lib.views.common import Org, load_org
from ingest_service.cache import ResponseCache
from ingest_service.deps import bearer_key, service
from ingest_service.errors import ApiError, request_id
from ingest_service.state import ServiceState

Compute = Callable[[sa.Connection, OrgLookups, Org], Any]


async def authorise(request: Request, permission: str, tier: str) -> Principal:
    """The caller: 401 without a usable key, 403 without ``permission``, 429 over the
    tier's rate limit. The rate-limit headers go on the response whatever it is."""
    state = service(request)
    key = await bearer_key(request, state, None)
    principal = Principal.from_api_key(key)
    if not principal.has(permission):
        raise ApiError(403, f"API key lacks the '{permission}' permission")
    decision = state.rate_limiter.hit(principal.subject, tier)
    request.scope.setdefault("state", {})["rate_limit_headers"] = decision.headers()
    if not decision.allowed:
        raise ApiError(
            429,
            f"rate limit exceeded: {decision.limit} requests per minute for '{tier}' endpoints;"
            f" retry after {decision.retry_after} seconds",
            headers={"Retry-After": str(decision.retry_after)},
            extra={
                "limit": decision.limit,
                "window_seconds": 60,
                "retry_after_seconds": decision.retry_after,
            },
        )
    return principal


def require_unrestricted(principal: Principal, what: str) -> None:
    if principal.is_restricted:
        raise ApiError(403, f"{what} covers the whole organisation: it needs an unscoped key")


@dataclass(frozen=True)
class StreamRef:
    kind: str  # delivery | tech
    stream_id: uuid.UUID
    name: str


def resolve_stream(
    lookups: OrgLookups,
    principal: Principal,
    value: str,
    *,
    kinds: tuple[str, ...],
    parameter: str,
) -> StreamRef:
    """A stream named by name or UUID: 404 when unknown, 403 outside the caller's scope."""
    for kind in kinds:
        if kind == "delivery":
            found = lookups.delivery_stream(value)
            if found is not None:
                if not principal.sees_delivery(found):
                    raise ApiError(403, f"API key is not scoped to delivery stream {value!r}")
                names = [k for k, v in lookups.delivery_by_key.items() if v == found]
                return StreamRef(kind, found, min(names, key=lambda n: (n == str(found), n)))
        else:
            found = lookups.tech_stream_id(value)
            if found is not None:
                if not principal.sees_tech(found):
                    raise ApiError(403, f"API key is not scoped to tech stream {value!r}")
                info = lookups.tech_stream(found)
                return StreamRef(kind, found, info.name if info else value)
    kind_text = " or ".join(kinds)
    raise NotFound(f"{parameter}: no {kind_text} stream is named {value!r} (name or UUID)")


def parse_as_of(value: str | None, lookups: OrgLookups) -> datetime | None:
    """ISO 8601: a moment (no offset = the org's time zone) or a date (its end: the next
    local midnight, so "as of 12 November" includes the 12th). Refuses the future."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    zone = ZoneInfo(lookups.time_zone)
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            moment = datetime.combine(day + timedelta(days=1), time(), tzinfo=zone)
        else:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace(" ", "+", 1))
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=zone)
    except ValueError:
        raise BadParameter(
            "as_of", f"{value!r} is not an ISO 8601 date or date-time (e.g. 2026-11-12T18:00:00Z)"
        ) from None
    moment = moment.astimezone(UTC)
    if moment > now_utc() + timedelta(minutes=5):
        raise BadParameter("as_of", f"{value!r} is in the future")
    if moment.year < 2000:
        raise BadParameter("as_of", f"{value!r} is before 2000")
    return moment


async def serve(
    request: Request,
    *,
    endpoint: str,
    principal: Principal,
    params: dict[str, Any],
    meta: dict[str, Any],
    compute: Compute,
) -> Response:
    """The cached answer for (endpoint, params, the caller's visible streams), or compute it.
    ``meta`` gets ``computed_at``; a ``None`` ``as_of`` in meta means now."""
    state = service(request)
    cache = state.cache
    key = ResponseCache.key(
        endpoint, [(k, str(v)) for k, v in params.items() if v is not None], principal.scope_key
    )
    # A cached answer must not wait for a thread: under load every thread may be busy.
    versions = state.versions.fresh()
    if versions is None:
        versions = await run_in_threadpool(state.versions.current)
    body = cache.get(key, versions)
    hit = body is not None
    if body is None:
        async with state.single_flight(key):
            body = cache.get(key, versions, count=False)  # computed while we waited
            hit = body is not None
            if body is None:
                async with state.computations():
                    body = await run_in_threadpool(_compute, state, meta, compute)
                cache.put(key, body, versions)
    return Response(
        body + _tail(request, hit),
        media_type="application/json",
        headers={"X-Cache": "HIT" if hit else "MISS"},
    )


def _compute(state: ServiceState, meta: dict[str, Any], compute: Compute) -> bytes:
    lookups = state.lookups_sync()  # its own connection, before ours begins
    with state.engine.connect() as conn:
        data = compute(conn, lookups, load_org(conn))
    rendered_meta = {**meta, "computed_at": now_utc()}
    head = orjson.dumps({"status": "ok", "data": data}, option=orjson.OPT_NON_STR_KEYS)
    meta_bytes = orjson.dumps(rendered_meta, option=orjson.OPT_NON_STR_KEYS)
    # Left open: the request id and cache flag of each response are appended (``_tail``).
    return head[:-1] + b',"meta":' + meta_bytes[:-1]


def _tail(request: Request, hit: bool) -> bytes:
    rid = orjson.dumps(request_id(request))
    return b',"request_id":' + rid + (b',"cached":true}}' if hit else b',"cached":false}}')


def delivery_scope(principal: Principal, stream: StreamRef | None) -> Scope:
    if stream is None:
        return principal.delivery_scope()
    return Scope(delivery_stream_id=stream.stream_id)


def tech_scope(principal: Principal, stream: StreamRef | None) -> Scope:
    if stream is None:
        return principal.tech_scope()
    return Scope(tech_stream_id=stream.stream_id)


def stream_meta(stream: StreamRef | None, kind: str) -> dict[str, Any]:
    return {
        "stream_type": stream.kind if stream else kind,
        "stream_id": str(stream.stream_id) if stream else None,
        "stream": stream.name if stream else None,
    }
