"""Metric-engine benchmark data (``make bench-metrics``): the event history of a large org.

    python bench/metrics_data.py --url postgresql://postgres@127.0.0.1:5432/dpp_bench_metrics \
        [--engineers 1000] [--days 730] [--seed 7] [--until 2026-11-16]

Drops and recreates the database (through the ``postgres`` database), migrates it, loads an
org config built for ``--engineers`` people (``--delivery-streams`` teams of 8–12, about one
tech stream per 85 people, 0.15 repositories per person, Jira projects with the four status
flows of ``config/example.yaml``, England & Wales holidays, Europe/London), then simulates
``--days`` of work ending at ``--until`` and bulk-loads it with COPY. Prints a JSON summary.

The rows are what the worker would have stored for the webhooks (``dpp_lib.ingest``): Jira
``created``/``transitioned``/``completed``/``blocked``/``unblocked`` work item events with
status and stage, sprint and assignee field changes, ``logged``/``attributed``/
``reclassified`` defect events for bugs; GitHub PR ``opened``/``review_submitted`` (+
``approved``/``changes_requested``)/``merged``/``closed`` events linked to tickets by branch
name (``feature/KEY-123-…``) or title; CI ``build_completed`` per merge and staging/production
deploys (GitHub ``deployment_status`` and the deployment API, naming merge commits, some
failed, rolled back or config-only), each linked to its PR's ticket as the worker links them;
monitoring incidents (open/resolve pairs with time to restore) on the services deploys
target; monthly pulse responses. Enrichment results (delivery/tech stream, repo, sprint
ids, linked tickets) are filled in as the worker fills them.

Everything is seeded: the same arguments give the same rows, ids included. Speed: the
simulation works in integer "working seconds" (10 working hours a day, 08:30–18:30 local),
rows are built as COPY text lines directly, ids come from numpy in bulk, and the load skips
foreign-key triggers (``session_replication_role = replica``) and checks every foreign key
with one anti-join per column afterwards instead.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import math
import random
import re
import sys
import time
import uuid
import zlib
from bisect import bisect_right
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime
from pathlib import Path
from typing import Any
from unittest import mock
from zoneinfo import ZoneInfo

import numpy as np
import psycopg
import yaml
from psycopg import sql

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # `python bench/metrics_data.py` puts bench/ first, not the root
    sys.path.insert(0, str(ROOT))

from dpp_lib.ingest.linking import NOT_TICKET_PROJECTS  # noqa: E402
from dpp_lib.orgconfig import OrgConfig  # noqa: E402
from dpp_lib.store.config_tables import apply_config  # noqa: E402
from dpp_lib.store.db import make_engine  # noqa: E402
from dpp_lib.store.migrate import upgrade  # noqa: E402

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/dpp_bench_metrics"
TIME_ZONE = "Europe/London"
DAY_W = 36_000  # working seconds in a working day (08:30–18:30 local)
WORK_START_MIN = 8 * 60 + 30
RUN_ON_DAYS = 35  # simulate past --until so open work, WIP and a backlog exist there
SPRINT_EPOCH = date(2024, 1, 1)  # a Monday; boards start sprints on Mondays, 14 days apart
ANON_KEY = b"dpp-bench-metrics-anonymisation-key"
N = "\\N"  # NULL in COPY text

# England & Wales bank holidays 2024–2027.
HOLIDAYS = [
    "2024-01-01", "2024-03-29", "2024-04-01", "2024-05-06", "2024-05-27", "2024-08-26",
    "2024-12-25", "2024-12-26", "2025-01-01", "2025-04-18", "2025-04-21", "2025-05-05",
    "2025-05-26", "2025-08-25", "2025-12-25", "2025-12-26", "2026-01-01", "2026-04-03",
    "2026-04-06", "2026-05-04", "2026-05-25", "2026-08-31", "2026-12-25", "2026-12-28",
    "2027-01-01", "2027-03-26", "2027-03-29", "2027-05-03", "2027-05-31", "2027-08-30",
    "2027-12-27", "2027-12-28",
]  # fmt: skip

# The four status flows of config/example.yaml: (status, stage, active).
STATUS_TEMPLATES: tuple[tuple[tuple[str, str, bool], ...], ...] = (
    (("To Do", "backlog", False), ("In Analysis", "ba", True), ("Ready for Dev", "dev", False),
     ("In Development", "dev", True), ("In Code Review", "code_review", True),
     ("Ready for QA", "qa", False), ("In QA", "qa", True), ("Ready for UAT", "uat", False),
     ("In UAT", "uat", True), ("Done", "done", False), ("Cancelled", "cancelled", False)),
    (("Backlog", "backlog", False), ("Analysis", "ba", True),
     ("Ready for Development", "dev", False), ("Development", "dev", True),
     ("Peer Review", "code_review", True), ("Ready for Test", "qa", False),
     ("Testing", "qa", True), ("Awaiting UAT", "uat", False), ("Acceptance", "uat", True),
     ("Closed", "done", False), ("Won't Do", "cancelled", False)),
    (("Open", "backlog", False), ("Refinement", "ba", True), ("Ready for Dev", "dev", False),
     ("In Progress", "dev", True), ("In Review", "code_review", True),
     ("Ready for QA", "qa", False), ("In QA", "qa", True), ("Ready for UAT", "uat", False),
     ("In UAT", "uat", True), ("Done", "done", False), ("Rejected", "cancelled", False)),
    (("To Do", "backlog", False), ("Discovery", "ba", True),
     ("Selected for Development", "dev", False), ("In Progress", "dev", True),
     ("Code Review", "code_review", True), ("Ready for QA", "qa", False), ("QA", "qa", True),
     ("Ready for Sign-off", "uat", False), ("Sign-off", "uat", True), ("Done", "done", False),
     ("Cancelled", "cancelled", False)),
)  # fmt: skip
FLOW_STAGES = ("ba", "dev", "code_review", "qa", "uat")

STREAM_WORDS = (
    "payments", "onboarding", "lending", "insights", "cards", "savings", "mortgages", "fraud",
    "treasury", "compliance", "wealth", "pensions", "insurance", "claims", "billing",
    "collections", "pricing", "loyalty", "checkout", "catalogue", "statements", "accounts",
    "notifications", "marketing", "support", "ledger", "trading", "kyc", "partners",
    "merchants", "rewards", "budgeting", "invoicing", "payroll", "disputes", "forex",
    "underwriting", "servicing", "branches", "documents",
)  # fmt: skip
STREAM_QUALIFIERS = ("core", "growth", "ops", "experience", "data", "mobile", "platform")
TECH_STREAMS = (
    ("core-api", "Core API", "ecs"), ("identity", "Identity", "lambda"),
    ("data-platform", "Data Platform", "airflow"), ("web", "Web Frontend", "cloudfront"),
    ("mobile", "Mobile Apps", "appstore"), ("infra", "Infrastructure", "terraform"),
    ("payments-engine", "Payments Engine", "ecs"), ("messaging", "Messaging", "ecs"),
    ("search", "Search", "ecs"), ("risk-engine", "Risk Engine", "ecs"),
    ("integrations", "Integrations", "lambda"), ("reporting", "Reporting", "ecs"),
    ("ml-platform", "ML Platform", "sagemaker"), ("observability", "Observability", "ecs"),
    ("edge", "Edge", "cloudfront"), ("batch", "Batch Processing", "airflow"),
)  # fmt: skip
REPO_NOUNS = (
    "service", "api", "worker", "gateway", "scheduler", "ui", "admin", "events", "store",
    "sync", "jobs", "proxy", "portal", "engine", "notifier", "importer", "exporter", "auth",
    "cache", "batch", "router", "rules", "ledger", "reports", "webhooks", "search", "feeds",
    "audit", "config", "queue",
)  # fmt: skip
LIB_NOUNS = ("lib", "models", "sdk", "components", "contracts", "protos", "utils", "schemas")
SLUG_WORDS = (
    "retry", "timeout", "validation", "limits", "export", "audit", "login", "refund", "fees",
    "webhook", "statement", "search", "filter", "cache", "report", "alerts", "consent", "kyc",
    "pricing", "schedule", "migration", "api", "form", "banner", "checkout", "ledger", "sync",
    "docs", "metrics", "logging", "pagination", "rounding", "currency", "address", "upload",
)  # fmt: skip
FLAVOUR_LABELS = ("tech-debt", "customer-request", "regulatory", "performance", "security")
PRIORITIES = ("Highest", "High", "Medium", "Low", "Lowest")
PRIORITY_WEIGHTS = (3, 15, 60, 18, 4)
BUG_PRIORITY_WEIGHTS = (8, 30, 45, 15, 2)
SEVERITY = {"Highest": "critical", "High": "high", "Medium": "medium", "Low": "low",
            "Lowest": "low"}  # fmt: skip
POINTS = (1.0, 2.0, 3.0, 5.0, 8.0, 13.0)
POINT_WEIGHTS = (8, 18, 30, 26, 14, 4)
KINDS = ("story", "task", "spike")
KIND_WEIGHTS = (62, 30, 8)
# (stage, active) → (median working days, sigma of the log)
DURATIONS = {
    ("ba", True): (0.4, 0.7), ("dev", False): (0.6, 0.9), ("dev", True): (1.1, 0.7),
    ("code_review", True): (0.4, 0.8), ("qa", False): (0.5, 0.9), ("qa", True): (0.5, 0.7),
    ("uat", False): (0.6, 0.9), ("uat", True): (0.3, 0.7),
}  # fmt: skip
FOUND_STAGES = ("dev", "code_review", "qa", "uat", "production")
FOUND_WEIGHTS = (18, 5, 55, 13, 9)
DEFECT_ORDER = ("ba", "dev", "code_review", "qa", "uat", "production")
INTRODUCED = {"ba": 20, "dev": 65, "code_review": 5, "qa": 5, "uat": 5}
ROOT_CAUSES = ("logic", "requirements", "integration", "data", "configuration")
REVIEW_PATTERNS: tuple[tuple[str, ...], ...] = (
    ("approved",),
    ("commented", "approved"),
    ("changes_requested", "approved"),
    ("approved", "approved"),
    ("commented", "changes_requested", "approved"),
)
REVIEW_WEIGHTS = (52, 20, 15, 9, 4)
DEPLOY_SLOTS = (10 * 60 + 30, 13 * 60 + 30, 16 * 60)  # local minutes of the day
FAILURES = (
    "health check failed after rollout",
    "migration step timed out",
    "image pull failed: manifest unknown",
    "canary error rate above threshold",
    "smoke tests failed",
)
INCIDENT_TEXT = (
    "Elevated 5xx error rate on {s}",
    "Latency p99 above SLO on {s}",
    "{s} failing health checks",
    "Queue backlog growing for {s}",
    "Payment callbacks timing out in {s}",
    "Database connection pool exhausted in {s}",
)
PULSE_COMMENTS = (
    "Too many context switches this month",
    "Release process felt smoother",
    "Flaky CI is slowing us down",
    "Clear priorities from the product side",
    "Waiting on other teams for reviews",
    "Good pairing sessions",
    "On-call was heavy",
    "Requirements changed mid-sprint again",
)
SPRINT_GOALS = (
    "Ship the next release candidate",
    "Reduce the bug backlog",
    "Finish the migration",
    "Harden the new API",
    "Customer feedback items",
)

# Kinds of ticket changes, in the order they apply when simultaneous.
CREATED, STATUS, DONE_STATUS, SPRINT, FLAG_ON, FLAG_OFF, INTRO = range(7)

# COPY column lists. Rows are built in exactly this order.
COLUMNS: dict[str, tuple[str, ...]] = {
    "work_item_events": (
        "event_id", "event_timestamp", "received_at", "event_type", "from_status",
        "from_stage", "to_status", "to_stage", "assignee_hash", "sprint_id",
        "blocking_tech_stream_id", "source", "delivery_stream_id", "tech_stream_id",
        "ticket_id", "ticket_type", "story_points", "priority", "labels", "tech_stream_ids",
    ),
    "work_item_field_changes": (
        "event_id", "event_timestamp", "received_at", "field", "from_value", "to_value",
        "source", "delivery_stream_id", "tech_stream_id", "ticket_id",
    ),
    "defect_events": (
        "event_id", "event_timestamp", "received_at", "event_type", "introduced_in_stage",
        "root_cause_category", "source", "delivery_stream_id", "tech_stream_id", "ticket_id",
        "severity", "found_in_stage", "linked_work_item_id",
    ),
    "pr_events": (
        "event_id", "event_timestamp", "received_at", "event_type", "reviewer_hash",
        "review_state", "comments_count", "merge_commit_sha", "source", "delivery_stream_id",
        "tech_stream_id", "pr_number", "repo_id", "github_org", "github_repo", "author_hash",
        "branch_name", "linked_ticket_id", "base_branch", "lines_added", "lines_removed",
        "files_changed", "head_sha", "link_method",
    ),
    "cicd_events": (
        "event_id", "event_timestamp", "received_at", "source", "event_type", "pipeline_id",
        "pipeline_run_id", "repo_id", "tech_stream_id", "delivery_stream_id", "environment",
        "status", "duration_seconds", "commit_sha", "linked_pr_number", "linked_ticket_id",
        "trigger_type", "artefact_version", "failure_reason",
    ),
    "incident_events": (
        "event_id", "event_timestamp", "received_at", "source", "tech_stream_id",
        "event_type", "incident_id", "service_name", "severity", "description", "resolved_at",
        "time_to_restore_min",
    ),
    "pulse_responses": (
        "event_id", "event_timestamp", "received_at", "source", "delivery_stream_id",
        "survey_period", "respondent_hash", "pace_score", "tooling_score", "clarity_score",
        "free_text",
    ),
}  # fmt: skip
EVENT_TABLES = tuple(COLUMNS)


# --- small helpers ---------------------------------------------------------------------------


def log(msg: str) -> None:
    print(f"[metrics-data {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def anonymise(namespace: str, identifier: str) -> str:
    """As ``dpp_lib.ingest.anonymise``: HMAC-SHA256 hex of ``namespace:identifier``."""
    return hmac.new(ANON_KEY, f"{namespace}:{identifier}".encode(), hashlib.sha256).hexdigest()


def sha40(key: str) -> str:
    return hashlib.sha1(key.encode()).hexdigest()


def stable_uuid(key: str) -> str:
    return uuid.uuid5(uuid.NAMESPACE_URL, f"dpp-bench-metrics:{key}").hex


def poisson(rng: random.Random, mean: float) -> int:
    """Knuth's method (the means here are small)."""
    limit, k, p = math.exp(-mean), 0, rng.random()
    while p > limit:
        k += 1
        p *= rng.random()
    return k


