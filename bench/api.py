"""Read API benchmark (``make bench-api``): every read endpoint of the API under uvicorn, 50
concurrent clients over loopback, on the metric-engine benchmark's 4-million-event database.

Two servers, one after the other, both ``uvicorn --factory ingest_service.app:app_factory``
(one serving process, which computes uncached answers in its computing processes) on a
free loopback port with rate limits high enough never to refuse:

1. *cache disabled* (``DPP_API_CACHE_ENABLED=false``): ``--clients`` clients send
   ``--uncached-per-row`` requests of each endpoint variant (other streams each time),
   shuffled, with no new request after ``--uncached-cap`` seconds (the uncached phase
   under load; what is still unanswered ``--uncached-grace`` seconds later is abandoned and
   counted as a lower bound);
2. *cache enabled*: after a process warm-up, ``admin/system-alerts`` and every distinct
   request once from one client (each a cache miss: the single-client, uncached computation
   time, and the cache's warm-up, longest TTL first), a pass that computes again what
   expired meanwhile, then ``--clients`` clients cycle over the same requests for
   ``--duration`` seconds (the cached phase: every answer should be ``X-Cache: HIT``;
   misses are counted).

Then the slowest uncached requests are profiled in-process (``bench/api_profile.py``).
A JSON summary is printed and kept in ``bench/results/api-*.json``; ``--write-docs``
rewrites the bench-api section of ``docs/performance.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import random
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402

from bench import api_client, procstat  # noqa: E402
from bench import metrics as metrics_bench  # noqa: E402
from bench.loadgen import pct  # noqa: E402

DOCS = ROOT / "docs" / "performance.md"
START, END = "<!-- bench-api:results:start -->", "<!-- bench-api:results:end -->"
RESULTS = ROOT / "bench" / "results"
DEFAULT_URL = metrics_bench.DEFAULT_URL
AS_OF = "2026-11-12T18:00:00Z"  # inside the dataset (it ends 2026-11-16)
WARM_AS_OF = "2026-11-05T18:00:00Z"  # the process warm-up's requests: other cache keys
TARGET_CACHED_P95_MS = 20.0
TARGET_UNCACHED_P95_MS = 500.0
SPEC_CACHED_P95_MS = 200.0  # spec §8.1
SPEC_UNCACHED_P95_MS = 2000.0
RATE_LIMITS = "summary=1000000,trends=1000000,breakdown=1000000,drilldown=1000000"
MIN_EVENTS = 3_500_000  # a complete 1,000-engineer, two-year dataset has ~4.0 M
HOST = "127.0.0.1"
SHORT_TTL = ("metrics/realtime", "admin/integration-health")  # 30 s: warmed last
WARMUP_ENDPOINTS = (  # cheap for one stream (a few seconds at most)
    "streams/delivery",
    "streams/tech",
    "sprints",
    "metrics/realtime",
    "metrics/forecast",
    "metrics/pulse",
)


def log(msg: str) -> None:
    print(f"[bench-api {datetime.now().strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# --- dataset ----------------------------------------------------------------------------------


def dataset_status(url: str) -> dict[str, Any]:
    """Row counts and whether the database is a complete, rebuilt benchmark dataset."""
    try:
        conn = psycopg.connect(url, connect_timeout=5)
    except psycopg.OperationalError as exc:
        return {"complete": False, "why": f"cannot connect: {str(exc).strip()[:200]}"}
    with conn:
        if conn.execute("select to_regclass('public.data_versions')").fetchone() in (None, (None,)):
            return {"complete": False, "why": "not migrated"}
        versions: dict[str, int] = dict(
            conn.execute("select topic, version from data_versions").fetchall()
        )
    counts = metrics_bench.counts(url)
    with psycopg.connect(url) as conn:
        for table in ("sprint_snapshots", "delivery_streams", "tech_streams"):
            row = conn.execute(f"select count(*) from {table}").fetchone()
            counts[table] = int(row[0]) if row else 0
    events = sum(counts[t] for t in metrics_bench.EVENT_TABLES)
    derived = ("work_item_cycles", "pr_cycles", "deployment_records", "sprint_snapshots")
    why = []
    if events < MIN_EVENTS:
        why.append(f"{events:,} events (< {MIN_EVENTS:,})")
    why += [f"{t} is empty" for t in derived if not counts[t]]
    if not versions.get("deployment_records"):  # bumped by the end of `dpp rebuild`
        why.append("never rebuilt (no data version for deployment_records)")
    return {"complete": not why, "why": "; ".join(why), "counts": counts, "events": events}


def ensure_dataset(args: argparse.Namespace) -> dict[str, Any]:
    """Reuse the metric-engine benchmark's database when complete, else generate and rebuild
    it as ``bench/metrics.py`` does (same generator, same defaults)."""
    status = dataset_status(args.url)
    out: dict[str, Any] = {"database": psycopg.conninfo.conninfo_to_dict(args.url).get("dbname")}
    if status["complete"]:
        log(f"reusing {out['database']}: {status['events']:,} events")
        out["generated"] = None
    else:
        if args.reuse:
            raise SystemExit(
                f"--reuse: {out['database']} is not a complete dataset: {status['why']}"
            )
        log(f"{out['database']}: {status['why']}; generating it (about 6 minutes)")
        gen_args = argparse.Namespace(
            url=args.url, engineers=1000, days=730, seed=7, until="2026-11-16"
        )
        out["generated"] = metrics_bench.generate(gen_args)
        out["rebuild_s"] = rebuild(args.url)
        status = dataset_status(args.url)
        if not status["complete"]:
            raise SystemExit(f"the generated dataset is incomplete: {status['why']}")
    upgrade_schema(args.url)
    out["counts"] = status["counts"]
    out["events"] = status["events"]
    return out


def rebuild(url: str) -> float:
    from dpp_lib.jobs.rebuild import rebuild as run_rebuild
    from dpp_lib.settings import Settings
    from dpp_lib.store.db import make_engine

    log("dpp rebuild (about 4 minutes)")
    engine = make_engine(url)
    t0 = time.perf_counter()
    try:
        run_rebuild(engine, Settings(_env_file=None, database_url=url))
    finally:
        engine.dispose()
    elapsed = time.perf_counter() - t0
    log(f"rebuilt in {elapsed:.0f} s")
    return round(elapsed, 1)


def upgrade_schema(url: str) -> None:
    """A dataset made before the newest migration gets it (the API expects the schema)."""
    from dpp_lib.store.db import make_engine
    from dpp_lib.store.migrate import is_up_to_date, upgrade

    engine = make_engine(url)
    try:
        if not is_up_to_date(engine):
            log("migrating the dataset's schema to the newest revision")
            upgrade(engine)
    finally:
        engine.dispose()


def stream_names(url: str) -> tuple[list[str], list[str]]:
    with psycopg.connect(url) as conn:
        delivery = [
            str(r[0])
            for r in conn.execute("select name from delivery_streams where is_active order by name")
        ]
        tech = [
            str(r[0])
            for r in conn.execute("select name from tech_streams where is_active order by name")
        ]
    return delivery, tech


def create_token(url: str) -> tuple[str, str]:
    """A fresh ``metrics:read`` + ``admin`` key, written directly to the database."""
    from dpp_lib.store.api_keys import create_key
    from dpp_lib.store.db import make_engine

    engine = make_engine(url)
    try:
        with engine.begin() as conn:
            key, token = create_key(
                conn, name="bench-api", permissions=["metrics:read", "admin"], expires_days=1
            )
    finally:
        engine.dispose()
    return str(key.key_id), token


def revoke_token(url: str, key_id: str) -> None:
    from dpp_lib.store.api_keys import revoke_key
    from dpp_lib.store.db import make_engine

    engine = make_engine(url)
    try:
        with engine.begin() as conn:
            revoke_key(conn, key_id)
    finally:
        engine.dispose()


# --- requests ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Req:
    endpoint: str  # as in ingest_service/examples.py (cache policy name, #shape)
    variant: str  # one stream | all streams | now (no as_of) | —
    path: str
    params: tuple[tuple[str, str], ...]

    @property
    def row(self) -> str:
        return f"{self.endpoint} · {self.variant}"

    @property
    def target(self) -> str:
        return self.path + ("?" + urlencode(self.params) if self.params else "")

    def at(self, as_of: str) -> Req:
        """The same request for another ``as_of`` (the process warm-up)."""
        params = tuple((k, as_of if k == "as_of" else v) for k, v in self.params)
        return Req(self.endpoint, self.variant, self.path, params)


# endpoint → (path, fixed params, stream parameter or None, stream kind, takes as_of)
ENDPOINTS: dict[str, tuple[str, dict[str, str], str | None, str, bool]] = {
    "streams/delivery": ("/api/v1/streams/delivery", {}, None, "", False),
    "streams/tech": ("/api/v1/streams/tech", {}, None, "", False),
    "sprints": ("/api/v1/sprints", {}, "stream", "delivery", False),
    "metrics/realtime": ("/api/v1/metrics/realtime", {}, "stream", "delivery", True),
    "metrics/diagnostic": ("/api/v1/metrics/diagnostic", {}, "stream", "delivery", True),
    "metrics/trends#series": ("/api/v1/metrics/trends", {}, "tech_stream", "tech", True),
    "metrics/trends#summary": ("/api/v1/metrics/trends", {}, None, "", True),
    "metrics/forecast": ("/api/v1/metrics/forecast", {}, "stream", "delivery", True),
    "metrics/pulse": ("/api/v1/metrics/pulse", {}, "stream", "delivery", True),
    "metrics/cross-stream": ("/api/v1/metrics/cross-stream", {}, "tech_stream", "tech", True),
    "metrics/breakdown": (
        "/api/v1/metrics/breakdown",
        {"metric": "throughput", "dimension": "ticket_type"},
        "stream",
        "delivery",
        True,
    ),
    "metrics/drilldown": (
        "/api/v1/metrics/drilldown",
        {"metric": "cycle_time", "limit": "50"},
        "stream",
        "delivery",
        True,
    ),
    "admin/data-quality": ("/api/v1/admin/data-quality", {}, None, "", True),
    "admin/integration-health": ("/api/v1/admin/integration-health", {}, None, "", False),
}
ALERTS = Req("admin/system-alerts", "—", "/api/v1/admin/system-alerts", ())
# trends#series needs a tech stream; its "all streams" answer is trends#summary
NO_ALL_STREAMS = ("sprints", "metrics/trends#series")
# cross-stream reads every delivery stream's work whatever the tech stream (~75 s a request
# here): its "now" would add a minute and a half to the run and tell nothing new
NO_NOW = ("metrics/cross-stream",)
ALL_STREAMS_PARAMS = {"metrics/breakdown": {"metric": "throughput", "dimension": "delivery_stream"}}


def request_set(delivery: list[str], tech: list[str], per_endpoint: int, seed: int) -> list[Req]:
    """The distinct requests: per endpoint that names a stream, ``per_endpoint`` single-stream
    requests (streams differ between endpoints), the all-streams answer and one single-stream
    request without ``as_of``; endpoints without a stream parameter once."""
    rng = random.Random(seed)
    out: list[Req] = []
    for endpoint, (path, fixed, param, kind, has_as_of) in ENDPOINTS.items():
        when = {"as_of": AS_OF} if has_as_of else {}
        if param is None:
            params = {**fixed, **when}
            out.append(Req(endpoint, "all streams" if when else "—", path, tuple(params.items())))
            continue
        names = delivery if kind == "delivery" else tech
        picked = rng.sample(names, min(len(names), per_endpoint + 1))
        for name in picked[:per_endpoint]:
            params = {**fixed, param: name, **when}
            out.append(Req(endpoint, "one stream", path, tuple(params.items())))
        if endpoint not in NO_ALL_STREAMS and has_as_of:
            params = {**ALL_STREAMS_PARAMS.get(endpoint, fixed), **when}
            out.append(Req(endpoint, "all streams", path, tuple(params.items())))
        if has_as_of and endpoint not in NO_NOW:
            params = {**fixed, param: picked[-1]}
            out.append(Req(endpoint, "now (no as_of)", path, tuple(params.items())))
    return out


def rows_of(reqs: Sequence[Req]) -> dict[str, list[Req]]:
    rows: dict[str, list[Req]] = {}
    for r in reqs:
        rows.setdefault(r.row, []).append(r)
    return rows


# --- the server -------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def has_module(name: str) -> bool:
    try:
        __import__(name)
    except ImportError:
        return False
    return True


def server_command(port: int | str) -> list[str]:
    cmd = [
        sys.executable, "-m", "uvicorn", "--factory", "ingest_service.app:app_factory",
        "--host", HOST, "--port", str(port), "--no-access-log", "--log-level", "warning",
    ]  # fmt: skip
    if has_module("uvloop"):
        cmd += ["--loop", "uvloop"]
    if has_module("httptools"):
        cmd += ["--http", "httptools"]
    return cmd


def server_env(url: str, secrets_dir: Path, *, cache: bool) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DPP_")}
    return env | {
        "DPP_DATABASE_URL": url,
        "DPP_SECRETS_DIR": str(secrets_dir),
        "DPP_ENVIRONMENT": "test",
        "DPP_API_RATE_LIMITS": RATE_LIMITS,
        "DPP_API_CACHE_ENABLED": "true" if cache else "false",
        "PYTHONPATH": str(ROOT),
    }


def write_secrets(workdir: Path) -> Path:
    from dpp_lib.settings import SECRET_NAMES

    path = workdir / "secrets"
    path.mkdir(mode=0o700)
    for name in SECRET_NAMES:
        (path / name).write_text(secrets.token_urlsafe(32))
    return path


@dataclass
class Server:
    proc: subprocess.Popen[bytes]
    port: int
    log_path: Path

    def log_tail(self, lines: int = 40) -> list[str]:
        try:
            return self.log_path.read_text(errors="replace").splitlines()[-lines:]
        except OSError:
            return []


@contextlib.contextmanager
def api_server(url: str, workdir: Path, *, cache: bool) -> Iterator[Server]:
    port = free_port()
    log_path = workdir / f"uvicorn-{'cache' if cache else 'nocache'}.log"
    env = server_env(url, workdir / "secrets", cache=cache)
    with log_path.open("wb") as out:
        proc = subprocess.Popen(
            server_command(port), env=env, cwd=ROOT, stdin=subprocess.DEVNULL, stdout=out,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
    server = Server(proc, port, log_path)
    try:
        wait_health(server)
        yield server
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                log(f"uvicorn (pid {proc.pid}) did not stop on SIGTERM; killing it")
                proc.kill()
                proc.wait()


def wait_health(server: Server, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            tail = "\n".join(server.log_tail())
            raise RuntimeError(f"uvicorn exited with {server.proc.returncode}:\n{tail}")
        with (
            contextlib.suppress(OSError),
            socket.create_connection((HOST, server.port), timeout=1) as s,
        ):
            s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            if s.recv(64).startswith(b"HTTP/1.1 200"):
                return
        time.sleep(0.2)
    raise RuntimeError(f"/health did not answer 200 on port {server.port} within {timeout} s")


# --- load -------------------------------------------------------------------------------------


def send(
    server: Server,
    token: str,
    reqs: Sequence[Req],
    clients: int,
    *,
    cycle: bool = False,
    duration: float = float("inf"),
    grace: float = 60.0,
) -> dict[str, Any]:
    """Send ``reqs`` (see ``bench/api_client.py``); samples with their request, elapsed
    time and the cores each process group used meanwhile."""
    host = f"{HOST}:{server.port}"
    raw = [api_client.request_bytes(r.target, host, token) for r in reqs]
    groups = {"api": server.proc.pid, "client": os.getpid()}
    before = procstat.snapshot(groups)
    samples, elapsed = asyncio.run(
        api_client.run(HOST, server.port, raw, clients, cycle=cycle, duration=duration, grace=grace)
    )
    after = procstat.snapshot(groups)
    cores = procstat.delta(before, after, max(elapsed, 1e-9))
    # the server is this process' child: its tree is in "client" too
    cores["client"] = round(max(0.0, cores["client"] - cores["api"]), 3)
    return {
        "samples": [(reqs[s.index], s) for s in samples],
        "elapsed_s": elapsed,
        "cores_used": cores,
    }


def stats(pairs: Sequence[tuple[Req, api_client.Sample]], *, cached: bool) -> dict[str, Any]:
    lat = sorted(s.latency * 1000 for _, s in pairs)
    censored = sorted(s.latency * 1000 for _, s in pairs if s.censored)
    statuses: dict[str, int] = {}
    for _, s in pairs:
        key = "abandoned" if s.censored else str(s.status)
        statuses[key] = statuses.get(key, 0) + 1
    out: dict[str, Any] = {
        "n": len(pairs),
        "ok": statuses.get("200", 0),
        "non_200": len(pairs) - statuses.get("200", 0),
        "by_status": statuses,
        "censored": len(censored),
    }
    for p in (50, 95, 99):
        value = pct(lat, p)
        out[f"p{p}_ms"] = round(value, 2)
        # an abandoned request's latency is a lower bound: the percentile is one too when
        # such a sample is at or below it (it could have been larger)
        out[f"p{p}_lower_bound"] = bool(censored and censored[0] <= value)
    out["max_ms"] = round(lat[-1], 2) if lat else 0.0
    if cached:
        # STALE: a "now" answer past its TTL, served from the cache while it is renewed
        hits = sorted(s.latency * 1000 for _, s in pairs if s.cache in ("HIT", "STALE"))
        out["misses"] = sum(1 for _, s in pairs if s.status == 200 and s.cache == "MISS")
        out["stale"] = sum(1 for _, s in pairs if s.cache == "STALE")
        out["hits"] = len(hits)
        out["hits_p95_ms"] = round(pct(hits, 95), 2)
    errors = sorted({s.error.decode(errors="replace") for _, s in pairs if s.error})
    if errors:
        out["errors"] = errors[:3]
    return out


def summarise(run: dict[str, Any], order: Sequence[str], *, cached: bool = False) -> dict[str, Any]:
    pairs = run["samples"]
    by_row: dict[str, list[tuple[Req, api_client.Sample]]] = {}
    for req, s in pairs:
        by_row.setdefault(req.row, []).append((req, s))
    elapsed = run["elapsed_s"]
    ok = sum(1 for _, s in pairs if s.status == 200)
    total = stats(pairs, cached=cached)
    return {
        "requests": len(pairs),
        "ok": ok,
        "non_200": len(pairs) - ok,
        "elapsed_s": round(elapsed, 2),
        "throughput_per_s": round(ok / elapsed, 1) if elapsed else 0.0,
        "cores_used": run["cores_used"],
        "all": total,
        "rows": {row: stats(by_row[row], cached=cached) for row in order if row in by_row},
    }


def shuffled(reqs: Sequence[Req], seed: int) -> list[Req]:
    out = list(reqs)
    random.Random(seed).shuffle(out)
    return out


def ttl(req: Req) -> float:
    from ingest_service.cache import POLICIES

    policy = POLICIES.get(req.endpoint.split("#")[0])
    return policy.ttl_seconds if policy else 0.0


def warm_order(reqs: Sequence[Req]) -> list[Req]:
    """Longest TTL first and, within a TTL, the all-streams answers (the slowest) first:
    the shortest-lived answers are computed last, just before the cached phase."""
    return sorted(reqs, key=lambda r: (-ttl(r), r.variant != "all streams"))


def warmup_set(reqs: Sequence[Req]) -> list[Req]:
    """One cheap request of a few endpoints (one stream, another ``as_of``)."""
    firsts = {r.endpoint: r.at(WARM_AS_OF) for r in reqs if r.variant == "one stream"}
    firsts |= {r.endpoint: r for r in reqs if r.variant == "—"}
    return [r for e, r in firsts.items() if e in WARMUP_ENDPOINTS]


def process_warmup(server: Server, token: str, reqs: Sequence[Req]) -> dict[str, Any]:
    """The warm-up set once: the process' one-time costs (imports, the pools, the config
    lookups) are not in the first measured answers."""
    cheap = warmup_set(reqs)
    log(f"process warm-up: {len(cheap)} requests")
    return summarise(send(server, token, cheap, 1, duration=300), [r.row for r in cheap])


def cached_phase(
    args: argparse.Namespace, url: str, workdir: Path, token: str, reqs: list[Req]
) -> dict[str, Any]:
    order = [*rows_of(reqs), ALERTS.row]
    out: dict[str, Any] = {"server": {"cache_enabled": True}}
    with api_server(url, workdir, cache=True) as server:
        out["server"]["pid"] = server.proc.pid
        out["process_warmup"] = process_warmup(server, token, reqs)
        # the cache path alone: the warm-up's answers (cheap, just computed), nothing computing
        cheap = warmup_set(reqs)
        log(f"cache on: cache path alone, {args.clients} clients over {len(cheap)} answers")
        floor = send(
            server,
            token,
            shuffled(cheap, args.seed),
            args.clients,
            cycle=True,
            duration=args.floor_duration,
            grace=30,
        )
        out["floor"] = summarise(floor, [r.row for r in cheap], cached=True)
        log_rows("cache path alone", out["floor"])
        # requests without as_of are among the measured ones: forget every answer
        out["invalidated"] = invalidate_all(server, token)
        # 1. every distinct request once, one client: all misses — the computation time
        log(f"cache on: {len(reqs)} distinct requests, one client (uncached, sequential)")
        seq_reqs = [ALERTS] * args.alerts_repeat + warm_order(reqs)  # alerts: never cached
        seq = send(server, token, seq_reqs, 1, duration=args.sequential_cap, grace=180)
        out["sequential"] = summarise(seq, order, cached=True)
        out["sequential"]["hits"] = sum(1 for _, s in seq["samples"] if s.cache == "HIT")
        out["sequential"]["by_request_ms"] = {
            r.target: round(s.latency * 1000, 1) for r, s in seq["samples"] if r != ALERTS
        }
        out["sequential"]["not_sent"] = len(seq_reqs) - out["sequential"]["requests"]
        log_rows("sequential (1 client, uncached)", out["sequential"])
        # 2. re-warm what expired meanwhile (TTLs of 30 s and 5 min) or was not reached
        out["rewarm"] = []
        t_rewarm = time.perf_counter()
        for n in range(args.rewarm_passes):
            log(f"cache on: re-warm pass {n + 1}, 4 clients: what is not a hit is computed again")
            rewarm = send(server, token, warm_order(reqs), 4, duration=args.rewarm_cap, grace=120)
            misses = sum(1 for _, s in rewarm["samples"] if s.cache != "HIT")
            out["rewarm"].append(
                {
                    "requests": len(rewarm["samples"]),
                    "misses": misses,
                    "missed": sorted(r.row for r, s in rewarm["samples"] if s.cache != "HIT"),
                    "non_200": sum(1 for _, s in rewarm["samples"] if s.status != 200),
                    "elapsed_s": round(rewarm["elapsed_s"], 1),
                }
            )
            log(f"  {misses} misses in {rewarm['elapsed_s']:.0f} s")
            if not misses or time.perf_counter() - t_rewarm > args.rewarm_cap:
                break
        # 3. the cached phase
        log(
            f"cache on: {args.clients} clients cycling over {len(reqs)} requests "
            f"for {args.duration:.0f} s"
        )
        load = send(
            server,
            token,
            shuffled(reqs, args.seed),
            args.clients,
            cycle=True,
            duration=args.duration,
            grace=60,
        )
        out["load"] = summarise(load, order, cached=True)
        log_rows(f"cached ({args.clients} clients)", out["load"])
        if out["load"]["non_200"] or out["sequential"]["non_200"]:
            out["server_log_tail"] = server.log_tail()
            out["server_errors"] = server_errors(server)
    return out


def invalidate_all(server: Server, token: str) -> int:
    import httpx

    answer = httpx.post(
        f"http://{HOST}:{server.port}/api/v1/cache/invalidate",
        json={"pattern": "*"},
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    answer.raise_for_status()
    return int(answer.json()["data"]["invalidated"])


def uncached_workload(delivery: list[str], tech: list[str], per_row: int, seed: int) -> list[Req]:
    """``per_row`` requests of each row, each repetition for other streams, shuffled."""
    workload: list[Req] = [ALERTS] * per_row
    for rep in range(per_row):
        workload += request_set(delivery, tech, 1, seed + 1000 + rep)
    return shuffled(workload, seed + 1)


def uncached_phase(
    args: argparse.Namespace, url: str, workdir: Path, token: str, workload: list[Req]
) -> dict[str, Any]:
    order = [*rows_of(request_set(["x", "y"], ["x", "y"], 1, 0)), ALERTS.row]
    out: dict[str, Any] = {"server": {"cache_enabled": False}}
    with api_server(url, workdir, cache=False) as server:
        out["server"]["pid"] = server.proc.pid
        out["process_warmup"] = process_warmup(server, token, workload)
        log(
            f"cache off: {len(workload)} requests ({args.uncached_per_row} per row), "
            f"{args.clients} clients, at most {args.uncached_cap:.0f} s "
            f"+ {args.uncached_grace:.0f} s grace"
        )
        load = send(
            server,
            token,
            workload,
            args.clients,
            duration=args.uncached_cap,
            grace=args.uncached_grace,
        )
        out["load"] = summarise(load, order)
        out["load"]["not_sent"] = len(workload) - out["load"]["requests"]
        log_rows(f"uncached ({args.clients} clients)", out["load"])
        if out["load"]["non_200"]:
            out["server_log_tail"] = server.log_tail()
            out["server_errors"] = server_errors(server)
    return out


def server_errors(server: Server) -> dict[str, int]:
    """The exception lines of the server's log, counted (why requests failed)."""
    found: dict[str, int] = {}
    for line in server.log_tail(100_000):
        if (
            line
            and not line.startswith((" ", "Traceback", "The above", "During"))
            and ("Error" in line or "Exception" in line)
        ):
            key = line.split(" (Background on this error")[0][:200]
            found[key] = found.get(key, 0) + 1
    return found


