"""Jira normalisers against the real webhook fixtures and hand-built edge cases."""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
from collections.abc import Iterator, Mapping
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest

from dpp_lib.errors import NormaliseError
from dpp_lib.ingest import jira, jira_fields
from dpp_lib.ingest.registry import NORMALISERS
from dpp_lib.ingest.types import (
    EventRow,
    JiraFieldIds,
    NormaliseContext,
    Normalised,
    SprintInfo,
    StageMapping,
)
from dpp_lib.orgconfig import FOUND_STAGES, PIPELINE_STAGES, read_config

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT.parent / "shared" / "fixtures" / "jira-webhooks"
WEBHOOKS = sorted(p for p in FIXTURES.glob("*.json") if not p.name.startswith("rest-"))
REST_HISTORIES = sorted(FIXTURES.glob("rest-changelog-history-*.json"))
TEST_KEY = b"test-anonymisation-key"

# Statuses the fixture projects use (PROVENANCE.md), mapped as a team would.
FIXTURE_STATUSES = [
    ("To Do", "backlog", False),
    ("Open", "backlog", False),
    ("Reopened", "backlog", False),
    ("In Progress", "dev", True),
    ("开发中", "dev", True),
    ("Resolved", "done", False),
    ("Done", "done", False),
    ("Closed", "done", False),
]
FIXTURE_PROJECTS = ("TES", "TEST", "KT", "KAN", "BUG", "PRJA", "EE")


def fake_anonymise(namespace: str, identifier: str | None) -> str | None:
    if identifier is None:
        return None
    message = f"{namespace}:{identifier}".encode()
    return hmac.new(TEST_KEY, message, hashlib.sha256).hexdigest()


def make_ctx(**field_overrides: str | None) -> NormaliseContext:
    """example.yaml's mappings and field ids, plus the fixture projects' statuses."""
    config = read_config(ROOT / "config" / "example.yaml")
    mappings = {
        (p.key, m.status.casefold()): StageMapping(m.stage, m.active)
        for p in config.jira_projects
        for m in p.status_mappings
    }
    for project in FIXTURE_PROJECTS:
        for status, stage, active in FIXTURE_STATUSES:
            mappings[(project, status.casefold())] = StageMapping(stage, active)
    aliases = {s: s for s in (*PIPELINE_STAGES, *FOUND_STAGES)}
    aliases |= {label.casefold(): stage for label, stage in config.value_map.stages.items()}
    aliases["in production"] = "production"
    fields = config.jira_fields.model_dump() | field_overrides
    return NormaliseContext(
        anonymise=fake_anonymise,
        status_mappings=mappings,
        jira_fields=JiraFieldIds(**fields),
        stage_aliases=aliases,
    )


CTX = make_ctx()


def load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / name).read_text(encoding="utf-8"))
    return data


def run(payload: Mapping[str, Any], ctx: NormaliseContext = CTX) -> Normalised:
    return NORMALISERS[("jira", payload["webhookEvent"])](payload, ctx)


def ms(value: str) -> datetime:
    return datetime.fromisoformat(value).astimezone(UTC)


def h(identifier: str) -> str | None:
    return fake_anonymise("jira", identifier)


def work_item(**overrides: Any) -> dict[str, Any]:
    """Expected work_item_events values for TES-41 (the Cloud 2019 story) by default."""
    values = {
        "source": "jira",
        "event_timestamp": None,
        "event_type": None,
        "ticket_id": "TES-41",
        "ticket_type": "story",
        "from_stage": None,
        "to_stage": None,
        "from_status": None,
        "to_status": None,
        "assignee_hash": None,
        "story_points": None,
        "priority": "High",
        "labels": ["test-label"],
        "blocked_reason": None,
    }
    return values | overrides


def table_values(result: Normalised, table: str) -> list[dict[str, Any]]:
    return [dict(row.values) for row in result.rows if row.table == table]


# --- every fixture ------------------------------------------------------------------------


def _people(node: object) -> Iterator[str]:
    """Every user string in a payload: names, keys, account ids, e-mails, display names."""
    if isinstance(node, Mapping):
        if any(k in node for k in ("accountId", "emailAddress", "displayName")):
            for k in ("name", "key", "accountId", "emailAddress", "displayName"):
                if isinstance(node.get(k), str) and node[k]:
                    yield node[k]
        if node.get("field") in ("assignee", "reporter"):
            for k in ("from", "to", "fromString", "toString", "tmpFromAccountId", "tmpToAccountId"):
                if isinstance(node.get(k), str) and node[k]:
                    yield node[k]
        for value in node.values():
            yield from _people(value)
    elif isinstance(node, list):
        for value in node:
            yield from _people(value)


