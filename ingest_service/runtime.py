"""Running the platform: the API alone, API + worker (``dpp up``), or a throwaway API on a
free loopback port (the demo loader sends through the real endpoints)."""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
from collections.abc import Iterator

import uvicorn

from dpp_lib.settings import Settings
from dpp_lib.store.db import make_engine
from dpp_lib.store.migrate import is_up_to_date
from ingest_service.app import create_app
from ingest_service.worker import Worker

log = logging.getLogger(__name__)

# On stop, requests still waiting (a long uncached computation) get this long to finish;
# without a bound a stop waited for them all (minutes, seen in bench-api).
GRACEFUL_SHUTDOWN_SECONDS = 30


def _check_schema(settings: Settings) -> None:
    if not is_up_to_date(make_engine(settings.resolved_database_url())):
        raise SystemExit("the database schema is not up to date: run `dpp db upgrade` first")


def serve_api(settings: Settings, *, host: str, port: int, workers: int = 1) -> None:
    _check_schema(settings)
    if workers > 1:
        uvicorn.run(
            "ingest_service.app:app_factory",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            log_level="warning",
            access_log=False,
            timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
        )
    else:
        _run_one(settings, host, port)


def _run_one(settings: Settings, host: str, port: int) -> None:
    uvicorn.run(
        create_app(settings),
        host=host,
        port=port,
        log_level="info",
        access_log=False,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
    )


def run_platform(settings: Settings, *, host: str | None = None, port: int | None = None) -> None:
    """API in the foreground, worker in a background thread; Ctrl-C stops both."""
    _check_schema(settings)
    host, port = host or settings.host, port or settings.port
    stop = threading.Event()
    worker = Worker.from_settings(settings)
    thread = threading.Thread(
        target=worker.run_forever, args=(stop,), name="dpp-worker", daemon=True
    )
    thread.start()
    base = f"http://{host}:{port}"
    print(f"DPP is up on {settings.resolved_database_url().split('?')[0]}", flush=True)
    print(f"  API         {base}/api/v1/", flush=True)
    print(f"  webhooks    {base}/api/v1/webhooks/github  {base}/api/v1/webhooks/jira", flush=True)
    print(f"  API docs    {base}/docs", flush=True)
    print(f"  health      {base}/health", flush=True)
    try:
        _run_one(settings, host, port)
    finally:
        stop.set()
        thread.join(timeout=10)


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def running_api(settings: Settings, host: str = "127.0.0.1") -> Iterator[str]:
    """Start the API on a free loopback port in a thread; yields its base URL."""
    port = free_port(host)
    config = uvicorn.Config(
        create_app(settings), host=host, port=port, log_level="warning", access_log=False
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="dpp-api", daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the API did not start")
        time.sleep(0.05)
    try:
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