def log_rows(title: str, phase: dict[str, Any]) -> None:
    log(
        f"{title}: {phase['requests']} requests in {phase['elapsed_s']:.1f} s, "
        f"{phase['throughput_per_s']:.1f} req/s, non-200 {phase['non_200']}"
    )
    for row, s in phase["rows"].items():
        extra = f" misses {s['misses']}" if "misses" in s else ""
        log(
            f"  {row:45s} n={s['n']:4d} p50={s['p50_ms']:9.1f} p95={s['p95_ms']:9.1f} "
            f"p99={s['p99_ms']:9.1f} non200={s['non_200']}{extra}"
        )


# --- profile ----------------------------------------------------------------------------------


def profile(
    args: argparse.Namespace, url: str, workdir: Path, token: str, sequential: dict[str, Any],
    reqs: list[Req],
) -> list[dict[str, Any]]:  # fmt: skip
    """The slowest requests of the single-client pass (one per endpoint), in-process."""
    from bench.api_profile import profile_requests
    from dpp_lib.settings import Settings

    timed: dict[str, float] = sequential["by_request_ms"]
    by_target = {r.target: r for r in reqs}
    slowest: list[Req] = []
    for target in sorted(timed, key=lambda t: -timed[t]):
        req = by_target.get(target)
        if req is not None and all(req.endpoint != r.endpoint for r in slowest):
            slowest.append(req)
    chosen: list[Req] = []
    for req in slowest[: args.profile]:  # within the time budget, but at least one
        spent = sum(timed[r.target] for r in chosen) / 1000
        if chosen and spent + timed[req.target] / 1000 > args.profile_budget:
            break
        chosen.append(req)
    slowest = chosen
    settings = Settings(
        _env_file=None,
        environment="test",
        database_url=url,
        secrets_dir=workdir / "secrets",
        api_cache_enabled=False,
        api_rate_limits=RATE_LIMITS,
    )
    warmup = [r.at(WARM_AS_OF).target for r in reqs if r.endpoint in WARMUP_ENDPOINTS][:4]
    log(f"profiling in-process: {', '.join(r.target for r in slowest)}")
    found = profile_requests(settings, token, [(r.row, r.target) for r in slowest], warmup)
    for p in found:
        p["single_client_ms"] = timed.get(p["target"])
        if p.get("status") == 200:
            log(f"  {p['row']}: {p['compute_s']:.1f} s {p['split_s']}")
    return found


