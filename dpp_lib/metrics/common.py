"""What every metric shares: the window, percentiles, scope, the result base."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

import numpy as np
import pandas as pd

DEFAULT_WINDOW_DAYS = 30  # spec §6.1


class MetricInputError(ValueError):
    """A frame handed to a metric lacks columns or has values of the wrong kind."""


@dataclass(frozen=True)
class Window:
    """``[start, end)``; ``end`` is the ``as_of`` moment (DESIGN §5)."""

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise MetricInputError("window bounds must be timezone-aware")
        if self.end < self.start:
            raise MetricInputError(f"window ends ({self.end}) before it starts ({self.start})")

    @classmethod
    def trailing(cls, as_of: datetime, days: int = DEFAULT_WINDOW_DAYS) -> Window:
        if days < 1:
            raise MetricInputError(f"window must be at least 1 day, got {days}")
        return cls(as_of - timedelta(days=days), as_of)

    @property
    def as_of(self) -> datetime:
        return self.end

    @property
    def days(self) -> float:
        return (self.end - self.start).total_seconds() / 86_400

    def mask(self, times: pd.Series) -> pd.Series:
        """Rows whose time falls in the window (NaT never does)."""
        return (times >= self.start) & (times < self.end)


def percentiles(values: Iterable[float], qs: Sequence[int]) -> dict[int, float | None]:
    """Linear-interpolated percentiles (numpy's default, DESIGN §5); None without data."""
    arr = np.asarray([v for v in values if v is not None and not pd.isna(v)], dtype=float)
    if arr.size == 0:
        return dict.fromkeys(qs)
    got = np.percentile(arr, list(qs))
    return {q: float(v) for q, v in zip(qs, got, strict=True)}


def require_columns(frame: pd.DataFrame, columns: Iterable[str], *, name: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise MetricInputError(f"{name} frame lacks column(s): {', '.join(missing)}")


def round_or_none(value: float | None, digits: int = 2) -> float | None:
    if value is None or pd.isna(value):
        return None
    return round(float(value), digits)


@dataclass(frozen=True)
class Scope:
    """Which rows a metric looks at: one delivery stream, one tech stream, or all (both None).

    ``delivery_in`` / ``tech_in`` restrict further to a set of streams (what a principal may
    see, spec §3.3); an empty set matches nothing. A frame is scoped by its
    ``delivery_stream_id`` column, and by ``tech_stream_id`` or (work items) membership of
    ``tech_stream_ids``. Callers scope frames before calling a metric; metric functions never
    filter by stream themselves.
    """

    delivery_stream_id: object | None = None
    tech_stream_id: object | None = None
    delivery_in: frozenset[object] | None = None
    tech_in: frozenset[object] | None = None

    @property
    def is_all(self) -> bool:
        return (
            self.delivery_stream_id is None
            and self.tech_stream_id is None
            and self.delivery_in is None
            and self.tech_in is None
        )

    def delivery_part(self) -> Scope:
        """Only the delivery-stream conditions."""
        return Scope(self.delivery_stream_id, None, self.delivery_in, None)

    def tech_part(self) -> Scope:
        """Only the tech-stream conditions."""
        return Scope(None, self.tech_stream_id, None, self.tech_in)

    def apply(self, frame: pd.DataFrame) -> pd.DataFrame:
        out = frame
        if self.delivery_stream_id is not None:
            out = out[out["delivery_stream_id"] == self.delivery_stream_id]
        if self.delivery_in is not None:
            out = out[out["delivery_stream_id"].isin(list(self.delivery_in))]
        wanted: set[object] | None = None
        if self.tech_stream_id is not None:
            wanted = {self.tech_stream_id}
        if self.tech_in is not None:
            wanted = set(self.tech_in) if wanted is None else wanted & set(self.tech_in)
        if wanted is None or out.empty:
            return out
        if "tech_stream_id" in out.columns:
            return out[out["tech_stream_id"].isin(list(wanted))]
        if "tech_stream_ids" in out.columns:
            return out[
                out["tech_stream_ids"].map(lambda ids: bool(ids) and bool(wanted & set(ids)))
            ]
        raise MetricInputError("frame has no tech stream column to scope by")


def stream_rows(frame: pd.DataFrame, kind: str) -> dict[Any, np.ndarray]:
    """Every stream's rows of ``frame`` at once, as positions: for each stream ``s`` of
    ``kind``, ``frame.iloc[rows[s]]`` equals ``Scope(delivery_stream_id=s).apply(frame)``
    (``kind="delivery"``) or ``Scope(tech_stream_id=s).apply(frame)`` (``"tech"``). One pass
    instead of one filter per stream (data quality for 112 streams on 4 M events spent 60 % of
    its time filtering)."""
    if frame.empty:
        return {}
    if kind == "delivery":
        column = "delivery_stream_id"
    elif "tech_stream_id" in frame.columns:
        column = "tech_stream_id"
    elif "tech_stream_ids" in frame.columns:
        listed = frame["tech_stream_ids"].reset_index(drop=True).explode().dropna()
        pairs = pd.DataFrame({"row": listed.index.to_numpy(), "stream": listed.to_numpy()})
        pairs = pairs.drop_duplicates()
        return {
            stream: np.sort(rows.to_numpy())
            for stream, rows in pairs.groupby("stream", sort=False)["row"]
        }
    else:
        raise MetricInputError("frame has no tech stream column to scope by")
    ids = frame[column].reset_index(drop=True)
    groups = ids.groupby(ids, sort=False).indices
    return {stream: np.asarray(rows) for stream, rows in groups.items()}


def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """The rows as dicts (``Timestamp`` values are ``datetime``s, missing ones ``NaT``):
    plain Python for loops whose values mypy can follow."""
    return cast(list[dict[str, Any]], frame.to_dict("records"))


def to_datetime(value: Any) -> datetime | None:
    """A frame cell as an aware ``datetime``, or None for NaT/None."""
    if value is None or pd.isna(value):
        return None
    result: datetime = pd.Timestamp(value).to_pydatetime()
    return result
