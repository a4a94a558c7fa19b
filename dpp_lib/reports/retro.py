"""One delivery stream's sprint, read for its retro: which sprint, over which window, and
every metric result the report shows, each from its ``dpp_lib.metrics`` function.

The report window is the sprint: from local midnight of its first day to local midnight
after its last day (org time zone), cut at ``as_of`` while the sprint is still open. Metric
functions take a trailing window of whole days ending at the window's end, so a sprint that
spans a daylight-saving change starts an hour early or late (a documented approximation).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import pandas as pd
import sqlalchemy as sa

from dpp_lib.calendar import WorkCalendar
from dpp_lib.ingest.lookups import OrgLookups
from dpp_lib.metrics import dora, flow, forecast, pulse, quality, review
from dpp_lib.metrics.common import Scope, Window, records
from dpp_lib.notebook import NotebookParameterError, moment
from dpp_lib.notebook import delivery as pick_delivery
from dpp_lib.reports.errors import UnknownSprint
from dpp_lib.store import read
from dpp_lib.store.config_tables import load_lookups
from dpp_lib.store.schema import status_mappings
from dpp_lib.views.common import Org, Stream, load_org

SPRINTS_LISTED = 12  # an unknown sprint's error lists this many of the stream's sprints
WIP_STAGES = ("ba", "dev", "qa", "uat")  # the snapshot's WIP columns (code review is dev)


def slugify(name: str) -> str:
    """A file name for a sprint: lower case, runs of other characters as one ``-``."""
    slug = re.sub(r"[^a-z0-9]+", "-", name.casefold()).strip("-")
    return slug or "sprint"


@dataclass(frozen=True)
class SprintInfo:
    sprint_id: Any
    name: str
    state: str | None
    start_date: date
    end_date: date
    stream: Stream
    starts_at: datetime  # UTC: local midnight at the start of start_date
    ends_at: datetime  # UTC: local midnight after end_date

    @property
    def slug(self) -> str:
        return slugify(self.name)


def _sprint_info(row: dict[str, Any], stream: Stream, calendar: WorkCalendar) -> SprintInfo:
    start, end = _day(row["start_date"]), _day(row["end_date"])
    zone = calendar.zone
    return SprintInfo(
        sprint_id=row["sprint_id"],
        name=str(row["name"]),
        state=None if pd.isna(row["state"]) else str(row["state"]),
        start_date=start,
        end_date=end,
        stream=stream,
        starts_at=datetime.combine(start, time(), zone).astimezone(UTC),
        ends_at=datetime.combine(end + timedelta(days=1), time(), zone).astimezone(UTC),
    )


def _day(value: Any) -> date:
    return value.date() if isinstance(value, datetime) else pd.Timestamp(value).date()


def stream_sprints(conn: sa.Connection, stream: Stream, calendar: WorkCalendar) -> list[SprintInfo]:
    """The stream's sprints, newest start first."""
    frame = read.sprint_frame(conn, scope=Scope(delivery_stream_id=stream.stream_id))
    found = [_sprint_info(r, stream, calendar) for r in records(frame)]
    return sorted(found, key=lambda s: (s.start_date, s.end_date, s.name), reverse=True)


def one_stream(org: Org, stream: str) -> Stream:
    """The delivery stream a report is about (name, display name or id)."""
    if not (stream or "").strip():
        known = ", ".join(s.name for s in org.delivery) or "none configured"
        raise NotebookParameterError(f"stream is required: one delivery stream; known: {known}")
    return pick_delivery(org, stream)[0]


def find_sprint(
    conn: sa.Connection,
    *,
    stream: str,
    sprint: str,
    now: datetime | None = None,
    org: Org | None = None,
    lookups: OrgLookups | None = None,
) -> SprintInfo:
    """A stream's sprint by name, file name (slug) or id, case-insensitive. An empty
    ``sprint`` is the latest sprint that has started by ``now``."""
    org = org or load_org(conn)
    calendar = (lookups or load_lookups(conn)).calendar()
    chosen = one_stream(org, stream)
    sprints = stream_sprints(conn, chosen, calendar)
    wanted = (sprint or "").strip()
    if not wanted:
        started = [s for s in sprints if s.starts_at <= (now or datetime.now(UTC))]
        if started:
            return started[0]
    else:
        for s in sprints:
            if wanted.casefold() in (s.name.casefold(), s.slug, str(s.sprint_id).casefold()):
                return s
    listed = ", ".join(s.name for s in sprints[:SPRINTS_LISTED]) or "none"
    more = f" (and {len(sprints) - SPRINTS_LISTED} older)" if len(sprints) > SPRINTS_LISTED else ""
    what = f"unknown sprint {wanted!r}" if wanted else "no sprint has started"
    raise UnknownSprint(f"{what} in delivery stream {chosen.name!r}; its sprints: {listed}{more}")