def _strings(node: object) -> Iterator[str]:
    if isinstance(node, str):
        yield node
    elif isinstance(node, Mapping):
        for k, v in node.items():
            yield str(k)
            yield from _strings(v)
    elif isinstance(node, list | tuple):
        for v in node:
            yield from _strings(v)


def assert_no_people(payload: Mapping[str, Any], rows: tuple[EventRow, ...]) -> None:
    people = set(_people(payload))
    assert people, "the fixture should name someone"
    for row in rows:
        for s in [*_strings(row.values), *_strings(row.hints)]:
            for person in people:
                assert s != person, f"{person!r} in {row.table}"
                if len(person) >= 6:
                    assert person not in s, f"{person!r} inside {s!r} in {row.table}"


@pytest.mark.parametrize("path", WEBHOOKS, ids=lambda p: p.stem)
def test_every_webhook_fixture_normalises(path: Path) -> None:
    payload = load(path.name)
    result = run(payload)
    assert bool(result.rows) != bool(result.ignored_reason)
    for row in result.rows:
        assert row.values["source"] == "jira"
        at = row.values["event_timestamp"]
        assert at.tzinfo is not None and at.utcoffset().total_seconds() == 0
        json.dumps({k: v for k, v in row.values.items() if k != "event_timestamp"})
        assert row.hints["project_key"] == payload["issue"]["fields"]["project"]["key"]
        assert set(row.hints) == {
            "project_key", "delivery_stream_option", "labels", "components",
            "tech_stream_options", "blocking_tech_stream_option", "linked_ticket_ids",
            "jira_sprint_id",
        }  # fmt: skip
    assert_no_people(payload, result.rows)


@pytest.mark.parametrize("path", REST_HISTORIES, ids=lambda p: p.stem)
@pytest.mark.parametrize("kind", ["jira:issue_created", "jira:issue_updated"])
def test_rest_histories_are_not_webhooks(path: Path, kind: str) -> None:
    result = NORMALISERS[("jira", kind)](load(path.name), CTX)
    assert result.ignored_reason == f"{kind} delivery has no issue object"


# --- the fixtures, row by row -------------------------------------------------------------


def test_cloud_status_todo_to_inprogress() -> None:
    result = run(load("cloud-status-todo-to-inprogress.json"))
    assert [dict(r.values) for r in result.rows] == [
        work_item(
            event_timestamp=ms("2019-02-16T03:14:22.039+00:00"),
            event_type="transitioned",
            from_status="To Do",
            to_status="In Progress",
            from_stage="backlog",
            to_stage="dev",
        )
    ]
    assert result.rows[0].hints == {
        "project_key": "TES",
        "delivery_stream_option": None,
        "labels": ["test-label"],
        "components": ["COMP-1"],
        "tech_stream_options": [],
        "blocking_tech_stream_option": None,
        "linked_ticket_ids": [],
        "jira_sprint_id": None,
    }
    assert result.sprints == ()


def test_cloud_inprogress_to_done_transitions_and_completes() -> None:
    at = ms("2019-02-16T03:15:40.507+00:00")
    result = run(load("cloud-status-inprogress-to-done-resolution-done.json"))
    assert [dict(r.values) for r in result.rows] == [
        work_item(event_timestamp=at, event_type="completed", to_status="Done", to_stage="done"),
        work_item(
            event_timestamp=at,
            event_type="transitioned",
            from_status="In Progress",
            to_status="Done",
            from_stage="dev",
            to_stage="done",
        ),
    ]
    # customfield_10020 holds another field's text on that site: no sprint is invented.
    assert result.sprints == ()


def test_cloud_reopen_is_only_a_transition() -> None:
    result = run(load("cloud-reopened-resolution-cleared.json"))
    assert [dict(r.values) for r in result.rows] == [
        work_item(
            event_timestamp=ms("2019-02-16T03:17:06.531+00:00"),
            event_type="transitioned",
            from_status="Done",
            to_status="To Do",
            from_stage="done",
            to_stage="backlog",
        )
    ]