# --- main -------------------------------------------------------------------------------------


def code_version() -> dict[str, Any]:
    """The commit measured, and which files of the platform differed from it."""

    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True)
        return done.stdout if done.returncode == 0 else ""

    status = git("status", "--porcelain", "--", "dpp_lib", "ingest_service")
    changed = [line[3:] for line in status.splitlines() if len(line) > 3]
    return {"commit": git("rev-parse", "--short", "HEAD").strip(), "uncommitted": changed}


def machine(url: str) -> dict[str, Any]:
    # The server's maintenance database: the benchmark's may not exist yet.
    server = psycopg.conninfo.make_conninfo(url, dbname="postgres")
    with psycopg.connect(server) as conn:
        row = conn.execute("show server_version").fetchone()
    cpu = "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "postgres": str(row[0]) if row else "?",
        "loadavg_at_start": [round(x, 2) for x in os.getloadavg()],
    }


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--url", default=os.environ.get("DPP_BENCH_METRICS_URL", DEFAULT_URL))
    parser.add_argument(
        "--reuse", action="store_true", help="never generate: fail if the dataset is incomplete"
    )
    parser.add_argument("--write-docs", action="store_true")
    parser.add_argument("--quick", action="store_true", help="small counts: a smoke run")
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument(
        "--duration", type=float, default=None, help="cached phase, seconds (default 30)"
    )
    parser.add_argument(
        "--streams", type=int, default=None, help="single-stream requests per endpoint (1)"
    )
    parser.add_argument(
        "--uncached-per-row", type=int, default=None, help="50-client uncached requests per row"
    )
    parser.add_argument(
        "--uncached-cap", type=float, default=None, help="uncached phase: no new request after"
    )
    parser.add_argument("--uncached-grace", type=float, default=None)
    parser.add_argument(
        "--sequential-cap",
        type=float,
        default=None,
        help="single-client pass (the cache's warm-up): no new request after, seconds",
    )
    parser.add_argument("--alerts-repeat", type=int, default=None)
    parser.add_argument("--rewarm-passes", type=int, default=1)
    parser.add_argument(
        "--floor-duration",
        type=float,
        default=15.0,
        help="cache path alone: the warm-up's cheap answers, nothing computing, seconds",
    )
    parser.add_argument(
        "--rewarm-cap", type=float, default=300.0, help="re-warm: no new request after, seconds"
    )
    parser.add_argument(
        "--profile-budget",
        type=float,
        default=360.0,
        help="profile the slowest endpoints while their single-client times sum to at most this",
    )
    parser.add_argument("--profile", type=int, default=None, help="slowest rows to profile")
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args(argv)
    quick = args.quick
    defaults = {
        "duration": 10.0 if quick else 30.0,
        "streams": 1,
        "uncached_per_row": 2 if quick else 4,
        "uncached_cap": 60.0,
        "uncached_grace": 60.0,
        "sequential_cap": 240.0 if quick else 900.0,
        "alerts_repeat": 1,
        "profile": 1 if quick else 3,
    }
    for name, value in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import warnings

    warnings.filterwarnings("ignore", message=".*starlette.testclient.*")
    t_start = time.perf_counter()
    result: dict[str, Any] = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "quick": args.quick,
    }
    result["dataset"] = ensure_dataset(args)
    result["machine"] = machine(args.url)
    result["code"] = code_version()
    delivery, tech = stream_names(args.url)
    reqs = request_set(delivery, tech, args.streams, args.seed)
    result["config"] = {
        "clients": args.clients,
        "cached_duration_s": args.duration,
        "streams_per_endpoint": args.streams,
        "uncached_per_row": args.uncached_per_row,
        "uncached_cap_s": args.uncached_cap,
        "uncached_grace_s": args.uncached_grace,
        "sequential_cap_s": args.sequential_cap,
        "alerts_repeat": args.alerts_repeat,
        "rewarm_passes": args.rewarm_passes,
        "rewarm_cap_s": args.rewarm_cap,
        "profile_budget_s": args.profile_budget,
        "profile": args.profile,
        "floor_duration_s": args.floor_duration,
        "as_of": AS_OF,
        "distinct_requests": len(reqs),
        "delivery_streams": len(delivery),
        "tech_streams": len(tech),
        "server_command": ["uvicorn", *server_command("<free port>")[3:]],
        "server_env": {
            k: v
            for k, v in server_env(args.url, Path("<tmp>/secrets"), cache=True).items()
            if k.startswith("DPP_") and k != "DPP_DATABASE_URL"
        },
        "requests": [r.target for r in reqs],
    }
    key_id, token = create_token(args.url)
    RESULTS.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    saved = RESULTS / f"api-{stamp}.json"
    try:
        with tempfile.TemporaryDirectory(prefix="dpp-bench-api-") as tmp:
            workdir = Path(tmp)
            write_secrets(workdir)
            workload = uncached_workload(delivery, tech, args.uncached_per_row, args.seed)
            result["uncached"] = uncached_phase(args, args.url, workdir, token, workload)
            saved.write_text(json.dumps(result, indent=1, default=str))
            result["cached"] = cached_phase(args, args.url, workdir, token, reqs)
            saved.write_text(json.dumps(result, indent=1, default=str))
            if args.profile:
                try:
                    result["profile"] = profile(
                        args, args.url, workdir, token, result["cached"]["sequential"], reqs
                    )
                except Exception as exc:  # the measurements stand without it
                    log(f"profiling failed: {exc!r}")
                    result["profile_error"] = repr(exc)[:500]
    finally:
        revoke_token(args.url, key_id)
    result["total_s"] = round(time.perf_counter() - t_start, 1)
    result["targets"] = targets(result)
    saved.write_text(json.dumps(result, indent=1, default=str))
    log(f"saved {saved.relative_to(ROOT)}")
    if args.write_docs:
        write_docs(result)
    print(json.dumps(summary(result), indent=1, default=str))
    return 0


