"""What the breakdown and drilldown views share: the frames of one request, read once and
only when a metric needs them, the names of streams and repositories, and JSON values."""

from __future__ import annotations

import math
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import pandas as pd
import sqlalchemy as sa

from dpp_lib.errors import BadParameter
from dpp_lib.ingest.lookups import OrgLookups
from dpp_lib.metrics.common import Scope, to_datetime
from dpp_lib.metrics.review import DEFAULT_MIN_CONTRIBUTORS
from dpp_lib.store import read
from dpp_lib.store.schema import (
    delivery_streams,
    org_settings,
    pr_events,
    repositories,
    tech_streams,
)

NONE_LABEL = "(none)"  # the group of rows without a stream, repository or ticket type
MAX_WINDOW_DAYS = 730  # as the routes allow
CHUNK = 500  # bound IN lists (SQLite's variable limit)


def check_window(window_days: int) -> None:
    if not 1 <= window_days <= MAX_WINDOW_DAYS:
        raise BadParameter("window_days", f"must be 1..{MAX_WINDOW_DAYS}, got {window_days}")


@dataclass(frozen=True)
class Names:
    """Names (not ids) of streams and repositories, archived ones included, and each
    stream's small-team minimum (spec §4.6)."""

    delivery: dict[Any, str]
    tech: dict[Any, str]
    repos: dict[Any, str]  # repo_id → "org/repo"
    repo_tech: dict[Any, Any]  # repo_id → tech stream
    min_contributors: dict[Any, int]  # stream id → its own override
    org_min_contributors: int

    def of(self, table: dict[Any, str], key: Any) -> str:
        if key is None or (isinstance(key, float) and math.isnan(key)):
            return NONE_LABEL
        return table.get(key, str(key))

    def name(self, table: dict[Any, str], key: Any) -> str | None:
        """A context value: the name, or None when there is no key."""
        label = self.of(table, key)
        return None if label == NONE_LABEL else label

    def minimum(self, stream_id: Any) -> int:
        return self.min_contributors.get(stream_id, self.org_min_contributors)


def load_names(conn: sa.Connection) -> Names:
    d, t, r = delivery_streams, tech_streams, repositories
    ds = conn.execute(sa.select(d.c.stream_id, d.c.name, d.c.min_contributors)).all()
    ts = conn.execute(sa.select(t.c.stream_id, t.c.name, t.c.min_contributors)).all()
    repos = conn.execute(sa.select(r.c.repo_id, r.c.full_name, r.c.tech_stream_id)).all()
    organisation = conn.execute(
        sa.select(org_settings.c.value).where(org_settings.c.key == "organisation")
    ).scalar()
    org_min = (organisation or {}).get("min_contributors", DEFAULT_MIN_CONTRIBUTORS)
    return Names(
        delivery={s.stream_id: s.name for s in ds},
        tech={s.stream_id: s.name for s in ts},
        repos={x.repo_id: x.full_name for x in repos},
        repo_tech={x.repo_id: x.tech_stream_id for x in repos},
        min_contributors={
            s.stream_id: int(s.min_contributors) for s in (*ds, *ts) if s.min_contributors
        },
        org_min_contributors=int(org_min),
    )


@dataclass
class Frames:
    """The canonical frames of one request (``dpp_lib.store.read``), each read on first use.

    Every frame is read at ``as_of``; the metric functions look at an earlier moment
    themselves, except the work item states, which ``items_at`` rebuilds for any earlier
    moment from the transitions already read."""

    conn: sa.Connection
    lookups: OrgLookups
    scope: Scope
    as_of: datetime
    _cache: dict[str, pd.DataFrame] = field(default_factory=dict)

    def get(self, name: str, at: datetime | None = None) -> pd.DataFrame:
        if name == "items":
            return self.items_at(at or self.as_of)
        if name not in self._cache:
            self._cache[name] = self._read(name)
        return self._cache[name]

    def items_at(self, at: datetime) -> pd.DataFrame:
        key = f"items@{at.isoformat()}"
        if key not in self._cache:
            moves = self.get("transitions")
            if at < self.as_of:
                moves = moves[moves["event_timestamp"] < at]
            self._cache[key] = read.items(
                self.conn, self.lookups, as_of=at, scope=self.scope, moves=moves
            )
        return self._cache[key]

    def _read(self, name: str) -> pd.DataFrame:
        conn, at, scope = self.conn, self.as_of, self.scope
        if name == "transitions":
            return read.transitions(conn, self.lookups, as_of=at, scope=scope.delivery_part())
        readers: dict[str, Callable[..., pd.DataFrame]] = {
            "cycles": read.cycles,
            "prs": read.prs,
            "reviews": read.reviews,
            "deploys": read.deploys,
            "incidents": read.incidents,
            "defects": read.defects,
        }
        frame: pd.DataFrame = readers[name](conn, as_of=at, scope=scope)
        return frame


def opened_event_ids(conn: sa.Connection, prs: Iterable[tuple[Any, int]]) -> dict[Any, str]:
    """(repo_id, pr_number) → the event_id of the PR's ``opened`` pr_events row."""
    wanted = sorted(set(prs), key=str)
    p = pr_events
    out: dict[Any, str] = {}
    for i in range(0, len(wanted), CHUNK):
        rows = conn.execute(
            sa.select(p.c.repo_id, p.c.pr_number, p.c.event_id)
            .where(
                p.c.event_type == "opened",
                sa.tuple_(p.c.repo_id, p.c.pr_number).in_(wanted[i : i + CHUNK]),
            )
            .order_by(p.c.event_timestamp, p.c.event_id)
        )
        for r in rows:
            out.setdefault((r.repo_id, r.pr_number), str(r.event_id))
    return out


def num(value: Any, digits: int) -> float | None:
    """A JSON number: None for missing, NaN or infinite values, else rounded."""
    if value is None:
        return None
    f = float(value)
    return None if math.isnan(f) or math.isinf(f) else round(f, digits)


def iso(value: Any) -> str | None:
    moment = to_datetime(value)
    return None if moment is None else moment.isoformat()


def hours(start: Any, end: Any) -> float | None:
    """Wall-clock hours from ``start`` to ``end``; None when either is missing."""
    a, b = to_datetime(start), to_datetime(end)
    return None if a is None or b is None else (b - a) / timedelta(hours=1)


def text_id(value: Any) -> str | None:
    return str(value) if isinstance(value, uuid.UUID | str) else None