def test_server_bug_resolved_transitions_and_completes() -> None:
    at = ms("2019-08-12T23:23:02.025+00:00")
    result = run(load("server-bug-status-inprogress-to-resolved-resolution-done.json"))
    common = {"ticket_id": "TES-4", "ticket_type": "bug", "priority": "Medium", "labels": []}
    assert [dict(r.values) for r in result.rows] == [
        work_item(
            **common,
            event_timestamp=at,
            event_type="transitioned",
            from_status="In Progress",
            to_status="Resolved",
            from_stage="dev",
            to_stage="done",
        ),
        work_item(
            **common,
            event_timestamp=at,
            event_type="completed",
            to_status="Resolved",
            to_stage="done",
        ),
    ]


def test_server_2013_bug_created_logs_a_defect() -> None:
    at = ms("2013-03-27T16:53:58.301+00:00")  # fields.created, not the webhook timestamp
    result = run(load("server-2013-bug-issue-created.json"))
    assert table_values(result, "work_item_events") == [
        work_item(
            ticket_id="BUG-15",
            ticket_type="bug",
            priority="Major",
            labels=[],
            event_timestamp=at,
            event_type="created",
            to_status="Open",
            to_stage="backlog",
        )
    ]
    assert table_values(result, "defect_events") == [
        {
            "source": "jira",
            "event_timestamp": at,
            "event_type": "logged",
            "ticket_id": "BUG-15",
            "severity": "high",
            "found_in_stage": "unknown",
            "introduced_in_stage": None,
            "linked_work_item_id": None,
            "root_cause_category": None,
        }
    ]


def test_cloud_labels_changed() -> None:
    result = run(load("cloud-labels-changed.json"))
    assert [dict(r.values) for r in result.rows] == [
        {
            "source": "jira",
            "event_timestamp": ms("2019-02-16T21:12:10.065+00:00"),
            "ticket_id": "TES-41",
            "field": "labels",
            "from_value": ["bad", "test-label"],
            "to_value": ["sad", "test-label"],
        }
    ]
    assert result.rows[0].table == "work_item_field_changes"
    assert result.rows[0].hints["labels"] == ["sad", "test-label"]


def test_cloud_assignee_set_and_cleared_hash_the_same_person() -> None:
    account = "5c5f880629be9642ba529340"
    set_ = run(load("cloud-assignee-set.json"))
    assert table_values(set_, "work_item_field_changes") == [
        {
            "source": "jira",
            "event_timestamp": ms("2019-02-16T03:18:01.752+00:00"),
            "ticket_id": "TES-41",
            "field": "assignee",
            "from_value": None,
            "to_value": h(account),
        }
    ]
    # The item names the user by key ("admin"); the payload's user objects map it to the
    # accountId, so the cleared side hashes to the same value as the created row would.
    cleared = run(load("cloud-assignee-cleared.json"))
    change = table_values(cleared, "work_item_field_changes")[0]
    assert (change["from_value"], change["to_value"]) == (h(account), None)


def test_server_assignee_set_hashes_the_user_key() -> None:
    result = run(load("server-assignee-set.json"))
    change = table_values(result, "work_item_field_changes")[0]
    assert (change["field"], change["from_value"], change["to_value"]) == (
        "assignee",
        None,
        h("admin"),
    )


def test_server_task_created_old_shape() -> None:
    result = run(load("server-task-issue-created.json"))
    assert [dict(r.values) for r in result.rows] == [
        work_item(
            ticket_id="TEST-4",
            ticket_type="task",
            priority="Medium",
            labels=[],
            event_timestamp=ms("2015-12-20T18:25:09.582+00:00"),
            event_type="created",
            to_status="To Do",
            to_stage="backlog",
        )
    ]


def test_cloud_2026_task_created() -> None:
    result = run(load("cloud-2026-task-issue-created-custom-field.json"))
    assert [dict(r.values) for r in result.rows] == [
        work_item(
            ticket_id="KAN-3",
            ticket_type="task",
            priority="Medium",
            labels=[],
            event_timestamp=ms("2026-04-25T13:05:13.605+00:00"),  # +0530 in the payload
            event_type="created",
            to_status="To Do",
            to_stage="backlog",
        )
    ]


def test_cloud_created_with_assignee_and_server_sprint_string() -> None:
    # On the fixture's site the Sprint field is customfield_10021 (a Server-style string).
    ctx = make_ctx(sprint="customfield_10021", flagged=None)
    result = run(load("cloud-task-issue-created-many-fields.json"), ctx)
    (row,) = result.rows
    assert row.values["assignee_hash"] == h("5cedcb4355a88a0fc86388ba")
    assert row.values["labels"] == ["Label1", "Label2"]
    assert row.hints["jira_sprint_id"] == "1"
    assert result.sprints == (
        SprintInfo(
            jira_sprint_id="1",
            name="SCRUM1 Sprint 1",
            state="active",
            start_date=date(2019, 5, 23),
            end_date=date(2019, 6, 6),
            goal=None,
            board_id="2",
        ),
    )


