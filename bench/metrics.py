"""Metric engine benchmark (``make bench-metrics``): a 1,000-engineer organisation's two
years of events in Postgres, then the time of ``dpp rebuild``, ``dpp metrics materialise``,
every registered metric for one stream and for all streams, 10,000 Monte Carlo runs, and —
as a floor in the same run — a DuckDB scan + group-by of the same event tables.

``--write-docs`` rewrites the bench-metrics section of ``docs/performance.md``; a JSON
summary is printed either way and kept in ``bench/results/metrics-*.json``.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402

DOCS = ROOT / "docs" / "performance.md"
START, END = "<!-- bench-metrics:results:start -->", "<!-- bench-metrics:results:end -->"
RESULTS = ROOT / "bench" / "results"
DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/dpp_bench_metrics"
TARGET_REBUILD_S = 120.0
TARGET_MONTE_CARLO_S = 0.1
TARGET_METRIC_S = 0.2
EVENT_TABLES = (
    "work_item_events",
    "work_item_field_changes",
    "pr_events",
    "cicd_events",
    "incident_events",
    "defect_events",
    "pulse_responses",
)


def log(msg: str) -> None:
    print(f"[bench-metrics {datetime.now().strftime('%H:%M:%S')}] {msg}", file=sys.stderr)


def timed(fn: Callable[[], Any], repeat: int = 1) -> tuple[float, Any]:
    """Best of ``repeat`` wall-clock runs (seconds) and the last result."""
    best, result = float("inf"), None
    for _ in range(repeat):
        t = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - t)
    return best, result


def generate(args: argparse.Namespace) -> dict[str, Any]:
    cmd = [
        sys.executable, str(ROOT / "bench" / "metrics_data.py"), "--url", args.url,
        "--engineers", str(args.engineers), "--days", str(args.days), "--seed", str(args.seed),
        "--until", args.until,
    ]  # fmt: skip
    log("generating the organisation's history: " + " ".join(cmd[1:]))
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, check=False, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"generator failed: {done.stderr[-3000:]}")
    summary: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return summary


def counts(url: str) -> dict[str, int]:
    with psycopg.connect(url) as conn:
        return {
            t: int(conn.execute(f"select count(*) from {t}").fetchone()[0])  # type: ignore[index]
            for t in (*EVENT_TABLES, "work_item_cycles", "pr_cycles", "deployment_records")
        }


def engine_runs(args: argparse.Namespace) -> dict[str, Any]:
    os.environ["DPP_DATABASE_URL"] = args.url
    from dpp_lib.jobs.materialise import materialise
    from dpp_lib.jobs.rebuild import rebuild
    from dpp_lib.settings import Settings
    from dpp_lib.store.db import make_engine

    settings = Settings(_env_file=None, database_url=args.url)
    engine = make_engine(args.url)
    as_of = datetime.fromisoformat(args.until + "T18:00:00+00:00")
    out: dict[str, Any] = {}
    steps: dict[str, float] = {}

    def progress(step: str, done: int, total: int) -> None:
        if done == 0:
            steps[step] = time.perf_counter()
        elif done >= total:
            steps[step] = time.perf_counter() - steps[step]

    if args.metrics_only:  # the database is already rebuilt and materialised
        out["metrics"] = metric_timings(engine, as_of)
        out["monte_carlo_10k_s"] = monte_carlo(engine, as_of)
        return out
    log("dpp rebuild")
    out["rebuild_s"], report = timed(lambda: rebuild(engine, settings, progress=progress))
    out["rebuild_steps_s"] = {k: round(v, 2) for k, v in steps.items()}
    out["rebuild_counts"] = report.counts
    log(f"rebuild {out['rebuild_s']:.1f} s {out['rebuild_steps_s']}")
    log("dpp metrics materialise")
    out["materialise_s"], mat = timed(lambda: materialise(engine, as_of=as_of))
    out["materialise_rows"] = mat.rows
    log(f"materialise {out['materialise_s']:.1f} s")
    out["metrics"] = metric_timings(engine, as_of)
    out["monte_carlo_10k_s"] = monte_carlo(engine, as_of)
    return out


def metric_timings(engine: Any, as_of: datetime) -> dict[str, dict[str, float]]:
    """Per metric, the computation for one stream and for all (the frames are read once per
    scope, timed apart)."""
    from dpp_lib.jobs.metric_calls import metric_calls
    from dpp_lib.metrics.common import Scope
    from dpp_lib.store.config_tables import load_lookups

    timings: dict[str, dict[str, float]] = {}
    with engine.connect() as conn:
        lk = load_lookups(conn)
        delivery = Scope(delivery_stream_id=sorted(set(lk.delivery_by_key.values()))[0])
        tech = Scope(tech_stream_id=lk.tech_streams[0].stream_id)
        for label, (d, tch) in (
            ("one_stream_s", (delivery, tech)),
            ("all_streams_s", (Scope(), Scope())),
        ):
            start = time.perf_counter()
            calls = metric_calls(conn, as_of=as_of, delivery=d, tech=tch)
            t = time.perf_counter() - start
            timings[f"(read, {label[:-2].replace('_', ' ')})"] = {"read_s": round(t, 3)}
            for name, call in calls.items():
                compute, _ = timed(call, repeat=3)
                timings.setdefault(name, {})[label] = round(compute, 4)
                log(f"{name} ({label[:-2]}): {compute * 1000:.1f} ms")
    return timings


def monte_carlo(engine: Any, as_of: datetime) -> float:
    from dpp_lib.metrics.forecast import forecast_when
    from dpp_lib.store import read
    from dpp_lib.store.config_tables import load_lookups

    with engine.connect() as conn:
        lookups = load_lookups(conn)
        cycles = read.cycles(conn, as_of=as_of)
        items = read.items(conn, lookups, as_of=as_of)
    t, result = timed(
        lambda: forecast_when(cycles, items, as_of=as_of, calendar=lookups.calendar(), runs=10_000),
        repeat=5,
    )
    log(f"10,000 Monte Carlo runs: {t * 1000:.1f} ms ({result.method})")
    return round(t, 4)


def duckdb_floor(url: str) -> dict[str, Any]:
    """Each event table copied out of Postgres once, then scanned and grouped in DuckDB."""
    import duckdb  # type: ignore[import-not-found,unused-ignore]

    con = duckdb.connect()
    out: dict[str, Any] = {"load_s": 0.0, "group_by_s": {}}
    with psycopg.connect(url) as conn:
        for table in EVENT_TABLES:
            t = time.perf_counter()
            buf = io.BytesIO()
            with conn.cursor().copy(
                f"COPY (SELECT * FROM {table}) TO STDOUT WITH (FORMAT csv, HEADER)"
            ) as copy:
                for chunk in copy:
                    buf.write(chunk)
            buf.seek(0)
            path = ROOT / "bench" / "results" / f".floor-{table}.csv"
            path.parent.mkdir(exist_ok=True)
            path.write_bytes(buf.getvalue())
            con.execute(f"CREATE TABLE {table} AS SELECT * FROM read_csv_auto('{path}')")
            path.unlink()
            out["load_s"] += time.perf_counter() - t
    for table, key in (
        ("work_item_events", "ticket_id"),
        ("pr_events", "repo_id, pr_number"),
        ("cicd_events", "pipeline_id, pipeline_run_id"),
    ):
        sql = (
            f"SELECT {key}, count(*), epoch(min(event_timestamp)), epoch(max(event_timestamp)) "
            f"FROM {table} GROUP BY {key}"
        )
        best = float("inf")
        for _ in range(3):
            start = time.perf_counter()
            con.execute(sql).fetchall()
            best = min(best, time.perf_counter() - start)
        out["group_by_s"][table] = round(best, 4)
    out["load_s"] = round(out["load_s"], 2)
    log(f"DuckDB floor: {out['group_by_s']}")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=os.environ.get("DPP_BENCH_METRICS_URL", DEFAULT_URL))
    parser.add_argument("--engineers", type=int, default=1000)
    parser.add_argument("--days", type=int, default=730)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--until", default="2026-11-16")
    parser.add_argument("--reuse", action="store_true", help="keep the generated database")
    parser.add_argument("--write-docs", action="store_true")
    parser.add_argument(
        "--metrics-only", action="store_true", help="with --reuse: time the metrics only"
    )
    args = parser.parse_args(argv)
    import warnings

    warnings.filterwarnings("ignore", message=".*starlette.testclient.*")
    result: dict[str, Any] = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": {"nproc": os.cpu_count(), "python": platform.python_version()},
        "size": {"engineers": args.engineers, "days": args.days},
    }
    result["generated"] = None if args.reuse else generate(args)
    result["events"] = counts(args.url)
    result.update(engine_runs(args))
    RESULTS.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    saved = RESULTS / f"metrics-{stamp}.json"
    saved.write_text(json.dumps(result, indent=1, default=str))  # kept if the floor fails
    result["duckdb_floor"] = duckdb_floor(args.url)
    saved.write_text(json.dumps(result, indent=1, default=str))
    if args.write_docs:
        write_docs(result)
    print(json.dumps(result, indent=1, default=str))
    return 0


def met(ok: bool) -> str:
    return "met" if ok else "**missed**"


def render(r: dict[str, Any]) -> str:
    total_events = sum(r["events"][t] for t in EVENT_TABLES)
    one = {k: v.get("one_stream_s") for k, v in r["metrics"].items() if "one_stream_s" in v}
    slowest = max(one.items(), key=lambda kv: kv[1]) if one else ("-", 0.0)
    lines = [
        START,
        f"## Metric engine — {r['date']}",
        "",
        f"{r['size']['engineers']:,} engineers, {r['size']['days']} days: "
        f"{total_events:,} events ("
        + ", ".join(f"{t} {r['events'][t]:,}" for t in EVENT_TABLES)
        + f"). Machine: {r['machine']['nproc']} CPUs, Python {r['machine']['python']}, "
        "Postgres on the same machine.",
        "",
        "| Target | Measured | Target | Met |",
        "|---|---:|---:|:---:|",
        f"| `dpp rebuild` | {r['rebuild_s']:.1f} s | < {TARGET_REBUILD_S:.0f} s | "
        f"{met(r['rebuild_s'] < TARGET_REBUILD_S)} |",
        f"| 10,000 Monte Carlo runs | {r['monte_carlo_10k_s'] * 1000:.1f} ms | < 100 ms | "
        f"{met(r['monte_carlo_10k_s'] < TARGET_MONTE_CARLO_S)} |",
        f"| Slowest metric computation, one stream ({slowest[0]}) | {slowest[1] * 1000:.0f} ms | "
        f"< 200 ms | {met(slowest[1] < TARGET_METRIC_S)} |",
        "",
        f"`dpp metrics materialise`: {r['materialise_s']:.1f} s "
        f"({', '.join(f'{k} {v}' for k, v in r['materialise_rows'].items())}). Rebuild steps: "
        + ", ".join(f"{k} {v} s" for k, v in r["rebuild_steps_s"].items())
        + ".",
        "",
        "| Metric | one stream (ms) | all streams (ms) |",
        "|---|---:|---:|",
    ]
    for name, v in r["metrics"].items():
        if "read_s" in v:
            lines.append(f"| reading the frames {name} | {v['read_s'] * 1000:,.0f} | |")
            continue
        one_ms, all_ms = v.get("one_stream_s", 0) * 1000, v.get("all_streams_s", 0) * 1000
        lines.append(f"| {name} | {one_ms:.1f} | {all_ms:.1f} |")
    floor = r["duckdb_floor"]
    lines += [
        "",
        "Floor — DuckDB scan + group-by of the same tables (after copying them out of Postgres in "
        f"{floor['load_s']:.1f} s): "
        + ", ".join(f"{t} {s * 1000:.0f} ms" for t, s in floor["group_by_s"].items())
        + ".",
        END,
    ]
    return "\n".join(lines)


def write_docs(result: dict[str, Any]) -> None:
    section = render(result)
    text = DOCS.read_text()
    if START in text and END in text:
        head, rest = text.split(START, 1)
        _, tail = rest.split(END, 1)
        text = head + section + tail
    else:
        text = text.rstrip() + "\n\n" + section + "\n"
    DOCS.write_text(text)
    log(f"wrote {DOCS.relative_to(ROOT)}")


if __name__ == "__main__":
    sys.exit(main())