def report_moment(info: SprintInfo, as_of: str | datetime | None, now: datetime) -> datetime:
    """The moment a report looks from: ``as_of`` when given, else the sprint's end or ``now``
    if it is still open. A moment after the sprint's end is its end."""
    text = "" if as_of is None else str(as_of).strip()
    at = moment(as_of) if text else min(now, info.ends_at)
    if at <= info.starts_at:
        raise NotebookParameterError(
            f"as_of={at.isoformat()} is before sprint {info.name!r} started "
            f"({info.start_date.isoformat()})"
        )
    return min(at, info.ends_at)


@dataclass(frozen=True)
class SprintDay:
    """One daily sprint snapshot (spec §4.3.7): the sprint's items at the end of ``day``."""

    day: date
    committed: int
    completed: int
    remaining: int
    added: int
    removed: int
    wip: dict[str, int]  # ba, dev (with code review), qa, uat


@dataclass(frozen=True)
class ConfidencePoint:
    """Sprint confidence at the close of ``day``."""

    day: date
    result: forecast.SprintConfidence


@dataclass(frozen=True)
class TechDora:
    stream: Stream
    deployment_frequency: dora.DeploymentFrequency
    change_failure_rate: dora.ChangeFailureRate
    time_to_restore: dora.TimeToRestore
    lead_time: dora.LeadTimeForChanges


@dataclass(frozen=True)
class SprintRetro:
    sprint: SprintInfo
    as_of: datetime  # the window's end: the sprint's end, or earlier while it is open
    window: Window
    days: tuple[SprintDay, ...]  # oldest first
    confidence: tuple[ConfidencePoint, ...]  # one per working day, oldest first
    cycle_time: flow.CycleTime
    flow_efficiency: flow.FlowEfficiency
    queue_names: dict[str, str]  # "<stage>_queue" → the wait statuses' names
    defects: quality.DefectEscape
    review: review.ReviewTurnaround
    min_contributors: int
    dora: tuple[TechDora, ...]  # the tech streams the sprint's items touched
    pulse_periods: tuple[str, ...]  # the survey months the sprint overlaps
    pulse: tuple[pulse.PulseAggregate, ...]  # this stream's, one per period

    @property
    def is_open(self) -> bool:
        return self.as_of < self.sprint.ends_at

    @property
    def outcome(self) -> SprintDay | None:
        return self.days[-1] if self.days else None

    @property
    def window_days(self) -> int:
        return round(self.window.days)


def window_of(info: SprintInfo, at: datetime) -> Window:
    """The sprint's window as whole days ending at ``at`` (rounded for a whole sprint, up to
    a day more while it is open)."""
    days = (at - info.starts_at) / timedelta(days=1)
    whole = round(days) if at >= info.ends_at else math.ceil(days)
    return Window.trailing(at, max(1, whole))


def sprint_retro(
    conn: sa.Connection,
    *,
    stream: str,
    sprint: str,
    as_of: str | datetime | None = "",
    now: datetime | None = None,
) -> SprintRetro:
    """Every result the retro report shows for one delivery stream's sprint."""
    now = now or datetime.now(UTC)
    org, lookups = load_org(conn), load_lookups(conn)
    calendar = lookups.calendar()
    info = find_sprint(conn, stream=stream, sprint=sprint, now=now, org=org, lookups=lookups)
    at = report_moment(info, as_of, now)
    window = window_of(info, at)
    days = round(window.days)
    own = Scope(delivery_stream_id=info.stream.stream_id)
    cycles = read.cycles(conn, as_of=at, scope=own)
    sprints = read.sprint_frame(conn, scope=own)
    snaps = read.snapshots(conn, as_of=info.ends_at, sprint_ids=[info.sprint_id])
    last_day = calendar.local_date(at - timedelta(microseconds=1))
    snaps = snaps[snaps["snapshot_date"].map(_day) <= last_day]
    moves = read.transitions(conn, lookups, as_of=at, scope=own)
    prs = read.prs(conn, as_of=at, scope=own)
    minimum = info.stream.min_contributors or org.min_contributors
    periods = _months(info.start_date, info.end_date)
    return SprintRetro(
        sprint=info,
        as_of=at,
        window=window,
        days=_days(snaps),
        confidence=_confidence(info, cycles, sprints, snaps, at, calendar),
        cycle_time=flow.cycle_time(cycles, as_of=at, window_days=days),
        flow_efficiency=flow.flow_efficiency(cycles, as_of=at, window_days=days),
        queue_names=_queue_names(conn, cycles, window),
        defects=quality.defect_escape(
            read.defects(conn, as_of=at, scope=own), cycles, as_of=at, window_days=days
        ),
        review=review.review_turnaround(
            prs,
            read.reviews(conn, as_of=at, scope=own),
            as_of=at,
            window_days=days,
            min_contributors=minimum,
        ),
        min_contributors=minimum,
        dora=_dora(conn, org, lookups, _touched(moves, info.sprint_id), window),
        pulse_periods=periods,
        pulse=_pulse(conn, info.stream, periods, at),
    )


def load_retro(
    engine: sa.Engine, *, stream: str, sprint: str, as_of: str | datetime | None = ""
) -> SprintRetro:
    """``sprint_retro`` in a connection of its own (the report notebook's one call)."""
    with engine.connect() as conn:
        return sprint_retro(conn, stream=stream, sprint=sprint, as_of=as_of)