def test_example_config_does_not_read_a_sprint_string_as_a_flag() -> None:
    result = run(load("cloud-task-issue-created-many-fields.json"))  # flagged = 10021
    assert [r.values["event_type"] for r in result.rows] == ["created"]


@pytest.mark.parametrize(
    ("name", "field"),
    [
        ("cloud-custom-field-number-changed.json", "MJK - Number Field (customfield_10072)"),
        ("server-custom-field-number-changed.json", "numfield"),
        ("server-custom-field-select-changed.json", "My Customer Custom Field"),
        ("cloud-component-added.json", "Component (components)"),
    ],
)
def test_unused_fields_are_ignored_with_their_names(name: str, field: str) -> None:
    result = run(load(name))
    key = load(name)["issue"]["key"]
    assert result.rows == ()
    assert result.ignored_reason == (
        f"jira:issue_updated for {key} changed only {field}; nothing the platform uses"
    )


def test_custom_number_field_counts_when_it_is_the_story_points_field() -> None:
    result = run(
        load("cloud-custom-field-number-changed.json"), make_ctx(story_points="customfield_10072")
    )
    assert [dict(r.values) for r in result.rows] == [
        {
            "source": "jira",
            "event_timestamp": ms("2019-08-12T01:49:13.414+00:00"),
            "ticket_id": "TES-14",
            "field": "story_points",
            "from_value": 1,
            "to_value": 12,
        }
    ]


def test_linked_issues_become_hints() -> None:
    payload = load("cloud-component-added.json")
    payload["changelog"]["items"] = [status_item("To Do", "In Progress")]
    (row,) = run(payload).rows
    assert row.hints["linked_ticket_ids"] == ["TES-7"]
    assert row.hints["labels"] == ["ee", "eeee", "tt", "ww"]
    assert row.hints["components"] == ["Special Component"]


# --- REST changelog histories wrapped as webhooks -----------------------------------------


def wrap(history: Mapping[str, Any], **fields: Any) -> dict[str, Any]:
    """An issue_updated envelope around a REST changelog entry's items (copied)."""
    return {
        "timestamp": 1614931441164,  # 2021-03-05T08:04:01.164Z, the entry's `created`
        "webhookEvent": "jira:issue_updated",
        "issue": {
            "key": "EE-13954",
            "fields": {
                "project": {"key": "EE"},
                "issuetype": {"name": "Story"},
                "status": {"name": "In Progress"},
                **fields,
            },
        },
        "changelog": {"id": history["id"], "items": copy.deepcopy(history["items"])},
    }


@pytest.mark.parametrize(
    ("name", "before", "after"),
    [
        ("rest-changelog-history-sprint-added.json", [], ["34"]),
        ("rest-changelog-history-sprint-carryover-added-second-sprint.json", ["38"], ["38", "40"]),
        (
            "rest-changelog-history-sprint-removed.json",
            ["38", "40", "41", "42", "43", "46", "47", "50", "57", "60"],
            ["38", "40", "41", "42", "43", "46", "47", "50", "57"],
        ),
    ],
)
def test_rest_sprint_changes(name: str, before: list[str], after: list[str]) -> None:
    sprints = [
        {"id": 38, "name": "EE Sprint 28", "state": "closed", "boardId": 1, "goal": "",
         "startDate": "2021-02-22T02:30:00.000Z", "endDate": "2021-03-05T02:30:00.000Z"},
        {"id": 40, "name": "EE Sprint 29", "state": "active", "boardId": 1,
         "startDate": "2021-03-05T02:30:00.000Z", "endDate": "2021-03-19T02:30:00.000Z"},
    ]  # fmt: skip
    history = load(name)
    result = run(wrap(history, customfield_10020=sprints))
    (row,) = result.rows
    assert row.table == "work_item_field_changes"
    assert dict(row.values) == {
        "source": "jira",
        "event_timestamp": ms("2021-03-05T08:04:01.164+00:00"),
        "ticket_id": "EE-13954",
        "field": "sprint",
        "from_value": before,
        "to_value": after,
    }
    assert row.hints["jira_sprint_id"] == "40"
    assert result.sprints == (
        SprintInfo("38", "EE Sprint 28", "closed", date(2021, 2, 22), date(2021, 3, 5), None, "1"),
        SprintInfo("40", "EE Sprint 29", "active", date(2021, 3, 5), date(2021, 3, 19), None, "1"),
    )
    assert load(name) == history  # the fixture copy was not touched


