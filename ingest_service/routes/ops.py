"""GET /health (the process is up) and GET /health/deep (database, worker backlog, cache).
Unauthenticated, so they reveal nothing sensitive: no addresses, names or error texts."""

from __future__ import annotations

import logging
import time
from typing import Any

import sqlalchemy as sa
from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool

from dpp_lib import __version__
from dpp_lib.store.schema import raw_events
from dpp_lib.store.types import now_utc
from ingest_service.deps import service
from ingest_service.openapi import example_response
from ingest_service.responses import JsonResponse

router = APIRouter(tags=["operations"])
log = logging.getLogger(__name__)

QUEUE_DEPTH_DEGRADED = 1000  # spec §8.5: event processing queue depth > 1000
OLDEST_PENDING_DEGRADED_S = 300  # spec §8.1 wants receipt → stored in 5 s; 5 min is a stall


@router.get("/health", responses={200: example_response("health", "The process is up")})
async def health() -> JsonResponse:
    """Liveness: answers when the process can serve requests."""
    return JsonResponse({"status": "ok", "version": __version__, "timestamp": now_utc()})


@router.get(
    "/health/deep",
    responses={
        200: example_response("health/deep", "healthy or degraded (the reasons say why)"),
        503: {"description": "unhealthy: the database cannot be reached"},
    },
)
async def deep_health(request: Request) -> JsonResponse:
    """Readiness: the database answers, the worker keeps up with the inbox, the cache works.
    ``degraded`` (200) names what is wrong; ``unhealthy`` (503) when the database is down."""
    state = service(request)

    def probe() -> dict[str, Any]:
        started = time.perf_counter()
        with state.engine.connect() as conn:
            conn.execute(sa.select(1)).scalar_one()
            db_ms = (time.perf_counter() - started) * 1000
            r = raw_events
            pending, oldest, dead = conn.execute(
                sa.select(
                    sa.func.count().filter(r.c.state == "pending"),
                    sa.func.min(r.c.received_at).filter(r.c.state == "pending"),
                    sa.func.count().filter(r.c.state == "dead"),
                )
            ).one()
        age = (now_utc() - oldest).total_seconds() if oldest is not None else 0.0
        return {"db_ms": db_ms, "pending": int(pending), "oldest_s": age, "dead": int(dead)}

    try:
        found = await run_in_threadpool(probe)
    except Exception as exc:
        log.warning("deep health: database probe failed: %s", exc)
        return JsonResponse(
            {
                "status": "unhealthy",
                "timestamp": now_utc(),
                "database": {"status": "unreachable"},
            },
            status_code=503,
        )
    reasons = []
    if found["pending"] > QUEUE_DEPTH_DEGRADED:
        reasons.append("event queue depth above 1000")
    if found["oldest_s"] > OLDEST_PENDING_DEGRADED_S:
        reasons.append("oldest pending event waiting over 5 minutes (is the worker running?)")
    if found["dead"]:
        reasons.append("dead-lettered events need attention")
    cache = state.cache.snapshot()
    return JsonResponse(
        {
            "status": "degraded" if reasons else "healthy",
            "reasons": reasons,
            "version": __version__,
            "timestamp": now_utc(),
            "database": {"status": "connected", "response_time_ms": round(found["db_ms"], 2)},
            "worker": {
                "status": "behind" if found["oldest_s"] > OLDEST_PENDING_DEGRADED_S else "ok",
                "queue_depth": found["pending"],
                "oldest_pending_seconds": round(found["oldest_s"], 1),
                "dead_letters": found["dead"],
            },
            "cache": {
                "status": "operational" if cache["enabled"] else "disabled",
                "hit_rate": cache["hit_rate"],
                "entries": cache["entries"],
            },
        }
    )
