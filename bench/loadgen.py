"""The load process: a minimal HTTP/1.1 keep-alive client over ``asyncio.open_connection``.

Run as its own process (``python -m bench.loadgen SPEC.json``): it builds and signs every
request before the clock starts, then sends them over a fixed number of keep-alive
connections and prints one JSON line with the results. Each connection writes a request,
reads the status line and headers up to the blank line, then exactly Content-Length bytes.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench import procstat
from bench.payloads import Builder, Delivery

try:
    import uvloop
except ImportError:  # pragma: no cover - uvicorn[standard] brings it
    uvloop = None  # type: ignore[assignment]


def request_bytes(d: Delivery, host: str) -> bytes:
    head = [f"POST {d.path} HTTP/1.1", f"Host: {host}", f"Content-Length: {len(d.body)}"]
    head += [f"{k}: {v}" for k, v in d.headers]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + d.body


def health_bytes(host: str) -> bytes:
    return f"GET /health HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()


async def _connection(
    host: str,
    port: int,
    reqs: list[bytes],
    cursor: list[int],
    status: list[int],
    lat: list[float],
    pace: tuple[float, float] | None,
) -> None:
    reader, writer = await asyncio.open_connection(host, port, limit=1 << 20)
    clock = time.perf_counter
    try:
        while True:
            i = cursor[0]
            if i >= len(reqs):
                return
            cursor[0] = i + 1
            t0 = clock()
            if pace is not None:  # request i is due at start + i / rate
                due = pace[0] + i / pace[1]
                if due > t0:
                    await asyncio.sleep(due - t0)
                # Latency counts from when the request was due, so a server (or client) that
                # falls behind the schedule shows it (no coordinated omission).
                t0 = due
            writer.write(reqs[i])
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            lower = head.lower()
            at = lower.find(b"\r\ncontent-length:")
            if at >= 0:
                end = lower.index(b"\r\n", at + 2)
                length = int(lower[at + 17 : end])
            if length:
                await reader.readexactly(length)
            lat[i] = clock() - t0
            status[i] = int(head[9:12])
    finally:
        writer.close()


async def blast(
    host: str, port: int, reqs: list[bytes], concurrency: int, rate: float | None = None
) -> dict[str, Any]:
    """Send every request over ``concurrency`` keep-alive connections, as fast as they answer
    or, with ``rate``, paced at that many requests per second; statuses + latencies."""
    status = [0] * len(reqs)
    lat = [0.0] * len(reqs)
    cursor = [0]
    t_wall = time.time()
    t0 = time.perf_counter()
    pace = (t0, rate) if rate else None
    await asyncio.gather(
        *(_connection(host, port, reqs, cursor, status, lat, pace) for _ in range(concurrency))
    )
    elapsed = time.perf_counter() - t0
    return {
        "status": status,
        "latency": lat,
        "elapsed": elapsed,
        "started": t_wall,
        "finished": t_wall + elapsed,
    }


def summarise(res: dict[str, Any], kinds: list[str] | None = None) -> dict[str, Any]:
    lat = sorted(res["latency"])
    status = res["status"]
    n = len(status)
    ok = sum(1 for s in status if s == 202 or s == 200)
    by_status: dict[str, int] = {}
    for s in status:
        by_status[str(s)] = by_status.get(str(s), 0) + 1
    out = {
        "requests": n,
        "ok": ok,
        "non_ok": n - ok,
        "by_status": by_status,
        "elapsed_s": res["elapsed"],
        "rate_per_s": ok / res["elapsed"],
        "p50_ms": pct(lat, 50) * 1000,
        "p90_ms": pct(lat, 90) * 1000,
        "p99_ms": pct(lat, 99) * 1000,
        "max_ms": lat[-1] * 1000,
        "started": res["started"],
        "finished": res["finished"],
    }
    if kinds is not None:
        per: dict[str, list[float]] = {}
        for k, t in zip(kinds, res["latency"], strict=True):
            per.setdefault(k, []).append(t)
        out["by_kind"] = {
            k: {
                "n": len(v),
                "p50_ms": pct(sorted(v), 50) * 1000,
                "p99_ms": pct(sorted(v), 99) * 1000,
            }
            for k, v in sorted(per.items())
        }
    return out


def pct(sorted_values: Sequence[float], p: float) -> float:
    if not sorted_values:
        return 0.0
    k = min(len(sorted_values) - 1, max(0, round(p / 100 * len(sorted_values) + 0.5) - 1))
    return sorted_values[k]


def pg_sessions(dsn: str | None) -> int | None:
    """Connections ever opened to the benchmark database (pg_stat_database.sessions)."""
    if not dsn:
        return None
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("select pg_stat_clear_snapshot()")
        row = conn.execute(
            "select sessions from pg_stat_database where datname = current_database()"
        ).fetchone()
    return int(row[0]) if row else None  # (± the probes' own two connections)


def main(spec_path: str) -> None:
    spec = json.loads(Path(spec_path).read_text())
    host, port, conc = spec["host"], spec["port"], spec["concurrency"]
    hostport = f"{host}:{port}"
    t_build = time.perf_counter()
    builder = Builder(Path(spec["fixtures"]), spec["secrets"], spec["api_key"], seed=spec["seed"])
    deliveries = builder.mix(spec["requests"])
    reqs = [request_bytes(d, hostport) for d in deliveries]
    kinds = [d.kind for d in deliveries]
    build_s = time.perf_counter() - t_build
    body_bytes = sum(len(d.body) for d in deliveries)
    del deliveries
    if uvloop is not None:
        uvloop.install()
    out: dict[str, Any] = {
        "build_s": build_s,
        "body_bytes": body_bytes,
        "request_bytes": sum(map(len, reqs)),
        "mix": {k: kinds.count(k) for k in sorted(set(kinds))},
    }
    if spec.get("health_requests"):
        warm = [health_bytes(hostport)] * spec["health_requests"]
        out["health"] = summarise(asyncio.run(blast(host, port, warm, conc)))
    if spec.get("warmup_requests"):
        # Same kinds of deliveries, other ids, sent the same way before the clock starts:
        # the API's pool, prepared statements and caches are warm when measuring begins.
        warm_builder = Builder(
            Path(spec["fixtures"]), spec["secrets"], spec["api_key"], seed=spec["seed"] + 1000
        )
        warm = [request_bytes(d, hostport) for d in warm_builder.mix(spec["warmup_requests"])]
        out["warmup"] = summarise(asyncio.run(blast(host, port, warm, conc, spec.get("rate"))))
    if spec.get("send", True):
        groups = {**spec.get("cpu_groups", {}), "client": os.getpid()}
        sessions = pg_sessions(spec.get("dsn"))
        before = procstat.snapshot(groups)
        res = asyncio.run(blast(host, port, reqs, conc, spec.get("rate")))
        after = procstat.snapshot(groups)
        out["send"] = summarise(res, kinds)
        out["send"]["cores_used"] = procstat.delta(before, after, res["elapsed"])
        later = pg_sessions(spec.get("dsn"))
        if sessions is not None and later is not None:
            out["send"]["new_pg_sessions"] = later - sessions
    sys.stdout.write(json.dumps(out) + "\n")


if __name__ == "__main__":
    main(sys.argv[1])
