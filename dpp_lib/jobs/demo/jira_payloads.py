"""Jira Cloud webhook bodies for simulated tickets, shaped like the fixtures in
``shared/fixtures/jira-webhooks`` (``cloud-*.json``): the issue's fields as they are
*after* the change, and a changelog of what changed."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from dpp_lib.jobs.demo.flows import Flow
from dpp_lib.jobs.demo.model import Change, Person, Sprint, Status, Ticket
from dpp_lib.jobs.demo.people import stable_int
from dpp_lib.orgconfig import OrgConfig

ISSUE_TYPE_IDS = {"Story": "10001", "Task": "10003", "Bug": "10004", "Spike": "10005"}
PRIORITY_IDS = {"Highest": "1", "High": "2", "Medium": "3", "Low": "4", "Lowest": "5"}
RESOLUTION_IDS = {"Done": "10000", "Won't Do": "10001"}
FLAG_OPTION = {"value": "Impediment", "id": "10019"}
ROOT_CAUSES = ("Logic", "Requirements", "Integration", "Data", "Configuration")
_CATEGORIES = {
    "new": {"id": 2, "key": "new", "colorName": "blue-gray", "name": "To Do"},
    "indeterminate": {
        "id": 4,
        "key": "indeterminate",
        "colorName": "yellow",
        "name": "In Progress",
    },
    "done": {"id": 3, "key": "done", "colorName": "green", "name": "Done"},
}
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_EVENT_NAMES = {"created": "issue_created", "transition": "issue_generic", "field": "issue_updated"}


def jira_time(t: datetime) -> str:
    """Jira's timestamp format: ``2026-05-04T09:12:00.000+0000`` (UTC)."""
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}+0000"


def epoch_ms(t: datetime) -> int:
    """Milliseconds since the epoch, in integer arithmetic (no float rounding)."""
    return (t - _EPOCH) // timedelta(milliseconds=1)


