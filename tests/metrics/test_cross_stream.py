"""Cross-stream bottleneck (spec §6.7, §4.4.5; DESIGN §5): severity table, windows, order."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dpp_lib.metrics.common import MetricInputError
from dpp_lib.metrics.cross_stream import (
    CrossStreamBottleneck,
    assess_severity,
    cross_stream_bottleneck,
    cross_stream_correlation_rows,
)
from dpp_lib.metrics.frames import make_frame
from dpp_lib.metrics.registry import load_all
from dpp_lib.orgconfig import DEFAULT_SEVERITY_RULES, CrossStream, SeverityRule

AS_OF = datetime(2026, 3, 16, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)
AUTH, CORE, WEB = "auth", "core-api", "frontend"  # tech streams

CORRELATION_COLUMNS = {  # spec §4.4.5 without correlation_id and computed_at
    "analysis_date",
    "tech_stream_id",
    "impacted_delivery_streams",
    "blocked_delivery_streams",
    "block_count_14d",
    "avg_confidence_pct",
    "avg_cycle_time_p85",
    "severity",
}


def make_event(
    ticket: str = "PAY-1",
    *,
    stream: object = "payments",
    blocking: object = AUTH,
    at: datetime = AS_OF - 2 * DAY,
    event_type: str = "blocked",
    **overrides: Any,
) -> dict[str, Any]:
    return {
        "ticket_id": ticket,
        "event_type": event_type,
        "event_timestamp": at,
        "delivery_stream_id": stream,
        "blocking_tech_stream_id": blocking if event_type == "blocked" else None,
        **overrides,
    }


def analyse(
    rows: list[dict[str, Any]],
    confidence: dict[Any, float | None] | None = None,
    p85: dict[Any, float | None] | None = None,
    **kw: Any,
) -> CrossStreamBottleneck:
    kw.setdefault("as_of", AS_OF)
    return cross_stream_bottleneck(
        make_frame("transitions", rows),
        sprint_confidence_pct=confidence or {},
        cycle_time_p85_days=p85 or {},
        **kw,
    )


def blocks_for(
    confidences: list[float], *, blocking: object = AUTH
) -> tuple[list[dict[str, Any]], dict[Any, float | None]]:
    """One blocked ticket in each of len(confidences) delivery streams, with those confidences."""
    streams = [f"ds{i}" for i in range(len(confidences))]
    rows = [make_event(f"T-{i}", stream=s, blocking=blocking) for i, s in enumerate(streams)]
    return rows, dict(zip(streams, confidences, strict=True))


# --- the §6.7 severity table --------------------------------------------------------------

SEVERITY_TABLE = [
    # (impacted streams, average confidence, severity): every row and its boundaries
    (0, None, "none"),
    (0, 10.0, "none"),
    (1, 70.0, "low"),
    (1, 95.0, "low"),
    (1, 69.99, "medium"),
    (1, 10.0, "medium"),  # one stream is never high or critical
    (2, 70.0, "medium"),
    (2, 69.99, "high"),
    (2, 59.99, "high"),  # critical needs 3+
    (3, 70.0, "medium"),
    (3, 69.99, "high"),
    (3, 60.0, "high"),
    (3, 59.99, "critical"),
    (7, 0.0, "critical"),
    (1, None, "low"),  # unknown confidence never raises severity
    (3, None, "medium"),
]


@pytest.mark.parametrize(("impacted", "confidence", "severity"), SEVERITY_TABLE)
def test_default_severity_table(impacted: int, confidence: float | None, severity: str) -> None:
    assert assess_severity(impacted, confidence, DEFAULT_SEVERITY_RULES) == severity


@pytest.mark.parametrize(
    ("confidences", "severity", "average"),
    [
        ([70.0], "low", 70.0),
        ([69.0], "medium", 69.0),
        ([60.0, 80.0], "medium", 70.0),  # averaged to exactly 70
        ([59.0, 80.0], "high", 69.5),
        ([50.0, 60.0, 70.0], "high", 60.0),  # exactly 60: not critical
        ([50.0, 60.0, 69.0], "critical", 59.67),
        ([80.0, 90.0, 100.0], "medium", 90.0),
    ],
)
def test_severity_from_the_impacted_streams_average_confidence(
    confidences: list[float], severity: str, average: float
) -> None:
    rows, confidence = blocks_for(confidences)
    (auth,) = analyse(rows, confidence).correlations
    assert auth.impacted_stream_count == len(confidences)
    assert auth.avg_confidence_pct == average
    assert auth.severity == severity


def test_custom_rules_replace_the_defaults() -> None:
    rules = [
        SeverityRule(severity="critical", min_impacted_streams=1, confidence_below=90),
        SeverityRule(severity="low", min_impacted_streams=2),
    ]
    assert assess_severity(1, 85.0, rules) == "critical"
    assert assess_severity(1, 95.0, rules) == "none"  # no rule matches
    assert assess_severity(2, 95.0, rules) == "low"
    assert assess_severity(2, 50.0, rules) == "critical"  # the most severe match wins
    rows, confidence = blocks_for([85.0])
    assert analyse(rows, confidence, rules=rules).correlations[0].severity == "critical"


def test_rules_from_the_org_config_and_a_band_rule() -> None:
    config = CrossStream(
        severity_rules=[
            SeverityRule(
                severity="high", min_impacted_streams=1, confidence_at_least=40, confidence_below=50
            )
        ],
        calibration=False,
    )
    got = [assess_severity(1, c, config.severity_rules) for c in (39.9, 40.0, 49.9, 50.0, None)]
    assert got == ["none", "high", "high", "none", "none"]


def test_no_rules_means_no_severity() -> None:
    rows, confidence = blocks_for([10.0, 10.0, 10.0])
    assert analyse(rows, confidence, rules=[]).correlations[0].severity == "none"


# --- calibration ---------------------------------------------------------------------------


@pytest.mark.parametrize("calibration", [True, False])
def test_calibration_records_severities_without_alerting(calibration: bool) -> None:
    rows, confidence = blocks_for([50.0, 55.0, 50.0])
    result = analyse(rows, confidence, calibration=calibration)
    assert result.calibration is calibration
    assert result.alerting is (not calibration)
    assert result.correlations[0].severity == "critical"  # assessed either way


def test_calibration_is_on_unless_switched_off() -> None:
    assert analyse([]).alerting is False
    assert CrossStream().calibration is True


# --- windows and counting ------------------------------------------------------------------


def test_an_empty_window() -> None:
    result = analyse([], tech_streams=[AUTH, CORE])
    assert result.sample_size == 0
    assert result.top_tech_stream_id is None
    assert [(c.tech_stream_id, c.block_count_14d, c.severity) for c in result.correlations] == [
        (AUTH, 0, "none"),
        (CORE, 0, "none"),
    ]
    assert result.correlations[0].avg_confidence_pct is None


@pytest.mark.parametrize(
    ("at", "counted"),
    [
        (AS_OF - 14 * DAY, True),  # the window's first instant
        (AS_OF - 14 * DAY - timedelta(seconds=1), False),
        (AS_OF - 20 * DAY, False),
        (AS_OF - timedelta(seconds=1), True),
        (AS_OF, False),  # at or after as_of: not yet happened
        (AS_OF + DAY, False),
    ],
)
def test_only_blocks_in_the_trailing_14_days_count(at: datetime, counted: bool) -> None:
    result = analyse([make_event(at=at)], {"payments": 50.0}, tech_streams=[AUTH])
    (auth,) = result.correlations
    assert auth.block_count_14d == int(counted)
    assert auth.severity == ("medium" if counted else "none")
    assert result.window.start == AS_OF - 14 * DAY


def test_a_ticket_blocked_twice() -> None:
    rows = [
        make_event("PAY-1", at=AS_OF - 10 * DAY),
        make_event("PAY-1", at=AS_OF - 9 * DAY, event_type="unblocked"),
        make_event("PAY-1", at=AS_OF - 3 * DAY),
    ]
    (auth,) = analyse(rows, {"payments": 80.0}).correlations
    assert (auth.block_count_14d, auth.blocked_ticket_count) == (2, 1)
    assert auth.impacted_delivery_streams == ("payments",)
    assert auth.severity == "low"


def test_only_blocked_events_with_a_blocking_tech_stream_count() -> None:
    rows = [
        make_event("PAY-1"),
        make_event("PAY-2", blocking=None),  # not a cross-stream block
        make_event("PAY-3", event_type="flagged"),
        make_event("PAY-4", event_type="transitioned"),
    ]
    result = analyse(rows)
    assert [(c.tech_stream_id, c.block_count_14d) for c in result.correlations] == [(AUTH, 1)]
    assert result.sample_size == 1


def test_a_block_without_a_delivery_stream_counts_but_impacts_no_stream() -> None:
    (auth,) = analyse([make_event(stream=None)], {"payments": 10.0}).correlations
    assert (auth.block_count_14d, auth.impacted_delivery_streams, auth.severity) == (1, (), "none")


def test_averages_skip_streams_without_a_value() -> None:
    rows = [
        make_event("A-1", stream="a"),
        make_event("B-1", stream="b"),
        make_event("C-1", stream="c"),
    ]
    (auth,) = analyse(
        rows, confidence={"a": 50.0, "b": None, "c": 66.0}, p85={"a": 4.0, "c": float("nan")}
    ).correlations
    assert auth.avg_confidence_pct == 58.0  # (50 + 66) / 2
    assert auth.avg_cycle_time_p85 == 4.0
    assert auth.severity == "critical"  # 3 streams, 58 %


def test_out_of_range_inputs_are_refused() -> None:
    with pytest.raises(MetricInputError, match="sprint confidence"):
        analyse([make_event()], {"payments": 120.0})
    with pytest.raises(MetricInputError, match="p85 cycle time"):
        analyse([make_event()], {"payments": 50.0}, {"payments": -1.0})


def test_blocked_delivery_streams_are_those_still_blocked() -> None:
    rows = [
        make_event("A-1", stream="a", at=AS_OF - 5 * DAY),
        make_event("A-1", stream="a", at=AS_OF - 4 * DAY, event_type="unblocked"),
        make_event("B-1", stream="b", at=AS_OF - 3 * DAY),  # still blocked
        make_event("C-1", stream="c", at=AS_OF - 3 * DAY),
        make_event("C-1", stream="c", at=AS_OF - 3 * DAY, event_type="unflagged"),  # same instant
        make_event("D-1", stream="d", at=AS_OF - 3 * DAY),
        make_event("D-1", stream="d", at=AS_OF - 2 * DAY, blocking=CORE),  # now blocked by core
        make_event("E-1", stream="e", at=AS_OF - 3 * DAY),
        make_event("E-1", stream="e", at=AS_OF + DAY, event_type="unblocked"),  # after as_of
    ]
    auth = analyse(rows).for_tech_stream(AUTH)
    assert auth is not None
    assert auth.impacted_delivery_streams == ("a", "b", "c", "d", "e")
    assert auth.blocked_delivery_streams == ("b", "e")
    core = analyse(rows).for_tech_stream(CORE)
    assert core is not None and core.blocked_delivery_streams == ("d",)


def test_uuid_ids() -> None:
    tech, payments, lending = uuid.UUID(int=1), uuid.UUID(int=2), uuid.UUID(int=3)
    rows = [
        make_event("P-1", stream=payments, blocking=tech),
        make_event("L-1", stream=lending, blocking=tech),
    ]
    result = analyse(rows, {payments: 60.0, lending: 70.0}, {payments: 5.0, lending: 8.0})
    (impact,) = result.correlations
    assert impact.impacted_delivery_streams == (payments, lending)
    assert (impact.avg_confidence_pct, impact.avg_cycle_time_p85) == (65.0, 6.5)
    assert impact.severity == "high"
    assert result.top_tech_stream_id == tech


# --- the root-cause signal -----------------------------------------------------------------


def test_the_most_severe_tech_stream_is_the_root_cause() -> None:
    auth_rows, auth_conf = blocks_for([50.0, 50.0], blocking=AUTH)  # high
    core_rows = [make_event(f"C-{i}", stream="x", blocking=CORE) for i in range(9)]  # medium
    result = analyse(auth_rows + core_rows, {**auth_conf, "x": 10.0}, tech_streams=[WEB])
    assert [c.tech_stream_id for c in result.correlations] == [AUTH, CORE, WEB]
    assert result.top_tech_stream_id == AUTH


@pytest.mark.parametrize(
    ("auth", "core", "top"),
    [
        # (streams hit, blocks, confidence) for each; equal severities throughout
        ((["a", "b", "c"], 3, 80.0), (["a", "b"], 5, 80.0), AUTH),  # more impacted streams
        ((["a", "b"], 2, 80.0), (["a", "b"], 4, 80.0), CORE),  # then more blocks
        ((["a", "b"], 2, 75.0), (["c", "d"], 2, 72.0), CORE),  # then lower confidence
        ((["a", "b"], 2, 80.0), (["c", "d"], 2, 80.0), AUTH),  # then the id, for stability
    ],
)
def test_ties_are_broken_by_impacted_streams_blocks_then_confidence(
    auth: tuple[list[str], int, float], core: tuple[list[str], int, float], top: str
) -> None:
    rows: list[dict[str, Any]] = []
    confidence: dict[Any, float | None] = {}
    for tech, (streams, blocks, conf) in ((AUTH, auth), (CORE, core)):
        for i in range(blocks):
            stream = streams[i % len(streams)]
            rows.append(make_event(f"{tech}-{i}", stream=f"{tech}:{stream}", blocking=tech))
            confidence[f"{tech}:{stream}"] = conf
    result = analyse(rows, confidence)
    assert result.correlations[0].severity == result.correlations[1].severity == "medium"
    assert result.top_tech_stream_id == top


def test_no_root_cause_when_nothing_is_impacted() -> None:
    result = analyse([make_event(stream=None)], tech_streams=[CORE])
    assert result.top_tech_stream_id is None
    assert result.sample_size == 1


# --- cross_stream_correlations rows ------------------------------------------------------------


def test_correlation_rows() -> None:
    rows = [make_event("A-1", stream="a"), make_event("B-1", stream="b", at=AS_OF - 13 * DAY)]
    result = analyse(rows, {"a": 65.0, "b": 70.0}, {"a": 3.0}, tech_streams=[CORE])
    table = cross_stream_correlation_rows(result)
    assert all(set(r) == CORRELATION_COLUMNS for r in table)
    assert table[0] == {
        "analysis_date": date(2026, 3, 16),
        "tech_stream_id": AUTH,
        "impacted_delivery_streams": ["a", "b"],
        "blocked_delivery_streams": ["a", "b"],
        "block_count_14d": 2,
        "avg_confidence_pct": 67.5,
        "avg_cycle_time_p85": 3.0,
        "severity": "high",
    }
    assert (table[1]["tech_stream_id"], table[1]["severity"]) == (CORE, "none")


def test_analysis_date_is_in_the_org_time_zone() -> None:
    late = analyse([], as_of=datetime(2026, 3, 16, 23, 30, tzinfo=UTC), tech_streams=[AUTH])
    assert cross_stream_correlation_rows(late)[0]["analysis_date"] == date(2026, 3, 16)
    sydney = cross_stream_correlation_rows(late, time_zone="Australia/Sydney")
    assert sydney[0]["analysis_date"] == date(2026, 3, 17)


def test_cross_stream_bottleneck_is_registered() -> None:
    info = load_all()["cross_stream_bottleneck"]
    assert info.func is cross_stream_bottleneck and info.spec == "§6.7"


# --- properties ------------------------------------------------------------------------------

events = st.lists(
    st.builds(
        make_event,
        ticket=st.sampled_from(["T-1", "T-2", "T-3", "T-4", "T-5"]),
        stream=st.sampled_from(["a", "b", "c", "d", None]),
        blocking=st.sampled_from([AUTH, CORE, WEB, None]),
        at=st.integers(-20 * 24, 2).map(lambda h: AS_OF + timedelta(hours=h)),
        event_type=st.sampled_from(["blocked", "blocked", "unblocked", "flagged", "transitioned"]),
    ),
    max_size=30,
)
CONFIDENCE: dict[Any, float | None] = {"a": 55.0, "b": 72.5, "c": None, "d": 61.0}
P85: dict[Any, float | None] = {"a": 3.5, "b": 9.0, "d": 4.25}


def _run(frame: Any) -> CrossStreamBottleneck:
    return cross_stream_bottleneck(
        frame, as_of=AS_OF, sprint_confidence_pct=CONFIDENCE, cycle_time_p85_days=P85
    )


@settings(max_examples=60, deadline=None)
@given(rows=events, seed=st.integers(0, 2**32 - 1))
def test_row_order_changes_nothing(rows: list[dict[str, Any]], seed: int) -> None:
    frame = make_frame("transitions", rows)
    shuffled = frame.sample(frac=1, random_state=seed).reset_index(drop=True)
    assert _run(shuffled) == _run(frame)


@settings(max_examples=60, deadline=None)
@given(rows=events, picks=st.lists(st.integers(0, 29), max_size=10))
def test_duplicated_rows_change_nothing(rows: list[dict[str, Any]], picks: list[int]) -> None:
    copies = [rows[i % len(rows)] for i in picks] if rows else []
    assert _run(make_frame("transitions", rows + copies)) == _run(make_frame("transitions", rows))


@settings(max_examples=60, deadline=None)
@given(rows=events)
def test_counts_agree_with_a_direct_count(rows: list[dict[str, Any]]) -> None:
    result = _run(make_frame("transitions", rows))
    start = AS_OF - 14 * DAY
    counted = {
        (
            r["ticket_id"],
            r["event_timestamp"],
            r["blocking_tech_stream_id"],
            r["delivery_stream_id"],
        )
        for r in rows
        if r["event_type"] == "blocked"
        and r["blocking_tech_stream_id"] is not None
        and start <= r["event_timestamp"] < AS_OF
    }
    assert result.sample_size == len(counted)
    for c in result.correlations:
        mine = [k for k in counted if k[2] == c.tech_stream_id]
        assert c.block_count_14d == len(mine)
        assert set(c.blocked_delivery_streams) <= set(c.impacted_delivery_streams)
        assert (c.severity == "none") is (not c.impacted_delivery_streams)  # default rules
