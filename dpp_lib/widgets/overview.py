"""The Overview page in a Voila kernel (spec §7.1.1): the filter bar above six zones. The
first state comes from the URL; each filter change computes the model once
(``dpp_lib.dashboards.overview``) and replaces the zones' HTML (SVG charts, so no Output
widget ever captures a large payload).

``#dpp-rendered`` carries the query string of the state on screen (``data-state``): the
browser tests wait for it after a change.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from html import escape
from typing import Any

import ipywidgets as widgets  # type: ignore[import-untyped]
import sqlalchemy as sa

from dpp_lib.access import Principal
from dpp_lib.charts import dashboard as charts
from dpp_lib.dashboards import data, identity, pages
from dpp_lib.dashboards.overview import Denied, Overview, overview
from dpp_lib.errors import DppError
from dpp_lib.store.db import reader
from dpp_lib.views.common import load_org
from dpp_lib.widgets import layout, overview_outlook, overview_signals
from dpp_lib.widgets.filters import FilterBar, FilterError, FilterRead, FilterState, moment
from dpp_lib.widgets.warm import NOBODY, warm_up_page

log = logging.getLogger(__name__)

ZONES: dict[str, tuple[str, Callable[[Overview], str]]] = {
    "summary": ("Stream health", overview_signals.health_bar),
    "realtime": ("Real-time signals", overview_signals.realtime),
    "diagnostic": ("Diagnostics", overview_signals.diagnostics),
    "trend": ("DORA trends", overview_outlook.dora),
    "forecast": ("Forecast", overview_outlook.forecast),
    "health": ("Team health", overview_outlook.team_health),
}
ALWAYS_SHOWN = ("summary",)  # the health bar has no zone toggle (§7.2 lists the others)


def warm_up(engine: sa.Engine | None = None) -> None:
    """The Overview's warm-up (``warm.warm_up_page``): on the demo organisation the first
    page then takes ~1.5 s of kernel time instead of ~3.5 s."""
    warm_up_page(
        "overview",
        engine,
        first_chart=lambda: charts.svg(charts.confidence_gauge(50.0)),
        compute=lambda conn: overview(conn, NOBODY, FilterState()),
        drawn=Overview,
        zones=ZONES,
    )


class OverviewPage:
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
        self.now = now  # fixed "now" (tests); None: the clock at each refresh
        self._notices = read.notices  # shown with the first drawing only
        self.bar = FilterBar(read.state, visible, today=_day_of(read.state, now))
        self.status = widgets.HTML(value="")
        self.zones = {key: layout.Zone(key, title) for key, (title, _) in ZONES.items()}
        self.widget = widgets.VBox(
            [
                widgets.HTML(value=layout.STYLE),
                self.bar.widget,
                self.status,
                *(z.widget for z in self.zones.values()),
            ]
        )
        self.widget.add_class("dpp-page")
        self.bar.on_change(self.refresh)
        self._model: Overview | None = None  # what is on screen
        self._drawn: dict[str, str] = {}  # its zones' HTML, by zone

    def refresh(self, state: FilterState | None = None) -> None:
        state = state or self.bar.state
        if self._model is not None and _covers(self._model, state):
            # Only zones toggled, and the model holds their answers: no recomputation.
            self.draw(dataclasses.replace(self._model, state=state, notices=()))
            return
        self._drawn = {}
        self.status.value = layout.paragraph("Computing the figures…", key="computing")
        notices, self._notices = self._notices, ()
        try:
            with reader(self.engine).connect() as conn:
                model = overview(conn, self.principal, state, now=self.now, notices=notices)
        except DppError as exc:
            self._fail(state, exc.message)
            return
        except Exception as exc:  # a page shows a message, never a traceback
            log.exception("the overview page failed for %s", state)
            self._fail(state, f"The figures could not be computed ({type(exc).__name__}).")
            return
        self.draw(model)

    def draw(self, model: Overview | Denied) -> None:
        self._model = model if isinstance(model, Overview) else None
        if isinstance(model, Denied):
            self.status.value = (
                pages.message_html("access-denied", model.message)
                + layout.paragraph("Choose one of your streams in the lists above.", key="choose")
                + layout.notices(model.notices)
                + _rendered(model.state)
            )
            for zone in self.zones.values():
                zone.show("")
                zone.hidden = True
            return
        for key, (_, render) in ZONES.items():
            zone = self.zones[key]
            shown = key in ALWAYS_SHOWN or model.state.shows(key)
            zone.hidden = not shown
            if shown and key not in self._drawn:
                self._drawn[key] = render(model)
            zone.show(self._drawn[key] if shown else "")
        self.status.value = layout.notices(model.notices) + _heading(model) + _rendered(model.state)

    def _fail(self, state: FilterState, message: str) -> None:
        self._model = None
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
    read = FilterState.from_query(params, visible)
    page = OverviewPage(engine, principal, read, visible, now=now)
    page.refresh()
    return page.widget


def _covers(model: Overview, state: FilterState) -> bool:
    """Whether ``model`` can draw ``state``: the same filters but the zones, and the
    answers of every zone ``state`` shows."""
    if dataclasses.replace(state, zones=model.state.zones) != model.state:
        return False
    needs = {
        "trend": model.trend_series is not None or not model.tech_visible,
        "forecast": model.forecast is not None,
        "health": model.pulse is not None,
    }
    return all(needs.get(zone, True) for zone in state.zones)


def _day_of(state: FilterState, now: datetime | None) -> Any:
    try:
        at = moment(state.as_of, "UTC", now=now) if state.as_of else (now or datetime.now(UTC))
    except FilterError:
        at = now or datetime.now(UTC)
    return at.date()


def _heading(m: Overview) -> str:
    streams = f"{m.delivery_label}; DORA: {m.tech_label}"
    when = m.as_of.strftime("%d %b %Y %H:%M UTC")
    return layout.paragraph(f"{streams} — as of {when}; trends and diagnostics: {m.window.label}.",
                            key="heading")  # fmt: skip


def _rendered(state: FilterState) -> str:
    return f'<span id="dpp-rendered" data-state="{escape(state.query_string())}"></span>'
