"""The analyst's workspace: the getting-started notebook runs (papermill, and nbval-lax as
analysts' CI would), its library answers what the metric functions answer, and `dpp lab`
serves JupyterLab with the project's kernel and nothing loaded from the internet."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

import httpx
import nbformat
import papermill
import pytest

from dpp_lib import lab
from dpp_lib.errors import DppError
from dpp_lib.explore import UnknownMetric, open_workspace
from dpp_lib.metrics import flow
from dpp_lib.notebook import moment
from dpp_lib.settings import Settings
from ingest_service.runtime import free_port
from tests.conftest import DEMO_AS_OF, DemoOrg
from tests.dashboards.conftest import CHROMIUM, CHROMIUM_ARGS

ROOT = Path(__file__).resolve().parents[2]
GETTING_STARTED = ROOT / "notebooks" / "explore" / "getting_started.ipynb"

pytestmark = pytest.mark.slow


def test_workspace_loads_one_stream_and_answers_like_the_metric_functions(
    demo_org: DemoOrg,
) -> None:
    as_of = moment(DEMO_AS_OF)
    ws = open_workspace(demo_org.engine, stream="payments", as_of=as_of, window_days=30)
    assert ws.stream.name == "payments"
    tables = ws.tables()
    assert tables.loc["cycles", "rows"] > 0 and tables.loc["transitions", "rows"] > 0
    # Every row shown is the stream's and inside the window.
    cycles = ws.frames["cycles"]
    assert set(cycles["delivery_stream_id"]) == {ws.stream.stream_id}
    assert cycles["completed_at"].min() >= ws.since
    assert set(ws.frames["transitions"]["delivery_stream_id"]) == {ws.stream.stream_id}
    # DuckDB sees the same rows.
    counted = ws.sql("select count(*) as n from cycles")
    assert int(counted["n"].iloc[0]) == len(cycles)
    # A metric by name equals the function called on the same stream's frames.
    direct = flow.cycle_time(cycles, as_of=as_of, window_days=30)
    result = ws.metric("cycle_time")
    assert (result.p50, result.p85, result.sample_size) == (
        direct.p50,
        direct.p85,
        direct.sample_size,
    )
    assert "flow_efficiency" in ws.metrics().index
    with pytest.raises(UnknownMetric, match="unknown metric 'cycle_tme'"):
        ws.metric("cycle_tme")
    with pytest.raises(DppError, match="unknown delivery stream 'nope'"):
        open_workspace(demo_org.engine, stream="nope", as_of=as_of)


def test_getting_started_runs_with_papermill(demo_sqlite: DemoOrg, tmp_path: Path) -> None:
    out = tmp_path / "getting_started.ipynb"
    papermill.execute_notebook(
        str(GETTING_STARTED),
        str(out),
        parameters={"stream": "payments", "as_of": DEMO_AS_OF, "database_url": demo_sqlite.url},
        kernel_name="python3",
        cwd=str(GETTING_STARTED.parent),
        progress_bar=False,
    )
    nb = nbformat.read(out, as_version=4)
    text = "\n".join(
        str(o.get("text", "")) + str(o.get("data", {}).get("text/plain", ""))
        for c in nb.cells
        if c.cell_type == "code"
        for o in c.get("outputs", [])
    )
    assert "Payments (payments): 13 Oct 2026 to 12 Nov 2026" in text
    assert "cycle time p50" in text
    svgs = [
        o["data"]["image/svg+xml"]
        for c in nb.cells
        for o in c.get("outputs", [])
        if "image/svg+xml" in o.get("data", {})
    ]
    assert len(svgs) == 1 and "<svg" in svgs[0] and "cycle time" in svgs[0]
    assert not any(o.get("output_type") == "error" for c in nb.cells for o in c.get("outputs", []))


def test_getting_started_passes_nbval_lax(demo_sqlite: DemoOrg, tmp_path: Path) -> None:
    env = {**os.environ, "DPP_DATABASE_URL": demo_sqlite.url}
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "--nbval-lax",
            "-q",
            "-p",
            "no:cacheprovider",
            "--rootdir",
            str(tmp_path),
            str(GETTING_STARTED),
        ],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    assert " passed" in run.stdout and "failed" not in run.stdout


@pytest.fixture
def jupyter_lab(demo_sqlite: DemoOrg, tmp_path: Path) -> Iterator[tuple[str, str]]:
    settings = Settings(
        environment="test",
        database_url=demo_sqlite.url,
        var_dir=tmp_path / "var",
        secrets_dir=demo_sqlite.settings.secrets_dir,
        notebooks_dir=tmp_path / "notebooks",
    )
    # JupyterLab writes checkpoints beside what it opens: give it a copy.
    shutil.copytree(GETTING_STARTED.parent, tmp_path / "notebooks" / "explore")
    lab.prepare(settings)
    port = free_port()
    token = "lab-test-token"
    env = {**lab.lab_env(settings), "JUPYTER_TOKEN": token}
    argv = lab.lab_argv(settings, port=port, open_browser=False)
    proc = subprocess.Popen(
        argv,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=open(tmp_path / "lab.log", "w"),  # noqa: SIM115 - closed with the process
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/api/status", params={"token": token}).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError((tmp_path / "lab.log").read_text()[-3000:])
            time.sleep(0.3)
        yield base, token
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()


def test_dpp_lab_serves_jupyterlab_offline_with_the_project_kernel(
    jupyter_lab: tuple[str, str],
) -> None:
    from playwright.sync_api import sync_playwright

    base, token = jupyter_lab
    specs = httpx.get(f"{base}/api/kernelspecs", params={"token": token}).json()
    python3 = specs["kernelspecs"]["python3"]["spec"]
    assert python3["argv"][0] == sys.executable and python3["display_name"] == "Python 3 (DPP)"
    # The offline switches are in force.
    page = httpx.get(f"{base}/lab", params={"token": token})
    assert page.status_code == 200 and "jupyter-config-data" in page.text

    outside: list[str] = []
    errors: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            tab = browser.new_page()
            tab.on(
                "request",
                lambda r: (
                    outside.append(r.url)
                    if urlparse(r.url).hostname not in ("127.0.0.1", None)
                    and not r.url.startswith("data:")
                    else None
                ),
            )
            tab.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            tab.goto(f"{base}/lab/tree/explore/getting_started.ipynb?token={token}")
            tab.wait_for_selector(".jp-Notebook .jp-Cell", timeout=60_000)
            tab.wait_for_selector(
                ".jp-MarkdownOutput h1:has-text('Getting started with DPP data')",
                timeout=30_000,
            )
            # Opening the notebook started a kernel of the project's spec, and it came up.
            state = _kernel_state(base, token, "explore/getting_started.ipynb")
        finally:
            browser.close()
    assert state == ("python3", "idle")
    assert outside == []
    assert errors == []


def _kernel_state(base: str, token: str, path: str) -> tuple[str, str]:
    deadline = time.monotonic() + 60
    while True:
        sessions = httpx.get(f"{base}/api/sessions", params={"token": token}).json()
        for s in sessions:
            if s["path"] == path and s["kernel"]["execution_state"] == "idle":
                return s["kernel"]["name"], s["kernel"]["execution_state"]
        if time.monotonic() > deadline:
            return ("no idle kernel", repr(sessions))
        time.sleep(0.5)
