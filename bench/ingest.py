"""Ingestion benchmark (``make bench-ingest``): signed deliveries → API → inbox → worker.

For each API worker count (1 and 2) on a fresh ``dpp_bench`` database: start the API
(``uvicorn --factory ingest_service.app:app_factory``) and the inbox worker (``dpp worker``)
as their own processes, let a separate load process send 20,000 pre-built, pre-signed
deliveries (~45 % GitHub, ~45 % Jira, ~10 % pushed deployments) over loopback keep-alive
connections, wait (at most ``--drain-timeout`` seconds) until the worker has drained the
inbox, and read the latencies back from ``raw_events``. Then measure the client's own
ceiling (a stub server) and the raw single-row INSERT ceiling of the same Postgres.
``--write-docs`` rewrites the results section of ``docs/performance.md``; without it a JSON
summary is printed.

Environment: ``DPP_BENCH_POSTGRES_URL`` (default ``postgresql://postgres@127.0.0.1:5432/postgres``)
is only used to create and drop the ``dpp_bench`` database.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # `python bench/ingest.py` puts bench/ first, not the root
    sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402

from bench import ceiling, report  # noqa: E402
from bench.inbox import inbox_latency, wait_drained  # noqa: E402
from bench.payloads import Builder  # noqa: E402

BENCH_DB = "dpp_bench"
ADMIN_URL = os.environ.get(
    "DPP_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
RESULTS_DIR = ROOT / "bench" / "results"


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# --- database ---------------------------------------------------------------------------------


def bench_url() -> str:
    base, _, _ = ADMIN_URL.rpartition("/")
    return f"{base}/{BENCH_DB}"


def recreate_db() -> None:
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {BENCH_DB} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {BENCH_DB}")


def drop_db() -> None:
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {BENCH_DB} WITH (FORCE)")


def prepare_db(secrets: dict[str, str]) -> str:
    """Fresh, migrated dpp_bench with the test organisation; returns an events:write key."""
    from dpp_lib.store.api_keys import create_key
    from dpp_lib.store.config_tables import apply_config
    from dpp_lib.store.db import make_engine
    from dpp_lib.store.migrate import upgrade
    from tests.support import org_config

    recreate_db()
    engine = make_engine(bench_url())
    try:
        upgrade(engine)
        with engine.begin() as conn:
            apply_config(conn, org_config())
            _, plaintext = create_key(conn, name="bench", permissions=["events:write"])
    finally:
        engine.dispose()
    return plaintext


def server_version() -> str:
    with psycopg.connect(ADMIN_URL) as conn:
        row = conn.execute("show server_version").fetchone()
    return str(row[0]) if row else "?"


# --- processes --------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _bin(name: str) -> str:
    path = Path(sys.executable).parent / name
    return str(path) if path.exists() else name


def _has(module: str) -> bool:
    try:
        __import__(module)
    except ImportError:
        return False
    return True


def service_env(secrets_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DPP_")}
    env |= {
        "DPP_DATABASE_URL": bench_url(),
        "DPP_SECRETS_DIR": str(secrets_dir),
        "DPP_ENVIRONMENT": "test",
        "PYTHONPATH": str(ROOT),
    }
    return env


def api_command(port: int | str, workers: int | str) -> list[str]:
    cmd = [
        _bin("uvicorn"),
        "--factory",
        "ingest_service.app:app_factory",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--no-access-log",
        "--log-level",
        "warning",
    ]
    if _has("uvloop"):
        cmd += ["--loop", "uvloop"]
    if _has("httptools"):
        cmd += ["--http", "httptools"]
    return cmd


@contextlib.contextmanager
def process(cmd: list[str], env: dict[str, str], name: str) -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(cmd, env=env, cwd=ROOT, stdin=subprocess.DEVNULL)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                log(f"{name} did not stop on SIGTERM; killing pid {proc.pid}")
                proc.kill()
                proc.wait()


def wait_http(port: int, proc: subprocess.Popen[bytes], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"process {proc.args!r} exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                if s.recv(64).startswith(b"HTTP/1.1 2"):
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"nothing answered on port {port} within {timeout} s")


def run_loadgen(spec: dict[str, Any], workdir: Path) -> dict[str, Any]:
    path = workdir / f"spec-{uuid.uuid4().hex[:8]}.json"
    path.write_text(json.dumps(spec))
    done = subprocess.run(
        [sys.executable, "-m", "bench.loadgen", str(path)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"load process failed: {done.stderr.decode()[-2000:]}")
    result: dict[str, Any] = json.loads(done.stdout.decode().strip().splitlines()[-1])
    return result


# --- one end-to-end run -----------------------------------------------------------------------


PHASES = ("closed", "paced", "accept_only")


def end_to_end(
    workers: int, args: argparse.Namespace, secrets: dict[str, str], workdir: Path
) -> dict[str, Any]:
    """The three phases for one API worker count, each on a fresh database:

    - ``closed``: API and worker running, load sent as fast as the API answers;
    - ``paced``: API and worker running, load paced at ``--rate`` (the target rate), latency
      counted from each request's due time;
    - ``accept_only``: the API alone (the ingestion path against the INSERT ceiling), then the
      worker started on the backlog to measure how fast it drains it.
    """
    run: dict[str, Any] = {"api_workers": workers}
    for phase in PHASES:
        run[phase] = _phase(phase, workers, args, secrets, workdir)
    return run


def _phase(
    phase: str, workers: int, args: argparse.Namespace, secrets: dict[str, str], workdir: Path
) -> dict[str, Any]:
    from dpp_lib.settings import Settings

    log(f"API workers={workers}, phase {phase}: fresh {BENCH_DB}")
    api_key = prepare_db(secrets)
    env = service_env(workdir / "secrets")
    port = free_port()
    batch_size = Settings(_env_file=None).worker_batch_size
    rate = args.rate if phase == "paced" else None
    with contextlib.ExitStack() as stack:
        api = stack.enter_context(process(api_command(port, workers), env, "api"))
        worker = None
        if phase != "accept_only":
            worker = stack.enter_context(process([_bin("dpp"), "worker"], env, "worker"))
        wait_http(port, api)
        groups = {"api": api.pid} | ({"worker": worker.pid} if worker else {})
        spec = {
            "host": "127.0.0.1",
            "port": port,
            "concurrency": args.concurrency,
            "requests": args.requests,
            "seed": args.seed,
            "fixtures": str(fixtures()),
            "secrets": secrets,
            "api_key": api_key,
            "health_requests": args.health if phase == "closed" else 0,
            "warmup_requests": args.warmup,
            "cpu_groups": groups,
            "dsn": bench_url(),
            "rate": rate,
        }
        load = run_loadgen(spec, workdir)
        send = load["send"]
        log(
            f"sent {send['requests']} in {send['elapsed_s']:.1f} s "
            f"({send['rate_per_s']:.0f}/s, p50 {send['p50_ms']:.1f} ms, "
            f"p99 {send['p99_ms']:.1f} ms)"
        )
        out: dict[str, Any] = {"port": port, "rate": rate, "load": load}
        accepted = send["ok"] + load.get("warmup", {}).get("ok", 0)
        if worker is None:
            # The backlog: how fast one worker drains what the API accepted.
            started = time.time()
            worker = stack.enter_context(process([_bin("dpp"), "worker"], env, "worker"))
            drained, at, states = wait_drained(bench_url(), accepted, timeout=args.backlog_timeout)
            processed = accepted - states.get("pending", 0)
            out["backlog"] = {
                "drained": drained,
                "rows": accepted,
                "seconds": at - started,
                "rows_per_s": processed / (at - started),
                "states": states,
            }
            log(
                f"backlog of {accepted:,}: "
                + ("drained" if drained else "NOT drained")
                + f" in {at - started:.1f} s ({processed / (at - started):,.0f} rows/s)"
            )
            return out
        drained, at, states = wait_drained(bench_url(), accepted, timeout=args.drain_timeout)
        if worker.poll() is not None:
            raise RuntimeError("the worker exited during the run")
    stopped = time.time()
    inbox = inbox_latency(bench_url(), drained, at, stopped, batch_size, since=send["started"])
    inbox["states_at_cutoff"] = states
    inbox["pending_at_cutoff"] = states.get("pending", 0)
    inbox["cutoff_after_last_send_s"] = at - send["finished"]
    inbox["worker_rows_per_s"] = (send["ok"] - inbox["pending_at_cutoff"]) / (at - send["started"])
    c, b = inbox["claimed"], inbox["stored_bound"]
    log(
        ("drained" if drained else f"NOT drained ({inbox['pending_at_cutoff']} pending)")
        + f" {at - send['finished']:.2f} s after the last send; receipt→claimed p99 "
        f"{_ge(c, 'p99')}{c['p99']:.2f} s, stored(bound) p99 {_ge(b, 'p99')}{b['p99']:.2f} s"
    )
    out["inbox"] = inbox
    return out


def _ge(stats: dict[str, Any], name: str) -> str:
    return "≥ " if stats[f"{name}_is_lower_bound"] else ""


def client_ceiling(
    args: argparse.Namespace, secrets: dict[str, str], workdir: Path
) -> dict[str, Any]:
    port = free_port()
    cmd = [sys.executable, "-m", "bench.stub_server", str(port)]
    with process(cmd, {**os.environ, "PYTHONPATH": str(ROOT)}, "stub") as stub:
        wait_http(port, stub)
        spec = {
            "host": "127.0.0.1",
            "port": port,
            "concurrency": args.concurrency,
            "requests": args.requests,
            "seed": args.seed,
            "fixtures": str(fixtures()),
            "secrets": secrets,
            "api_key": "dpp_stub",
            "health_requests": 0,
            "cpu_groups": {"stub": stub.pid},
        }
        result = run_loadgen(spec, workdir)
    send = result["send"]
    log(f"client ceiling (stub server): {send['rate_per_s']:.0f}/s, p99 {send['p99_ms']:.1f} ms")
    return dict(send)


def ceilings(args: argparse.Namespace, secrets: dict[str, str]) -> dict[str, Any]:
    """The same Postgres with nothing else running: ~2 KB bodies and the benchmark's own."""
    from dpp_lib.store.db import make_engine
    from dpp_lib.store.migrate import upgrade

    recreate_db()
    engine = make_engine(bench_url())
    upgrade(engine)
    engine.dispose()
    small = [ceiling.two_kb_body(fixtures())]
    mix = [d.body for d in Builder(fixtures(), secrets, "dpp_x", seed=99).mix(400)]
    out: dict[str, Any] = {
        "two_kb_body_bytes": len(small[0]),
        "mix_mean_body_bytes": sum(map(len, mix)) / len(mix),
        "connections": args.concurrency,
        "seconds": args.ceiling_seconds,
    }
    for label, bodies in (("2kb", small), ("mix", mix)):
        for conns, name in ((1, "1conn"), (args.concurrency, "nconn")):
            rate = ceiling.insert_rate(bench_url(), bodies, conns, args.ceiling_seconds)
            out[f"{label}_{name}_rows_per_s"] = rate
            log(f"INSERT ceiling, {label} bodies, {conns} connection(s): {rate:,.0f} rows/s")
    return out


