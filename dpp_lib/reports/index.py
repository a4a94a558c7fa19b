"""The reports on disk and the index page that lists them.

Layout under the reports directory (``Settings.reports_dir``)::

    index.html                      every report, by stream, newest sprint first
    <stream>/<sprint-slug>.html     a report (self-contained)
    <stream>/<sprint-slug>.json     its sidecar: what it is about and when it was made
    runs/retro/<stream>/<slug>.ipynb   the executed notebook it was exported from

The sidecar is the record of a report: the index, the front door and the job that renders
closed sprints read it; an HTML file without one is not listed or served.
"""

from __future__ import annotations

import html
import json
import os
import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import date, datetime
from pathlib import Path

from dpp_lib.reports.check import check_self_contained
from dpp_lib.reports.errors import ReportError

INDEX = "index.html"
RUNS = "runs"
NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,199}$")  # a stream directory or sprint file name


@dataclass(frozen=True)
class Report:
    """A sidecar: one report's stream, sprint, dates and files (paths relative to the
    reports directory, with ``/``)."""

    stream: str
    stream_id: str
    stream_display_name: str
    sprint: str
    sprint_id: str
    slug: str
    start_date: str  # ISO date
    end_date: str
    as_of: str  # ISO moment the figures are from
    generated_at: str  # ISO moment the page was written
    path: str  # <stream>/<slug>.html
    notebook: str  # runs/retro/<stream>/<slug>.ipynb
    charts: int  # SVG charts in the page

    @property
    def sidecar(self) -> str:
        return self.path.removesuffix(".html") + ".json"

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2) + "\n"

    @classmethod
    def from_file(cls, path: Path) -> Report:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            return cls(**{k: data[k] for k in cls.__dataclass_fields__})
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ReportError(f"report sidecar {path} is unreadable: {exc}") from None

    @property
    def generated(self) -> datetime:
        return datetime.fromisoformat(self.generated_at)

    @property
    def as_of_moment(self) -> datetime:
        return datetime.fromisoformat(self.as_of)


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` so a reader sees the old file or the new one, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(text, encoding="utf-8")
    os.replace(partial, path)


def list_reports(root: Path) -> list[Report]:
    """Every report under ``root`` with its HTML file present, by stream then newest
    sprint first. Unreadable sidecars are skipped (they name no report)."""
    found = []
    if not root.is_dir():
        return []
    for sidecar in sorted(root.glob("*/*.json")):
        stream_dir = sidecar.parent.name
        if stream_dir == RUNS or not NAME.match(stream_dir) or not NAME.match(sidecar.stem):
            continue
        try:
            report = Report.from_file(sidecar)
        except ReportError:
            continue
        if report.path == f"{stream_dir}/{sidecar.stem}.html" and (root / report.path).is_file():
            found.append(report)
    return sorted(found, key=lambda r: (r.stream, _newest_first(r)))


def _newest_first(r: Report) -> tuple[int, int, str]:
    start, end = date.fromisoformat(r.start_date), date.fromisoformat(r.end_date)
    return (-start.toordinal(), -end.toordinal(), r.sprint)


def find_report(root: Path, stream: str, slug: str) -> Report | None:
    """The report ``<stream>/<slug>.html`` if it exists and has its sidecar."""
    if not NAME.match(stream) or not NAME.match(slug) or stream == RUNS:
        return None
    sidecar = root / stream / f"{slug}.json"
    if not sidecar.is_file() or not (root / stream / f"{slug}.html").is_file():
        return None
    try:
        report = Report.from_file(sidecar)
    except ReportError:
        return None
    return report if report.path == f"{stream}/{slug}.html" else None


PAGE_STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #222;
       max-width: 860px; margin: 2em auto; padding: 0 1.5em; }
h1 { font-size: 1.6em; } h2 { font-size: 1.2em; margin-top: 1.6em; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: 0.35em 0.6em; border-bottom: 1px solid #ddd; }
th { font-weight: 600; } td.when { color: #666; font-size: 0.9em; }
p.empty, p.note { color: #666; }
"""


def index_html(reports: Iterable[Report], *, title: str = "Sprint retro reports") -> str:
    """A self-contained page listing ``reports`` by stream (display name), newest sprint
    first, with links relative to the reports directory."""
    by_stream: dict[str, list[Report]] = {}
    for r in reports:
        by_stream.setdefault(r.stream, []).append(r)
    e = html.escape
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{e(title)}</title><style>{PAGE_STYLE}</style></head><body>",
        f"<h1>{e(title)}</h1>",
    ]
    if not by_stream:
        parts.append('<p class="empty">No reports yet.</p>')
    for stream in sorted(by_stream, key=lambda s: by_stream[s][0].stream_display_name.casefold()):
        rows = sorted(by_stream[stream], key=_newest_first)
        parts.append(f'<h2 id="{e(stream)}">{e(rows[0].stream_display_name)}</h2>')
        parts.append("<table><tr><th>Sprint</th><th>Dates</th><th>Figures as of</th></tr>")
        for r in rows:
            parts.append(
                f'<tr><td><a href="{e(r.path)}">{e(r.sprint)}</a></td>'
                f"<td>{e(r.start_date)} – {e(r.end_date)}</td>"
                f'<td class="when">{e(r.as_of[:16].replace("T", " "))} UTC</td></tr>'
            )
        parts.append("</table>")
    parts.append(
        '<p class="note">Each report is one self-contained page: it loads nothing from '
        "anywhere, so it opens from a file share or an e-mail attachment.</p>"
    )
    parts.append("</body></html>\n")
    return "\n".join(parts)


def write_index(root: Path) -> Path:
    """Write ``<root>/index.html`` listing every report under ``root``."""
    page = index_html(list_reports(root))
    check_self_contained(page, name=str(root / INDEX))
    path = root / INDEX
    write_atomic(path, page)
    return path
