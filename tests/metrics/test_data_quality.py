"""Data quality rates and warnings (spec §5.6) and integration health (API reference)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from dpp_lib.metrics.data_quality import data_quality, integration_health
from dpp_lib.metrics.frames import make_frame

AS_OF = datetime(2026, 11, 20, 12, tzinfo=UTC)
S = "stream-1"


def ago(days: float) -> datetime:
    return AS_OF - timedelta(days=days)


def frames() -> dict[str, object]:
    prs = make_frame(
        "prs",
        [
            {"pr_number": i, "opened_at": ago(i), "linked_ticket_id": "T-1" if i < 9 else None}
            for i in range(1, 11)
        ]  # 10 PRs in the window, 8 linked → 80 %
        + [{"pr_number": 99, "opened_at": ago(40), "linked_ticket_id": None}],  # before it
    )
    transitions = make_frame(
        "transitions",
        [
            {"ticket_id": "A-1", "event_type": "created", "event_timestamp": ago(3)},
            {
                "ticket_id": "A-1",
                "event_type": "transitioned",
                "event_timestamp": ago(2),
                "delivery_stream_id": S,
            },  # tagged by a later event
            {
                "ticket_id": "A-2",
                "event_type": "created",
                "event_timestamp": ago(3),
                "delivery_stream_id": S,
            },
            {"ticket_id": "A-3", "event_type": "created", "event_timestamp": ago(3)},
            {"ticket_id": "A-4", "event_type": "created", "event_timestamp": ago(50)},
        ],
    )
    deploys = make_frame(
        "deploys",
        [
            {"deployed_at": ago(1), "status": "success", "linked_ticket_id": "T-1"},
            {"deployed_at": ago(2), "status": "rolled_back", "linked_ticket_id": None},
            {"deployed_at": ago(3), "status": "failed", "linked_ticket_id": None},  # not shipped
            {"deployed_at": ago(4), "status": "success", "trigger_type": "config"},  # excluded
        ],
    )
    defects = make_frame(
        "defects",
        [
            {
                "ticket_id": "B-1",
                "event_type": "logged",
                "event_timestamp": ago(2),
                "found_in_stage": "qa",
            },
            {
                "ticket_id": "B-1",
                "event_type": "attributed",
                "event_timestamp": ago(1),
                "found_in_stage": "qa",
                "introduced_in_stage": "dev",
            },
            {
                "ticket_id": "B-2",
                "event_type": "logged",
                "event_timestamp": ago(2),
                "found_in_stage": "qa",
            },
        ],
    )
    pulse = make_frame(
        "pulse",
        [
            {"survey_period": "2026-11", "respondent_hash": f"r{i}", "event_timestamp": ago(5)}
            for i in range(3)
        ]
        + [
            {"survey_period": "2026-10", "respondent_hash": f"r{i}", "event_timestamp": ago(25)}
            for i in range(8)
        ],
    )
    return {
        "prs": prs,
        "transitions": transitions,
        "deploys": deploys,
        "defects": defects,
        "pulse": pulse,
    }


def test_rates_targets_and_warnings() -> None:
    dq = data_quality(**frames(), as_of=AS_OF, team_size=6)  # type: ignore[arg-type]
    got = {k: (r.value, r.numerator, r.denominator) for k, r in dq.rates.items()}
    assert got == {
        "pr_linkage": (80.0, 8, 10),
        "ticket_tagging": (66.7, 2, 3),
        "deployment_traceability": (50.0, 1, 2),
        "defect_attribution": (50.0, 1, 2),
        "pulse_response": (50.0, 3, 6),  # the latest period only
    }
    assert {w.issue for w in dq.warnings} == {
        "pr_linkage_low",
        "ticket_tagging_low",
        "deployment_traceability_low",
        "defect_attribution_low",
        "pulse_response_low",
    }
    trace = next(w for w in dq.warnings if w.issue == "deployment_traceability_low")
    assert trace.threshold == 80.0 and "change_failure_rate" in trace.affects


def test_nothing_to_rate_is_none_and_never_warns() -> None:
    empty = {n: make_frame(n) for n in ("prs", "transitions", "deploys", "defects", "pulse")}
    dq = data_quality(**empty, as_of=AS_OF, team_size=5)  # type: ignore[arg-type]
    assert all(r.value is None for r in dq.rates.values())
    assert dq.warnings == () and dq.sample_size == 0


@pytest.mark.parametrize(
    ("minutes_ago", "status"), [(None, "no_data"), (5, "healthy"), (120, "healthy"), (121, "stale")]
)
def test_integration_status(minutes_ago: int | None, status: str) -> None:
    rows = []
    if minutes_ago is not None:
        rows = [
            {
                "source": "github",
                "last_received_at": AS_OF - timedelta(minutes=minutes_ago),
                "count_24h": 7,
            }
        ]
    health = integration_health(make_frame("integrations", rows), as_of=AS_OF)
    assert health.integrations["github"].status == status
    assert health.integrations["jira"].status == "no_data"
    assert set(health.integrations) >= {"jira", "github", "deployment", "incident", "pulse"}
