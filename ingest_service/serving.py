"""How a read endpoint answers: authenticate the key, apply its rate limit, resolve the
streams it names within the key's scope, then serve the cached answer or compute it with a
``dpp_lib.views`` function in a computing process (``compute``). Routes only declare
parameters and say which view to call. A request answered before is answered from the
cache by ``fastpath`` without coming here."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import orjson
from fastapi import Request
from fastapi.concurrency import run_in_threadpool
from starlette.responses import Response

from dpp_lib.access import Principal
from dpp_lib.errors import BadParameter, NotFound
from dpp_lib.ingest.lookups import OrgLookups
from dpp_lib.metrics.common import Scope
from dpp_lib.store.types import now_utc
from ingest_service.cache import ResponseCache
from ingest_service.compute import ViewCall
from ingest_service.deps import bearer_key, service
from ingest_service.errors import ApiError, request_id
from ingest_service.fastpath import Alias, bearer_token, token_digest
from ingest_service.sessions import CSRF_HEADER, SESSION_COOKIE, check_session_csrf, current_user
from ingest_service.state import ServiceState

log = logging.getLogger(__name__)

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


async def authorise(request: Request, permission: str, tier: str) -> Principal:
    """The caller, by API key (``Authorization: Bearer``) or by session cookie — the same
    ``Principal`` rules either way: 401 without a usable key or live session, 403 without
    ``permission``, 429 over the tier's rate limit. With a session cookie, a request that
    changes something also needs the session's CSRF token in ``X-CSRF-Token``. The
    rate-limit headers go on the response whatever it is."""
    state = service(request)
    token = bearer_token(request.headers.get("authorization", ""))
    digest = token_digest(token) if token else None
    if token is None and request.cookies.get(SESSION_COOKIE):
        principal = await _session_principal(request)
    else:
        principal = await _key_principal(request, state, digest)
        count_key_use(state, principal.subject)
    if not principal.has(permission):
        raise ApiError(403, f"{_who(principal)} lacks the '{permission}' permission")
    request_state = request.scope.setdefault("state", {})
    # the fast path may have counted this request already (its answer was not cached)
    decision = request_state.pop("rate_limit_decision", None) or state.rate_limiter.hit(
        principal.subject, tier
    )
    request_state["rate_limit_headers"] = decision.headers()
    request_state["alias"] = (digest, permission, tier)
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


async def _key_principal(request: Request, state: ServiceState, digest: bytes | None) -> Principal:
    versions = state.versions.fresh()
    if versions is None:
        versions = await run_in_threadpool(state.versions.current)
    known = state.known_keys.get(digest, versions) if digest else None
    if known is not None:
        return known.principal
    key = await bearer_key(request, state, None)
    if digest:
        state.known_keys.put(digest, key, versions)
    return Principal.from_api_key(key)


async def _session_principal(request: Request) -> Principal:
    principal = await current_user(request)
    if principal is None:
        raise ApiError(
            401,
            "your session has expired or was signed out: sign in again at /login",
            headers={"WWW-Authenticate": "Bearer"},
        )
    if request.method not in SAFE_METHODS and not check_session_csrf(
        request, request.headers.get(CSRF_HEADER)
    ):
        raise ApiError(
            403, "missing or wrong X-CSRF-Token header (GET /auth/me gives the session's token)"
        )
    return principal


def _who(principal: Principal) -> str:
    return "API key" if principal.kind == "api_key" else "your account"


def count_key_use(state: ServiceState, key_id: str) -> None:
    """Count a request of an API key (hourly usage); writes the counts once a minute in
    the background, never in the request."""
    if state.key_usage.hit(uuid.UUID(key_id), now_utc()):
        task = asyncio.get_running_loop().create_task(_flush_usage(state))
        _renewals.add(task)
        task.add_done_callback(_renewals.discard)


async def _flush_usage(state: ServiceState) -> None:
    try:
        await run_in_threadpool(state.key_usage.flush, state.engine)
    except Exception:
        log.warning("writing API key usage failed (kept for the next try)", exc_info=True)


def require_unrestricted(principal: Principal, what: str) -> None:
    if principal.is_restricted:
        raise ApiError(
            403,
            f"{what} covers the whole organisation: it needs an unscoped "
            + ("key" if principal.kind == "api_key" else "account"),
        )


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
                    raise ApiError(
                        403, f"{_who(principal)} is not scoped to delivery stream {value!r}"
                    )
                names = [k for k, v in lookups.delivery_by_key.items() if v == found]
                return StreamRef(kind, found, min(names, key=lambda n: (n == str(found), n)))
        else:
            found = lookups.tech_stream_id(value)
            if found is not None:
                if not principal.sees_tech(found):
                    raise ApiError(403, f"{_who(principal)} is not scoped to tech stream {value!r}")
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
    compute: ViewCall,
) -> Response:
    """The cached answer for (endpoint, params, the caller's visible streams), or compute it.
    ``meta`` gets ``computed_at``; a ``None`` ``as_of`` in meta means now (such answers are
    renewed in the background before they expire; past views are kept until data changes)."""
    state = service(request)
    cache = state.cache
    key = ResponseCache.key(
        endpoint, [(k, str(v)) for k, v in params.items() if v is not None], principal.scope_key
    )
    # A cached answer must not wait for a thread: under load every thread may be busy.
    versions = state.versions.fresh()
    if versions is None:
        versions = await run_in_threadpool(state.versions.current)
    found = cache.get(key, versions)
    if found is None:
        async with state.single_flight(key):
            found = cache.get(key, versions, count=False)  # computed while we waited
            if found is None:
                body = await state.computer.compute(compute, meta)
                fixed = params.get("as_of") is not None
                cache.put(key, body, versions, fixed=fixed, renew=(compute, meta))
                _remember(request, state, key, versions)
                return _response(body, request_id(request), cache="MISS")
    if found.renew is not None:
        renew(state, key, found.renew)
    _remember(request, state, key, versions)
    return _response(found.body, request_id(request), cache="STALE" if found.stale else "HIT")


def _remember(request: Request, state: ServiceState, key: str, versions: Mapping[str, int]) -> None:
    """Let the fast path answer this request (path, query, key) from the cache next time."""
    digest, permission, tier = request.scope["state"]["alias"]
    if digest is not None and state.cache.enabled:
        alias = Alias(key, permission, tier, versions.get("config", 0))
        state.aliases.put(request.url.path, request.scope["query_string"], digest, alias)


def _response(body: bytes, rid: str, *, cache: str) -> Response:
    return Response(
        body + tail(rid, stale=cache == "STALE", cached=cache != "MISS"),
        media_type="application/json",
        headers={"X-Cache": cache},
    )


def tail(rid: str, *, stale: bool = False, cached: bool = True) -> bytes:
    """What closes a rendered answer: this response's request id and whether it was cached."""
    flag = b',"cached":true' if cached else b',"cached":false'
    if stale:
        flag += b',"stale":true'
    return b',"request_id":' + orjson.dumps(rid) + flag + b"}}"


_renewals: set[asyncio.Task[None]] = set()


def renew(state: ServiceState, key: str, how: tuple[ViewCall, dict[str, Any]]) -> None:
    """Compute a "now" answer again in the background (the cache marked it as renewing, so
    one request starts it); requests meanwhile get the current answer."""
    call, meta = how

    async def run() -> None:
        try:
            versions = await run_in_threadpool(state.versions.current)
            body = await state.computer.compute(call, meta)
        except Exception:
            log.exception("renewing the cached answer %s failed", key)
            state.cache.renewal_failed(key)
            return
        state.cache.put(key, body, versions, renew=how)

    task = asyncio.get_running_loop().create_task(run())
    _renewals.add(task)
    task.add_done_callback(_renewals.discard)


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
