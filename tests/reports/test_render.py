"""The renderer: a page that loads anything from elsewhere is refused and nothing is written;
what the published pages hold; the same report rendered from Postgres."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, date, datetime
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from dpp_lib.reports.check import check_self_contained, external_references
from dpp_lib.reports.errors import ExternalReference
from dpp_lib.reports.render import Target, chart_count, publish, render_sprint_report
from dpp_lib.reports.retro import SprintInfo
from dpp_lib.views.common import Stream
from tests.conftest import DemoOrg
from tests.reports.conftest import JOB_AS_OF, LENDING, PAYMENTS, Published

SVG = (
    '<svg xmlns="http://www.w3.org/2000/svg" width="20" height="20">'
    '<rect width="5" height="5"/></svg>'
)


def _notebook(*, markdown: str = "# A report", html: str | None = None) -> nbformat.NotebookNode:
    """A hand-made executed notebook: a Markdown cell, a chart, optionally an HTML output."""
    chart = new_code_cell("chart", outputs=[new_output("display_data", {"image/svg+xml": SVG})])
    cells = [new_markdown_cell(markdown), chart]
    if html is not None:
        cells.append(new_code_cell("x", outputs=[new_output("display_data", {"text/html": html})]))
    nb = new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    return nb


def _target(root: Path) -> Target:
    stream = Stream(stream_id=uuid.uuid4(), name="payments", display_name="Payments")
    info = SprintInfo(
        sprint_id="s1",
        name="PAY Sprint 1",
        state="closed",
        start_date=date(2026, 11, 2),
        end_date=date(2026, 11, 13),
        stream=stream,
        starts_at=datetime(2026, 11, 2, tzinfo=UTC),
        ends_at=datetime(2026, 11, 14, tzinfo=UTC),
    )
    return Target(root, info)


@pytest.mark.parametrize(
    ("markdown", "html", "reference"),
    [
        ('<script src="https://cdn.example.com/vega.js"></script>', None, "https://cdn.example"),
        ("hello", '<link rel="stylesheet" href="http://fonts.example.com/a.css">', "http://fonts"),
        ("hello", "<style>@import url(https://fonts.example.com/css);</style>", "url(https://"),
        ("hello", "<style>@import 'http://x.example/a.css';</style>", "@import 'http://x"),
        ("hello", '<div style="background: url(//cdn.example.com/a.png)">x</div>', "url(//cdn"),
        ("hello", '<img alt="" SRC = "//tracker.example.com/p.gif">', 'src="//tracker'),
        ("![x](https://tracker.example.com/p.gif)", None, 'src="https://tracker'),
    ],
)
def test_the_renderer_refuses_a_page_with_an_external_reference(
    tmp_path: Path, markdown: str, html: str | None, reference: str
) -> None:
    nb = _notebook(markdown=markdown, html=html)
    with pytest.raises(ExternalReference) as refused:
        publish(nb, _target(tmp_path), as_of=datetime(2026, 11, 14, tzinfo=UTC))
    assert reference in refused.value.message
    assert "payments/pay-sprint-1.html is not self-contained" in refused.value.message
    assert list(tmp_path.iterdir()) == []  # nothing published, not even the index


def test_a_self_contained_notebook_is_published_with_its_sidecar_and_index(tmp_path: Path) -> None:
    nb = _notebook(html="<table><tr><td>1</td></tr></table>")
    report = publish(nb, _target(tmp_path), as_of=datetime(2026, 11, 14, tzinfo=UTC))
    page = (tmp_path / "payments" / "pay-sprint-1.html").read_text()
    assert report.charts == chart_count(nb) == 1
    assert page.count("<svg") == 1 and "<img" not in page  # inline SVG, not a base64 image
    assert '<meta content="1" name="dpp-report-charts"/>' in page
    assert "<script" not in page and external_references(page) == []
    assert (tmp_path / "payments" / "pay-sprint-1.json").is_file()
    assert 'href="payments/pay-sprint-1.html"' in (tmp_path / "index.html").read_text()


def test_the_check_reads_any_case_and_spacing_but_not_namespaces() -> None:
    check_self_contained(f"<p>{SVG}</p><a href='#top'>top</a>", name="x.html")
    assert external_references("<IMG SRC = '//t.example/p.gif'><a href=https://e.example>") == [
        "SRC = '//t.example/p.gif",
        "href=https://e.example",
    ]


def test_the_published_pages_hold_no_code_and_every_section(published: Published) -> None:
    for page_path in (PAYMENTS, LENDING):
        page = (published.root / page_path).read_text()
        assert external_references(page) == []
        assert "<script" not in page
        assert "load_retro" not in page and 'class="jp-InputPrompt' not in page
        for heading in ("Sprint outcome", "Cycle time", "Flow efficiency", "Team pulse", "DORA"):
            assert heading in page
    assert published.report(PAYMENTS).as_of == "2026-11-14T00:00:00Z"  # the sprint's end
    assert published.report(PAYMENTS).notebook == "runs/retro/payments/pay-sprint-105.ipynb"
    assert (published.root / published.report(PAYMENTS).notebook).is_file()
    assert "wrote " + str(published.root / LENDING) in published.cli_output


def _stands_out(page: str) -> list[str]:
    found = re.search(r"What stands out<.*?<ul>(.*?)</ul>", page, re.S)
    assert found is not None
    return re.findall(r"<li>(.*?)</li>", found.group(1), re.S)


@pytest.mark.slow
def test_postgres_renders_the_same_report(
    published: Published, demo_postgres: DemoOrg, tmp_path: Path
) -> None:
    settings = demo_postgres.settings.model_copy(update={"reports_dir": tmp_path})
    report = render_sprint_report(
        settings, stream="payments", sprint="PAY Sprint 105", as_of="", now=_job()
    )
    assert report.path == PAYMENTS and report.as_of == published.report(PAYMENTS).as_of
    assert report.charts == published.report(PAYMENTS).charts
    ours = _stands_out((tmp_path / PAYMENTS).read_text())
    theirs = _stands_out((published.root / PAYMENTS).read_text())
    assert len(ours) >= 6 and ours == theirs


def _job() -> datetime:
    return datetime.fromisoformat(JOB_AS_OF.replace("Z", "+00:00"))
