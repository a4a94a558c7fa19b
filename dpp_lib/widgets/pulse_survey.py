"""The pulse survey page in a Voila kernel (spec §5.5.1): the three questions of §5.5.2 as 1–5
buttons, an optional free-text box and a send button, for the signed-in team member while the
survey window is open. The page model (``dpp_lib.dashboards.pulse_survey``) decides who may
answer and when, and stores the answer; this module only draws and forwards the form.

Elements the browser tests find: ``#dpp-pulse-ready`` once drawn, ``.dpp-pulse-stream`` (the
stream choice), ``.dpp-pulse-<field>`` (each question's buttons), ``.dpp-pulse-text``,
``.dpp-pulse-submit``, then ``#dpp-pulse-confirmation`` or ``#dpp-pulse-error``.
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
from dpp_lib.dashboards import identity, pages
from dpp_lib.dashboards import pulse_survey as model
from dpp_lib.errors import DppError
from dpp_lib.ingest.types import Anonymiser
from dpp_lib.metrics.pulse import MIN_RESPONSES
from dpp_lib.store.db import reader
from dpp_lib.store.pulse_survey import MAX_FREE_TEXT, SavedResponse
from dpp_lib.widgets import layout

log = logging.getLogger(__name__)

STYLE = """<style>
.dpp-pulse { max-width: 46em; }
.dpp-pulse .dpp-question { margin-top: 0.9em; font-weight: 600; }
.dpp-pulse .dpp-scale { font-size: 0.85em; color: #52606d; }
.dpp-pulse .widget-toggle-buttons .widget-toggle-button { width: 3.2em; }
.dpp-pulse .dpp-done { border-left: 4px solid #1a9850; background: #edf7ef;
  padding: 0.4em 0.8em; }
</style>"""

ANONYMITY = (
    "Your answers are anonymous. They are stored under a keyed hash (HMAC-SHA256) of your user"
    " account, made with a secret key only the platform holds: never your name, email or user"
    " id, so nobody reading the data can tell who answered. The same hash each month lets the"
    " platform see a score change over time without knowing whose it is. Dashboards show only"
    f" team averages per month, and none for a month with fewer than {MIN_RESPONSES} answers."
    " Your comment is kept for the team's retrospectives and never shown on a dashboard."
)


def _when(moment: datetime, zone: Any) -> str:
    local = moment.astimezone(zone)
    return f"{local.day} {local:%B %Y at %H:%M}"


class SurveyForm:
    """The open survey for one viewer: ``widget`` to display."""

    def __init__(
        self,
        engine: sa.Engine,
        principal: Principal,
        anonymise: Anonymiser,
        survey: model.OpenSurvey,
        *,
        clock: Callable[[], datetime],
    ) -> None:
        self.engine = engine
        self.principal = principal
        self.anonymise = anonymise
        self.survey = survey
        self.clock = clock
        self.answered = dict(survey.answered)
        window = survey.window
        self.stream = widgets.Dropdown(
            options=[(s.display_name, str(s.stream_id)) for s in survey.streams],
            value=str(survey.selected.stream_id) if survey.selected else None,
            description="Your team",
            layout={"width": "28em"},
        )
        self.stream.add_class("dpp-pulse-stream")
        self.previous = widgets.HTML(value="")
        self.scores = {q.field: self._buttons(q.field) for q in model.QUESTIONS}
        self.text = widgets.Textarea(
            placeholder="Optional: anything you would like your team to talk about at the"
            " retrospective (kept for retrospectives, never shown on dashboards)",
            layout={"width": "40em", "height": "6em"},
        )
        self.text.add_class("dpp-pulse-text")
        self.send = widgets.Button(description="Send my answers", button_style="primary")
        self.send.add_class("dpp-pulse-submit")
        self.result = widgets.HTML(value="")
        questions: list[Any] = []
        for number, q in enumerate(model.QUESTIONS, start=1):
            questions.append(
                widgets.HTML(
                    value=f'<p class="dpp-question">{number}. {escape(q.text)}</p>'
                    f'<p class="dpp-scale">1 = {escape(q.low)} … 5 = {escape(q.high)}</p>'
                )
            )
            questions.append(self.scores[q.field])
        header = (
            f"{STYLE}{layout.STYLE}"
            f'<h2 id="dpp-pulse-heading">Team pulse — {escape(window.period_label)}</h2>'
            f'<p id="dpp-pulse-window">Open {escape(window.describe())}. Three questions,'
            " each from 1 to 5, and an optional comment: about a minute.</p>"
            f'<div class="dpp-notice" id="dpp-pulse-anonymity"><p>{escape(ANONYMITY)}</p></div>'
            f"{layout.notices(survey.notices)}"
        )
        self.widget = widgets.VBox(
            [
                widgets.HTML(value=header),
                self.stream,
                self.previous,
                *questions,
                widgets.HTML(
                    value=f'<p class="dpp-question">Comment (optional, up to {MAX_FREE_TEXT}'
                    " characters)</p>"
                ),
                self.text,
                self.send,
                self.result,
                widgets.HTML(value='<span id="dpp-pulse-ready"></span>'),
            ]
        )
        self.widget.add_class("dpp-page")
        self.widget.add_class("dpp-pulse")
        self.stream.observe(lambda _: self._show_previous(), names="value")
        self.send.on_click(lambda _: self.submit())
        self._show_previous()

    def _buttons(self, field: str) -> Any:
        buttons = widgets.ToggleButtons(
            options=[(str(n), n) for n in range(1, 6)],
            value=None,
            style={"button_width": "3.2em"},
        )
        buttons.add_class(f"dpp-pulse-{field}")
        return buttons

    def _show_previous(self) -> None:
        if self.stream.value is None:
            self.previous.value = ""
            return
        at = next((v for k, v in self.answered.items() if str(k) == self.stream.value), None)
        zone = self.survey.window.opens.tzinfo
        self.previous.value = (
            ""
            if at is None
            else layout.paragraph(
                f"You already answered for this team on {_when(at, zone)}."
                " Sending the form again replaces that answer.",
                key="pulse-previous",
            )
        )

    def submit(self) -> None:
        """Store the answers (the send button's handler); shows the confirmation or why not."""
        self.send.disabled = True
        self.result.value = layout.paragraph("Saving your answers…", key="pulse-saving")
        try:
            with self.engine.begin() as conn:
                saved = model.submit(
                    conn,
                    self.principal,
                    self.anonymise,
                    stream=self.stream.value or "",
                    scores={f: b.value for f, b in self.scores.items()},
                    free_text=self.text.value,
                    now=self.clock(),
                )
        except DppError as exc:
            self.result.value = pages.message_html("pulse-error", exc.message)
        except Exception as exc:  # a page shows a message, never a traceback
            log.exception("the pulse survey could not store an answer")
            self.result.value = pages.message_html(
                "pulse-error", f"Your answers could not be stored ({type(exc).__name__})."
            )
        else:
            self.result.value = self._confirmation(saved)
            self.answered[saved.delivery_stream_id] = saved.submitted_at
            self._show_previous()
        finally:
            self.send.disabled = False

    def _confirmation(self, saved: SavedResponse) -> str:
        window = self.survey.window
        team = next(
            s.display_name for s in self.survey.streams if s.stream_id == saved.delivery_stream_id
        )
        replaced = " They replace the answers you sent earlier." if saved.replaced else ""
        text = (
            f"Thank you. Your answers for {team} are saved for the {window.period_label} survey"
            f" (period {saved.survey_period}).{replaced} You can change them by sending the"
            f" form again until the survey closes at the end of {model.day_label(window.last_day)}."
        )
        return (
            f'<div class="dpp-done" role="status" id="dpp-pulse-confirmation">'
            f"<p>{escape(text)}</p></div>"
        )


def closed_html(closed: model.Closed) -> str:
    nxt = closed.upcoming
    teams = ", ".join(s.display_name for s in closed.streams)
    return (
        f"{layout.STYLE}"
        '<div class="dpp-empty" role="status" id="dpp-pulse-closed">'
        "<p><strong>The pulse survey is closed right now.</strong></p>"
        f"<p>The next survey, for {escape(nxt.period_label)}, opens on {escape(nxt.opening())}"
        f" and closes at the end of {escape(model.day_label(nxt.last_day))}. Come back then to"
        f" answer for {escape(teams)}.</p></div>"
        '<span id="dpp-pulse-ready"></span>'
    )


def _page(html: str) -> Any:
    page = widgets.HTML(value=html)
    page.add_class("dpp-page")
    page.add_class("dpp-pulse")
    return page


def open_page(
    engine: sa.Engine,
    anonymise: Anonymiser,
    *,
    defaults: Mapping[str, str] | None = None,
    environ: Mapping[str, str] | None = None,
    now: datetime | None = None,
) -> Any:
    """The survey page for the signed-in viewer. ``?stream=`` (over the notebook's
    ``defaults``) preselects a team; ``now`` fixes the clock (tests), else each load and each
    send read the clock."""

    def clock() -> datetime:
        return now or datetime.now(UTC)

    with reader(engine).connect() as conn:
        try:
            principal = identity.current_principal(conn, environ)
        except identity.NotSignedIn as exc:
            return widgets.HTML(value=pages.message_html("not-signed-in", exc.message))
        params = {k: v for k, v in (defaults or {}).items() if v}
        params.update(identity.query_params(environ))
        requested = params.get("stream", "")
        survey = model.survey_page(conn, principal, anonymise, now=clock(), requested=requested)
    if isinstance(survey, model.NotAllowed):
        html = pages.message_html("pulse-not-allowed", survey.message)
        return _page(html + '<span id="dpp-pulse-ready"></span>')
    if isinstance(survey, model.Closed):
        return _page(closed_html(survey))
    return SurveyForm(engine, principal, anonymise, survey, clock=clock).widget
