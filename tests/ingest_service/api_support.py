"""API keys and clients over the demo organisation, for the API's contract, scope and
schemathesis tests. Keys are created once per backend (they do not change any metric)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import sqlalchemy as sa

from dpp_lib.store.api_keys import create_key, revoke_key
from dpp_lib.store.config_tables import load_lookups
from dpp_lib.store.schema import api_keys
from dpp_lib.store.types import now_utc
from tests.conftest import DemoOrg

AS_OF = "2026-11-12T18:00:00Z"


@dataclass(frozen=True)
class Keys:
    admin: str  # metrics:read + admin, every stream
    reader: str  # metrics:read, every stream
    payments: str  # metrics:read + admin, delivery stream "payments" only
    core_api: str  # metrics:read, tech stream "core-api" only
    writer: str  # events:write only
    expired: str
    revoked: str


_KEYS: dict[str, Keys] = {}


def keys_for(org: DemoOrg) -> Keys:
    if org.url not in _KEYS:
        _KEYS[org.url] = _create(org.engine)
    return _KEYS[org.url]


def _create(engine: sa.Engine) -> Keys:
    with engine.begin() as conn:
        lk = load_lookups(conn)
        pay, core = lk.delivery_stream("payments"), lk.tech_stream_id("core-api")
        assert pay is not None and core is not None

        def key(perms: list[str], **scope: Any) -> str:
            return create_key(conn, name=f"test {perms} {scope}", permissions=perms, **scope)[1]

        made = Keys(
            admin=key(["metrics:read", "admin"]),
            reader=key(["metrics:read"]),
            payments=key(["metrics:read", "admin"], delivery_streams=[pay]),
            core_api=key(["metrics:read"], tech_streams=[core]),
            writer=key(["events:write"]),
            expired=key(["metrics:read"], expires_days=1),
            revoked=key(["metrics:read"]),
        )
        conn.execute(
            api_keys.update()
            .where(api_keys.c.key_prefix == made.expired[:10])
            .values(expires_at=now_utc() - timedelta(minutes=1))
        )
        revoke_key(conn, made.revoked[:10])
    return made


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
