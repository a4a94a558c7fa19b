"""Team health pulse (spec §6.6.1, §4.4.7, §5.5; DESIGN §5 "Pulse").

Per delivery stream and survey period (``YYYY-MM``): responses, response rate, the pace,
tooling and clarity averages, their mean, and each average's change from the previous
calendar month. Averages of a period with fewer than ``MIN_RESPONSES`` responses are withheld
(``suppressed``) so no one can be singled out; the count is still shown. Free text is never
read here.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pandas as pd

from dpp_lib.metrics.common import MetricInputError, round_or_none
from dpp_lib.metrics.frames import check_frame
from dpp_lib.metrics.registry import metric

MIN_RESPONSES = 3  # DESIGN §5: fewer and a period's averages are withheld
DEFAULT_PERIODS = 6  # API reference, GET /api/v1/metrics/pulse ?periods=
DIMENSIONS = ("pace", "tooling", "clarity")  # spec §5.5.2
SCORES = [f"{d}_score" for d in DIMENSIONS]
RESPONSE_KEY = ["delivery_stream_id", "survey_period", "respondent_hash"]  # spec §4.3.8
_PERIOD = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")


@dataclass(frozen=True)
class PulseAggregate:
    """One delivery stream's pulse for one survey period (spec §4.4.7 field names).

    Averages are 1–5 Likert means, trends differences of such means, rounded to 2 decimals;
    all are None when ``suppressed``. A trend is None unless this and the previous calendar
    month are both unsuppressed.
    """

    delivery_stream_id: object
    survey_period: str
    response_count: int
    team_size: int | None
    response_rate_pct: float | None  # responses ÷ team size × 100, may exceed 100
    suppressed: bool
    pace_avg: float | None
    pace_trend: float | None
    tooling_avg: float | None
    tooling_trend: float | None
    clarity_avg: float | None
    clarity_trend: float | None
    overall_avg: float | None  # mean of the three averages

    def as_row(self) -> dict[str, object]:
        """The ``pulse_aggregates`` columns (spec §4.4.7) but ``aggregate_id``/``computed_at``.

        A suppressed period's averages are None (DESIGN §5 over the spec's NOT NULL).
        """
        return {
            "delivery_stream_id": self.delivery_stream_id,
            "survey_period": self.survey_period,
            "response_count": self.response_count,
            "team_size": self.team_size,
            "response_rate_pct": self.response_rate_pct,
            "pace_avg": self.pace_avg,
            "pace_trend": self.pace_trend,
            "tooling_avg": self.tooling_avg,
            "tooling_trend": self.tooling_trend,
            "clarity_avg": self.clarity_avg,
            "clarity_trend": self.clarity_trend,
            "overall_avg": self.overall_avg,
        }


@dataclass(frozen=True)
class TeamPulse:
    as_of: datetime
    period: str | None  # the latest period reported; None when there is nothing to report
    periods: tuple[str, ...]  # the reported survey periods, oldest first
    aggregates: tuple[PulseAggregate, ...]  # by stream (str order), then period, oldest first
    sample_size: int  # responses counted in the reported aggregates

    def for_stream(self, delivery_stream_id: object) -> tuple[PulseAggregate, ...]:
        return tuple(a for a in self.aggregates if a.delivery_stream_id == delivery_stream_id)


@dataclass(frozen=True)
class _Stats:
    count: int
    means: tuple[float, float, float]  # pace, tooling, clarity; exact, unrounded


@metric(
    "team_pulse",
    spec="§6.6.1",
    summary="How sustainable, well-tooled and clear does the work feel to each team, "
    "and which way is it moving?",
)
def team_pulse(
    responses: pd.DataFrame,
    *,
    as_of: datetime,
    team_sizes: Mapping[Any, int],
    period: str | None = None,
    periods: int = DEFAULT_PERIODS,
) -> TeamPulse:
    """Pulse aggregates for the ``periods`` survey months ending at ``period``.

    Input: frame ``pulse`` (columns ``delivery_stream_id``, ``survey_period`` ``YYYY-MM``,
    ``respondent_hash``, ``pace_score``/``tooling_score``/``clarity_score`` integers 1–5,
    ``event_timestamp``); ``team_sizes`` maps delivery stream id → people in the team.

    Only responses with ``event_timestamp < as_of`` count; rows without a time or a delivery
    stream are ignored. One response per (respondent, stream, period): the latest
    ``event_timestamp`` wins (equal times: the higher scores, so row order never matters).
    ``period`` defaults to the latest survey period with a response; the reported periods
    are consecutive calendar months, a month without responses shows ``response_count`` 0.
    Streams reported: those in ``team_sizes`` and those with responses (scope both first).
    Response rate = responses ÷ team size × 100 (None without a team size). A period with
    fewer than 3 responses is ``suppressed``: averages and trends None. Trend = this
    period's average − the previous calendar month's, when both are unsuppressed. Averages,
    trends and rates are computed exactly and rounded to 2 decimals. Spec §6.6.1, DESIGN §5.
    """
    if periods < 1:
        raise MetricInputError(f"periods must be at least 1, got {periods}")
    if period is not None:
        _parse_period(period)
    stats = _period_stats(responses, as_of=as_of)
    sizes = _team_sizes(team_sizes)
    end = period if period is not None else max((p for _, p in stats), default=None)
    reported = _months_ending(end, periods) if end is not None else ()
    streams = sorted({s for s, _ in stats} | set(sizes), key=str)
    aggregates = tuple(_aggregate(stream, p, stats, sizes) for stream in streams for p in reported)
    return TeamPulse(
        as_of=as_of,
        period=end,
        periods=reported,
        aggregates=aggregates,
        sample_size=sum(a.response_count for a in aggregates),
    )


def pulse_aggregate_rows(
    responses: pd.DataFrame, *, as_of: datetime, team_sizes: Mapping[Any, int]
) -> list[dict[str, object]]:
    """``pulse_aggregates`` rows (spec §4.4.7) for every stream and period with a response
    before ``as_of``, ordered by stream then period; same rules and inputs as ``team_pulse``.
    Suppressed periods are included with their count and None averages."""
    stats = _period_stats(responses, as_of=as_of)
    sizes = _team_sizes(team_sizes)
    keys = sorted(stats, key=lambda k: (str(k[0]), k[1]))
    return [_aggregate(stream, p, stats, sizes).as_row() for stream, p in keys]


def _period_stats(responses: pd.DataFrame, *, as_of: datetime) -> dict[tuple[object, str], _Stats]:
    """Count and exact means per (stream, period) of the latest response per respondent."""
    check_frame("pulse", responses)
    if as_of.tzinfo is None:
        raise MetricInputError("as_of must be timezone-aware")
    known = responses[
        (responses["event_timestamp"] < as_of) & responses["delivery_stream_id"].notna()
    ]
    _check_rows(known)
    ordered = known.sort_values(["event_timestamp", *SCORES], kind="mergesort")
    latest = ordered.drop_duplicates(subset=RESPONSE_KEY, keep="last")
    stats: dict[tuple[object, str], _Stats] = {}
    for (stream, survey_period), group in latest.groupby(
        ["delivery_stream_id", "survey_period"], sort=False
    ):
        pace, tooling, clarity = (math.fsum(group[c]) / len(group) for c in SCORES)
        stats[(stream, str(survey_period))] = _Stats(len(group), (pace, tooling, clarity))
    return stats


def _check_rows(rows: pd.DataFrame) -> None:
    for column in SCORES:
        bad = rows[rows[column].isna() | ~rows[column].isin([1, 2, 3, 4, 5])]
        if len(bad):
            first = bad.iloc[0]
            raise MetricInputError(
                f"pulse response for stream {first['delivery_stream_id']}, period "
                f"{first['survey_period']}: {column} {first[column]!r} is not an integer 1–5"
            )
    for survey_period in rows["survey_period"].unique():
        _parse_period(survey_period)


def _team_sizes(team_sizes: Mapping[Any, int]) -> dict[object, int]:
    for stream, size in team_sizes.items():
        if size < 1:
            raise MetricInputError(f"team size of delivery stream {stream} must be ≥ 1: {size}")
    return dict(team_sizes)


def _aggregate(
    stream: object,
    survey_period: str,
    stats: Mapping[tuple[object, str], _Stats],
    sizes: Mapping[object, int],
) -> PulseAggregate:
    current = stats.get((stream, survey_period))
    count = current.count if current else 0
    shown = current if current and current.count >= MIN_RESPONSES else None
    prior = stats.get((stream, _previous(survey_period)))
    before = prior if prior and prior.count >= MIN_RESPONSES else None
    size = sizes.get(stream)

    def avg(i: int) -> float | None:
        return round_or_none(shown.means[i]) if shown else None

    def trend(i: int) -> float | None:
        return round_or_none(shown.means[i] - before.means[i]) if shown and before else None

    return PulseAggregate(
        delivery_stream_id=stream,
        survey_period=survey_period,
        response_count=count,
        team_size=size,
        response_rate_pct=round_or_none(count / size * 100) if size else None,
        suppressed=shown is None,
        pace_avg=avg(0),
        pace_trend=trend(0),
        tooling_avg=avg(1),
        tooling_trend=trend(1),
        clarity_avg=avg(2),
        clarity_trend=trend(2),
        overall_avg=round_or_none(math.fsum(shown.means) / 3) if shown else None,
    )


def _parse_period(survey_period: object) -> tuple[int, int]:
    match = _PERIOD.match(survey_period) if isinstance(survey_period, str) else None
    if match is None:
        raise MetricInputError(f"survey period {survey_period!r} is not YYYY-MM")
    return int(match[1]), int(match[2])


def _previous(survey_period: str) -> str:
    year, month = _parse_period(survey_period)
    return f"{year - 1:04d}-12" if month == 1 else f"{year:04d}-{month - 1:02d}"


def _months_ending(survey_period: str, count: int) -> tuple[str, ...]:
    months = [survey_period]
    while len(months) < count:
        months.append(_previous(months[-1]))
    return tuple(reversed(months))
