"""Dashboards benchmark (``make bench-dashboards``): how long a leader waits for a Voila page,
in Chromium, through the front door, on the demo organisation and on the metric-engine
benchmark's 4-million-event Postgres dataset (``bench/api.py ensure_dataset``: reused when
complete, else generated, about 10 minutes).

Per dataset, per page (``PAGES``; a page whose notebook does not exist yet is skipped), with
Voila serving that page's notebook alone (so the machine holds only its kernels):

1. *warm*: ``--pool`` preheated kernels; before each load the bench waits until Voila's
   processes are idle (the pool refilled, its kernels parked in ``wait_for_request``), then
   opens the page in a new browser context (a first visit: no cached Javascript); then the
   idle kernels' resident memory is recorded;
2. *cold*: no preheating (pool 0): every load starts its kernel;

then ``--users`` simultaneous users (signed-in viewers, each of one delivery stream, in
``--browsers`` Chromium processes) open the Overview at once on ``--users-on``, with
``--users-pool`` preheated kernels. Timings come from inside the page
(``bench/dashboards_browser.py``): navigation start → first chart, → every zone drawn; an
error is a timeout, an error message on the page, a console error, a zone still loading or a
request leaving the machine. A memory guard kills the benchmark's kernels when the machine's
available memory falls below ``--min-free-gb`` (a page's kernels can need gigabytes).

Results: JSON in ``bench/results/dashboards-*.json``; ``--write-docs`` rewrites the
bench-dashboards section of ``docs/performance.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from playwright.async_api import Browser, async_playwright  # noqa: E402

from bench import api, procstat  # noqa: E402
from bench import dashboards_report as report  # noqa: E402
from bench.dashboards_browser import Load, PageSpec, load  # noqa: E402
from bench.dashboards_site import (  # noqa: E402
    NOTEBOOKS,
    Dataset,
    MemoryGuard,
    Site,
    Users,
    available_gb,
    big_dataset,
    demo_dataset,
    kernels_rss_mb,
    kill_processes_of,
    log,
    make_users,
    retire_users,
    site,
    wait_quiet,
)
from bench.loadgen import pct  # noqa: E402

RESULTS = ROOT / "bench" / "results"
AS_OF = "2026-11-12T18:00:00Z"  # inside both datasets (they end 2026-11-16)
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
CHART = "figure.dpp-chart svg"
PAGES = (
    PageSpec("overview", "overview.ipynb", "?stream={stream}&as_of={as_of}", "viewer", CHART,
             "#dpp-rendered"),
    PageSpec("cross_stream", "cross_stream.ipynb", "?as_of={as_of}", "admin", CHART,
             "#dpp-rendered"),
    PageSpec("admin", "admin.ipynb", "?as_of={as_of}", "admin", CHART, "#dpp-rendered"),
    PageSpec("pulse_survey", "pulse_survey.ipynb", "?stream={stream}", "member", None,
             "#dpp-pulse-ready", zones=".dpp-pulse"),
)  # fmt: skip


# --- phases -----------------------------------------------------------------------------------


async def _browser(p: Any) -> Browser:
    browser: Browser = await p.chromium.launch(
        executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
    )
    return browser


async def sequential(
    where: Site, spec: PageSpec, users: Users, *, repeats: int, timeout: float
) -> list[Load]:
    token = {"viewer": users.viewers[0], "admin": users.admin, "member": users.member}[spec.role]
    out = []
    async with async_playwright() as p:
        browser = await _browser(p)
        for i in range(repeats):
            waited = await asyncio.to_thread(wait_quiet, where.voila_pid)
            one = await load(
                browser, base=where.base, spec=spec, user=spec.role, token=token,
                stream=users.streams[0], as_of=AS_OF, timeout_s=timeout,
            )  # fmt: skip
            log(f"  {spec.key} #{i + 1}: {_brief(one)} (waited {waited} s for an idle Voila)")
            out.append(one)
        await browser.close()
    return out


def idle_kernels_mb(where: Site) -> list[int]:
    """The resident memory of the site's kernels once Voila is idle again (the pool)."""
    wait_quiet(where.voila_pid)
    return kernels_rss_mb(where.var_dir)