def id_source(seed: int, name: str) -> Callable[[], str]:
    """Seeded version-4 UUIDs as 32 hex digits (Postgres reads them without dashes)."""
    gen = np.random.default_rng([seed, zlib.crc32(name.encode())])

    def ids() -> Iterator[str]:
        while True:
            raw = gen.integers(0, 256, size=(65_536, 16), dtype=np.uint8)
            raw[:, 6] = (raw[:, 6] & 0x0F) | 0x40
            raw[:, 8] = (raw[:, 8] & 0x3F) | 0x80
            text = raw.tobytes().hex()
            yield from (text[i : i + 32] for i in range(0, len(text), 32))

    return ids().__next__


class Stamp:
    """Epoch seconds → COPY text ``YYYY-MM-DD HH:MM:SS+00``, from two lookup tables."""

    def __init__(self, first: int, last: int) -> None:
        self.base = first // 86_400
        days = last // 86_400 - self.base + 2
        epoch = date(1970, 1, 1)
        self.days = [f"{epoch + timedelta(days=self.base + i)} " for i in range(days)]
        self.hms = [
            f"{h:02d}:{m:02d}:{s:02d}+00" for h in range(24) for m in range(60) for s in range(60)
        ]

    def __call__(self, t: int) -> str:
        d, s = divmod(t, 86_400)
        return self.days[d - self.base] + self.hms[s]


class Clock:
    """Working time: w = workday index × DAY_W + working seconds since 08:30 local."""

    def __init__(self, first: date, last: date, holidays: frozenset[date]) -> None:
        tz = ZoneInfo(TIME_ZONE)
        self.days: list[date] = []
        self.starts: list[int] = []
        day = first
        while day <= last:
            if day.weekday() < 5 and day not in holidays:
                self.days.append(day)
                start = datetime.combine(day, dtime(8, 30), tzinfo=tz)
                self.starts.append(int(start.timestamp()))
            day += timedelta(days=1)

    def epoch(self, w: float) -> int:
        i, s = divmod(int(w), DAY_W)
        if i < 0:
            return self.starts[0] + int(w)
        if i >= len(self.starts):
            return self.starts[-1] + (i - len(self.starts) + 1) * 86_400 + s
        return self.starts[i] + s

    def w_of(self, t: int) -> int:
        """The working time at (or, outside working hours, next after) epoch ``t``."""
        i = bisect_right(self.starts, t) - 1
        if i < 0:
            return 0
        return i * DAY_W + min(t - self.starts[i], DAY_W)

    def local(self, i: int, minute_of_day: int) -> int:
        """Epoch of a local time of day on workday ``i``."""
        return self.starts[i] + (minute_of_day - WORK_START_MIN) * 60


# --- the organisation ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Person:
    jira: str
    github: str
    survey: str


@dataclass(frozen=True, slots=True)
class Status:
    name: str
    stage: str
    active: bool
    text: str  # "status\tstage"


@dataclass(frozen=True, slots=True)
class Project:
    key: str
    statuses: tuple[Status, ...]
    backlog: int
    steps: tuple[int, ...]
    done: int
    cancelled: int
    qa_active: int


@dataclass(frozen=True, slots=True)
class Sprint:
    jira_id: str
    name: str
    start: int  # epoch, Monday 09:00 local
    end: int  # epoch, Friday of the next week 17:00 local
    goal: str
    uuid: str
    stream_id: str


@dataclass(slots=True)
class Repo:
    full_name: str
    org: str
    name: str
    tech: int
    deployable: bool
    target: str | None
    branch: str
    repo_id: str = ""
    tech_id: str = ""


@dataclass(slots=True)
class Team:
    index: int
    name: str
    display: str
    key: str
    size: int
    template: int
    primary: int
    secondary: list[int]
    speed: float
    bottleneck: str
    stream_id: str = ""
    project: Project | None = None
    ba: Person | None = None
    qas: list[Person] = field(default_factory=list)
    po: Person | None = None
    devs: list[Person] = field(default_factory=list)
    members: list[Person] = field(default_factory=list)
    dominant: Person | None = None
    home_repos: list[int] = field(default_factory=list)
    sprints: list[Sprint] = field(default_factory=list)


@dataclass
class Org:
    teams: list[Team]
    tech: list[tuple[str, str, str]]  # name, display name, deploy target kind
    tech_ids: list[str]
    repos: list[Repo]
    bot: Person
    config: dict[str, Any]


def _project_key(name: str, used: set[str]) -> str:
    parts = name.split("-")
    base = (parts[0][:3] + "".join(p[0] for p in parts[1:])).upper()
    key, n = base, 2
    while key in used or key in NOT_TICKET_PROJECTS or not re.fullmatch(r"[A-Z][A-Z0-9_]+", key):
        key, n = f"{base}{n}", n + 1
    used.add(key)
    return key


