"""Helpers for the access tests: streams of the test organisation, users with roles,
sessions as cookies, and an app with a ``session_key`` secret."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

from dpp_lib.auth.roles import grant_role
from dpp_lib.auth.sessions import create_session
from dpp_lib.auth.users import User, create_user
from dpp_lib.settings import Settings
from dpp_lib.store.config_tables import load_lookups
from dpp_lib.store.types import now_utc

T0 = datetime(2026, 11, 12, 9, 0, tzinfo=UTC)
PASSWORD = "correct horse battery staple"
SESSION_KEY = "session-test-key-5d1e0c9b7a"


@dataclass(frozen=True)
class Streams:
    payments: uuid.UUID
    lending: uuid.UUID
    core_api: uuid.UUID
    auth: uuid.UUID


def streams(conn: sa.Connection) -> Streams:
    lk = load_lookups(conn)
    ids = (
        lk.delivery_stream("payments"),
        lk.delivery_stream("lending"),
        lk.tech_stream_id("core-api"),
        lk.tech_stream_id("auth"),
    )
    assert all(ids), ids
    return Streams(*ids)  # type: ignore[arg-type]


def with_session_key(settings: Settings) -> Settings:
    path: Path = settings.secrets_dir / "session_key"
    if not path.exists():
        path.write_text(SESSION_KEY)
    return settings


def make_user(
    conn: sa.Connection,
    *,
    email: str | None = None,
    password: str | None = PASSWORD,
    grants: list[tuple[str, uuid.UUID | None, uuid.UUID | None]] = (),  # type: ignore[assignment]
) -> User:
    user = create_user(
        conn,
        email=email or f"user-{uuid.uuid4().hex[:10]}@example.com",
        display_name="Test User",
        password=password,
        auth_source="database" if password else "oidc",
        actor="cli",
    )
    for role, ds, ts in grants:
        grant_role(
            conn,
            user_id=user.user_id,
            role=role,
            delivery_stream_id=ds,
            tech_stream_id=ts,
            actor="cli",
        )
    return user


def session_token(engine: sa.Engine, user: User, *, minutes: int = 60) -> str:
    with engine.begin() as conn:
        _, token = create_session(
            conn,
            user_id=user.user_id,
            auth_method="database",
            now=now_utc(),
            duration=timedelta(minutes=minutes),
        )
    return token
