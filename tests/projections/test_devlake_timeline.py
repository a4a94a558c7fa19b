"""Status timelines against Apache DevLake's issue_trace end-to-end data (an outside oracle).

``../shared/fixtures/devlake/issue_trace/`` holds DevLake's input tables (``issues.csv``,
``issue_changelogs.csv``) and its expected ``issue_status_history.csv`` (README there). Every
issue is replayed through the real path — signed Jira webhooks POSTed to the ingest service,
drained by the worker into ``work_item_events`` — and the timeline the platform builds from the
stored rows must equal DevLake's history entry for entry: same statuses in the same order, the
same start times to the millisecond, the first and current status in the same place.

How DevLake builds the history (``ConvertIssueStatusHistory`` in
``backend/plugins/issue_trace/tasks/issue_status_history_convertor.go``), and so the replay:

- An issue with status changelog items starts in the *from* status of its first item, at the
  issue's ``created_date``; each item (in time order) then starts its *to* status at the item's
  ``created_date``. The replay: ``jira:issue_created`` with ``fields.status`` = that first
  from-status and ``fields.created`` = ``created_date``, then one ``jira:issue_updated`` per
  item whose webhook ``timestamp`` is the item's ``created_date`` in ms since the epoch.
- An issue without status items has one entry: its current status from its creation. DevLake's
  branch for these sets only ``IsFirstStatus`` (never ``IsCurrentStatus``), although that one
  status is also the current one; the expected current flag is read accordingly.
- ``original_*`` values are the tracker's status names (compared here); DevLake's standard
  status (``status``/``from_value``/``to_value``: 等待/待开发/开发中/完成) picks the stage each
  name is mapped to in the test's org config.

One of the 32 issues is a TAPD story (key ``1149308060001017333``, no Jira key); it is replayed
the same way under the fixture project ``EE`` (``fields.project.key``).
"""

from __future__ import annotations

import copy
import csv
import json
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import sqlalchemy as sa
import yaml
from fastapi.testclient import TestClient

from dpp_lib.orgconfig import parse_config
from dpp_lib.projections.work_items import Timeline, build_timeline, item_events
from dpp_lib.settings import Settings
from dpp_lib.store.config_tables import apply_config
from dpp_lib.store.schema import raw_events, work_item_events
from ingest_service.app import create_app
from ingest_service.worker import Worker
from tests.support import FIXTURES, JIRA_FIXTURES, compact, org_config_dict, post_jira

ISSUE_TRACE = FIXTURES / "devlake" / "issue_trace"
CREATED_TEMPLATE = JIRA_FIXTURES / "cloud-story-issue-created.json"
UPDATED_TEMPLATE = JIRA_FIXTURES / "cloud-status-todo-to-inprogress.json"
PROJECT = "EE"  # registered for the fixture org in tests.support.FIXTURE_ORG
SITE = "https://merico.atlassian.net/rest/api/2"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

# DevLake's standard status → (stage, active) of every tracker status standardised to it.
STANDARD_STAGES = {
    "等待": ("backlog", False),  # waiting: Inbox, To Do, Open
    "待开发": ("dev", False),  # Ready for Dev
    "开发中": ("dev", True),  # In Development, In Progress
    "完成": ("done", False),  # Resolved, Closed, 已完成
}

# What DevLake's test data holds (README): a smaller count means a truncated copy.
ISSUE_COUNT, STATUS_ITEM_COUNT, HISTORY_ROW_COUNT = 32, 168, 200


@dataclass(frozen=True)
class StatusItem:
    change_id: str  # the Jira changelog id
    at: datetime
    from_status: str | None
    to_status: str | None


@dataclass(frozen=True)
class Issue:
    devlake_id: str
    jira_id: str
    key: str
    created: datetime
    status: str  # the current status (issues.original_status)
    items: tuple[StatusItem, ...]  # status changelog items, in time order

    @property
    def initial_status(self) -> str | None:
        return self.items[0].from_status if self.items else self.status


