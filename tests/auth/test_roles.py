"""Users, manual grants, group mappings (exact and regular expressions) and the principal of
a user (spec §3.3), on both backends."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from dpp_lib.auth import roles, users
from dpp_lib.auth.errors import AccessError, AccessNotFound
from dpp_lib.auth.roles import GroupMapping, grants_for_groups, principal_for_user
from dpp_lib.store.schema import audit_log, user_roles
from tests.auth.access_support import PASSWORD, T0, make_user, streams


def _actions(conn: sa.Connection) -> list[str]:
    return list(
        conn.execute(sa.select(audit_log.c.action).order_by(audit_log.c.occurred_at)).scalars()
    )


def test_create_user_validates_and_audits(org: sa.Engine) -> None:
    with org.begin() as conn:
        user = users.create_user(
            conn,
            email=" Ada@Example.com ",
            display_name="Ada",
            password=PASSWORD,
            auth_source="database",
            actor="cli",
        )
        assert user.email == "ada@example.com" and user.is_active and user.has_password
        with pytest.raises(AccessError, match="already exists"):
            users.create_user(
                conn,
                email="ada@example.com",
                display_name="Ada",
                password=PASSWORD,
                auth_source="database",
                actor="cli",
            )
        with pytest.raises(AccessError, match="not an email"):
            users.create_user(
                conn,
                email="ada",
                display_name="A",
                password=PASSWORD,
                auth_source="database",
                actor="cli",
            )
        with pytest.raises(AccessError, match="needs a password"):
            users.create_user(
                conn,
                email="b@example.com",
                display_name="B",
                password=None,
                auth_source="database",
                actor="cli",
            )
        with pytest.raises(AccessError, match="auth_source"):
            users.create_user(
                conn,
                email="b@example.com",
                display_name="B",
                password=None,
                auth_source="ldap",
                actor="cli",
            )
        row = conn.execute(sa.select(audit_log).where(audit_log.c.action == "user.create")).one()
        assert row.actor_type == "cli" and row.target_id == str(user.user_id)
        assert users.find_user_by_email(conn, "ADA@example.com") == user
        assert [u.email for u in users.list_users(conn)] == ["ada@example.com"]


def test_authenticate_good_bad_and_inactive(org: sa.Engine) -> None:
    with org.begin() as conn:
        user = make_user(conn, email="eve@example.com")
        assert users.authenticate(conn, "eve@example.com", PASSWORD, T0) is not None
        assert users.get_user(conn, user.user_id).last_login_at == T0  # type: ignore[union-attr]
        assert users.authenticate(conn, "eve@example.com", "wrong password!!", T0) is None
        assert users.authenticate(conn, "nobody@example.com", PASSWORD, T0) is None
        users.deactivate_user(conn, user.user_id, actor="cli")
        assert users.authenticate(conn, "eve@example.com", PASSWORD, T0) is None
        assert principal_for_user(conn, user.user_id) is None
        assert "user.deactivate" in _actions(conn)


def test_principal_scoping_follows_the_api_key_rule(org: sa.Engine) -> None:
    with org.begin() as conn:
        s = streams(conn)
        none = make_user(conn)
        p = principal_for_user(conn, none.user_id)
        assert p is not None and p.permissions == frozenset()
        assert p.delivery_streams == frozenset() and p.tech_streams == frozenset()

        viewer = make_user(conn, grants=[("viewer", None, None)])
        p = principal_for_user(conn, viewer.user_id)
        assert p is not None and p.permissions == {"metrics:read"} and not p.is_restricted

        pay = make_user(conn, grants=[("team_member", s.payments, None)])
        p = principal_for_user(conn, pay.user_id)
        assert p is not None and p.permissions == {"metrics:read", "pulse:submit"}
        assert p.delivery_streams == {s.payments} and p.tech_streams == frozenset()

        mixed = make_user(
            conn, grants=[("stream_lead", s.payments, None), ("viewer", None, s.core_api)]
        )
        p = principal_for_user(conn, mixed.user_id)
        assert p is not None and {"diagnostics:read", "streams:manage"} <= p.permissions
        assert p.delivery_streams == {s.payments} and p.tech_streams == {s.core_api}

        admin = make_user(conn, grants=[("platform_admin", None, None)])
        p = principal_for_user(conn, admin.user_id)
        assert p is not None and p.has("admin") and p.has("metrics:read")
        assert not p.is_restricted

        wide = make_user(conn, grants=[("viewer", s.lending, None), ("viewer", None, None)])
        p = principal_for_user(conn, wide.user_id)
        assert p is not None and not p.is_restricted  # one unscoped grant = every stream


def test_grants_are_validated_idempotent_and_revocable(org: sa.Engine) -> None:
    with org.begin() as conn:
        s = streams(conn)
        user = make_user(conn)
        with pytest.raises(AccessError, match="unknown role"):
            roles.grant_role(conn, user_id=user.user_id, role="owner", actor="cli")
        with pytest.raises(AccessError, match="every stream"):
            roles.grant_role(
                conn,
                user_id=user.user_id,
                role="platform_admin",
                delivery_stream_id=s.payments,
                actor="cli",
            )
        with pytest.raises(AccessError, match="no delivery stream"):
            roles.grant_role(
                conn,
                user_id=user.user_id,
                role="viewer",
                delivery_stream_id=s.core_api,
                actor="cli",
            )
        for _ in range(2):
            roles.grant_role(
                conn,
                user_id=user.user_id,
                role="viewer",
                delivery_stream_id=s.payments,
                actor="cli",
            )
        assert len(roles.list_roles(conn, user.user_id)) == 1
        roles.revoke_role(
            conn, user_id=user.user_id, role="viewer", delivery_stream_id=s.payments, actor="cli"
        )
        assert roles.list_roles(conn, user.user_id) == []
        with pytest.raises(AccessNotFound):
            roles.revoke_role(conn, user_id=user.user_id, role="viewer", actor="cli")
        assert {"role.grant", "role.revoke"} <= set(_actions(conn))


def test_group_patterns_match_exactly_or_as_full_regular_expressions() -> None:
    exact = GroupMapping(None, "dpp-viewers", False, "viewer", None, None)  # type: ignore[arg-type]
    rx = GroupMapping(None, r"dpp-lead-[a-z]+", True, "stream_lead", None, None)  # type: ignore[arg-type]
    assert exact.matches("dpp-viewers") and not exact.matches("dpp-viewers-old")
    assert not exact.matches("DPP-viewers")
    assert rx.matches("dpp-lead-payments")
    assert not rx.matches("x-dpp-lead-payments") and not rx.matches("dpp-lead-payments2")
    assert grants_for_groups([exact, rx], ["dpp-lead-core"]) == {("stream_lead", None, None)}
    assert grants_for_groups([exact, rx], ["other"]) == set()


def test_oidc_sign_in_recomputes_group_roles_and_keeps_manual_grants(org: sa.Engine) -> None:
    with org.begin() as conn:
        s = streams(conn)
        roles.map_group(conn, group_pattern="dpp-viewers", role="viewer", actor="cli")
        roles.map_group(
            conn,
            group_pattern=r"pay-(lead|boss)",
            is_regex=True,
            role="stream_lead",
            delivery_stream_id=s.payments,
            actor="cli",
        )
        with pytest.raises(AccessError, match="not a regular expression"):
            roles.map_group(conn, group_pattern="([", is_regex=True, role="viewer", actor="cli")
        with pytest.raises(AccessError, match="already mapped"):
            roles.map_group(conn, group_pattern="dpp-viewers", role="viewer", actor="cli")

        user = users.upsert_external_user(
            conn,
            email="Olga@Example.com",
            display_name="Olga",
            groups=["dpp-viewers", "pay-lead"],
            now=T0,
        )
        assert user.auth_source == "oidc" and not user.has_password
        got = {
            (g.role, g.delivery_stream_id, g.source) for g in roles.list_roles(conn, user.user_id)
        }
        assert got == {("viewer", None, "group"), ("stream_lead", s.payments, "group")}

        # a manual override of a group grant survives, a lost group's grant goes
        roles.grant_role(conn, user_id=user.user_id, role="viewer", actor="cli")
        again = users.upsert_external_user(
            conn, email="olga@example.com", display_name="Olga B", groups=["something-else"], now=T0
        )
        assert again.user_id == user.user_id and again.display_name == "Olga B"
        got = {
            (g.role, g.delivery_stream_id, g.source) for g in roles.list_roles(conn, user.user_id)
        }
        assert got == {("viewer", None, "manual")}
        assert "role.sync_groups" in _actions(conn)
        rows = conn.execute(sa.select(sa.func.count()).select_from(user_roles)).scalar_one()
        assert rows == 1


def test_unmap_group(org: sa.Engine) -> None:
    with org.begin() as conn:
        made = roles.map_group(conn, group_pattern="g", role="viewer", actor="cli")
        assert roles.unmap_group(conn, made.mapping_id, actor="cli") == made
        assert roles.list_mappings(conn) == []
        with pytest.raises(AccessNotFound):
            roles.unmap_group(conn, made.mapping_id, actor="cli")
