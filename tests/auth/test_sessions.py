"""Sessions and sign-in throttling in the database (both backends), fixed timestamps."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

from dpp_lib.auth import attempts
from dpp_lib.auth.sessions import (
    create_session,
    resolve_session,
    revoke_session,
    revoke_user_sessions,
    session_id_for,
)
from dpp_lib.auth.users import deactivate_user
from dpp_lib.store.schema import sessions
from tests.auth.access_support import T0, make_user


def test_the_database_holds_no_usable_token(org: sa.Engine) -> None:
    with org.begin() as conn:
        user = make_user(conn)
        info, token = create_session(
            conn,
            user_id=user.user_id,
            auth_method="database",
            now=T0,
            duration=timedelta(hours=8),
            source_ip="10.0.0.1",
            user_agent="pytest",
        )
        row = conn.execute(sa.select(sessions)).one()
        assert row.session_id == info.session_id == session_id_for(token)
        assert token not in {str(v) for v in row}
        assert (row.source_ip, row.user_agent) == ("10.0.0.1", "pytest")
        assert len(token) >= 43


def test_expiry_revocation_and_activity(org: sa.Engine) -> None:
    with org.begin() as conn:
        user = make_user(conn)
        info, token = create_session(
            conn, user_id=user.user_id, auth_method="database", now=T0, duration=timedelta(hours=1)
        )
        assert resolve_session(conn, token, T0 + timedelta(seconds=30)) == info  # not rewritten
        later = resolve_session(conn, token, T0 + timedelta(minutes=5))
        assert later is not None and later.last_activity_at == T0 + timedelta(minutes=5)
        assert resolve_session(conn, token, T0 + timedelta(hours=1)) is None  # expired
        assert resolve_session(conn, "not-a-token", T0) is None
        assert revoke_session(conn, info.session_id, T0)
        assert not revoke_session(conn, info.session_id, T0)
        assert resolve_session(conn, token, T0) is None
        row = conn.execute(sa.select(sessions)).one()
        assert row.is_revoked and row.revoked_at == T0


def test_deactivation_and_revoke_all(org: sa.Engine) -> None:
    with org.begin() as conn:
        user = make_user(conn)
        tokens = [
            create_session(
                conn,
                user_id=user.user_id,
                auth_method="database",
                now=T0,
                duration=timedelta(hours=1),
            )[1]
            for _ in range(2)
        ]
        assert revoke_user_sessions(conn, user.user_id, T0) == 2
        assert all(resolve_session(conn, t, T0) is None for t in tokens)
        _, token = create_session(
            conn, user_id=user.user_id, auth_method="database", now=T0, duration=timedelta(hours=1)
        )
        deactivate_user(conn, user.user_id, actor="cli")
        assert resolve_session(conn, token, T0) is None


def test_backoff_grows_after_the_free_attempts_and_is_capped() -> None:
    assert [attempts.backoff(n, 5).total_seconds() for n in range(1, 10)] == [
        0,
        0,
        0,
        0,
        0,
        1,
        2,
        4,
        8,
    ]
    assert attempts.backoff(100, 5) == attempts.MAX_BLOCK


def test_failures_block_then_clear_and_are_forgotten(org: sa.Engine) -> None:
    key = attempts.account_key("Someone@example.com")
    with org.begin() as conn:
        for n in range(1, 7):
            assert attempts.record_failure(conn, key, 5, T0) == n
        assert attempts.blocked_for(conn, [key], T0) == 1
        assert attempts.blocked_for(conn, [key], T0 + timedelta(seconds=1)) == 0
        # an hour without failures starts the count again
        assert attempts.record_failure(conn, key, 5, T0 + timedelta(hours=2)) == 1
        attempts.clear(conn, key)
        assert attempts.record_failure(conn, key, 5, T0) == 1
