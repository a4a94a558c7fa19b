"""Jira webhooks → work item, field change and defect rows (spec §4.3.2, §4.3.6, §5.2).

``jira:issue_created`` gives a ``created`` work item row (plus ``blocked`` when the issue
is created flagged, and ``logged``/``attributed`` defect rows for bugs).
``jira:issue_updated`` turns each changelog item into what it means: status →
``transitioned``, resolution set → ``completed``, Flagged ⇄ Impediment →
``blocked``/``unblocked``, sprint/labels/points/priority/type/assignee/streams →
``work_item_field_changes``, stage attribution on bugs → ``attributed``/``reclassified``.

Event time (DESIGN §5) is the webhook ``timestamp``; for a created issue ``fields.created``.
Every row's ``values`` holds ``source`` and ``event_timestamp``; people appear only as
``ctx.anonymise("jira", id)`` hashes. Both Cloud (``fieldId``, ``accountId``) and Server
(display names, ``key``/``name`` users) payloads are read.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from dpp_lib.errors import NormaliseError
from dpp_lib.ingest import jira_fields as jf
from dpp_lib.ingest.registry import register
from dpp_lib.ingest.types import EventRow, NormaliseContext, Normalised, SprintInfo

SOURCE = "jira"

# Jira priority name (casefolded) → defect severity (spec §4.3.6).
SEVERITY_BY_PRIORITY = {
    "highest": "critical", "blocker": "critical", "critical": "critical",
    "high": "high", "major": "high",
    "medium": "medium",
    "low": "low", "lowest": "low", "minor": "low", "trivial": "low",
}  # fmt: skip
UNKNOWN_FOUND_STAGE = "unknown"
_FIELD_CHANGES = frozenset(
    {"sprint", "labels", "story_points", "priority", "issue_type", "assignee",
     "delivery_stream", "tech_streams"}
)  # fmt: skip


@dataclass(frozen=True)
class _Issue:
    """What every row of one delivery shares: the issue as it is after the event."""

    key: str
    project: str
    fields: Mapping[str, Any]
    ticket_type: str | None
    status: str | None
    hints: Mapping[str, Any]
    sprints: tuple[SprintInfo, ...]
    snapshot: Mapping[str, Any]  # assignee_hash, story_points, priority, labels
    users: Mapping[str, str]  # Server key/name → stable id

    @property
    def is_bug(self) -> bool:
        return self.ticket_type == "bug"


def _read_issue(payload: Mapping[str, Any], ctx: NormaliseContext, kind: str) -> _Issue | str:
    """The issue of a delivery, or the reason it cannot be used."""
    issue = payload.get("issue")
    if not isinstance(issue, Mapping):
        return f"{kind} delivery has no issue object"
    key = jf.text(issue.get("key"))
    if key is None:
        return f"{kind} delivery has no issue.key"
    fields = issue.get("fields")
    fields = {} if fields is None else fields
    if not isinstance(fields, Mapping):
        raise NormaliseError(SOURCE, "?", f"{kind} for {key}: issue.fields is not an object")
    project = jf.text(jf.as_map(fields.get("project")).get("key"))
    if project is None and "-" in key:
        project = key.rsplit("-", 1)[0]
    if project is None:
        return f"{kind} for {key}: no project key in fields.project or the issue key"
    ids = ctx.jira_fields
    ticket_type = jf.text(jf.as_map(fields.get("issuetype")).get("name"))
    sprints = jf.parse_sprints(fields.get(ids.sprint)) if ids.sprint else ()
    labels = jf.string_list(fields.get("labels"))
    hints = {
        "project_key": project,
        "delivery_stream_option": _option(fields, ids.delivery_stream),
        "labels": labels,
        "components": jf.names(fields.get("components")),
        "tech_stream_options": jf.option_values(fields.get(ids.tech_streams))
        if ids.tech_streams
        else [],
        "blocking_tech_stream_option": _option(fields, ids.blocking_tech_stream),
        "linked_ticket_ids": _linked_tickets(fields),
        "jira_sprint_id": jf.current_sprint_id(sprints),
    }
    snapshot = {
        "assignee_hash": ctx.anonymise(SOURCE, jf.user_id(fields.get("assignee"))),
        "story_points": jf.parse_number(fields.get(ids.story_points)) if ids.story_points else None,
        "priority": jf.text(jf.as_map(fields.get("priority")).get("name")),
        "labels": labels,
    }
    return _Issue(
        key=key,
        project=project,
        fields=fields,
        ticket_type=ticket_type.casefold() if ticket_type else None,
        status=jf.text(jf.as_map(fields.get("status")).get("name")),
        hints=hints,
        sprints=sprints,
        snapshot=snapshot,
        users=jf.user_index(payload, fields),
    )


def _option(fields: Mapping[str, Any], field_id: str | None) -> str | None:
    return jf.first_option(fields.get(field_id)) if field_id else None


def _linked_tickets(fields: Mapping[str, Any]) -> list[str]:
    """The parent's key, then the keys of linked issues (either direction), no repeats."""
    keys = [jf.text(jf.as_map(fields.get("parent")).get("key"))]
    links = fields.get("issuelinks")
    for link in links if isinstance(links, list) else []:
        for side in ("outwardIssue", "inwardIssue"):
            keys.append(jf.text(jf.as_map(jf.as_map(link).get(side)).get("key")))
    out: list[str] = []
    for key in keys:
        if key is not None and key not in out:
            out.append(key)
    return out


