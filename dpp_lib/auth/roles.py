"""Roles and stream scope (spec §3.3): manual grants, OIDC group mappings, and the
``Principal`` of a signed-in user.

Scope of one grant (the same rule as API keys): no stream = every stream; a delivery stream
only = that delivery stream and no tech stream; a tech stream only = that tech stream and no
delivery stream; both = that pair. A user's scope is the union of its grants' scopes (one
unscoped grant = every stream), and its permissions are the union of its roles'
permissions. ``platform_admin`` is always unscoped.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from dpp_lib.access import Principal
from dpp_lib.auth.audit import actor_uuid, record
from dpp_lib.auth.errors import AccessError, AccessNotFound, require_printable
from dpp_lib.store.schema import (
    delivery_streams,
    group_role_mappings,
    tech_streams,
    user_roles,
    users,
)
from dpp_lib.store.schema_config import ROLES

_VIEWER = frozenset({"metrics:read"})
_MEMBER = _VIEWER | {"pulse:submit"}
_LEAD = _MEMBER | {"diagnostics:read", "streams:manage"}
ROLE_PERMISSIONS: dict[str, frozenset[str]] = {
    "viewer": _VIEWER,
    "team_member": _MEMBER,
    "stream_lead": _LEAD,
    "platform_admin": _LEAD | {"admin", "events:write"},
}


@dataclass(frozen=True)
class RoleGrant:
    user_role_id: uuid.UUID
    user_id: uuid.UUID
    role: str
    delivery_stream_id: uuid.UUID | None
    tech_stream_id: uuid.UUID | None
    source: str  # manual | group
    granted_at: datetime

    def as_dict(self) -> dict[str, Any]:
        return {
            "user_role_id": str(self.user_role_id),
            "user_id": str(self.user_id),
            "role": self.role,
            "delivery_stream_id": _s(self.delivery_stream_id),
            "tech_stream_id": _s(self.tech_stream_id),
            "source": self.source,
            "granted_at": self.granted_at.isoformat(),
        }


@dataclass(frozen=True)
class GroupMapping:
    mapping_id: uuid.UUID
    group_pattern: str
    is_regex: bool
    role: str
    delivery_stream_id: uuid.UUID | None
    tech_stream_id: uuid.UUID | None

    def matches(self, group: str) -> bool:
        """Exact names compare exactly; patterns must match the whole group name."""
        if self.is_regex:
            return re.fullmatch(self.group_pattern, group) is not None
        return group == self.group_pattern

    def as_dict(self) -> dict[str, Any]:
        return {
            "mapping_id": str(self.mapping_id),
            "group_pattern": self.group_pattern,
            "is_regex": self.is_regex,
            "role": self.role,
            "delivery_stream_id": _s(self.delivery_stream_id),
            "tech_stream_id": _s(self.tech_stream_id),
        }


def _s(value: uuid.UUID | None) -> str | None:
    return str(value) if value is not None else None


def _check(conn: sa.Connection, role: str, ds: uuid.UUID | None, ts: uuid.UUID | None) -> None:
    if role not in ROLES:
        raise AccessError(f"unknown role {role!r}; choose from {', '.join(ROLES)}")
    if role == "platform_admin" and (ds is not None or ts is not None):
        raise AccessError("platform_admin covers every stream: give no stream scope")
    for value, table, kind in ((ds, delivery_streams, "delivery"), (ts, tech_streams, "tech")):
        if (
            value is not None
            and conn.execute(sa.select(table.c.stream_id).where(table.c.stream_id == value)).first()
            is None
        ):
            raise AccessError(f"no {kind} stream has the id {value}")


def _same(table: sa.Table, ds: uuid.UUID | None, ts: uuid.UUID | None) -> Any:
    """Equality that treats NULL = NULL (unique keys do not)."""
    return sa.and_(
        table.c.delivery_stream_id.is_(None) if ds is None else table.c.delivery_stream_id == ds,
        table.c.tech_stream_id.is_(None) if ts is None else table.c.tech_stream_id == ts,
    )


def _grant(user_id: uuid.UUID, role: str, ds: uuid.UUID | None, ts: uuid.UUID | None) -> Any:
    """The user_roles row of one grant."""
    return sa.and_(
        user_roles.c.user_id == user_id, user_roles.c.role == role, _same(user_roles, ds, ts)
    )


def _audit_grant(
    conn: sa.Connection,
    action: str,
    user_id: uuid.UUID,
    role: str,
    ds: uuid.UUID | None,
    ts: uuid.UUID | None,
    actor: str | None,
    source_ip: str | None,
) -> None:
    record(
        conn,
        actor=actor,
        action=action,
        target_type="user",
        target_id=str(user_id),
        source_ip=source_ip,
        details={"role": role, "delivery_stream_id": _s(ds), "tech_stream_id": _s(ts)},
    )


def grant_role(
    conn: sa.Connection,
    *,
    user_id: uuid.UUID,
    role: str,
    delivery_stream_id: uuid.UUID | None = None,
    tech_stream_id: uuid.UUID | None = None,
    actor: str | None,
    source_ip: str | None = None,
) -> RoleGrant:
    """A manual grant (idempotent). A grant a group already gives becomes manual, so it
    survives the next OIDC sign-in."""
    if conn.execute(sa.select(users.c.user_id).where(users.c.user_id == user_id)).first() is None:
        raise AccessNotFound(f"no user has the id {user_id}")
    _check(conn, role, delivery_stream_id, tech_stream_id)
    where = _grant(user_id, role, delivery_stream_id, tech_stream_id)
    row = conn.execute(sa.select(user_roles).where(where)).first()
    if row is None:
        conn.execute(
            user_roles.insert().values(
                user_role_id=uuid.uuid4(),
                user_id=user_id,
                role=role,
                delivery_stream_id=delivery_stream_id,
                tech_stream_id=tech_stream_id,
                granted_by=actor_uuid(actor),
                source="manual",
            )
        )
    elif row.source != "manual":
        conn.execute(user_roles.update().where(where).values(source="manual"))
    _audit_grant(
        conn, "role.grant", user_id, role, delivery_stream_id, tech_stream_id, actor, source_ip
    )
    found = conn.execute(sa.select(user_roles).where(where)).first()
    return _row_to_grant(found)


def revoke_role(
    conn: sa.Connection,
    *,
    user_id: uuid.UUID,
    role: str,
    delivery_stream_id: uuid.UUID | None = None,
    tech_stream_id: uuid.UUID | None = None,
    actor: str | None,
    source_ip: str | None = None,
) -> int:
    """Remove the grant (manual or group-derived; a group grant returns at the next OIDC
    sign-in while the mapping holds). AccessNotFound when the user has no such grant."""
    where = _grant(user_id, role, delivery_stream_id, tech_stream_id)
    count = conn.execute(user_roles.delete().where(where)).rowcount
    if not count:
        raise AccessNotFound(f"user {user_id} has no {role!r} grant with that stream scope")
    _audit_grant(
        conn, "role.revoke", user_id, role, delivery_stream_id, tech_stream_id, actor, source_ip
    )
    return int(count)


def list_roles(conn: sa.Connection, user_id: uuid.UUID | None = None) -> list[RoleGrant]:
    query = sa.select(user_roles).order_by(user_roles.c.user_id, user_roles.c.role)
    if user_id is not None:
        query = query.where(user_roles.c.user_id == user_id)
    return [_row_to_grant(r) for r in conn.execute(query)]


def _row_to_grant(row: Any) -> RoleGrant:
    return RoleGrant(
        row.user_role_id,
        row.user_id,
        row.role,
        row.delivery_stream_id,
        row.tech_stream_id,
        row.source,
        row.granted_at,
    )


def map_group(
    conn: sa.Connection,
    *,
    group_pattern: str,
    role: str,
    is_regex: bool = False,
    delivery_stream_id: uuid.UUID | None = None,
    tech_stream_id: uuid.UUID | None = None,
    actor: str | None,
    source_ip: str | None = None,
) -> GroupMapping:
    """Members of the group (an exact name, or a regular expression matching the whole
    name) get ``role`` with that scope at their next OIDC sign-in."""
    pattern = require_printable(group_pattern, "the group pattern").strip()
    if not pattern:
        raise AccessError("a group mapping needs a group name or pattern")
    if is_regex:
        try:
            re.compile(pattern)
        except re.error as exc:
            raise AccessError(
                f"group pattern {pattern!r} is not a regular expression: {exc}"
            ) from None
    _check(conn, role, delivery_stream_id, tech_stream_id)
    where = sa.and_(
        group_role_mappings.c.group_pattern == pattern,
        group_role_mappings.c.role == role,
        _same(group_role_mappings, delivery_stream_id, tech_stream_id),
    )
    if conn.execute(sa.select(group_role_mappings).where(where)).first() is not None:
        raise AccessError(f"group {pattern!r} is already mapped to {role!r} with that scope")
    mapping_id = uuid.uuid4()
    conn.execute(
        group_role_mappings.insert().values(
            mapping_id=mapping_id,
            group_pattern=pattern,
            is_regex=is_regex,
            role=role,
            delivery_stream_id=delivery_stream_id,
            tech_stream_id=tech_stream_id,
            created_by=actor_uuid(actor),
        )
    )
    found = _mapping(conn, mapping_id)
    record(
        conn,
        actor=actor,
        action="group.map",
        target_type="group_mapping",
        target_id=str(mapping_id),
        source_ip=source_ip,
        details=found.as_dict(),
    )
    return found


def unmap_group(
    conn: sa.Connection, mapping_id: uuid.UUID, *, actor: str | None, source_ip: str | None = None
) -> GroupMapping:
    found = _mapping(conn, mapping_id)
    conn.execute(group_role_mappings.delete().where(group_role_mappings.c.mapping_id == mapping_id))
    record(
        conn,
        actor=actor,
        action="group.unmap",
        target_type="group_mapping",
        target_id=str(mapping_id),
        source_ip=source_ip,
        details=found.as_dict(),
    )
    return found


def list_mappings(conn: sa.Connection) -> list[GroupMapping]:
    rows = conn.execute(
        sa.select(group_role_mappings).order_by(group_role_mappings.c.group_pattern)
    )
    return [_row_to_mapping(r) for r in rows]


def _mapping(conn: sa.Connection, mapping_id: uuid.UUID) -> GroupMapping:
    row = conn.execute(
        sa.select(group_role_mappings).where(group_role_mappings.c.mapping_id == mapping_id)
    ).first()
    if row is None:
        raise AccessNotFound(f"no group mapping has the id {mapping_id}")
    return _row_to_mapping(row)


def _row_to_mapping(row: Any) -> GroupMapping:
    return GroupMapping(
        row.mapping_id,
        row.group_pattern,
        row.is_regex,
        row.role,
        row.delivery_stream_id,
        row.tech_stream_id,
    )


Grant = tuple[str, uuid.UUID | None, uuid.UUID | None]


def grants_for_groups(mappings: Iterable[GroupMapping], groups: Sequence[str]) -> set[Grant]:
    """The (role, delivery stream, tech stream) grants the groups give (pure)."""
    return {
        (m.role, m.delivery_stream_id, m.tech_stream_id)
        for m in mappings
        if any(m.matches(g) for g in groups)
    }


def sync_group_roles(
    conn: sa.Connection, user_id: uuid.UUID, groups: Sequence[str], now: datetime
) -> set[Grant]:
    """Replace the user's group-derived grants with what ``groups`` give now; manual grants
    are kept (and already cover an equal group grant). Audited when something changed."""
    wanted = grants_for_groups(list_mappings(conn), groups)
    rows = conn.execute(sa.select(user_roles).where(user_roles.c.user_id == user_id)).all()
    manual = {
        (r.role, r.delivery_stream_id, r.tech_stream_id) for r in rows if r.source == "manual"
    }
    current = {
        (r.role, r.delivery_stream_id, r.tech_stream_id): r for r in rows if r.source == "group"
    }
    gone = [current[g].user_role_id for g in current if g not in wanted]
    added = sorted(wanted - manual - set(current), key=str)
    if gone:
        conn.execute(user_roles.delete().where(user_roles.c.user_role_id.in_(gone)))
    for role, ds, ts in added:
        conn.execute(
            user_roles.insert().values(
                user_role_id=uuid.uuid4(),
                user_id=user_id,
                role=role,
                delivery_stream_id=ds,
                tech_stream_id=ts,
                source="group",
                granted_at=now,
            )
        )
    if gone or added:
        record(
            conn,
            actor="system",
            action="role.sync_groups",
            target_type="user",
            target_id=str(user_id),
            details={
                "groups": list(groups)[:100],
                "added": [[r, _s(d), _s(t)] for r, d, t in added],
                "removed": len(gone),
            },
        )
    return wanted


def principal_for_user(conn: sa.Connection, user_id: uuid.UUID) -> Principal | None:
    """The user's permissions and visible streams; None for an unknown or inactive user.
    A user without grants gets no permission and sees no stream."""
    user = conn.execute(
        sa.select(users.c.display_name, users.c.email, users.c.is_active).where(
            users.c.user_id == user_id
        )
    ).first()
    if user is None or not user.is_active:
        return None
    grants = list_roles(conn, user_id)
    return principal_from_grants(
        str(user_id),
        user.display_name,
        [(g.role, g.delivery_stream_id, g.tech_stream_id) for g in grants],
    )


def principal_from_grants(subject: str, name: str, grants: Sequence[Grant]) -> Principal:
    """The union rule of the module docstring (pure)."""
    permissions: set[str] = set()
    ds: set[uuid.UUID] = set()
    ts: set[uuid.UUID] = set()
    everything = False
    for role, d, t in grants:
        permissions |= ROLE_PERMISSIONS[role]
        if role == "platform_admin" or (d is None and t is None):
            everything = True
        if d is not None:
            ds.add(d)
        if t is not None:
            ts.add(t)
    if everything:
        return Principal("user", subject, name, frozenset(permissions))
    return Principal("user", subject, name, frozenset(permissions), frozenset(ds), frozenset(ts))