@dataclass(frozen=True)
class Entry:
    """One status the item was in: DevLake's history row or the platform's interval."""

    status: str | None
    start: datetime
    first: bool
    current: bool

    def __str__(self) -> str:
        flags = " first" * self.first + " current" * self.current
        return f"{self.status!r} from {self.start.isoformat(timespec='milliseconds')}{flags}"


def _csv(name: str) -> list[dict[str, str]]:
    path = ISSUE_TRACE / name
    assert path.exists(), f"DevLake fixture {path} not found (set DPP_FIXTURES)"
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def _time(raw: str) -> datetime:
    """DevLake's ``2020-06-12T00:13:13.360+00:00`` → aware UTC, whole milliseconds."""
    at = datetime.fromisoformat(raw)
    assert at.tzinfo is not None and at.microsecond % 1000 == 0, raw
    return at.astimezone(UTC)


def _ms(at: datetime) -> int:
    """The Jira webhook ``timestamp``: milliseconds since the epoch."""
    delta = at - EPOCH
    assert delta % timedelta(milliseconds=1) == timedelta(0), at
    return delta // timedelta(milliseconds=1)


def _jira_time(at: datetime) -> str:
    """Jira's own format: ``2020-06-12T00:13:13.360+0000``."""
    return at.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "+0000")


def _name(raw: str) -> str | None:
    return raw or None  # DevLake writes an absent status as ''


@cache
def issues() -> tuple[Issue, ...]:
    items: dict[str, list[StatusItem]] = defaultdict(list)
    for row in _csv("issue_changelogs.csv"):
        if row["field_name"] != "status":  # DevLake's own filter
            continue
        items[row["issue_id"]].append(
            StatusItem(
                change_id=row["id"].split(":")[-2],
                at=_time(row["created_date"]),
                from_status=_name(row["original_from_value"]),
                to_status=_name(row["original_to_value"]),
            )
        )
    out = []
    for row in _csv("issues.csv"):
        ordered = sorted(items.pop(row["id"], []), key=lambda i: i.at)
        times = [i.at for i in ordered]
        assert len(set(times)) == len(times), f"{row['issue_key']}: items at the same time"
        out.append(
            Issue(
                devlake_id=row["id"],
                jira_id=row["id"].rsplit(":", 1)[-1],
                key=row["issue_key"],
                created=_time(row["created_date"]),
                status=row["original_status"],
                items=tuple(ordered),
            )
        )
    assert not items, f"status items of unknown issues: {sorted(items)}"
    return tuple(out)


@cache
def standard_statuses() -> dict[str, str]:
    """Every tracker status name in the CSVs → DevLake's standard status for it."""
    pairs = [(r["original_status"], r["status"]) for r in _csv("issues.csv")]
    pairs += [(r["original_status"], r["status"]) for r in _csv("issue_status_history.csv")]
    for r in _csv("issue_changelogs.csv"):
        if r["field_name"] == "status":
            pairs += [(r["original_from_value"], r["from_value"])]
            pairs += [(r["original_to_value"], r["to_value"])]
    out: dict[str, str] = {}
    for name, standard in pairs:
        if not name:
            continue  # no status at all (a TAPD story's creation), nothing to map
        assert out.setdefault(name, standard) == standard, f"{name!r} standardised two ways"
    return out


def status_stages() -> dict[str, tuple[str, bool]]:
    return {name: STANDARD_STAGES[std] for name, std in standard_statuses().items()}