async def simultaneous(
    where: Site,
    spec: PageSpec,
    users: Users,
    *,
    browsers: int,
    timeout: float,
    min_free_gb: float,
) -> tuple[list[Load], dict[str, Any]]:
    """Every viewer opens ``spec`` at once. The machine's available memory is watched: below
    ``min_free_gb`` the phase is abandoned (every kernel needs a few hundred MB), the
    unfinished loads counted as errors, so the benchmark never starves the machine."""
    async with async_playwright() as p:
        pool = [await _browser(p) for _ in range(browsers)]
        await asyncio.to_thread(wait_quiet, where.voila_pid)
        started = time.perf_counter()
        tasks = [
            asyncio.create_task(
                load(
                    pool[i % browsers],
                    base=where.base,
                    spec=spec,
                    user=f"viewer {i}",
                    token=token,
                    stream=users.streams[i],
                    as_of=AS_OF,
                    timeout_s=timeout,
                )
            )
            for i, token in enumerate(users.viewers)
        ]
        lowest, aborted = float("inf"), False
        while not all(t.done() for t in tasks):
            await asyncio.sleep(0.5)
            lowest = min(lowest, available_gb())
            if lowest < min_free_gb:
                aborted = True
                log(f"  only {lowest:.1f} GB of memory left: abandoning the phase")
                for t in tasks:
                    t.cancel()
                break
        await asyncio.gather(*tasks, return_exceptions=True)
        elapsed = time.perf_counter() - started
        for browser in pool:
            with contextlib.suppress(Exception):
                await browser.close()
    loads = [
        t.result()
        if not t.cancelled()
        else Load(spec.key, f"viewer {i}", "", error="abandoned: the machine ran low on memory")
        for i, t in enumerate(tasks)
    ]
    return loads, {
        "elapsed_s": round(elapsed, 1),
        "lowest_available_gb": round(lowest, 1),
        "abandoned": aborted,
    }


def _brief(one: Load) -> str:
    if not one.ok:
        return f"ERROR {one.error}"
    first = f"{one.first_chart_ms / 1000:.2f} s" if one.first_chart_ms else "—"
    return f"first chart {first}, drawn {(one.done_ms or 0) / 1000:.2f} s"


def summarise(loads: list[Load]) -> dict[str, Any]:
    ok = [x for x in loads if x.ok]

    def stat(name: str) -> dict[str, float | None]:
        values = sorted(v for x in ok if (v := getattr(x, name)) is not None)
        return {
            "p50": round(pct(values, 50), 1) if values else None,
            "p95": round(pct(values, 95), 1) if values else None,
            "max": round(max(values), 1) if values else None,
        }

    fields = ("ttfb_ms", "html_end_ms", "dom_content_loaded_ms", "first_chart_ms", "done_ms")
    return {
        "n": len(loads),
        "errors": len(loads) - len(ok),
        "error_samples": sorted({x.error or "" for x in loads if not x.ok})[:5],
        **{name: stat(name) for name in fields},
        "loads": [x.as_dict() for x in loads],
    }


def run_dataset(
    data: Dataset, args: argparse.Namespace, workdir: Path, secrets: Path
) -> dict[str, Any]:
    """Each page alone (Voila serving only its notebook), warm then cold; then the users."""
    pages = [s for s in PAGES if (NOTEBOOKS / s.notebook).exists() and s.key in args.pages]
    wanted = args.users if data.key == args.users_on else 0
    users = make_users(data.url, data.delivery, max(1, wanted))  # the pages need a viewer
    repeats = args.repeats if data.key == "demo" else args.big_repeats
    out: dict[str, Any] = {"dataset": data.key, "info": data.info, "pages": {}}
    try:
        for spec in pages:
            for mode, pool in (("warm", args.pool), ("cold", 0)):
                log(f"{data.key}: {spec.key}, {mode} (pool {pool})")
                with site(data.url, workdir, secrets, pool=pool, notebooks=[spec.notebook]) as at:
                    loads = asyncio.run(
                        sequential(at, spec, users, repeats=repeats, timeout=args.timeout)
                    )
                    summary = summarise(loads)
                    if pool:
                        summary["idle_kernels_mb"] = idle_kernels_mb(at)
                out["pages"].setdefault(spec.key, {})[mode] = summary
        if data.key == args.users_on and args.users:
            out["users"] = users_phase(data, args, workdir, secrets, users)
    finally:
        retire_users(data.url, users)
    return out


