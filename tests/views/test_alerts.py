"""System alerts: each threshold crossed both ways, and the alert table kept in step."""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from dpp_lib.ingest.lookups import OrgLookups
from dpp_lib.store.config_tables import load_lookups
from dpp_lib.store.schema import pr_cycles, pulse_responses, raw_events
from dpp_lib.views import alerts
from dpp_lib.views.alerts import (
    api_latency_alerts,
    computation_alerts,
    evaluate,
    record_computation_failure,
    refresh_system_alerts,
    resolve_computation_failure,
)
from tests.support import rows

NOW = datetime(2026, 11, 11, 14, 0, tzinfo=UTC)  # a Wednesday afternoon in London
SATURDAY = datetime(2026, 11, 14, 14, 0, tzinfo=UTC)


def inbox(
    engine: sa.Engine,
    n: int,
    *,
    state: str = "done",
    attempts: int = 0,
    at: datetime = NOW - timedelta(minutes=5),
    source: str = "github",
) -> None:
    """``n`` inbox rows received at ``at`` in ``state``."""
    if n == 0:
        return
    with engine.begin() as conn:
        conn.execute(
            raw_events.insert(),
            [
                {
                    "source": source,
                    "delivery_id": str(uuid.uuid4()),
                    "headers": {},
                    "body": b"{}",
                    "body_sha256": "0" * 64,
                    "received_at": at,
                    "state": state,
                    "attempts": attempts,
                    "next_attempt_at": at,
                }
                for _ in range(n)
            ],
        )


def _utc(value: datetime | str) -> datetime:
    """A timestamp as the raw driver returns it (SQLite: naive text) → aware UTC."""
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(value)
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)


def lookups(engine: sa.Engine) -> OrgLookups:
    with engine.connect() as conn:
        return load_lookups(conn)


def conditions(
    engine: sa.Engine, now: datetime = NOW, **kw: Any
) -> dict[str, alerts.AlertCondition]:
    with engine.connect() as conn:
        return {c.condition: c for c in evaluate(conn, load_lookups(conn), now=now, **kw)}


def refresh(engine: sa.Engine, now: datetime = NOW, **kw: Any) -> list[dict[str, Any]]:
    with engine.begin() as conn:
        return refresh_system_alerts(conn, load_lookups(conn), now=now, **kw)


# --- thresholds -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("done", "dead", "retrying", "alert"),
    [  # plus 5 deliveries not tried yet: received, not failed
        (33, 2, 0, False),  # 2 of 40 = 5 %: not above
        (32, 2, 1, True),  # 3 of 40 = 7.5 %: a delivery awaiting its retry failed too
        (0, 14, 0, False),  # 19 deliveries: too few for a verdict
        (13, 1, 1, True),  # 2 of 20 = 10 %
    ],
)
def test_webhook_failure_rate(
    org: sa.Engine, done: int, dead: int, retrying: int, alert: bool
) -> None:
    inbox(org, done)
    inbox(org, dead, state="dead", attempts=8)
    inbox(org, retrying, state="pending", attempts=1)
    inbox(org, 5, state="pending")
    found = conditions(org).get("webhook_ingestion_failure_rate_high")
    assert (found is not None) == alert
    if found is not None:
        assert found.severity == "HIGH"
        assert found.details["failed"] == dead + retrying
        assert found.details["received"] == done + dead + retrying + 5


def test_failures_older_than_the_window_do_not_count(org: sa.Engine) -> None:
    inbox(org, 30)
    inbox(org, 10, state="dead", at=NOW - timedelta(minutes=15, seconds=1))
    inbox(org, 10, state="dead", at=NOW + timedelta(seconds=1))  # after as-of
    assert "webhook_ingestion_failure_rate_high" not in conditions(org)
    inbox(org, 2, state="dead", at=NOW - timedelta(minutes=15))  # the window's first moment
    assert "webhook_ingestion_failure_rate_high" in conditions(org)


