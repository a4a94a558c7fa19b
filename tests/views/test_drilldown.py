"""Drilldown read model: items, factors, filters, sorting and pages on hand-built frames, then
on the demo organisation, where the items must be exactly those the metric counts."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
import pytest
import sqlalchemy as sa

from dpp_lib.errors import BadParameter
from dpp_lib.ingest.lookups import OrgLookups
from dpp_lib.metrics import dora, flow, quality, review
from dpp_lib.metrics.common import Scope
from dpp_lib.metrics.frames import make_frame
from dpp_lib.store import read
from dpp_lib.store.config_tables import load_lookups
from dpp_lib.store.schema import pr_events
from dpp_lib.views._frames import Names, load_names
from dpp_lib.views.drilldown import (
    DRILLDOWN_METRICS,
    SORT_FIELDS,
    Item,
    drilldown,
    drilldown_of,
    sort_items,
)
from tests.conftest import DemoOrg

AS_OF = datetime(2024, 3, 11, tzinfo=UTC)
T0 = AS_OF - timedelta(days=3)
D1, D2 = uuid.UUID(int=1), uuid.UUID(int=2)
T1 = uuid.UUID(int=11)
R1 = uuid.UUID(int=21)

LOOKUPS = OrgLookups(
    version="test",
    delivery_by_label={},
    delivery_by_key={},
    tech_streams=(),
    tech_by_label={},
    repositories={},
    repos_by_target={},
    jira_projects={},
    status_mappings={},
)
NAMES = Names(
    delivery={D1: "payments", D2: "lending"},
    tech={T1: "core-api"},
    repos={R1: "acme/one"},
    repo_tech={R1: T1},
    min_contributors={},
    org_min_contributors=6,
)


def make_cycle(ticket_id: str, **overrides: Any) -> dict[str, Any]:
    return {
        "ticket_id": ticket_id,
        "delivery_stream_id": D1,
        "tech_stream_ids": [T1],
        "ticket_type": "story",
        "created_at": T0 - timedelta(days=10),
        "first_in_progress": T0 - timedelta(days=5),
        "completed_at": T0,
        "lead_time_days": 8.0,
        "cycle_time_days": 4.0,
        "active_time_days": 2.0,
        "wait_time_days": 2.0,
        "flow_efficiency_pct": 50.0,
        "stage_durations": {"dev": 2.0, "qa_queue": 2.0},
        **overrides,
    }


def make_deploy(record_id: str, **overrides: Any) -> dict[str, Any]:
    return {
        "record_id": record_id,
        "pipeline_id": "deploy",
        "pipeline_run_id": f"run-{record_id}",
        "tech_stream_id": T1,
        "delivery_stream_id": D1,
        "repo_id": R1,
        "environment": "production",
        "deployed_at": T0,
        "status": "success",
        "is_deployable": True,
        **overrides,
    }


def drill(metric: str, frames: dict[str, pd.DataFrame], **kw: Any) -> dict[str, Any]:
    return drilldown_of(
        metric, frames, names=NAMES, lookups=LOOKUPS, as_of=AS_OF, window_days=30, **kw
    )


def item(item_id: str, value: float | None, uid: str = "") -> Item:
    return Item("ticket", item_id, value, None, {}, [], {}, uid=uid)


# --- sorting, pages, filters ----------------------------------------------------------------


def test_sorting_breaks_ties_by_item_id_ascending_and_puts_missing_values_last() -> None:
    items = [item("C", 2), item("A", 2), item("B", None), item("D", 5), item("E", 1)]
    desc = sort_items(items, sort_by="value", sort_order="desc")
    assert [i.item_id for i in desc] == ["D", "A", "C", "E", "B"]
    asc = sort_items(items, sort_by="value", sort_order="asc")
    assert [i.item_id for i in asc] == ["E", "A", "C", "D", "B"]
    by_id = sort_items(items, sort_by="item_id", sort_order="desc")
    assert [i.item_id for i in by_id] == ["E", "D", "C", "B", "A"]
    same_run = [item("run-1", 1, uid="b"), item("run-1", 1, uid="a")]
    assert [i.uid for i in sort_items(same_run, sort_by="value", sort_order="desc")] == ["a", "b"]


def test_cycle_time_items_factors_pages_and_aggregation_over_every_item() -> None:
    cycles = make_frame(
        "cycles",
        [
            make_cycle(
                "PAY-1",
                cycle_time_days=10.0,
                stage_durations={"dev": 3.0, "qa_queue": 4.1, "blocked": 2.0, "qa": 0.9},
            ),
            make_cycle("PAY-2", cycle_time_days=2.0),
            make_cycle("PAY-3", cycle_time_days=6.0),
            make_cycle("PAY-4", cycle_time_days=None),  # never active: not in cycle time
            make_cycle("PAY-5", completed_at=AS_OF - timedelta(days=40)),  # before the window
        ],
    )
    first = drill("cycle_time", {"cycles": cycles}, limit=2)
    assert [i["item_id"] for i in first["items"]] == ["PAY-1", "PAY-3"]
    assert first["pagination"] == {"total": 3, "limit": 2, "offset": 0, "has_more": True}
    factors = first["items"][0]["contributing_factors"]
    assert [f["factor"] for f in factors] == ["qa_queue", "dev", "blocked"]
    assert factors[0] == {
        "factor": "qa_queue",
        "impact": 0.41,  # of the 10 business days the stages add up to
        "description": "4.1 business days waiting in qa_queue",
    }
    expected = flow.cycle_time(cycles, as_of=AS_OF)
    assert first["aggregation"]["p50"] == expected.p50 == 6.0
    assert first["aggregation"]["p95"] == expected.p95
    assert first["aggregation"] | {"p50": 0, "p90": 0, "p95": 0} == {
        "sum": 18.0,
        "avg": 6.0,
        "min": 2.0,
        "max": 10.0,
        "p50": 0,
        "p90": 0,
        "p95": 0,
    }
    last = drill("cycle_time", {"cycles": cycles}, limit=2, offset=2)
    assert [i["item_id"] for i in last["items"]] == ["PAY-2"]
    assert last["pagination"]["has_more"] is False
    assert last["aggregation"] == first["aggregation"]
    beyond = drill("cycle_time", {"cycles": cycles}, offset=3)
    assert beyond["items"] == [] and beyond["pagination"]["total"] == 3


def test_filters_match_names_or_ids_case_insensitively() -> None:
    cycles = make_frame(
        "cycles",
        [
            make_cycle("PAY-1"),
            make_cycle("LEND-1", delivery_stream_id=D2, ticket_type="bug"),
            make_cycle("LEND-2", delivery_stream_id=D2),
        ],
    )
    frames = {"cycles": cycles}
    by_name = drill("throughput", frames, filters={"delivery_stream": " Lending "})
    assert [i["item_id"] for i in by_name["items"]] == ["LEND-1", "LEND-2"]
    assert by_name["filters_applied"] == {"delivery_stream": "Lending"}
    assert by_name["aggregation"]["sum"] == 2
    by_id = drill("throughput", frames, filters={"delivery_stream": str(D2), "ticket_type": "BUG"})
    assert [i["item_id"] for i in by_id["items"]] == ["LEND-1"]
    assert by_id["items"][0]["context"] | {"cycle_time_days": 0, "lead_time_days": 0} == {
        "delivery_stream": "lending",
        "tech_stream": "core-api",
        "ticket_type": "bug",
        "stage": "done",
        "state": "done",
        "cycle_time_days": 0,
        "lead_time_days": 0,
    }
    nothing = drill("throughput", frames, filters={"tech_stream": "auth"})
    assert nothing["pagination"]["total"] == 0
    assert set(nothing["aggregation"].values()) == {None}


def test_deploy_items_carry_failure_causes_and_shipped_prs() -> None:
    deploys = make_frame(
        "deploys",
        [
            make_deploy("a", deployed_at=T0, commit_sha="abc"),
            make_deploy("b", deployed_at=T0 + timedelta(hours=3), status="rolled_back"),
            make_deploy("c", deployed_at=T0 + timedelta(hours=6), trigger_type="config"),
            make_deploy("d", deployed_at=T0 + timedelta(hours=9), status="failed"),
        ],
    )
    incidents = make_frame(
        "incidents",
        [{"incident_id": "INC-1", "tech_stream_id": T1, "opened_at": T0 + timedelta(minutes=20)}],
    )
    prs = make_frame(
        "prs",
        [
            {
                "repo_id": R1,
                "pr_number": 7,
                "opened_at": T0 - timedelta(days=1),
                "merged_at": T0 - timedelta(hours=1),
                "merge_commit_sha": "abc",
                "is_deployable": True,
            }
        ],
    )
    frames = {"deploys": deploys, "incidents": incidents, "prs": prs}
    result = drill("change_failure_rate", frames, sort_by="item_id", sort_order="asc")
    expected = dora.change_failure_rate(deploys, incidents, as_of=AS_OF)
    assert [i["item_id"] for i in result["items"]] == ["run-a", "run-b"]  # counted for DORA
    assert result["aggregation"]["sum"] == expected.failed_count == 2
    assert result["aggregation"]["avg"] * 100 == expected.change_failure_rate == 100.0
    a, b = result["items"]
    assert [f["factor"] for f in a["contributing_factors"]] == ["caused_incident", "shipped_prs"]
    assert a["contributing_factors"][1]["description"] == "shipped 1 pull request(s): acme/one#7"
    assert a["context"]["incident_id"] == "INC-1"
    assert b["contributing_factors"] == [
        {"factor": "rolled_back", "impact": 1.0, "description": "rolled back"}
    ]
    frequency = drill("deployment_frequency", frames)
    assert (
        frequency["pagination"]["total"]
        == dora.deployment_frequency(deploys, as_of=AS_OF).deploy_count
    )


def test_pr_factors_split_the_lead_time_into_its_waits() -> None:
    opened = T0 - timedelta(hours=20)
    prs = make_frame(
        "prs",
        [
            {
                "repo_id": R1,
                "pr_number": 3,
                "tech_stream_id": T1,
                "opened_at": opened,
                "first_review_at": opened + timedelta(hours=10),
                "approved_at": opened + timedelta(hours=10),
                "merged_at": opened + timedelta(hours=12),
                "time_to_first_review_hrs": 10.0,
                "merge_commit_sha": "abc",
                "is_deployable": True,
            }
        ],
    )
    deploys = make_frame("deploys", [make_deploy("a", deployed_at=T0, commit_sha="abc")])
    result = drill("lead_time_for_changes", {"prs": prs, "deploys": deploys})
    (only,) = result["items"]
    assert (only["item_id"], only["value"]) == ("acme/one#3", 20.0)
    assert only["context"]["shipped_by"] == "run-a"
    assert only["contributing_factors"] == [
        {
            "factor": "waiting_for_first_review",
            "impact": 0.5,
            "description": "10.0 hours waiting for a first review",
        },
        {
            "factor": "merge_to_deploy",
            "impact": 0.4,
            "description": "8.0 hours from merge to the production deploy",
        },
        {
            "factor": "approval_to_merge",
            "impact": 0.1,
            "description": "2.0 hours from approval to merge",
        },
    ]
    assert (
        result["aggregation"]["p50"]
        == dora.lead_time_for_changes(prs, deploys, as_of=AS_OF).lead_time_p50
    )


@pytest.mark.parametrize("metric", sorted(DRILLDOWN_METRICS))
def test_every_metric_drills_into_empty_frames(metric: str) -> None:
    frames = {name: make_frame(name) for name in DRILLDOWN_METRICS[metric].reads}
    result = drill(metric, frames)
    assert result["items"] == []
    assert result["pagination"] == {"total": 0, "limit": 50, "offset": 0, "has_more": False}
    assert set(result["aggregation"].values()) == {None}


@pytest.mark.parametrize(
    ("kw", "parameter"),
    [
        ({"metric": "velocity"}, "metric"),
        ({"sort_by": "task_title"}, "sort_by"),
        ({"sort_order": "up"}, "sort_order"),
        ({"limit": 0}, "limit"),
        ({"limit": 501}, "limit"),
        ({"offset": -1}, "offset"),
        ({"filters": {"assignee": "x"}}, "filters"),
        ({"filters": {"stage": "dev"}}, "filters"),  # cycle time items are all done
        ({"filters": {"ticket_type": " "}}, "filters"),
    ],
)
def test_bad_requests_are_refused_naming_the_parameter(kw: dict[str, Any], parameter: str) -> None:
    args = {"metric": "cycle_time"} | kw
    with pytest.raises(BadParameter) as caught:
        drill(args.pop("metric"), {}, **args)
    assert caught.value.parameter == parameter


def test_an_unknown_filter_names_the_ones_allowed() -> None:
    with pytest.raises(BadParameter) as caught:
        drill("time_to_restore", {}, filters={"repository": "acme/one"})
    assert caught.value.allowed == ["tech_stream", "severity"]


def test_the_contract_sort_fields() -> None:
    assert SORT_FIELDS == ("value", "timestamp", "item_id")
    for spec in DRILLDOWN_METRICS.values():
        assert spec.item_type in ("ticket", "pull_request", "deployment", "incident")


# --- the demo organisation ------------------------------------------------------------------

DEMO_AS_OF = datetime(2026, 11, 12, 18, tzinfo=UTC)
demo = pytest.mark.slow  # the first test on each backend loads the demo organisation


@pytest.fixture
def conn(demo_org: DemoOrg) -> Iterator[sa.Connection]:
    with demo_org.engine.connect() as connection:
        yield connection


def run(conn: sa.Connection, metric: str, **kw: Any) -> dict[str, Any]:
    kw.setdefault("scope", Scope())
    kw.setdefault("window_days", 30)
    return drilldown(conn, load_lookups(conn), metric=metric, as_of=DEMO_AS_OF, **kw)


@demo
def test_demo_cycle_time_items_are_the_metrics_sample(conn: sa.Connection) -> None:
    cycles = read.cycles(conn, as_of=DEMO_AS_OF)
    expected = flow.cycle_time(cycles, as_of=DEMO_AS_OF, window_days=84)
    result = run(conn, "cycle_time", window_days=84, limit=500)
    assert result["pagination"]["total"] == expected.sample_size > 50
    assert result["aggregation"]["p50"] == expected.p50
    assert result["aggregation"]["p95"] == expected.p95
    assert {i["item_id"] for i in result["items"]} == {p.ticket_id for p in expected.scatter}
    values = [i["value"] for i in result["items"]]
    assert values == sorted(values, reverse=True)
    for i in result["items"]:
        impacts = [f["impact"] for f in i["contributing_factors"]]
        assert 1 <= len(impacts) <= 3 and impacts == sorted(impacts, reverse=True)
        assert sum(impacts) <= 1.0 + 0.0015  # each share rounded to 3 decimals


@demo
def test_demo_pages_tile_the_sorted_list(conn: sa.Connection) -> None:
    whole = run(conn, "cycle_time", limit=500, sort_by="timestamp", sort_order="asc")
    total = whole["pagination"]["total"]
    pages = []
    for offset in range(0, total, 40):
        page = run(
            conn, "cycle_time", limit=40, offset=offset, sort_by="timestamp", sort_order="asc"
        )
        assert page["pagination"]["has_more"] is (offset + 40 < total)
        pages += page["items"]
    assert pages == whole["items"]
    stamps = [i["timestamp"] for i in whole["items"]]
    assert stamps == sorted(stamps)
    beyond = run(conn, "cycle_time", offset=total)
    assert beyond["items"] == [] and beyond["pagination"]["has_more"] is False
    assert beyond["aggregation"] == whole["aggregation"]
    ids = run(conn, "cycle_time", limit=500, sort_by="item_id", sort_order="asc")
    assert [i["item_id"] for i in ids["items"]] == sorted(i["item_id"] for i in ids["items"])


@demo
def test_demo_counting_metrics_add_up_to_the_metric(conn: sa.Connection) -> None:
    lookups = load_lookups(conn)
    cycles = read.cycles(conn, as_of=DEMO_AS_OF)
    deploys = read.deploys(conn, as_of=DEMO_AS_OF)
    incidents = read.incidents(conn, as_of=DEMO_AS_OF)
    defects = read.defects(conn, as_of=DEMO_AS_OF)
    throughput = run(conn, "throughput")["aggregation"]
    assert throughput["sum"] == flow.throughput(cycles, as_of=DEMO_AS_OF).completed
    efficiency = run(conn, "flow_efficiency")["aggregation"]
    assert efficiency["avg"] == flow.flow_efficiency(cycles, as_of=DEMO_AS_OF).flow_efficiency_pct
    frequency = run(conn, "deployment_frequency")["pagination"]["total"]
    assert frequency == dora.deployment_frequency(deploys, as_of=DEMO_AS_OF).deploy_count
    cfr = dora.change_failure_rate(
        deploys,
        incidents,
        as_of=DEMO_AS_OF,
        correlation_window_minutes=lookups.incident_correlation_window_minutes,
    )
    failures = run(conn, "change_failure_rate")
    assert failures["pagination"]["total"] == cfr.deploy_count
    assert failures["aggregation"]["sum"] == cfr.failed_count > 0
    escape = quality.defect_escape(defects, cycles, as_of=DEMO_AS_OF)
    defects_drilled = run(conn, "defect_escape")
    assert defects_drilled["pagination"]["total"] == escape.total_defects
    assert defects_drilled["aggregation"]["sum"] == escape.defect_count


@demo
def test_demo_pr_and_incident_medians_equal_the_metrics(conn: sa.Connection) -> None:
    prs = read.prs(conn, as_of=DEMO_AS_OF)
    reviews = read.reviews(conn, as_of=DEMO_AS_OF)
    deploys = read.deploys(conn, as_of=DEMO_AS_OF)
    incidents = read.incidents(conn, as_of=DEMO_AS_OF)
    turnaround = review.review_turnaround(prs, reviews, as_of=DEMO_AS_OF)
    drilled = run(conn, "review_turnaround")
    assert drilled["pagination"]["total"] == turnaround.sample_size
    assert drilled["aggregation"]["p50"] == turnaround.p50_hours
    lead = dora.lead_time_for_changes(prs, deploys, as_of=DEMO_AS_OF)
    drilled = run(conn, "lead_time_for_changes")
    assert drilled["pagination"]["total"] == lead.sample_size
    assert drilled["aggregation"]["p50"] == lead.lead_time_p50
    restore = dora.time_to_restore(incidents, as_of=DEMO_AS_OF, window_days=84)
    drilled = run(conn, "time_to_restore", window_days=84)
    assert drilled["pagination"]["total"] == restore.sample_size
    assert drilled["aggregation"]["p50"] == restore.ttr_median


@demo
def test_demo_pr_items_name_their_opened_event(conn: sa.Connection) -> None:
    names = load_names(conn)
    repo_ids = {v: k for k, v in names.repos.items()}
    page = run(conn, "review_turnaround", limit=5)["items"]
    assert len(page) == 5
    for i in page:
        repo, number = i["item_id"].rsplit("#", 1)
        event = conn.execute(
            sa.select(pr_events.c.event_id).where(
                pr_events.c.repo_id == repo_ids[repo],
                pr_events.c.pr_number == int(number),
                pr_events.c.event_type == "opened",
            )
        ).scalar_one()
        assert i["event_id"] == str(event)
        assert i["task_id"] == i["item_id"]
        assert i["context"]["repository"] == repo


@demo
def test_demo_wip_items_age_as_the_metric_ages_them(conn: sa.Connection) -> None:
    items = read.items(conn, load_lookups(conn), as_of=DEMO_AS_OF)
    wip = flow.wip_by_stage(items, as_of=DEMO_AS_OF)
    drilled = run(conn, "wip", limit=10)
    assert drilled["pagination"]["total"] == wip.sample_size
    oldest = [(a.ticket_id, round(a.age_hours, 2)) for a in wip.oldest]
    assert [(i["item_id"], i["value"]) for i in drilled["items"]] == oldest
    in_qa = run(conn, "wip", filters={"stage": "qa"})
    assert in_qa["pagination"]["total"] == wip.by_stage["qa"]


@demo
def test_demo_a_restricted_scope_yields_only_its_streams_items(conn: sa.Connection) -> None:
    names = load_names(conn)
    payments = next(k for k, v in names.delivery.items() if v == "payments")
    scope = Scope(delivery_in=frozenset({payments}))
    for metric in ("cycle_time", "wip", "review_turnaround", "deployment_frequency"):
        mine = run(conn, metric, scope=scope, limit=500)
        assert mine["items"], metric
        assert {i["context"]["delivery_stream"] for i in mine["items"]} == {"payments"}, metric
        # The same items as filtering everything; a deploy's shipped PRs and incidents are
        # only those the scope can see, so compare what each item is and its value.
        filtered = run(conn, metric, filters={"delivery_stream": "payments"}, limit=500)
        assert [(i["item_id"], i["value"]) for i in mine["items"]] == [
            (i["item_id"], i["value"]) for i in filtered["items"]
        ], metric


@demo
def test_demo_filter_by_ticket_type(conn: sa.Connection) -> None:
    everything = run(conn, "cycle_time", limit=500)["items"]
    bugs = run(conn, "cycle_time", limit=500, filters={"ticket_type": "bug"})
    assert bugs["pagination"]["total"] == sum(
        i["context"]["ticket_type"] == "bug" for i in everything
    )
    assert bugs["filters_applied"] == {"ticket_type": "bug"}
    with pytest.raises(BadParameter) as caught:
        run(conn, "cycle_time", filters={"repository": "acme-auth/sso-bridge"})
    assert caught.value.parameter == "filters"
