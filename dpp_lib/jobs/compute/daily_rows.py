"""``daily_stream_metrics`` rows (spec §4.4.1): built from metric results, and replaced
per computation, so computations sharing the table never touch each other's rows.

A computation owns a set of metric names per stream type (``Owned``). Re-running it for a
day deletes exactly its names' rows of that day — for every stream when it covers them all,
else for the streams it covers — and inserts the new ones.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

import pandas as pd
import sqlalchemy as sa

from dpp_lib.jobs.compute.context import Kind, Selection
from dpp_lib.store.schema import daily_stream_metrics
from dpp_lib.store.types import new_id
from dpp_lib.views.common import Stream


@dataclass(frozen=True)
class Row:
    """One metric value of one stream: ``value`` None means no data (stored as 0 with
    ``sample_size`` 0, the column being NOT NULL; readers treat sample size 0 as no data)."""

    name: str
    value: float | int | None
    unit: str
    percentile: int | None
    sample_size: int


Owned = Mapping[Kind, frozenset[str]]  # stream type → metric names a computation writes


def db_row(day: date, kind: Kind, stream_id: uuid.UUID, row: Row) -> dict[str, Any]:
    return {
        "metric_id": new_id(),
        "metric_date": day,
        "stream_type": kind,
        "stream_id": stream_id,
        "metric_name": row.name,
        "metric_value": (
            Decimal(str(round(float(row.value), 6))) if row.value is not None else Decimal(0)
        ),
        "metric_unit": row.unit,
        "percentile": row.percentile,
        "sample_size": row.sample_size,
    }


def replace_rows(
    conn: sa.Connection,
    *,
    day: date,
    owned: Owned,
    selection: Selection,
    computed: Iterable[tuple[Kind, Stream, Sequence[Row]]],
) -> int:
    """Delete the day's rows of the ``owned`` names (of the selected streams unless the
    selection is whole) and insert ``computed``; returns the rows inserted."""
    d = daily_stream_metrics
    for kind, names in owned.items():
        stmt = d.delete().where(
            d.c.metric_date == day, d.c.stream_type == kind, d.c.metric_name.in_(sorted(names))
        )
        if not selection.whole:
            ids = [s.stream_id for s in selection.of(kind)]
            if not ids:
                continue
            stmt = stmt.where(d.c.stream_id.in_(ids))
        conn.execute(stmt)
    rows = [db_row(day, kind, s.stream_id, r) for kind, s, rs in computed for r in rs]
    if rows:
        conn.execute(d.insert(), rows)
    return len(rows)


def summary_frame(
    computed: Iterable[tuple[Kind, Stream, Sequence[Row]]],
    columns: Mapping[tuple[str, int | None], str],
    extra: Mapping[uuid.UUID, Mapping[str, Any]] | None = None,
) -> pd.DataFrame:
    """One row per stream: ``stream``, ``kind``, then each ``(metric name, percentile)`` of
    ``columns`` under its label (NaN where the stream has no data or no such metric), then
    the stream's ``extra`` values."""
    labels = list(dict.fromkeys(columns.values()))
    out = []
    for kind, stream, rows in computed:
        line: dict[str, Any] = {"stream": stream.name, "kind": kind}
        line |= {label: float("nan") for label in labels}
        for r in rows:
            label = columns.get((r.name, r.percentile))
            if label is not None and r.sample_size > 0 and r.value is not None:
                line[label] = float(r.value)
        line |= dict((extra or {}).get(stream.stream_id, {}))
        out.append(line)
    return pd.DataFrame(out, columns=["stream", "kind", *labels] if not out else None)