def fixtures() -> Path:
    from tests.support import FIXTURES

    return Path(FIXTURES)


# --- summary, targets, docs -------------------------------------------------------------------


def machine() -> dict[str, Any]:
    load = os.getloadavg()
    return {
        "nproc": os.cpu_count(),
        "python": platform.python_version(),
        "postgres": server_version(),
        "platform": platform.platform(),
        "cpu": _cpu_model(),
        "loadavg_at_start": [round(x, 2) for x in load],
    }


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "?"


# --- main -------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--write-docs",
        action="store_true",
        help="rewrite the results section of docs/performance.md",
    )
    parser.add_argument("--workers", default="1,2", help="API worker counts to run (1,2)")
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument(
        "--health",
        type=int,
        default=10_000,
        help="GET /health requests before the send phase (0: skip)",
    )
    parser.add_argument("--ceiling-seconds", type=float, default=5.0)
    parser.add_argument(
        "--drain-timeout",
        type=float,
        default=30.0,
        help="seconds to wait for the worker after the last send",
    )
    parser.add_argument(
        "--rate",
        type=float,
        default=report.TARGET_RATE,
        help="the paced phase's rate in requests/s (default: the target, 1,000)",
    )
    parser.add_argument(
        "--backlog-timeout",
        type=float,
        default=180.0,
        help="seconds the worker gets to drain the accept-only phase's backlog",
    )
    parser.add_argument(
        "--warmup",
        type=int,
        default=2_000,
        help="deliveries sent (same pace, other ids) before each measured send",
    )
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--keep-db", action="store_true", help="leave dpp_bench behind")
    args = parser.parse_args(argv)

    import warnings

    # tests.support imports the test client, whose httpx deprecation notice is noise here.
    warnings.filterwarnings("ignore", message=".*starlette.testclient.*")
    from dpp_lib.settings import Settings
    from tests.support import TEST_SECRETS

    t0 = time.perf_counter()
    secrets = dict(TEST_SECRETS)
    settings = Settings(_env_file=None)
    result: dict[str, Any] = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine(),
        "runs": [],
    }
    with tempfile.TemporaryDirectory(prefix="dpp-bench-") as tmp:
        workdir = Path(tmp)
        secrets_dir = workdir / "secrets"
        secrets_dir.mkdir(mode=0o700)
        for name, value in secrets.items():
            (secrets_dir / name).write_text(value)
        try:
            for workers in (int(w) for w in args.workers.split(",")):
                result["runs"].append(end_to_end(workers, args, secrets, workdir))
            result["client_ceiling"] = client_ceiling(args, secrets, workdir)
            result["ceiling"] = ceilings(args, secrets)
        finally:
            if not args.keep_db:
                drop_db()
    first = result["runs"][0]["closed"]["load"]
    result["config"] = {
        "api_command": ["uvicorn", *api_command("<free port>", "N")[1:]],
        "requests": args.requests,
        "concurrency": args.concurrency,
        "worker_batch_size": settings.worker_batch_size,
        "worker_poll_seconds": settings.worker_poll_seconds,
        "mean_body_bytes": first["body_bytes"] / args.requests,
        "drain_timeout_s": args.drain_timeout,
        "backlog_timeout_s": args.backlog_timeout,
        "rate": args.rate,
        "health_requests": args.health,
        "warmup_requests": args.warmup,
    }
    result["total_s"] = time.perf_counter() - t0
    RESULTS_DIR.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    (RESULTS_DIR / f"ingest-{stamp}.json").write_text(json.dumps(result, indent=1))
    if args.write_docs:
        report.write_docs(result)
        log(f"wrote {report.DOCS.relative_to(ROOT)}")
    print(json.dumps(report.summary(result), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
