"""Which sprints are due a report (new, incomplete, late data), the scheduled job's summary,
and the ``dpp report`` commands."""

from __future__ import annotations

import json
import shutil
from datetime import datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dpp_lib.cli import app
from dpp_lib.reports import closed
from dpp_lib.reports.errors import ReportError
from tests.conftest import DemoOrg
from tests.reports.conftest import JOB_AS_OF, PAYMENTS, Published

NOW = datetime.fromisoformat(JOB_AS_OF.replace("Z", "+00:00"))


def _due(org: DemoOrg, root: Path, days: int = 3, stream: str = "all") -> list[tuple[str, str]]:
    with org.engine.connect() as conn:
        due = closed.due_reports(conn, root, now=NOW, days=days, stream=stream)
    return [(d.info.name, d.reason) for d in due]


def test_sprints_that_just_ended_without_a_report_are_due(
    demo_sqlite: DemoOrg, tmp_path: Path
) -> None:
    assert _due(demo_sqlite, tmp_path) == [
        ("INS Sprint 86", "new"),
        ("LEND Sprint 85", "new"),
        ("ONB Sprint 91", "new"),
        ("PAY Sprint 105", "new"),
    ]
    assert _due(demo_sqlite, tmp_path, days=2) == []  # they ended on Saturday 00:00
    assert [name for name, _ in _due(demo_sqlite, tmp_path, days=17, stream="payments")] == [
        "PAY Sprint 104",
        "PAY Sprint 105",
    ]


def _copy_with(published: Published, root: Path, **changes: str) -> None:
    (root / "payments").mkdir(parents=True)
    for suffix in (".html", ".json"):
        name = PAYMENTS.replace(".html", suffix)
        shutil.copy(published.root / name, root / name)
    sidecar = root / PAYMENTS.replace(".html", ".json")
    sidecar.write_text(json.dumps({**json.loads(sidecar.read_text()), **changes}))


def test_an_up_to_date_report_is_not_due_but_an_outdated_one_is(
    published: Published, tmp_path: Path
) -> None:
    assert _due(published.org, published.root, stream="payments") == []
    incomplete = tmp_path / "incomplete"
    _copy_with(published, incomplete, as_of="2026-11-12T18:00:00Z")
    assert _due(published.org, incomplete, stream="payments") == [("PAY Sprint 105", "incomplete")]
    # events about the sprint arrived after the report was made (the demo's, loaded today)
    late = tmp_path / "late"
    _copy_with(published, late, generated_at="2020-01-01T00:00:00Z")
    assert _due(published.org, late, stream="payments") == [("PAY Sprint 105", "late data")]


def test_the_scheduled_job_rendered_the_sprint_and_shows_what_it_wrote(
    published: Published,
) -> None:
    outputs = [
        "".join(o.get("data", {}).get("text/html", ""))
        for cell in published.job.cells
        for o in cell.get("outputs", [])
    ]
    table = next(o for o in outputs if "<table" in o)
    for cell in ("payments", "PAY Sprint 105", "2026-11-13", "new", f"written {PAYMENTS}"):
        assert f"<td>{cell}</td>" in table
    assert published.report(PAYMENTS).sprint == "PAY Sprint 105"


def test_check_fails_the_run_naming_every_failed_report() -> None:
    ok = closed.Outcome("payments", "PAY Sprint 105", "2026-11-13", "new", PAYMENTS, None)
    bad = closed.Outcome("lending", "LEND Sprint 85", "2026-11-13", "new", None, "boom")
    closed.check([ok])
    with pytest.raises(
        ReportError, match=r"1 of 2 retro reports failed: lending/LEND Sprint 85: boom"
    ):
        closed.check([ok, bad])
    assert list(closed.summary([ok, bad])["Result"]) == [f"written {PAYMENTS}", "failed: boom"]


def test_the_report_commands(published: Published, tmp_path: Path) -> None:
    runner = CliRunner()
    env = {**published.env, "DPP_REPORTS_DIR": str(tmp_path / "elsewhere")}

    def dpp(*args: str, code: int = 0) -> str:
        result = runner.invoke(app, ["report", *args], env=env)
        assert result.exit_code == code, result.output
        return result.output

    out = dpp("closed", "--stream", "payments", "--days", "3", "--as-of", JOB_AS_OF,
              "--out", str(published.root))  # fmt: skip
    assert "every sprint that closed in that time has an up-to-date report" in out
    index = dpp("index", "--out", str(published.root))
    assert index.startswith(f"wrote {published.root / 'index.html'} (2 reports)")
    assert "unknown delivery stream 'treasury'" in dpp("sprint", "--stream", "treasury", code=1)
    out = dpp("sprint", "--stream", "payments", "--sprint", "PAY Sprint 99", code=1)
    assert "unknown sprint 'PAY Sprint 99' in delivery stream 'payments'" in out
    assert "days=0 must be between 1 and" in dpp("closed", "--days", "0", code=1)
    assert not (tmp_path / "elsewhere").exists()  # nothing rendered for the refused ones
