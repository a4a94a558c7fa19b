"""The Admin page in a Voila kernel (spec §7.1.3), for platform admins only: the filter bar
above five zones — data quality against targets, integration health and system alerts,
unlinked pull requests with a manual-link action, the configuration (read-only, with its
source file), and the inbox's dead letters with a requeue action. Anyone else gets the
access message and nothing else (``dpp_lib.dashboards.admin`` refuses them data).

An action shows its outcome in the zone (``.dpp-feedback``) and redraws the zones it
changes. ``#dpp-rendered`` carries the query string of the state on screen.
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
from dpp_lib.charts import admin as charts
from dpp_lib.charts.dashboard import svg
from dpp_lib.dashboards import admin as model
from dpp_lib.dashboards import data, identity, pages
from dpp_lib.dashboards.admin import AdminView, admin_view
from dpp_lib.errors import DppError
from dpp_lib.store.db import reader
from dpp_lib.views.common import load_org
from dpp_lib.widgets import admin_sections as sections
from dpp_lib.widgets import layout
from dpp_lib.widgets.filters import FilterBar, FilterRead, FilterState, moment
from dpp_lib.widgets.warm import warm_up_page

log = logging.getLogger(__name__)

ZONES: dict[str, tuple[str, Callable[[AdminView], str]]] = {
    "quality": ("Data quality", sections.quality),
    "health": ("Integration health and system alerts", sections.health),
    "unlinked": ("Unlinked pull requests", sections.unlinked),
    "config": ("Streams and status mappings", sections.config),
    "dead": ("Dead letters", sections.dead),
}


def warm_up(engine: sa.Engine | None = None) -> None:
    """The admin page's warm-up (``warm.warm_up_page``), as a platform admin."""
    admin = Principal("user", "warm-up", "warm-up", frozenset({"admin"}))
    warm_up_page(
        "admin",
        engine,
        first_chart=lambda: svg(charts.integrations({})),
        compute=lambda conn: admin_view(conn, admin, FilterState()),
        drawn=AdminView,
        zones=ZONES,
    )