def iso_ms(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


def _item(
    field: str,
    field_id: str,
    old: tuple[str | None, str | None],
    new: tuple[str | None, str | None],
    *,
    custom: bool = False,
) -> dict[str, Any]:
    return {
        "field": field,
        "fieldtype": "custom" if custom else "jira",
        "fieldId": field_id,
        "from": old[0],
        "fromString": old[1],
        "to": new[0],
        "toString": new[1],
    }


class JiraRenderer:
    """Turns a ticket's history into webhook bodies, one per change."""

    def __init__(
        self, config: OrgConfig, flows: dict[str, Flow], until: datetime, site: str, time_zone: str
    ) -> None:
        self.config = config
        self.flows = flows
        self.until = until
        self.site = site
        self.tz = time_zone
        self.f = config.jira_fields
        self._options: dict[tuple[str, str], dict[str, str]] = {}
        self._sprints: dict[int, dict[str, Any]] = {}

    # -- small objects --------------------------------------------------------------------

    def user(self, p: Person | None) -> dict[str, Any] | None:
        if p is None:
            return None
        return {
            "self": f"{self.site}/rest/api/2/user?accountId={p.account_id}",
            "accountId": p.account_id,
            "displayName": p.name,
            "active": True,
            "timeZone": self.tz,
            "accountType": "atlassian",
        }

    def option(self, field_id: str, value: str) -> dict[str, str]:
        """A select option ``{self, value, id}``; ids are stable per field and label."""
        key = (field_id, value)
        if key not in self._options:
            option_id = str(stable_int(f"{field_id}:{value}", 10200, 19999))
            if value == "Impediment":
                option_id = FLAG_OPTION["id"]
            url = f"{self.site}/rest/api/2/customFieldOption/{option_id}"
            self._options[key] = {"self": url, "value": value, "id": option_id}
        return self._options[key]

    def status(self, s: Status) -> dict[str, Any]:
        category = (
            "new"
            if s.stage == "backlog"
            else "done"
            if s.stage in ("done", "cancelled")
            else "indeterminate"
        )
        return {
            "self": f"{self.site}/rest/api/2/status/{s.id}",
            "description": "",
            "name": s.name,
            "id": s.id,
            "statusCategory": _CATEGORIES[category],
        }

    def sprint(self, s: Sprint) -> dict[str, Any]:
        """The Cloud sprint object; the state is as of ``until`` in every payload."""
        if s.id not in self._sprints:
            self._sprints[s.id] = {
                "id": s.id,
                "name": s.name,
                "state": s.state(self.until),
                "boardId": s.board_id,
                "goal": s.goal,
                "startDate": iso_ms(s.start),
                "endDate": iso_ms(s.end),
            }
        return self._sprints[s.id]

    def link(self, t: Ticket, at: datetime) -> dict[str, Any]:
        other = t.linked
        if other is None:
            return {}
        return {
            "id": str(stable_int(f"link:{t.uid}", 10000, 99999)),
            "self": f"{self.site}/rest/api/2/issueLink/{stable_int(f'link:{t.uid}', 10000, 99999)}",
            "type": {
                "id": "10003",
                "name": "Relates",
                "inward": "relates to",
                "outward": "relates to",
            },
            "outwardIssue": {
                "id": str(other.issue_id),
                "key": other.key,
                "self": f"{self.site}/rest/api/2/issue/{other.issue_id}",
                "fields": {
                    "summary": other.summary,
                    "status": self.status(other.status_at(at)),
                    "priority": {"name": other.priority, "id": PRIORITY_IDS[other.priority]},
                    "issuetype": {"name": other.issue_type, "id": ISSUE_TYPE_IDS[other.issue_type]},
                },
            },
        }

    # -- the issue ------------------------------------------------------------------------

    def fields(self, t: Ticket, state: dict[str, Any], at: datetime) -> dict[str, Any]:
        flow, f = self.flows[t.project], self.f
        resolution = state["resolution"]
        out: dict[str, Any] = {
            "issuetype": {
                "self": f"{self.site}/rest/api/2/issuetype/{ISSUE_TYPE_IDS[t.issue_type]}",
                "id": ISSUE_TYPE_IDS[t.issue_type],
                "name": t.issue_type,
                "subtask": False,
                "hierarchyLevel": 0,
            },
            "project": {
                "self": f"{self.site}/rest/api/2/project/{flow.id}",
                "id": str(flow.id),
                "key": t.project,
                "name": flow.name,
                "projectTypeKey": "software",
            },
            "summary": t.summary,
            "created": jira_time(t.created),
            "updated": jira_time(at),
            "priority": {
                "self": f"{self.site}/rest/api/2/priority/{PRIORITY_IDS[t.priority]}",
                "name": t.priority,
                "id": PRIORITY_IDS[t.priority],
            },
            "labels": list(t.labels),
            "components": [
                {
                    "self": f"{self.site}/rest/api/2/component/{stable_int(c, 10000, 10999)}",
                    "id": str(stable_int(c, 10000, 10999)),
                    "name": c,
                }
                for c in t.components
            ],
            "assignee": self.user(state["assignee"]),
            "reporter": self.user(t.creator),
            "creator": self.user(t.creator),
            "status": self.status(state["status"]),
            "resolution": None
            if resolution is None
            else {
                "self": f"{self.site}/rest/api/2/resolution/{RESOLUTION_IDS[resolution]}",
                "id": RESOLUTION_IDS[resolution],
                "name": resolution,
                "description": "",
            },
            "resolutiondate": state["resolutiondate"],
            "issuelinks": [self.link(t, at)] if t.linked is not None else [],
        }
        bug = t.issue_type == "Bug"
        custom: list[tuple[str | None, Any]] = [
            (
                f.delivery_stream,
                t.stream_option and self.option(f.delivery_stream or "", t.stream_option),
            ),
            (
                f.tech_streams,
                [self.option(f.tech_streams or "", v) for v in t.tech_options] or None,
            ),
            (f.story_points, t.story_points),
            (f.sprint, [self.sprint(s) for s in state["sprints"]] or None),
            (f.flagged, [FLAG_OPTION] if state["flagged"] else None),
            (
                f.blocking_tech_stream,
                state["blocking"] and self.option(f.blocking_tech_stream or "", state["blocking"]),
            ),
            (
                f.found_in_stage,
                bug and t.found_label and self.option(f.found_in_stage or "", t.found_label),
            ),
            (
                f.introduced_in_stage,
                bug
                and state["introduced"]
                and self.option(f.introduced_in_stage or "", state["introduced"]),
            ),
            (
                f.root_cause,
                state["root_cause"] and self.option(f.root_cause or "", state["root_cause"]),
            ),
        ]
        for field_id, value in custom:
            if field_id is not None:
                out[field_id] = value or None
        return out

    def render(self, t: Ticket) -> Iterator[tuple[int, Change, dict[str, Any]]]:
        """(change index, change, body) for each change of the ticket, in time order."""
        state: dict[str, Any] = {
            "status": t.initial_status,
            "resolution": None,
            "resolutiondate": None,
            "assignee": None,
            "sprints": (),
            "flagged": False,
            "blocking": None,
            "introduced": t.introduced_at_creation,
            "root_cause": None,
        }
        for index, change in enumerate(t.changes):
            if change.at > self.until:
                break
            old = dict(state)
            state.update(change.updates)
            if "resolution" in change.updates:
                state["resolutiondate"] = (
                    jira_time(change.at) if change.updates["resolution"] else None
                )
            if state["introduced"] and t.issue_type == "Bug" and stable_int(t.uid, 0, 2):
                state["root_cause"] = ROOT_CAUSES[stable_int(t.uid, 0, len(ROOT_CAUSES))]
            items = self._created_items(t) if change.kind == "created" else self._items(old, state)
            if not items:
                continue
            body = {
                "timestamp": epoch_ms(change.at),
                "webhookEvent": "jira:issue_created"
                if change.kind == "created"
                else "jira:issue_updated",
                "issue_event_type_name": _EVENT_NAMES[change.kind],
                "user": self.user(change.actor),
                "issue": {
                    "id": str(t.issue_id),
                    "self": f"{self.site}/rest/api/2/issue/{t.issue_id}",
                    "key": t.key,
                    "fields": self.fields(t, state, change.at),
                },
                "changelog": {"id": str(t.issue_id * 100 + index), "items": items},
            }
            yield index, change, body

    def _created_items(self, t: Ticket) -> list[dict[str, Any]]:
        f = self.f
        none = (None, None)
        items = [
            _item("summary", "summary", none, (None, t.summary)),
            _item("Status", "status", none, (t.initial_status.id, t.initial_status.name)),
            _item("priority", "priority", none, (PRIORITY_IDS[t.priority], t.priority)),
            _item("reporter", "reporter", none, (t.creator.account_id, t.creator.name)),
        ]
        if t.labels:
            items.append(_item("labels", "labels", none, (None, " ".join(t.labels))))
        for c in t.components:
            items.append(
                _item("Component", "components", none, (str(stable_int(c, 10000, 10999)), c))
            )
        pairs = [
            ("Delivery Stream", f.delivery_stream, t.stream_option),
            ("Technology Streams", f.tech_streams, ",".join(t.tech_options) or None),
            (
                "Story Points",
                f.story_points,
                None if t.story_points is None else f"{t.story_points:g}",
            ),
        ]
        if t.issue_type == "Bug":
            pairs += [
                ("Found In Stage", f.found_in_stage, t.found_label),
                ("Introduced In Stage", f.introduced_in_stage, t.introduced_at_creation),
            ]
        for name, field_id, value in pairs:
            if field_id and value:
                items.append(_item(name, field_id, none, (None, value), custom=True))
        return items

    def _items(self, old: dict[str, Any], new: dict[str, Any]) -> list[dict[str, Any]]:
        f, items = self.f, []
        if old["resolution"] != new["resolution"]:
            pair = [
                (RESOLUTION_IDS[r], r) if r else (None, None)
                for r in (old["resolution"], new["resolution"])
            ]
            items.append(_item("resolution", "resolution", pair[0], pair[1]))
        if old["status"] != new["status"]:
            a, b = old["status"], new["status"]
            items.append(_item("status", "status", (a.id, a.name), (b.id, b.name)))
        if old["assignee"] != new["assignee"]:
            a, b = old["assignee"], new["assignee"]
            item = _item(
                "assignee",
                "assignee",
                (a and a.account_id, a and a.name),
                (b and b.account_id, b and b.name),
            )
            items.append(
                item
                | {"tmpFromAccountId": a and a.account_id, "tmpToAccountId": b and b.account_id}
            )
        if f.sprint and old["sprints"] != new["sprints"]:
            a, b = old["sprints"], new["sprints"]
            items.append(
                _item("Sprint", f.sprint, _sprint_strings(a), _sprint_strings(b), custom=True)
            )
        if f.flagged and old["flagged"] != new["flagged"]:
            on, off = ("[10019]", "Impediment"), (None, None)
            items.append(
                _item(
                    "Flagged",
                    f.flagged,
                    on if old["flagged"] else off,
                    on if new["flagged"] else off,
                    custom=True,
                )
            )
        if f.blocking_tech_stream and old["blocking"] != new["blocking"]:
            items.append(
                self._option_item(
                    "Blocking Technology", f.blocking_tech_stream, old["blocking"], new["blocking"]
                )
            )
        if f.introduced_in_stage and old["introduced"] != new["introduced"]:
            items.append(
                self._option_item(
                    "Introduced In Stage",
                    f.introduced_in_stage,
                    old["introduced"],
                    new["introduced"],
                )
            )
        return items

    def _option_item(
        self, name: str, field_id: str, old: str | None, new: str | None
    ) -> dict[str, Any]:
        a = (self.option(field_id, old)["id"], old) if old else (None, None)
        b = (self.option(field_id, new)["id"], new) if new else (None, None)
        return _item(name, field_id, a, b, custom=True)


def _sprint_strings(sprints: tuple[Sprint, ...]) -> tuple[str, str]:
    return ", ".join(str(s.id) for s in sprints), ", ".join(s.name for s in sprints)
