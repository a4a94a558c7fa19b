"""The Admin page's charts and zones from hand-made views (no kernel, no database): rates
against targets, integration health, the empty states, the configuration's source, and the
lists the actions work on."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from dpp_lib.charts import admin as charts
from dpp_lib.dashboards.admin import (
    AdminView,
    ConfigSource,
    Configuration,
    DeadLetter,
    Listing,
    UnlinkedPr,
)
from dpp_lib.dashboards.overview import Window
from dpp_lib.views.common import Stream
from dpp_lib.widgets import admin_sections as sections
from dpp_lib.widgets.filters import FilterState

NOW = datetime(2026, 11, 12, 18, tzinfo=UTC)
CORE = Stream(uuid.uuid4(), "core-api", "Core API")


def _rate(value: float | None, target: float, below: bool, n: int = 10) -> dict[str, Any]:
    return {
        "value": value,
        "target": target,
        "numerator": 0 if value is None else int(n * value / 100),
        "denominator": 0 if value is None else n,
        "below_target": below,
        "affects": [],
    }


STREAMS = [
    {
        "stream": "payments",
        "stream_id": str(uuid.uuid4()),
        "kind": "delivery",
        "rates": {
            "defect_attribution": _rate(50.0, 70.0, True),
            "pulse_response": _rate(None, 60.0, False),
        },
    },
    {
        "stream": "core-api",
        "stream_id": str(CORE.stream_id),
        "kind": "tech",
        "rates": {
            "pr_linkage": _rate(95.0, 90.0, False),
            "ticket_tagging": _rate(99.0, 95.0, False),
            "deployment_traceability": _rate(70.0, 80.0, True),
        },
    },
]


def _report() -> dict[str, Any]:
    names = ("prLinkageRate", "ticketTaggingRate", "deploymentTraceability")
    more = ("defectAttributionRate", "pulseResponseRate")
    return {
        **dict.fromkeys(names, 90.0),
        **dict.fromkeys(more, None),
        "targets": dict.fromkeys((*names, *more), 80.0),
        "sampleSizes": dict.fromkeys((*names, *more), 7),
        "warnings": [{"stream_id": STREAMS[0]["stream_id"]}],
        "streams": STREAMS,
    }


def _view(**changes: Any) -> AdminView:
    pr = UnlinkedPr(uuid.uuid4(), "acme/<api>", 7, "core-api", "fix-<x>", NOW, None)
    letter = DeadLetter(3, "github", "d-1", "push", NOW, 8, "")
    fields: dict[str, Any] = {
        "state": FilterState(),
        "as_of": NOW,
        "now": NOW,
        "window": Window(NOW, 30, "the 30 days to 12 Nov 2026"),
        "delivery": None,
        "tech": None,
        "notices": (),
        "data_quality": _report(),
        "integrations": {
            "github": {"status": "healthy", "lastEventAt": NOW, "eventCount24h": 12},
            "jira": {"status": "stale", "lastEventAt": "2026-11-10T09:00:00Z", "eventCount24h": 0},
        },
        "alerts": [],
        "unlinked": Listing((pr,), 30),
        "dead": Listing((letter,), 1),
        "config": Configuration(
            ConfigSource(None, None, None, "ab" * 32),
            [
                {
                    "name": "payments",
                    "display_name": "Payments",
                    "team_size": 8,
                    "min_contributors": None,
                    "labels": ["pay"],
                    "is_active": False,
                }
            ],
            [],
            [],
            [
                {
                    "jira_project_key": "PAY",
                    "jira_status_name": "In Progress",
                    "pipeline_stage": "dev",
                    "is_active_work": True,
                }
            ],
        ),
    }
    return AdminView(**{**fields, **changes})


def test_quality_cells_give_each_rate_its_verdict() -> None:
    cells = {(c["stream"], c["rate"]): c for c in charts.quality_cells(STREAMS)}
    assert cells[("payments (delivery)", "Defect attribution ≥ 70%")]["verdict"] == "below target"
    assert cells[("payments (delivery)", "Pulse response ≥ 60%")]["text"] == "—"
    assert cells[("payments (delivery)", "Pulse response ≥ 60%")]["verdict"] == "no data"
    assert cells[("core-api (tech)", "PR linkage ≥ 90%")]["verdict"] == "on target"
    assert len(cells) == 5  # only the rates each kind of stream owns


def test_the_quality_chart_has_a_panel_per_kind_in_the_specs_order() -> None:
    delivery, tech = charts.data_quality(STREAMS).to_dict()["hconcat"]
    rates = [
        label.split(" ≥")[0]
        for panel in (tech, delivery)
        for label in panel["layer"][0]["encoding"]["x"]["sort"]
    ]
    assert rates == list(charts.RATE_LABELS.values())  # tech stream rates, then delivery


def test_the_quality_zone_shows_tiles_chart_and_table() -> None:
    html = sections.quality(_view())
    assert 'id="dpp-tile-rate-pr_linkage"' in html and "90.0%" in html
    assert "No data in the 30 days to 12 Nov 2026." in html  # a rate without data
    assert 'id="dpp-chart-quality"' in html and "2 stream rates below target." in html
    assert html.count("<tr>") == 1 + 5


def test_the_stream_filter_narrows_the_quality_rows() -> None:
    html = sections.quality(_view(tech=CORE, delivery=Stream(uuid.uuid4(), "x", "X")))
    assert "1 stream rate below target." in html  # core-api's traceability
    assert html.count("<tr>") == 1 + 3 and "payments" not in html.split("<details>")[1]


def test_health_names_what_to_check_and_says_when_no_alert() -> None:
    html = sections.health(_view())
    assert "Not healthy: jira." in html and "Check the Jira webhook." in html
    assert "10 Nov 2026 09:00" in html
    assert 'id="dpp-empty-alerts"' in html
    alert = {"severity": "HIGH", "condition": "c", "message": "m <b>", "triggeredAt": NOW}
    assert "m &lt;b&gt;" in sections.health(_view(alerts=[alert]))


def test_the_unlinked_zone_lists_the_prs_escaped_or_says_why_none() -> None:
    html = sections.unlinked(_view())
    assert "30 pull requests of any tech stream" in html and "The newest 1 are listed." in html
    assert "acme/&lt;api&gt;#7" in html and "fix-&lt;x&gt;" in html
    empty = sections.unlinked(_view(unlinked=Listing((), 0), tech=CORE))
    assert "No unlinked pull request of Core API" in empty and "widen the time range" in empty
    assert sections.pr_label(_view().unlinked.rows[0]) == "acme/<api>#7 · core-api · fix-<x>"


def test_the_config_says_where_it_comes_from() -> None:
    html = sections.config(_view())
    assert "is not recorded" in html and "dpp config load FILE" in html
    assert "<td>archived</td>" in html
    assert "<td>In Progress → dev, active work</td>" in html
    recorded = ConfigSource("/etc/dpp/org.yaml", NOW, "cli", "cd" * 32)
    config = _view().config
    html = sections.config(
        _view(
            config=Configuration(
                recorded,
                config.delivery_streams,
                config.tech_streams,
                config.jira_projects,
                [],
            )
        )
    )
    assert "Loaded from /etc/dpp/org.yaml on 12 Nov 2026 18:00 UTC by cli" in html
    assert 'id="dpp-empty-config-mappings"' in html


def test_dead_letters_or_their_empty_state() -> None:
    assert "1 delivery failed every retry" in sections.dead(_view())
    line = sections.dead_line(_view().dead.rows[0])
    assert "#3</strong> github push" in line and "no error recorded" in line
    empty = sections.dead(_view(dead=Listing((), 0)))
    assert 'id="dpp-empty-dead"' in empty


def test_feedback_is_a_status_or_an_alert() -> None:
    assert 'role="status"' in sections.feedback("done <ok>", ok=True)
    assert "done &lt;ok&gt;" in sections.feedback("done <ok>", ok=True)
    assert 'role="alert"' in sections.feedback("failed", ok=False)


def test_the_integrations_chart_has_one_bar_per_source() -> None:
    sources = _view().integrations
    spec = charts.integrations(sources).to_dict()
    data = next(iter(spec["datasets"].values()))
    assert [(d["source"], d["events"], d["status"]) for d in data] == [
        ("github", 12, "healthy"),
        ("jira", 0, "stale"),
    ]