def build_org(engineers: int, n_streams: int, seed: int) -> Org:
    """The org config (as a dict for ``OrgConfig``) and the simulation's view of it."""
    rng = random.Random(f"dpp-bench:{seed}:org")
    n_tech = max(2, min(len(TECH_STREAMS), round(engineers / 85)))
    tech = list(TECH_STREAMS[:n_tech])
    # Team sizes 8–12 adding up to the head count where possible.
    sizes = [rng.randint(8, 12) for _ in range(n_streams)]
    for _ in range(10 * n_streams):
        total = sum(sizes)
        if total == engineers:
            break
        i = rng.randrange(n_streams)
        if total > engineers and sizes[i] > 8:
            sizes[i] -= 1
        elif total < engineers and sizes[i] < 12:
            sizes[i] += 1
    teams: list[Team] = []
    used: set[str] = set()
    for i in range(n_streams):
        word = STREAM_WORDS[i % len(STREAM_WORDS)]
        round_ = i // len(STREAM_WORDS)
        name = word if round_ == 0 else f"{word}-{STREAM_QUALIFIERS[(round_ - 1) % 7]}"
        if round_ > len(STREAM_QUALIFIERS):
            name = f"{name}-{round_}"
        primary = i % n_tech
        others = [t for t in range(n_tech) if t != primary]
        teams.append(
            Team(
                index=i,
                name=name,
                display=name.replace("-", " ").title(),
                key=_project_key(name, used),
                size=sizes[i],
                template=i % len(STATUS_TEMPLATES),
                primary=primary,
                secondary=rng.sample(others, min(2, len(others))),
                speed=rng.uniform(0.85, 1.2),
                bottleneck=rng.choice(("dev", "qa", "uat")),
            )
        )

    # Repositories: about 0.15 per person, spread unevenly over the tech streams.
    n_repos = max(2 * n_tech + 2, round(engineers * 0.15))
    weights = [rng.uniform(0.6, 1.4) for _ in tech]
    counts = [max(2, round(n_repos * w / sum(weights))) for w in weights]
    repos: list[Repo] = []
    for ti, (tname, _, kind) in enumerate(tech):
        org = f"acme-{tname}"
        n_lib = max(1, round(counts[ti] * 0.15)) if counts[ti] >= 4 else 0
        for k in range(counts[ti]):
            lib = k >= counts[ti] - n_lib
            nouns = LIB_NOUNS if lib else REPO_NOUNS
            j = k - (counts[ti] - n_lib) if lib else k
            noun = nouns[j % len(nouns)] + (f"-{j // len(nouns) + 1}" if j >= len(nouns) else "")
            name = f"{tname}-{noun}"
            repos.append(
                Repo(
                    full_name=f"{org}/{name}",
                    org=org,
                    name=name,
                    tech=ti,
                    deployable=not lib,
                    target=None if lib else f"{kind}:{name}",
                    branch="trunk" if tname == "infra" else "main",
                )
            )

    holidays = [date.fromisoformat(d) for d in HOLIDAYS]
    config: dict[str, Any] = {
        "organisation": {
            "name": f"Bench Org ({engineers} engineers)",
            "time_zone": TIME_ZONE,
            "holidays": holidays,
            "production_environments": ["production"],
            "incident_correlation_window_minutes": 60,
            "min_contributors": 6,
        },
        "jira_fields": {
            "delivery_stream": "customfield_10100",
            "tech_streams": "customfield_10101",
            "found_in_stage": "customfield_10102",
            "introduced_in_stage": "customfield_10103",
            "blocking_tech_stream": "customfield_10104",
            "flagged": "customfield_10021",
            "sprint": "customfield_10020",
            "story_points": "customfield_10016",
            "root_cause": "customfield_10105",
        },
        "value_map": {
            "stages": {
                "Analysis": "ba",
                "Development": "dev",
                "Code Review": "code_review",
                "Testing": "qa",
                "Acceptance": "uat",
                "Live": "production",
            }
        },
        "delivery_streams": [
            {"name": t.name, "display_name": t.display, "team_size": t.size, "labels": [t.name]}
            for t in teams
        ],
        "tech_streams": [
            {
                "name": name,
                "display_name": display,
                "github_org": f"acme-{name}",
                "github_install_id": str(41_000_100 + i),
                **(
                    {"ticket_key_pattern": r"^(?:[A-Za-z]+/)?([A-Z][A-Z0-9]+-\d+)"}
                    if name == "infra"
                    else {}
                ),
            }
            for i, (name, display, _) in enumerate(tech)
        ],
        "repositories": [
            {"full_name": r.full_name, "deployable": r.deployable, "default_branch": r.branch}
            | ({"deploy_target": r.target} if r.target else {})
            for r in repos
        ],
        "jira_projects": [
            {
                "key": t.key,
                "delivery_stream": t.name,
                "derivation": ["custom_field", "project"],
                "status_mappings": [
                    {"status": s, "stage": stage, "active": active}
                    for s, stage, active in STATUS_TEMPLATES[t.template]
                ],
            }
            for t in teams
        ],
    }

    # People: per team a BA, one or two QAs and engineers (team_size in all), plus a PO.
    def person(n: int) -> Person:
        key = f"person-{n:05d}"
        return Person(
            jira=anonymise("jira", hashlib.sha1(f"jira:{key}".encode()).hexdigest()[:24]),
            github=anonymise("github", str(1_000_000 + n * 7919)),
            survey=anonymise("survey", f"{key}@bench.example"),
        )

    n = 0
    for t in teams:
        people = [person(n + k) for k in range(t.size + 1)]
        n += t.size + 1
        n_qa = 2 if t.size >= 11 else 1
        t.ba, t.qas, t.po = people[0], people[1 : 1 + n_qa], people[t.size]
        t.devs = people[1 + n_qa : t.size]
        t.members = people[: t.size]
        trng = random.Random(f"dpp-bench:{seed}:team:{t.index}:people")
        t.dominant = trng.choice(t.devs) if trng.random() < 0.25 else None
        mine = [i for i, r in enumerate(repos) if r.tech == t.primary and r.deployable]
        t.home_repos = trng.sample(mine, min(3, len(mine)))
    bot = Person(anonymise("jira", "bot"), anonymise("github", "49699333"), "")
    return Org(teams, tech, [], repos, bot, config)


def build_projects(org: Org) -> None:
    for t in org.teams:
        statuses = tuple(
            Status(name, stage, active, f"{name}\t{stage}")
            for name, stage, active in STATUS_TEMPLATES[t.template]
        )
        steps: list[int] = []
        for stage in FLOW_STAGES:
            queue = [i for i, s in enumerate(statuses) if s.stage == stage and not s.active]
            active = [i for i, s in enumerate(statuses) if s.stage == stage and s.active]
            steps += queue[:1] + active[:1]
        t.project = Project(
            key=t.key,
            statuses=statuses,
            backlog=next(i for i, s in enumerate(statuses) if s.stage == "backlog"),
            steps=tuple(steps),
            done=next(i for i, s in enumerate(statuses) if s.stage == "done"),
            cancelled=next(i for i, s in enumerate(statuses) if s.stage == "cancelled"),
            qa_active=next(i for i, s in enumerate(statuses) if s.stage == "qa" and s.active),
        )


def build_sprints(org: Org, seed: int, first: date, last: date, until: date) -> None:
    """Two-week sprints per board. Each board's phase is set relative to ``until`` so that a
    sprint is running there (started 5–13 days before, on a Monday, Tuesday or Wednesday):
    no board is between sprints at the end of the history."""
    tz = ZoneInfo(TIME_ZONE)
    phases = [d for d in range(1, 14) if (until - timedelta(days=d)).weekday() <= 2]
    for t in org.teams:
        rng = random.Random(f"dpp-bench:{seed}:sprints:{t.index}")
        offset, board = rng.randint(10, 40), 100 + t.index
        anchor = until - timedelta(days=phases[t.index % len(phases)])
        k0 = (first - anchor).days // 14 - 1
        k1 = (last - anchor).days // 14 + 1
        t.sprints = []
        for k in range(k0, k1 + 1):
            day = anchor + timedelta(days=14 * k)
            end = day + timedelta(days=13)
            while end.weekday() >= 5:
                end -= timedelta(days=1)
            number = k - k0 + offset
            jira_id = str(board * 1000 + number)
            t.sprints.append(
                Sprint(
                    jira_id=jira_id,
                    name=f"{t.key} Sprint {number}",
                    start=int(datetime.combine(day, dtime(9), tzinfo=tz).timestamp()),
                    end=int(datetime.combine(end, dtime(17), tzinfo=tz).timestamp()),
                    goal=rng.choice(SPRINT_GOALS),
                    uuid=stable_uuid(f"sprint:{jira_id}"),
                    stream_id=t.stream_id,
                )
            )


# --- the simulation ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Window:
    start: int  # epoch
    until: int  # epoch; nothing after it is stored
    sim_end: int  # the simulation runs to here


@dataclass(slots=True)
class Ticket:
    seq: int
    kind: str  # story | task | spike | bug
    created: int
    priority: str
    points: float | None
    tech: list[int]
    labels: list[str]
    repo: int
    engineer: Person
    changes: list[tuple[int, int, int, int, int]] = field(default_factory=list)
    sprint_lists: list[tuple[str, ...]] = field(default_factory=list)
    key: str = ""
    review: tuple[int, int] | None = None  # first stay in code review (epochs)
    dev_start: int | None = None
    stays: list[tuple[str, int, int]] = field(default_factory=list)  # (stage, enter, leave)
    done_at: int | None = None
    found: str | None = None
    intro_at_creation: int = -1  # DEFECT_ORDER index, -1: none
    root_cause: str | None = None
    linked: Ticket | None = None
    tech_field: bool = True  # the tech-streams field is filled in (else tech ids are NULL)

    def add(self, at: int, kind: int, a: int = 0, b: int = -1) -> None:
        self.changes.append((at, len(self.changes), kind, a, b))


