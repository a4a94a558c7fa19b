"""``dpp report``: retro reports as self-contained HTML (``dpp_lib.reports``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from dpp_lib.errors import DppError
from dpp_lib.settings import Settings

report_app = typer.Typer(
    help="Sprint retro reports: self-contained HTML pages and their index", no_args_is_help=True
)

Out = Annotated[
    Path | None,
    typer.Option(help="Reports directory to write to (default: DPP_REPORTS_DIR, reports/)"),
]


def _fail(exc: DppError) -> typer.Exit:
    typer.echo(f"error: {exc.message}", err=True)
    return typer.Exit(1)


@report_app.command("sprint")
def report_sprint(
    stream: Annotated[str, typer.Option(help="Delivery stream (name, display name or id)")],
    sprint: Annotated[
        str, typer.Option(help="Sprint name, file name or id; empty: the latest that started")
    ] = "",
    as_of: Annotated[
        str, typer.Option("--as-of", help="ISO moment; default: the sprint's end (or now)")
    ] = "",
    out: Out = None,
) -> None:
    """Render one sprint's retro report to <reports>/<stream>/<sprint>.html."""
    from dpp_lib.reports.render import render_sprint_report

    settings = Settings()
    root = (out or settings.reports_dir).resolve()
    try:
        report = render_sprint_report(settings, stream=stream, sprint=sprint, as_of=as_of, out=root)
    except DppError as exc:
        raise _fail(exc) from None
    typer.echo(f"wrote {root / report.path} ({report.charts} charts, figures as of {report.as_of})")
    typer.echo(f"executed notebook {root / report.notebook}; index {root / 'index.html'}")


@report_app.command("index")
def report_index(out: Out = None) -> None:
    """Rewrite <reports>/index.html from the reports present."""
    from dpp_lib.reports.index import list_reports, write_index

    root = (out or Settings().reports_dir).resolve()
    try:
        path = write_index(root)
    except DppError as exc:
        raise _fail(exc) from None
    typer.echo(f"wrote {path} ({len(list_reports(root))} reports)")


@report_app.command("closed")
def report_closed(
    days: Annotated[int, typer.Option(help="Sprints that ended within this many days")] = 30,
    stream: Annotated[str, typer.Option(help="One delivery stream, or all")] = "all",
    as_of: Annotated[str, typer.Option("--as-of", help="ISO moment to look back from")] = "",
    out: Out = None,
) -> None:
    """Render the reports of sprints that closed recently and have none (or an outdated
    one); exit status 1 when any failed."""
    from dpp_lib.notebook import moment, window_days
    from dpp_lib.reports.closed import render_closed_sprints

    settings = Settings()
    try:
        outcomes = render_closed_sprints(
            settings, now=moment(as_of), days=window_days(days, name="days"), stream=stream, out=out
        )
    except DppError as exc:
        raise _fail(exc) from None
    if not outcomes:
        typer.echo("every sprint that closed in that time has an up-to-date report")
    for o in outcomes:
        result = f"wrote {o.path}" if o.path else f"FAILED: {o.error}"
        typer.echo(f"{o.stream} / {o.sprint} (ended {o.ended}, {o.reason}): {result}")
    if any(o.error for o in outcomes):
        raise typer.Exit(1)