def test_rest_status_closed_with_resolution() -> None:
    payload = wrap(load("rest-changelog-history-status-closed-resolution-done.json"))
    payload["issue"]["fields"]["status"] = {"name": "Closed"}
    at = ms("2021-03-05T08:04:01.164+00:00")
    result = run(payload)
    common: dict[str, Any] = {"ticket_id": "EE-13954", "priority": None, "labels": []}
    common["event_timestamp"] = at
    assert [dict(r.values) for r in result.rows] == [
        work_item(**common, event_type="completed", to_status="Closed", to_stage="done"),
        work_item(
            **common,
            event_type="transitioned",
            from_status="开发中",
            to_status="Closed",
            from_stage="dev",
            to_stage="done",
        ),
    ]


# --- edge cases ---------------------------------------------------------------------------


def status_item(old: str | None, new: str | None) -> dict[str, Any]:
    return {"field": "status", "fieldtype": "jira", "fieldId": "status",
            "fromString": old, "toString": new}  # fmt: skip


def issue_updated(
    items: list[dict[str, Any]],
    *,
    key: str = "PAY-7",
    timestamp: Any = 1767225600000,
    **fields: Any,
) -> dict[str, Any]:
    """A minimal Cloud issue_updated (2026-01-01T00:00:00Z) for issue ``key``."""
    base = {"project": {"key": key.split("-")[0]}, "issuetype": {"name": "Story"},
            "status": {"name": "In Development"}, "priority": {"name": "Medium"}}  # fmt: skip
    return {
        "timestamp": timestamp,
        "webhookEvent": "jira:issue_updated",
        "issue": {"key": key, "fields": base | fields},
        "changelog": {"items": items},
    }


def issue_created(*, key: str = "PAY-7", **fields: Any) -> dict[str, Any]:
    payload = issue_updated([], key=key, created="2026-01-01T09:30:00.000+0000", **fields)
    payload["webhookEvent"] = "jira:issue_created"
    del payload["changelog"]
    return payload


NEW_YEAR = datetime(2026, 1, 1, tzinfo=UTC)


def flag_item(old: str | None, new: str | None, *, cloud: bool = True) -> dict[str, Any]:
    item = {"field": "Flagged", "fieldtype": "custom", "fromString": old, "toString": new}
    return item | ({"fieldId": "customfield_10021"} if cloud else {})


@pytest.mark.parametrize(
    ("old", "new", "cloud", "expected"),
    [
        (None, "Impediment", True, ["blocked"]),
        ("Impediment", None, True, ["unblocked"]),
        ("Impediment", "", True, ["unblocked"]),
        (None, "Impediment", False, ["blocked"]),
        ("Impediment", None, False, ["unblocked"]),
        ("Impediment", "Impediment", True, []),
        (None, "Something else", True, []),
    ],
)
def test_flagged(old: str | None, new: str | None, cloud: bool, expected: list[str]) -> None:
    result = run(issue_updated([flag_item(old, new, cloud=cloud)]))
    assert [r.values["event_type"] for r in result.rows] == expected
    for row in result.rows:
        assert row.values["blocked_reason"] is None
        assert (row.values["to_status"], row.values["to_stage"]) == ("In Development", "dev")
    if not expected:
        assert result.ignored_reason is not None and "Flagged" in result.ignored_reason


def test_created_already_flagged() -> None:
    flagged = [{"value": "Impediment", "id": "10019"}]
    result = run(issue_created(customfield_10021=flagged))
    rows = [(r.values["event_type"], r.values["event_timestamp"]) for r in result.rows]
    at = datetime(2026, 1, 1, 9, 30, tzinfo=UTC)
    assert rows == [("created", at), ("blocked", at)]


def test_unmapped_status_keeps_names() -> None:
    result = run(issue_updated([status_item("In Development", "Parked")]))
    (values,) = [dict(r.values) for r in result.rows]
    assert (values["from_status"], values["to_status"]) == ("In Development", "Parked")
    assert (values["from_stage"], values["to_stage"]) == ("dev", None)


def test_unknown_project_keeps_names() -> None:
    result = run(issue_updated([status_item("To Do", "Doing")], key="ZZZ-1"))
    (values,) = [dict(r.values) for r in result.rows]
    assert (values["from_stage"], values["to_stage"]) == (None, None)
    assert values["to_status"] == "Doing"


