"""The inbox after a run: wait for the worker to drain it, then read the latencies back."""

from __future__ import annotations

import time
from typing import Any

import psycopg

from bench.loadgen import pct


def wait_drained(dsn: str, expected: int, timeout: float) -> tuple[bool, float, dict[str, int]]:
    """Poll (every 50 ms) until every accepted row has left 'pending', or ``timeout``.

    Returns (drained, wall time of that observation or of the cut-off, counts per state).
    """
    deadline = time.monotonic() + timeout
    with psycopg.connect(dsn, autocommit=True) as conn:
        while True:
            row = conn.execute(
                "select count(*) filter (where state = 'pending'), count(*) from raw_events"
            ).fetchone()
            assert row is not None
            pending, total = int(row[0]), int(row[1])
            drained = pending == 0 and total >= expected
            if drained or time.monotonic() > deadline:
                at = time.time()
                states: dict[str, int] = dict(
                    conn.execute("select state, count(*) from raw_events group by state").fetchall()
                )
                return drained, at, {str(k): int(v) for k, v in states.items()}
            time.sleep(0.05)


def _pcts(values: list[tuple[float, bool]]) -> dict[str, Any]:
    """p50/p99/max of (seconds, censored) pairs; a censored value is a lower bound (the row
    was still pending at the cut-off), so a percentile that lands on one is "at least"."""
    values.sort()
    out: dict[str, Any] = {}
    for name, p in (("p50", 50.0), ("p99", 99.0), ("max", 100.0)):
        k = min(len(values) - 1, max(0, round(p / 100 * len(values) + 0.5) - 1))
        seconds, censored = values[k]
        # Any censored row below k could be larger in truth: then the percentile is a bound.
        bound = censored or any(c for _, c in values[:k])
        out[name] = seconds
        out[f"{name}_is_lower_bound"] = bound
    return out


def inbox_latency(
    dsn: str, drained: bool, cutoff: float, stopped: float, batch_size: int, since: float = 0.0
) -> dict[str, Any]:
    """receipt→stored per delivery from raw_events (those received at ``since`` or later,
    i.e. the measured send, not the warm-up).

    ``processed_at`` is written by the worker as the time its batch *started* (the claim),
    so ``processed_at − received_at`` (the definition the targets use) excludes the batch's
    own processing time. Batches run one after another, so a batch has committed by the
    next batch's claim: that gives an upper bound of the commit time ("stored, bound").
    Rows the worker had not processed when it was stopped count as ``stopped −
    received_at``, a lower bound (rows it processed after the cut-off keep their value).
    """
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            "select extract(epoch from received_at)::float8,"
            " extract(epoch from processed_at)::float8"
            " from raw_events where received_at >= to_timestamp(%s)"
            " order by processed_at nulls last, id",
            (since,),
        ).fetchall()
        problems = conn.execute(
            "select state, coalesce(last_error, ignored_reason), count(*) from raw_events"
            " where state in ('dead', 'ignored') or attempts > 0 group by 1, 2"
        ).fetchall()
    done = [(r, p) for r, p in rows if p is not None]
    pending = [r for r, p in rows if p is None]
    claims = sorted({p for _, p in done})
    next_claim = {
        c: (claims[i + 1] if i + 1 < len(claims) else cutoff) for i, c in enumerate(claims)
    }
    if not drained and claims:  # the last batch committed before the worker stopped
        next_claim[claims[-1]] = stopped
    size = dict.fromkeys(claims, 0)
    for _, p in done:
        size[p] += 1
    claimed = [(p - r, False) for r, p in done] + [(stopped - r, True) for r in pending]
    bound = [(next_claim[p] - r, False) for r, p in done] + [(stopped - r, True) for r in pending]
    full = [(size[c], next_claim[c] - c) for c in claims[:-1] if size[c] >= batch_size]
    sizes = sorted(size.values()) or [0]
    return {
        "rows": len(rows),
        "processed": len(done),
        "unprocessed_at_stop": len(pending),
        "drained": drained,
        "claimed": _pcts(claimed),
        "stored_bound": _pcts(bound),
        "batches": len(claims),
        "batch_size_p50": pct(sizes, 50),
        "batch_size_max": sizes[-1],
        "full_batches": len(full),
        "worker_rows_per_s_full_batches": (
            sum(n for n, _ in full) / sum(t for _, t in full) if full else None
        ),
        "first_claim": claims[0] if claims else None,
        "problems": [[str(a), str(b), int(c)] for a, b, c in problems],
    }