def users_phase(
    data: Dataset, args: argparse.Namespace, workdir: Path, secrets: Path, users: Users
) -> dict[str, Any]:
    log(f"{data.key}: {args.users} simultaneous users (pool {args.users_pool})")
    spec = PAGES[0]
    with site(data.url, workdir, secrets, pool=args.users_pool, notebooks=[spec.notebook]) as at:
        cpu_before = procstat.snapshot({"voila": at.voila_pid, "api": at.api_pid})
        loads, phase = asyncio.run(
            simultaneous(
                at,
                spec,
                users,
                browsers=args.browsers,
                timeout=args.users_timeout,
                min_free_gb=args.min_free_gb,
            )
        )
        cpu_after = procstat.snapshot({"voila": at.voila_pid, "api": at.api_pid})
    out = summarise(loads) | {
        "users": args.users,
        "pool": args.users_pool,
        "browsers": args.browsers,
        **phase,
        "cpu_s": {k: round(cpu_after[k] - cpu_before[k], 1) for k in cpu_after},
    }
    log(f"  p95 drawn {out['done_ms']['p95']} ms, errors {out['errors']}")
    return out


# --- main -------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--url", default=os.environ.get("DPP_BENCH_METRICS_URL", api.DEFAULT_URL))
    parser.add_argument("--reuse", action="store_true", help="never generate the 4M dataset")
    parser.add_argument("--datasets", default="demo,4m", help="comma-separated: demo, 4m")
    parser.add_argument("--pages", default=",".join(s.key for s in PAGES))
    parser.add_argument("--repeats", type=int, default=3, help="loads per page and mode (demo)")
    parser.add_argument("--big-repeats", type=int, default=1, help="loads per page and mode (4m)")
    parser.add_argument("--pool", type=int, default=1, help="preheated kernels (warm)")
    parser.add_argument("--timeout", type=float, default=900.0, help="one load, seconds")
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--users-on", default="demo", help="the dataset of the simultaneous users")
    parser.add_argument("--users-pool", type=int, default=4)
    parser.add_argument("--users-timeout", type=float, default=900.0)
    parser.add_argument(
        "--min-free-gb",
        type=float,
        default=3.0,
        help="kill the benchmark's kernels (and abandon the users phase) below this",
    )
    parser.add_argument("--browsers", type=int, default=5, help="Chromium processes for the users")
    parser.add_argument("--write-docs", action="store_true")
    args = parser.parse_args(argv)
    args.datasets = [d.strip() for d in args.datasets.split(",") if d.strip()]
    args.pages = [p.strip() for p in args.pages.split(",") if p.strip()]
    if args.users_on not in args.datasets:
        args.users_on = args.datasets[-1]
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    result: dict[str, Any] = {
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "code": api.code_version(),
        "machine": api.machine(args.url) | {"memory_gb": _memory_gb()},
        "settings": {k: v for k, v in vars(args).items() if k != "url"},
        "as_of": AS_OF,
        "pages_measured": [s.key for s in PAGES if (NOTEBOOKS / s.notebook).exists()],
        "datasets": {},
    }
    workdir = Path(tempfile.mkdtemp(prefix="dpp-bench-dashboards-"))
    guard = MemoryGuard(workdir, args.min_free_gb)
    try:
        with guard:
            secrets = api.write_secrets(workdir)
            for key in args.datasets:
                data = demo_dataset(workdir, secrets) if key == "demo" else big_dataset(args)
                result["datasets"][key] = run_dataset(data, args, workdir, secrets)
    finally:
        kill_processes_of(workdir)
        shutil.rmtree(workdir, ignore_errors=True)
    result["memory"] = {"lowest_available_gb": round(guard.lowest, 1), "guard": guard.trips}
    result["seconds"] = round(time.perf_counter() - started)
    result["targets"] = report.targets(result)
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"dashboards-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
    path.write_text(json.dumps(result, indent=1, default=str))
    log(f"results in {path.relative_to(ROOT)}")
    print(json.dumps(report.compact(result), indent=1, default=str))
    if args.write_docs:
        report.write_docs(result)
    return 0


def _memory_gb() -> float | None:
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024 / 1024, 1)
    return None


if __name__ == "__main__":
    sys.exit(main())
