"""System alerts (spec §8.5; API reference ``GET /api/v1/admin/system-alerts``).

``evaluate`` compares the platform's own figures with the thresholds below: the inbox
(failure rate, queue depth, dead letters), the API's rolling p95 passed in by the API
process, and the ``data_quality``, ``team_pulse`` and ``integration_health`` metrics. Every
figure of a metric comes from ``dpp_lib.metrics``; this module only compares.
``refresh_system_alerts`` keeps the ``system_alerts`` table in step with an evaluation:
a condition that becomes true is inserted with ``triggered_at = now``, one still true keeps
its ``triggered_at`` (message and details follow the latest figures), one no longer true
gets ``resolved_at``. Computation failures are not evaluated: jobs record them
(``record_computation_failure``) and a later successful run resolves them.

Condition ids are stable strings (``docs/api/system-alerts.md`` lists them).
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import pandas as pd
import sqlalchemy as sa

from dpp_lib.ingest.lookups import OrgLookups
from dpp_lib.metrics.common import Scope, Window
from dpp_lib.metrics.data_quality import STALE_AFTER, DataQuality, IntegrationHealth
from dpp_lib.metrics.data_quality import data_quality as data_quality_metric
from dpp_lib.metrics.data_quality import integration_health as integration_health_metric
from dpp_lib.metrics.pulse import TeamPulse, team_pulse
from dpp_lib.store import read
from dpp_lib.store.schema import delivery_streams, raw_events, system_alerts, tech_streams
from dpp_lib.store.types import new_id, now_utc

Severity = Literal["LOW", "MEDIUM", "HIGH", "CRITICAL"]
SEVERITY_ORDER: dict[str, int] = {"CRITICAL": 0, "HIGH": 1, "MEDIUM": 2, "LOW": 3}

# --- thresholds (spec §8.5) -----------------------------------------------------------------
FAILURE_WINDOW = timedelta(minutes=15)
FAILURE_RATE_MAX_PCT = 5.0  # alert above this
FAILURE_MIN_DELIVERIES = 20  # fewer deliveries in the window: no verdict (1 in 3 is not 33 %)
QUEUE_DEPTH_MAX = 1000  # pending inbox rows; alert above this
API_P95_MAX_MS = 5000.0  # alert above this
API_MIN_REQUESTS = 20  # fewer requests measured: no verdict
DATA_QUALITY_WINDOW_DAYS = 30
PULSE_RESPONSE_MIN_PCT = 40.0  # alert below this
PULSE_ACTIVE_WITHIN = timedelta(days=30)  # a survey runs while responses arrive
# Sources whose silence for STALE_AFTER is news. Pulse surveys are monthly and incidents
# rare, so their silence is normal; the metric still reports them as stale.
STALE_ALERT_SOURCES = ("github", "jira", "deployment")
SOURCE_NAMES = {"github": "GitHub", "jira": "Jira", "deployment": "deployment"}

WEBHOOK_FAILURES = "webhook_ingestion_failure_rate_high"
QUEUE_DEPTH = "event_queue_depth_high"
DEAD_LETTERS = "dead_letters_present"
API_LATENCY = "api_latency_p95_high"
COMPUTATION_FAILURE = "metric_computation_failure"
DATA_QUALITY = "data_quality_below_target"
PULSE_RESPONSE = "pulse_response_rate_low"
INTEGRATION_STALE = "integration_stale"

CONDITION_MAX = 100  # system_alerts.condition is VARCHAR(100)
MESSAGE_MAX = 500  # a job's error can be long; details keep it whole
_LOCK_KEY = zlib.crc32(b"dpp.system_alerts")  # Postgres advisory lock: one writer at a time


@dataclass(frozen=True)
class AlertCondition:
    condition: str
    severity: Severity
    message: str
    details: dict[str, Any]


@dataclass(frozen=True)
class InboxCounts:
    """The inbox figures the alerts need: deliveries received in the failure window and how
    many of them failed processing, and the rows pending and dead-lettered now."""

    received: int
    failed: int
    pending: int
    dead: int


# --- threshold checks (pure) ----------------------------------------------------------------
def inbox_alerts(counts: InboxCounts) -> list[AlertCondition]:
    out: list[AlertCondition] = []
    if counts.received >= FAILURE_MIN_DELIVERIES:
        rate = counts.failed / counts.received * 100
        if rate > FAILURE_RATE_MAX_PCT:
            minutes = int(FAILURE_WINDOW.total_seconds() // 60)
            out.append(
                AlertCondition(
                    WEBHOOK_FAILURES,
                    "HIGH",
                    f"Webhook ingestion failure rate is {rate:.1f}% over the last {minutes} "
                    f"minutes ({counts.failed} of {counts.received} deliveries; "
                    f"threshold: {FAILURE_RATE_MAX_PCT:g}%)",
                    {
                        "failureRatePct": round(rate, 2),
                        "failed": counts.failed,
                        "received": counts.received,
                        "windowMinutes": minutes,
                        "thresholdPct": FAILURE_RATE_MAX_PCT,
                    },
                )
            )
    if counts.pending > QUEUE_DEPTH_MAX:
        out.append(
            AlertCondition(
                QUEUE_DEPTH,
                "MEDIUM",
                f"Event queue depth is {counts.pending} (threshold: {QUEUE_DEPTH_MAX})",
                {"depth": counts.pending, "threshold": QUEUE_DEPTH_MAX},
            )
        )
    if counts.dead > 0:
        noun = "delivery is" if counts.dead == 1 else "deliveries are"
        out.append(
            AlertCondition(
                DEAD_LETTERS,
                "MEDIUM",
                f"{counts.dead} {noun} dead-lettered; fix the cause, then requeue with "
                "`dpp inbox retry`",
                {"dead": counts.dead},
            )
        )
    return out


def api_latency_alerts(p95_ms: float | None, requests: int) -> list[AlertCondition]:
    if p95_ms is None or requests < API_MIN_REQUESTS or p95_ms <= API_P95_MAX_MS:
        return []
    return [
        AlertCondition(
            API_LATENCY,
            "MEDIUM",
            f"API response time p95 is {p95_ms:.0f} ms over the last {requests} requests "
            f"(threshold: {API_P95_MAX_MS:.0f} ms)",
            {"p95Ms": round(p95_ms, 1), "requests": requests, "thresholdMs": API_P95_MAX_MS},
        )
    ]


def integration_alerts(health: IntegrationHealth, *, working_day: bool) -> list[AlertCondition]:
    """``stale`` sources of ``STALE_ALERT_SOURCES``, on the organisation's working days only
    (a quiet weekend is not an outage)."""
    if not working_day:
        return []
    hours = int(STALE_AFTER.total_seconds() // 3600)
    out = []
    for source in STALE_ALERT_SOURCES:
        found = health.integrations.get(source)
        if found is None or found.status != "stale":
            continue
        last = found.last_event_at
        out.append(
            AlertCondition(
                f"{INTEGRATION_STALE}_{source}",
                "MEDIUM",
                f"No {SOURCE_NAMES[source]} events received in the last {hours} hours",
                {"source": source, "lastEventAt": _iso(last) if last else None},
            )
        )
    return out


@dataclass(frozen=True)
class StreamRef:
    stream_id: Any
    name: str  # as it appears in condition ids
    dimension: Literal["delivery", "tech"]


def data_quality_alerts(stream: StreamRef, result: DataQuality) -> list[AlertCondition]:
    """One LOW alert per rate the metric warns about (below its spec §5.6 target)."""
    out = []
    for warning in result.warnings:
        rate = result.rates[warning.issue.removesuffix("_low")]
        condition = _condition(DATA_QUALITY, stream.name, rate.name)
        if len(condition) > CONDITION_MAX:  # a long stream name: its id is stable and short
            condition = _condition(DATA_QUALITY, str(stream.stream_id), rate.name)
        out.append(
            AlertCondition(
                condition,
                "LOW",
                f"Data quality below target for {stream.dimension} stream {stream.name}: "
                f"{rate.name} is {rate.value:.1f}% (target: {rate.target:g}%)",
                {
                    "stream": stream.name,
                    "streamId": str(stream.stream_id),
                    "dimension": stream.dimension,
                    "rate": rate.name,
                    "valuePct": rate.value,
                    "targetPct": rate.target,
                    "numerator": rate.numerator,
                    "denominator": rate.denominator,
                    "windowDays": DATA_QUALITY_WINDOW_DAYS,
                    "affects": list(warning.affects),
                },
            )
        )
    return out


def pulse_alerts(result: TeamPulse, names: dict[Any, str]) -> list[AlertCondition]:
    """Streams (of ``names``) whose response rate in the latest survey period is below
    ``PULSE_RESPONSE_MIN_PCT``; streams without a team size have no rate and never alert."""
    out = []
    for agg in result.aggregates:
        name = names.get(agg.delivery_stream_id)
        rate = agg.response_rate_pct
        if name is None or agg.survey_period != result.period or rate is None:
            continue
        if rate < PULSE_RESPONSE_MIN_PCT:
            out.append(
                AlertCondition(
                    _condition(PULSE_RESPONSE, name),
                    "LOW",
                    f"Pulse survey response rate for {name} is {rate:.1f}% in "
                    f"{agg.survey_period} ({agg.response_count} of {agg.team_size}; "
                    f"threshold: {PULSE_RESPONSE_MIN_PCT:g}%)",
                    {
                        "stream": name,
                        "streamId": str(agg.delivery_stream_id),
                        "surveyPeriod": agg.survey_period,
                        "responseRatePct": rate,
                        "responses": agg.response_count,
                        "teamSize": agg.team_size,
                        "thresholdPct": PULSE_RESPONSE_MIN_PCT,
                    },
                )
            )
    return out


def _condition(*parts: str) -> str:
    return ":".join(parts)


# --- evaluation -----------------------------------------------------------------------------
def evaluate(
    conn: sa.Connection,
    lookups: OrgLookups,
    *,
    now: datetime,
    api_latency_p95_ms: float | None = None,
    api_requests: int = 0,
) -> list[AlertCondition]:
    """Every evaluated condition that is true at ``now`` (computation failures excluded)."""
    health = integration_health_metric(read.integrations(conn, as_of=now), as_of=now)
    calendar = lookups.calendar()
    working_day = calendar.is_working_day(calendar.local_date(now))
    return [
        *inbox_alerts(inbox_counts(conn, now=now)),
        *api_latency_alerts(api_latency_p95_ms, api_requests),
        *integration_alerts(health, working_day=working_day),
        *_stream_alerts(conn, lookups, now=now),
    ]


def inbox_counts(conn: sa.Connection, *, now: datetime) -> InboxCounts:
    r = raw_events
    by_state: dict[str, int] = dict(
        conn.execute(
            sa.select(r.c.state, sa.func.count())
            .where(r.c.state.in_(("pending", "dead")))
            .group_by(r.c.state)
        ).all()
    )
    failed = sa.or_(r.c.state == "dead", sa.and_(r.c.state == "pending", r.c.attempts > 0))
    recent = conn.execute(
        sa.select(sa.func.count(), sa.func.count().filter(failed)).where(
            r.c.received_at >= now - FAILURE_WINDOW, r.c.received_at <= now
        )
    ).one()
    return InboxCounts(
        received=int(recent[0]),
        failed=int(recent[1]),
        pending=int(by_state.get("pending", 0)),
        dead=int(by_state.get("dead", 0)),
    )


def _stream_alerts(
    conn: sa.Connection, lookups: OrgLookups, *, now: datetime
) -> list[AlertCondition]:
    """Data quality per delivery and per tech stream, and pulse response per delivery
    stream; the frames are read once and scoped per stream."""
    d, t = delivery_streams, tech_streams
    delivery = conn.execute(
        sa.select(d.c.stream_id, d.c.name, d.c.team_size).where(d.c.is_active).order_by(d.c.name)
    ).all()
    tech = conn.execute(
        sa.select(t.c.stream_id, t.c.name).where(t.c.is_active).order_by(t.c.name)
    ).all()
    # The rates read only their window (``views.admin._frames``); pulse alerts read every
    # answer (the latest period may have started before the window).
    since = Window.trailing(now, DATA_QUALITY_WINDOW_DAYS).start
    prs = read.prs(conn, as_of=now, opened_since=since)
    moves = read.transitions(conn, lookups, as_of=now, created_since=since)
    deploys = read.deploys(conn, as_of=now, since=since)
    defects = read.defects(conn, as_of=now, logged_since=since)
    responses = read.pulse(conn, as_of=now)
    no_responses = responses.iloc[0:0]

    out: list[AlertCondition] = []
    delivery_names = {r.name for r in delivery}
    for row in delivery:
        scope = Scope(delivery_stream_id=row.stream_id)
        result = data_quality_metric(
            scope.apply(prs),
            _whole_tickets(moves, scope),
            scope.apply(deploys),
            scope.apply(defects),
            scope.apply(responses),
            as_of=now,
            window_days=DATA_QUALITY_WINDOW_DAYS,
            team_size=row.team_size,
        )
        out += data_quality_alerts(StreamRef(row.stream_id, row.name, "delivery"), result)
    for ts in tech:
        scope = Scope(tech_stream_id=ts.stream_id)
        # a tech stream named like a delivery stream would share its condition ids
        name = f"tech.{ts.name}" if ts.name in delivery_names else ts.name
        result = data_quality_metric(
            scope.apply(prs),
            _whole_tickets(moves, scope),
            scope.apply(deploys),
            scope.apply(defects),
            no_responses,  # pulse is per delivery stream
            as_of=now,
            window_days=DATA_QUALITY_WINDOW_DAYS,
        )
        out += data_quality_alerts(StreamRef(ts.stream_id, name, "tech"), result)

    if (responses["event_timestamp"] >= now - PULSE_ACTIVE_WITHIN).any():
        sizes = {r.stream_id: r.team_size for r in delivery if r.team_size}
        pulse = team_pulse(responses, as_of=now, team_sizes=sizes, periods=1)
        out += pulse_alerts(pulse, {r.stream_id: r.name for r in delivery})
    return out


def _whole_tickets(moves: pd.DataFrame, scope: Scope) -> pd.DataFrame:
    """Every event of the tickets in scope: a ticket's earlier events may lack the stream
    derived later (as ``read.transitions`` scopes)."""
    if moves.empty:  # Scope.apply on an empty frame by tech_stream_ids loses the columns
        return moves
    tickets = set(scope.apply(moves)["ticket_id"])
    return moves[moves["ticket_id"].isin(tickets)]


# --- persistence ----------------------------------------------------------------------------
def refresh_system_alerts(
    conn: sa.Connection,
    lookups: OrgLookups,
    *,
    now: datetime,
    api_latency_p95_ms: float | None = None,
    api_requests: int = 0,
) -> list[dict[str, Any]]:
    """Evaluate, bring ``system_alerts`` in step, and return the active alerts."""
    found = {
        c.condition: c
        for c in evaluate(
            conn, lookups, now=now, api_latency_p95_ms=api_latency_p95_ms, api_requests=api_requests
        )
    }
    _lock(conn)
    a = system_alerts
    active = _active(conn)
    for condition, alert in found.items():
        row = active.get(condition)
        if row is None:
            _insert(conn, alert, now=now)
        elif (row.severity, row.message, row.details) != (
            alert.severity,
            alert.message,
            alert.details,
        ):
            conn.execute(
                a.update()
                .where(a.c.alert_id == row.alert_id)
                .values(severity=alert.severity, message=alert.message, details=alert.details)
            )
    gone = [
        row.alert_id
        for condition, row in active.items()
        if condition not in found and not _recorded_by_jobs(condition)
    ]
    if gone:
        conn.execute(a.update().where(a.c.alert_id.in_(gone)).values(resolved_at=now))
    return active_alerts(conn)


def active_alerts(conn: sa.Connection) -> list[dict[str, Any]]:
    """The unresolved alerts as the API reference shows them: most severe first, then the
    oldest first."""
    rows = sorted(
        _active(conn).values(),
        key=lambda r: (SEVERITY_ORDER.get(r.severity, 9), r.triggered_at, r.condition),
    )
    return [
        {
            "condition": r.condition,
            "severity": r.severity,
            "message": r.message,
            "triggeredAt": _iso(r.triggered_at),
            "details": r.details or {},
        }
        for r in rows
    ]


def record_computation_failure(conn: sa.Connection, *, job: str, error: str, now: datetime) -> None:
    """A computation job failed: raise (or refresh) its HIGH alert until a later success."""
    condition = _computation_condition(job)
    _lock(conn)
    row = _active(conn).get(condition)
    message = f"Metric computation failed: {job}: {error}"
    if len(message) > MESSAGE_MAX:
        message = message[: MESSAGE_MAX - 1] + "…"
    details = {"job": job, "error": error, "lastFailedAt": _iso(now)}
    if row is None:
        _insert(
            conn, AlertCondition(condition, "HIGH", message, details | {"failures": 1}), now=now
        )
        return
    failures = int((row.details or {}).get("failures", 1)) + 1
    a = system_alerts
    conn.execute(
        a.update()
        .where(a.c.alert_id == row.alert_id)
        .values(message=message, details=details | {"failures": failures})
    )


def resolve_computation_failure(conn: sa.Connection, *, job: str, now: datetime) -> None:
    """A computation job succeeded: its failure alert, if any, is resolved."""
    a = system_alerts
    conn.execute(
        a.update()
        .where(a.c.condition == _computation_condition(job), a.c.resolved_at.is_(None))
        .values(resolved_at=now)
    )


@contextmanager
def computation_alerts(
    engine: sa.Engine, *, job: str, clock: Callable[[], datetime] = now_utc
) -> Iterator[None]:
    """Run a computation job: a failure is recorded (in its own transaction, the job's has
    rolled back) and re-raised; a success resolves an earlier failure. Should recording
    fail too (the database is down), the job's own error is raised with a note saying so."""
    _computation_condition(job)  # refuse a bad job name before the job runs
    try:
        yield
    except Exception as exc:
        try:
            with engine.begin() as conn:
                error = f"{type(exc).__name__}: {exc}"
                record_computation_failure(conn, job=job, error=error, now=clock())
        except Exception as also:
            exc.add_note(f"the failure alert was not recorded: {type(also).__name__}: {also}")
        raise
    with engine.begin() as conn:
        resolve_computation_failure(conn, job=job, now=clock())


