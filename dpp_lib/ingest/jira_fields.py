"""Reading values out of Jira payloads: times, select options, users, sprints (spec §5.2).

Pure helpers for ``dpp_lib.ingest.jira``. They accept whatever JSON Jira Cloud or Jira
Server/Data Center sends and return None or an empty list for anything they cannot read,
never raise. Changelog items are classified into the platform's field names by
``classify_item``: by ``fieldId`` when present (Cloud), else by the display name (Server).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal

from dpp_lib.ingest.types import JiraFieldIds, SprintInfo, utc

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def as_map(value: object) -> Mapping[str, Any]:
    """``value`` if it is a JSON object, else an empty mapping."""
    return value if isinstance(value, Mapping) else {}


def text(value: object) -> str | None:
    """A stripped non-empty string, or None."""
    if isinstance(value, str) and value.strip():
        return value.strip()
    return None


# --- time ---------------------------------------------------------------------------------


def parse_jira_datetime(value: object) -> datetime | None:
    """Jira's ISO times (``2019-02-15T18:26:27.339+0000``, ``…Z``, ``…+01:00``) → UTC.

    Times without an offset are refused (None): guessing a zone would shift the event.
    """
    raw = text(value)
    if raw is None:
        return None
    if raw[-1] in "Zz":
        raw = raw[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(raw)
    except ValueError:
        return None
    return utc(parsed) if parsed.tzinfo is not None else None


def from_epoch_ms(value: object) -> datetime | None:
    """The webhook ``timestamp`` (milliseconds since the epoch, number or digits) → UTC."""
    if isinstance(value, bool):
        return None
    number: float
    if isinstance(value, int | float):
        number = value
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            return None
    else:
        return None
    if not math.isfinite(number) or number <= 0:
        return None
    try:
        return _EPOCH + timedelta(milliseconds=number)
    except OverflowError:
        return None


def _utc_date(value: object) -> date | None:
    parsed = parse_jira_datetime(value)
    return parsed.date() if parsed is not None else None


# --- scalars and options ------------------------------------------------------------------


def parse_number(value: object) -> int | float | None:
    """A numeric field (story points): numbers as they are, numeric strings parsed."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    raw = text(value)
    if raw is None:
        return None
    try:
        return int(raw)
    except ValueError:
        pass
    try:
        number = float(raw)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def option_values(value: object) -> list[str]:
    """Select / multi-select / radio / checkbox values: ``{"value": "QA"}``, strings, lists."""
    items = value if isinstance(value, list) else [value]
    out: list[str] = []
    for item in items:
        label = text(item) if isinstance(item, str) else None
        if isinstance(item, Mapping):
            label = text(item.get("value")) or text(item.get("name"))
        if label is not None and label not in out:
            out.append(label)
    return out


def first_option(value: object) -> str | None:
    values = option_values(value)
    return values[0] if values else None


def split_options(changelog_text: object) -> list[str]:
    """A changelog ``fromString``/``toString`` of a multi-value field → its option texts.

    Jira joins the options with commas (sometimes inside brackets); an option whose text
    itself holds a comma is split too, a known limit.
    """
    raw = text(changelog_text)
    if raw is None:
        return []
    if raw.startswith("[") and raw.endswith("]"):
        raw = raw[1:-1]
    return [part.strip() for part in raw.split(",") if part.strip()]


def has_impediment(options: list[str]) -> bool:
    """Whether the Flagged field's options include "Impediment"."""
    return any(option.casefold() == "impediment" for option in options)


def names(value: object) -> list[str]:
    """``[{"name": "COMP-1"}, ...]`` (components) → names."""
    items = value if isinstance(value, list) else []
    return [n for n in (text(as_map(item).get("name")) for item in items) if n is not None]


def string_list(value: object) -> list[str]:
    """Labels as sent in ``fields.labels``."""
    items = value if isinstance(value, list) else []
    return [s for s in (text(item) for item in items) if s is not None]


# --- people -------------------------------------------------------------------------------


def user_id(user: object) -> str | None:
    """The stable identifier of a Jira user object: Cloud accountId, else Server key/name."""
    fields = as_map(user)
    return text(fields.get("accountId")) or text(fields.get("key")) or text(fields.get("name"))


def user_index(payload: Mapping[str, Any], fields: Mapping[str, Any]) -> dict[str, str]:
    """Server user keys/names seen in the payload → the user's stable identifier.

    Cloud changelog items from before the GDPR migration name users by key (``"admin"``)
    while the user objects carry the accountId; this lets both hash to the same value.
    """
    index: dict[str, str] = {}
    for user in (
        payload.get("user"),
        *(fields.get(f) for f in ("assignee", "reporter", "creator")),
    ):
        ident = user_id(user)
        if ident is None:
            continue
        for alias in (as_map(user).get("key"), as_map(user).get("name")):
            if isinstance(alias, str) and alias:
                index.setdefault(alias, ident)
    return index


# --- sprints ------------------------------------------------------------------------------

_SPRINT_STATES: dict[str, Literal["future", "active", "closed"]] = {
    "future": "future",
    "active": "active",
    "closed": "closed",
}
_SERVER_KEYS = (
    "id|rapidViewId|state|name|goal|startDate|endDate|completeDate|activatedDate|sequence"
    "|autoStartStop|synced|incompleteIssuesDestinationId"
)
_SERVER_BODY = re.compile(r"\[(.*)\]\s*$", re.DOTALL)
_SERVER_SPLIT = re.compile(rf",(?=(?:{_SERVER_KEYS})=)")


