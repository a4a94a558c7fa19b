"""Configuration and access tables: spec §3.2–§3.3 and §4.2, plus DESIGN §3 extras."""

from __future__ import annotations

import sqlalchemy as sa

from dpp_lib.store.types import JSONB, StrArray, UtcDateTime, new_id

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

STAGES = ("backlog", "ba", "dev", "code_review", "qa", "uat", "done", "cancelled")
ROLES = ("viewer", "team_member", "stream_lead", "platform_admin")
AUTH_SOURCES = ("database", "oidc")
ROLE_SOURCES = ("manual", "group")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def _created() -> sa.Column[object]:
    return sa.Column("created_at", UtcDateTime, nullable=False, server_default=sa.func.now())


# --- §3.2.2 / §3.3: users, roles, sessions -------------------------------------------------
users = sa.Table(
    "users",
    metadata,
    sa.Column("user_id", sa.Uuid, primary_key=True, default=new_id),
    sa.Column("email", sa.String(320), nullable=False, unique=True),
    sa.Column("display_name", sa.String(200), nullable=False),
    # Nullable (migration 0008): users signed in through OIDC have no password here.
    sa.Column("password_hash", sa.String(255)),
    sa.Column("is_active", sa.Boolean, nullable=False, server_default=sa.true()),
    _created(),
    sa.Column("last_login_at", UtcDateTime),
    # Addition (0008): how the user signs in, 'database' or 'oidc'.
    sa.Column("auth_source", sa.String(16), nullable=False, server_default="database"),
    sa.CheckConstraint(_in("auth_source", AUTH_SOURCES), name="auth_source"),
)