# --- targets, summary, docs -------------------------------------------------------------------


def targets(result: dict[str, Any]) -> dict[str, Any]:
    """Per row and phase: is p95 under the issue's target (and the spec's)?"""
    out: dict[str, Any] = {}
    phases = (
        ("cached", result["cached"]["load"], TARGET_CACHED_P95_MS, SPEC_CACHED_P95_MS),
        ("cached_floor", result["cached"]["floor"], TARGET_CACHED_P95_MS, SPEC_CACHED_P95_MS),
        ("uncached", result["uncached"]["load"], TARGET_UNCACHED_P95_MS, SPEC_UNCACHED_P95_MS),
        (
            "uncached_single_client",
            result["cached"]["sequential"],
            TARGET_UNCACHED_P95_MS,
            SPEC_UNCACHED_P95_MS,
        ),
    )
    for name, phase, target, spec in phases:
        rows = {}
        for row, s in phase["rows"].items():
            clean = s["non_200"] == 0
            rows[row] = {
                "p95_ms": s["p95_ms"],
                "met": clean and s["p95_ms"] < target,
                "spec_met": clean and s["p95_ms"] < spec,
            }
        out[name] = {
            "target_ms": target,
            "spec_ms": spec,
            "met": sum(r["met"] for r in rows.values()),
            "rows": len(rows),
            "by_row": rows,
        }
    return out