@pytest.mark.parametrize(("pending", "alert"), [(1000, False), (1001, True)])
def test_event_queue_depth(org: sa.Engine, pending: int, alert: bool) -> None:
    inbox(org, pending, state="pending", at=NOW - timedelta(hours=1))
    found = conditions(org).get("event_queue_depth_high")
    assert (found is not None) == alert
    if found is not None:
        assert found.severity == "MEDIUM"
        assert found.message == "Event queue depth is 1001 (threshold: 1000)"


@pytest.mark.parametrize(("dead", "alert"), [(0, False), (1, True)])
def test_dead_letters(org: sa.Engine, dead: int, alert: bool) -> None:
    inbox(org, 3, at=NOW - timedelta(days=2))
    inbox(org, dead, state="dead", attempts=8, at=NOW - timedelta(days=2))
    found = conditions(org).get("dead_letters_present")
    assert (found is not None) == alert
    if found is not None:
        assert found.severity == "MEDIUM" and found.details == {"dead": 1}


@pytest.mark.parametrize(
    ("p95", "requests", "alert"),
    [(5000.0, 500, False), (5000.1, 500, True), (9000.0, 19, False), (9000.0, 20, True)],
)
def test_api_latency_threshold(p95: float, requests: int, alert: bool) -> None:
    found = api_latency_alerts(p95, requests)
    assert bool(found) == alert
    if found:
        assert found[0].condition == "api_latency_p95_high" and found[0].severity == "MEDIUM"


def test_api_latency_passed_by_the_api_process(org: sa.Engine) -> None:
    assert "api_latency_p95_high" not in conditions(org)  # nothing measured
    found = conditions(org, api_latency_p95_ms=6200.0, api_requests=120)
    assert found["api_latency_p95_high"].details["p95Ms"] == 6200.0


@pytest.mark.parametrize(
    ("silent_for", "now", "alert"),
    [
        (timedelta(hours=2), NOW, False),  # exactly 2 h is still healthy
        (timedelta(hours=2, seconds=1), NOW, True),
        (timedelta(hours=3), SATURDAY, False),  # not a working day
    ],
)
def test_integration_stale(
    org: sa.Engine, silent_for: timedelta, now: datetime, alert: bool
) -> None:
    inbox(org, 1, at=now - silent_for)
    inbox(org, 1, source="pulse", at=now - timedelta(days=20))  # monthly: never alerts
    inbox(org, 1, source="incident", at=now - timedelta(days=9))  # rare: never alerts
    found = conditions(org, now=now)
    assert ("integration_stale_github" in found) == alert
    assert not {"integration_stale_pulse", "integration_stale_incident"} & set(found)
    if alert:
        assert found["integration_stale_github"].message == (
            "No GitHub events received in the last 2 hours"
        )


def _prs(engine: sa.Engine, lk: OrgLookups, linked: int, unlinked: int) -> None:
    repo = lk.repository("acme-core-api/payments-service")
    assert repo is not None
    with engine.begin() as conn:
        conn.execute(
            pr_cycles.insert(),
            [
                {
                    "cycle_id": uuid.uuid4(),
                    "repo_id": repo.repo_id,
                    "tech_stream_id": repo.tech_stream_id,
                    "pr_number": i + 1,
                    "linked_ticket_id": f"PAY-{i + 1}" if i < linked else None,
                    "author_hash": "a" * 64,
                    "opened_at": NOW - timedelta(days=3, hours=i),
                }
                for i in range(linked + unlinked)
            ],
        )


@pytest.mark.parametrize(("linked", "unlinked", "alert"), [(9, 1, False), (8, 1, True)])
def test_data_quality_below_target_per_tech_stream(
    org: sa.Engine, linked: int, unlinked: int, alert: bool
) -> None:
    _prs(org, lookups(org), linked, unlinked)  # PR linkage target: 90 %
    found = conditions(org)
    dq = {k: v for k, v in found.items() if k.startswith("data_quality_below_target:")}
    if not alert:
        assert dq == {}
        return
    assert list(dq) == ["data_quality_below_target:core-api:pr_linkage"]
    (one,) = dq.values()
    assert one.severity == "LOW"
    assert one.details["valuePct"] == 88.9 and one.details["targetPct"] == 90.0
    assert one.details["dimension"] == "tech"