def _hints(issue: _Issue) -> dict[str, Any]:
    """A row's own copy of the issue's hints (lists copied too)."""
    return {k: list(v) if isinstance(v, list) else v for k, v in issue.hints.items()}


def _stage(ctx: NormaliseContext, issue: _Issue, status: str | None) -> str | None:
    mapping = ctx.status_stage(issue.project, status)
    return mapping.stage if mapping else None


def _work_item(
    ctx: NormaliseContext,
    issue: _Issue,
    at: datetime,
    event_type: str,
    *,
    from_status: str | None = None,
    to_status: str | None = None,
) -> EventRow:
    """A ``work_item_events`` row; non-transition rows carry the current status as to_*."""
    values = {
        "source": SOURCE,
        "event_timestamp": at,
        "event_type": event_type,
        "ticket_id": issue.key,
        "ticket_type": issue.ticket_type,
        "from_stage": _stage(ctx, issue, from_status),
        "to_stage": _stage(ctx, issue, to_status),
        "from_status": from_status,
        "to_status": to_status,
        **issue.snapshot,
        "labels": list(issue.snapshot["labels"]),
        "blocked_reason": None,
    }
    return EventRow("work_item_events", values, _hints(issue))


def _defect(ctx: NormaliseContext, issue: _Issue, at: datetime, event_type: str) -> EventRow:
    """A ``defect_events`` row carrying the bug's current attribution."""
    ids, fields = ctx.jira_fields, issue.fields
    found = ctx.stage_from_option(_option(fields, ids.found_in_stage))
    introduced = ctx.stage_from_option(_option(fields, ids.introduced_in_stage))
    root_cause = _option(fields, ids.root_cause)
    linked = issue.hints["linked_ticket_ids"]
    priority = issue.snapshot["priority"]
    values = {
        "source": SOURCE,
        "event_timestamp": at,
        "event_type": event_type,
        "ticket_id": issue.key,
        "severity": SEVERITY_BY_PRIORITY.get(priority.casefold()) if priority else None,
        "found_in_stage": found or UNKNOWN_FOUND_STAGE,
        "introduced_in_stage": None if event_type == "logged" else introduced,
        "linked_work_item_id": linked[0] if linked else None,
        "root_cause_category": root_cause.casefold() if root_cause else None,
    }
    return EventRow("defect_events", values, _hints(issue))


def _event_time(payload: Mapping[str, Any], issue: _Issue, *, created: bool) -> datetime | None:
    webhook = jf.from_epoch_ms(payload.get("timestamp"))
    if created:
        return jf.parse_jira_datetime(issue.fields.get("created")) or webhook
    return webhook or jf.parse_jira_datetime(issue.fields.get("updated"))


