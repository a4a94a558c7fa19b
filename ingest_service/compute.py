"""Where uncached answers are computed: in worker processes, so a computation that takes
seconds (or minutes, for every stream on millions of events) never holds the API process's
GIL while its event loop serves cached answers and other requests.

A route describes its answer as a ``ViewCall``: a module-level ``dpp_lib.views`` function
(pickled by reference), which of the connection, the config lookups and the organisation it
takes first, and its keyword arguments. ``Computer`` runs it in a process pool (or, with
``DPP_API_COMPUTE_PROCESSES=0``, in this process's threads) and returns the rendered answer.
Errors the platform raises on purpose come back as themselves; anything else as a 500.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

import orjson
import sqlalchemy as sa

from dpp_lib.errors import DppError, FieldProblem
from dpp_lib.ingest.lookups import OrgLookups
from dpp_lib.store.config_tables import config_version, load_lookups
from dpp_lib.store.db import make_engine
from dpp_lib.store.types import now_utc
from dpp_lib.views.common import load_org

log = logging.getLogger(__name__)

LOOKUPS_TTL_SECONDS = 5.0
NEEDS = ("conn", "lookups", "org")


class Moment(Enum):
    """A keyword argument's value taken when the computation starts (an Enum member keeps
    its identity through pickling)."""

    NOW = "now"


NOW = Moment.NOW


@dataclass(frozen=True)
class ViewCall:
    """``view(*needs, **kwargs)``; ``needs`` names the leading arguments, from
    ``conn`` (an open connection), ``lookups`` (the config snapshot) and ``org``."""

    view: Callable[..., Any]
    needs: tuple[str, ...]
    kwargs: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        unknown = [n for n in self.needs if n not in NEEDS]
        if unknown:
            raise ValueError(f"ViewCall needs {unknown}: not among {NEEDS}")


def view_call(view: Callable[..., Any], *needs: str, **kwargs: Any) -> ViewCall:
    return ViewCall(view, needs, kwargs)


@dataclass(frozen=True)
class Failure:
    """A ``DppError`` raised by a view, carried across the process boundary as data (its
    subclasses' constructors take other arguments than the message, so they do not pickle)."""

    status: int
    code: str
    message: str
    details: tuple[FieldProblem, ...]


class ComputeError(DppError):
    """A view's ``DppError``, raised again in the API process with its status and code."""

    def __init__(self, failure: Failure) -> None:
        super().__init__(failure.message, details=list(failure.details))
        self.code = failure.code
        self.http_status = failure.status


class _Context:
    """One computing process's (or thread pool's) engine and config snapshot."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        self._lookups: OrgLookups | None = None
        self._checked = -float("inf")
        self._lock = threading.Lock()

    def lookups(self) -> OrgLookups:
        with self._lock:
            if time.monotonic() - self._checked < LOOKUPS_TTL_SECONDS and self._lookups:
                return self._lookups
            with self.engine.connect() as conn:
                if self._lookups is None or self._lookups.version != config_version(conn):
                    self._lookups = load_lookups(conn)
            self._checked = time.monotonic()
            return self._lookups

    def render(self, call: ViewCall, meta: dict[str, Any]) -> bytes | Failure:
        try:
            lookups = self.lookups()  # its own connection, before ours begins
            with self.engine.connect() as conn:
                available = {"conn": conn, "lookups": lookups}
                if "org" in call.needs:
                    available["org"] = load_org(conn)
                kwargs = {k: now_utc() if v is NOW else v for k, v in call.kwargs.items()}
                data = call.view(*(available[n] for n in call.needs), **kwargs)
        except DppError as exc:
            return Failure(exc.http_status, exc.code, exc.message, tuple(exc.details))
        return render(data, {**meta, "computed_at": now_utc()})


def render(data: Any, meta: dict[str, Any]) -> bytes:
    """The envelope, left open: each response appends its request id and cache flag."""
    head = orjson.dumps({"status": "ok", "data": data}, option=orjson.OPT_NON_STR_KEYS)
    meta_bytes = orjson.dumps(meta, option=orjson.OPT_NON_STR_KEYS)
    return head[:-1] + b',"meta":' + meta_bytes[:-1]


# --- the worker process side -------------------------------------------------------------

_worker: _Context | None = None


def _start_worker(database_url: str) -> None:
    global _worker
    _worker = _Context(make_engine(database_url, pool_size=1))
    threading.Thread(target=_exit_with_parent, args=(os.getppid(),), daemon=True).start()


def _exit_with_parent(parent: int, every: float = 1.0) -> None:
    """End this computing process when the API process is gone: killed (SIGKILL, out of
    memory), it cannot shut its pool down, and a worker in the middle of an answer would
    otherwise live on holding gigabytes (seen after a benchmark's server was killed)."""
    while os.getppid() == parent:
        time.sleep(every)
    os._exit(1)


def _render_in_worker(call: ViewCall, meta: dict[str, Any]) -> bytes | Failure:
    assert _worker is not None, "worker process was not initialised"
    try:
        return _worker.render(call, meta)
    except Exception as exc:  # logged here, with the traceback the API process cannot see
        log.exception("computing %s failed", call.view.__qualname__)
        raise RuntimeError(f"{type(exc).__name__}: {exc}") from None


def _ready() -> int:
    return os.getpid()


# --- the API process side ----------------------------------------------------------------


class Computer:
    """Runs ``ViewCall``s in ``slots`` worker processes (or threads of this process), at
    most that many at once; the rest wait their turn in ``compute``."""

    def __init__(
        self, database_url: str, engine: sa.Engine, *, slots: int, processes: bool = True
    ) -> None:
        self.database_url = database_url
        self.slots = max(1, slots or (os.cpu_count() or 2))
        self._local = None if processes else _Context(engine)
        self._executor: Executor | None = None
        self._semaphore: asyncio.Semaphore | None = None
        self.restarts = 0

    @property
    def mode(self) -> str:
        return "threads" if self._local is not None else "processes"

    def _pool(self) -> Executor:
        if self._executor is None:
            if self._local is not None:
                self._executor = ThreadPoolExecutor(self.slots, thread_name_prefix="dpp-compute")
            else:
                # spawn: the API process has threads and an event loop; forking them is unsafe
                self._executor = ProcessPoolExecutor(
                    self.slots,
                    mp_context=multiprocessing.get_context("spawn"),
                    initializer=_start_worker,
                    initargs=(self.database_url,),
                )
        return self._executor

    def warm_up(self) -> None:
        """Start the worker processes now (each imports the platform: ~2 s) rather than in the
        first requests' time."""
        if self._local is None:
            pool = self._pool()
            for _ in range(self.slots):
                pool.submit(_ready)

    async def compute(self, call: ViewCall, meta: dict[str, Any]) -> bytes:
        if self._semaphore is None:
            self._semaphore = asyncio.Semaphore(self.slots)
        async with self._semaphore:
            loop = asyncio.get_running_loop()
            try:
                if self._local is not None:
                    result = await loop.run_in_executor(
                        self._pool(), self._local.render, call, meta
                    )
                else:
                    result = await loop.run_in_executor(self._pool(), _render_in_worker, call, meta)
            except BrokenProcessPool:
                # a worker died (killed, out of memory): start a new pool for the next request
                log.error("a computing process died; starting new ones")
                self.restarts += 1
                broken, self._executor = self._executor, None
                if broken is not None:
                    broken.shutdown(wait=False, cancel_futures=True)
                raise
        if isinstance(result, Failure):
            raise ComputeError(result)
        return result

    def close(self) -> None:
        """Stop computing: queued computations are cancelled and running ones ended (their
        requests are being dropped with the server), so shutting down never waits minutes
        for an all-streams answer nobody will receive."""
        executor, self._executor = self._executor, None
        if executor is None:
            return
        running = list(getattr(executor, "_processes", {}).values())  # processes only
        executor.shutdown(wait=False, cancel_futures=True)
        for process in running:
            if process.is_alive():
                process.terminate()
