"""Streams named by name or UUID, for the CLI and the admin API."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

import sqlalchemy as sa

from dpp_lib.auth.errors import AccessError
from dpp_lib.store.config_tables import load_lookups


def stream_id(conn: sa.Connection, kind: str, value: str | None) -> uuid.UUID | None:
    """The id of the ``kind`` ('delivery' | 'tech') stream named ``value`` (None → None)."""
    if value is None or not value.strip():
        return None
    return stream_ids(conn, kind, [value])[0]


def stream_ids(conn: sa.Connection, kind: str, values: Sequence[str]) -> list[uuid.UUID]:
    if not values:
        return []
    lookups = load_lookups(conn)
    out = []
    for value in values:
        found = (
            lookups.delivery_stream(value.strip())
            if kind == "delivery"
            else lookups.tech_stream_id(value.strip())
        )
        if found is None:
            raise AccessError(f"no {kind} stream is named {value!r} (name or UUID)")
        out.append(found)
    return out