def test_server_items_match_by_name() -> None:
    items = [
        {"field": "Sprint", "fieldtype": "custom", "from": "", "to": "3"},
        {"field": "Story Points", "fieldtype": "custom", "fromString": "3", "toString": "5.5"},
        {"field": "Priority", "fieldtype": "jira", "fromString": "Medium", "toString": "High"},
        {"field": "issuetype", "fieldtype": "jira", "fromString": "Story", "toString": "Task"},
        {"field": "delivery stream", "fieldtype": "custom", "toString": "Payments"},
        {"field": "Tech Streams", "fieldtype": "custom", "fromString": "Core API",
         "toString": "Core API,Frontend"},
    ]  # fmt: skip
    result = run(issue_updated(items))
    changes = [
        (v["field"], v["from_value"], v["to_value"])
        for v in table_values(result, "work_item_field_changes")
    ]
    assert changes == [
        ("sprint", [], ["3"]),
        ("story_points", 3, 5.5),
        ("priority", "Medium", "High"),
        ("issue_type", "story", "task"),
        ("delivery_stream", None, "Payments"),
        ("tech_streams", ["Core API"], ["Core API", "Frontend"]),
    ]


def test_cloud_items_match_by_field_id_only() -> None:
    # A Cloud item named "Sprint" whose id is not the configured sprint field is not a sprint.
    item = {"field": "Sprint", "fieldtype": "custom", "fieldId": "customfield_99999",
            "from": "", "to": "3"}  # fmt: skip
    result = run(issue_updated([item]))
    assert result.ignored_reason == (
        "jira:issue_updated for PAY-7 changed only Sprint (customfield_99999);"
        " nothing the platform uses"
    )


def test_update_without_changelog_is_ignored() -> None:
    payload = issue_updated([])
    del payload["changelog"]
    assert "has no changelog items" in (run(payload).ignored_reason or "")


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        ({"webhookEvent": "jira:issue_updated"}, "jira:issue_updated delivery has no issue object"),
        (
            {"webhookEvent": "jira:issue_created", "issue": {"fields": {}}},
            "jira:issue_created delivery has no issue.key",
        ),
        (
            issue_updated([status_item("A", "B")], timestamp=None),
            "jira:issue_updated for PAY-7 has no usable timestamp",
        ),
    ],
)
def test_unusable_payloads_are_ignored(payload: dict[str, Any], reason: str) -> None:
    assert run(payload) == Normalised.ignored(reason)


def test_issue_without_fields_still_counts_as_created() -> None:
    payload = {"webhookEvent": "jira:issue_created", "timestamp": 1767225600000,
               "issue": {"key": "PAY-3", "fields": None}}  # fmt: skip
    (row,) = run(payload).rows
    assert (row.values["event_type"], row.values["event_timestamp"]) == ("created", NEW_YEAR)
    assert (row.values["ticket_type"], row.values["to_status"], row.values["to_stage"]) == (
        None,
        None,
        None,
    )


@pytest.mark.parametrize("fields", [["status"], "In Progress"])
def test_corrupt_fields_raise(fields: object) -> None:
    payload = {"webhookEvent": "jira:issue_updated", "issue": {"key": "PAY-3", "fields": fields}}
    with pytest.raises(NormaliseError, match=r"issue\.fields is not an object"):
        run(payload)


def test_corrupt_changelog_raises() -> None:
    payload = issue_updated([])
    payload["changelog"]["items"] = "status"
    with pytest.raises(NormaliseError) as err:
        run(payload)
    assert err.value.source == "jira" and "PAY-7" in err.value.reason


def test_project_falls_back_to_key_prefix() -> None:
    payload = issue_updated([status_item("To Do", "In Analysis")])
    del payload["issue"]["fields"]["project"]
    (row,) = run(payload).rows
    assert row.hints["project_key"] == "PAY"
    assert row.values["to_stage"] == "ba"