def _computation_condition(job: str) -> str:
    condition = _condition(COMPUTATION_FAILURE, job)
    if not job.strip() or len(condition) > CONDITION_MAX:
        longest = CONDITION_MAX - len(COMPUTATION_FAILURE) - 1
        raise ValueError(f"job name {job!r} must be 1–{longest} characters")
    return condition


def _recorded_by_jobs(condition: str) -> bool:
    return condition.startswith(COMPUTATION_FAILURE + ":")


def _active(conn: sa.Connection) -> dict[str, Any]:
    """The unresolved row of each condition (writers hold ``_lock``: one per condition)."""
    a = system_alerts
    rows = conn.execute(
        sa.select(a).where(a.c.resolved_at.is_(None)).order_by(a.c.triggered_at, a.c.alert_id)
    ).all()
    out: dict[str, Any] = {}
    for row in rows:
        out.setdefault(row.condition, row)
    return out


def _insert(conn: sa.Connection, alert: AlertCondition, *, now: datetime) -> None:
    conn.execute(
        system_alerts.insert().values(
            alert_id=new_id(),
            condition=alert.condition,
            severity=alert.severity,
            message=alert.message,
            triggered_at=now,
            details=alert.details,
        )
    )


def _lock(conn: sa.Connection) -> None:
    """Serialise writers of ``system_alerts`` (two API processes refreshing at once would
    insert a condition twice). SQLite serialises writers already."""
    if conn.dialect.name == "postgresql":
        conn.execute(sa.select(sa.func.pg_advisory_xact_lock(_LOCK_KEY)))


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")