def _result(issue: _Issue, rows: list[EventRow]) -> Normalised:
    return Normalised(rows=tuple(rows), sprints=issue.sprints)


@register("jira", "jira:issue_created")
def normalise_issue_created(payload: Mapping[str, Any], ctx: NormaliseContext) -> Normalised:
    """``jira:issue_created`` → ``created`` (+ ``blocked``), and for bugs ``logged``
    (+ ``attributed`` when introduced-in-stage is already set), all at ``fields.created``."""
    issue = _read_issue(payload, ctx, "jira:issue_created")
    if isinstance(issue, str):
        return Normalised.ignored(issue)
    at = _event_time(payload, issue, created=True)
    if at is None:
        return Normalised.ignored(f"jira:issue_created for {issue.key} has no usable time")
    rows = [_work_item(ctx, issue, at, "created", to_status=issue.status)]
    flagged = ctx.jira_fields.flagged
    if flagged and jf.has_impediment(jf.option_values(issue.fields.get(flagged))):
        rows.append(_work_item(ctx, issue, at, "blocked", to_status=issue.status))
    if issue.is_bug:
        rows.append(_defect(ctx, issue, at, "logged"))
        if _option(issue.fields, ctx.jira_fields.introduced_in_stage):
            rows.append(_defect(ctx, issue, at, "attributed"))
    return _result(issue, rows)


@register("jira", "jira:issue_updated")
def normalise_issue_updated(payload: Mapping[str, Any], ctx: NormaliseContext) -> Normalised:
    """``jira:issue_updated`` → one row per changelog item the platform uses (module doc)."""
    issue = _read_issue(payload, ctx, "jira:issue_updated")
    if isinstance(issue, str):
        return Normalised.ignored(issue)
    items = _changelog_items(payload, issue.key)
    if not items:
        return Normalised.ignored(
            f"jira:issue_updated for {issue.key} has no changelog items (a comment or worklog"
            " change); nothing the platform uses"
        )
    at = _event_time(payload, issue, created=False)
    if at is None:
        return Normalised.ignored(f"jira:issue_updated for {issue.key} has no usable timestamp")
    rows: list[EventRow] = []
    unused: list[str] = []
    defect_event: str | None = None
    for item in items:
        kind = jf.classify_item(item, ctx.jira_fields)
        if kind in ("introduced_in_stage", "found_in_stage") and issue.is_bug:
            defect_event = _defect_event(kind, item, defect_event)
            continue
        item_rows = _item_rows(ctx, issue, at, kind, item)
        rows.extend(item_rows)
        if not item_rows:
            unused.append(jf.item_label(item))
    if defect_event is not None:
        rows.append(_defect(ctx, issue, at, defect_event))
    if not rows:
        return Normalised.ignored(
            f"jira:issue_updated for {issue.key} changed only {', '.join(unused)};"
            " nothing the platform uses"
        )
    return _result(issue, rows)


def _item_rows(
    ctx: NormaliseContext, issue: _Issue, at: datetime, kind: str | None, item: Mapping[str, Any]
) -> list[EventRow]:
    """The work item and field change rows one changelog item means (maybe none)."""
    if kind == "status":
        old, new = jf.text(item.get("fromString")), jf.text(item.get("toString"))
        return [_work_item(ctx, issue, at, "transitioned", from_status=old, to_status=new)]
    if kind == "resolution":
        # Resolution cleared: no row, the status transition out of done is the re-open.
        resolved = jf.text(item.get("to")) or jf.text(item.get("toString"))
        return [_work_item(ctx, issue, at, "completed", to_status=issue.status)] if resolved else []
    if kind == "flagged":
        was = jf.has_impediment(jf.split_options(item.get("fromString")))
        now = jf.has_impediment(jf.split_options(item.get("toString")))
        if was == now:
            return []
        event = "blocked" if now else "unblocked"
        return [_work_item(ctx, issue, at, event, to_status=issue.status)]
    if kind not in _FIELD_CHANGES:
        return []
    rows = [_field_change(ctx, issue, at, kind, item)]
    became_bug = _is_bug_name(item.get("toString")) and not _is_bug_name(item.get("fromString"))
    if kind == "issue_type" and issue.is_bug and became_bug:
        rows.append(_defect(ctx, issue, at, "logged"))
    return rows