def _pulse(engine: sa.Engine, lk: OrgLookups, responses: int) -> None:
    stream = lk.delivery_stream("payments")
    with engine.begin() as conn:
        conn.execute(
            pulse_responses.insert(),
            [
                {
                    "event_id": uuid.uuid4(),
                    "source": "survey",
                    "delivery_stream_id": stream,
                    "event_timestamp": NOW - timedelta(days=2, hours=i),
                    "survey_period": "2026-11",
                    "respondent_hash": hashlib.sha256(str(i).encode()).hexdigest(),
                    "pace_score": 4,
                    "tooling_score": 3,
                    "clarity_score": 4,
                }
                for i in range(responses)
            ],
        )


@pytest.mark.parametrize(("responses", "alert"), [(3, True), (4, False)])
def test_pulse_response_rate(org: sa.Engine, responses: int, alert: bool) -> None:
    _pulse(org, lookups(org), responses)  # payments has 8 people: 37.5 % and 50 %
    found = conditions(org)
    assert ("pulse_response_rate_low:payments" in found) == alert
    if alert:
        details = found["pulse_response_rate_low:payments"].details
        assert details["responseRatePct"] == 37.5 and details["surveyPeriod"] == "2026-11"
    # the other teams answered nothing in the running survey: their leads are reminded
    assert "pulse_response_rate_low:lending" in found


def test_no_pulse_alert_without_a_running_survey(org: sa.Engine) -> None:
    _pulse(org, lookups(org), 1)
    later = NOW + timedelta(days=31)
    assert not any(c.startswith("pulse_response_rate_low:") for c in conditions(org, now=later))


# --- the alert table ------------------------------------------------------------------------
def test_triggered_at_is_kept_while_true_and_resolved_when_cleared(org: sa.Engine) -> None:
    inbox(org, 1001, state="pending", at=NOW - timedelta(hours=1))
    (first,) = refresh(org)
    assert first["condition"] == "event_queue_depth_high"
    assert first["triggeredAt"] == "2026-11-11T14:00:00Z"
    inbox(org, 10, state="pending", at=NOW - timedelta(hours=1))
    (second,) = refresh(org, now=NOW + timedelta(minutes=5))
    assert second["triggeredAt"] == first["triggeredAt"]
    assert second["message"] == "Event queue depth is 1011 (threshold: 1000)"
    assert len(rows(org, "system_alerts")) == 1

    with org.begin() as conn:
        conn.execute(raw_events.update().values(state="done"))
    assert refresh(org, now=NOW + timedelta(minutes=10)) == []
    (row,) = rows(org, "system_alerts")
    assert _utc(row["resolved_at"]) == NOW + timedelta(minutes=10)

    with org.begin() as conn:  # true again: a new alert, triggered now
        conn.execute(raw_events.update().values(state="pending"))
    (again,) = refresh(org, now=NOW + timedelta(minutes=20))
    assert again["triggeredAt"] == "2026-11-11T14:20:00Z"
    assert len(rows(org, "system_alerts")) == 2


def test_computation_failure_recorded_until_resolved(org: sa.Engine) -> None:
    with org.begin() as conn:
        record_computation_failure(conn, job="materialise", error="ValueError: boom", now=NOW)
    (alert,) = refresh(org, now=NOW + timedelta(minutes=1))  # not evaluated: stays active
    assert alert["condition"] == "metric_computation_failure:materialise"
    assert alert["severity"] == "HIGH" and "ValueError: boom" in alert["message"]
    with org.begin() as conn:
        record_computation_failure(conn, job="materialise", error="KeyError: x", now=NOW)
    (alert,) = refresh(org, now=NOW + timedelta(minutes=2))
    assert alert["triggeredAt"] == "2026-11-11T14:00:00Z"
    assert alert["details"]["failures"] == 2 and alert["details"]["error"] == "KeyError: x"
    with org.begin() as conn:
        resolve_computation_failure(conn, job="materialise", now=NOW + timedelta(hours=1))
    assert refresh(org, now=NOW + timedelta(hours=1)) == []


