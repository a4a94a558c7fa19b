"""The raw-insert ceiling: autocommit single-row INSERTs into ``raw_events`` through psycopg.

Nothing else runs while it is measured. One connection is the reference of the target
("accepted/s ≥ half the single-row INSERT ceiling"); N connections (threads, each with its
own connection) show what the server can take in parallel.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import orjson
import psycopg
from psycopg.types.json import Jsonb

INSERT = (
    "insert into raw_events (source, delivery_id, event_kind, headers, body, body_sha256,"
    " received_at, state, attempts, next_attempt_at) values"
    " (%s, %s, %s, %s, %s, %s, now(), 'pending', 0, now())"
)


def _loop(
    dsn: str,
    bodies: list[bytes],
    seconds: float,
    counts: list[int],
    slot: int,
    barrier: threading.Barrier,
) -> None:
    headers = Jsonb(
        {
            "content-type": "application/json",
            "x-github-event": "pull_request",
            "x-github-delivery": str(uuid.uuid4()),
        }
    )
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("select 1")
        barrier.wait()
        deadline = time.perf_counter() + seconds
        n, tag = 0, uuid.uuid4().hex[:12]
        while time.perf_counter() < deadline:
            conn.execute(
                INSERT,
                (
                    "github",
                    f"ceiling-{tag}-{n}",
                    "pull_request",
                    headers,
                    bodies[n % len(bodies)],
                    "0" * 64,
                ),
                prepare=True,
            )
            n += 1
    counts[slot] = n


def insert_rate(dsn: str, bodies: list[bytes], connections: int, seconds: float) -> float:
    """Rows/s of autocommit single-row INSERTs over ``connections`` connections."""
    counts = [0] * connections
    barrier = threading.Barrier(connections + 1)
    threads = [
        threading.Thread(target=_loop, args=(dsn, bodies, seconds, counts, i, barrier))
        for i in range(connections)
    ]
    for t in threads:
        t.start()
    barrier.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.join()
    return sum(counts) / (time.perf_counter() - t0)


def two_kb_body(fixtures: Path) -> bytes:
    """A compact JSON object of about 2 KB cut from the Jira status-change fixture."""
    data = json.loads(
        (fixtures / "jira-webhooks" / "cloud-status-todo-to-inprogress.json").read_text()
    )
    out: dict[str, Any] = {
        "webhookEvent": data["webhookEvent"],
        "timestamp": data["timestamp"],
        "changelog": data["changelog"],
        "user": data["user"],
    }
    for key, value in data["issue"]["fields"].items():
        if len(orjson.dumps(out)) >= 2000:
            break
        out[key] = value
    return orjson.dumps(out)
