"""What every view needs besides the frames: stream names, team sizes, org settings, and the
small conversions from metric results to API values."""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa

from dpp_lib.metrics.common import Scope
from dpp_lib.metrics.review import DEFAULT_MIN_CONTRIBUTORS
from dpp_lib.store.schema import delivery_streams, org_settings, tech_streams


@dataclass(frozen=True)
class Stream:
    stream_id: uuid.UUID
    name: str
    display_name: str
    team_size: int | None = None
    min_contributors: int | None = None
    github_org: str | None = None


@dataclass(frozen=True)
class Org:
    """The active streams and the settings views need, read once per request."""

    delivery: tuple[Stream, ...]
    tech: tuple[Stream, ...]
    settings: dict[str, Any]

    @property
    def organisation(self) -> dict[str, Any]:
        value: dict[str, Any] = self.settings.get("organisation") or {}
        return value

    @property
    def min_contributors(self) -> int:
        return int(self.organisation.get("min_contributors", DEFAULT_MIN_CONTRIBUTORS))

    def delivery_in(self, scope: Scope) -> tuple[Stream, ...]:
        """The delivery streams a delivery-dimension scope covers."""
        return tuple(
            s
            for s in self.delivery
            if (scope.delivery_stream_id is None or s.stream_id == scope.delivery_stream_id)
            and (scope.delivery_in is None or s.stream_id in scope.delivery_in)
        )

    def tech_in(self, scope: Scope) -> tuple[Stream, ...]:
        return tuple(
            s
            for s in self.tech
            if (scope.tech_stream_id is None or s.stream_id == scope.tech_stream_id)
            and (scope.tech_in is None or s.stream_id in scope.tech_in)
        )

    def team_sizes(self, scope: Scope) -> dict[uuid.UUID, int]:
        """Team size of each delivery stream ``scope`` covers that has one."""
        covered = self.delivery_in(scope)
        return {s.stream_id: s.team_size for s in covered if s.team_size is not None}

    def name_of(self, stream_id: object) -> str | None:
        for s in (*self.delivery, *self.tech):
            if s.stream_id == stream_id:
                return s.name
        return None


def load_org(conn: sa.Connection) -> Org:
    d, t = delivery_streams, tech_streams
    delivery = tuple(
        Stream(r.stream_id, r.name, r.display_name, r.team_size, r.min_contributors)
        for r in conn.execute(sa.select(d).where(d.c.is_active).order_by(d.c.name))
    )
    tech = tuple(
        Stream(r.stream_id, r.name, r.display_name, None, r.min_contributors, r.github_org)
        for r in conn.execute(sa.select(t).where(t.c.is_active).order_by(t.c.name))
    )
    settings = {r.key: r.value for r in conn.execute(sa.select(org_settings))}
    return Org(delivery, tech, settings)


def num(value: Any) -> float | None:
    """A metric value as a JSON number (the metric functions round their results): None
    for missing, NaN or infinite."""
    if value is None:
        return None
    f = float(value)
    return None if math.isnan(f) or math.isinf(f) else f


def iso(value: date | datetime | None) -> str | None:
    return None if value is None else value.isoformat()
