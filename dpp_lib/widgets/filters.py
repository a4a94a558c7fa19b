"""The filter bar every dashboard page shares (spec §7.2, DESIGN §8): delivery stream, tech
stream, time range and zone toggles, read from the page URL's query string on load and
written back to it on every change, so a view can be bookmarked and shared.

``FilterState`` is the pure part (query string in and out, checked values); ``FilterBar``
the ipywidgets that edit it. The query keys:

========== ================================================= ===========================
key        values                                            default
========== ================================================= ===========================
stream     a delivery stream's name (or id), or ``all``      ``all``
tech_stream a tech stream's name (or id), or ``all``         ``all``
range      ``sprint`` | ``30d`` | ``90d`` | ``custom``       ``30d``
from, to   ISO dates (``range=custom`` only)                 —
zones      comma list of realtime, diagnostic, trend,        every zone
           forecast, health; ``none`` for none
as_of      ISO 8601 moment or date: the page as it was then  now
========== ================================================= ===========================

A value the page cannot use falls back to its default with a notice the page shows. A stream
the viewer may not see is kept as asked: the stream lists offer only the viewer's streams,
and the data layer refuses the stream (``StreamAccessDenied``), so the page shows the access
message and no data rather than silently showing another stream.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import ipywidgets as widgets  # type: ignore[import-untyped]

from dpp_lib.errors import DppError
from dpp_lib.widgets import url

if TYPE_CHECKING:
    from dpp_lib.dashboards.data import VisibleStreams
    from dpp_lib.views.common import Stream

ALL = "all"
TIME_RANGES = {"sprint": "Current sprint", "30d": "30 days", "90d": "90 days", "custom": "Custom"}
RANGE_DAYS = {"30d": 30, "90d": 90}
DEFAULT_RANGE = "30d"
ZONES = {
    "realtime": "Real-time",
    "diagnostic": "Diagnostics",
    "trend": "Trends",
    "forecast": "Forecast",
    "health": "Team health",
}
NO_ZONES = "none"
MAX_CUSTOM_DAYS = 730


class FilterError(DppError):
    """A filter value that cannot be used (raised when a ``FilterState`` is built in code
    with one; the query string path turns the same problems into notices)."""

    code = "bad_filter"
    http_status = 400


@dataclass(frozen=True)
class FilterState:
    """What a dashboard page shows. ``delivery``/``tech``: a stream name or ``all``;
    ``date_from``/``date_to`` only with ``time_range="custom"``; ``zones`` in page order;
    ``as_of``: ISO text (None: now)."""

    delivery: str = ALL
    tech: str = ALL
    time_range: str = DEFAULT_RANGE
    date_from: date | None = None
    date_to: date | None = None
    zones: tuple[str, ...] = tuple(ZONES)
    as_of: str | None = None

    def __post_init__(self) -> None:
        if self.time_range not in TIME_RANGES:
            raise FilterError(f"time range {self.time_range!r}: choose {_choices(TIME_RANGES)}")
        unknown = [z for z in self.zones if z not in ZONES]
        if unknown:
            raise FilterError(f"zones {unknown}: choose among {_choices(ZONES)}")
        object.__setattr__(self, "zones", tuple(z for z in ZONES if z in self.zones))
        if self.time_range == "custom":
            problem = custom_range_problem(self.date_from, self.date_to)
            if problem:
                raise FilterError(problem)
        elif self.date_from is not None or self.date_to is not None:
            raise FilterError("from/to dates need the custom time range")
        if self.as_of is not None:
            moment(self.as_of, "UTC")  # raises FilterError naming the value

    @classmethod
    def from_query(cls, params: Mapping[str, str], visible: VisibleStreams) -> FilterRead:
        """The state a URL asks for, and a notice for each value that fell back to its
        default. Unknown keys are ignored."""
        notices: list[str] = []
        delivery = _stream(params.get("stream", ""), visible.delivery)
        tech = _stream(params.get("tech_stream", ""), visible.tech)
        as_of = _as_of(params.get("as_of", ""), notices)
        time_range, date_from, date_to = _time_range(params, notices)
        zones = _zones(params, notices)
        state = cls(delivery, tech, time_range, date_from, date_to, zones, as_of)
        return FilterRead(state, tuple(notices))

    def to_query(self) -> dict[str, str]:
        """The query parameters that differ from the defaults (``from_query`` of them gives
        this state back)."""
        out: dict[str, str] = {}
        if self.delivery != ALL:
            out["stream"] = self.delivery
        if self.tech != ALL:
            out["tech_stream"] = self.tech
        if self.time_range != DEFAULT_RANGE:
            out["range"] = self.time_range
        if self.date_from is not None and self.date_to is not None:
            out["from"], out["to"] = self.date_from.isoformat(), self.date_to.isoformat()
        if self.zones != tuple(ZONES):
            out["zones"] = ",".join(self.zones) or NO_ZONES
        if self.as_of is not None:
            out["as_of"] = self.as_of
        return out

    def query_string(self) -> str:
        return url.encode(self.to_query())

    def shows(self, zone: str) -> bool:
        return zone in self.zones

    def replace(self, **changes: Any) -> FilterState:
        return dataclasses.replace(self, **changes)

    def describe_range(self) -> str:
        if self.time_range == "custom" and self.date_from and self.date_to:
            return f"{self.date_from.isoformat()} to {self.date_to.isoformat()}"
        return TIME_RANGES[self.time_range].lower()


@dataclass(frozen=True)
class FilterRead:
    state: FilterState
    notices: tuple[str, ...] = ()


def moment(text: str, time_zone: str, *, now: datetime | None = None) -> datetime:
    """An ``as_of`` value as an aware UTC moment, read as the API reads it: a date means its
    end (the next local midnight); a moment without an offset is in the org's time zone.
    Refuses the future (more than 5 minutes ahead) and years before 2000."""
    value = text.strip().replace(" ", "+", 1)  # a "+" the query string turned into a space
    zone = ZoneInfo(time_zone)
    try:
        if len(value) == 10:
            at = datetime.combine(date.fromisoformat(value) + timedelta(days=1), time(), zone)
        else:
            at = datetime.fromisoformat(value.replace("Z", "+00:00"))
            at = at if at.tzinfo is not None else at.replace(tzinfo=zone)
    except ValueError:
        raise FilterError(
            f"as_of={text!r} is not an ISO 8601 date or moment (e.g. 2026-11-12T18:00:00Z)"
        ) from None
    at = at.astimezone(UTC)
    if at > (now or datetime.now(UTC)) + timedelta(minutes=5):
        raise FilterError(f"as_of={text!r} is in the future")
    if at.year < 2000:
        raise FilterError(f"as_of={text!r} is before 2000")
    return at


def custom_range_problem(date_from: date | None, date_to: date | None) -> str | None:
    if date_from is None or date_to is None:
        return "a custom time range needs both a from and a to date"
    if date_from > date_to:
        return f"the custom range starts ({date_from}) after it ends ({date_to})"
    if (date_to - date_from).days + 1 > MAX_CUSTOM_DAYS:
        return f"a custom range spans at most {MAX_CUSTOM_DAYS} days"
    return None


def _choices(options: Mapping[str, str]) -> str:
    return ", ".join(options)


def _stream(text: str, streams: Sequence[Stream]) -> str:
    """The stream's canonical name when the viewer may see it; the text as asked when not
    (the page then shows the access message); ``all`` when empty."""
    wanted = text.strip()
    if not wanted or wanted.casefold() == ALL:
        return ALL
    for s in streams:
        if wanted.casefold() in (s.name.casefold(), s.display_name.casefold(), str(s.stream_id)):
            return s.name
    return wanted


def _as_of(text: str, notices: list[str]) -> str | None:
    if not text.strip():
        return None
    try:
        moment(text, "UTC")
    except FilterError as exc:
        notices.append(f"{exc.message}: showing the latest figures instead.")
        return None
    return text.strip().replace(" ", "+", 1)


def _time_range(
    params: Mapping[str, str], notices: list[str]
) -> tuple[str, date | None, date | None]:
    wanted = params.get("range", "").strip().lower() or DEFAULT_RANGE
    fallback = TIME_RANGES[DEFAULT_RANGE].lower()
    if wanted not in TIME_RANGES:
        notices.append(
            f"Unknown time range {wanted!r}: showing the last {fallback}."
            f" Choose {_choices(TIME_RANGES)}."
        )
        return DEFAULT_RANGE, None, None
    if wanted != "custom":
        return wanted, None, None
    try:
        start = date.fromisoformat(params.get("from", "").strip())
        end = date.fromisoformat(params.get("to", "").strip())
    except ValueError:
        notices.append(
            "A custom time range needs from and to dates like 2026-10-01:"
            f" showing the last {fallback}."
        )
        return DEFAULT_RANGE, None, None
    problem = custom_range_problem(start, end)
    if problem:
        notices.append(f"{problem[0].upper()}{problem[1:]}: showing the last {fallback}.")
        return DEFAULT_RANGE, None, None
    return "custom", start, end


def _zones(params: Mapping[str, str], notices: list[str]) -> tuple[str, ...]:
    if "zones" not in params:
        return tuple(ZONES)
    text = params["zones"].strip().lower()
    if text in ("", NO_ZONES):
        return ()
    asked = [z.strip() for z in text.split(",") if z.strip()]
    unknown = [z for z in asked if z not in ZONES]
    if unknown:
        notices.append(
            f"Unknown zone {', '.join(repr(z) for z in unknown)} ignored;"
            f" zones are {_choices(ZONES)}."
        )
    return tuple(z for z in ZONES if z in asked)


# --- the widgets --------------------------------------------------------------------------

Listener = Callable[[FilterState], None]


class FilterBar:
    """Dropdowns of the viewer's streams (plus "All"), the time range with date pickers for
    a custom range, and one toggle per zone. Every change updates ``state``, writes it to
    the URL and calls the ``on_change`` listeners with it. ``widget`` is what to display."""

    def __init__(
        self,
        state: FilterState,
        visible: VisibleStreams,
        *,
        today: date,
        zones: Sequence[str] = tuple(ZONES),
    ) -> None:
        self.state = state
        self.today = today  # the as_of day: a custom range defaults to the 30 days before it
        self._listeners: list[Listener] = []
        self._quiet = False
        self.url = url.UrlWriter()
        self.delivery = _dropdown("Delivery stream", visible.delivery, state.delivery)
        self.delivery.add_class("dpp-filter-delivery")
        self.tech = _dropdown("Tech stream", visible.tech, state.tech)
        self.tech.add_class("dpp-filter-tech")
        self.time_range = widgets.ToggleButtons(
            options=[(label, key) for key, label in TIME_RANGES.items()],
            value=state.time_range,
            description="Time range",
            style={"button_width": "8em"},
        )
        self.time_range.add_class("dpp-filter-range")
        self.date_from = widgets.DatePicker(value=state.date_from, description="From")
        self.date_to = widgets.DatePicker(value=state.date_to, description="To")
        self.dates = widgets.HBox([self.date_from, self.date_to])
        self.dates.add_class("dpp-filter-dates")
        self.zone_toggles = {
            z: widgets.ToggleButton(value=z in state.zones, description=ZONES[z], icon="")
            for z in zones
        }
        for z, toggle in self.zone_toggles.items():
            toggle.add_class(f"dpp-zone-toggle-{z}")
        self._show_dates()
        zone_row = widgets.HBox([widgets.Label("Zones"), *self.zone_toggles.values()])
        zone_row.layout.display = "" if zones else "none"  # a page without zone toggles
        self.widget = widgets.VBox(
            [
                widgets.HBox([self.delivery, self.tech]),
                widgets.HBox([self.time_range, self.dates]),
                zone_row,
                self.url.widget,
            ]
        )
        self.widget.add_class("dpp-filter-bar")
        for w in (self.delivery, self.tech, self.time_range, self.date_from, self.date_to):
            w.observe(self._changed, names="value")
        for toggle in self.zone_toggles.values():
            toggle.observe(self._changed, names="value")

    def on_change(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def read(self) -> FilterState:
        """The state the widgets show now (a custom range with a missing or reversed date
        keeps the previous range until both dates make sense)."""
        time_range = str(self.time_range.value)
        start, end = self.date_from.value, self.date_to.value
        if time_range == "custom" and custom_range_problem(start, end):
            time_range, start, end = self.state.time_range, self.state.date_from, self.state.date_to
        elif time_range != "custom":
            start = end = None
        return FilterState(
            delivery=self.delivery.value
            if self.delivery.value is not None
            else self.state.delivery,
            tech=self.tech.value if self.tech.value is not None else self.state.tech,
            time_range=time_range,
            date_from=start,
            date_to=end,
            zones=tuple(  # a zone without a toggle on this page keeps its state
                z
                for z in ZONES
                if (self.zone_toggles[z].value if z in self.zone_toggles else self.state.shows(z))
            ),
            as_of=self.state.as_of,
        )

    def _changed(self, _: object) -> None:
        if self._quiet:
            return
        if self.time_range.value == "custom" and self.date_from.value is None:
            self._quiet = True  # fill both pickers once, then read them
            self.date_from.value = self.today - timedelta(days=29)
            self.date_to.value = self.date_to.value or self.today
            self._quiet = False
        self._show_dates()
        state = self.read()
        if state == self.state:
            return
        self.state = state
        self.url.write(state.query_string())
        for listener in self._listeners:
            listener(state)

    def _show_dates(self) -> None:
        self.dates.layout.display = "" if self.time_range.value == "custom" else "none"


def _dropdown(label: str, streams: Sequence[Stream], value: str) -> widgets.Dropdown:
    options = [(f"All {label.lower()}s", ALL)] + [
        (f"{s.display_name} ({s.name})" if s.display_name != s.name else s.name, s.name)
        for s in streams
    ]
    known = {v for _, v in options}
    return widgets.Dropdown(
        options=options,
        value=value if value in known else None,  # a stream not offered: nothing selected
        description=label,
        style={"description_width": "initial"},
    )
