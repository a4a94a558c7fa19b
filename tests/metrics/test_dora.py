"""DORA metrics on hand-built frames (DESIGN §5, spec §5.4.4, §6.4.1–§6.4.4)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dpp_lib.calendar import WorkCalendar
from dpp_lib.metrics.common import MetricInputError, Window
from dpp_lib.metrics.dora import (
    DORA_2023_LEVELS,
    change_failure_rate,
    correlate_incidents,
    deployment_frequency,
    dora_level,
    lead_time_for_changes,
    shipped_prs,
    time_to_restore,
)
from dpp_lib.metrics.frames import make_frame

AS_OF = datetime(2024, 3, 11, tzinfo=UTC)  # a Monday, 00:00 UTC
WEEK = 7  # window_days of most cases: [2024-03-04 00:00, 2024-03-11 00:00) UTC
T0 = datetime(2024, 3, 6, 12, tzinfo=UTC)  # Wednesday noon, mid-window


def at(**kw: float) -> datetime:
    return T0 + timedelta(**kw)


def make_deploy(record_id: str = "d1", **overrides: Any) -> dict[str, Any]:
    return {
        "record_id": record_id,
        "pipeline_id": "api:core/payments:production",
        "pipeline_run_id": record_id,
        "tech_stream_id": "payments",
        "repo_id": "core/payments",
        "environment": "production",
        "deployed_at": T0,
        "status": "success",
        "trigger_type": "merge",
        "is_deployable": True,
        **overrides,
    }


def make_incident(incident_id: str = "INC-1", **overrides: Any) -> dict[str, Any]:
    return {
        "incident_id": incident_id,
        "tech_stream_id": "payments",
        "severity": "high",
        "opened_at": T0,
        "resolved_at": None,
        **overrides,
    }


def make_pr(number: int = 1, **overrides: Any) -> dict[str, Any]:
    return {
        "repo_id": "core/payments",
        "pr_number": number,
        "tech_stream_id": "payments",
        "opened_at": at(hours=-10),
        "merged_at": at(hours=-1),
        "merge_commit_sha": f"merge{number:04d}",
        "head_sha": f"head{number:04d}",
        "is_deployable": True,
        **overrides,
    }


def deploys(*rows: dict[str, Any]) -> pd.DataFrame:
    return make_frame("deploys", rows)


def incidents(*rows: dict[str, Any]) -> pd.DataFrame:
    return make_frame("incidents", rows)


def prs(*rows: dict[str, Any]) -> pd.DataFrame:
    return make_frame("prs", rows)


def links(out: pd.DataFrame) -> dict[str, str | None]:
    """record_id → linked incident_id (None when not linked), from ``correlate_incidents``."""
    return {
        r: (i if c else None)
        for r, c, i in zip(
            out["record_id"], out["caused_incident"], out["incident_id"], strict=True
        )
    }


def shipped_by(shipped: pd.DataFrame) -> dict[int, tuple[str, str, float | None]]:
    """pr_number → (shipping record_id, rule, lead time hours)."""
    return {
        int(n): (r, rule, lead)
        for n, r, rule, lead in zip(
            shipped["pr_number"],
            shipped["record_id"],
            shipped["ship_rule"],
            shipped["lead_time_hrs"],
            strict=True,
        )
    }


def ships(shipped: pd.DataFrame) -> dict[tuple[str, int], tuple[str, str, float | None]]:
    """(repo_id, pr_number) → (shipping record_id, rule, lead time hours)."""
    return {
        (repo, int(n)): (r, rule, lead)
        for repo, n, r, rule, lead in zip(
            shipped["repo_id"],
            shipped["pr_number"],
            shipped["record_id"],
            shipped["ship_rule"],
            shipped["lead_time_hrs"],
            strict=True,
        )
    }


# --- deploy → incident correlation -----------------------------------------------------------


@pytest.mark.parametrize(
    ("minutes_after", "linked"),
    [(0, True), (59, True), (60, True), (61, False), (-1, False)],
    ids=["same-instant", "59-min", "60-min-edge", "61-min", "incident-before-deploy"],
)
def test_incident_links_to_deploy_within_window(minutes_after: int, linked: bool) -> None:
    out = correlate_incidents(
        deploys(make_deploy("d1")),
        incidents(make_incident("INC-1", opened_at=at(minutes=minutes_after))),
        window_minutes=60,
    )
    assert links(out) == {"d1": "INC-1" if linked else None}


def test_two_deploys_before_one_incident_latest_wins() -> None:
    out = correlate_incidents(
        deploys(make_deploy("d1", deployed_at=at(minutes=-50)), make_deploy("d2", deployed_at=T0)),
        incidents(make_incident("INC-1", opened_at=at(minutes=10))),
    )
    assert links(out) == {"d1": None, "d2": "INC-1"}


def test_latest_deploy_that_reached_production_wins_over_a_later_failed_one() -> None:
    out = correlate_incidents(
        deploys(
            make_deploy("d1", deployed_at=at(minutes=-30), status="rolled_back"),
            make_deploy("d2", deployed_at=at(minutes=-5), status="failed"),
        ),
        incidents(make_incident("INC-1", opened_at=T0)),
    )
    assert links(out) == {"d1": "INC-1", "d2": None}


def test_incident_of_another_tech_stream_is_not_linked() -> None:
    out = correlate_incidents(
        deploys(make_deploy("d1")),
        incidents(make_incident("INC-1", tech_stream_id="search", opened_at=at(minutes=5))),
    )
    assert links(out) == {"d1": None}


def test_deploy_keeps_the_first_of_two_incidents() -> None:
    out = correlate_incidents(
        deploys(make_deploy("d1")),
        incidents(
            make_incident("INC-9", opened_at=at(minutes=40)),
            make_incident("INC-7", opened_at=at(minutes=20)),
        ),
    )
    assert links(out) == {"d1": "INC-7"}


def test_correlation_keeps_rows_order_and_index() -> None:
    frame = deploys(make_deploy("d1", deployed_at=at(hours=2)), make_deploy("d2")).set_axis(
        [10, 20]
    )
    out = correlate_incidents(frame, incidents(make_incident(opened_at=at(minutes=1))))
    assert list(out.index) == [10, 20]
    assert list(out["caused_incident"]) == [False, True]
    assert len(out.columns) == len(frame.columns) + 2


def test_negative_correlation_window_is_refused() -> None:
    with pytest.raises(MetricInputError, match="correlation window"):
        correlate_incidents(deploys(make_deploy()), incidents(), window_minutes=-1)


# --- which PRs a deploy ships ------------------------------------------------------------------


def test_deploy_shipping_three_prs() -> None:
    frame = deploys(make_deploy("d0", deployed_at=at(hours=-48)), make_deploy("d1", deployed_at=T0))
    pulls = prs(
        make_pr(1, opened_at=at(hours=-30), merged_at=at(hours=-5)),
        make_pr(2, opened_at=at(hours=-10), merged_at=at(hours=-3)),
        make_pr(3, opened_at=at(hours=-2), merged_at=at(hours=-1)),
    )
    assert shipped_by(shipped_prs(pulls, frame)) == {
        1: ("d1", "time", 30.0),
        2: ("d1", "time", 10.0),
        3: ("d1", "time", 2.0),
    }
    lead = lead_time_for_changes(pulls, frame, as_of=AS_OF, window_days=WEEK)
    # sorted lead times 2, 10, 30: p50 = 10; p85 at rank 1.7 = 10 + 0.7 × 20 = 24
    assert (lead.lead_time_p50, lead.lead_time_p85) == (10.0, 24.0)
    assert (lead.lead_time_deploy_count, lead.pr_count, lead.sample_size) == (1, 3, 3)
    assert lead.level == "elite"


def test_explicit_pr_link_on_a_later_deploy_wins_over_the_time_rule() -> None:
    frame = deploys(
        make_deploy("d1", deployed_at=T0),
        make_deploy("d2", deployed_at=at(hours=3), linked_pr_number=7),
    )
    pulls = prs(
        make_pr(7, opened_at=at(hours=-6), merged_at=at(hours=-1)),
        make_pr(8, opened_at=at(hours=-4), merged_at=at(minutes=-30)),
    )
    assert shipped_by(shipped_prs(pulls, frame)) == {
        7: ("d2", "explicit", 9.0),
        8: ("d1", "time", 4.0),
    }
    lead = lead_time_for_changes(pulls, frame, as_of=AS_OF, window_days=WEEK)
    assert (lead.lead_time_p50, lead.lead_time_deploy_count) == (6.5, 2)


@pytest.mark.parametrize(
    "sha", ["merge0007", "HEAD0007", " head0007 "], ids=["merge-commit", "head-upper", "spaced"]
)
def test_deploy_commit_naming_a_pr_ships_it(sha: str) -> None:
    frame = deploys(
        make_deploy("d1", deployed_at=T0),
        make_deploy("d2", deployed_at=at(hours=1), commit_sha=sha),
    )
    pulls = prs(make_pr(7, opened_at=at(hours=-2), merged_at=at(hours=-1)))
    assert shipped_by(shipped_prs(pulls, frame)) == {7: ("d2", "explicit", 3.0)}


def test_explicit_link_to_a_pr_of_another_repository_is_ignored() -> None:
    frame = deploys(
        make_deploy("d1", deployed_at=T0),
        make_deploy("d2", deployed_at=at(hours=1), repo_id="core/ledger", linked_pr_number=7),
    )
    pulls = prs(make_pr(7, opened_at=at(hours=-2), merged_at=at(hours=-1)))
    assert shipped_by(shipped_prs(pulls, frame)) == {7: ("d1", "time", 2.0)}


def test_explicit_link_before_the_pr_was_opened_is_ignored() -> None:
    frame = deploys(
        make_deploy("d1", deployed_at=at(hours=-5), linked_pr_number=7),
        make_deploy("d2", deployed_at=T0),
    )
    pulls = prs(make_pr(7, opened_at=at(hours=-3), merged_at=at(hours=-1)))
    assert shipped_by(shipped_prs(pulls, frame)) == {7: ("d2", "time", 3.0)}


def test_deploy_before_merge_ships_the_pr_once_it_is_merged() -> None:
    frame = deploys(make_deploy("d1", deployed_at=T0, commit_sha="head0001"))
    pulls = prs(make_pr(1, opened_at=at(hours=-3), merged_at=at(hours=1)))
    before = lead_time_for_changes(pulls, frame, as_of=at(minutes=30), window_days=WEEK)
    after = lead_time_for_changes(pulls, frame, as_of=AS_OF, window_days=WEEK)
    assert (before.pr_count, before.lead_time_p50) == (0, None)
    assert (after.pr_count, after.lead_time_p50, after.lead_time_deploy_count) == (1, 3.0, 1)


def test_pr_merged_at_the_deploy_instant_is_shipped_by_it() -> None:
    frame = deploys(make_deploy("d1", deployed_at=T0))
    pulls = prs(make_pr(1, opened_at=at(hours=-1), merged_at=T0), make_pr(2, merged_at=None))
    assert shipped_by(shipped_prs(pulls, frame)) == {1: ("d1", "time", 1.0)}


@pytest.mark.parametrize(
    ("deploy_overrides", "shipper"),
    [
        ({}, "d2"),
        ({"trigger_type": "config"}, "d3"),
        ({"status": "failed"}, "d3"),
        ({"status": "rolled_back"}, "d2"),
        ({"is_deployable": False}, "d3"),
    ],
    ids=["success", "config-only", "failed", "rolled-back", "non-deployable"],
)
def test_only_deploys_that_count_for_dora_ship(
    deploy_overrides: dict[str, Any], shipper: str
) -> None:
    frame = deploys(
        make_deploy("d2", deployed_at=T0, **deploy_overrides),
        make_deploy("d3", deployed_at=at(hours=2)),
    )
    pulls = prs(make_pr(1, opened_at=at(hours=-4), merged_at=at(hours=-1)))
    assert shipped_by(shipped_prs(pulls, frame))[1][0] == shipper


def test_pr_of_a_non_deployable_repository_is_never_shipped() -> None:
    frame = deploys(make_deploy("d1", linked_pr_number=1))
    pulls = prs(make_pr(1, is_deployable=False), make_pr(2))
    assert set(shipped_by(shipped_prs(pulls, frame))) == {2}
    lead = lead_time_for_changes(pulls, frame, as_of=AS_OF, window_days=WEEK)
    assert (lead.pr_count, lead.lead_time_p50) == (1, 10.0)


# --- deployment frequency --------------------------------------------------------------------


def test_deployment_frequency_counts_only_deploys_that_count_for_dora() -> None:
    frame = deploys(
        make_deploy("ok-1", deployed_at=at(days=-2)),
        make_deploy("ok-2", deployed_at=T0),
        make_deploy("rolled-back", deployed_at=at(hours=1), status="rolled_back"),
        make_deploy("config-only", deployed_at=at(hours=2), trigger_type="config"),
        make_deploy("Config-cased", deployed_at=at(hours=2), trigger_type=" CONFIG "),
        make_deploy("failed", deployed_at=at(hours=3), status="failed"),
        make_deploy("non-deployable", deployed_at=at(hours=4), is_deployable=False),
        make_deploy("deployable-unknown", deployed_at=at(hours=5), is_deployable=None),
        make_deploy("before-window", deployed_at=AS_OF - timedelta(days=WEEK, seconds=1)),
        make_deploy("at-window-start", deployed_at=AS_OF - timedelta(days=WEEK)),
        make_deploy("at-as-of", deployed_at=AS_OF),
    )
    df = deployment_frequency(frame, as_of=AS_OF, window_days=WEEK)
    # ok-1, ok-2, rolled-back, deployable-unknown, at-window-start: 5 in 7 days = 5 per week
    assert (df.deploy_count, df.deployment_frequency, df.sample_size) == (5, 5.0, 5)
    assert df.weekly == {date(2024, 3, 4): 5}
    assert df.level == "high"


def test_deployment_frequency_per_week_normalises_the_window() -> None:
    frame = deploys(*(make_deploy(f"d{i}", deployed_at=at(days=-i)) for i in range(3)))
    df = deployment_frequency(frame, as_of=AS_OF, window_days=30)
    assert df.deployment_frequency == round(3 / 30 * 7, 2) == 0.7
    assert list(df.weekly) == [date(2024, 2, 5) + timedelta(weeks=w) for w in range(5)]
    assert sum(df.weekly.values()) == 3 and df.weekly[date(2024, 3, 4)] == 3


def test_weekly_series_starts_weeks_on_monday_in_the_org_time_zone() -> None:
    sunday_late_utc = datetime(2024, 3, 10, 23, 30, tzinfo=UTC)  # Monday 00:30 in Berlin
    frame = deploys(
        make_deploy("d1", deployed_at=T0), make_deploy("d2", deployed_at=sunday_late_utc)
    )
    utc = deployment_frequency(frame, as_of=AS_OF, window_days=WEEK)
    berlin = deployment_frequency(
        frame, as_of=AS_OF, window_days=WEEK, calendar=WorkCalendar.of("Europe/Berlin")
    )
    assert utc.weekly == {date(2024, 3, 4): 2}
    assert berlin.weekly == {date(2024, 3, 4): 1, date(2024, 3, 11): 1}
    assert utc.deployment_frequency == berlin.deployment_frequency == 2.0


# --- change failure rate -----------------------------------------------------------------------


def test_change_failure_rate_counts_rollbacks_and_incidents_once() -> None:
    frame = deploys(
        make_deploy("ok", deployed_at=at(days=-2)),
        make_deploy("rolled-back", deployed_at=at(days=-1), status="rolled_back"),
        make_deploy("both", deployed_at=T0, status="rolled_back"),
        make_deploy("caused", deployed_at=at(days=1)),
        make_deploy("failed", deployed_at=at(days=1, hours=1), status="failed"),
    )
    opened = incidents(
        make_incident("INC-1", opened_at=at(minutes=30)),
        make_incident("INC-2", opened_at=at(days=1, minutes=59)),
    )
    cfr = change_failure_rate(frame, opened, as_of=AS_OF, window_days=WEEK)
    assert (cfr.deploy_count, cfr.failed_count, cfr.sample_size) == (4, 3, 4)
    assert (cfr.rolled_back_count, cfr.caused_incident_count) == (2, 2)
    assert cfr.change_failure_rate == 75.0 and cfr.level == "low"


def test_config_only_deploy_is_left_out_but_still_takes_the_incident() -> None:
    # The config change is the latest production change before the incident: it is the
    # suspected cause, so the code deploy before it does not fail.
    frame = deploys(
        make_deploy("code", deployed_at=T0),
        make_deploy("config", deployed_at=at(minutes=20), trigger_type="config"),
    )
    opened = incidents(make_incident("INC-1", opened_at=at(minutes=30)))
    assert links(correlate_incidents(frame, opened)) == {"code": None, "config": "INC-1"}
    cfr = change_failure_rate(frame, opened, as_of=AS_OF, window_days=WEEK)
    assert (cfr.deploy_count, cfr.failed_count, cfr.change_failure_rate) == (1, 0, 0.0)


def test_correlation_window_is_a_parameter() -> None:
    frame = deploys(make_deploy("d1"))
    opened = incidents(make_incident(opened_at=at(minutes=90)))
    assert change_failure_rate(frame, opened, as_of=AS_OF, window_days=WEEK).failed_count == 0
    wide = change_failure_rate(
        frame, opened, as_of=AS_OF, window_days=WEEK, correlation_window_minutes=120
    )
    assert wide.failed_count == 1


def test_rollback_and_incident_after_as_of_are_not_known_yet() -> None:
    as_of = at(minutes=45)
    frame = deploys(
        make_deploy("d1", deployed_at=at(minutes=-30), status="rolled_back", rollback_at=as_of),
        make_deploy("d2", deployed_at=at(minutes=-20), status="rolled_back", rollback_at=T0),
        make_deploy("d3", deployed_at=at(minutes=10)),
    )
    opened = incidents(make_incident("INC-1", opened_at=as_of))
    cfr = change_failure_rate(frame, opened, as_of=as_of, window_days=WEEK)
    assert (cfr.deploy_count, cfr.failed_count, cfr.rolled_back_count) == (3, 1, 1)
    later = change_failure_rate(frame, opened, as_of=AS_OF, window_days=WEEK)
    assert (later.failed_count, later.rolled_back_count, later.caused_incident_count) == (3, 2, 1)


# --- time to restore -------------------------------------------------------------------------


def test_time_to_restore_median_mean_and_incident_count() -> None:
    rows = incidents(
        make_incident("A", opened_at=T0, resolved_at=at(minutes=30)),
        make_incident("B", opened_at=at(hours=1), resolved_at=at(hours=2, minutes=30)),
        make_incident("C", opened_at=at(hours=2), resolved_at=at(hours=5, minutes=20)),
        # opened before the window, resolved in it: in TTR, not in incident_count
        make_incident("D", opened_at=at(days=-4), resolved_at=at(days=-2)),
        # opened in the window, still open: in incident_count only
        make_incident("E", opened_at=at(hours=3)),
        # resolved after as_of: still open at as_of
        make_incident("F", opened_at=at(days=4), resolved_at=AS_OF + timedelta(minutes=5)),
        # opened after as_of: ignored
        make_incident("G", opened_at=AS_OF, resolved_at=AS_OF + timedelta(minutes=5)),
    )
    ttr = time_to_restore(rows, as_of=AS_OF, window_days=WEEK)
    # restore minutes 30, 90, 200, 2880: median 145, mean 800
    assert (ttr.ttr_median, ttr.ttr_mean) == (145.0, 800.0)
    assert (ttr.sample_size, ttr.incident_count) == (4, 5)
    assert ttr.level == "high"


@pytest.mark.parametrize(
    ("duration", "minutes"),
    [
        (timedelta(minutes=29, seconds=29), 29.0),
        (timedelta(minutes=29, seconds=30), 30.0),
        (timedelta(seconds=-90), 0.0),
    ],
    ids=["rounds-down", "half-up", "never-negative"],
)
def test_restore_time_is_whole_minutes(duration: timedelta, minutes: float) -> None:
    rows = incidents(make_incident(opened_at=T0, resolved_at=T0 + duration))
    assert time_to_restore(rows, as_of=AS_OF, window_days=WEEK).ttr_median == minutes


def test_stored_restore_minutes_are_used_when_the_open_time_is_missing() -> None:
    rows = incidents(
        make_incident("A", opened_at=None, resolved_at=T0, time_to_restore_min=42),
        make_incident("B", opened_at=None, resolved_at=T0),
    )
    ttr = time_to_restore(rows, as_of=AS_OF, window_days=WEEK)
    assert (ttr.ttr_median, ttr.sample_size, ttr.incident_count) == (42.0, 1, 0)


# --- windows, as_of and empty inputs ----------------------------------------------------------


def test_rows_after_as_of_are_ignored_by_lead_time() -> None:
    frame = deploys(
        make_deploy("d1", deployed_at=T0),
        make_deploy("later", deployed_at=AS_OF + timedelta(hours=1), linked_pr_number=1),
    )
    pulls = prs(
        make_pr(1, opened_at=at(hours=-5), merged_at=at(hours=-1)),
        make_pr(2, opened_at=at(hours=-5), merged_at=AS_OF),  # merged after as_of
        make_pr(3, opened_at=AS_OF, merged_at=AS_OF),  # opened after as_of
    )
    lead = lead_time_for_changes(pulls, frame, as_of=AS_OF, window_days=WEEK)
    # PR 1 by the time rule on d1; the later explicit link is not known yet
    assert (lead.pr_count, lead.lead_time_p50, lead.lead_time_deploy_count) == (1, 5.0, 1)
    assert shipped_by(shipped_prs(pulls, frame))[1] == ("later", "explicit", 114.0)


def test_window_object_and_as_of_give_the_same_result() -> None:
    frame = deploys(*(make_deploy(f"d{i}", deployed_at=at(days=-i)) for i in range(4)))
    by_days = deployment_frequency(frame, as_of=AS_OF, window_days=WEEK)
    by_window = deployment_frequency(frame, window=Window.trailing(AS_OF, WEEK))
    assert by_days == by_window and by_days.deploy_count == 3  # T0 − 3 d is before the window


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, "as_of"),
        ({"as_of": AS_OF, "window": Window.trailing(T0, WEEK)}, "differs"),
        ({"as_of": datetime(2024, 3, 11)}, "timezone-aware"),
        ({"as_of": AS_OF, "window_days": 0}, "at least 1 day"),
    ],
    ids=["no-as-of", "as-of-and-window-disagree", "naive-as-of", "zero-days"],
)
def test_bad_window_arguments_are_refused(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(MetricInputError, match=message):
        deployment_frequency(deploys(), **kwargs)


def test_missing_columns_are_refused() -> None:
    with pytest.raises(MetricInputError, match="deploys frame lacks column"):
        deployment_frequency(pd.DataFrame({"deployed_at": []}), as_of=AS_OF)


@pytest.mark.parametrize(
    "outside",
    [False, True],
    ids=["empty-frames", "rows-only-outside-the-window"],
)
def test_empty_window_gives_sample_size_zero_and_none(outside: bool) -> None:
    old, future = AS_OF - timedelta(days=60), AS_OF + timedelta(days=1)
    d = deploys(make_deploy("d", deployed_at=old), make_deploy("f", deployed_at=future))
    i = incidents(make_incident(opened_at=old, resolved_at=old + timedelta(hours=1)))
    p = prs(make_pr(1, opened_at=old, merged_at=old))
    if not outside:
        d, i, p = deploys(), incidents(), prs()
    df = deployment_frequency(d, as_of=AS_OF, window_days=WEEK)
    cfr = change_failure_rate(d, i, as_of=AS_OF, window_days=WEEK)
    ttr = time_to_restore(i, as_of=AS_OF, window_days=WEEK)
    lead = lead_time_for_changes(p, d, as_of=AS_OF, window_days=WEEK)
    assert (df.sample_size, df.deployment_frequency, df.level) == (0, None, None)
    assert df.weekly == {date(2024, 3, 4): 0}
    assert (cfr.sample_size, cfr.change_failure_rate, cfr.level) == (0, None, None)
    assert (ttr.sample_size, ttr.ttr_median, ttr.ttr_mean, ttr.level) == (0, None, None, None)
    assert ttr.incident_count == 0
    assert (lead.sample_size, lead.lead_time_p50, lead.lead_time_p85, lead.level) == (
        0,
        None,
        None,
        None,
    )
    assert (lead.lead_time_deploy_count, lead.pr_count) == (0, 0)


# --- DORA levels (2023) ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "value", "level"),
    [
        ("deployment_frequency", 7.01, "elite"),
        ("deployment_frequency", 7.0, "high"),  # once a day is "between daily and weekly"
        ("deployment_frequency", 1.0, "high"),
        ("deployment_frequency", 0.99, "medium"),
        ("deployment_frequency", 7 / 30, "medium"),  # once a month
        ("deployment_frequency", 0.23, "low"),
        ("lead_time_for_changes", 23.99, "elite"),
        ("lead_time_for_changes", 24.0, "high"),
        ("lead_time_for_changes", 168.0, "high"),
        ("lead_time_for_changes", 168.01, "medium"),
        ("lead_time_for_changes", 720.0, "medium"),
        ("lead_time_for_changes", 720.01, "low"),
        ("change_failure_rate", 0.0, "elite"),
        ("change_failure_rate", 5.0, "elite"),
        ("change_failure_rate", 5.01, "high"),
        ("change_failure_rate", 10.0, "high"),
        ("change_failure_rate", 10.01, "medium"),
        ("change_failure_rate", 15.0, "medium"),
        ("change_failure_rate", 15.01, "low"),
        ("time_to_restore", 59.0, "elite"),
        ("time_to_restore", 60.0, "high"),
        ("time_to_restore", 1439.0, "high"),
        ("time_to_restore", 1440.0, "medium"),
        ("time_to_restore", 10080.0, "medium"),
        ("time_to_restore", 10081.0, "low"),
        ("time_to_restore", None, None),
    ],
)
def test_dora_level_boundaries(name: str, value: float | None, level: str | None) -> None:
    assert dora_level(name, value) == level


def test_level_table_covers_every_dora_metric() -> None:
    assert set(DORA_2023_LEVELS) == {
        "deployment_frequency",
        "change_failure_rate",
        "time_to_restore",
        "lead_time_for_changes",
    }
    for scale in DORA_2023_LEVELS.values():
        assert [band[0] for band in scale.bands] == ["elite", "high", "medium"]


@pytest.mark.parametrize(("count", "level"), [(8, "elite"), (7, "high"), (1, "high")])
def test_deployment_frequency_level_at_its_boundaries(count: int, level: str) -> None:
    frame = deploys(*(make_deploy(f"d{i}", deployed_at=at(minutes=i)) for i in range(count)))
    assert deployment_frequency(frame, as_of=AS_OF, window_days=WEEK).level == level


@pytest.mark.parametrize(
    ("window_days", "level"), [(30, "medium"), (31, "low")], ids=["monthly", "less-often"]
)
def test_one_deploy_a_month_is_medium(window_days: int, level: str) -> None:
    frame = deploys(make_deploy("d1"))
    assert deployment_frequency(frame, as_of=AS_OF, window_days=window_days).level == level


@pytest.mark.parametrize(
    ("failed", "rate", "level"),
    [(1, 5.0, "elite"), (2, 10.0, "high"), (3, 15.0, "medium"), (4, 20.0, "low")],
)
def test_change_failure_rate_level_at_its_boundaries(failed: int, rate: float, level: str) -> None:
    frame = deploys(
        *(
            make_deploy(
                f"d{i}",
                deployed_at=at(minutes=i),
                status="rolled_back" if i < failed else "success",
            )
            for i in range(20)
        )
    )
    cfr = change_failure_rate(frame, incidents(), as_of=AS_OF, window_days=WEEK)
    assert (cfr.change_failure_rate, cfr.level) == (rate, level)


@pytest.mark.parametrize(("minutes", "level"), [(59, "elite"), (60, "high"), (1440, "medium")])
def test_time_to_restore_level_at_its_boundaries(minutes: int, level: str) -> None:
    rows = incidents(make_incident(resolved_at=at(minutes=minutes)))
    assert time_to_restore(rows, as_of=AS_OF, window_days=WEEK).level == level


@pytest.mark.parametrize(("hours", "level"), [(23, "elite"), (24, "high"), (169, "medium")])
def test_lead_time_level_at_its_boundaries(hours: int, level: str) -> None:
    frame = deploys(make_deploy("d1"))
    pulls = prs(make_pr(1, opened_at=at(hours=-hours), merged_at=at(minutes=-1)))
    assert lead_time_for_changes(pulls, frame, as_of=AS_OF, window_days=WEEK).level == level


# --- properties ---------------------------------------------------------------------------------

BASE = datetime(2024, 3, 1, tzinfo=UTC)
PROP_AS_OF = BASE + timedelta(days=10)
STREAM_OF_REPO = {"r1": "s1", "r2": "s2"}
SHAS = ("merge", "head")


def _moment(step: int) -> datetime:
    return BASE + timedelta(minutes=20 * step)  # coarse grid: ties happen


steps = st.integers(min_value=0, max_value=72 * 14)  # up to 14 days after BASE


@st.composite
def org_history(draw: st.DrawFn) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    deploy_rows = []
    for i in range(draw(st.integers(0, 25))):
        repo = draw(st.sampled_from(sorted(STREAM_OF_REPO)))
        when = _moment(draw(steps))
        status = draw(st.sampled_from(["success", "failed", "rolled_back"]))
        deploy_rows.append(
            make_deploy(
                f"d{i:02d}",
                repo_id=repo,
                tech_stream_id=STREAM_OF_REPO[repo],
                deployed_at=when,
                status=status,
                rollback_at=when + timedelta(minutes=draw(st.integers(0, 3000)))
                if status == "rolled_back"
                else None,
                trigger_type=draw(st.sampled_from(["merge", "manual", "config"])),
                is_deployable=draw(st.sampled_from([True, True, False, None])),
                linked_pr_number=draw(st.none() | st.integers(1, 8)),
                commit_sha=draw(
                    st.none() | st.sampled_from([f"{k}{n:04d}" for k in SHAS for n in range(1, 9)])
                ),
            )
        )
    incident_rows = []
    for i in range(draw(st.integers(0, 12))):
        opened = _moment(draw(steps))
        restore = draw(st.none() | st.integers(1, 3000))
        incident_rows.append(
            make_incident(
                f"INC-{i:02d}",
                tech_stream_id=draw(st.sampled_from(sorted(STREAM_OF_REPO.values()))),
                opened_at=opened,
                resolved_at=None if restore is None else opened + timedelta(minutes=restore),
                time_to_restore_min=restore,
            )
        )
    pr_rows = []
    for repo in sorted(STREAM_OF_REPO):
        for number in draw(st.sets(st.integers(1, 8), max_size=6)):
            opened = _moment(draw(steps))
            merge_after = draw(st.none() | st.integers(0, 3000))
            pr_rows.append(
                make_pr(
                    number,
                    repo_id=repo,
                    opened_at=opened,
                    merged_at=None
                    if merge_after is None
                    else opened + timedelta(minutes=merge_after),
                    is_deployable=draw(st.sampled_from([True, True, False])),
                )
            )
    return deploys(*deploy_rows), incidents(*incident_rows), prs(*pr_rows)


def all_results(d: pd.DataFrame, i: pd.DataFrame, p: pd.DataFrame) -> tuple[object, ...]:
    kw: dict[str, Any] = {"as_of": PROP_AS_OF, "window_days": 7}
    return (
        deployment_frequency(d, **kw),
        change_failure_rate(d, i, **kw),
        time_to_restore(i, **kw),
        lead_time_for_changes(p, d, **kw),
    )


def shuffled(frame: pd.DataFrame, seed: int) -> pd.DataFrame:
    return frame.sample(frac=1, random_state=seed).reset_index(drop=True)


@settings(max_examples=60, deadline=None)
@given(org_history(), st.integers(0, 2**32 - 3))
def test_shuffling_rows_changes_no_result(
    history: tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame], seed: int
) -> None:
    d, i, p = history
    mixed = (shuffled(d, seed), shuffled(i, seed + 1), shuffled(p, seed + 2))
    assert all_results(*mixed) == all_results(d, i, p)
    known_d = d[d["deployed_at"] < PROP_AS_OF]
    assert links(correlate_incidents(shuffled(known_d, seed), i)) == links(
        correlate_incidents(known_d, i)
    )
    assert ships(shipped_prs(mixed[2], mixed[0])) == ships(shipped_prs(p, d))


def as_known_at(
    d: pd.DataFrame, i: pd.DataFrame, p: pd.DataFrame, as_of: datetime
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """The frames as they would have been stored at ``as_of``: nothing later recorded."""
    d = d[d["deployed_at"] < as_of].copy()
    undo = (d["status"] == "rolled_back") & (d["rollback_at"] >= as_of)
    d.loc[undo, "status"] = "success"
    d["rollback_at"] = d["rollback_at"].where(~undo)
    i = i[i["opened_at"] < as_of].copy()
    unresolved = i["resolved_at"] >= as_of
    i["resolved_at"] = i["resolved_at"].where(~unresolved)
    i["time_to_restore_min"] = i["time_to_restore_min"].where(~unresolved, None)
    p = p[p["opened_at"] < as_of].copy()
    p["merged_at"] = p["merged_at"].where(p["merged_at"] < as_of)
    return d, i, p


@settings(max_examples=60, deadline=None)
@given(org_history())
def test_what_happens_after_as_of_never_changes_a_result(
    history: tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame],
) -> None:
    then = as_known_at(*history, PROP_AS_OF)
    assert all_results(*history) == all_results(*then)


@settings(max_examples=40, deadline=None)
@given(org_history(), org_history())
def test_rows_after_as_of_never_change_results(
    history: tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame],
    later: tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame],
) -> None:
    def after(frame: pd.DataFrame, *columns: str) -> pd.DataFrame:
        moved = frame.copy()
        for column in columns:
            moved[column] = moved[column] + timedelta(days=14)  # all ≥ PROP_AS_OF
        return moved

    d = pd.concat([history[0], after(later[0], "deployed_at", "rollback_at")], ignore_index=True)
    d["record_id"] = [f"r{n}" for n in range(len(d))]
    i = pd.concat([history[1], after(later[1], "opened_at", "resolved_at")], ignore_index=True)
    i["incident_id"] = [f"I{n}" for n in range(len(i))]
    p = pd.concat(
        [
            history[2],
            after(later[2], "opened_at", "merged_at").assign(
                pr_number=lambda f: f["pr_number"] + 100
            ),
        ],
        ignore_index=True,
    )
    assert all_results(d, i, p) == all_results(
        *(f.iloc[: len(h)] for f, h in zip((d, i, p), history, strict=True))
    )