def _defect_event(kind: str, item: Mapping[str, Any], so_far: str | None) -> str:
    """Setting introduced-in-stage first is ``attributed``; any other change ``reclassified``."""
    first_set = (
        kind == "introduced_in_stage"
        and jf.text(item.get("fromString")) is None
        and jf.text(item.get("from")) is None
        and jf.text(item.get("toString")) is not None
    )
    return "attributed" if first_set else (so_far or "reclassified")


def _is_bug_name(value: object) -> bool:
    name = jf.text(value)
    return name is not None and name.casefold() == "bug"


def _changelog_items(payload: Mapping[str, Any], key: str) -> list[Mapping[str, Any]]:
    """``changelog.items``; an update without a changelog has none (comments, worklogs)."""
    changelog = payload.get("changelog")
    if changelog is None:
        return []
    items = changelog.get("items") if isinstance(changelog, Mapping) else "malformed"
    if items is None:
        return []
    if not isinstance(items, list) or not all(isinstance(i, Mapping) for i in items):
        reason = f"jira:issue_updated for {key}: changelog.items is not a list of objects"
        raise NormaliseError(SOURCE, "?", reason)
    return items


def _field_change(
    ctx: NormaliseContext, issue: _Issue, at: datetime, field: str, item: Mapping[str, Any]
) -> EventRow:
    """A ``work_item_field_changes`` row: from/to values in JSON-ready form."""
    before, after = _change_values(ctx, issue, field, item)
    values = {
        "source": SOURCE,
        "event_timestamp": at,
        "ticket_id": issue.key,
        "field": field,
        "from_value": before,
        "to_value": after,
    }
    return EventRow("work_item_field_changes", values, _hints(issue))


def _change_values(
    ctx: NormaliseContext, issue: _Issue, field: str, item: Mapping[str, Any]
) -> tuple[Any, Any]:
    old, new = item.get("fromString"), item.get("toString")
    if field == "sprint":
        return jf.sprint_ids(item.get("from")), jf.sprint_ids(item.get("to"))
    if field == "labels":
        return (jf.text(old) or "").split(), (jf.text(new) or "").split()
    if field == "story_points":
        return (
            jf.parse_number(old if old is not None else item.get("from")),
            jf.parse_number(new if new is not None else item.get("to")),
        )
    if field == "tech_streams":
        return jf.split_options(old), jf.split_options(new)
    if field == "assignee":
        return _assignee(ctx, issue, item, "from"), _assignee(ctx, issue, item, "to")
    if field == "issue_type":
        return _lower(old), _lower(new)
    return jf.text(old), jf.text(new)  # priority, delivery_stream


def _lower(value: object) -> str | None:
    raw = jf.text(value)
    return raw.casefold() if raw else None


def _assignee(
    ctx: NormaliseContext, issue: _Issue, item: Mapping[str, Any], side: str
) -> str | None:
    """The hashed id on one side of an assignee change; display names are never used.

    Prefers Cloud's ``tmpFromAccountId``/``tmpToAccountId``; for the new side the
    payload's current assignee; else the item's key/name, mapped to the accountId of the
    same user when the payload shows one.
    """
    ident = jf.text(item.get("tmpFromAccountId" if side == "from" else "tmpToAccountId"))
    if ident is None and side == "to" and jf.text(item.get("to")) is not None:
        ident = jf.user_id(issue.fields.get("assignee"))
    if ident is None:
        raw = jf.text(item.get(side))
        ident = issue.users.get(raw, raw) if raw else None
    return ctx.anonymise(SOURCE, ident)
