"""Access: OIDC users, group-derived roles, session details, OIDC login states, sign-in
attempts and hourly API key usage

- users.password_hash nullable (OIDC users have none) and users.auth_source
  ('database' | 'oidc');
- user_roles.source ('manual' | 'group'): group-derived roles are recomputed at each OIDC
  sign-in, manual grants stay as an override;
- group_role_mappings.created_by;
- sessions.source_ip, user_agent, revoked_at (and an index on user_id for revoking all of a
  user's sessions);
- oidc_login_states: an authorisation request in flight (state hash, nonce, PKCE verifier);
- login_attempts: failed sign-ins per account and per client address, shared by processes;
- api_key_usage: requests per key per hour.

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

from dpp_lib.store.types import UtcDateTime

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.alter_column("password_hash", existing_type=sa.String(255), nullable=True)
        batch.add_column(
            sa.Column("auth_source", sa.String(16), server_default="database", nullable=False)
        )
        batch.create_check_constraint(
            op.f("ck_users_auth_source"), "auth_source IN ('database', 'oidc')"
        )
    with op.batch_alter_table("user_roles") as batch:
        batch.add_column(
            sa.Column("source", sa.String(16), server_default="manual", nullable=False)
        )
        batch.create_check_constraint(op.f("ck_user_roles_source"), "source IN ('manual', 'group')")
    with op.batch_alter_table("group_role_mappings") as batch:
        batch.add_column(sa.Column("created_by", sa.Uuid(), nullable=True))
        batch.create_foreign_key(
            op.f("fk_group_role_mappings_created_by_users"), "users", ["created_by"], ["user_id"]
        )
    with op.batch_alter_table("sessions") as batch:
        batch.add_column(sa.Column("source_ip", sa.String(64), nullable=True))
        batch.add_column(sa.Column("user_agent", sa.String(500), nullable=True))
        batch.add_column(sa.Column("revoked_at", UtcDateTime(timezone=True), nullable=True))
        batch.create_index(op.f("ix_sessions_user_id"), ["user_id"], unique=False)
    op.create_table(
        "oidc_login_states",
        sa.Column("state_hash", sa.String(128), nullable=False),
        sa.Column("nonce", sa.String(255), nullable=False),
        sa.Column("code_verifier", sa.String(255), nullable=False),
        sa.Column("next_url", sa.Text(), nullable=True),
        sa.Column(
            "created_at", UtcDateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column("expires_at", UtcDateTime(timezone=True), nullable=False),
        sa.Column("consumed_at", UtcDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("state_hash", name=op.f("pk_oidc_login_states")),
    )
    op.create_index(
        op.f("ix_oidc_login_states_expires_at"), "oidc_login_states", ["expires_at"], unique=False
    )
    op.create_table(
        "login_attempts",
        sa.Column("attempt_key", sa.String(400), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("last_failure_at", UtcDateTime(timezone=True), nullable=False),
        sa.Column("blocked_until", UtcDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("attempt_key", name=op.f("pk_login_attempts")),
    )
    op.create_table(
        "api_key_usage",
        sa.Column("key_id", sa.Uuid(), nullable=False),
        sa.Column("hour_start", UtcDateTime(timezone=True), nullable=False),
        sa.Column("request_count", sa.BigInteger(), nullable=False),
        sa.Column("last_used_at", UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["key_id"], ["api_keys.key_id"], name=op.f("fk_api_key_usage_key_id_api_keys")
        ),
        sa.PrimaryKeyConstraint("key_id", "hour_start", name=op.f("pk_api_key_usage")),
    )


def downgrade() -> None:
    op.drop_table("api_key_usage")
    op.drop_table("login_attempts")
    op.drop_index(op.f("ix_oidc_login_states_expires_at"), table_name="oidc_login_states")
    op.drop_table("oidc_login_states")
    with op.batch_alter_table("sessions") as batch:
        batch.drop_index(op.f("ix_sessions_user_id"))
        batch.drop_column("revoked_at")
        batch.drop_column("user_agent")
        batch.drop_column("source_ip")
    with op.batch_alter_table("group_role_mappings") as batch:
        batch.drop_constraint(op.f("fk_group_role_mappings_created_by_users"), type_="foreignkey")
        batch.drop_column("created_by")
    with op.batch_alter_table("user_roles") as batch:
        batch.drop_constraint(op.f("ck_user_roles_source"), type_="check")
        batch.drop_column("source")
    # Users without a password (OIDC) cannot survive the NOT NULL: they are refused here.
    with op.batch_alter_table("users") as batch:
        batch.drop_constraint(op.f("ck_users_auth_source"), type_="check")
        batch.drop_column("auth_source")
        batch.alter_column("password_hash", existing_type=sa.String(255), nullable=False)
