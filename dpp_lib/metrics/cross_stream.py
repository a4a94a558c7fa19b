"""Cross-stream bottlenecks (spec §6.7, §4.4.5, §7.1.2; DESIGN §5 "Cross-stream").

For each technology stream: the ``blocked`` work item events that name it as the blocking
tech stream in the trailing 14 days, the delivery streams they hit, those streams' average
sprint confidence and p85 cycle time, and a severity from the configurable rules. The tech
stream with the highest cross-stream impact is named as the root-cause signal.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, get_args
from zoneinfo import ZoneInfo

import pandas as pd

from dpp_lib.metrics.common import MetricInputError, Window, round_or_none
from dpp_lib.metrics.frames import check_frame
from dpp_lib.metrics.registry import metric
from dpp_lib.orgconfig import DEFAULT_SEVERITY_RULES, SeverityRule

WINDOW_DAYS = 14  # spec §6.7 and §4.4.5 block_count_14d: a rolling 14-day window
Severity = Literal["none", "low", "medium", "high", "critical"]
SEVERITIES: tuple[Severity, ...] = get_args(Severity)  # least to most severe
_RANK = {s: i for i, s in enumerate(SEVERITIES)}
BLOCK_STARTS = frozenset({"blocked", "flagged"})  # DESIGN §5 "Work item timeline"
BLOCK_ENDS = frozenset({"unblocked", "unflagged"})
BLOCK_EVENTS = BLOCK_STARTS | BLOCK_ENDS  # the only transitions the analysis looks at
# One block event: copies of a row count once, whatever their order (the store's unique key
# is (ticket_id, event_type, event_timestamp); a frame from elsewhere may repeat rows).
_BLOCK_IDENTITY = ["ticket_id", "event_timestamp", "blocking_tech_stream_id", "delivery_stream_id"]


@dataclass(frozen=True)
class TechStreamImpact:
    """One tech stream's cross-stream impact (API ``correlations`` field names)."""

    tech_stream_id: object
    block_count_14d: int  # blocked events naming this stream in the window
    blocked_ticket_count: int  # distinct tickets among them
    impacted_delivery_streams: tuple[object, ...]  # distinct, in str order
    blocked_delivery_streams: tuple[object, ...]  # impacted streams with a ticket blocked now
    avg_confidence_pct: float | None  # % (0–100), over impacted streams with a value
    avg_cycle_time_p85: float | None  # business days, over impacted streams with a value
    severity: Severity

    @property
    def impacted_stream_count(self) -> int:
        return len(self.impacted_delivery_streams)


@dataclass(frozen=True)
class CrossStreamBottleneck:
    as_of: datetime
    window: Window  # [as_of − 14 days, as_of)
    correlations: tuple[TechStreamImpact, ...]  # highest impact first (see impact_order)
    top_tech_stream_id: object | None  # the root-cause signal; None when nothing is impacted
    calibration: bool  # severities are recorded only
    alerting: bool  # not calibration: severities may raise alerts
    sample_size: int  # blocked events with a blocking tech stream in the window

    def for_tech_stream(self, tech_stream_id: object) -> TechStreamImpact | None:
        return next((c for c in self.correlations if c.tech_stream_id == tech_stream_id), None)


@metric(
    "cross_stream_bottleneck",
    spec="§6.7",
    summary="Which shared technology stream is holding up the most delivery streams?",
)
def cross_stream_bottleneck(
    transitions: pd.DataFrame,
    *,
    as_of: datetime,
    sprint_confidence_pct: Mapping[Any, float | None],
    cycle_time_p85_days: Mapping[Any, float | None],
    tech_streams: Iterable[object] = (),
    rules: Sequence[SeverityRule] = tuple(DEFAULT_SEVERITY_RULES),
    calibration: bool = True,
) -> CrossStreamBottleneck:
    """Block analysis per tech stream over ``[as_of − 14 days, as_of)``.

    Input: frame ``transitions`` (uses ``ticket_id``, ``event_type``, ``event_timestamp``,
    ``delivery_stream_id``, ``blocking_tech_stream_id``); rows at or after ``as_of`` are
    ignored. ``sprint_confidence_pct`` (0–100) and ``cycle_time_p85_days`` (business days)
    map delivery stream id → value, computed elsewhere; missing or None values are skipped
    in the averages. ``tech_streams`` are reported even without blocks (severity none);
    ``rules`` and ``calibration`` come from the org config (``cross_stream``).

    Blocks: ``blocked`` events with a blocking tech stream in the window; repeated rows
    (same ticket, time, blocking and delivery stream) count once, a ticket blocked twice
    counts twice. Impacted streams: their distinct non-null ``delivery_stream_id``. Blocked
    streams: impacted streams with a ticket whose latest blocked/flagged/unblocked/unflagged
    event before ``as_of`` is a ``blocked`` by this tech stream (pass history back to the
    oldest open block). Severity: see ``assess_severity``; averages are computed exactly,
    severity is assessed on the exact value, and both are rounded to 2 decimals for output.
    Order and root cause: see ``impact_order``. Spec §6.7, DESIGN §5.
    """
    check_frame("transitions", transitions)
    window = Window.trailing(as_of, WINDOW_DAYS)
    known = transitions[transitions["event_timestamp"] < as_of]
    blocks = known[
        (known["event_type"] == "blocked")
        & known["blocking_tech_stream_id"].notna()
        & window.mask(known["event_timestamp"])
    ].drop_duplicates(subset=_BLOCK_IDENTITY)

    events: dict[object, list[tuple[object, object]]] = {t: [] for t in tech_streams}
    for tech, ticket, stream in blocks[
        ["blocking_tech_stream_id", "ticket_id", "delivery_stream_id"]
    ].itertuples(index=False, name=None):
        events.setdefault(tech, []).append((ticket, stream))
    active = _active_blocks(known)

    impacts = []
    for tech, hits in events.items():
        impacted = tuple(sorted({s for _, s in hits if not _missing(s)}, key=str))
        confidence = _mean_of(impacted, sprint_confidence_pct, "sprint confidence", 100)
        impacts.append(
            TechStreamImpact(
                tech_stream_id=tech,
                block_count_14d=len(hits),
                blocked_ticket_count=len({t for t, _ in hits}),
                impacted_delivery_streams=impacted,
                blocked_delivery_streams=tuple(s for s in impacted if (tech, s) in active),
                avg_confidence_pct=round_or_none(confidence),
                avg_cycle_time_p85=round_or_none(
                    _mean_of(impacted, cycle_time_p85_days, "p85 cycle time", math.inf)
                ),
                severity=assess_severity(len(impacted), confidence, rules),
            )
        )
    ordered = tuple(sorted(impacts, key=impact_order))
    top = ordered[0] if ordered and ordered[0].impacted_delivery_streams else None
    return CrossStreamBottleneck(
        as_of=as_of,
        window=window,
        correlations=ordered,
        top_tech_stream_id=top.tech_stream_id if top else None,
        calibration=calibration,
        alerting=not calibration,
        sample_size=len(blocks),
    )


