"""dora_trend: the weekly series equals the single-window DORA functions week by week."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from dpp_lib.calendar import WorkCalendar
from dpp_lib.metrics import dora
from dpp_lib.metrics.common import Window
from dpp_lib.metrics.dora_trend import dora_trend, weekly_windows
from dpp_lib.metrics.frames import make_frame

REPO, TECH = uuid.uuid4(), uuid.uuid4()
AS_OF = datetime(2026, 11, 12, 18, tzinfo=UTC)  # a Thursday
CAL = WorkCalendar.of("Europe/London")


def deploy(at: datetime, n: int, status: str = "success", **kw: object) -> dict[str, object]:
    return {
        "record_id": uuid.uuid4(),
        "pipeline_id": "p",
        "pipeline_run_id": str(n),
        "tech_stream_id": TECH,
        "repo_id": REPO,
        "deployed_at": at,
        "status": status,
        "is_deployable": True,
        **kw,
    }


def frames() -> tuple[object, object, object]:
    base = AS_OF - timedelta(days=27)
    deploys = [deploy(base + timedelta(days=i, hours=3), i) for i in range(0, 27, 2)]
    deploys.append(deploy(base + timedelta(days=5), 99, "rolled_back"))
    incidents = [
        {
            "incident_id": "INC-1",
            "tech_stream_id": TECH,
            "opened_at": base + timedelta(days=4, hours=3, minutes=20),
            "resolved_at": base + timedelta(days=4, hours=5),
            "time_to_restore_min": None,
        }
    ]
    prs = [
        {
            "repo_id": REPO,
            "pr_number": i,
            "tech_stream_id": TECH,
            "opened_at": base + timedelta(days=i - 2),
            "merged_at": base + timedelta(days=i, hours=1),
            "is_deployable": True,
        }
        for i in range(0, 27, 3)
    ]
    return (
        make_frame("deploys", deploys),
        make_frame("incidents", incidents),
        make_frame("prs", prs),
    )


def test_each_week_equals_the_single_window_functions() -> None:
    deploys, incidents, prs = frames()
    trend = dora_trend(deploys, incidents, prs, as_of=AS_OF, window_days=28, calendar=CAL)
    assert [w.partial for w in trend.weeks] == [True, False, False, False, True]
    assert sum(w.deploy_count for w in trend.weeks) == trend.sample_size == 15
    for w in trend.weeks:
        df = dora.deployment_frequency(deploys, window=w.window, calendar=CAL)
        cfr = dora.change_failure_rate(deploys, incidents, window=w.window)
        ttr = dora.time_to_restore(incidents, window=w.window)
        lt = dora.lead_time_for_changes(prs, deploys, window=w.window)
        assert w.deploy_count == df.deploy_count
        assert (w.failed_count, w.change_failure_rate) == (
            cfr.failed_count,
            cfr.change_failure_rate,
        )
        assert (w.ttr_median, w.incident_count) == (ttr.ttr_median, ttr.incident_count)
        assert (w.lead_time_p50, w.lead_time_p85) == (lt.lead_time_p50, lt.lead_time_p85)
    assert sum(w.failed_count for w in trend.weeks) == 2  # the rollback and INC-1's deploy


def test_empty_frames_give_every_week_with_nothing_in_it() -> None:
    empty = make_frame("deploys"), make_frame("incidents"), make_frame("prs")
    trend = dora_trend(*empty, as_of=AS_OF, window_days=90, calendar=CAL)
    assert len(trend.weeks) == 14 and trend.sample_size == 0
    assert all(w.change_failure_rate is None and w.deploy_count == 0 for w in trend.weeks)


def test_weeks_start_on_local_mondays_across_the_clock_change() -> None:
    window = Window(datetime(2026, 10, 20, tzinfo=UTC), datetime(2026, 11, 5, tzinfo=UTC))
    weeks = weekly_windows(CAL, window)
    starts = [CAL.week_start(w.start).isoformat() for w, _ in weeks]
    assert starts == ["2026-10-19", "2026-10-26", "2026-11-02"]
    # London: BST until 25 October 01:00 UTC; local Mondays after it are UTC midnights
    assert weeks[0][0].end == weeks[1][0].start == datetime(2026, 10, 26, 0, tzinfo=UTC)
    assert weeks[1][0].end - weeks[1][0].start == timedelta(days=7)
    whole = weekly_windows(CAL, Window(datetime(2026, 10, 10, tzinfo=UTC), window.end))
    october_19 = next(w for w, _ in whole if CAL.week_start(w.start).day == 19)
    assert october_19.start == datetime(2026, 10, 18, 23, tzinfo=UTC)  # 00:00 BST
    assert october_19.end - october_19.start == timedelta(hours=169)
