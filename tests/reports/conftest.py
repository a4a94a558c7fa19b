"""Reports published once per session from the demo organisation (SQLite), the way
production makes them: the scheduled ``sprint-reports`` notebook renders the sprint of
payments that had just closed, and ``dpp report sprint`` one sprint of lending."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import nbformat
import pytest
from typer.testing import CliRunner

from dpp_lib.cli import app
from dpp_lib.reports.index import Report
from tests.conftest import DemoOrg
from tests.support import ROOT

JOB_AS_OF = "2026-11-16T06:00:00Z"  # the Monday 06:00 run after PAY Sprint 105 ended (Fri)
JOB_NOTEBOOK = ROOT / "notebooks" / "compute" / "sprint_reports.ipynb"
PAYMENTS = "payments/pay-sprint-105.html"
LENDING = "lending/lend-sprint-84.html"


@dataclass(frozen=True)
class Published:
    root: Path  # the reports directory
    org: DemoOrg
    env: dict[str, str]  # what the processes that wrote them had in their environment
    job: nbformat.NotebookNode  # the executed sprint_reports notebook
    cli_output: str

    def report(self, page: str) -> Report:
        return Report.from_file(self.root / (page.removesuffix(".html") + ".json"))


def report_env(org: DemoOrg, root: Path) -> dict[str, str]:
    return {
        "DPP_DATABASE_URL": org.url,
        "DPP_REPORTS_DIR": str(root),
        "DPP_NOTEBOOKS_DIR": str(ROOT / "notebooks"),
        "DPP_ENVIRONMENT": "test",
    }


@pytest.fixture(scope="session")
def published(
    demo_sqlite: DemoOrg, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Published]:
    import papermill  # type: ignore[import-untyped]

    root = tmp_path_factory.mktemp("reports")
    env = report_env(demo_sqlite, root)
    with pytest.MonkeyPatch.context() as patch:
        for key, value in env.items():
            patch.setenv(key, value)
        job = papermill.execute_notebook(
            str(JOB_NOTEBOOK),
            str(root.parent / "sprint_reports.executed.ipynb"),
            parameters={"stream": "payments", "as_of": JOB_AS_OF, "window_days": 3},
            kernel_name="python3",
            progress_bar=False,
        )
    result = CliRunner().invoke(
        app,
        [
            "report",
            "sprint",
            "--stream",
            "Lending",
            "--sprint",
            "LEND Sprint 84",
            "--out",
            str(root),
        ],
        env={**env, "DPP_REPORTS_DIR": str(root.parent / "not-used")},
    )
    assert result.exit_code == 0, result.output
    yield Published(root, demo_sqlite, env, job, result.output)
