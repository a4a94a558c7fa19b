"""What a preheated dashboard kernel does before anyone is waiting (``notebook.preheat``):
start vl-convert's engine (~1 s on the first chart) and compute and draw the page once, so
the viewer's computation finds its code paths and the database's pages warm."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

import sqlalchemy as sa

from dpp_lib.access import Principal
from dpp_lib.errors import DppError
from dpp_lib.store.db import reader

log = logging.getLogger(__name__)

# A viewer who sees no stream: the views still read and compute what a page needs.
NOBODY = Principal("user", "warm-up", "warm-up", frozenset(), frozenset(), frozenset())

Zones = Mapping[str, tuple[str, Callable[[Any], Any]]]


def warm_up_page(
    page: str,
    engine: sa.Engine | None,
    *,
    first_chart: Callable[[], object],
    compute: Callable[[sa.Connection], object],
    drawn: type,
    zones: Zones,
) -> None:
    """Draw ``first_chart()``; with ``engine``, ``compute`` the page's model and, when it is
    a ``drawn`` (not an access message), render every zone. A failure is logged, never
    raised: the viewer's own computation will show its message."""
    first_chart()
    if engine is None:
        return
    try:
        with reader(engine).connect() as conn:
            model = compute(conn)
        if isinstance(model, drawn):
            for _, render in zones.values():
                render(model)
    except (DppError, sa.exc.SQLAlchemyError):
        log.warning("the %s page's warm-up failed", page, exc_info=True)
