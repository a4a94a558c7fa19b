"""What a scheduled computation returns, how it runs in its own transaction, and the small
phrases its one-line summary is made of."""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime

import pandas as pd
import sqlalchemy as sa

from dpp_lib.jobs.compute.context import Context
from dpp_lib.metrics.common import DEFAULT_WINDOW_DAYS
from dpp_lib.store import data_versions


@dataclass(frozen=True, eq=False)
class ComputeResult:
    """One run of one computation.

    ``rows``: rows written per table (for ``system_alerts``: alerts raised plus alerts
    resolved); ``summary``: one row per stream (or tech stream, or stream and survey
    period) with what was computed, for the notebook's table and chart; ``headline``: the
    same in a sentence or two."""

    computation: str
    as_of: datetime
    day: date  # the org-local date the rows are for
    window_days: int
    streams: tuple[str, ...]  # the streams computed, by name
    rows: Mapping[str, int]
    summary: pd.DataFrame = field(repr=False)
    headline: str

    @property
    def written(self) -> str:
        """Where the rows went, in a line (Markdown): the day, the moment, rows per table."""
        tables = ", ".join(f"{n} {table}" for table, n in self.rows.items())
        return (
            f"Computed for **{self.day.isoformat()}** (as of "
            f"{self.as_of:%Y-%m-%d %H:%M} UTC). Rows written: {tables}."
        )


Compute = Callable[[Context], ComputeResult]


def run(
    engine: sa.Engine,
    computation: str,
    compute: Compute,
    *,
    as_of: datetime,
    window_days: int = DEFAULT_WINDOW_DAYS,
    topics: tuple[str, ...] = (),
) -> ComputeResult:
    """``compute`` in one transaction, alone: a second run of the same computation (a
    manual run beside the scheduled one) waits for the first on Postgres (SQLite takes its
    write lock at BEGIN). The data versions of the tables written move with the rows."""
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            key = zlib.crc32(f"dpp.compute.{computation}".encode())
            conn.execute(sa.select(sa.func.pg_advisory_xact_lock(key)))
        result = compute(Context(conn, as_of=as_of, window_days=window_days))
        data_versions.bump(conn, [*result.rows, *topics])
    return result


# --- phrases for headlines --------------------------------------------------------------------
def plural(count: int, noun: str, nouns: str | None = None) -> str:
    return f"{count} {noun if count == 1 else (nouns or noun + 's')}"


def number(value: float, digits: int = 1) -> str:
    """``62``, ``3.5``: no trailing ``.0``."""
    text = f"{value:.{digits}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def one_or_count(summary: pd.DataFrame, count: str, key: str = "stream") -> str:
    """The one stream's name when ``summary`` is about one, else ``count``."""
    names = list(summary[key].unique()) if key in summary.columns else []
    return str(names[0]) if len(names) == 1 else count


def known(values: Mapping[str, float | None]) -> dict[str, float]:
    return {k: float(v) for k, v in values.items() if v is not None and not math.isnan(float(v))}


def span(values: Mapping[str, float | None], unit: str, digits: int = 1) -> str:
    """``62–91 %`` over the values that are known, ``62 %`` for one, ``no data`` for none."""
    got = known(values)
    if not got:
        return "no data"
    low, high = min(got.values()), max(got.values())
    space = "" if unit.startswith(" ") or not unit else " "
    if number(low, digits) == number(high, digits):
        return f"{number(low, digits)}{space}{unit}"
    return f"{number(low, digits)}–{number(high, digits)}{space}{unit}"


def extreme(values: Mapping[str, float | None], *, lowest: bool) -> str | None:
    """The name with the lowest (or highest) known value, when the known values differ."""
    got = known(values)
    if len(set(got.values())) < 2:
        return None
    pick = min if lowest else max
    return pick(got, key=lambda k: (got[k], k))


def column(summary: pd.DataFrame, name: str, key: str = "stream") -> dict[str, float | None]:
    """``summary[name]`` by ``summary[key]``."""
    if summary.empty or name not in summary.columns:
        return {}
    return dict(zip(summary[key], summary[name], strict=True))