def _days(snaps: pd.DataFrame) -> tuple[SprintDay, ...]:
    out = []
    for r in records(snaps.sort_values("snapshot_date")):
        out.append(
            SprintDay(
                day=_day(r["snapshot_date"]),
                committed=_int(r["committed_count"]),
                completed=_int(r["completed_count"]),
                remaining=_int(r["remaining_count"]),
                added=_int(r["added_after_start"]),
                removed=_int(r["removed_after_start"]),
                wip={s: _int(r[f"wip_{s}"]) for s in WIP_STAGES},
            )
        )
    return tuple(out)


def _int(value: Any) -> int:
    return 0 if value is None or pd.isna(value) else int(value)


def _confidence(
    info: SprintInfo,
    cycles: pd.DataFrame,
    sprints: pd.DataFrame,
    snaps: pd.DataFrame,
    at: datetime,
    calendar: WorkCalendar,
) -> tuple[ConfidencePoint, ...]:
    """Sprint confidence at the close of each working day so far: the snapshot of that day,
    the completions before its end, the working days after it."""
    points = []
    day = info.start_date
    snap_days = snaps["snapshot_date"].map(_day)
    while day <= info.end_date:
        close = datetime.combine(day + timedelta(days=1), time(), calendar.zone).astimezone(UTC)
        if calendar.is_working_day(day):
            result = forecast.sprint_confidence(
                cycles,
                sprints,
                snaps[snap_days <= day],
                as_of=min(close, at),
                calendar=calendar,
                sprint_id=info.sprint_id,
            )
            points.append(ConfidencePoint(day, result))
        if close >= at:
            break
        day += timedelta(days=1)
    return tuple(points)


def _queue_names(conn: sa.Connection, cycles: pd.DataFrame, window: Window) -> dict[str, str]:
    """``<stage>_queue`` → the names of the wait statuses of that stage in the Jira projects
    of the items completed in the window ("Ready for QA")."""
    done = cycles[window.mask(cycles["completed_at"])]
    projects = sorted({str(t).rsplit("-", 1)[0] for t in done["ticket_id"]})
    if not projects:
        return {}
    m = status_mappings
    rows = conn.execute(
        sa.select(m.c.pipeline_stage, m.c.jira_status_name)
        .where(m.c.jira_project_key.in_(projects), sa.not_(m.c.is_active_work))
        .order_by(m.c.display_order, m.c.jira_status_name)
    )
    names: dict[str, list[str]] = {}
    for stage, status in rows:
        found = names.setdefault(f"{stage}_queue", [])
        if status not in found:
            found.append(status)
    return {key: " / ".join(found) for key, found in names.items()}


def _touched(moves: pd.DataFrame, sprint_id: Any) -> set[Any]:
    """Tech streams of the tickets that were in the sprint at any event."""
    tickets = set(moves.loc[moves["sprint_id"] == sprint_id, "ticket_id"])
    streams: set[Any] = set()
    for ids in moves.loc[moves["ticket_id"].isin(tickets), "tech_stream_ids"]:
        if isinstance(ids, list | tuple):
            streams.update(ids)
    return streams


def _dora(
    conn: sa.Connection, org: Org, lookups: OrgLookups, touched: set[Any], window: Window
) -> tuple[TechDora, ...]:
    chosen = [t for t in org.tech if t.stream_id in touched]
    if not chosen:
        return ()
    at = window.end
    tech = Scope(tech_in=frozenset(t.stream_id for t in chosen))
    deploys = read.deploys(conn, as_of=at, scope=tech)
    incidents = read.incidents(conn, as_of=at, scope=tech)
    prs = read.prs(conn, as_of=at, scope=tech)
    minutes = lookups.incident_correlation_window_minutes
    out = []
    for t in chosen:
        own = Scope(tech_stream_id=t.stream_id)
        d, i, p = own.apply(deploys), own.apply(incidents), own.apply(prs)
        out.append(
            TechDora(
                stream=t,
                deployment_frequency=dora.deployment_frequency(
                    d, window=window, calendar=lookups.calendar()
                ),
                change_failure_rate=dora.change_failure_rate(
                    d, i, window=window, correlation_window_minutes=minutes
                ),
                time_to_restore=dora.time_to_restore(i, window=window),
                lead_time=dora.lead_time_for_changes(p, d, window=window),
            )
        )
    return tuple(out)


def _months(first: date, last: date) -> tuple[str, ...]:
    months = []
    year, month = first.year, first.month
    while (year, month) <= (last.year, last.month):
        months.append(f"{year:04d}-{month:02d}")
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return tuple(months)


def _pulse(
    conn: sa.Connection, stream: Stream, periods: tuple[str, ...], at: datetime
) -> tuple[pulse.PulseAggregate, ...]:
    responses = read.pulse(conn, as_of=at, scope=Scope(delivery_stream_id=stream.stream_id))
    sizes = {stream.stream_id: stream.team_size} if stream.team_size else {}
    result = pulse.team_pulse(
        responses, as_of=at, team_sizes=sizes, period=periods[-1], periods=len(periods)
    )
    return result.for_stream(stream.stream_id)
