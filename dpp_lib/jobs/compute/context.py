"""What every scheduled computation starts from: the organisation at one moment.

A ``Context`` holds one transaction's connection, the org lookups and calendar, the active
streams, the day the rows are for (``as_of``'s date in the org time zone) and the canonical
frames, each read on first use and then kept, so ``materialise`` (which runs every
computation in one transaction) reads each frame once. ``select_streams`` turns a
notebook's ``stream`` parameter into the streams to compute.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Literal, TypeVar

import pandas as pd
import sqlalchemy as sa

from dpp_lib.metrics.common import DEFAULT_WINDOW_DAYS, Scope
from dpp_lib.notebook import ALL, NotebookParameterError, pick_streams
from dpp_lib.store import read
from dpp_lib.store.config_tables import load_lookups
from dpp_lib.views.common import Org, Stream, load_org

Kind = Literal["delivery", "tech"]
T = TypeVar("T")


@dataclass(frozen=True)
class Selection:
    """The streams a computation covers. ``whole``: every stream (``stream = "all"``), so
    the computation replaces its rows of the day for every stream, active or not."""

    delivery: tuple[Stream, ...]
    tech: tuple[Stream, ...]
    whole: bool

    def of(self, kind: Kind) -> tuple[Stream, ...]:
        return self.delivery if kind == "delivery" else self.tech

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(s.name for s in (*self.delivery, *self.tech))


def select_streams(org: Org, stream: str, *, kinds: tuple[Kind, ...]) -> Selection:
    """``stream``: ``all`` (or empty) for every active stream of ``kinds``, else one name,
    display name or id of a stream of one of ``kinds`` (a name both a delivery and a tech
    stream carry selects both). Anything else is a ``NotebookParameterError`` naming it."""
    wanted = (stream or "").strip()
    if not wanted or wanted.lower() == ALL:
        return Selection(
            org.delivery if "delivery" in kinds else (),
            org.tech if "tech" in kinds else (),
            whole=True,
        )
    found: dict[Kind, tuple[Stream, ...]] = {"delivery": (), "tech": ()}
    for kind in kinds:
        try:
            found[kind] = pick_streams(org.delivery if kind == "delivery" else org.tech, wanted)
        except NotebookParameterError:
            continue
    if not any(found.values()):
        of_kind = {"delivery": org.delivery, "tech": org.tech}
        known = "; ".join(
            f"{kind}: {', '.join(s.name for s in of_kind[kind]) or 'none'}" for kind in kinds
        )
        raise NotebookParameterError(
            f"stream={wanted!r} is not a {' or '.join(kinds)} stream (known {known})"
        )
    return Selection(found["delivery"], found["tech"], whole=False)


class Frames:
    """The canonical frames (``dpp_lib.metrics.frames``) of the whole organisation before
    ``as_of``, read on first use. ``forget`` drops one whose rows a computation changed."""

    def __init__(self, conn: sa.Connection, context: Context) -> None:
        self._conn, self._ctx = conn, context
        self._read: dict[str, pd.DataFrame] = {}

    def get(self, name: str) -> pd.DataFrame:
        if name not in self._read:
            self._read[name] = self._load(name)
        return self._read[name]

    def forget(self, *names: str) -> None:
        for name in names:
            self._read.pop(name, None)

    def _load(self, name: str) -> pd.DataFrame:
        conn, as_of, lookups = self._conn, self._ctx.as_of, self._ctx.lookups
        if name == "transitions":
            return read.transitions(conn, lookups, as_of=as_of)
        if name == "items":
            return read.items(conn, lookups, as_of=as_of, moves=self.get("transitions"))
        if name == "sprints":
            return read.sprint_frame(conn)
        if name == "snapshots":
            return read.snapshots(conn, as_of=as_of)
        readers: dict[str, Callable[..., pd.DataFrame]] = {
            "cycles": read.cycles,
            "deploys": read.deploys,
            "incidents": read.incidents,
            "prs": read.prs,
            "reviews": read.reviews,
            "defects": read.defects,
            "pulse": read.pulse,
        }
        if name not in readers:
            raise KeyError(f"no frame named {name!r}")
        return readers[name](conn, as_of=as_of)


class Scoped:
    """One stream's rows of the organisation's frames: a delivery stream's by
    ``delivery_stream_id``, a tech stream's by ``tech_stream_id``/``tech_stream_ids``. A
    frame without that stream column has no rows for it (pulse answers and sprints have no
    tech stream). A delivery stream's snapshots are those of its sprints."""

    def __init__(self, frames: Frames, kind: Kind, stream_id: object) -> None:
        self._frames, self.kind, self.stream_id = frames, kind, stream_id
        self.scope = (
            Scope(delivery_stream_id=stream_id)
            if kind == "delivery"
            else Scope(tech_stream_id=stream_id)
        )

    def __getitem__(self, name: str) -> pd.DataFrame:
        frame = self._frames.get(name)
        if name == "snapshots":
            if self.kind == "tech":
                return frame.iloc[0:0]
            return frame[frame["sprint_id"].isin(self["sprints"]["sprint_id"])]
        columns = (
            {"delivery_stream_id"}
            if self.kind == "delivery"
            else {"tech_stream_id", "tech_stream_ids"}
        )
        if not columns & set(frame.columns):
            return frame.iloc[0:0]
        return self.scope.apply(frame)


class Context:
    """One computation's view of the organisation at ``as_of`` (see the module docstring).
    ``memo`` keeps a per-stream metric result that two computations share (sprint
    confidence and p85 cycle time feed the cross-stream analysis too)."""

    def __init__(
        self, conn: sa.Connection, *, as_of: datetime, window_days: int = DEFAULT_WINDOW_DAYS
    ) -> None:
        if as_of.tzinfo is None:
            raise NotebookParameterError(f"as_of={as_of.isoformat()} has no time zone offset")
        self.conn, self.as_of, self.window_days = conn, as_of, window_days
        self.lookups = load_lookups(conn)
        self.calendar = self.lookups.calendar()
        self.day: date = self.calendar.local_date(as_of)
        self.org: Org = load_org(conn)
        self.frames = Frames(conn, self)
        self._memo: dict[tuple[str, object], Any] = {}

    @property
    def min_contributors(self) -> int:
        return self.org.min_contributors

    @property
    def correlation_minutes(self) -> int:
        return int(self.org.organisation.get("incident_correlation_window_minutes", 60))

    def scoped(self, kind: Kind, stream: Stream) -> Scoped:
        return Scoped(self.frames, kind, stream.stream_id)

    def memo(self, name: str, stream: Stream, compute: Callable[[], T]) -> T:
        key = (name, stream.stream_id)
        if key not in self._memo:
            self._memo[key] = compute()
        value: T = self._memo[key]
        return value