api_keys = sa.Table(
    "api_keys",
    metadata,
    sa.Column("key_id", sa.Uuid, primary_key=True, default=new_id),
    sa.Column("key_hash", sa.String(128), nullable=False, unique=True),
    # Addition: the first characters of the key, shown in listings to tell keys apart.
    sa.Column("key_prefix", sa.String(16), nullable=False),
    sa.Column("display_name", sa.String(200), nullable=False),
    sa.Column("permissions", StrArray, nullable=False),
    sa.Column("stream_scope", JSONB),
    sa.Column("is_active", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Column("created_by", sa.Uuid, sa.ForeignKey("users.user_id")),
    _created(),
    sa.Column("last_used_at", UtcDateTime),
    sa.Column("expires_at", UtcDateTime),
)

user_roles = sa.Table(
    "user_roles",
    metadata,
    sa.Column("user_role_id", sa.Uuid, primary_key=True, default=new_id),
    sa.Column("user_id", sa.Uuid, sa.ForeignKey("users.user_id"), nullable=False),
    sa.Column("role", sa.String(32), nullable=False),
    sa.Column("delivery_stream_id", sa.Uuid, sa.ForeignKey("delivery_streams.stream_id")),
    sa.Column("tech_stream_id", sa.Uuid, sa.ForeignKey("tech_streams.stream_id")),
    sa.Column("granted_by", sa.Uuid, sa.ForeignKey("users.user_id")),
    sa.Column("granted_at", UtcDateTime, nullable=False, server_default=sa.func.now()),
    # Addition (0008): 'manual' (granted by an admin, kept as an override) or 'group'
    # (derived from OIDC group claims, recomputed at each OIDC sign-in).
    sa.Column("source", sa.String(16), nullable=False, server_default="manual"),
    # One row per grant: a manual grant of a role and scope a group already gives turns
    # that row into 'manual' (dpp_lib.auth.roles), so the spec's key holds unchanged.
    sa.UniqueConstraint("user_id", "role", "delivery_stream_id", "tech_stream_id"),
    sa.CheckConstraint(_in("role", ROLES), name="role"),
    sa.CheckConstraint(_in("source", ROLE_SOURCES), name="source"),
)

sessions = sa.Table(
    "sessions",
    metadata,
    sa.Column("session_id", sa.Uuid, primary_key=True, default=new_id),
    sa.Column("user_id", sa.Uuid, sa.ForeignKey("users.user_id"), nullable=False),
    sa.Column("auth_method", sa.String(16), nullable=False),
    _created(),
    sa.Column("expires_at", UtcDateTime, nullable=False),
    sa.Column("last_activity_at", UtcDateTime),
    sa.Column("is_revoked", sa.Boolean, nullable=False, server_default=sa.false()),
    # Additions (0008): where the session was opened from, and when it was revoked.
    # session_id is derived from a hash of the cookie token (dpp_lib.auth.sessions).
    sa.Column("source_ip", sa.String(64)),
    sa.Column("user_agent", sa.String(500)),
    sa.Column("revoked_at", UtcDateTime),
    sa.CheckConstraint(_in("auth_method", ("oidc", "database")), name="auth_method"),
    sa.Index(None, "user_id"),
)

# Addition (0008): an OIDC authorisation request in flight, keyed by a hash of its state.
oidc_login_states = sa.Table(
    "oidc_login_states",
    metadata,
    sa.Column("state_hash", sa.String(128), primary_key=True),
    sa.Column("nonce", sa.String(255), nullable=False),
    sa.Column("code_verifier", sa.String(255), nullable=False),
    sa.Column("next_url", sa.Text),
    _created(),
    sa.Column("expires_at", UtcDateTime, nullable=False),
    sa.Column("consumed_at", UtcDateTime),
    sa.Index(None, "expires_at"),
)

# Addition (0008): failed sign-in attempts per account or per client address, shared by
# every API process ("account:<email>" / "ip:<address>").
login_attempts = sa.Table(
    "login_attempts",
    metadata,
    sa.Column("attempt_key", sa.String(400), primary_key=True),
    sa.Column("failures", sa.Integer, nullable=False),
    sa.Column("last_failure_at", UtcDateTime, nullable=False),
    sa.Column("blocked_until", UtcDateTime),
)

# Addition (0008): API key usage aggregated per key per hour (spec §8.4), written by each
# API process from in-memory counters, not once per request.
api_key_usage = sa.Table(
    "api_key_usage",
    metadata,
    sa.Column("key_id", sa.Uuid, sa.ForeignKey("api_keys.key_id"), primary_key=True),
    sa.Column("hour_start", UtcDateTime, primary_key=True),
    sa.Column("request_count", sa.BigInteger, nullable=False),
    sa.Column("last_used_at", UtcDateTime, nullable=False),
)

# --- §4.2: configuration ------------------------------------------------------------------
delivery_streams = sa.Table(
    "delivery_streams",
    metadata,
    sa.Column("stream_id", sa.Uuid, primary_key=True, default=new_id),
    sa.Column("name", sa.String(100), nullable=False, unique=True),
    sa.Column("display_name", sa.String(200), nullable=False),
    sa.Column("description", sa.Text),
    sa.Column("is_active", sa.Boolean, nullable=False, server_default=sa.true()),
    _created(),
    sa.Column("updated_at", UtcDateTime, nullable=False, server_default=sa.func.now()),
    # Additions: the API reports team_size; §4.6 makes min_contributors per stream.
    sa.Column("team_size", sa.Integer),
    sa.Column("min_contributors", sa.Integer),
    sa.Column("labels", StrArray),
)

tech_streams = sa.Table(
    "tech_streams",
    metadata,
    sa.Column("stream_id", sa.Uuid, primary_key=True, default=new_id),
    sa.Column("name", sa.String(100), nullable=False, unique=True),
    sa.Column("display_name", sa.String(200), nullable=False),
    sa.Column("github_org", sa.String(100), nullable=False, unique=True),
    sa.Column("github_install_id", sa.String(32), nullable=False),
    sa.Column("description", sa.Text),
    sa.Column("is_active", sa.Boolean, nullable=False, server_default=sa.true()),
    _created(),
    sa.Column("updated_at", UtcDateTime, nullable=False, server_default=sa.func.now()),
    # Additions: §5.3.4 makes the ticket-key pattern per tech stream; §4.6 min contributors.
    sa.Column("ticket_key_pattern", sa.Text),
    sa.Column("min_contributors", sa.Integer),
    sa.Index(None, "github_install_id"),
)

status_mappings = sa.Table(
    "status_mappings",
    metadata,
    sa.Column("mapping_id", sa.Uuid, primary_key=True, default=new_id),
    sa.Column("jira_project_key", sa.String(32), nullable=False),
    sa.Column("jira_status_name", sa.String(200), nullable=False),
    sa.Column("pipeline_stage", sa.String(16), nullable=False),
    sa.Column("is_active_work", sa.Boolean, nullable=False),
    sa.Column("display_order", sa.Integer, nullable=False),
    sa.UniqueConstraint("jira_project_key", "jira_status_name"),
    sa.CheckConstraint(_in("pipeline_stage", STAGES), name="pipeline_stage"),
)

repositories = sa.Table(
    "repositories",
    metadata,
    sa.Column("repo_id", sa.Uuid, primary_key=True, default=new_id),
    sa.Column("tech_stream_id", sa.Uuid, sa.ForeignKey("tech_streams.stream_id"), nullable=False),
    sa.Column("github_org", sa.String(100), nullable=False),
    sa.Column("github_repo_name", sa.String(200), nullable=False),
    sa.Column("full_name", sa.String(300), nullable=False),
    sa.Column("default_branch", sa.String(200), server_default="main"),
    sa.Column("is_deployable", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Column("deploy_target", sa.String(200)),
    sa.Column("is_active", sa.Boolean, nullable=False, server_default=sa.true()),
    # Addition: 'config' (from the org file) or 'discovered' (first seen in a webhook).
    sa.Column("origin", sa.String(16), nullable=False, server_default="config"),
    sa.UniqueConstraint("github_org", "github_repo_name"),
    sa.Index(None, "full_name"),
    sa.Index(None, "deploy_target"),
)

sprints = sa.Table(
    "sprints",
    metadata,
    sa.Column("sprint_id", sa.Uuid, primary_key=True, default=new_id),
    sa.Column("jira_sprint_id", sa.String(64), nullable=False, unique=True),
    sa.Column("delivery_stream_id", sa.Uuid, sa.ForeignKey("delivery_streams.stream_id")),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("start_date", sa.Date, nullable=False),
    sa.Column("end_date", sa.Date, nullable=False),
    sa.Column("goal", sa.Text),
    sa.Column("state", sa.String(16)),
    sa.CheckConstraint(_in("state", ("future", "active", "closed")), name="state"),
)

# --- DESIGN §3 / §4 extras -----------------------------------------------------------------
jira_projects = sa.Table(
    "jira_projects",
    metadata,
    sa.Column("project_id", sa.Uuid, primary_key=True, default=new_id),
    sa.Column("project_key", sa.String(32), nullable=False, unique=True),
    sa.Column("delivery_stream_id", sa.Uuid, sa.ForeignKey("delivery_streams.stream_id")),
    sa.Column("derivation", StrArray, nullable=False),
    sa.Column("components", JSONB, nullable=False),
    sa.Column("is_active", sa.Boolean, nullable=False, server_default=sa.true()),
)

org_settings = sa.Table(
    "org_settings",
    metadata,
    sa.Column("key", sa.String(100), primary_key=True),
    sa.Column("value", JSONB, nullable=False),
    sa.Column("updated_at", UtcDateTime, nullable=False, server_default=sa.func.now()),
)

# Addition: a version per stored-data topic (a table name, "config", "cache:<endpoint>").
# Writers bump it in the transaction that changes the data; API processes compare versions
# to invalidate cached answers (spec §7.3.4), across processes.
data_versions = sa.Table(
    "data_versions",
    metadata,
    sa.Column("topic", sa.String(100), primary_key=True),
    sa.Column("version", sa.BigInteger, nullable=False),
    sa.Column("changed_at", UtcDateTime, nullable=False),
)

group_role_mappings = sa.Table(
    "group_role_mappings",
    metadata,
    sa.Column("mapping_id", sa.Uuid, primary_key=True, default=new_id),
    sa.Column("group_pattern", sa.String(300), nullable=False),
    sa.Column("is_regex", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("role", sa.String(32), nullable=False),
    sa.Column("delivery_stream_id", sa.Uuid, sa.ForeignKey("delivery_streams.stream_id")),
    sa.Column("tech_stream_id", sa.Uuid, sa.ForeignKey("tech_streams.stream_id")),
    # Addition (0008): who created the mapping.
    sa.Column("created_by", sa.Uuid, sa.ForeignKey("users.user_id")),
    _created(),
    sa.UniqueConstraint("group_pattern", "role", "delivery_stream_id", "tech_stream_id"),
    sa.CheckConstraint(_in("role", ROLES), name="role"),
)

audit_log = sa.Table(
    "audit_log",
    metadata,
    sa.Column("audit_id", sa.Uuid, primary_key=True, default=new_id),
    sa.Column("occurred_at", UtcDateTime, nullable=False, server_default=sa.func.now()),
    sa.Column("actor_type", sa.String(16), nullable=False),
    sa.Column("actor_id", sa.String(200)),
    sa.Column("action", sa.String(100), nullable=False),
    sa.Column("target_type", sa.String(50)),
    sa.Column("target_id", sa.String(200)),
    sa.Column("source_ip", sa.String(64)),
    sa.Column("details", JSONB),
    sa.Index(None, "occurred_at"),
    sa.CheckConstraint(_in("actor_type", ("user", "api_key", "cli", "system")), name="actor"),
)

alert_subscriptions = sa.Table(
    "alert_subscriptions",
    metadata,
    sa.Column("subscription_id", sa.Uuid, primary_key=True, default=new_id),
    sa.Column("url", sa.Text, nullable=False),
    sa.Column("conditions", StrArray),
    sa.Column("min_severity", sa.String(16)),
    sa.Column("retry_policy", JSONB),
    sa.Column("is_active", sa.Boolean, nullable=False, server_default=sa.true()),
    _created(),
)

system_alerts = sa.Table(
    "system_alerts",
    metadata,
    sa.Column("alert_id", sa.Uuid, primary_key=True, default=new_id),
    sa.Column("condition", sa.String(100), nullable=False),
    sa.Column("severity", sa.String(16), nullable=False),
    sa.Column("message", sa.Text, nullable=False),
    sa.Column("triggered_at", UtcDateTime, nullable=False),
    sa.Column("resolved_at", UtcDateTime),
    sa.Column("acknowledged_at", UtcDateTime),
    sa.Column("acknowledged_by", sa.String(200)),
    sa.Column("details", JSONB),
    sa.Index(None, "condition", "resolved_at"),
    sa.CheckConstraint(_in("severity", ("LOW", "MEDIUM", "HIGH", "CRITICAL")), name="severity"),
)
