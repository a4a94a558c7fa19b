"""create_app(settings): wires routes, middleware and error handlers; nothing else."""

from __future__ import annotations

import asyncio
import gc
import logging
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.concurrency import run_in_threadpool

from dpp_lib import __version__
from dpp_lib.settings import Settings
from ingest_service import errors
from ingest_service.dashboards import dashboard_proxy
from ingest_service.fastpath import CachedAnswers
from ingest_service.middleware import RequestIdMiddleware
from ingest_service.responses import JsonResponse
from ingest_service.routes import admin, docs, events, metrics, oidc, ops, streams, webhooks
from ingest_service.routes.access_admin import router as access_admin_router
from ingest_service.routes.auth import router as auth_router
from ingest_service.routes.reports import router as reports_router
from ingest_service.state import ServiceState

GC_GEN0_THRESHOLD = 20_000
GIL_SWITCH_SECONDS = 0.0005


def create_app(settings: Settings | None = None, state: ServiceState | None = None) -> FastAPI:
    settings = settings or Settings()
    dpp = state or ServiceState.from_settings(settings)
    dashboards = dashboard_proxy(settings) if settings.dashboards_enabled else None

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await dpp.inbox.open()  # the Postgres pool belongs to the server's event loop
        dpp.computer.warm_up()
        quiet_garbage_collector()
        poller = asyncio.get_running_loop().create_task(dpp.poll_versions())
        try:
            yield
        finally:
            poller.cancel()
            if dashboards is not None:
                await dashboards.aclose()
            await flush_key_usage(dpp)
            dpp.computer.close()
            await dpp.inbox.close()
            # its connections would stay open until the process exits (a test suite that
            # starts many apps ran Postgres out of connections)
            dpp.engine.dispose()

    app = FastAPI(
        lifespan=lifespan,
        title="Delivery Performance Platform",
        version=__version__,
        description="Ingests Jira, GitHub, CI/CD, monitoring and survey events; serves metrics.",
        default_response_class=JsonResponse,
        docs_url=None,  # served from local files (routes/docs.py)
        redoc_url=None,
    )
    app.state.dpp = dpp
    errors.install(app)
    app.add_middleware(RequestIdMiddleware, latency=dpp.latency)
    app.add_middleware(CachedAnswers, state=dpp)  # added last: the outermost layer
    app.include_router(webhooks.router)
    app.include_router(events.router)
    app.include_router(streams.router)
    app.include_router(metrics.router)
    app.include_router(admin.router)
    app.include_router(access_admin_router)
    app.include_router(auth_router)
    app.include_router(ops.router)
    app.include_router(oidc.router)
    app.include_router(reports_router)  # retro reports behind sign-in
    docs.install(app)
    if dashboards is not None:
        app.mount("/dashboards", dashboards)  # Voila behind sign-in (ingest_service.proxy)
    logging.getLogger(__name__).info("DPP API ready")
    return app


async def flush_key_usage(dpp: ServiceState) -> None:
    """Write the API key usage counted since the last flush (shutting down)."""
    try:
        await run_in_threadpool(dpp.key_usage.flush, dpp.engine)
    except Exception:
        logging.getLogger(__name__).warning("API key usage of the last minute lost", exc_info=True)


def quiet_garbage_collector() -> None:
    """Keep full garbage collections out of the request path.

    Everything alive at start (the framework, models, config) is moved to the permanent
    generation, so a collection no longer walks it, and the youngest generation is collected
    less often. Without this a full collection stalled the event loop for tens of ms every
    few seconds under load (the ingestion benchmark's p99).
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_GEN0_THRESHOLD, 20, 50)
    # Metric computations in threads (``DPP_API_COMPUTE_IN=threads``) hold the GIL for long
    # stretches; with the default 5 ms switch interval a cached answer waited behind them for
    # hundreds of ms.
    sys.setswitchinterval(GIL_SWITCH_SECONDS)


def app_factory() -> FastAPI:
    """Entry point for ``uvicorn --factory ingest_service.app:app_factory``."""
    return create_app(Settings())
