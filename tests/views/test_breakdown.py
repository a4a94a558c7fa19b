"""Breakdown read model: groups on hand-built frames, then the demo organisation, where every
group's value must be what the metric function gives for that group's frames."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
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
from dpp_lib.views._frames import Names, load_names
from dpp_lib.views.breakdown import (
    BREAKDOWN_METRICS,
    DIMENSIONS,
    Value,
    breakdown,
    breakdown_of,
    group_keys,
    restrict,
    trend,
)
from tests.conftest import DemoOrg

AS_OF = datetime(2024, 3, 11, tzinfo=UTC)
T0 = AS_OF - timedelta(days=3)
D1, D2 = uuid.UUID(int=1), uuid.UUID(int=2)
T1, T2 = uuid.UUID(int=11), uuid.UUID(int=12)
R1, R2 = uuid.UUID(int=21), uuid.UUID(int=22)

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
    tech={T1: "core-api", T2: "auth"},
    repos={R1: "acme/one", R2: "acme/two"},
    repo_tech={R1: T1, R2: T1},
    min_contributors={},
    org_min_contributors=6,
)


def make_cycle(ticket_id: str = "PAY-1", **overrides: Any) -> dict[str, Any]:
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


def make_pr(number: int, **overrides: Any) -> dict[str, Any]:
    return {
        "repo_id": R1,
        "pr_number": number,
        "tech_stream_id": T1,
        "delivery_stream_id": D1,
        "author_hash": f"author-{number}",
        "opened_at": T0 - timedelta(hours=5),
        "first_review_at": T0,
        "time_to_first_review_hrs": 5.0,
        "is_deployable": True,
        **overrides,
    }


def make_review(number: int, reviewer: str, **overrides: Any) -> dict[str, Any]:
    return {
        "repo_id": R1,
        "pr_number": number,
        "tech_stream_id": T1,
        "author_hash": f"author-{number}",
        "reviewer_hash": reviewer,
        "review_state": "approved",
        "event_timestamp": T0,
        **overrides,
    }


def make_deploy(record_id: str, **overrides: Any) -> dict[str, Any]:
    return {
        "record_id": record_id,
        "pipeline_id": "deploy",
        "pipeline_run_id": record_id,
        "tech_stream_id": T1,
        "repo_id": R1,
        "environment": "production",
        "deployed_at": T0,
        "status": "success",
        "is_deployable": True,
        **overrides,
    }


def both_windows(frames: dict[str, pd.DataFrame], days: int = 30) -> dict[Any, Any]:
    return {AS_OF: frames, AS_OF - timedelta(days=days): frames}


def rows_by_name(result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["dimension_value"]: r for r in result["breakdown"]}


# --- groups ---------------------------------------------------------------------------------


def test_a_ticket_counts_in_each_of_its_tech_streams_and_one_without_any_in_none() -> None:
    cycles = make_frame(
        "cycles",
        [
            make_cycle("A-1", tech_stream_ids=[T1, T2]),
            make_cycle("A-2", tech_stream_ids=[T2]),
            make_cycle("A-3", tech_stream_ids=[]),
        ],
    )
    keys = group_keys(cycles, "tech_stream")
    assert set(keys) == {T1, T2, None}
    assert keys[-1] is None
    assert list(restrict(cycles, "tech_stream", T2)["ticket_id"]) == ["A-1", "A-2"]
    assert list(restrict(cycles, "tech_stream", None)["ticket_id"]) == ["A-3"]


def test_throughput_percentages_are_shares_of_the_total_and_sorted_by_value() -> None:
    cycles = make_frame(
        "cycles",
        [make_cycle(f"P-{i}") for i in range(3)]
        + [make_cycle("L-1", delivery_stream_id=D2)]
        + [make_cycle("X-1", delivery_stream_id=None)],
    )
    result = breakdown_of(
        "throughput",
        "delivery_stream",
        both_windows({"cycles": cycles}),
        names=NAMES,
        lookups=LOOKUPS,
        as_of=AS_OF,
        window_days=30,
    )
    assert result["total"] == 5
    got = [(r["dimension_value"], r["value"], r["percentage"]) for r in result["breakdown"]]
    assert got == [("payments", 3, 60.0), ("(none)", 1, 20.0), ("lending", 1, 20.0)]
    assert rows_by_name(result)["payments"]["dimension_id"] == str(D1)
    assert rows_by_name(result)["(none)"]["dimension_id"] is None


def test_cycle_time_by_stage_is_the_p85_of_time_in_the_stage_working_or_waiting() -> None:
    spent = [
        {"dev": 1.0, "dev_queue": 0.5, "qa": 1.0},
        {"dev": 3.0, "qa_queue": 2.0},
        {"dev": 2.0, "qa": 0.5},
        {"ba": 1.0},  # never in dev: not in the dev sample
    ]
    cycles = make_frame(
        "cycles",
        [make_cycle(f"P-{i}", stage_durations=d) for i, d in enumerate(spent)]
        + [make_cycle("P-9", cycle_time_days=None, stage_durations={"dev": 9.0})],
    )
    result = breakdown_of(
        "cycle_time",
        "stage",
        both_windows({"cycles": cycles}),
        names=NAMES,
        lookups=LOOKUPS,
        as_of=AS_OF,
        window_days=30,
    )
    rows = rows_by_name(result)
    assert set(rows) == {"ba", "dev", "qa"}
    assert rows["dev"]["value"] == pytest.approx(float(np.percentile([1.5, 3.0, 2.0], 85)))
    assert rows["dev"]["count"] == 3
    assert rows["dev"]["percentage"] == 75.0  # 3 of the 4 items with a cycle time
    assert rows["qa"]["value"] == pytest.approx(float(np.percentile([1.0, 2.0, 0.5], 85)))
    assert rows["dev"]["dimension_id"] is None


def test_change_failure_by_repository_links_each_incident_to_the_latest_deploy_of_its_stream() -> (
    None
):
    # Both repositories belong to one tech stream: the incident follows deploy b (the latest
    # within the hour), so repository one has no failure although its deploy is in range.
    deploys = make_frame(
        "deploys",
        [
            make_deploy("a", repo_id=R1, deployed_at=T0),
            make_deploy("b", repo_id=R2, deployed_at=T0 + timedelta(minutes=30)),
        ],
    )
    incidents = make_frame(
        "incidents",
        [{"incident_id": "INC-1", "tech_stream_id": T1, "opened_at": T0 + timedelta(minutes=45)}],
    )
    result = breakdown_of(
        "change_failure_rate",
        "repository",
        both_windows({"deploys": deploys, "incidents": incidents}),
        names=NAMES,
        lookups=LOOKUPS,
        as_of=AS_OF,
        window_days=30,
    )
    rows = rows_by_name(result)
    assert rows["acme/one"]["value"] == 0.0
    assert rows["acme/two"]["value"] == 100.0
    assert result["total"] == 50.0
    assert [r["percentage"] for r in result["breakdown"]] == [50.0, 50.0]


def test_a_suppressed_review_group_has_no_value_no_trend_and_comes_last() -> None:
    # Repository one: six authors and a reviewer (7 people); repository two: 2 people.
    prs = make_frame(
        "prs",
        [make_pr(n, time_to_first_review_hrs=float(n)) for n in range(1, 7)]
        + [make_pr(7, repo_id=R2, time_to_first_review_hrs=99.0)],
    )
    reviews = make_frame(
        "reviews",
        [make_review(n, "rev-1") for n in range(1, 7)] + [make_review(7, "rev-2", repo_id=R2)],
    )
    result = breakdown_of(
        "review_turnaround",
        "repository",
        both_windows({"prs": prs, "reviews": reviews}),
        names=NAMES,
        lookups=LOOKUPS,
        as_of=AS_OF,
        window_days=30,
    )
    first, last = result["breakdown"]
    assert (first["dimension_value"], first["suppressed"]) == ("acme/one", False)
    expected = review.review_turnaround(prs[prs["repo_id"] == R1], reviews, as_of=AS_OF)
    assert first["value"] == expected.p50_hours == 3.5
    assert last["dimension_value"] == "acme/two"
    assert (last["value"], last["suppressed"], last["trend"]) == (None, True, None)
    assert last["count"] == 1
    assert result["suppressed"] is False  # the whole scope has 9 people


def make_item(ticket_id: str, **overrides: Any) -> dict[str, Any]:
    return {
        "ticket_id": ticket_id,
        "delivery_stream_id": D1,
        "tech_stream_ids": [T1],
        "ticket_type": "story",
        "stage": "dev",
        "status": "In Development",
        "is_blocked": False,
        "created_at": T0 - timedelta(days=2),
        "left_backlog_at": T0 - timedelta(days=1),
        **overrides,
    }


def test_wip_without_work_in_the_previous_window_has_no_trend() -> None:
    items = make_frame("items", [make_item("A-1"), make_item("A-2", tech_stream_ids=[T1, T2])])
    whole = {AS_OF: {"items": items}, AS_OF - timedelta(days=30): {"items": make_frame("items")}}
    for dimension in ("tech_stream", "delivery_stream", "stage", "ticket_type"):
        result = breakdown_of(
            "wip",
            dimension,
            whole,
            names=NAMES,
            lookups=LOOKUPS,
            as_of=AS_OF,
            window_days=30,
        )
        assert result["total"] == 2
        assert all(r["trend"] is None for r in result["breakdown"]), dimension
    assert [(r["dimension_value"], r["value"], r["percentage"]) for r in result["breakdown"]] == [
        ("story", 2, 100.0)
    ]


@pytest.mark.parametrize(
    ("now", "before", "expected"),
    [
        (Value(12, 1), Value(10, 1), {"direction": "up", "change_pct": 20.0}),
        (Value(8, 1), Value(10, 1), {"direction": "down", "change_pct": -20.0}),
        (Value(10.4, 1), Value(10, 1), {"direction": "stable", "change_pct": 4.0}),
        (Value(-1, 1), Value(-2, 1), {"direction": "up", "change_pct": 50.0}),
        (Value(5, 1), Value(0, 0), None),
        (Value(5, 1), Value(None, 0), None),
        (Value(None, 0), Value(5, 1), None),
        (Value(None, 3, True), Value(5, 3), None),
    ],
)
def test_trend_against_the_previous_window(
    now: Value, before: Value, expected: dict[str, Any] | None
) -> None:
    assert trend(now, before) == expected


# --- refusals -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("metric", "dimension", "parameter", "allowed"),
    [
        ("velocity", "tech_stream", "metric", list(BREAKDOWN_METRICS)),
        ("throughput", "assignee", "dimension", ["delivery_stream", "tech_stream", "ticket_type"]),
        ("time_to_restore", "delivery_stream", "dimension", ["tech_stream"]),
        ("deployment_frequency", "ticket_type", "dimension", None),
        ("flow_efficiency", "stage", "dimension", None),
    ],
)
def test_an_unsupported_metric_or_dimension_is_refused_naming_the_parameter(
    metric: str, dimension: str, parameter: str, allowed: list[str] | None
) -> None:
    with pytest.raises(BadParameter) as caught:
        breakdown_of(
            metric,
            dimension,
            {},
            names=NAMES,
            lookups=LOOKUPS,
            as_of=AS_OF,
            window_days=30,
        )
    assert caught.value.parameter == parameter
    if allowed is not None:
        assert caught.value.allowed == allowed
    assert dimension not in (caught.value.allowed or [])


def test_every_dimension_offered_is_a_known_one() -> None:
    for spec in BREAKDOWN_METRICS.values():
        assert set(spec.dimensions) <= set(DIMENSIONS)
        assert spec.grouped and set(spec.grouped) <= set(spec.reads)


# --- the demo organisation ------------------------------------------------------------------

DEMO_AS_OF = datetime(2026, 11, 12, 18, tzinfo=UTC)
demo = pytest.mark.slow  # the first test on each backend loads the demo organisation


@pytest.fixture
def conn(demo_org: DemoOrg) -> Iterator[sa.Connection]:
    with demo_org.engine.connect() as connection:
        yield connection


def run(conn: sa.Connection, metric: str, dimension: str, **kw: Any) -> dict[str, Any]:
    kw.setdefault("scope", Scope())
    kw.setdefault("window_days", 30)
    return breakdown(
        conn, load_lookups(conn), metric=metric, dimension=dimension, as_of=DEMO_AS_OF, **kw
    )


def by_id(result: dict[str, Any]) -> dict[Any, dict[str, Any]]:
    return {
        uuid.UUID(r["dimension_id"]) if r["dimension_id"] else None: r for r in result["breakdown"]
    }


@demo
def test_demo_flow_groups_equal_the_metric_on_each_streams_frames(conn: sa.Connection) -> None:
    cycles = read.cycles(conn, as_of=DEMO_AS_OF)
    names = load_names(conn)
    for metric, call in [
        ("throughput", lambda f: flow.throughput(f, as_of=DEMO_AS_OF).completed),
        ("cycle_time", lambda f: flow.cycle_time(f, as_of=DEMO_AS_OF).p85),
        (
            "flow_efficiency",
            lambda f: flow.flow_efficiency(f, as_of=DEMO_AS_OF).flow_efficiency_pct,
        ),
    ]:
        result = run(conn, metric, "delivery_stream")
        rows = by_id(result)
        assert set(rows) - {None} == set(names.delivery), metric  # every stream completed work
        for stream, row in rows.items():
            if stream is None:
                continue
            assert row["value"] == call(Scope(delivery_stream_id=stream).apply(cycles)), metric
            assert row["dimension_value"] == names.delivery[stream]
        assert result["total"] == call(cycles), metric


@demo
def test_demo_ticket_type_and_tech_stream_groups(conn: sa.Connection) -> None:
    cycles = read.cycles(conn, as_of=DEMO_AS_OF)
    by_type = rows_by_name(run(conn, "cycle_time", "ticket_type", window_days=84))
    assert set(by_type) == set(cycles["ticket_type"].dropna())
    for ticket_type, row in by_type.items():
        group = cycles[cycles["ticket_type"] == ticket_type]
        result = flow.cycle_time(group, as_of=DEMO_AS_OF, window_days=84)
        assert (row["value"], row["count"]) == (result.p85, result.sample_size)
    by_tech = by_id(run(conn, "throughput", "tech_stream"))
    for stream, row in by_tech.items():
        if stream is not None:
            group = Scope(tech_stream_id=stream).apply(cycles)
            assert row["value"] == flow.throughput(group, as_of=DEMO_AS_OF).completed


@demo
def test_demo_additive_groups_add_up_to_the_total(conn: sa.Connection) -> None:
    for metric, dimension in [
        ("throughput", "delivery_stream"),
        ("throughput", "ticket_type"),
        ("wip", "stage"),
        ("wip", "delivery_stream"),
        ("deployment_frequency", "repository"),
    ]:
        result = run(conn, metric, dimension)
        values = [r["value"] for r in result["breakdown"]]
        assert result["total"] > 0
        assert sum(values) == pytest.approx(result["total"], abs=0.01 * len(values)), metric
        assert sum(r["percentage"] for r in result["breakdown"]) == pytest.approx(100, abs=0.5)
        assert values == sorted(values, reverse=True), metric


@demo
def test_demo_wip_by_stage_is_the_metrics_own_count_with_its_trend(conn: sa.Connection) -> None:
    lookups = load_lookups(conn)
    result = run(conn, "wip", "stage", window_days=14)
    now = flow.wip_by_stage(read.items(conn, lookups, as_of=DEMO_AS_OF), as_of=DEMO_AS_OF)
    before_at = DEMO_AS_OF - timedelta(days=14)
    before = flow.wip_by_stage(read.items(conn, lookups, as_of=before_at), as_of=before_at)
    rows = rows_by_name(result)
    assert {k: v for k, v in now.by_stage.items() if v} == {k: r["value"] for k, r in rows.items()}
    for stage, row in rows.items():
        assert row["trend"] == trend(
            Value(now.by_stage[stage], 1), Value(before.by_stage[stage], 1)
        ), stage


@demo
def test_demo_dora_groups_equal_the_metric_on_each_groups_frames(conn: sa.Connection) -> None:
    deploys = read.deploys(conn, as_of=DEMO_AS_OF)
    incidents = read.incidents(conn, as_of=DEMO_AS_OF)
    prs = read.prs(conn, as_of=DEMO_AS_OF)
    for stream, row in by_id(run(conn, "change_failure_rate", "tech_stream")).items():
        scope = Scope(tech_stream_id=stream)
        got = dora.change_failure_rate(
            scope.apply(deploys), scope.apply(incidents), as_of=DEMO_AS_OF
        )
        assert (row["value"], row["count"]) == (got.change_failure_rate, got.deploy_count)
    for repo, row in by_id(run(conn, "deployment_frequency", "repository")).items():
        got_df = dora.deployment_frequency(deploys[deploys["repo_id"] == repo], as_of=DEMO_AS_OF)
        assert row["value"] == got_df.deployment_frequency
    result = run(conn, "lead_time_for_changes", "delivery_stream")
    for stream, row in by_id(result).items():
        if stream is None:
            group = prs[prs["delivery_stream_id"].isna()]
        else:
            group = Scope(delivery_stream_id=stream).apply(prs)
        got_lt = dora.lead_time_for_changes(group, deploys, as_of=DEMO_AS_OF)
        assert (row["value"], row["count"]) == (got_lt.lead_time_p50, got_lt.sample_size)
        assert row["percentage"] == round(row["count"] / result["total_count"] * 100, 1)
    whole = dora.lead_time_for_changes(prs, deploys, as_of=DEMO_AS_OF)
    assert result["total"] == whole.lead_time_p50


@demo
def test_demo_quality_and_restore_groups(conn: sa.Connection) -> None:
    defects = read.defects(conn, as_of=DEMO_AS_OF)
    cycles = read.cycles(conn, as_of=DEMO_AS_OF)
    for stream, row in by_id(run(conn, "defect_escape", "delivery_stream")).items():
        if stream is None:
            continue
        scope = Scope(delivery_stream_id=stream)
        got = quality.defect_escape(scope.apply(defects), scope.apply(cycles), as_of=DEMO_AS_OF)
        assert (row["value"], row["count"]) == (got.rate, got.sample_size)
    incidents = read.incidents(conn, as_of=DEMO_AS_OF)
    result = run(conn, "time_to_restore", "tech_stream", window_days=84)
    assert sum(r["count"] for r in result["breakdown"]) == result["total_count"]
    for stream, row in by_id(result).items():
        got_ttr = dora.time_to_restore(
            Scope(tech_stream_id=stream).apply(incidents), as_of=DEMO_AS_OF, window_days=84
        )
        assert row["value"] == got_ttr.ttr_median


@demo
def test_demo_review_turnaround_by_tech_stream(conn: sa.Connection) -> None:
    prs = read.prs(conn, as_of=DEMO_AS_OF)
    reviews = read.reviews(conn, as_of=DEMO_AS_OF)
    for stream, row in by_id(run(conn, "review_turnaround", "tech_stream")).items():
        scope = Scope(tech_stream_id=stream)
        got = review.review_turnaround(scope.apply(prs), scope.apply(reviews), as_of=DEMO_AS_OF)
        assert row["suppressed"] is got.is_suppressed
        assert row["value"] == (None if got.is_suppressed else got.p50_hours)


@demo
def test_demo_a_restricted_scope_yields_only_its_streams(conn: sa.Connection) -> None:
    names = load_names(conn)
    payments = next(k for k, v in names.delivery.items() if v == "payments")
    scope = Scope(delivery_in=frozenset({payments}))
    for metric in ("throughput", "wip", "deployment_frequency"):
        result = run(conn, metric, "delivery_stream", scope=scope)
        assert [r["dimension_value"] for r in result["breakdown"]] == ["payments"], metric
        assert result["breakdown"][0]["percentage"] == 100.0
        whole = by_id(run(conn, metric, "delivery_stream"))[payments]
        assert result["breakdown"][0]["value"] == whole["value"]
    nobody = Scope(delivery_in=frozenset())
    assert run(conn, "throughput", "ticket_type", scope=nobody)["breakdown"] == []


@demo
def test_demo_every_pair_answers_json_values(conn: sa.Connection) -> None:
    for metric, spec in BREAKDOWN_METRICS.items():
        for dimension in spec.dimensions:
            result = run(conn, metric, dimension)
            assert result["breakdown"], (metric, dimension)
            for row in result["breakdown"]:
                assert type(row["count"]) is int
                assert row["value"] is None or type(row["value"]) is float
                assert 0 <= row["percentage"] <= 100
                assert isinstance(row["dimension_value"], str)


@demo
def test_demo_a_bad_window_is_refused(conn: sa.Connection) -> None:
    with pytest.raises(BadParameter) as caught:
        run(conn, "throughput", "ticket_type", window_days=0)
    assert caught.value.parameter == "window_days"