def test_computation_alerts_wraps_a_job(org: sa.Engine) -> None:
    clock = lambda: NOW  # noqa: E731
    with (
        pytest.raises(RuntimeError, match="disk full"),
        computation_alerts(org, job="materialise", clock=clock),
    ):
        raise RuntimeError("disk full")
    (row,) = rows(org, "system_alerts")
    assert row["condition"] == "metric_computation_failure:materialise"
    assert row["resolved_at"] is None
    with computation_alerts(org, job="materialise", clock=clock):
        pass
    assert rows(org, "system_alerts", "resolved_at is null") == []
    with pytest.raises(ValueError, match="job name"), computation_alerts(org, job="x" * 80):
        pass


def test_active_alerts_most_severe_first_then_oldest(org: sa.Engine) -> None:
    with org.begin() as conn:
        record_computation_failure(conn, job="b", error="E", now=NOW + timedelta(minutes=3))
        record_computation_failure(conn, job="a", error="E", now=NOW + timedelta(minutes=9))
    inbox(org, 1, state="dead", attempts=8, at=NOW - timedelta(days=1))  # MEDIUM, at 14:05
    refresh(org, now=NOW + timedelta(minutes=5))
    inbox(org, 1001, state="pending", at=NOW - timedelta(hours=1))  # MEDIUM, at 14:00 ...
    _prs(org, lookups(org), 0, 1)  # LOW
    found = refresh(org, now=NOW)  # ... evaluated with an earlier clock
    assert [(a["severity"], a["condition"]) for a in found] == [
        ("HIGH", "metric_computation_failure:b"),
        ("HIGH", "metric_computation_failure:a"),
        ("MEDIUM", "event_queue_depth_high"),
        ("MEDIUM", "dead_letters_present"),
        ("LOW", "data_quality_below_target:core-api:pr_linkage"),
    ]
    assert set(found[0]) == {"condition", "severity", "message", "triggeredAt", "details"}


def test_a_job_error_survives_a_failure_to_record_it(tmp_path: Path) -> None:
    unreachable = sa.create_engine(f"sqlite:///{tmp_path / 'missing' / 'dpp.sqlite3'}")
    with pytest.raises(RuntimeError, match="disk full") as caught:  # noqa: SIM117
        with computation_alerts(unreachable, job="materialise", clock=lambda: NOW):
            raise RuntimeError("disk full")
    assert "the failure alert was not recorded" in caught.value.__notes__[0]


class _WholeHistory:
    """``dpp_lib.store.read`` as it was before the alerts' reads were windowed: every
    reader ignores its window argument."""

    def __getattr__(self, name: str) -> Any:
        from dpp_lib.store import read

        found = getattr(read, name)

        def whole(*args: Any, **kwargs: Any) -> Any:
            for window in ("since", "opened_since", "created_since", "logged_since"):
                kwargs.pop(window, None)
            return found(*args, **kwargs)

        return whole


def test_stream_alerts_from_the_window_equal_those_from_the_whole_history(
    demo_sqlite: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    moment = datetime(2026, 11, 12, 18, tzinfo=UTC)
    with demo_sqlite.engine.connect() as conn:
        lookups = load_lookups(conn)
        windowed = alerts._stream_alerts(conn, lookups, now=moment)
        monkeypatch.setattr(alerts, "read", _WholeHistory())
        whole = alerts._stream_alerts(conn, lookups, now=moment)
    assert windowed == whole
    assert any(a.condition.startswith(alerts.DATA_QUALITY) for a in whole)