def test_created_falls_back_to_webhook_timestamp() -> None:
    payload = issue_created()
    payload["issue"]["fields"]["created"] = "not a date"
    (row,) = run(payload).rows
    assert row.values["event_timestamp"] == NEW_YEAR


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2019-02-15T18:26:27.339+0000", datetime(2019, 2, 15, 18, 26, 27, 339000, tzinfo=UTC)),
        ("2019-02-15T18:26:27.339Z", datetime(2019, 2, 15, 18, 26, 27, 339000, tzinfo=UTC)),
        ("2019-02-15T18:26:27+01:00", datetime(2019, 2, 15, 17, 26, 27, tzinfo=UTC)),
        ("2019-02-15T19:01:52.971-0800", datetime(2019, 2, 16, 3, 1, 52, 971000, tzinfo=UTC)),
        ("2019-02-15T18:26:27", None),  # no zone: refused, not guessed
        ("", None),
        (None, None),
        ("yesterday", None),
    ],
)
def test_jira_datetime_formats(raw: str | None, expected: datetime | None) -> None:
    parsed = jira_fields.parse_jira_datetime(raw)
    assert parsed == expected
    if parsed is not None:
        assert parsed.tzinfo is UTC


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (1550286862039, datetime(2019, 2, 16, 3, 14, 22, 39000, tzinfo=UTC)),
        ("1550286862039", datetime(2019, 2, 16, 3, 14, 22, 39000, tzinfo=UTC)),
        (True, None),
        (None, None),
        ("soon", None),
        (-5, None),
    ],
)
def test_epoch_ms(raw: object, expected: datetime | None) -> None:
    assert jira_fields.from_epoch_ms(raw) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (
            [
                "com.atlassian.greenhopper.service.sprint.Sprint@1b1c4[id=1,rapidViewId=1,"
                "state=CLOSED,name=Sprint 1, the first,startDate=2016-01-04T09:00:00.000+01:00,"
                "endDate=2016-01-18T09:00:00.000+01:00,completeDate=<null>,sequence=1]",
                "com.atlassian.greenhopper.service.sprint.Sprint@9f[id=2,rapidViewId=1,"
                "state=FUTURE,name=Sprint 2,goal=Ship it,startDate=<null>,endDate=<null>,"
                "completeDate=<null>,sequence=2]",
            ],
            (
                SprintInfo("1", "Sprint 1, the first", "closed", date(2016, 1, 4),
                           date(2016, 1, 18), None, "1"),
                SprintInfo("2", "Sprint 2", "future", None, None, "Ship it", "1"),
            ),
        ),
        (
            [{"id": 34, "name": "EE Sprint 24", "state": "active", "boardId": 1, "goal": "",
              "startDate": "2021-01-25T23:30:00.000Z", "endDate": "2021-02-05T23:30:00.000Z"}],
            (SprintInfo("34", "EE Sprint 24", "active", date(2021, 1, 25), date(2021, 2, 5),
                        None, "1"),),
        ),
        ("3_*:*_1_*:*_78475_*|*_10002_*:*_1_*:*_0", ()),
        (None, ()),
        ([{"name": "no id"}, 42], ()),
    ],
)  # fmt: skip
def test_sprint_parsing(value: object, expected: tuple[SprintInfo, ...]) -> None:
    assert jira_fields.parse_sprints(value) == expected


def test_sprint_hint_without_an_active_sprint_is_the_last() -> None:
    sprints = jira_fields.parse_sprints(
        [{"id": 1, "name": "A", "state": "closed"}, {"id": 2, "name": "B", "state": "future"}]
    )
    assert jira_fields.current_sprint_id(sprints) == "2"


# --- defects ------------------------------------------------------------------------------


def bug_fields(*, found: str | None = None, introduced: str | None = None) -> dict[str, Any]:
    return {
        "issuetype": {"name": "Bug"},
        "priority": {"name": "Highest"},
        "customfield_10102": {"value": found, "id": "1"} if found else None,
        "customfield_10103": {"value": introduced, "id": "2"} if introduced else None,
        "customfield_10105": {"value": "Logic", "id": "3"},
        "parent": {"key": "PAY-1"},
        "issuelinks": [{"inwardIssue": {"key": "PAY-2"}}, {"outwardIssue": {"key": "PAY-1"}}],
    }


def stage_item(name: str, field_id: str, old: str | None, new: str | None) -> dict[str, Any]:
    return {"field": name, "fieldtype": "custom", "fieldId": field_id,
            "from": "1" if old else None, "fromString": old,
            "to": "2" if new else None, "toString": new}  # fmt: skip


def test_bug_created_with_attribution() -> None:
    result = run(issue_created(key="PAY-9", **bug_fields(found="Testing", introduced="Analysis")))
    at = datetime(2026, 1, 1, 9, 30, tzinfo=UTC)
    common = {"source": "jira", "event_timestamp": at, "ticket_id": "PAY-9",
              "severity": "critical", "found_in_stage": "qa", "linked_work_item_id": "PAY-1",
              "root_cause_category": "logic"}  # fmt: skip
    assert table_values(result, "defect_events") == [
        common | {"event_type": "logged", "introduced_in_stage": None},
        common | {"event_type": "attributed", "introduced_in_stage": "ba"},
    ]
    assert result.rows[0].hints["linked_ticket_ids"] == ["PAY-1", "PAY-2"]