def summary(result: dict[str, Any]) -> dict[str, Any]:
    def compact(phase: dict[str, Any]) -> dict[str, Any]:
        return {
            "requests": phase["requests"],
            "non_200": phase["non_200"],
            "throughput_per_s": phase["throughput_per_s"],
            "cores_used": phase["cores_used"],
            "p50_p95_p99_ms": {
                row: [s["p50_ms"], s["p95_ms"], s["p99_ms"]] for row, s in phase["rows"].items()
            },
        }

    return {
        "date": result["date"],
        "machine": result["machine"],
        "events": result["dataset"]["events"],
        "config": {k: v for k, v in result["config"].items() if k != "requests"},
        "cached": compact(result["cached"]["load"])
        | {"misses": result["cached"]["load"]["all"].get("misses")},
        "cache_path_alone": compact(result["cached"]["floor"]),
        "uncached_single_client": compact(result["cached"]["sequential"]),
        "uncached": compact(result["uncached"]["load"]),
        "profile": [
            {k: p.get(k) for k in ("row", "single_client_ms", "compute_s", "split_s")}
            for p in result.get("profile", [])
        ],
        "targets": {
            k: f"{v['met']} of {v['rows']} rows under {v['target_ms']:.0f} ms"
            for k, v in result["targets"].items()
        },
        "total_s": result["total_s"],
    }


