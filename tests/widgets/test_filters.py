"""The shared filter bar without a browser: the query string in and out, bad values falling
back with a notice, streams the viewer may not see kept as asked (the page then refuses
them), and the widgets writing their state to the URL."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime

import pytest

from dpp_lib.dashboards.data import VisibleStreams
from dpp_lib.views.common import Stream
from dpp_lib.widgets import url
from dpp_lib.widgets.filters import (
    ALL,
    ZONES,
    FilterBar,
    FilterError,
    FilterState,
    moment,
)

PAYMENTS = Stream(uuid.uuid4(), "payments", "Payments")
LENDING = Stream(uuid.uuid4(), "lending", "Lending")
CORE = Stream(uuid.uuid4(), "core-api", "Core API")
EVERYTHING = VisibleStreams((LENDING, PAYMENTS), (CORE,))
ANN = VisibleStreams((PAYMENTS,), ())  # a viewer of one delivery stream


def test_no_query_is_the_default_view() -> None:
    read = FilterState.from_query({}, EVERYTHING)
    assert read.state == FilterState()
    assert read.notices == ()
    assert read.state.zones == tuple(ZONES)
    assert read.state.to_query() == {}


@pytest.mark.parametrize(
    "state",
    [
        FilterState(),
        FilterState(delivery="payments", tech="core-api", time_range="90d"),
        FilterState(time_range="sprint", zones=("realtime", "forecast")),
        FilterState(time_range="custom", date_from=date(2026, 9, 1), date_to=date(2026, 10, 31)),
        FilterState(zones=()),
        FilterState(delivery="lending", as_of="2026-11-12T18:00:00+00:00"),
        FilterState(as_of="2026-11-12"),
    ],
)
def test_the_query_string_round_trips(state: FilterState) -> None:
    query = state.query_string()
    parsed = dict(pair.split("=", 1) for pair in query.split("&")) if query else {}
    decoded = {k: v.replace("%2B", "+") for k, v in parsed.items()}
    read = FilterState.from_query(decoded, EVERYTHING)
    assert read.state == state
    assert read.notices == ()


def test_a_time_zone_offset_survives_the_query_string() -> None:
    query = FilterState(as_of="2026-11-12T18:00:00+01:00").query_string()
    assert "%2B01:00" in query  # a bare + would come back as a space
    # ...and a + that did arrive as a space (hand-typed URL) is read back as +
    read = FilterState.from_query({"as_of": "2026-11-12T18:00:00 01:00"}, EVERYTHING)
    assert read.state.as_of == "2026-11-12T18:00:00+01:00"


def test_streams_match_by_name_display_name_or_id_in_any_case() -> None:
    for asked in ("PAYMENTS", "Payments", str(PAYMENTS.stream_id), " payments "):
        assert FilterState.from_query({"stream": asked}, EVERYTHING).state.delivery == "payments"
    assert FilterState.from_query({"tech_stream": "core_api"}, EVERYTHING).state.tech == "core_api"
    assert FilterState.from_query({"tech_stream": "Core API"}, EVERYTHING).state.tech == "core-api"
    assert FilterState.from_query({"stream": "All"}, EVERYTHING).state.delivery == ALL


def test_a_stream_the_viewer_may_not_see_is_kept_not_replaced() -> None:
    read = FilterState.from_query({"stream": "lending"}, ANN)
    assert read.state.delivery == "lending"  # the page refuses it; it does not show payments
    assert read.notices == ()
    assert read.state.to_query() == {"stream": "lending"}


def test_unknown_keys_are_ignored() -> None:
    read = FilterState.from_query({"utm_source": "mail", "stream": "payments"}, EVERYTHING)
    assert read.state == FilterState(delivery="payments")
    assert read.notices == ()


@pytest.mark.parametrize(
    ("params", "expected", "notice"),
    [
        ({"range": "weekly"}, FilterState(), "Unknown time range 'weekly'"),
        ({"range": "custom"}, FilterState(), "needs from and to dates"),
        ({"range": "custom", "from": "2026-10-31", "to": "2026-10-01"}, FilterState(), "after"),
        ({"range": "custom", "from": "2020-01-01", "to": "2026-10-01"}, FilterState(), "730"),
        ({"zones": "realtime,weather"}, FilterState(zones=("realtime",)), "'weather' ignored"),
        ({"as_of": "yesterday"}, FilterState(), "not an ISO 8601"),
        ({"as_of": "2999-01-01T00:00:00Z"}, FilterState(), "in the future"),
    ],
)
def test_bad_values_fall_back_with_a_notice(
    params: dict[str, str], expected: FilterState, notice: str
) -> None:
    read = FilterState.from_query(params, EVERYTHING)
    assert read.state == expected
    assert len(read.notices) == 1
    assert notice in read.notices[0]


def test_zones_keep_page_order_and_none_hides_all() -> None:
    read = FilterState.from_query({"zones": "health,realtime"}, EVERYTHING)
    assert read.state.zones == ("realtime", "health")
    assert FilterState.from_query({"zones": "none"}, EVERYTHING).state.zones == ()
    assert FilterState(zones=()).to_query() == {"zones": "none"}


def test_a_state_built_in_code_with_bad_values_is_refused() -> None:
    with pytest.raises(FilterError, match="time range 'weekly'"):
        FilterState(time_range="weekly")
    with pytest.raises(FilterError, match="needs both a from and a to date"):
        FilterState(time_range="custom", date_from=date(2026, 10, 1))
    with pytest.raises(FilterError, match="need the custom time range"):
        FilterState(date_from=date(2026, 10, 1), date_to=date(2026, 10, 2))
    with pytest.raises(FilterError, match="zones"):
        FilterState(zones=("weather",))


def test_as_of_is_read_as_the_api_reads_it() -> None:
    now = datetime(2026, 11, 24, tzinfo=UTC)
    assert moment("2026-11-12T18:00:00Z", "UTC", now=now) == datetime(2026, 11, 12, 18, tzinfo=UTC)
    # a date is its end in the org's zone; a moment without offset is in that zone
    assert moment("2026-11-12", "Europe/London", now=now) == datetime(2026, 11, 13, tzinfo=UTC)
    assert moment("2026-07-01T12:00", "Europe/London", now=now) == datetime(
        2026, 7, 1, 11, tzinfo=UTC
    )
    with pytest.raises(FilterError, match="before 2000"):
        moment("1999-06-30", "UTC", now=now)


def test_the_url_script_sets_only_the_query() -> None:
    script = url.replace_state_script("stream=payments&range=90d")
    assert "history.replaceState" in script
    assert '"stream=payments&range=90d"' in script
    assert "<" not in url.replace_state_script("stream=%3Cscript%3E")
    assert (
        url.encode({"stream": "a b", "zones": "realtime,trend"})
        == "stream=a+b&zones=realtime,trend"
    )


# --- the widgets (no browser: the widget models are plain Python objects) ----------------


def test_the_bar_lists_only_the_viewers_streams() -> None:
    bar = FilterBar(FilterState(), ANN, today=date(2026, 11, 12))
    assert [v for _, v in bar.delivery.options] == [ALL, "payments"]
    assert [v for _, v in bar.tech.options] == [ALL]


def test_a_forbidden_stream_selects_nothing_until_the_viewer_picks_one() -> None:
    bar = FilterBar(FilterState(delivery="lending"), ANN, today=date(2026, 11, 12))
    assert bar.delivery.value is None
    assert bar.read().delivery == "lending"
    seen: list[FilterState] = []
    bar.on_change(seen.append)
    bar.delivery.value = "payments"
    assert seen == [FilterState(delivery="payments")]


def test_changes_reach_listeners_and_the_url() -> None:
    bar = FilterBar(FilterState(as_of="2026-11-12"), EVERYTHING, today=date(2026, 11, 12))
    seen: list[FilterState] = []
    bar.on_change(seen.append)
    bar.delivery.value = "lending"
    bar.zone_toggles["forecast"].value = False
    assert [s.delivery for s in seen] == ["lending", "lending"]
    assert seen[-1].zones == ("realtime", "diagnostic", "trend", "health")
    assert bar.url.last == "stream=lending&zones=realtime,diagnostic,trend,health&as_of=2026-11-12"
    bar.delivery.value = "lending"  # no change, no call
    assert len(seen) == 2


def test_custom_range_fills_the_pickers_and_shows_them() -> None:
    bar = FilterBar(FilterState(), EVERYTHING, today=date(2026, 11, 12))
    assert bar.dates.layout.display == "none"
    seen: list[FilterState] = []
    bar.on_change(seen.append)
    bar.time_range.value = "custom"
    assert bar.dates.layout.display == ""
    assert seen[-1] == FilterState(
        time_range="custom", date_from=date(2026, 10, 14), date_to=date(2026, 11, 12)
    )
    bar.date_from.value = date(2026, 11, 20)  # after "to": ignored until it makes sense
    assert len(seen) == 1
    bar.date_to.value = date(2026, 11, 22)
    assert seen[-1].date_from == date(2026, 11, 20)
    assert seen[-1].describe_range() == "2026-11-20 to 2026-11-22"