def test_defect_attribution_sequence() -> None:
    found = ("Found In Stage", "customfield_10102")
    introduced = ("Introduced In Stage", "customfield_10103")

    def bug(found: str, introduced: str | None = None) -> dict[str, Any]:
        return bug_fields(found=found, introduced=introduced)

    steps = [
        # (changelog item, issue state after it, expected event, found, introduced)
        (stage_item(*introduced, None, "Development"), bug("UAT", "Development"),
         "attributed", "uat", "dev"),
        (stage_item(*introduced, "Development", "Analysis"), bug("UAT", "Analysis"),
         "reclassified", "uat", "ba"),
        (stage_item(*found, "UAT", "Live"), bug("Live", "Analysis"),
         "reclassified", "production", "ba"),
        (stage_item(*introduced, "Analysis", None), bug("Live"),
         "reclassified", "production", None),
    ]  # fmt: skip
    for n, (item, fields, event, found_stage, introduced_stage) in enumerate(steps):
        result = run(issue_updated([item], timestamp=1767225600000 + n, **fields))
        (values,) = table_values(result, "defect_events")
        assert values["event_type"] == event
        assert (values["found_in_stage"], values["introduced_in_stage"]) == (
            found_stage,
            introduced_stage,
        )
        assert values["event_timestamp"].microsecond == n * 1000


def test_defect_attributed_wins_over_found_change_in_one_update() -> None:
    items = [
        stage_item("Found In Stage", "customfield_10102", None, "QA"),
        stage_item("Introduced In Stage", "customfield_10103", None, "Development"),
    ]
    result = run(issue_updated(items, **bug_fields(found="QA", introduced="Development")))
    assert [v["event_type"] for v in table_values(result, "defect_events")] == ["attributed"]


def test_stage_fields_on_a_story_are_ignored() -> None:
    item = stage_item("Found In Stage", "customfield_10102", None, "QA")
    result = run(issue_updated([item]))
    assert result.ignored_reason is not None and "Found In Stage" in result.ignored_reason


def test_issue_becoming_a_bug_is_logged() -> None:
    item = {"field": "issuetype", "fieldtype": "jira", "fieldId": "issuetype",
            "fromString": "Story", "toString": "Bug"}  # fmt: skip
    result = run(issue_updated([item], **bug_fields()))
    assert [(r.table, r.values.get("event_type")) for r in result.rows] == [
        ("work_item_field_changes", None),
        ("defect_events", "logged"),
    ]


@pytest.mark.parametrize(
    ("priority", "severity"),
    [
        ("Highest", "critical"), ("Blocker", "critical"), ("Critical", "critical"),
        ("High", "high"), ("Major", "high"), ("Medium", "medium"), ("Low", "low"),
        ("Lowest", "low"), ("Minor", "low"), ("Trivial", "low"), ("P1", None), (None, None),
    ],
)  # fmt: skip
def test_severity_from_priority(priority: str | None, severity: str | None) -> None:
    fields = bug_fields() | {"priority": {"name": priority} if priority else None}
    (values,) = table_values(run(issue_created(**fields)), "defect_events")
    assert values["severity"] == severity
    assert values["found_in_stage"] == "unknown"


# --- people -------------------------------------------------------------------------------


def test_assignee_prefers_cloud_account_ids() -> None:
    item = {"field": "assignee", "fieldtype": "jira", "fieldId": "assignee",
            "from": "old.key", "fromString": "Old Person", "to": "new.key",
            "toString": "New Person", "tmpFromAccountId": "acc-old",
            "tmpToAccountId": "acc-new"}  # fmt: skip
    result = run(
        issue_updated([item], assignee={"accountId": "acc-new", "displayName": "New Person"})
    )
    (values,) = table_values(result, "work_item_field_changes")
    assert (values["from_value"], values["to_value"]) == (h("acc-old"), h("acc-new"))
    assert result.rows[0].values["to_value"] != h("New Person")


def test_registered_under_both_kinds() -> None:
    assert NORMALISERS[("jira", "jira:issue_created")] is jira.normalise_issue_created
    assert NORMALISERS[("jira", "jira:issue_updated")] is jira.normalise_issue_updated
