"""The Cross-stream page in a Voila kernel (spec §7.1.2): the filter bar above three zones —
the root-cause signal, the tech × delivery stream heatmap with its table, and the impact
analysis of the selected tech stream. The first state comes from the URL; each filter
change computes the model once (``dpp_lib.dashboards.cross_stream``) and replaces the
zones' HTML (SVG charts: no Output widget carries a large payload).

``#dpp-rendered`` carries the query string of the state on screen (``data-state``): the
browser tests wait for it after a change.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from html import escape
from typing import Any

import ipywidgets as widgets  # type: ignore[import-untyped]
import sqlalchemy as sa

from dpp_lib.access import Principal
from dpp_lib.charts import cross_stream as charts
from dpp_lib.charts.dashboard import svg
from dpp_lib.dashboards import data, identity, pages
from dpp_lib.dashboards.cross_stream import CrossStream, cross_stream
from dpp_lib.dashboards.overview import Denied
from dpp_lib.errors import DppError
from dpp_lib.store.db import reader
from dpp_lib.views.common import load_org
from dpp_lib.widgets import cross_stream_sections as sections
from dpp_lib.widgets import layout
from dpp_lib.widgets.filters import FilterBar, FilterRead, FilterState, moment
from dpp_lib.widgets.warm import NOBODY, warm_up_page

log = logging.getLogger(__name__)

ZONES: dict[str, tuple[str, Callable[[CrossStream], str]]] = {
    "root-cause": ("Root-cause signal", sections.root_cause),
    "heatmap": ("Tech × delivery stream dependencies", sections.heatmap),
    "impact": ("Impact analysis", sections.impact),
}


def warm_up(engine: sa.Engine | None = None) -> None:
    """The cross-stream page's warm-up (``warm.warm_up_page``): the view reads and computes
    every stream whatever the viewer sees."""
    warm_up_page(
        "cross-stream",
        engine,
        first_chart=lambda: svg(
            charts.impact_chart([], avg_confidence_pct=None, avg_cycle_time_p85=None)
        ),
        compute=lambda conn: cross_stream(conn, NOBODY, FilterState()),
        drawn=CrossStream,
        zones=ZONES,
    )


class CrossStreamPage:
    """The page for one viewer: ``widget`` to display, ``refresh`` to redraw."""

    def __init__(
        self,
        engine: sa.Engine,
        principal: Principal,
        read: FilterRead,
        visible: data.VisibleStreams,
        *,
        now: datetime | None = None,
    ) -> None:
        self.engine = engine
        self.principal = principal
        self.now = now
        self._notices = read.notices
        today = (moment(read.state.as_of, "UTC", now=now) if read.state.as_of else _now(now)).date()
        self.bar = FilterBar(read.state, visible, today=today, zones=())
        self.status = widgets.HTML(value="")
        self.zones = {key: layout.Zone(key, title) for key, (title, _) in ZONES.items()}
        self.widget = widgets.VBox(
            [
                widgets.HTML(value=layout.STYLE + sections.STYLE),
                self.bar.widget,
                self.status,
                *(z.widget for z in self.zones.values()),
            ]
        )
        self.widget.add_class("dpp-page")
        self.bar.on_change(self.refresh)

    def refresh(self, state: FilterState | None = None) -> None:
        state = state or self.bar.state
        self.status.value = layout.paragraph("Computing the figures…", key="computing")
        notices, self._notices = self._notices, ()
        try:
            with reader(self.engine).connect() as conn:
                model = cross_stream(conn, self.principal, state, now=self.now, notices=notices)
        except DppError as exc:
            self._fail(state, exc.message)
            return
        except Exception as exc:  # a page shows a message, never a traceback
            log.exception("the cross-stream page failed for %s", state)
            self._fail(state, f"The figures could not be computed ({type(exc).__name__}).")
            return
        self.draw(model)

    def draw(self, model: CrossStream | Denied) -> None:
        if isinstance(model, Denied):
            self.status.value = (
                pages.message_html("access-denied", model.message)
                + layout.notices(model.notices)
                + _rendered(model.state)
            )
            for zone in self.zones.values():
                zone.show("")
                zone.hidden = True
            return
        for key, (_, render) in ZONES.items():
            self.zones[key].hidden = False
            self.zones[key].show(render(model))
        heading = layout.paragraph(
            f"As of {sections.when(model.as_of)}; time range: {model.window.label}.", key="heading"
        )
        self.status.value = layout.notices(model.notices) + heading + _rendered(model.state)

    def _fail(self, state: FilterState, message: str) -> None:
        self.status.value = pages.message_html("page-error", message) + _rendered(state)
        for zone in self.zones.values():
            zone.show("")


def open_page(
    engine: sa.Engine,
    *,
    defaults: Mapping[str, str] | None = None,
    environ: Mapping[str, str] | None = None,
    now: datetime | None = None,
) -> Any:
    """The page for the signed-in viewer, drawn once: the URL's query (over the notebook's
    ``defaults``) gives the filters. Not signed in: the sign-in message only."""
    with reader(engine).connect() as conn:
        try:
            principal = identity.current_principal(conn, environ)
        except identity.NotSignedIn as exc:
            return widgets.HTML(value=pages.message_html("not-signed-in", exc.message))
        visible = data.visible_streams(load_org(conn), principal)
    params = {k: v for k, v in (defaults or {}).items() if v}
    params.update(identity.query_params(environ))
    page = CrossStreamPage(
        engine, principal, FilterState.from_query(params, visible), visible, now=now
    )
    page.refresh()
    return page.widget


def _now(now: datetime | None) -> datetime:
    return now or datetime.now(UTC)


def _rendered(state: FilterState) -> str:
    return f'<span id="dpp-rendered" data-state="{escape(state.query_string())}"></span>'