class AdminPage:
    """The page for one platform admin: ``widget`` to display, ``refresh`` to redraw."""

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
        self.view: AdminView | None = None
        self._notices = read.notices
        at = moment(read.state.as_of, "UTC", now=now) if read.state.as_of else _now(now)
        self.bar = FilterBar(read.state, visible, today=at.date(), zones=())
        self.status = widgets.HTML(value="")
        self.zones = {key: layout.Zone(key, title) for key, (title, _) in ZONES.items()}
        self.feedback = {key: widgets.HTML(value="") for key in ("unlinked", "dead")}
        self.pr_choice = widgets.Dropdown(
            description="Pull request",
            style={"description_width": "initial"},
            layout=widgets.Layout(width="36em"),
        )
        self.pr_choice.add_class("dpp-link-pr")
        self.ticket = widgets.Text(
            description="Jira ticket", placeholder="PAY-123", style={"description_width": "initial"}
        )
        self.ticket.add_class("dpp-link-ticket")
        link = widgets.Button(description="Link", button_style="primary")
        link.on_click(lambda _: self.link_chosen())
        self.link_form = widgets.HBox([self.pr_choice, self.ticket, link])
        self.link_form.add_class("dpp-link-form")
        self.dead_rows = widgets.VBox([])
        self.dead_rows.add_class("dpp-dead-rows")
        for key, extra in (("unlinked", self.link_form), ("dead", self.dead_rows)):
            zone = self.zones[key].widget
            zone.children = (*zone.children, self.feedback[key], extra)
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
                view = admin_view(conn, self.principal, state, now=self.now, notices=notices)
        except DppError as exc:
            self._fail(state, exc)
            return
        except Exception as exc:  # a page shows a message, never a traceback
            log.exception("the admin page failed for %s", state)
            self._fail(state, DppError(f"The page could not be drawn ({type(exc).__name__})."))
            return
        self.draw(view)

    def draw(self, view: AdminView) -> None:
        self.view = view
        for key, (_, render) in ZONES.items():
            self.zones[key].hidden = False
            self.zones[key].show(render(view))
        self._unlinked_rows(view)
        self._dead_rows(view)
        heading = layout.paragraph(
            f"Data quality over {view.window.label}; integration health and alerts as of"
            f" {view.now:%d %b %Y %H:%M} UTC.",
            key="heading",
        )
        self.status.value = layout.notices(view.notices) + heading + _rendered(view.state)

    def _fail(self, state: FilterState, exc: DppError) -> None:
        kind = "access-denied" if isinstance(exc, data.StreamAccessDenied) else "page-error"
        self.status.value = pages.message_html(kind, exc.message) + _rendered(state)
        for zone in self.zones.values():
            zone.show("")
            zone.hidden = True
        self.link_form.layout.display = "none"
        self.dead_rows.children = ()

    # --- unlinked pull requests -------------------------------------------------------------

    def _unlinked_rows(self, view: AdminView) -> None:
        """The link form offers the listed PRs (hidden when there is none)."""
        self.pr_choice.options = [(sections.pr_label(pr), pr) for pr in view.unlinked.rows]
        self.pr_choice.value = view.unlinked.rows[0] if view.unlinked.rows else None
        self.link_form.layout.display = "" if view.unlinked.rows else "none"

    def link_chosen(self) -> None:
        pr = self.pr_choice.value
        if pr is None:
            self.feedback["unlinked"].value = sections.feedback(
                "Choose a pull request to link.", ok=False
            )
            return
        self.link(pr, str(self.ticket.value))

    def link(self, pr: model.UnlinkedPr, ticket: str) -> None:
        """Link ``pr`` to ``ticket`` (the API's function), say how it went, redraw the
        unlinked PRs and the data quality."""
        name = f"{pr.repository}#{pr.pr_number}"
        try:
            result = model.link_pr(
                self.engine, self.principal, pr_event_id=pr.event_id, ticket_id=ticket, now=self.now
            )
        except DppError as exc:
            self.feedback["unlinked"].value = sections.feedback(
                f"{name} was not linked: {exc.message}", ok=False
            )
            return
        self.ticket.value = ""
        stream = "" if result.ticket_known else " (the ticket has no delivery stream yet)"
        self.feedback["unlinked"].value = sections.feedback(
            f"{name} is linked to {result.ticket_id}{stream}; the audit log records it.", ok=True
        )
        self.refresh()

    # --- dead letters -----------------------------------------------------------------------

    def _dead_rows(self, view: AdminView) -> None:
        rows = []
        if view.dead.rows:
            every = widgets.Button(
                description=f"Requeue all {view.dead.total}", button_style="warning"
            )
            every.add_class("dpp-requeue-all")
            every.on_click(lambda _: self.requeue(None))
            rows.append(every)
        for letter in view.dead.rows:
            button = widgets.Button(description="Requeue")
            button.on_click(lambda _, i=letter.id: self.requeue([i]))
            line = widgets.HBox([widgets.HTML(value=sections.dead_line(letter)), button])
            line.add_class("dpp-dead-row")
            rows.append(line)
        self.dead_rows.children = rows

    def requeue(self, ids: list[int] | None) -> None:
        """Move dead letters back to pending (the CLI's function), say how many, redraw."""
        try:
            moved = model.requeue(self.engine, self.principal, ids=ids)
        except DppError as exc:
            self.feedback["dead"].value = sections.feedback(
                f"Nothing was requeued: {exc.message}", ok=False
            )
            return
        which = "every dead letter" if ids is None else f"dead letter {ids[0]}"
        self.feedback["dead"].value = sections.feedback(
            f"Requeued {which}: {moved} moved back to pending; the worker retries them next."
            " The audit log records it.",
            ok=moved > 0,
        )
        self.refresh()


def open_page(
    engine: sa.Engine,
    *,
    defaults: Mapping[str, str] | None = None,
    environ: Mapping[str, str] | None = None,
    now: datetime | None = None,
) -> Any:
    """The page for the signed-in viewer: a platform admin gets the page drawn once (the
    URL's query over the notebook's ``defaults`` gives the filters); anyone else the access
    message only, with no filter bar and no figure."""
    with reader(engine).connect() as conn:
        try:
            principal = identity.current_principal(conn, environ)
        except identity.NotSignedIn as exc:
            return widgets.HTML(value=pages.message_html("not-signed-in", exc.message))
        try:
            model.require_admin(principal)
        except model.AdminOnly as exc:
            return widgets.HTML(value=pages.message_html("access-denied", exc.message))
        visible = data.visible_streams(load_org(conn), principal)
    params = {k: v for k, v in (defaults or {}).items() if v}
    params.update(identity.query_params(environ))
    page = AdminPage(engine, principal, FilterState.from_query(params, visible), visible, now=now)
    page.refresh()
    return page.widget


def _now(now: datetime | None) -> datetime:
    return now or datetime.now(UTC)


def _rendered(state: FilterState) -> str:
    return f'<span id="dpp-rendered" data-state="{escape(state.query_string())}"></span>'