def assess_severity(
    impacted_streams: int, avg_confidence_pct: float | None, rules: Sequence[SeverityRule]
) -> Severity:
    """The most severe rule that matches (spec §6.7 table, configurable); ``none`` when no
    delivery stream is impacted or no rule matches.

    A rule matches when ``impacted_streams ≥ min_impacted_streams``, the confidence is below
    ``confidence_below`` (if set) and at least ``confidence_at_least`` (if set). An unknown
    confidence never raises severity: it fails every ``confidence_below`` and passes every
    ``confidence_at_least`` condition.
    """
    if impacted_streams <= 0:
        return "none"
    found: Severity = "none"
    for rule in rules:
        if impacted_streams < rule.min_impacted_streams:
            continue
        if rule.confidence_below is not None and (
            avg_confidence_pct is None or avg_confidence_pct >= rule.confidence_below
        ):
            continue
        if (
            rule.confidence_at_least is not None
            and avg_confidence_pct is not None
            and avg_confidence_pct < rule.confidence_at_least
        ):
            continue
        if _RANK[rule.severity] > _RANK[found]:
            found = rule.severity
    return found


def impact_order(impact: TechStreamImpact) -> tuple[int, int, int, float, str]:
    """Sort key, highest cross-stream impact first: severity, impacted delivery streams,
    block count (each descending), average confidence (ascending, unknown last), id."""
    confidence = impact.avg_confidence_pct
    return (
        -_RANK[impact.severity],
        -impact.impacted_stream_count,
        -impact.block_count_14d,
        math.inf if confidence is None else confidence,
        str(impact.tech_stream_id),
    )


def cross_stream_correlation_rows(
    result: CrossStreamBottleneck, *, time_zone: str = "UTC"
) -> list[dict[str, object]]:
    """``cross_stream_correlations`` rows (spec §4.4.5) but ``correlation_id`` and
    ``computed_at``: one per reported tech stream; ``analysis_date`` is ``as_of``'s date
    in ``time_zone`` (the org's)."""
    analysis_date = result.as_of.astimezone(ZoneInfo(time_zone)).date()
    return [
        {
            "analysis_date": analysis_date,
            "tech_stream_id": c.tech_stream_id,
            "impacted_delivery_streams": list(c.impacted_delivery_streams),
            "blocked_delivery_streams": list(c.blocked_delivery_streams),
            "block_count_14d": c.block_count_14d,
            "avg_confidence_pct": c.avg_confidence_pct,
            "avg_cycle_time_p85": c.avg_cycle_time_p85,
            "severity": c.severity,
        }
        for c in result.correlations
    ]


def _active_blocks(known: pd.DataFrame) -> set[tuple[object, object]]:
    """(blocking tech stream, delivery stream) of tickets blocked at the end of ``known``.

    A ticket's state is set by its latest block event; at equal times an end wins."""
    marks = known[known["event_type"].isin(BLOCK_STARTS | BLOCK_ENDS)]
    if marks.empty:
        return set()
    last = marks.groupby("ticket_id")["event_timestamp"].transform("max")
    final = marks[marks["event_timestamp"] == last]
    ended = set(final.loc[final["event_type"].isin(BLOCK_ENDS), "ticket_id"])
    still = final[
        (final["event_type"] == "blocked")
        & final["blocking_tech_stream_id"].notna()
        & ~final["ticket_id"].isin(ended)
    ]
    return {
        (tech, stream)
        for tech, stream in still[["blocking_tech_stream_id", "delivery_stream_id"]].itertuples(
            index=False, name=None
        )
        if not _missing(stream)
    }


def _mean_of(
    streams: Sequence[object], values: Mapping[Any, float | None], what: str, upper: float
) -> float | None:
    got = []
    for stream in streams:
        value = values.get(stream)
        if value is None or _missing(value):
            continue
        if not 0 <= value <= upper:
            raise MetricInputError(f"{what} of delivery stream {stream} is out of range: {value}")
        got.append(float(value))
    return math.fsum(got) / len(got) if got else None


def _missing(value: object) -> bool:
    if value is None or value is pd.NaT or value is pd.NA:
        return True
    return isinstance(value, float) and math.isnan(value)