def _ms(s: dict[str, Any], p: int) -> str:
    value = s[f"p{p}_ms"]
    text = f"{value:,.1f}" if value < 100 else f"{value:,.0f}"
    return ("≥ " if s.get(f"p{p}_lower_bound") else "") + text


def _met(ok: bool) -> str:
    return "met" if ok else "**MISSED**"


def _table(
    phase: dict[str, Any], verdicts: dict[str, Any], target: float, *, cached: bool = False
) -> list[str]:
    head = "| Endpoint | Variant | n | p50 ms | p95 ms | p99 ms |"
    rule = "|---|---|---:|---:|---:|---:|"
    if cached:
        head += " misses | p95 of hits ms |"
        rule += "---:|---:|"
    head += " non-200 | Target p95 | Met |"
    rule += "---:|---:|:---:|"
    lines = [head, rule]
    for row, s in phase["rows"].items():
        endpoint, variant = row.split(" · ", 1)
        line = f"| `{endpoint}` | {variant} | {s['n']:,} | "
        line += f"{_ms(s, 50)} | {_ms(s, 95)} | {_ms(s, 99)} |"
        if cached:
            hits = f"{s['hits_p95_ms']:,.1f}" if s.get("hits") else "—"
            line += f" {s.get('misses', 0):,} | {hits} |"
        v = verdicts["by_row"][row]
        line += f" {s['non_200']:,} | < {target:,.0f} | {_met(v['met'])} |"
        lines.append(line)
    return lines


def _errors(phase: dict[str, Any]) -> list[str]:
    """Why answers were not 200: the exceptions in the server's log, counted."""
    found = phase.get("server_errors") or {}
    if not found:
        return []
    top = sorted(found.items(), key=lambda kv: -kv[1])[:4]
    return [
        "Exceptions in the server's log during this server's run: "
        + "; ".join(f"`{line}` × {n:,}" for line, n in top)
        + ".",
        "",
    ]


def _cached_notes(r: dict[str, Any]) -> list[str]:
    """Which rows missed in the cached phase, with their TTL and computation time."""
    rows = r["cached"]["load"]["rows"]
    seq = r["cached"]["sequential"]["rows"]
    missed = [(row, s) for row, s in rows.items() if s.get("misses") or s["non_200"]]
    if not missed:
        return []
    ttls = {req.row: ttl(req) for req in request_set(["x", "y"], ["x", "y"], 1, 0)}
    parts = []
    for row, s in missed:
        computed = seq.get(row, {}).get("p50_ms")
        took = (
            "?"
            if computed is None
            else f"{computed:,.0f} ms"
            if computed < 1000
            else f"{computed / 1000:,.1f} s"
        )
        parts.append(
            f"`{row}` ({s.get('misses', 0)} computed again, {s['non_200']} unanswered; TTL "
            f"{ttls.get(row, 0):,.0f} s, one computation {took} in the single-client pass)"
        )
    return [
        "Not hits: " + "; ".join(parts) + ". An answer for now (no `as_of`) is computed "
        "again in the background from half its TTL on and served, stale, until the new one "
        "lands (at most one TTL past expiry); an answer that is not in the cache is computed "
        "by the first request that asks (single flight: the others asking wait for it). "
        "Computations run in the API's computing processes, not in the process serving the "
        "hits.",
        "",
    ]


