"""The report errors: each names the stream, sprint, file or reference it is about."""

from __future__ import annotations

from dpp_lib.errors import DppError
from dpp_lib.notebook import NotebookParameterError


class ReportError(DppError):
    """A report could not be produced or published."""

    code = "report_error"


class UnknownSprint(NotebookParameterError):
    """The sprint a report names is not one of its delivery stream's sprints."""


class ExternalReference(ReportError):
    """A rendered page refers to something outside itself (a script, style, font or image
    on another host): it would not open from a file share and could leak its reader."""

    code = "report_not_self_contained"


class RenderFailed(ReportError):
    """The report notebook failed while running (the executed notebook shows where)."""

    code = "report_render_failed"
