"""What dashboard pages read, always through the viewer's ``Principal``: the streams they may
see, their role grants, and per-stream figures. A stream outside the principal's scope is
refused here, in the data layer, whatever the page's dropdown offered or the URL asked for
(spec §3.3); unknown and forbidden streams get the same answer, so stream names do not leak.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from dpp_lib.access import Principal
from dpp_lib.auth.roles import list_roles
from dpp_lib.errors import DppError
from dpp_lib.metrics import flow
from dpp_lib.metrics.common import Scope
from dpp_lib.store import read
from dpp_lib.store.config_tables import load_lookups
from dpp_lib.views.common import Org, Stream, load_org


class StreamAccessDenied(DppError):
    """The viewer may not see the stream the page asked for (or it does not exist)."""

    code = "stream_access_denied"
    http_status = 403

    def __init__(self, stream: str) -> None:
        super().__init__(
            f"You do not have access to the stream {stream!r}, or it does not exist."
            " Ask a platform administrator if you need to see it."
        )
        self.stream = stream


@dataclass(frozen=True)
class VisibleStreams:
    delivery: tuple[Stream, ...]
    tech: tuple[Stream, ...]


@dataclass(frozen=True)
class RoleLine:
    """One role grant in words: the role and the streams it covers."""

    role: str
    delivery_stream: str | None  # None with tech_stream None: every stream
    tech_stream: str | None

    def describe(self) -> str:
        if self.role == "platform_admin" or (self.delivery_stream, self.tech_stream) == (
            None,
            None,
        ):
            return f"{self.role}: all streams"
        parts = [
            f"delivery stream {self.delivery_stream}" if self.delivery_stream else "",
            f"tech stream {self.tech_stream}" if self.tech_stream else "",
        ]
        return f"{self.role}: {' and '.join(p for p in parts if p)}"


@dataclass(frozen=True)
class StreamWip:
    stream: Stream
    as_of: datetime
    wip_total: int
    by_stage: dict[str, int]
    blocked: int


def visible_streams(org: Org, principal: Principal) -> VisibleStreams:
    """The active streams the principal may see, by name (what a stream dropdown lists)."""
    return VisibleStreams(
        org.delivery_in(principal.delivery_scope()), org.tech_in(principal.tech_scope())
    )


def role_lines(conn: sa.Connection, org: Org, principal: Principal) -> list[RoleLine]:
    """The user's role grants with stream names (none for an API key)."""
    if principal.kind != "user":
        return []
    grants = list_roles(conn, uuid.UUID(principal.subject))
    return sorted(
        (
            RoleLine(g.role, org.name_of(g.delivery_stream_id), org.name_of(g.tech_stream_id))
            for g in grants
        ),
        key=lambda line: (line.role, line.delivery_stream or "", line.tech_stream or ""),
    )


def delivery_stream(org: Org, principal: Principal, name: str) -> Stream:
    """The active delivery stream called ``name`` (name or UUID, any case) if the principal
    may see it; ``StreamAccessDenied`` otherwise."""
    wanted = name.strip().casefold()
    for stream in org.delivery:
        if wanted in (stream.name.casefold(), str(stream.stream_id)):
            if principal.sees_delivery(stream.stream_id):
                return stream
            break
    raise StreamAccessDenied(name)


def stream_wip(
    conn: sa.Connection, principal: Principal, name: str, *, as_of: datetime
) -> StreamWip:
    """Work in progress of one delivery stream at ``as_of`` (``flow.wip_by_stage``), after
    checking the principal may see it."""
    stream = delivery_stream(load_org(conn), principal, name)
    lookups = load_lookups(conn)
    items = read.items(conn, lookups, as_of=as_of, scope=Scope(delivery_stream_id=stream.stream_id))
    wip = flow.wip_by_stage(items, as_of=as_of)
    by_stage = dict(wip.by_stage)
    return StreamWip(stream, as_of, int(sum(by_stage.values())), by_stage, wip.blocked)