def _little(phase: dict[str, Any], clients: int) -> str:
    """What closed-loop clients with no think time measure: the queue (Little's law)."""
    rate = float(phase["throughput_per_s"]) or 1e-9
    api = float(phase["cores_used"].get("api", 0.0))
    return (
        f"With {clients} clients and no pause between requests, the latency is the queue in "
        f"front of the API process: {clients} ÷ {rate:,.0f} req/s = {clients / rate * 1000:,.0f}"
        f" ms per answer (Little's law); the API process spent {api / rate * 1000:.2f} ms of "
        f"CPU per answer ({api:.2f} cores), so p95 < {TARGET_CACHED_P95_MS:.0f} ms with "
        f"{clients} clients needs ≥ {clients / TARGET_CACHED_P95_MS * 1000:,.0f} answers/s from "
        "it."
    )


def _queue_note(r: dict[str, Any]) -> list[str]:
    """Why uncached requests under load wait: the computations ahead of them."""
    from dpp_lib.settings import Settings

    seq = {
        row: s["p50_ms"]
        for row, s in r["cached"]["sequential"]["rows"].items()
        if s["non_200"] == 0
    }
    if not seq:
        return []
    fast = min(seq.items(), key=lambda kv: kv[1])
    slow = max(seq.items(), key=lambda kv: kv[1])
    total = sum(seq.values()) / 1000
    limit = ""
    if "api_max_computations" in Settings.model_fields:
        limit = (
            "The API computes at most `DPP_API_MAX_COMPUTATIONS` answers at once per process "
            f"(default: the CPU count, {r['machine']['nproc']} here); every other request for "
            "an answer not in the cache waits for a slot, the cheapest as well: "
        )
    return [
        limit
        + f"`{fast[0]}` takes {fast[1]:,.0f} ms alone, `{slow[0]}` {slow[1] / 1000:,.0f} s, and "
        f"one request of each row {total:,.0f} s of computing one after the other (single-client "
        f"pass below), so {r['config']['clients']} clients asking for uncached answers at once "
        "wait minutes, whatever they ask for.",
        "",
    ]


def _cores(phase: dict[str, Any]) -> str:
    c = phase["cores_used"]
    return (
        f"API {c.get('api', 0):.2f}, Postgres {c.get('postgres', 0):.2f}, "
        f"client {c.get('client', 0):.2f}, machine {c.get('total_busy', 0):.2f}"
    )