@cache
def expected_history() -> dict[str, list[Entry]]:
    """DevLake's expected entries per issue key, in time order (first status first)."""
    by_id = {i.devlake_id: i for i in issues()}
    rows: dict[str, list[dict[str, str]]] = defaultdict(list)
    for row in _csv("issue_status_history.csv"):
        rows[row["issue_id"]].append(row)
    assert set(rows) == set(by_id), "history and issues disagree on the issues"
    out = {}
    for devlake_id, history in rows.items():
        issue = by_id[devlake_id]
        if not issue.items:
            # DevLake's no-changelog branch flags the only row first, never current.
            assert len(history) == 1 and history[0]["is_current_status"] == "0", history
        entries = [
            Entry(
                status=_name(r["original_status"]),
                start=_time(r["start_date"]),
                first=r["is_first_status"] == "1",
                current=r["is_current_status"] == "1" or not issue.items,
            )
            for r in history
        ]
        entries.sort(key=lambda e: (e.start, not e.first))
        starts = [(e.start, e.first) for e in entries]
        assert len(set(starts)) == len(starts), f"{issue.key}: entries without an order"
        out[issue.key] = entries
    return out


# --- the replay ---------------------------------------------------------------------------------


@cache
def _template(path: Path) -> dict[str, Any]:
    payload: dict[str, Any] = json.loads(path.read_text())
    return payload


@cache
def _status_ids() -> dict[str, str]:
    return {name: str(10100 + n) for n, name in enumerate(sorted(standard_statuses()))}


def _status_field(name: str | None, template: dict[str, Any]) -> dict[str, Any] | None:
    if name is None:
        return None
    status = copy.deepcopy(template)
    status_id = _status_ids()[name]
    status.update(name=name, id=status_id, self=f"{SITE}/status/{status_id}")
    return status


def _status_item(old: str | None, new: str | None) -> dict[str, Any]:
    ids = _status_ids()
    return {
        "field": "status",
        "fieldtype": "jira",
        "fieldId": "status",
        "from": ids[old] if old else None,
        "fromString": old,
        "to": ids[new] if new else None,
        "toString": new,
    }


def _payload(
    template_path: Path, issue: Issue, *, status: str | None, at: datetime, change_id: str
) -> dict[str, Any]:
    """A copy of a real webhook with the issue, its status, the times and changelog replaced."""
    payload = copy.deepcopy(_template(template_path))
    payload["timestamp"] = _ms(at)
    body = payload["issue"]
    body.update(id=issue.jira_id, key=issue.key, self=f"{SITE}/issue/{issue.jira_id}")
    fields = body["fields"]
    fields["project"]["key"] = PROJECT
    fields["created"] = _jira_time(issue.created)
    fields["updated"] = _jira_time(at)
    fields["status"] = _status_field(status, fields["status"])
    payload["changelog"]["id"] = change_id
    return payload


def created_webhook(issue: Issue) -> dict[str, Any]:
    status = issue.initial_status
    payload = _payload(
        CREATED_TEMPLATE, issue, status=status, at=issue.created, change_id=issue.jira_id
    )
    assert payload["webhookEvent"] == "jira:issue_created"
    payload["changelog"]["items"] = [_status_item(None, status)] if status else []
    return payload


def updated_webhook(issue: Issue, item: StatusItem) -> dict[str, Any]:
    payload = _payload(
        UPDATED_TEMPLATE, issue, status=item.to_status, at=item.at, change_id=item.change_id
    )
    assert payload["webhookEvent"] == "jira:issue_updated"
    payload["changelog"]["items"] = [_status_item(item.from_status, item.to_status)]
    return payload


def load_org(engine: sa.Engine) -> None:
    """The test organisation, with project EE mapping every status of the DevLake data."""
    data = copy.deepcopy(org_config_dict())  # FIXTURE_ORG's dicts are shared: never mutate them
    (project,) = [p for p in data["jira_projects"] if p["key"] == PROJECT]
    project["status_mappings"] = [
        {"status": name, "stage": stage, "active": active}
        for name, (stage, active) in sorted(status_stages().items())
    ]
    cfg = parse_config(yaml.safe_dump(data, allow_unicode=True), file="devlake-issue-trace")
    with engine.begin() as conn:
        apply_config(conn, cfg)


