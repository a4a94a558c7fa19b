"""Produce a retro report: run ``notebooks/reports/sprint_retro.ipynb`` with papermill,
export it with nbconvert (no code, no prompts, charts as inline SVG, nothing loaded from
anywhere) and publish it with its sidecar; the index is rewritten after each report.

The kernel reads the database through ``DPP_DATABASE_URL`` in its environment, set from
the caller's settings: the URL (which may hold a password) is never a papermill parameter,
because papermill writes parameters into the executed notebook.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import nbformat
import sqlalchemy as sa

from dpp_lib.reports import index
from dpp_lib.reports.check import check_self_contained
from dpp_lib.reports.errors import RenderFailed, ReportError
from dpp_lib.reports.retro import SprintInfo, find_sprint, report_moment
from dpp_lib.settings import Settings
from dpp_lib.store.db import make_engine

TEMPLATES = Path(__file__).parent / "templates"
TEMPLATE = "dpp_report"
RETRO_NOTEBOOK = Path("reports") / "sprint_retro.ipynb"  # under Settings.notebooks_dir
RUNS = Path(index.RUNS) / "retro"
KERNEL = "python3"
CELL_TIMEOUT_SECONDS = 600
SVG = "image/svg+xml"

_env_lock = threading.Lock()


@contextmanager
def kernel_environment(values: Mapping[str, str]) -> Iterator[None]:
    """``values`` in the environment a kernel started now inherits, then the old values
    back (one kernel start at a time per process)."""
    with _env_lock:
        before = {k: os.environ.get(k) for k in values}
        os.environ.update(values)
        try:
            yield
        finally:
            for key, value in before.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value


def execute(
    notebook: Path, output: Path, parameters: Mapping[str, Any], *, database_url: str
) -> nbformat.NotebookNode:
    """Run ``notebook`` with ``parameters`` into ``output`` (kept also when it fails)."""
    import papermill  # type: ignore[import-untyped]
    from papermill.exceptions import PapermillExecutionError  # type: ignore[import-untyped]

    if not notebook.is_file():
        raise ReportError(f"report notebook {notebook} not found (DPP_NOTEBOOKS_DIR)")
    output.parent.mkdir(parents=True, exist_ok=True)
    try:
        with kernel_environment({"DPP_DATABASE_URL": database_url}):
            nb = papermill.execute_notebook(
                str(notebook),
                str(output),
                parameters=dict(parameters),
                kernel_name=KERNEL,
                progress_bar=False,
                log_output=False,
                execution_timeout=CELL_TIMEOUT_SECONDS,
            )
    except PapermillExecutionError as exc:
        raise RenderFailed(
            f"{notebook.name} failed with {dict(parameters)}: {exc.ename}: {exc.evalue} "
            f"(executed notebook: {output})"
        ) from None
    result: nbformat.NotebookNode = nb
    return result


def chart_count(nb: nbformat.NotebookNode) -> int:
    """Charts shown by the notebook: its SVG outputs."""
    return sum(
        1
        for cell in nb.cells
        if cell.cell_type == "code"
        for out in cell.get("outputs", [])
        if SVG in out.get("data", {})
    )


def export_html(nb: nbformat.NotebookNode, *, name: str) -> str:
    """The notebook as one self-contained page: outputs and Markdown only. ``name`` is the
    file the page is for, in the error when it is not self-contained."""
    from nbconvert import HTMLExporter

    exporter = HTMLExporter(  # type: ignore[no-untyped-call]
        extra_template_basedirs=[str(TEMPLATES)],
        template_name=TEMPLATE,
        exclude_input=True,
        exclude_input_prompt=True,
        exclude_output_prompt=True,
    )
    page, _ = exporter.from_notebook_node(nb)
    check_self_contained(page, name=name)
    result: str = page
    return result


@dataclass(frozen=True)
class Target:
    """Where one sprint's report goes under a reports directory."""

    root: Path
    info: SprintInfo

    @property
    def page(self) -> str:
        return f"{self.info.stream.name}/{self.info.slug}.html"

    @property
    def run(self) -> str:
        return f"{RUNS.as_posix()}/{self.info.stream.name}/{self.info.slug}.ipynb"


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def render_sprint_report(
    settings: Settings,
    *,
    stream: str,
    sprint: str,
    as_of: str | datetime | None = "",
    out: Path | None = None,
    engine: sa.Engine | None = None,
    now: datetime | None = None,
) -> index.Report:
    """Render one sprint's report into ``out`` (default ``settings.reports_dir``):
    ``<stream>/<sprint-slug>.html`` and its sidecar, then the index. The stream and sprint
    are checked first, so an unknown one is an error naming it, not a failed notebook."""
    now = now or datetime.now(UTC)
    url = settings.resolved_database_url()
    own = engine is None
    engine = engine or make_engine(url)
    try:
        with engine.connect() as conn:
            info = find_sprint(conn, stream=stream, sprint=sprint, now=now)
    finally:
        if own:
            engine.dispose()
    at = report_moment(info, as_of, now)
    return render_target(
        Target((out or settings.reports_dir).resolve(), info),
        as_of=at,
        notebook=settings.notebooks_dir / RETRO_NOTEBOOK,
        database_url=url,
    )


def render_target(
    target: Target, *, as_of: datetime, notebook: Path, database_url: str
) -> index.Report:
    """Run the report notebook for ``target`` and publish it."""
    info = target.info
    parameters = {"stream": info.stream.name, "sprint": info.name, "as_of": _iso(as_of)}
    nb = execute(notebook, target.root / target.run, parameters, database_url=database_url)
    return publish(nb, target, as_of=as_of)


def publish(nb: nbformat.NotebookNode, target: Target, *, as_of: datetime) -> index.Report:
    """Export the executed notebook ``nb`` and write the page, its sidecar and the index;
    nothing is written when the page is not self-contained."""
    info, root = target.info, target.root
    generated = datetime.now(UTC)
    report = index.Report(
        stream=info.stream.name,
        stream_id=str(info.stream.stream_id),
        stream_display_name=info.stream.display_name,
        sprint=info.name,
        sprint_id=str(info.sprint_id),
        slug=info.slug,
        start_date=info.start_date.isoformat(),
        end_date=info.end_date.isoformat(),
        as_of=_iso(as_of),
        generated_at=_iso(generated),
        path=target.page,
        notebook=target.run,
        charts=chart_count(nb),
    )
    nb.metadata["title"] = f"{info.name} · {info.stream.display_name} · sprint retro"
    nb.metadata["dpp"] = {
        "charts": report.charts,
        "stream": info.stream.name,
        "sprint": info.name,
        "generated_at": f"{generated:%d %b %Y %H:%M} UTC",
        "notebook": RETRO_NOTEBOOK.as_posix(),
    }
    page = export_html(nb, name=str(root / target.page))
    index.write_atomic(root / target.page, page)
    index.write_atomic(root / report.sidecar, report.to_json())
    index.write_index(root)
    return report
