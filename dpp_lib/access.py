"""Who is asking, and what they may see (spec §3.3, §8.4): one ``Principal`` for API keys now
(and signed-in users later), so every route and page applies the same stream scoping."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from dpp_lib.metrics.common import Scope
from dpp_lib.store.api_keys import ApiKey

# A permission that implies others: an admin key may also read metrics.
IMPLIES = {"admin": frozenset({"metrics:read"})}


@dataclass(frozen=True)
class Principal:
    """``delivery_streams`` / ``tech_streams``: the streams it may see, None = every stream.
    A principal restricted in one dimension only sees nothing of the other (a key scoped to
    the payments delivery stream sees no tech stream's DORA figures)."""

    kind: str  # api_key | user
    subject: str  # the key id or user id
    name: str
    permissions: frozenset[str]
    delivery_streams: frozenset[uuid.UUID] | None = None
    tech_streams: frozenset[uuid.UUID] | None = None

    @classmethod
    def from_api_key(cls, key: ApiKey) -> Principal:
        ds, ts = key.delivery_streams, key.tech_streams
        if key.is_scoped:
            ds, ts = ds or frozenset(), ts or frozenset()
        return cls("api_key", str(key.key_id), key.display_name, frozenset(key.permissions), ds, ts)

    def has(self, permission: str) -> bool:
        return permission in self.permissions or any(
            permission in IMPLIES.get(p, ()) for p in self.permissions
        )

    @property
    def is_restricted(self) -> bool:
        return self.delivery_streams is not None or self.tech_streams is not None

    def sees_delivery(self, stream_id: uuid.UUID) -> bool:
        return self.delivery_streams is None or stream_id in self.delivery_streams

    def sees_tech(self, stream_id: uuid.UUID) -> bool:
        return self.tech_streams is None or stream_id in self.tech_streams

    def delivery_scope(self) -> Scope:
        """Every delivery stream it may see ("all streams" answers)."""
        return Scope(delivery_in=self.delivery_streams)

    def tech_scope(self) -> Scope:
        return Scope(tech_in=self.tech_streams)

    def visible_scope(self) -> Scope:
        """Both dimensions' restrictions (admin reports over either kind of stream)."""
        return Scope(delivery_in=self.delivery_streams, tech_in=self.tech_streams)

    @property
    def scope_key(self) -> str:
        """Equal for principals that see the same streams (cache keys)."""

        def part(ids: frozenset[uuid.UUID] | None) -> str:
            return "*" if ids is None else ",".join(sorted(str(i) for i in ids))

        return f"d={part(self.delivery_streams)};t={part(self.tech_streams)}"
