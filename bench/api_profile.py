"""Where an uncached answer's time goes: one request through the real app, in-process, under
a sampling profiler.

The app (``ingest_service.app.create_app``, cache disabled) runs under Starlette's
``TestClient``, computing in its threads. ``ingest_service.compute._Context.render`` —
everything a cache miss does after authentication and queueing: the config lookups, the
organisation, the view function and the JSON rendering — is wrapped: while it runs, a thread
takes the computing thread's Python stack every ``INTERVAL`` seconds
(``sys._current_frames``), so the request runs at almost its normal speed (a deterministic
profiler such as cProfile doubled the time of
these pandas-heavy requests and distorted the split). Each sample goes to one group:

- *scoping*: ``Scope.apply`` (``dpp_lib/metrics/common.py``) anywhere in the stack — the
  frames filtered to a stream's rows;
- otherwise the outermost of these in the stack: *reading frames* (``dpp_lib/store/read.py``,
  ``dpp_lib/metrics/frames.py``, ``dpp_lib/projections/``; the samples with SQLAlchemy or
  psycopg below them — the statement, Postgres and fetching rows — counted apart as *of
  which SQL*), *metric maths* (the rest of ``dpp_lib/metrics/``), *config + organisation*
  (``ingest_service/state.py``, ``dpp_lib/store/config_tables.py``, ``load_org``), *other
  SQL* (SQLAlchemy or psycopg called from anywhere else: the connection checkout, names,
  PR ids …);
- *serialisation*: ``orjson.dumps`` in ``compute.render``;
- *view code*: the rest (the views' own pandas work, shaping the answer).

Samples are taken only when the sampling thread gets the GIL, so a long C call that holds
it is seen at its end, from its Python caller: the split is statistical, not exact.
"""

from __future__ import annotations

import linecache
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

INTERVAL = 0.005
READ_FILES = ("/dpp_lib/store/read.py", "/dpp_lib/metrics/frames.py", "/dpp_lib/projections/")
SQL_FILES = ("/sqlalchemy/", "/psycopg/", "/psycopg_pool/")
CONFIG_FILES = ("/ingest_service/state.py", "/dpp_lib/store/config_tables.py")
GROUPS = (
    "read",
    "read_sql",
    "metrics",
    "scope",
    "view_code",
    "sql_elsewhere",
    "config_org",
    "serialise",
)


def frame_group(path: str, name: str) -> str | None:
    if path.endswith("/dpp_lib/metrics/common.py") and name == "apply":
        return "scope"
    if any(part in path for part in READ_FILES):
        return "read"
    if any(part in path for part in SQL_FILES):
        return "sql"
    if "/dpp_lib/metrics/" in path:
        return "metrics"
    if any(path.endswith(f) for f in CONFIG_FILES) or (
        path.endswith("/dpp_lib/views/common.py") and name == "load_org"
    ):
        return "config"
    return None


def classify(stack: list[tuple[str, str, int]]) -> str:
    """The group of one sample; ``stack`` runs from the wrapped ``render`` inwards."""
    groups = [frame_group(path, name) for path, name, _ in stack]
    if "scope" in groups:
        return "scope"
    for i, g in enumerate(groups):
        if g == "read":
            return "read_sql" if "sql" in groups[i + 1 :] else "read"
        if g == "metrics":
            return "metrics"
        if g == "config":
            return "config_org"
        if g == "sql":
            return "sql_elsewhere"
    path, _, line = stack[-1]
    if path.endswith("/ingest_service/compute.py") and "orjson.dumps" in linecache.getline(
        path, line
    ):
        return "serialise"
    return "view_code"


class Sampler:
    """Samples one thread's stack below a given function until stopped."""

    def __init__(self, thread_id: int, root: Callable[..., Any]) -> None:
        self.thread_id, self.root_code = thread_id, root.__code__
        self.counts = dict.fromkeys(GROUPS, 0)
        self.functions: dict[str, int] = {}
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-sampler", daemon=True)

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(INTERVAL):
            frame = sys._current_frames().get(self.thread_id)
            if frame is not None:
                self._record(frame)

    def _record(self, frame: FrameType | None) -> None:
        stack: list[tuple[str, str, int]] = []
        while frame is not None:
            code = frame.f_code
            stack.append((code.co_filename.replace("\\", "/"), code.co_name, frame.f_lineno))
            if code is self.root_code:
                break
            frame = frame.f_back
        if frame is None:  # not inside the computation (yet)
            return
        stack.reverse()  # from ``render`` inwards
        self.samples += 1
        self.counts[classify(stack)] += 1
        seen = set()
        for path, name, _ in stack:
            if "/dpp_lib/" in path:
                key = f"dpp_lib/{path.split('/dpp_lib/', 1)[1]} {name}"
                if key not in seen:
                    seen.add(key)
                    self.functions[key] = self.functions.get(key, 0) + 1


@contextmanager
def wrapped_compute() -> Iterator[dict[str, Any]]:
    """Patch ``compute._Context.render`` (a computation in the API's threads): each call is
    timed and sampled; the dict receives the last call's ``wall_s``, ``bytes`` and
    ``sampler``."""
    from ingest_service.compute import _Context

    original: Callable[..., Any] = _Context.render
    box: dict[str, Any] = {}

    def render(self: Any, *args: Any) -> Any:
        t0 = time.perf_counter()
        with Sampler(threading.get_ident(), original) as sampler:
            body = original(self, *args)
        size = len(body) if isinstance(body, bytes) else 0
        box.update(wall_s=time.perf_counter() - t0, bytes=size, sampler=sampler)
        return body

    _Context.render = render  # type: ignore[method-assign]
    try:
        yield box
    finally:
        _Context.render = original  # type: ignore[method-assign]


def profile_requests(
    settings: Any, token: str, targets: list[tuple[str, str]], warmup: list[str]
) -> list[dict[str, Any]]:
    """Send the ``warmup`` requests (the process' one-time costs), then each (row, target)
    once; the time of ``compute._Context.render`` and its split by group, in seconds. The
    app computes in its threads, where the sampler can see the computation."""
    from fastapi.testclient import TestClient

    from ingest_service.app import create_app

    out: list[dict[str, Any]] = []
    headers = {"Authorization": f"Bearer {token}"}
    threads = settings.model_copy(update={"api_compute_in": "threads"})
    with wrapped_compute() as box, TestClient(create_app(threads)) as client:
        for target in warmup:
            client.get(target, headers=headers)
        for row, target in targets:
            box.clear()
            answer = client.get(target, headers=headers)
            if answer.status_code != 200 or "sampler" not in box:
                out.append({"row": row, "target": target, "status": answer.status_code})
                continue
            sampler: Sampler = box["sampler"]
            wall, n = box["wall_s"], max(sampler.samples, 1)
            top = sorted(sampler.functions.items(), key=lambda kv: -kv[1])[:10]
            out.append(
                {
                    "row": row,
                    "target": target,
                    "status": 200,
                    "answer_bytes": box["bytes"],
                    "compute_s": round(wall, 3),
                    "samples": sampler.samples,
                    "split_s": {g: round(wall * c / n, 3) for g, c in sampler.counts.items()},
                    "top_functions": [
                        {"function": f, "inclusive_s": round(wall * c / n, 3)} for f, c in top
                    ],
                }
            )
    return out
