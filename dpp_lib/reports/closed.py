"""Reports for sprints that just closed (the daily ``sprint-reports`` job and
``dpp report closed``).

A sprint is due when it ended (its last day is over in the org time zone) within the last
``days`` days, it is not a future sprint, and
- it has no report yet ("new"), or
- its report shows it before its end, made while it was still open ("incomplete"), or
- events about its stream from before its end arrived after the report was made: late
  webhooks, a backfill, a replay ("late data").
Sprint state in Jira is not waited for: a sprint whose dates are over is reported, and
reported again if its data changes afterwards.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import sqlalchemy as sa

from dpp_lib.errors import DppError
from dpp_lib.notebook import delivery as pick_delivery
from dpp_lib.reports import index
from dpp_lib.reports.errors import ReportError
from dpp_lib.reports.render import RETRO_NOTEBOOK, Target, render_target
from dpp_lib.reports.retro import SprintInfo, stream_sprints
from dpp_lib.settings import Settings
from dpp_lib.store.config_tables import load_lookups
from dpp_lib.store.db import make_engine
from dpp_lib.store.schema import defect_events, pr_events, pulse_responses, work_item_events
from dpp_lib.views.common import load_org

LATE_DATA_TABLES = (work_item_events, defect_events, pr_events, pulse_responses)


@dataclass(frozen=True)
class Due:
    info: SprintInfo
    reason: str  # new | incomplete | late data


@dataclass(frozen=True)
class Outcome:
    stream: str
    sprint: str
    ended: str  # the sprint's last day, ISO
    reason: str
    path: str | None  # the report written, relative to the reports directory
    error: str | None


def late_data(conn: sa.Connection, info: SprintInfo, *, since: datetime) -> bool:
    """Whether events of the sprint's stream from before its end arrived after ``since``."""
    for t in LATE_DATA_TABLES:
        found = conn.execute(
            sa.select(sa.literal(1))
            .where(
                t.c.delivery_stream_id == info.stream.stream_id,
                t.c.received_at > since,
                t.c.event_timestamp < info.ends_at,
            )
            .limit(1)
        ).first()
        if found is not None:
            return True
    return False


def due_reports(
    conn: sa.Connection, root: Path, *, now: datetime, days: int, stream: str = "all"
) -> list[Due]:
    """The sprints of ``stream`` (``all``: every active delivery stream) whose report is
    due, oldest end first."""
    calendar = load_lookups(conn).calendar()
    since = now - timedelta(days=days)
    due = []
    for s in pick_delivery(load_org(conn), stream):
        for info in stream_sprints(conn, s, calendar):
            if info.state == "future" or not since <= info.ends_at <= now:
                continue
            report = index.find_report(root, s.name, info.slug)
            if report is None:
                due.append(Due(info, "new"))
            elif report.as_of_moment < info.ends_at:
                due.append(Due(info, "incomplete"))
            elif late_data(conn, info, since=report.generated):
                due.append(Due(info, "late data"))
    return sorted(due, key=lambda d: (d.info.ends_at, d.info.stream.name))


def render_closed_sprints(
    settings: Settings,
    *,
    now: datetime | None = None,
    days: int = 30,
    stream: str = "all",
    database_url: str = "",
    out: Path | None = None,
) -> list[Outcome]:
    """Render every due report (see the module). A report that fails is recorded in its
    outcome and the others are still rendered; ``check`` raises when any failed."""
    now = now or datetime.now(UTC)
    url = database_url.strip() or settings.resolved_database_url()
    root = (out or settings.reports_dir).resolve()
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            due = due_reports(conn, root, now=now, days=days, stream=stream)
    finally:
        engine.dispose()
    outcomes = []
    for d in due:
        info = d.info
        try:
            report = render_target(
                Target(root, info),
                as_of=min(now, info.ends_at),
                notebook=settings.notebooks_dir / RETRO_NOTEBOOK,
                database_url=url,
            )
            path, error = report.path, None
        except DppError as exc:
            path, error = None, exc.message
        outcomes.append(
            Outcome(info.stream.name, info.name, info.end_date.isoformat(), d.reason, path, error)
        )
    return outcomes


def summary(outcomes: list[Outcome]) -> pd.DataFrame:
    """One row per sprint considered: what was written, or why it failed."""
    return pd.DataFrame(
        [
            {
                "Stream": o.stream,
                "Sprint": o.sprint,
                "Ended": o.ended,
                "Why": o.reason,
                "Result": f"written {o.path}" if o.path else f"failed: {o.error}",
            }
            for o in outcomes
        ],
        columns=["Stream", "Sprint", "Ended", "Why", "Result"],
    )


def check(outcomes: list[Outcome]) -> None:
    """Raise when any report failed, naming each (the scheduled run then fails and
    raises its alert)."""
    failed = [o for o in outcomes if o.error]
    if failed:
        listed = "; ".join(f"{o.stream}/{o.sprint}: {o.error}" for o in failed)
        raise ReportError(f"{len(failed)} of {len(outcomes)} retro reports failed: {listed}")
