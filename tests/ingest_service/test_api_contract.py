"""Contract tests: every read endpoint of the API reference on the demo organisation, its
field names and types (the response models), and its values against the metric functions
called directly for the same ``as_of`` (spec §7.3, api-reference.md)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from dpp_lib.metrics import data_quality, dora, flow, forecast, pulse, quality, review
from dpp_lib.metrics.common import Scope
from dpp_lib.store import read
from dpp_lib.store.config_tables import load_lookups
from dpp_lib.store.schema import sprints
from ingest_service.app import create_app
from ingest_service.schemas import MODELS
from tests.conftest import DemoOrg
from tests.ingest_service.api_support import AS_OF, bearer, keys_for

WHEN = datetime(2026, 11, 12, 18, tzinfo=UTC)


@pytest.fixture
def api(demo_org: DemoOrg) -> Iterator[tuple[TestClient, DemoOrg]]:
    with TestClient(create_app(demo_org.settings)) as client:
        yield client, demo_org


def get(client: TestClient, org: DemoOrg, path: str, model: str, **params: Any) -> Any:
    token = keys_for(org).admin
    answer = client.get(path, params=params, headers=bearer(token))
    assert answer.status_code == 200, answer.text
    body = answer.json()
    MODELS[model].model_validate(body)  # field names and types of the reference
    assert body["status"] == "ok"
    assert body["meta"]["request_id"] == answer.headers["x-request-id"]
    assert answer.headers["x-api-version"] == "1.0"
    assert int(answer.headers["x-ratelimit-remaining"]) >= 0
    return body


def ids(org: DemoOrg) -> tuple[Any, Any, Any]:
    with org.engine.connect() as conn:
        lk = load_lookups(conn)
    return lk, lk.delivery_stream("payments"), lk.tech_stream_id("core-api")


def test_streams_and_sprints(api: tuple[TestClient, DemoOrg]) -> None:
    client, org = api
    delivery = get(client, org, "/api/v1/streams/delivery", "streams/delivery")["data"]
    tech = get(client, org, "/api/v1/streams/tech", "streams/tech")["data"]
    assert {s["name"] for s in delivery} == {"payments", "lending", "onboarding", "insights"}
    assert {s["name"] for s in tech} >= {"core-api", "auth", "frontend"}
    assert all(set(s) >= {"id", "name", "display_name", "team_size"} for s in delivery)
    assert all(set(s) >= {"id", "name", "display_name", "github_org"} for s in tech)
    _, pay, _ = ids(org)
    by_name = get(client, org, "/api/v1/sprints", "sprints", stream="payments")["data"]
    by_id = get(client, org, "/api/v1/sprints", "sprints", stream=str(pay))["data"]
    assert by_name == by_id and by_name
    with org.engine.connect() as conn:
        stored = conn.execute(
            sa.select(sa.func.count()).where(sprints.c.delivery_stream_id == pay)
        ).scalar_one()
    assert len(by_name) == stored
    closed = get(client, org, "/api/v1/sprints", "sprints", stream="payments", state="closed")
    assert closed["data"] and {s["state"] for s in closed["data"]} == {"closed"}
    assert set(by_name[0]) >= {"id", "name", "state", "start_date", "end_date"}


def test_realtime_matches_the_metric_functions(api: tuple[TestClient, DemoOrg]) -> None:
    client, org = api
    lk, pay, _ = ids(org)
    body = get(
        client, org, "/api/v1/metrics/realtime", "metrics/realtime", stream="payments", as_of=AS_OF
    )
    scope = Scope(delivery_stream_id=pay)
    with org.engine.connect() as conn:
        items = read.items(conn, lk, as_of=WHEN, scope=scope)
        cycles = read.cycles(conn, as_of=WHEN, scope=scope)
    wip = flow.wip_by_stage(items, as_of=WHEN)
    ct = flow.cycle_time(cycles, as_of=WHEN)
    data = body["data"]
    assert data["wip_by_stage"] == wip.by_stage
    assert data["cycle_time"] == {
        "p50": ct.p50,
        "p85": ct.p85,
        "p95": ct.p95,
        "sample_size": ct.sample_size,
    }
    assert [p["ticket_id"] for p in data["cycle_scatter"]] == [p.ticket_id for p in ct.scatter]
    assert data["sprint_confidence"]["confidence_pct"] is not None
    assert body["meta"]["stream_id"] == str(pay) and body["meta"]["stream_type"] == "delivery"
    assert body["meta"]["as_of"].startswith("2026-11-12T18:00:00")


def test_diagnostic_matches_the_metric_functions(api: tuple[TestClient, DemoOrg]) -> None:
    client, org = api
    _, pay, core = ids(org)
    for stream, scope in (
        ("payments", Scope(delivery_stream_id=pay)),
        ("core-api", Scope(tech_stream_id=core)),
    ):
        body = get(
            client,
            org,
            "/api/v1/metrics/diagnostic",
            "metrics/diagnostic",
            stream=stream,
            window=60,
            as_of=AS_OF,
        )
        with org.engine.connect() as conn:
            cycles = read.cycles(conn, as_of=WHEN, scope=scope)
            defects = read.defects(conn, as_of=WHEN, scope=scope)
            prs = read.prs(conn, as_of=WHEN, scope=scope)
            reviews = read.reviews(conn, as_of=WHEN, scope=scope)
        fe = flow.flow_efficiency(cycles, as_of=WHEN, window_days=60)
        de = quality.defect_escape(defects, cycles, as_of=WHEN, window_days=60)
        rt = review.review_turnaround(prs, reviews, as_of=WHEN, window_days=60)
        data = body["data"]
        assert data["flow_efficiency"]["percentage"] == pytest.approx(
            fe.flow_efficiency_pct, abs=0.05
        )
        assert data["flow_efficiency"]["active_days"] == pytest.approx(fe.active_days, abs=0.005)
        assert data["defect_escape"]["defect_count"] == de.defect_count
        assert data["defect_escape"]["total_completed"] == de.total_completed
        assert data["pr_review_turnaround"]["median_hours"] == rt.p50_hours
        assert data["pr_review_turnaround"]["is_suppressed"] == rt.is_suppressed
        assert body["meta"]["window_days"] == 60
        assert body["meta"]["stream_type"] == ("delivery" if stream == "payments" else "tech")


def test_trends_both_shapes_match_the_dora_functions(api: tuple[TestClient, DemoOrg]) -> None:
    client, org = api
    lk, _, core = ids(org)
    series = get(
        client, org, "/api/v1/metrics/trends", "metrics/trends", tech_stream="core-api", as_of=AS_OF
    )
    points = series["data"]["series"]
    assert len(points) in (13, 14) and all(p["weekStart"] for p in points)
    summary = get(client, org, "/api/v1/metrics/trends", "metrics/trends", as_of=AS_OF)
    rows = {r["techStreamId"]: r for r in summary["data"]["dora"]}
    scope = Scope(tech_stream_id=core)
    with org.engine.connect() as conn:
        deploys = read.deploys(conn, as_of=WHEN, scope=scope)
        incidents = read.incidents(conn, as_of=WHEN, scope=scope)
        prs = read.prs(conn, as_of=WHEN, scope=scope)
    df = dora.deployment_frequency(deploys, as_of=WHEN, window_days=90, calendar=lk.calendar())
    cfr = dora.change_failure_rate(
        deploys,
        incidents,
        as_of=WHEN,
        window_days=90,
        correlation_window_minutes=lk.incident_correlation_window_minutes,
    )
    ttr = dora.time_to_restore(incidents, as_of=WHEN, window_days=90)
    lt = dora.lead_time_for_changes(prs, deploys, as_of=WHEN, window_days=90)
    row = rows[str(core)]
    assert row["deployCount"] == df.deploy_count > 0
    assert row["deploymentFrequency"] == df.deployment_frequency
    assert row["changeFailureRate"] == pytest.approx(cfr.change_failure_rate, abs=0.05)
    assert row["ttrMedian"] == pytest.approx(ttr.ttr_median, abs=0.05)
    assert row["leadTimeP50"] == pytest.approx(lt.lead_time_p50, abs=0.05)
    assert row["leadTimeDeployCount"] == lt.lead_time_deploy_count
    # the weekly raw counts add up to the deploys of the window
    assert sum(p["deploymentFrequency"] for p in points) == df.deploy_count
    assert summary["meta"]["window_days"] == 90 and series["meta"]["tech_stream_id"] == str(core)


def test_forecast_has_both_blocks_from_the_forecast_functions(
    api: tuple[TestClient, DemoOrg],
) -> None:
    client, org = api
    lk, pay, _ = ids(org)
    body = get(
        client, org, "/api/v1/metrics/forecast", "metrics/forecast", stream="payments", as_of=AS_OF
    )
    scope = Scope(delivery_stream_id=pay)
    with org.engine.connect() as conn:
        cycles = read.cycles(conn, as_of=WHEN, scope=scope)
        items = read.items(conn, lk, as_of=WHEN, scope=scope)
        sprint_rows = read.sprint_frame(conn, scope=scope)
    hm = forecast.forecast_how_many(cycles, sprint_rows, as_of=WHEN, calendar=lk.calendar())
    when = forecast.forecast_when(cycles, items, as_of=WHEN, calendar=lk.calendar())
    f, w = body["data"]["forecast"], body["data"]["when"]
    assert (f["p50"], f["p85"], f["p95"], f["simulations"]) == (hm.p50, hm.p85, hm.p95, 1000)
    assert w["method"] == when.method == "monte_carlo"
    assert w["p50"] == when.p50_completion_date.isoformat()  # type: ignore[union-attr]
    assert w["p95"] == when.p95_completion_date.isoformat()  # type: ignore[union-attr]
    assert sum(b["runs"] for b in w["histogram"]) <= 10_000 and w["histogram"]
    assert body["meta"]["window_weeks"] == 12


def test_pulse_and_cross_stream(api: tuple[TestClient, DemoOrg]) -> None:
    client, org = api
    _, pay, _ = ids(org)
    body = get(
        client,
        org,
        "/api/v1/metrics/pulse",
        "metrics/pulse",
        stream="payments",
        periods=3,
        as_of=AS_OF,
    )
    with org.engine.connect() as conn:
        responses = read.pulse(conn, as_of=WHEN, scope=Scope(delivery_stream_id=pay))
    expected = pulse.team_pulse(responses, as_of=WHEN, team_sizes={pay: 8}, periods=3)
    got = body["data"]["aggregates"]
    assert [a["survey_period"] for a in got] == [a.survey_period for a in expected.aggregates]
    assert [a["pace_avg"] for a in got] == [a.pace_avg for a in expected.aggregates]
    assert len(got) == 3
    cross = get(client, org, "/api/v1/metrics/cross-stream", "metrics/cross-stream", as_of=AS_OF)
    rows = cross["data"]["correlations"]
    assert rows and {
        "tech_stream_id",
        "block_count_14d",
        "avg_confidence_pct",
        "avg_cycle_time_p85",
        "severity",
        "computed_at",
    } <= set(rows[0])
    one = get(
        client,
        org,
        "/api/v1/metrics/cross-stream",
        "metrics/cross-stream",
        tech_stream=rows[0]["tech_stream"],
        as_of=AS_OF,
    )
    assert one["data"]["correlations"] == [
        rows[0] | {"computed_at": one["data"]["correlations"][0]["computed_at"]}
    ]


def test_admin_data_quality_and_integration_health(api: tuple[TestClient, DemoOrg]) -> None:
    client, org = api
    lk, _, _ = ids(org)
    body = get(client, org, "/api/v1/admin/data-quality", "admin/data-quality", as_of=AS_OF)
    with org.engine.connect() as conn:
        dq = data_quality.data_quality(
            read.prs(conn, as_of=WHEN),
            read.transitions(conn, lk, as_of=WHEN),
            read.deploys(conn, as_of=WHEN),
            read.defects(conn, as_of=WHEN),
            read.pulse(conn, as_of=WHEN),
            as_of=WHEN,
            team_size=8 + 9 + 7 + 6,
        )
    data = body["data"]
    assert data["prLinkageRate"] == pytest.approx(dq.rates["pr_linkage"].value, abs=0.05)
    assert data["deploymentTraceability"] == pytest.approx(
        dq.rates["deployment_traceability"].value, abs=0.05
    )
    assert all({"stream", "issue", "value", "threshold"} <= set(w) for w in data["warnings"])
    health = get(client, org, "/api/v1/admin/integration-health", "admin/integration-health")
    assert health["data"]["integrations"]["jira"]["status"] == "healthy"  # loaded minutes ago
    assert health["data"]["integrations"]["jira"]["eventCount24h"] > 0
    alerts = get(client, org, "/api/v1/admin/system-alerts", "admin/system-alerts")
    assert isinstance(alerts["data"]["alerts"], list)


def test_as_of_reproduces_a_past_view_and_bad_parameters_are_named(
    api: tuple[TestClient, DemoOrg],
) -> None:
    client, org = api
    token = keys_for(org).admin
    first = get(
        client,
        org,
        "/api/v1/metrics/realtime",
        "metrics/realtime",
        stream="payments",
        as_of="2026-10-01",
    )
    again = client.get(
        "/api/v1/metrics/realtime",
        params={"stream": "payments", "as_of": "2026-10-01"},
        headers=bearer(token),
    ).json()
    assert again["meta"]["cached"] is True and again["data"] == first["data"]
    later = get(
        client, org, "/api/v1/metrics/realtime", "metrics/realtime", stream="payments", as_of=AS_OF
    )
    assert later["data"]["cycle_scatter"] != first["data"]["cycle_scatter"]
    for params, status, field in (
        ({"as_of": "yesterday"}, 400, "as_of"),
        ({"as_of": "2999-01-01"}, 400, "as_of"),
        ({"window": "0"}, 422, "window"),
        ({"window": "many"}, 422, "window"),
        ({"stream": "no-such-stream"}, 404, None),
    ):
        answer = client.get("/api/v1/metrics/diagnostic", params=params, headers=bearer(token))
        body = answer.json()
        assert answer.status_code == status, (params, body)
        assert body["status"] == "error" and body["request_id"] == answer.headers["x-request-id"]
        if field:
            assert field in body["message"] and body["error"]["details"][0]["field"].endswith(field)
