"""The response cache's lifetimes: a "now" answer is renewed in the background from half its
TTL and served stale (while renewing) for at most one more TTL; a past view is kept until its
data changes; and the computing processes survive one of them dying."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

import pytest

from dpp_lib.metrics.common import Scope
from dpp_lib.store.db import make_engine
from dpp_lib.store.migrate import upgrade
from dpp_lib.views import streams
from ingest_service.cache import AS_OF_TTL_SECONDS, POLICIES, ResponseCache
from ingest_service.compute import ComputeError, Computer, _ready, view_call

KEY = ResponseCache.key("metrics/realtime", [("stream", "a")], "d=*;t=*")
TTL = POLICIES["metrics/realtime"].ttl_seconds
VERSIONS = {"work_item_events": 3, "config": 1}


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def cache(clock: Clock) -> ResponseCache:
    return ResponseCache(max_bytes=1_000_000, clock=clock)


def test_a_now_answer_is_renewed_once_before_it_expires(cache: ResponseCache, clock: Clock) -> None:
    cache.put(KEY, b"v1", VERSIONS, renew="how")
    clock.now += TTL * 0.4
    found = cache.get(KEY, VERSIONS)
    assert found is not None and found.renew is None and not found.stale
    clock.now += TTL * 0.2  # past half its TTL: the first request starts the renewal
    first = cache.get(KEY, VERSIONS)
    assert first is not None and first.renew == "how" and not first.stale
    second = cache.get(KEY, VERSIONS)
    assert second is not None and second.renew is None  # one renewal at a time
    clock.now += TTL * 0.6  # expired, still renewing: served stale
    stale = cache.get(KEY, VERSIONS)
    assert stale is not None and stale.stale and stale.body == b"v1"
    cache.put(KEY, b"v2", VERSIONS, renew="how")  # the renewal lands
    fresh = cache.get(KEY, VERSIONS)
    assert fresh is not None and fresh.body == b"v2" and not fresh.stale
    snapshot = cache.snapshot()
    assert snapshot["renewals"] == 1 and snapshot["stale_served"] == 1


def test_stale_answers_end_one_ttl_after_expiry(cache: ResponseCache, clock: Clock) -> None:
    cache.put(KEY, b"v1", VERSIONS, renew="how")
    clock.now += TTL * 1.5  # nobody asked for a while: the first request renews, gets stale
    found = cache.get(KEY, VERSIONS)
    assert found is not None and found.stale and found.renew == "how"
    clock.now += TTL * 0.6  # two TTLs old: not served any more, renewing or not
    assert cache.get(KEY, VERSIONS) is None


def test_a_failed_renewal_leaves_the_next_request_to_compute(
    cache: ResponseCache, clock: Clock
) -> None:
    cache.put(KEY, b"v1", VERSIONS, renew="how")
    clock.now += TTL * 0.9
    assert cache.get(KEY, VERSIONS).renew == "how"  # type: ignore[union-attr]
    cache.renewal_failed(KEY)
    clock.now += TTL * 0.2
    assert cache.get(KEY, VERSIONS) is None  # expired, and no renewal will come


def test_moved_data_versions_end_any_answer(cache: ResponseCache, clock: Clock) -> None:
    cache.put(KEY, b"v1", VERSIONS, renew="how")
    cache.put(KEY + "x", b"past", VERSIONS, fixed=True)
    moved = {**VERSIONS, "work_item_events": 4}
    assert cache.get(KEY, moved) is None
    assert cache.get(KEY + "x", moved) is None
    assert cache.snapshot()["stale_misses"] == 2


def test_a_past_view_is_kept_until_its_data_changes(cache: ResponseCache, clock: Clock) -> None:
    cache.put(KEY, b"past", VERSIONS, fixed=True, renew="ignored")
    clock.now += TTL * 100
    found = cache.get(KEY, VERSIONS)
    assert found is not None and found.body == b"past" and found.renew is None
    clock.now += AS_OF_TTL_SECONDS
    assert cache.get(KEY, VERSIONS) is None


def test_computing_processes_come_back_after_one_dies(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'empty.sqlite3'}"
    engine = make_engine(url)
    upgrade(engine)
    computer = Computer(url, engine, slots=1)
    listing = view_call(streams.tech_streams, "org", scope=Scope())

    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        assert (await computer.compute(listing, {"n": 1})).startswith(b'{"status":"ok","data":[]')
        pid = await loop.run_in_executor(computer._pool(), _ready)
        assert pid != os.getpid()
        os.kill(pid, signal.SIGKILL)
        with pytest.raises(BrokenProcessPool):
            await computer.compute(listing, {})
        assert computer.restarts == 1
        # a new pool answers the next request, and a view's own error keeps its status
        assert b'"meta":{"n":2' in await computer.compute(listing, {"n": 2})
        bad = view_call(streams.sprint_list, "conn", delivery_stream_id=uuid.uuid4(), state="x")
        with pytest.raises(ComputeError) as refused:
            await computer.compute(bad, {})
        assert refused.value.http_status == 400 and refused.value.details[0].field == "state"

    try:
        asyncio.run(scenario())
    finally:
        computer.close()
        engine.dispose()


def test_computing_processes_end_with_the_server(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'empty.sqlite3'}"
    engine = make_engine(url)
    upgrade(engine)
    computer = Computer(url, engine, slots=2)

    async def pids() -> set[int]:
        loop = asyncio.get_running_loop()
        pool = computer._pool()
        return {await loop.run_in_executor(pool, _ready) for _ in range(4)}

    started = asyncio.run(pids())
    assert started and os.getpid() not in started
    computer.close()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(_alive(p) for p in started):
        time.sleep(0.1)
    assert not any(_alive(p) for p in started)
    engine.dispose()


def test_a_computing_process_ends_when_its_parent_is_killed(tmp_path: Path) -> None:
    """The API process killed outright (no shutdown): its computing processes end too."""
    script = textwrap.dedent(
        """
        import asyncio, sys
        from dpp_lib.store.db import make_engine
        from ingest_service.compute import Computer, _ready
        url = sys.argv[1]
        computer = Computer(url, make_engine(url), slots=1)
        async def main():
            loop = asyncio.get_running_loop()
            print(await loop.run_in_executor(computer._pool(), _ready), flush=True)
            await asyncio.sleep(600)
        asyncio.run(main())
        """
    )
    url = f"sqlite:///{tmp_path / 'empty.sqlite3'}"
    upgrade(make_engine(url))
    parent = subprocess.Popen(
        [sys.executable, "-c", script, url], stdout=subprocess.PIPE, text=True
    )
    try:
        assert parent.stdout is not None
        child = int(parent.stdout.readline())
        assert _alive(child)
    finally:
        parent.kill()
        parent.wait()
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and _alive(child):
        time.sleep(0.2)
    assert not _alive(child)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split()[2] != "Z"  # a zombie has ended
    except FileNotFoundError:
        return False
