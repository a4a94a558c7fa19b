"""What every notebook's first code cell needs: its parameters turned into a database
engine, a moment and the streams to work on, and Altair set to render with no internet.

Notebooks (``notebooks/compute``, ``notebooks/reports``, ``notebooks/explore``) start with a
cell tagged ``parameters`` holding plain strings and numbers, which papermill overrides; this
module turns them into objects, with an error that names the bad parameter.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Literal

import sqlalchemy as sa

from dpp_lib.errors import DppError
from dpp_lib.settings import Settings
from dpp_lib.store.db import make_engine
from dpp_lib.views.common import Org, Stream


def _without_the_iri_grammar() -> None:
    """In a kernel, before anything imports jsonschema (Altair and Voila do): when it finds
    ``rfc3987_syntax`` (installed for Jupyter's server), jsonschema imports it for its "iri"
    format check, and that compiles an Earley grammar: 0.8 s of every kernel's start, up to
    4 s on a busy machine, for a check no notebook uses. A kernel goes without it; other
    processes (the server, the tests) are left alone."""
    if "ipykernel" in sys.modules and "jsonschema" not in sys.modules:
        sys.modules.setdefault("rfc3987_syntax", None)  # type: ignore[arg-type]


_without_the_iri_grammar()


ALL = "all"


class NotebookParameterError(DppError):
    """A notebook parameter has a value the notebook cannot use."""

    code = "bad_notebook_parameter"
    http_status = 400


def preheating() -> bool:
    """Whether this kernel is one Voila starts ahead of time (``preheat_kernel``), to wait
    in ``wait_for_request()`` until a viewer arrives."""
    return os.environ.get("VOILA_PREHEAT") == "True"


def preheat(warm_up: Callable[[], None]) -> None:
    """A dashboard's start. In a preheated kernel: ``warm_up()`` (the chart engine, a first
    computation) while nobody waits, then wait for the viewer's request. In a kernel started
    for a waiting viewer (no pool, or the pool used up), papermill or a test: nothing, since
    the request is already here and warming up would make the viewer wait for the page twice."""
    if not preheating():
        return
    from voila.utils import wait_for_request  # type: ignore[import-untyped]  # ~1 s: only here

    warm_up()
    wait_for_request()


def engine(database_url: str = "") -> sa.Engine:
    """The database a notebook reads: ``database_url`` when given, else the process
    settings (``DPP_DATABASE_URL``, or the embedded SQLite file under ``DPP_VAR_DIR``)."""
    url = database_url.strip() or Settings().resolved_database_url()
    return make_engine(url)


def moment(as_of: str | datetime | None = "") -> datetime:
    """``as_of`` as an aware UTC datetime: empty means now. ISO 8601 with an offset or ``Z``;
    a moment without an offset is refused (it would silently mean the server's zone)."""
    if isinstance(as_of, datetime):
        value = as_of
    elif as_of is None or not str(as_of).strip():
        return datetime.now(UTC)
    else:
        text = str(as_of).strip()
        try:
            value = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise NotebookParameterError(
                f"as_of={text!r} is not an ISO 8601 moment (e.g. 2026-11-12T18:00:00Z)"
            ) from None
    if value.tzinfo is None:
        raise NotebookParameterError(f"as_of={as_of!s} has no time zone offset: add Z or +HH:MM")
    return value.astimezone(UTC)


def window_days(value: int | str, *, name: str = "window_days", limit: int = 3660) -> int:
    """A positive whole number of days."""
    try:
        days = int(value)
    except (TypeError, ValueError):
        raise NotebookParameterError(f"{name}={value!r} is not a whole number of days") from None
    if not 1 <= days <= limit:
        raise NotebookParameterError(f"{name}={days} must be between 1 and {limit} days")
    return days


def pick_streams(
    streams: Sequence[Stream], stream: str, *, kind: str = "delivery"
) -> tuple[Stream, ...]:
    """The streams a ``stream`` parameter names: ``all`` (or empty) for every active one,
    else one name, display name or id (case-insensitive)."""
    wanted = (stream or "").strip()
    if not wanted or wanted.lower() == ALL:
        return tuple(streams)
    for s in streams:
        if wanted.lower() in (s.name.lower(), s.display_name.lower(), str(s.stream_id)):
            return (s,)
    known = ", ".join(s.name for s in streams) or "none configured"
    raise NotebookParameterError(f"unknown {kind} stream {wanted!r}; known: {known}")


def delivery(org: Org, stream: str) -> tuple[Stream, ...]:
    return pick_streams(org.delivery, stream, kind="delivery")


def tech(org: Org, stream: str) -> tuple[Stream, ...]:
    return pick_streams(org.tech, stream, kind="tech")


def offline_charts(renderer: Literal["svg", "jupyter"] = "svg") -> None:
    """Render Altair charts with no internet: ``svg`` (vl-convert, static; papermill runs
    and exported reports) or ``jupyter`` (interactive, Vega bundled; JupyterLab and Voila).
    The ``default`` and ``html`` renderers load Vega from a CDN and fail offline."""
    import altair as alt

    if renderer == "svg":
        alt.renderers.enable("svg")
    else:
        alt.renderers.enable("jupyter", offline=True)
        alt.JupyterChart.enable_offline()
    alt.data_transformers.disable_max_rows()