def replay(client: TestClient) -> int:
    """Every issue: its creation, then its status changes in time order. Returns the count."""
    posted = 0
    for issue in issues():
        deliveries = [(f"devlake-{issue.key}-created", created_webhook(issue))]
        deliveries += [
            (f"devlake-{issue.key}-{item.change_id}", updated_webhook(issue, item))
            for item in issue.items
        ]
        for delivery, payload in deliveries:
            response = post_jira(client, compact(payload), delivery=delivery)
            assert response.status_code == 202, (delivery, response.text)
            posted += 1
    return posted


def timelines(engine: sa.Engine) -> dict[str, Timeline]:
    with engine.connect() as conn:
        stored = [dict(r._mapping) for r in conn.execute(sa.select(work_item_events))]
    out = {}
    for ticket, events in item_events(stored).items():
        timeline = build_timeline(events)
        assert timeline is not None, ticket
        out[ticket] = timeline
    return out


def entries(timeline: Timeline) -> list[Entry]:
    last = len(timeline.intervals) - 1
    return [
        Entry(i.status, i.start, first=n == 0, current=n == last)
        for n, i in enumerate(timeline.intervals)
    ]


def _differences(got: dict[str, list[Entry]], want: dict[str, list[Entry]]) -> str:
    lines = []
    for key in sorted(set(got) | set(want)):
        if got.get(key) != want.get(key):
            lines.append(f"{key}:")
            lines += [f"  expected {e}" for e in want.get(key, [])]
            lines += [f"  got      {e}" for e in got.get(key, [])]
    return "\n".join(lines)


# --- tests --------------------------------------------------------------------------------------


def test_the_devlake_data_is_complete() -> None:
    """Guards the end-to-end test against a truncated or reshaped copy of the data."""
    assert len(issues()) == ISSUE_COUNT
    assert sum(len(i.items) for i in issues()) == STATUS_ITEM_COUNT
    assert sum(len(v) for v in expected_history().values()) == HISTORY_ROW_COUNT
    assert set(standard_statuses().values()) == set(STANDARD_STAGES)
    for key, history in expected_history().items():
        assert [e.first for e in history] == [n == 0 for n in range(len(history))], key
        assert [e.current for e in history] == [e is history[-1] for e in history], key


def test_replayed_status_timelines_match_devlake(settings: Settings, engine: sa.Engine) -> None:
    load_org(engine)
    with TestClient(create_app(settings)) as client:
        posted = replay(client)
    assert posted == ISSUE_COUNT + STATUS_ITEM_COUNT
    Worker.from_settings(settings, engine).drain()

    with engine.connect() as conn:
        states = conn.execute(
            sa.select(raw_events.c.delivery_id, raw_events.c.state, raw_events.c.ignored_reason)
        ).all()
        kinds = dict(
            conn.execute(
                sa.select(work_item_events.c.event_type, sa.func.count()).group_by(
                    work_item_events.c.event_type
                )
            ).all()
        )
    assert len(states) == posted
    assert [s for s in states if s.state != "done"] == []
    assert kinds == {"created": ISSUE_COUNT, "transitioned": STATUS_ITEM_COUNT}

    built = timelines(engine)
    want = expected_history()
    got = {key: entries(timeline) for key, timeline in built.items()}
    assert got == want, "timelines differ from DevLake's history:\n" + _differences(got, want)

    # The current status is the issue's status in DevLake's issues table, and every interval
    # carries the stage its status is mapped to (the non-ASCII names included).
    assert {k: t.intervals[-1].status for k, t in built.items()} == {
        i.key: i.status for i in issues()
    }
    stages = status_stages()
    assert {k: [(i.status, i.stage) for i in t.intervals] for k, t in built.items()} == {
        k: [(i.status, stages.get(i.status or "", (None,))[0]) for i in t.intervals]
        for k, t in built.items()
    }
