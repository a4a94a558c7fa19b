"""The analyst's workspace (``notebooks/explore``): one delivery stream's events and
projections as DataFrames, ad-hoc SQL over them with DuckDB, and every registered metric by
name — the same frames and functions the API and the scheduled notebooks use.

    ws = open_workspace(engine, stream="payments", window_days=30, as_of=moment(""))
    ws.tables()                       # what was loaded: rows and columns per frame
    ws.sql("select to_stage, count(*) from transitions group by 1")
    ws.metric("cycle_time")           # a frozen result dataclass
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pandas as pd
import sqlalchemy as sa

from dpp_lib.errors import DppError
from dpp_lib.jobs.metric_calls import metric_calls, metric_frames
from dpp_lib.metrics import registry
from dpp_lib.metrics.common import Scope
from dpp_lib.notebook import delivery, tech
from dpp_lib.views.common import Stream, load_org

# The moment column that places each frame's rows in the window; frames without one (the
# sprints, a ticket's current state) are kept whole.
WINDOW_COLUMNS = {
    "transitions": "event_timestamp",
    "cycles": "completed_at",
    "defects": "found_at",
    "pulse": "submitted_at",
    "deploys": "deployed_at",
    "incidents": "opened_at",
    "prs": "opened_at",
    "reviews": "submitted_at",
    "snapshots": "snapshot_date",
}


class UnknownMetric(DppError):
    code = "unknown_metric"
    http_status = 400


@dataclass(frozen=True)
class Workspace:
    """One stream's data for a window ending at ``as_of``.

    ``frames`` hold the window's rows (what an analyst looks at and queries); metrics are
    computed from the whole history up to ``as_of`` and apply ``window_days`` themselves,
    exactly as the API computes them.
    """

    stream: Stream
    tech_streams: tuple[Stream, ...]
    as_of: datetime
    window_days: int
    frames: dict[str, pd.DataFrame]
    _calls: dict[str, Callable[[], Any]]

    @property
    def since(self) -> datetime:
        return self.as_of - timedelta(days=self.window_days)

    def tables(self) -> pd.DataFrame:
        """Each loaded frame: its rows and columns."""
        return pd.DataFrame(
            [
                {"frame": name, "rows": len(df), "columns": ", ".join(map(str, df.columns))}
                for name, df in self.frames.items()
            ]
        ).set_index("frame")

    def sql(self, query: str) -> pd.DataFrame:
        """Run DuckDB SQL over the frames (each is a table of its name)."""
        import duckdb

        con = duckdb.connect()
        try:
            for name, frame in self.frames.items():
                con.register(name, _duckdb_ready(frame))
            return con.execute(query).df()
        finally:
            con.close()

    def metric_names(self) -> list[str]:
        return sorted(self._calls)

    def metric(self, name: str) -> Any:
        """A registered metric's result for this stream and window."""
        call = self._calls.get(name)
        if call is None:
            known = ", ".join(self.metric_names())
            raise UnknownMetric(f"unknown metric {name!r}; registered: {known}")
        return call()

    def metrics(self) -> pd.DataFrame:
        """Every registered metric this workspace can call, with the spec section and the
        question it answers."""
        infos = registry.load_all()
        return pd.DataFrame(
            [
                {"metric": n, "spec": infos[n].spec, "answers": infos[n].summary}
                for n in self.metric_names()
                if n in infos
            ]
        ).set_index("metric")


def open_workspace(
    engine: sa.Engine,
    *,
    stream: str,
    as_of: datetime,
    window_days: int = 30,
    tech_stream: str = "all",
) -> Workspace:
    """Load ``stream`` (a delivery stream name; empty: the first one) for the ``window_days``
    before ``as_of``. DORA and review metrics cover ``tech_stream`` (a name or all)."""
    with engine.connect() as conn:
        org = load_org(conn)
        if not org.delivery:
            raise DppError("no delivery streams are configured: load an org config first")
        chosen = delivery(org, stream)[0] if stream.strip() else org.delivery[0]
        techs = tech(org, tech_stream)
        d_scope = Scope(delivery_stream_id=chosen.stream_id)
        t_scope = Scope() if len(techs) != 1 else Scope(tech_stream_id=techs[0].stream_id)
        mf = metric_frames(conn, as_of=as_of, delivery=d_scope, tech=t_scope)
        calls = metric_calls(
            conn, as_of=as_of, delivery=d_scope, tech=t_scope, window_days=window_days, frames=mf
        )
    since = as_of - timedelta(days=window_days)
    # Transitions are read for every stream (cross-stream analysis needs them all); the
    # workspace shows the chosen stream's.
    shown = {**mf.frames, "transitions": d_scope.apply(mf.frames["transitions"])}
    windowed = {name: _in_window(name, df, since) for name, df in shown.items()}
    return Workspace(chosen, techs, as_of, window_days, windowed, calls)


def _in_window(name: str, frame: pd.DataFrame, since: datetime) -> pd.DataFrame:
    column = WINDOW_COLUMNS.get(name)
    if column is None or column not in frame.columns or frame.empty:
        return frame.reset_index(drop=True)
    moments = pd.to_datetime(frame[column], utc=True)
    return frame[moments >= pd.Timestamp(since)].reset_index(drop=True)


def _duckdb_ready(frame: pd.DataFrame) -> pd.DataFrame:
    """UUIDs, lists and dicts as text: DuckDB reads object columns of plain values."""
    out = frame.copy()
    for column in out.columns:
        if out[column].dtype == object:
            sample = out[column].dropna()
            if not sample.empty and not isinstance(sample.iloc[0], str):
                out[column] = out[column].map(lambda v: None if v is None else str(v))
    return out