class TeamSim:
    """One delivery stream's tickets: flow through the project's statuses, sprints, bugs."""

    def __init__(self, org: Org, team: Team, clock: Clock, win: Window, rate: float, seed: int):
        self.org, self.team, self.clock, self.win = org, team, clock, win
        self.rng = random.Random(f"dpp-bench:{seed}:tickets:{team.index}")
        self.rate = rate  # tickets per team member per week, all kinds
        assert team.project is not None
        self.project = team.project
        self.tickets: list[Ticket] = []
        self.sprint_starts = [s.start for s in team.sprints]
        self.techs = [team.primary, *team.secondary]
        self.repos_of: dict[int, list[int]] = {}
        for i, r in enumerate(org.repos):
            self.repos_of.setdefault(r.tech, []).append(i)
        # Index of each person in the renderer's list: the members, then the PO.
        self.index = {id(p): i for i, p in enumerate(team.members)}
        self.index[id(team.po)] = len(team.members)

    def person_index(self, p: Person) -> int:
        return self.index[id(p)]

    def run(self) -> list[Ticket]:
        rng, clock, win, team = self.rng, self.clock, self.win, self.team
        w0 = clock.w_of(win.start)
        first_day = -(-w0 // DAY_W)
        last_day = clock.w_of(win.sim_end) // DAY_W
        until_day = clock.w_of(win.until) // DAY_W
        per_day = team.size * self.rate / 5
        for i in range(first_day, last_day + 1):
            for _ in range(poisson(rng, per_day * 0.80)):
                kind = rng.choices(KINDS, KIND_WEIGHTS)[0]
                start = i * DAY_W + rng.triangular(0, DAY_W, 0.4 * DAY_W)
                created = start - rng.lognormvariate(1.95, 0.9) * DAY_W  # median 7 days
                if created < w0:  # items older than the window were imported on its first day
                    created = w0 + rng.uniform(0.01, 0.3) * DAY_W
                start = max(start, created + rng.uniform(1200, 14_400))
                t = self.ticket(kind, created)
                if rng.random() < 0.012:  # dropped before anyone started it
                    self.cancel(t, created + rng.uniform(2, 40) * DAY_W)
                    continue
                skip_ba = rng.random() < (0.2 if kind == "story" else 0.6)
                skip_uat = rng.random() < (0.25 if kind == "story" else 0.5)
                self.flow(t, start, skip_ba=skip_ba, skip_uat=skip_uat)
            if i <= until_day:
                for _ in range(poisson(rng, per_day * 0.05)):  # ideas that never start
                    self.idea(i * DAY_W + rng.uniform(0.05, 0.95) * DAY_W)
        stories = [t for t in self.tickets if t.stays]
        n_bugs = round(len(self.tickets) * 0.15 / 0.85)
        for _ in range(n_bugs if stories else 0):
            self.bug(stories)
        # Keys in order of creation.
        order = sorted(self.tickets, key=lambda t: (t.created, t.seq))
        number = rng.randint(40, 900)
        for t in order:
            number += 1
            t.key = f"{team.key}-{number}"
        return order

    # -- one ticket ------------------------------------------------------------------------------

    def ticket(self, kind: str, created_w: float, *, bug: bool = False) -> Ticket:
        rng, team = self.rng, self.team
        priority = rng.choices(PRIORITIES, BUG_PRIORITY_WEIGHTS if bug else PRIORITY_WEIGHTS)[0]
        points: float | None = None
        if kind in ("story", "task"):
            points = rng.choices(POINTS, POINT_WEIGHTS)[0]
        elif bug and rng.random() < 0.6:
            points = rng.choice((1.0, 2.0, 3.0))
        tech = [team.primary if rng.random() < 0.65 else rng.choice(self.techs)]
        if rng.random() < 0.25:
            other = rng.choice(self.techs)
            if other not in tech:
                tech.append(other)
        labels: list[str] = []
        if rng.random() < 0.2:
            labels.append(rng.choice(FLAVOUR_LABELS))
        if rng.random() < 0.25:
            labels.append(team.name)
        if tech[0] == team.primary and team.home_repos and rng.random() < 0.7:
            repo = rng.choice(team.home_repos)
        else:
            candidates = self.repos_of[tech[0]]
            libs = [r for r in candidates if not self.org.repos[r].deployable]
            deployable = [r for r in candidates if self.org.repos[r].deployable]
            repo = rng.choice(libs if libs and rng.random() < 0.15 else deployable or candidates)
        t = Ticket(
            seq=len(self.tickets),
            kind=kind,
            created=self.clock.epoch(created_w),
            priority=priority,
            points=points,
            tech=tech,
            labels=labels,
            repo=repo,
            engineer=rng.choice(team.devs),
        )
        t.tech_field = rng.random() >= 0.05
        t.add(t.created, CREATED)
        self.tickets.append(t)
        return t

    def cancel(self, t: Ticket, w: float) -> None:
        t.add(self.clock.epoch(w), DONE_STATUS, self.project.cancelled)

    def idea(self, created_w: float) -> None:
        """A backlog item nobody starts: half are cancelled, some planned then descoped."""
        rng, clock = self.rng, self.clock
        t = self.ticket(rng.choice(("story", "task")), created_w)
        r = rng.random()
        if r < 0.5:
            self.cancel(t, created_w + rng.uniform(5, 60) * DAY_W)
        elif r < 0.7 and self.team.sprints:  # committed to the next sprint, then descoped
            i = bisect_right(self.sprint_starts, t.created + 86_400)
            if i < len(self.team.sprints):
                sprint = self.team.sprints[i]
                self.sprints(t, self.planning(sprint, t.created), (sprint.jira_id,))
                dropped = clock.epoch(clock.w_of(sprint.start) + rng.uniform(1, 8) * DAY_W)
                self.sprints(t, dropped, ())

    def sprints(self, t: Ticket, at: int, ids: tuple[str, ...]) -> None:
        t.sprint_lists.append(ids)
        t.add(at, SPRINT, len(t.sprint_lists) - 1)

    def duration(self, stage: str, active: bool, t: Ticket) -> float:
        median, sigma = DURATIONS[(stage, active)]
        median *= self.team.speed
        if stage == "dev" and active:
            median *= ((t.points or 3.0) / 3.0) ** 0.5
        if t.kind == "bug":
            median *= 0.6
        if stage == self.team.bottleneck and not active:
            median *= 1.7
        return max(rng_lognormal(self.rng, median, sigma) * DAY_W, 300.0)

    def flow(self, t: Ticket, start: float, *, skip_ba: bool, skip_uat: bool) -> None:
        rng, clock, project, team = self.rng, self.clock, self.project, self.team
        epoch = clock.epoch
        statuses = project.statuses
        dropped = {"ba"} if skip_ba else set()
        if skip_uat:
            dropped.add("uat")
        if t.kind == "spike":
            dropped |= {"code_review", "qa", "uat"}
        steps = [i for i in project.steps if statuses[i].stage not in dropped]
        cancel_after = rng.randrange(len(steps)) if rng.random() < 0.015 else -1
        flaggable = [k for k, i in enumerate(steps) if statuses[i].stage in ("dev", "qa")]
        flag_step = rng.choice(flaggable) if flaggable and rng.random() < 0.12 else -1
        qa = rng.choice(team.qas)
        roles = {
            "ba": team.ba,
            "dev": t.engineer,
            "code_review": t.engineer,
            "qa": qa,
            "uat": team.po,
        }
        w, assignee = start, -1
        for k, i in enumerate(steps):
            status = statuses[i]
            who = -1
            if status.active:
                person = roles[status.stage]
                assert person is not None
                who = self.person_index(person)
            new = who if who != -1 and who != assignee else -1
            at = epoch(w)
            t.add(at, STATUS, i, new)
            if new != -1:
                assignee = new
            d = self.duration(status.stage, status.active, t)
            if status.stage == "dev" and status.active and t.dev_start is None:
                t.dev_start = at
            if k == flag_step:
                flagged = w + d * rng.uniform(0.1, 0.8)
                blocked = min(max(rng_lognormal(rng, 1.3, 0.6), 0.5), 4.0) * DAY_W
                blocker = -1
                if rng.random() < 0.7:
                    others = [x for x in range(len(self.org.tech)) if x != team.primary]
                    blocker = rng.choice(others or [team.primary])
                t.add(epoch(flagged), FLAG_ON, blocker)
                t.add(epoch(flagged + blocked), FLAG_OFF)
                d += blocked
            end = w + d
            if status.active and t.kind != "bug":
                t.stays.append((status.stage, at, epoch(end)))
            if status.stage == "code_review" and t.review is None:
                t.review = (at, epoch(end))
            w = end
            if k == cancel_after:
                self.cancel(t, w)
                self.plan(t, epoch(start), epoch(w))
                return
        t.add(epoch(w), DONE_STATUS, project.done)
        t.done_at = epoch(w)
        if rng.random() < 0.04:  # re-opened: back to QA, then done again
            w += max(rng_lognormal(rng, 0.8, 0.7) * DAY_W, 600)
            t.add(epoch(w), STATUS, project.qa_active, self.person_index(qa))
            w += max(rng_lognormal(rng, 0.6, 0.6) * DAY_W, 600)
            t.add(epoch(w), DONE_STATUS, project.done)
        self.plan(t, epoch(start), epoch(w))

    def planning(self, sprint: Sprint, created: int) -> int:
        """When an item is planned into ``sprint`` before it starts: at refinement or
        planning in the three working days before (after its creation)."""
        rng, clock = self.rng, self.clock
        at = clock.epoch(clock.w_of(sprint.start) - rng.uniform(0.3, 3.0) * DAY_W)
        return max(at, created + rng.randint(60, 3600))

    def plan(self, t: Ticket, start: int, finish: int) -> None:
        """Sprint history: planned into the sprint it starts in (usually before the sprint
        starts, else added mid-sprint), sometimes first committed to the sprint before and
        descoped; carried over into each next sprint when a sprint closes unfinished."""
        sprints = self.team.sprints
        if not sprints:
            return
        rng, clock = self.rng, self.clock
        k = max(bisect_right(self.sprint_starts, start) - 1, 0)
        sprint = sprints[k]
        last = t.created
        if k > 0 and t.created < sprints[k - 1].start - 86_400 and rng.random() < 0.06:
            prev = sprints[k - 1]
            self.sprints(t, self.planning(prev, t.created), (prev.jira_id,))
            last = clock.epoch(clock.w_of(prev.start) + rng.uniform(1, 8) * DAY_W)
            self.sprints(t, last, ())
        if t.created < sprint.start - 86_400 and rng.random() < 0.8:
            at = max(self.planning(sprint, t.created), last + 60)
        else:  # added after the sprint started (scope change)
            at = max(start - rng.randint(180, 1200), last + 60)
        chosen = [sprint.jira_id]
        self.sprints(t, at, tuple(chosen))
        for prev, nxt in zip(sprints[k:], sprints[k + 1 :], strict=False):
            if nxt.start >= finish or nxt.start > self.win.sim_end or rng.random() < 0.15:
                break  # done, or sent back to the backlog when the sprint closed
            chosen.append(nxt.jira_id)
            at = max(prev.end + rng.randint(300, 3600), at + 60)  # when the sprint closes
            self.sprints(t, at, tuple(chosen))

    def bug(self, stories: list[Ticket]) -> None:
        rng, clock = self.rng, self.clock
        found = rng.choices(FOUND_STAGES, FOUND_WEIGHTS)[0]
        anchor: Ticket | None = None
        created_w = -1.0
        for _ in range(8):
            story = rng.choice(stories)
            if found == "production":
                if story.done_at is not None:
                    anchor = story
                    created_w = clock.w_of(story.done_at) + rng_lognormal(rng, 4, 0.9) * DAY_W
                    break
                continue
            stays = [s for s in story.stays if s[0] == found]
            if stays:
                _, enter, leave = rng.choice(stays)
                lo, hi = clock.w_of(enter), clock.w_of(leave)
                anchor, created_w = story, lo + (hi - lo) * rng.uniform(0.1, 0.9)
                break
        if anchor is None:
            story = rng.choice(stories)
            created_w = clock.w_of(story.created) + rng.uniform(1, 10) * DAY_W
        t = self.ticket("bug", created_w, bug=True)
        t.found, t.linked = found, anchor
        limit = DEFECT_ORDER.index(found)
        if rng.random() < 0.7:
            options = [s for s in INTRODUCED if DEFECT_ORDER.index(s) <= limit]
            stage = rng.choices(options, [INTRODUCED[s] for s in options])[0]
            at_w = created_w
            if rng.random() < 0.6:
                t.intro_at_creation = DEFECT_ORDER.index(stage)
            else:
                at_w = created_w + rng.uniform(0.5, 5) * DAY_W
                t.add(clock.epoch(at_w), INTRO, DEFECT_ORDER.index(stage))
            if rng.random() < 0.5:
                t.root_cause = rng.choice(ROOT_CAUSES)
            others = [s for s in options if s != stage]
            if others and rng.random() < 0.10:  # reclassified after root-cause analysis
                other = DEFECT_ORDER.index(rng.choice(others))
                t.add(clock.epoch(at_w + rng.uniform(2, 10) * DAY_W), INTRO, other)
        urgent = t.priority in ("Highest", "High")
        start = created_w + max(rng_lognormal(rng, 0.4 if urgent else 1.5, 0.8) * DAY_W, 1200)
        if rng.random() < 0.03:
            self.cancel(t, start)
            return
        self.flow(t, start, skip_ba=rng.random() < 0.7, skip_uat=rng.random() < 0.3)


def rng_lognormal(rng: random.Random, median: float, sigma: float) -> float:
    return median * math.exp(rng.gauss(0.0, sigma))


# --- rows --------------------------------------------------------------------------------------


class Sink:
    """COPY text of one table, as joined chunks."""

    def __init__(self, table: str) -> None:
        self.table = table
        self.rows: list[str] = []
        self.chunks: list[str] = []
        self.count = 0

    def compact(self, force: bool = False) -> None:
        if self.rows and (force or len(self.rows) >= 50_000):
            self.count += len(self.rows)
            self.chunks.append("".join(self.rows))
            self.rows.clear()


@dataclass(slots=True)
class PullRequest:
    repo: int
    opened: int
    closed: int
    merged: bool
    author: Person
    branch: str
    ticket: str | None
    method: str | None
    stream: str | None
    reviews: list[tuple[int, Person, str]]
    added: int
    removed: int
    files: int
    head: str
    merge: str
    number: int = 0


class Writer:
    """Builds every table's rows from the simulation."""

    def __init__(self, org: Org, clock: Clock, win: Window, seed: int) -> None:
        self.org, self.clock, self.win, self.seed = org, clock, win, seed
        self.sinks = {t: Sink(t) for t in EVENT_TABLES}
        self.ids = {t: id_source(seed, t) for t in EVENT_TABLES}
        self.stamp = Stamp(win.start - 86_400, win.until + 86_400)
        self.prs: list[PullRequest] = []
        self.sprints_seen: dict[str, Sprint] = {}
        self.rng = random.Random(f"dpp-bench:{seed}:github")
        self.run = 0  # CI/CD run counter

    def received(self, t: int) -> str:
        return self.stamp(t + 1 + (t * 7919) % 23)

    # -- Jira ------------------------------------------------------------------------------------

    def team(self, team: Team, tickets: list[Ticket]) -> None:
        assert team.project is not None
        statuses = team.project.statuses
        stamp, received, win = self.stamp, self.received, self.win
        start, until = win.start, win.until
        wie = self.sinks["work_item_events"].rows.append
        fch = self.sinks["work_item_field_changes"].rows.append
        dfe = self.sinks["defect_events"].rows.append
        wid = self.ids["work_item_events"]
        fid = self.ids["work_item_field_changes"]
        did = self.ids["defect_events"]
        people = [p.jira for p in team.members] + [team.po.jira if team.po else N]
        sprint_of = {s.jira_id: s for s in team.sprints}
        tech_ids = self.org.tech_ids
        stream = team.stream_id
        backlog = statuses[team.project.backlog].text
        for t in tickets:
            if t.created > until:
                continue
            techs = [tech_ids[x] for x in t.tech] if t.tech_field else [N]
            tech_array = "{" + ",".join(techs) + "}" if t.tech_field else N
            points = N if t.points is None else f"{t.points:g}"
            labels = "{" + ",".join(t.labels) + "}"
            tail = (
                f"jira\t{stream}\t{techs[0]}\t{t.key}\t{t.kind}\t{points}\t{t.priority}\t"
                f"{labels}\t{tech_array}\n"
            )
            ftail = f"jira\t{stream}\t{techs[0]}\t{t.key}\n"
            bug = t.kind == "bug"
            dtail, intro, root = "", -1, N
            if bug:
                linked = t.linked.key if t.linked is not None else N
                dtail = (
                    f"jira\t{stream}\t{techs[0]}\t{t.key}\t{SEVERITY[t.priority]}\t{t.found}\t"
                    f"{linked}\n"
                )
                intro = t.intro_at_creation
                root = t.root_cause if intro >= 0 and t.root_cause else N
            status = backlog
            assignee, sprint_uuid, sprints = N, N, "[]"
            for at, _, kind, a, b in sorted(t.changes):
                if at > until:
                    break
                if at < start:
                    continue
                ts, rc = stamp(at), received(at)
                if kind in (STATUS, DONE_STATUS):
                    if b != -1 and people[b] != assignee:
                        fch(
                            f"{fid()}\t{ts}\t{rc}\tassignee\t{_json(assignee)}\t"
                            f"{_json(people[b])}\t{ftail}"
                        )
                        assignee = people[b]
                    new_status = statuses[a].text
                    wie(
                        f"{wid()}\t{ts}\t{rc}\ttransitioned\t{status}\t{new_status}\t{assignee}\t"
                        f"{sprint_uuid}\t{N}\t{tail}"
                    )
                    status = new_status
                    if kind == DONE_STATUS:
                        wie(
                            f"{wid()}\t{ts}\t{rc}\tcompleted\t{N}\t{N}\t{status}\t{assignee}\t"
                            f"{sprint_uuid}\t{N}\t{tail}"
                        )
                elif kind == CREATED:
                    status = backlog
                    wie(
                        f"{wid()}\t{ts}\t{rc}\tcreated\t{N}\t{N}\t{status}\t{assignee}\t"
                        f"{sprint_uuid}\t{N}\t{tail}"
                    )
                    if bug:
                        dfe(f"{did()}\t{ts}\t{rc}\tlogged\t{N}\t{root}\t{dtail}")
                        if intro >= 0:
                            dfe(
                                f"{did()}\t{ts}\t{rc}\tattributed\t{DEFECT_ORDER[intro]}\t"
                                f"{root}\t{dtail}"
                            )
                elif kind == SPRINT:
                    ids = t.sprint_lists[a]
                    new = "[" + ", ".join(f'"{i}"' for i in ids) + "]"
                    fch(f"{fid()}\t{ts}\t{rc}\tsprint\t{sprints}\t{new}\t{ftail}")
                    sprints = new
                    if ids:
                        current = sprint_of[ids[-1]]
                        sprint_uuid = current.uuid
                        for i in ids:
                            self.sprints_seen.setdefault(i, sprint_of[i])
                    else:
                        sprint_uuid = N
                elif kind == FLAG_ON:
                    blocker = tech_ids[a] if a >= 0 else N
                    wie(
                        f"{wid()}\t{ts}\t{rc}\tblocked\t{N}\t{N}\t{status}\t{assignee}\t"
                        f"{sprint_uuid}\t{blocker}\t{tail}"
                    )
                elif kind == FLAG_OFF:
                    wie(
                        f"{wid()}\t{ts}\t{rc}\tunblocked\t{N}\t{N}\t{status}\t{assignee}\t"
                        f"{sprint_uuid}\t{N}\t{tail}"
                    )
                elif kind == INTRO and bug:
                    event = "attributed" if intro < 0 else "reclassified"
                    intro = a
                    root = t.root_cause or N
                    dfe(f"{did()}\t{ts}\t{rc}\t{event}\t{DEFECT_ORDER[a]}\t{root}\t{dtail}")
        for sink in ("work_item_events", "work_item_field_changes", "defect_events"):
            self.sinks[sink].compact()
        self.plan_prs(team, tickets)

    # -- pull requests -----------------------------------------------------------------------

    def plan_prs(self, team: Team, tickets: list[Ticket]) -> None:
        rng, clock, repos = self.rng, self.clock, self.org.repos
        for t in tickets:
            if t.review is None or t.created > self.win.until or rng.random() > 0.93:
                continue
            begin, end = t.review
            style = rng.choices(("branch", "title", "none"), (85, 5, 10))[0]
            slug = "-".join(rng.sample(SLUG_WORDS, 2))
            if style == "branch":
                if t.kind == "bug":
                    prefix = "hotfix/" if t.priority == "Highest" else "bugfix/"
                elif t.kind == "task" and rng.random() < 0.15:
                    prefix = "chore/"
                else:
                    prefix = "feature/"
                branch = ("" if rng.random() < 0.15 else prefix) + f"{t.key}-{slug}"
                key, method = t.key, "branch"
            elif style == "title":
                branch, key, method = f"feature/{slug}", t.key, "title"
            else:
                branch, key, method = rng.choice(("fix-", "wip-", "")) + slug, None, None
            opened = begin - rng.randint(0, 5400)
            if t.dev_start is not None:
                opened = max(opened, t.dev_start + 600)
            closed = max(end - rng.randint(120, 1800), opened + 1200)
            stream = team.stream_id if key else None
            if rng.random() < 0.04 and t.dev_start is not None and t.dev_start + 3600 < opened:
                lo, hi = clock.w_of(t.dev_start), clock.w_of(opened)
                first = clock.epoch(lo + (hi - lo) * rng.uniform(0.1, 0.5))
                gone = max(clock.epoch(lo + (hi - lo) * rng.uniform(0.6, 0.95)), first + 600)
                self.pr(
                    team,
                    t.repo,
                    t.engineer,
                    branch + "-first-try",
                    key,
                    method,
                    stream,
                    first,
                    gone,
                    merged=False,
                )
            self.pr(
                team, t.repo, t.engineer, branch, key, method, stream, opened, closed, merged=True
            )
            if len(t.tech) > 1 and rng.random() < 0.3:  # a second change in another repository
                repo = rng.choice([i for i, r in enumerate(repos) if r.tech == t.tech[1]])
                lo, hi = clock.w_of(opened), clock.w_of(closed)
                second = clock.epoch(lo + (hi - lo) * rng.uniform(0.05, 0.5))
                done = max(clock.epoch(lo + (hi - lo) * rng.uniform(0.6, 0.95)), second + 900)
                self.pr(
                    team,
                    repo,
                    rng.choice(team.devs),
                    branch + "-part-2",
                    key,
                    method,
                    stream,
                    second,
                    done,
                    merged=True,
                )

    def pr(
        self,
        team: Team,
        repo: int,
        author: Person,
        branch: str,
        key: str | None,
        method: str | None,
        stream: str | None,
        opened: int,
        closed: int,
        *,
        merged: bool,
    ) -> None:
        rng, clock = self.rng, self.clock
        added = max(1, int(rng_lognormal(rng, 80, 1.0)))
        uid = f"{self.seed}:{len(self.prs)}"
        pr = PullRequest(
            repo=repo,
            opened=opened,
            closed=closed,
            merged=merged,
            author=author,
            branch=branch,
            ticket=key,
            method=method,
            stream=stream,
            reviews=[],
            added=added,
            removed=int(added * rng.uniform(0.05, 0.6)),
            files=min(1 + added // 40, 60),
            head=sha40(f"{uid}:head"),
            merge=sha40(f"{uid}:merge"),
        )
        pool = [p for p in team.devs if p != author] or team.devs
        if merged:
            states = rng.choices(REVIEW_PATTERNS, REVIEW_WEIGHTS)[0]
        else:
            states = rng.choice((("commented",), ("changes_requested",), ()))
        first = team.dominant if team.dominant in pool and rng.random() < 0.6 else None
        first = first or rng.choice(pool)
        lo, hi = clock.w_of(opened), clock.w_of(closed)
        cuts = sorted(rng.uniform(0.05, 0.95) for _ in states)
        for i, (state, cut) in enumerate(zip(states, cuts, strict=True)):
            reviewer = first
            if i > 0 and (states[0] == "approved" or rng.random() < 0.3):
                reviewer = rng.choice([p for p in pool if p != first] or pool)
            at = min(max(clock.epoch(lo + (hi - lo) * cut), opened + 60), closed - 60) + i
            pr.reviews.append((at, reviewer, state))
        if rng.random() < 0.03:  # the author comments on their own PR (not a review)
            at = min(
                max(clock.epoch(lo + (hi - lo) * rng.uniform(0.1, 0.9)), opened + 30), closed - 30
            )
            pr.reviews.append((at, author, "commented"))
            pr.reviews.sort(key=lambda r: r[0])
            for i in range(1, len(pr.reviews)):  # one submission per second at most
                if pr.reviews[i][0] <= pr.reviews[i - 1][0]:
                    at, who, state = pr.reviews[i]
                    pr.reviews[i] = (pr.reviews[i - 1][0] + 1, who, state)
        self.prs.append(pr)

    def chores(self, teams: list[Team]) -> None:
        """Key-less PRs outside tickets: dependency bumps and small chores (~6 %)."""
        rng, clock, win = self.rng, self.clock, self.win
        busy = [1] * len(self.org.repos)
        for p in self.prs:
            busy[p.repo] += 1
        by_tech: dict[int, list[Team]] = {}
        for t in teams:
            by_tech.setdefault(t.primary, []).append(t)
        w0, w1 = clock.w_of(win.start), clock.w_of(win.until)
        for _ in range(round(len(self.prs) * 0.06)):
            repo = rng.choices(range(len(self.org.repos)), busy)[0]
            team = rng.choice(by_tech.get(self.org.repos[repo].tech) or teams)
            w = w0 + rng.random() * (w1 - w0)
            opened = clock.epoch(w)
            closed = clock.epoch(w + max(rng_lognormal(rng, 0.3, 0.9) * DAY_W, 900))
            if rng.random() < 0.5:
                package = rng.choice(
                    ("lodash", "requests", "jackson-databind", "pydantic", "axios")
                )
                version = f"{rng.randint(1, 9)}.{rng.randint(0, 30)}.{rng.randint(0, 9)}"
                branch, author = f"dependabot/{package}-{version}", self.org.bot
            else:
                branch = "chore/" + "-".join(rng.sample(SLUG_WORDS, 2))
                author = rng.choice(team.devs)
            self.pr(
                team,
                repo,
                author,
                branch,
                None,
                None,
                None,
                opened,
                closed,
                merged=rng.random() > 0.05,
            )

    def write_prs(self) -> None:
        """Number the PRs per repository in order of opening, then write their events."""
        rng = random.Random(f"dpp-bench:{self.seed}:numbers")
        numbers = [rng.randint(100, 2500) for _ in self.org.repos]
        order = sorted(range(len(self.prs)), key=lambda i: (self.prs[i].opened, i))
        for i in order:
            pr = self.prs[i]
            numbers[pr.repo] += 1
            pr.number = numbers[pr.repo]
        stamp, received, start, until = self.stamp, self.received, self.win.start, self.win.until
        sink = self.sinks["pr_events"]
        out, pid = sink.rows.append, self.ids["pr_events"]
        repos = self.org.repos
        for i in order:
            pr = self.prs[i]
            repo = repos[pr.repo]
            tail = (
                f"github\t{pr.stream or N}\t{repo.tech_id}\t{pr.number}\t{repo.repo_id}\t"
                f"{repo.org}\t{repo.name}\t{pr.author.github}\t{pr.branch}\t{pr.ticket or N}\t"
                f"{repo.branch}\t{pr.added}\t{pr.removed}\t{pr.files}\t{pr.head}\t"
                f"{pr.method or N}\n"
            )
            if start <= pr.opened <= until:
                ts = stamp(pr.opened)
                out(f"{pid()}\t{ts}\t{received(pr.opened)}\topened\t{N}\t{N}\t0\t{N}\t{tail}")
            discussed = 0
            for at, reviewer, state in pr.reviews:
                if state != "approved":
                    discussed += 1
                if not start <= at <= until:
                    continue
                ts, rc = stamp(at), received(at)
                row = f"\t{ts}\t{rc}\t%s\t{reviewer.github}\t{state}\t{discussed * 2}\t{N}\t{tail}"
                out(pid() + row % "review_submitted")
                if state != "commented":
                    out(pid() + row % state)
            if start <= pr.closed <= until:
                ts = stamp(pr.closed)
                event = "merged" if pr.merged else "closed"
                comments = discussed * 2 + (pr.number % 3)
                out(
                    f"{pid()}\t{ts}\t{received(pr.closed)}\t{event}\t{N}\t{N}\t{comments}\t"
                    f"{pr.merge}\t{tail}"
                )
            if len(sink.rows) >= 50_000:
                sink.compact()
        sink.compact(force=True)

    # -- CI/CD, incidents, pulse -------------------------------------------------------------

    def cicd(self) -> list[tuple[int, int]]:
        """Builds on every merge, staging and production deploys of deployable repositories;
        returns the production deploys (epoch, repository) incidents can follow."""
        repos = self.org.repos
        merges: list[list[PullRequest]] = [[] for _ in repos]
        for pr in self.prs:
            if pr.merged:
                merges[pr.repo].append(pr)
        channels = random.Random(f"dpp-bench:{self.seed}:channels")
        via_api = [channels.random() >= 0.5 for _ in repos]
        shipped: list[tuple[int, int]] = []
        sink = self.sinks["cicd_events"]
        for r, repo in enumerate(repos):
            rng = random.Random(f"dpp-bench:{self.seed}:deploys:{repo.full_name}")
            prs = sorted(merges[r], key=lambda p: (p.closed, p.number))
            self.builds(r, repo, prs, rng)
            if repo.deployable:
                shipped += self.deploys(r, repo, prs, via_api[r], rng)
            if len(sink.rows) >= 50_000:
                sink.compact()
        sink.compact(force=True)
        return shipped

    def cicd_row(
        self,
        repo: Repo,
        at: int,
        source: str,
        event_type: str,
        pipeline: str,
        run_id: str,
        env: str,
        status: str,
        duration: int,
        pr: PullRequest,
        trigger: str,
        version: str,
        reason: str,
        number: str | None,
    ) -> None:
        """One cicd_events row; the PR's ticket and stream as the worker links them (a
        deploy naming a commit of a ticket-linked PR takes its number, ticket and stream)."""
        if not self.win.start <= at <= self.win.until:
            return
        stream, linked, ticket = N, number or N, N
        if pr.ticket is not None:
            stream, linked, ticket = pr.stream or N, number or str(pr.number), pr.ticket
        self.sinks["cicd_events"].rows.append(
            f"{self.ids['cicd_events']()}\t{self.stamp(at)}\t{self.received(at)}\t{source}\t"
            f"{event_type}\t{pipeline}\t{run_id}\t{repo.repo_id}\t{repo.tech_id}\t{stream}\t"
            f"{env}\t{status}\t{duration}\t{pr.merge}\t{linked}\t{ticket}\t{trigger}\t{version}\t"
            f"{reason}\n"
        )

    def builds(self, r: int, repo: Repo, prs: list[PullRequest], rng: random.Random) -> None:
        """GitHub ``workflow_run`` on each merge → ``build_completed`` in environment 'ci'."""
        pipeline = f"{repo.full_name}:workflow:{10_000_000 + r * 97}"
        for pr in prs:
            at = pr.closed + rng.randint(240, 900)
            self.run += 1
            status = "success" if rng.random() < 0.9 else "failure"
            duration = at - pr.closed - rng.randint(5, 60)
            run_id = f"{9_000_000_000 + self.run * 11}:1"
            self.cicd_row(
                repo,
                at,
                "github",
                "build_completed",
                pipeline,
                run_id,
                "ci",
                status,
                duration,
                pr,
                "push",
                N,
                N,
                str(pr.number),
            )

    def deploys(
        self, r: int, repo: Repo, prs: list[PullRequest], api: bool, rng: random.Random
    ) -> list[tuple[int, int]]:
        """Deploy slots at 10:30, 13:30 and 16:00 local: when merges wait, ship the latest
        (staging, then production; some fail, some are rolled back). Idle slots sometimes
        carry a configuration-only deploy (API repositories)."""
        clock, win = self.clock, self.win
        first_day = -(-clock.w_of(win.start) // DAY_W)
        last_day = clock.w_of(win.until) // DAY_W
        slots = max(last_day - first_day + 1, 1) * len(DEPLOY_SLOTS)
        in_window = sum(1 for p in prs if win.start <= p.closed <= win.until)
        p_slot = min(max(in_window / slots * 1.3, 0.2), 0.9)
        shipped: list[tuple[int, int]] = []
        done, last = 0, None
        for day in range(first_day, last_day + 1):
            for slot in DEPLOY_SLOTS:
                at = clock.local(day, slot) + rng.randint(-1500, 1500)
                ready = done
                while ready < len(prs) and prs[ready].closed < at - 600:
                    ready += 1
                if ready == done:
                    if api and last is not None and rng.random() < 0.03:
                        self.deploy(repo, True, rng, "production", at, False, last, "config", None)
                    continue
                if rng.random() > p_slot:
                    continue
                head = prs[ready - 1]
                trigger = rng.choices(("push", "manual", "schedule"), (78, 17, 5))[0]
                given = str(head.number) if api and rng.random() < 0.5 else None
                staged = rng.random() >= 0.05
                when = at - rng.randint(1200, 3600)
                self.deploy(repo, api, rng, "staging", when, not staged, head, trigger, given)
                if not staged:
                    continue  # the merges wait for a later slot
                if rng.random() < 0.06:  # a failed production attempt, retried
                    self.deploy(repo, api, rng, "production", at, True, head, trigger, given)
                    at += rng.randint(1200, 3600)
                pipeline, run_id, source = self.deploy(
                    repo, api, rng, "production", at, False, head, trigger, given
                )
                if win.start <= at <= win.until:
                    shipped.append((at, r))
                if api and rng.random() < 0.04:  # rolled back (only the API can say so)
                    back = at + rng.randint(900, 5400)
                    self.cicd_row(
                        repo,
                        back,
                        source,
                        "rollback_completed",
                        pipeline,
                        run_id,
                        "production",
                        "rolled_back",
                        rng.randint(60, 600),
                        head,
                        trigger,
                        f"{head.merge[:7]}-{self.run}",
                        N,
                        given,
                    )
                done, last = ready, head
        return shipped

    def deploy(
        self,
        repo: Repo,
        api: bool,
        rng: random.Random,
        env: str,
        at: int,
        fail: bool,
        head: PullRequest,
        trigger: str,
        given: str | None,
    ) -> tuple[str, str, str]:
        """One deploy run, reported through the deployment API or GitHub deployment_status;
        returns its (pipeline_id, pipeline_run_id, source)."""
        self.run += 1
        duration = rng.randint(180, 720)
        reason = rng.choice(FAILURES) if fail else N
        event_type = "deploy_failed" if fail else "deploy_completed"
        if api:
            pipeline = f"api:{repo.full_name.lower()}:{env}"
            run_id, source = str(7_000_000 + self.run * 13), "deployment"
            status, version = ("failed" if fail else "success"), f"{head.merge[:7]}-{self.run}"
        else:
            pipeline = f"github-deployments:{repo.full_name}"
            run_id, source = str(1_200_000_000 + self.run * 17), "github"
            status, version, trigger, given = (
                ("failure" if fail else "success"),
                repo.branch,
                N,
                None,
            )
        self.cicd_row(
            repo,
            at,
            source,
            event_type,
            pipeline,
            run_id,
            env,
            status,
            duration,
            head,
            trigger,
            version,
            reason,
            given,
        )
        return pipeline, run_id, source

    def incidents(self, shipped: list[tuple[int, int]]) -> None:
        win, repos = self.win, self.org.repos
        stamp, received = self.stamp, self.received
        sink = self.sinks["incident_events"]
        out, iid = sink.rows.append, self.ids["incident_events"]
        found: list[tuple[int, int, str, str, int, str]] = []
        weeks = (win.until - win.start) / (7 * 86_400)
        for t in range(len(self.org.tech)):
            rng = random.Random(f"dpp-bench:{self.seed}:incidents:{t}")
            services = [i for i, r in enumerate(repos) if r.tech == t and r.target]
            caused = [d for d in shipped if repos[d[1]].tech == t]
            if not services:
                continue
            for _ in range(poisson(rng, weeks * 0.4)):
                if caused and rng.random() < 0.45:
                    at, r = rng.choice(caused)
                    opened = at + rng.randint(180, 3300)
                else:
                    opened = win.start + int(rng.random() * (win.until - win.start))
                    r = rng.choice(services)
                severity = rng.choices(("critical", "high", "medium", "low"), (5, 20, 45, 30))[0]
                median = 45 if severity == "critical" else 120
                minutes = min(max(rng_lognormal(rng, median, 1.1), 10), 2 * 24 * 60)
                kind = rng.choice(("alarm", "incident"))
                target = repos[r].target or ""
                text = rng.choice(INCIDENT_TEXT).format(s=target.split(":")[-1])
                found.append((opened, r, severity, kind, opened + int(minutes * 60), text))
        found.sort()
        per_year: dict[int, int] = {}
        for opened, r, severity, kind, resolved, text in found:
            if opened > win.until:
                continue
            year = datetime.fromtimestamp(opened, UTC).year
            per_year[year] = per_year.get(year, 0) + 1
            incident = f"INC-{year}-{per_year[year]:04d}"
            repo = repos[r]
            head = f"monitoring\t{repo.tech_id}"
            tail = f"{incident}\t{repo.target}\t{severity}\t{text}"
            start_event = "alarm_triggered" if kind == "alarm" else "incident_opened"
            end_event = "alarm_resolved" if kind == "alarm" else "incident_resolved"
            out(
                f"{iid()}\t{stamp(opened)}\t{received(opened)}\t{head}\t{start_event}\t{tail}\t"
                f"{N}\t{N}\n"
            )
            if resolved <= win.until:
                minutes = max(0, int((resolved - opened) / 60 + 0.5))
                ts = stamp(resolved)
                out(
                    f"{iid()}\t{ts}\t{received(resolved)}\t{head}\t{end_event}\t{tail}\t{ts}\t"
                    f"{minutes}\n"
                )
        sink.compact(force=True)

    def pulse(self, teams: list[Team]) -> None:
        clock, win = self.clock, self.win
        stamp, received = self.stamp, self.received
        sink = self.sinks["pulse_responses"]
        out, pid = sink.rows.append, self.ids["pulse_responses"]
        first = datetime.fromtimestamp(win.start, UTC).date().replace(day=1)
        last = datetime.fromtimestamp(win.until, UTC).date()
        months: list[date] = []
        while first <= last:
            months.append(first)
            first = (first + timedelta(days=32)).replace(day=1)
        day_index = {d: i for i, d in enumerate(clock.days)}
        for team in teams:
            rng = random.Random(f"dpp-bench:{self.seed}:pulse:{team.index}")
            means = [rng.uniform(2.6, 4.2) for _ in range(3)]
            for month in months:
                means = [min(max(m + rng.gauss(0, 0.25), 1.8), 4.6) for m in means]
                days = [
                    day_index[d]
                    for d in (month + timedelta(days=k) for k in range(7))
                    if d in day_index
                ]
                if not days:
                    continue
                k = min(round(team.size * rng.uniform(0.6, 0.8)), len(team.members))
                for person in rng.sample(team.members, k):
                    i = rng.choice(days)
                    at = clock.epoch(i * DAY_W + rng.triangular(0, DAY_W, 0.4 * DAY_W))
                    scores = [min(max(round(rng.gauss(m, 0.8)), 1), 5) for m in means]
                    note = rng.choice(PULSE_COMMENTS) if rng.random() < 0.2 else N
                    if not win.start <= at <= win.until:
                        continue
                    out(
                        f"{pid()}\t{stamp(at)}\t{received(at)}\tsurvey\t{team.stream_id}\t"
                        f"{month:%Y-%m}\t{person.survey}\t{scores[0]}\t{scores[1]}\t"
                        f"{scores[2]}\t{note}\n"
                    )
        sink.compact(force=True)


def _json(value: str) -> str:
    return "null" if value == N else f'"{value}"'


# --- database --------------------------------------------------------------------------------


def recreate_database(url: str) -> None:
    dbname = psycopg.conninfo.conninfo_to_dict(url).get("dbname")
    if not dbname or dbname == "postgres":
        raise SystemExit(f"refusing to drop database {dbname!r}; name a bench database")
    admin = psycopg.conninfo.make_conninfo(url, dbname="postgres")
    with psycopg.connect(admin, autocommit=True) as conn:
        name = sql.Identifier(str(dbname))
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(name))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(name))


def load_config(url: str, config: dict[str, Any], seed: int) -> OrgConfig:
    """Migrate and apply the org config; config-table ids are seeded too."""
    cfg = OrgConfig.model_validate(config)
    engine = make_engine(url)
    try:
        upgrade(engine)
        ids = random.Random(f"dpp-bench:{seed}:config-ids")

        def seeded_uuid4() -> uuid.UUID:
            return uuid.UUID(int=ids.getrandbits(128), version=4)

        with mock.patch.object(uuid, "uuid4", seeded_uuid4), engine.begin() as conn:
            apply_config(conn, cfg)
    finally:
        engine.dispose()
    return cfg


def read_ids(conn: psycopg.Connection[Any], org: Org) -> None:
    streams = dict(conn.execute("SELECT name, stream_id FROM delivery_streams").fetchall())
    techs = dict(conn.execute("SELECT name, stream_id FROM tech_streams").fetchall())
    repos = dict(conn.execute("SELECT full_name, repo_id FROM repositories").fetchall())
    for team in org.teams:
        team.stream_id = streams[team.name].hex
    org.tech_ids = [techs[name].hex for name, _, _ in org.tech]
    for repo in org.repos:
        repo.repo_id = repos[repo.full_name].hex
        repo.tech_id = org.tech_ids[repo.tech]


def copy_rows(conn: psycopg.Connection[Any], table: str, chunks: Sequence[str]) -> None:
    columns = sql.SQL(", ").join(sql.Identifier(c) for c in COLUMNS.get(table, ()))
    stmt = sql.SQL("COPY {} ({}) FROM STDIN").format(sql.Identifier(table), columns)
    with conn.cursor() as cur, cur.copy(stmt) as copy:
        for chunk in chunks:
            copy.write(chunk)


class Loader:
    """COPY each finished table on its own connection in background threads (``workers`` at
    a time), so Postgres ingests while the simulation goes on; with 0 workers the tables are
    loaded one after the other once everything is generated."""

    def __init__(self, url: str, workers: int) -> None:
        self.url = url
        self.pool = ThreadPoolExecutor(max_workers=workers) if workers > 0 else None
        self.jobs: dict[str, Future[float]] = {}
        self.pending: list[tuple[str, list[str]]] = []

    def submit(self, sink: Sink) -> None:
        sink.compact(force=True)
        chunks, sink.chunks = sink.chunks, []
        if self.pool is None:
            self.pending.append((sink.table, chunks))
        else:
            self.jobs[sink.table] = self.pool.submit(self.copy, sink.table, chunks)

    def copy(self, table: str, chunks: list[str]) -> float:
        started = time.perf_counter()
        with psycopg.connect(self.url) as conn:  # commits on leaving the block
            conn.execute("SET session_replication_role = replica")  # FKs are checked after
            conn.execute("SET synchronous_commit = off")
            copy_rows(conn, table, chunks)
        chunks.clear()
        return time.perf_counter() - started

    def wait(self) -> dict[str, float]:
        """Seconds each table's COPY took (overlapping each other and the generation)."""
        out = {table: self.copy(table, chunks) for table, chunks in self.pending}
        out |= {table: job.result() for table, job in self.jobs.items()}
        if self.pool is not None:
            self.pool.shutdown()
        return {table: round(seconds, 2) for table, seconds in out.items()}


def insert_sprints(conn: psycopg.Connection[Any], sprints: Sequence[Sprint], until: int) -> None:
    tz = ZoneInfo(TIME_ZONE)
    rows = []
    for s in sprints:
        state = "closed" if s.end <= until else "active" if s.start <= until else "future"
        rows.append(
            (
                uuid.UUID(s.uuid),
                s.jira_id,
                uuid.UUID(s.stream_id),
                s.name,
                datetime.fromtimestamp(s.start, tz).date(),
                datetime.fromtimestamp(s.end, tz).date(),
                s.goal,
                state,
            )
        )
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO sprints (sprint_id, jira_sprint_id, delivery_stream_id, name,"
            " start_date, end_date, goal, state) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
            rows,
        )


FK_QUERY = """
SELECT c.conrelid::regclass::text, a.attname, c.confrelid::regclass::text, af.attname
FROM pg_constraint c
JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1]
JOIN pg_attribute af ON af.attrelid = c.confrelid AND af.attnum = c.confkey[1]
WHERE c.contype = 'f' AND c.conrelid::regclass::text = ANY(%s)
ORDER BY 1, 2
"""


def check_foreign_keys(conn: psycopg.Connection[Any]) -> None:
    """The load skipped FK triggers: check every event-table foreign key set-based."""
    problems = []
    for table, column, ref, ref_column in conn.execute(FK_QUERY, (list(EVENT_TABLES),)):
        stmt = sql.SQL(
            "SELECT count(*) FROM {t} x WHERE x.{c} IS NOT NULL"
            " AND NOT EXISTS (SELECT 1 FROM {r} y WHERE y.{rc} = x.{c})"
        ).format(
            t=sql.Identifier(table),
            c=sql.Identifier(column),
            r=sql.Identifier(ref),
            rc=sql.Identifier(ref_column),
        )
        row = conn.execute(stmt).fetchone()
        if row and row[0]:
            problems.append(f"{table}.{column}: {row[0]} rows without a {ref} row")
    if problems:
        raise SystemExit("foreign key check failed: " + "; ".join(problems))


# --- main ------------------------------------------------------------------------------------


def parse_until(text: str) -> datetime:
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("--url", default=DEFAULT_URL, help="the bench database (dropped first!)")
    ap.add_argument("--engineers", type=int, default=1000)
    ap.add_argument(
        "--delivery-streams",
        type=int,
        default=None,
        help="number of delivery streams (default: engineers / 10, teams of 8–12)",
    )
    ap.add_argument("--days", type=int, default=730)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--until", default="2026-11-16", help="end of the history (ISO date/time)")
    ap.add_argument(
        "--rate", type=float, default=1.95, help="tickets per team member per week, bugs included"
    )
    ap.add_argument(
        "--load-workers",
        type=int,
        default=2,
        help="tables COPYed at once while generating (0: load after generating)",
    )
    ap.add_argument(
        "--write-config",
        type=Path,
        default=None,
        help="also write the generated org config as YAML here",
    )
    args = ap.parse_args(argv)
    if args.engineers < 8 or args.days < 7:
        ap.error("need at least 8 engineers and 7 days")
    n_streams = args.delivery_streams or max(1, round(args.engineers / 10))
    until = parse_until(args.until)
    win = Window(
        start=int((until - timedelta(days=args.days)).timestamp()),
        until=int(until.timestamp()),
        sim_end=int((until + timedelta(days=RUN_ON_DAYS)).timestamp()),
    )
    summary: dict[str, Any] = {
        "database": psycopg.conninfo.conninfo_to_dict(args.url).get("dbname"),
        "engineers": args.engineers,
        "days": args.days,
        "seed": args.seed,
        "from": datetime.fromtimestamp(win.start, UTC).isoformat(),
        "until": until.isoformat(),
    }
    t0 = time.perf_counter()

    org = build_org(args.engineers, n_streams, args.seed)
    if args.write_config:
        args.write_config.write_text(
            yaml.safe_dump(org.config, sort_keys=False, width=100), encoding="utf-8"
        )
    log(f"database {summary['database']}: recreate, migrate, load the org config")
    recreate_database(args.url)
    load_config(args.url, org.config, args.seed)
    t_setup = time.perf_counter()

    with psycopg.connect(args.url) as conn:
        read_ids(conn, org)
    build_projects(org)
    first = datetime.fromtimestamp(win.start, UTC).date() - timedelta(days=40)
    last = datetime.fromtimestamp(win.sim_end, UTC).date() + timedelta(days=200)
    clock = Clock(first, last, frozenset(date.fromisoformat(d) for d in HOLIDAYS))
    build_sprints(org, args.seed, first, last, datetime.fromtimestamp(win.until, UTC).date())
    writer = Writer(org, clock, win, args.seed)
    loader = Loader(args.url, args.load_workers)
    log(f"simulating {len(org.teams)} delivery streams")
    for team in org.teams:
        tickets = TeamSim(org, team, clock, win, args.rate, args.seed).run()
        writer.team(team, tickets)
    sprints = sorted(writer.sprints_seen.values(), key=lambda s: s.jira_id)
    with psycopg.connect(args.url) as conn:
        insert_sprints(conn, sprints, win.until)
    for table in ("work_item_events", "work_item_field_changes", "defect_events"):
        loader.submit(writer.sinks[table])
    writer.chores(org.teams)
    writer.write_prs()
    loader.submit(writer.sinks["pr_events"])
    shipped = writer.cicd()
    loader.submit(writer.sinks["cicd_events"])
    writer.incidents(shipped)
    loader.submit(writer.sinks["incident_events"])
    writer.pulse(org.teams)
    loader.submit(writer.sinks["pulse_responses"])
    t_gen = time.perf_counter()
    rows = {t: s.count for t, s in writer.sinks.items()}
    log(f"generated {sum(rows.values()):,} rows in {t_gen - t_setup:.1f} s")

    copies = loader.wait()
    t_loaded = time.perf_counter()
    log(f"loaded in {t_loaded - t_gen:.1f} s more: {copies}")
    with psycopg.connect(args.url) as conn:
        check_foreign_keys(conn)
    t_checked = time.perf_counter()
    with psycopg.connect(args.url, autocommit=True) as conn:
        conn.execute("VACUUM (ANALYZE)")
    t_end = time.perf_counter()

    summary |= {
        "org": {
            "delivery_streams": len(org.teams),
            "people": sum(t.size for t in org.teams),
            "tech_streams": len(org.tech),
            "repositories": len(org.repos),
            "deployable_repositories": sum(r.deployable for r in org.repos),
            "jira_projects": len(org.teams),
            "sprints": len(sprints),
        },
        "rows": rows,
        "total_events": sum(rows.values()),
        "seconds": {
            "setup": round(t_setup - t0, 2),  # create, migrate, org config
            "generate": round(t_gen - t_setup, 2),  # while COPYs already run alongside
            "load_after_generate": round(t_loaded - t_gen, 2),
            "fk_check": round(t_checked - t_loaded, 2),
            "vacuum_analyze": round(t_end - t_checked, 2),
            "total": round(t_end - t0, 2),
            "copy_per_table": copies,
        },
    }
    print(json.dumps(summary))  # one line: bench/metrics.py reads the last line
    return 0


if __name__ == "__main__":
    sys.exit(main())