def _sprint_id(value: object) -> str | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value)
    return text(value)


def _state(value: object) -> Literal["future", "active", "closed"] | None:
    raw = text(value)
    return _SPRINT_STATES.get(raw.casefold()) if raw else None


def _cloud_sprint(obj: Mapping[str, Any]) -> SprintInfo | None:
    ident = _sprint_id(obj.get("id"))
    if ident is None:
        return None
    return SprintInfo(
        jira_sprint_id=ident,
        name=text(obj.get("name")) or f"Sprint {ident}",
        state=_state(obj.get("state")),
        start_date=_utc_date(obj.get("startDate")),
        end_date=_utc_date(obj.get("endDate")),
        goal=text(obj.get("goal")),
        board_id=_sprint_id(obj.get("boardId")),
    )


def _server_sprint(raw: str) -> SprintInfo | None:
    """``com.atlassian.greenhopper.service.sprint.Sprint@1b1c4[id=1,state=ACTIVE,...]``."""
    body = _SERVER_BODY.search(raw)
    if body is None or "Sprint@" not in raw:
        return None
    attrs: dict[str, str | None] = {}
    for part in _SERVER_SPLIT.split(body.group(1)):
        key, sep, value = part.partition("=")
        if sep:
            attrs[key.strip()] = None if value in ("<null>", "") else value
    return _cloud_sprint({**attrs, "boardId": attrs.get("rapidViewId")})


def parse_sprints(value: object) -> tuple[SprintInfo, ...]:
    """The sprint field's value (Cloud objects or Server strings) → sprints, in order."""
    items = value if isinstance(value, list) else [value]
    out: list[SprintInfo] = []
    for item in items:
        sprint: SprintInfo | None = None
        if isinstance(item, Mapping):
            sprint = _cloud_sprint(item)
        elif isinstance(item, str):
            sprint = _server_sprint(item)
        if sprint is not None and all(s.jira_sprint_id != sprint.jira_sprint_id for s in out):
            out.append(sprint)
    return tuple(out)


def current_sprint_id(sprints: tuple[SprintInfo, ...]) -> str | None:
    """The active sprint's id, else the last one listed."""
    active = [s for s in sprints if s.state == "active"]
    chosen = active[-1] if active else (sprints[-1] if sprints else None)
    return chosen.jira_sprint_id if chosen else None


def sprint_ids(changelog_value: object) -> list[str]:
    """A Sprint changelog ``from``/``to`` (``"38, 40"``) → ``["38", "40"]``."""
    raw = text(changelog_value)
    return [part.strip() for part in raw.split(",") if part.strip()] if raw else []


# --- changelog items ----------------------------------------------------------------------

FieldKind = Literal[
    "status", "resolution", "flagged", "sprint", "labels", "story_points", "priority",
    "issue_type", "assignee", "delivery_stream", "tech_streams", "found_in_stage",
    "introduced_in_stage", "blocking_tech_stream",
]  # fmt: skip

_SYSTEM_IDS: dict[str, FieldKind] = {
    "status": "status",
    "resolution": "resolution",
    "labels": "labels",
    "assignee": "assignee",
    "priority": "priority",
    "issuetype": "issue_type",
}
_SERVER_NAMES: dict[str, FieldKind] = {
    **_SYSTEM_IDS,
    "issue type": "issue_type",
    "flagged": "flagged",
    "sprint": "sprint",
    "story points": "story_points",
    "story point estimate": "story_points",
    "delivery stream": "delivery_stream",
    "technology streams": "tech_streams",
    "tech streams": "tech_streams",
    "found in stage": "found_in_stage",
    "introduced in stage": "introduced_in_stage",
    "blocking technology": "blocking_tech_stream",
}


def classify_item(item: Mapping[str, Any], ids: JiraFieldIds) -> FieldKind | None:
    """Which platform field a changelog item changes, or None when the platform ignores it."""
    field_id = text(item.get("fieldId"))
    if field_id is not None:
        if field_id in _SYSTEM_IDS:
            return _SYSTEM_IDS[field_id]
        configured: dict[str | None, FieldKind] = {
            ids.flagged: "flagged",
            ids.sprint: "sprint",
            ids.story_points: "story_points",
            ids.delivery_stream: "delivery_stream",
            ids.tech_streams: "tech_streams",
            ids.found_in_stage: "found_in_stage",
            ids.introduced_in_stage: "introduced_in_stage",
            ids.blocking_tech_stream: "blocking_tech_stream",
        }
        configured.pop(None, None)
        return configured.get(field_id)
    name = text(item.get("field"))
    return _SERVER_NAMES.get(name.casefold()) if name else None


def item_label(item: Mapping[str, Any]) -> str:
    """How an ignored changelog item is named in a reason: ``Rank (customfield_10022)``."""
    name = text(item.get("field"))
    field_id = text(item.get("fieldId"))
    if name and field_id and field_id.casefold() != name.casefold():
        return f"{name} ({field_id})"
    return name or field_id or "an unnamed field"