def _profile_lines(profile: list[dict[str, Any]]) -> list[str]:
    lines = [
        "| Request | single-client ms | profiled ms | reading frames: Python | reading frames: "
        "SQL | metric maths | scoping | view code | other SQL | config + org | JSON |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for p in profile:
        if p.get("status") != 200:
            lines.append(f"| `{p['row']}` | failed: {p.get('status')} |" + " |" * 9)
            continue
        sp, total = p["split_s"], p["compute_s"] or 1e-9
        cells = [
            f"{sp[g] * 1000:,.0f} ({sp[g] / total:.0%})"
            for g in (
                "read",
                "read_sql",
                "metrics",
                "scope",
                "view_code",
                "sql_elsewhere",
                "config_org",
                "serialise",
            )
        ]
        lines.append(
            f"| `{p['row']}` | {p['single_client_ms'] or 0:,.0f} | {total * 1000:,.0f} | "
            + " | ".join(cells)
            + " |"
        )
    return lines


def _short(function: str) -> str:
    """``dpp_lib/store/read.py items`` → ``read.items``."""
    path, _, name = function.partition(" ")
    return f"{path.rsplit('/', 1)[-1].removesuffix('.py')}.{name}"


def _top_functions(profile: list[dict[str, Any]]) -> str:
    out = []
    for p in profile:
        if p.get("status") != 200:
            continue
        names = [
            f"`{_short(f['function'])}` {f['inclusive_s']:,.1f} s"
            for f in p["top_functions"][1:6]  # [0] is the view itself
        ]
        out.append(f"`{p['row']}` ({p['compute_s']:,.1f} s): " + ", ".join(names))
    return "; ".join(out)


def render(r: dict[str, Any]) -> str:
    ds, cfg, m = r["dataset"], r["config"], r["machine"]
    counts = ds["counts"]
    events = ", ".join(f"{t} {counts[t]:,}" for t in metrics_bench.EVENT_TABLES)
    cached, seq, unc = r["cached"]["load"], r["cached"]["sequential"], r["uncached"]["load"]
    floor = r["cached"]["floor"]
    t = r["targets"]
    lines = [
        START,
        f"## Read API — {r['date']}" + (" (quick smoke run)" if r.get("quick") else ""),
        "",
        "`make bench-api` (`bench/api.py`): every read endpoint of the API on the metric-engine "
        f"benchmark's dataset, **{ds['events']:,} events** ({events}; work_item_cycles "
        f"{counts['work_item_cycles']:,}, pr_cycles {counts['pr_cycles']:,}, deployment_records "
        f"{counts['deployment_records']:,}), {cfg['delivery_streams']} delivery and "
        f"{cfg['tech_streams']} tech streams"
        + (
            "; the dataset was generated and rebuilt for this run."
            if ds.get("generated")
            else "; the existing dataset was reused."
        ),
        "",
        f"- **Code:** commit `{r['code']['commit']}`"
        + (
            " with uncommitted changes in " + ", ".join(f"`{f}`" for f in r["code"]["uncommitted"])
            if r["code"]["uncommitted"]
            else ""
        )
        + ".",
        f"- **Machine:** {m['nproc']} CPUs ({m['cpu']}), Python {m['python']}, PostgreSQL "
        f"{m['postgres'].split(' ')[0]} on the same machine; load average when the run started "
        f"{', '.join(str(x) for x in m['loadavg_at_start'])} (other work was running on the "
        "machine: its figures vary).",
        "- **Server:** `" + " ".join(cfg["server_command"]).replace("<free port>", "<port>") + "`, "
        "one serving process with its computing processes (`DPP_API_COMPUTE_IN=processes`, "
        "as many as CPUs), `DPP_API_RATE_LIMITS="
        + cfg["server_env"]["DPP_API_RATE_LIMITS"]
        + "` (the limiter still runs), `DPP_ENVIRONMENT=test`, every other setting at its "
        "default; no worker runs, so data versions never move.",
        f"- **Requests:** {cfg['distinct_requests']} distinct GETs: each endpoint that names a "
        f"stream for {cfg['streams_per_endpoint']} real stream(s) (*one stream*; each endpoint "
        "another), for all streams, and for one stream without `as_of` (*now*); the others "
        f"once. `as_of={cfg['as_of']}` everywhere else. `admin/system-alerts` evaluates on "
        "every call and is never cached: uncached phases only. Client: keep-alive HTTP/1.1 "
        "connections on asyncio (`bench/api_client.py`) in the benchmark's process, over "
        "loopback. Latency = from writing the request to reading the whole answer.",
        "",
        f"### Cached — {cfg['clients']} clients, {cfg['cached_duration_s']:.0f} s, cache enabled",
        "",
        "After every distinct request was computed once (the single-client pass below, longest "
        "TTL first) and re-warm passes (4 clients) computed again what had expired meanwhile "
        "(misses per pass: "
        + ", ".join(str(p["misses"]) for p in r["cached"]["rewarm"])
        + f"), {cfg['clients']} clients cycled over the "
        f"{cfg['distinct_requests']} requests: **{cached['requests']:,} requests, "
        f"{cached['throughput_per_s']:,.0f} req/s**, {cached['all'].get('misses', 0):,} not "
        f"`X-Cache: HIT`, {cached['non_200']} non-200. Cores used: {_cores(cached)}. "
        "p50/p95/p99 are over every answer (a miss on a TTL's expiry included); "
        f"target p95 < {TARGET_CACHED_P95_MS:.0f} ms (spec §8.1: {SPEC_CACHED_P95_MS:.0f} ms) — "
        f"**met on {t['cached']['met']} of {t['cached']['rows']} rows**.",
        "",
        *_table(cached, t["cached"], TARGET_CACHED_P95_MS, cached=True),
        "",
        *_cached_notes(r),
        *_errors(r["cached"]),
        f"**The cache path alone** — before the single-client pass, right after the process "
        f"warm-up had computed {len(floor['rows'])} cheap answers (one stream, another "
        f"`as_of`), {cfg['clients']} clients cycled over just those for "
        f"{cfg['floor_duration_s']:.0f} s with nothing being computed: "
        f"{floor['requests']:,} requests, {floor['throughput_per_s']:,.0f} req/s, "
        f"{floor['all'].get('misses', 0)} misses, {floor['non_200']} non-200; cores used: "
        f"{_cores(floor)}; p95 under {TARGET_CACHED_P95_MS:.0f} ms on "
        f"{t['cached_floor']['met']} of {t['cached_floor']['rows']} rows. "
        + _little(floor, cfg["clients"]),
        "",
        *_table(floor, t["cached_floor"], TARGET_CACHED_P95_MS, cached=True),
        "",
        f"### Uncached — {cfg['clients']} clients, cache disabled",
        "",
        "A second server with `DPP_API_CACHE_ENABLED=false`: every request computes its "
        f"answer. {cfg['uncached_per_row']} requests per row (each for other streams where it "
        f"names one), shuffled, sent by {cfg['clients']} clients; no new request after "
        f"{cfg['uncached_cap_s']:.0f} s, and requests still unanswered "
        f"{cfg['uncached_grace_s']:.0f} s later are abandoned and counted with the time they "
        "had waited (a lower bound, shown as ≥). "
        f"**{unc['requests']:,} requests sent, {unc['ok']:,} answered 200 in "
        f"{unc['elapsed_s']:.0f} s ({unc['throughput_per_s']:.2f} req/s), "
        f"{unc['non_200']} non-200** ({unc['all']['by_status']}); "
        f"{unc.get('not_sent', 0)} not sent before the cap. Cores used: {_cores(unc)}. "
        f"With {cfg['clients']} clients on 2 cores the latency is mostly queueing; target p95 "
        f"< {TARGET_UNCACHED_P95_MS:.0f} ms (spec §8.1: {SPEC_UNCACHED_P95_MS:,.0f} ms) — "
        f"**met on {t['uncached']['met']} of {t['uncached']['rows']} rows**.",
        "",
        *_table(unc, t["uncached"], TARGET_UNCACHED_P95_MS),
        "",
        *_queue_note(r),
        *_errors(r["uncached"]),
        "### Uncached — one client (the computation time)",
        "",
        f"`admin/system-alerts` {cfg['alerts_repeat']} time(s), then each distinct request once "
        "(longest TTL first), one after the other, on the cache-enabled server after a process "
        f"warm-up (every one a miss: {seq.get('hits', 0)} hits). "
        f"{seq['requests']} requests in {seq['elapsed_s']:.0f} s. Target p95 "
        f"< {TARGET_UNCACHED_P95_MS:.0f} ms — **met on {t['uncached_single_client']['met']} of "
        f"{t['uncached_single_client']['rows']} rows**.",
        "",
        *_table(seq, t["uncached_single_client"], TARGET_UNCACHED_P95_MS),
        "",
    ]
    if r.get("profile"):
        lines += [
            "### Where the time goes",
            "",
            "The slowest request of the single-client pass for each of the slowest endpoints "
            f"(at most {cfg['profile']}, within {cfg['profile_budget_s']:.0f} s of computing), "
            "sent again through the real app in-process (`bench/api_profile.py`): cache "
            "disabled, after a warm-up; while `compute._Context.render` runs (config lookups, "
            "organisation, view, JSON) a thread samples the computing thread's stack every "
            "5 ms. A sample counts as *scoping* when `Scope.apply` (filtering frames to a "
            "stream's rows) is in the stack, else by the outermost of: *reading frames* "
            "(`dpp_lib/store/read.py`, `metrics/frames.py`, `projections/`; *SQL* = with "
            "SQLAlchemy/psycopg below, i.e. the statement, Postgres and fetching rows; *Python* "
            "= the rest: rows to DataFrames, timelines), *metric maths* (the rest of "
            "`dpp_lib/metrics/`), *config + org*, *other SQL*; *JSON* = `orjson.dumps` of the "
            "answer; *view code* = the rest. Milliseconds of the profiled run (share).",
            "",
            *_profile_lines(r["profile"]),
            "",
            "Heaviest DPP functions of each (inclusive, from the samples): "
            + _top_functions(r["profile"])
            + ".",
            "",
        ]
    lines += [
        f"Whole benchmark: {r['total_s']:.0f} s. Raw numbers: `bench/results/api-*.json`.",
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
