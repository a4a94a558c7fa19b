"""The read-API benchmark's load client: GET requests over keep-alive HTTP/1.1 connections
on ``asyncio.open_connection`` (as ``bench/loadgen.py`` does for POSTs), keeping each
response's status, ``X-Cache`` header and latency.

``run`` drives ``clients`` connections over a list of requests: each connection takes the
next request from a shared cursor, sends it, reads the whole answer and records it. With
``cycle`` the list is repeated until ``duration`` has passed; without it each request is sent
once, and no new request starts after ``duration``. Requests still in flight ``grace``
seconds after that are abandoned and recorded as *censored*: their latency is a lower bound
(the time they had waited so far), never dropped.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass
class Sample:
    index: int  # into the request list
    status: int  # 0: no answer (connection error or abandoned)
    cache: str  # the X-Cache header: HIT, MISS or "" when absent
    latency: float  # seconds, from writing the request to reading the whole answer
    started: float  # perf_counter at sending
    censored: bool = False  # abandoned at the end: latency is a lower bound
    error: bytes = b""  # the start of a non-200 answer's body


def request_bytes(target: str, host: str, token: str) -> bytes:
    return (
        f"GET {target} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n"
        "Accept: application/json\r\n\r\n"
    ).encode()


async def _read_answer(reader: asyncio.StreamReader) -> tuple[int, str, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    cache, length, chunked = "", -1, False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"x-cache":
            cache = value.strip().decode()
        elif name == b"transfer-encoding" and b"chunked" in value.lower():
            chunked = True
    if chunked:
        parts = []
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            data = await reader.readexactly(size + 2)
            if size == 0:
                break
            parts.append(data[:-2])
        body = b"".join(parts)
    else:
        body = await reader.readexactly(length) if length > 0 else b""
    return status, cache, body


class _Run:
    def __init__(
        self,
        host: str,
        port: int,
        reqs: Sequence[bytes],
        *,
        cycle: bool,
        deadline: float,
    ) -> None:
        self.host, self.port, self.reqs = host, port, reqs
        self.cycle, self.deadline = cycle, deadline
        self.cursor = 0
        self.samples: list[Sample] = []
        self.in_flight: dict[int, tuple[int, float]] = {}  # connection → (index, started)

    def next_index(self) -> int | None:
        if time.perf_counter() >= self.deadline:
            return None
        i = self.cursor
        if not self.cycle and i >= len(self.reqs):
            return None
        self.cursor = i + 1
        return i

    async def connection(self, cid: int) -> None:
        reader: asyncio.StreamReader | None = None
        writer: asyncio.StreamWriter | None = None
        try:
            while True:
                i = self.next_index()
                if i is None:
                    return
                index = i % len(self.reqs)
                if writer is None:
                    reader, writer = await asyncio.open_connection(
                        self.host, self.port, limit=1 << 24
                    )
                assert reader is not None
                t0 = time.perf_counter()
                self.in_flight[cid] = (index, t0)
                try:
                    writer.write(self.reqs[index])
                    status, cache, body = await _read_answer(reader)
                except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
                    self.samples.append(
                        Sample(index, 0, "", time.perf_counter() - t0, t0, error=repr(exc).encode())
                    )
                    writer.close()
                    reader = writer = None
                    continue
                finally:
                    self.in_flight.pop(cid, None)
                self.samples.append(
                    Sample(
                        index,
                        status,
                        cache,
                        time.perf_counter() - t0,
                        t0,
                        error=b"" if status == 200 else body[:400],
                    )
                )
        finally:
            if writer is not None:
                writer.close()


async def run(
    host: str,
    port: int,
    reqs: Sequence[bytes],
    clients: int,
    *,
    cycle: bool = False,
    duration: float = float("inf"),
    grace: float = 60.0,
) -> tuple[list[Sample], float]:
    """Send the requests over ``clients`` connections; the samples and the elapsed time
    (from the start to the last answer, or to the end of ``grace``)."""
    start = time.perf_counter()
    state = _Run(host, port, reqs, cycle=cycle, deadline=start + duration)
    tasks = [asyncio.create_task(state.connection(c)) for c in range(clients)]
    remaining = max(0.0, start + duration - time.perf_counter()) + grace
    done, pending = await asyncio.wait(tasks, timeout=remaining if duration < 1e12 else None)
    now = time.perf_counter()
    for index, t0 in state.in_flight.values():  # abandoned: censored at the time waited
        state.samples.append(Sample(index, 0, "", now - t0, t0, censored=True))
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    for task in done:
        task.result()  # an unexpected error in the client itself is not hidden
    return state.samples, (now if pending else time.perf_counter()) - start
