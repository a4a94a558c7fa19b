"""Process settings (pydantic-settings). Secrets are read from files in ``DPP_SECRETS_DIR``.

Library functions never read the environment: the CLI and the service build a
``Settings`` once and pass what is needed down.
"""

from __future__ import annotations

import logging
import os
import secrets
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from dpp_lib.errors import SettingsError

log = logging.getLogger(__name__)

SECRET_NAMES = (
    "github_webhook_secret",
    "jira_webhook_secret",
    "anonymisation_key",
    "session_key",  # signs CSRF tokens and login throttling state
    "oidc_client_secret",  # spec §3.2.1: from the secrets directory, never config or env
)
# Secrets the embedded default creates on first run. Webhook secrets are generated too so
# that a fresh install verifies signatures from the start (the demo loader signs with them).
# The OIDC client secret comes from the identity provider: never generated.
GENERATED_SECRETS = tuple(n for n in SECRET_NAMES if n != "oidc_client_secret")
PLACEHOLDERS = {"changeme", "change-me", "secret", "password", "placeholder", "xxx", "test"}


class Settings(BaseSettings):
    """Settings for every DPP process, from ``DPP_*`` environment variables or ``.env``."""

    model_config = SettingsConfigDict(
        env_prefix="DPP_", env_file=".env", extra="ignore", populate_by_name=True
    )

    environment: Literal["dev", "test", "production"] = Field(
        "dev", description="dev and test allow generated secrets; production refuses them"
    )
    var_dir: Path = Field(Path("var"), description="Where the embedded database and files live")
    database_url: str = Field(
        "", description="SQLAlchemy URL; default: a SQLite file under var_dir"
    )
    secrets_dir: Path = Field(Path("var/secrets"), description="One file per secret")
    host: str = Field("127.0.0.1", description="Address the API listens on")
    port: int = Field(8000, description="Port the API listens on")
    max_body_bytes: int = Field(25 * 1024 * 1024, description="Largest accepted request body")
    api_pool_size: int = Field(
        16, description="Postgres connections per API process for the inbox (async pool)"
    )
    worker_nice: int = Field(
        10,
        ge=0,
        le=19,
        description="CPU niceness `dpp worker` adds to itself, so API requests come first",
    )
    worker_batch_size: int = Field(200, description="Inbox rows claimed per worker transaction")
    worker_max_attempts: int = Field(8, description="Attempts before a delivery is dead-lettered")
    worker_backoff_seconds: float = Field(2.0, description="First retry delay; doubles each time")
    worker_poll_seconds: float = Field(0.2, description="Idle wait between inbox polls")
    deferred_enrichment_delay_seconds: int = Field(
        300, description="Delay before retrying a PR whose ticket is unknown (spec §5.3.6)"
    )
    deferred_enrichment_max_attempts: int = Field(12, description="Retries before giving up")

    api_rate_limits: str = Field(
        "summary=100,trends=60,breakdown=60,drilldown=30",
        description="Requests per minute per API key and endpoint tier (metrics contract);"
        " tiers: summary (streams, realtime, diagnostic, forecast, pulse, cross-stream, admin),"
        " trends, breakdown, drilldown",
    )
    api_cache_max_mb: int = Field(256, description="Largest size of the API's response cache")
    api_cache_enabled: bool = Field(True, description="Cache metric answers (spec §7.3.4)")
    api_max_computations: int = Field(
        0,
        description="Uncached answers computed at once per API process (0: the CPU count);"
        " the rest queue, so a burst of cold requests cannot exhaust memory",
    )
    api_compute_in: Literal["processes", "threads"] = Field(
        "processes",
        description="Where uncached answers are computed: worker processes (a long computation"
        " never holds the GIL the cached answers are served with) or the API process's threads",
    )
    api_version_poll_seconds: float = Field(
        1.0, description="How often an API process checks for new data to invalidate its cache"
    )

    # --- sign-in (spec §3.2, §3.4): DPP_* or the spec's own names -----------------------
    auth_method: Literal["database", "oidc"] = Field(
        "database",
        validation_alias=AliasChoices("DPP_AUTH_METHOD", "AUTH_METHOD"),
        description="Interactive sign-in: database (argon2id passwords) or oidc (Entra ID);"
        " API keys work in parallel either way",
    )
    password_hash_algorithm: Literal["argon2id"] = Field(
        "argon2id",
        validation_alias=AliasChoices("DPP_PASSWORD_HASH_ALGORITHM", "PASSWORD_HASH_ALGORITHM"),
        description="Password hashing for database sign-in",
    )
    session_duration_minutes: int = Field(
        480,
        ge=5,
        le=7 * 24 * 60,
        validation_alias=AliasChoices("DPP_SESSION_DURATION_MINUTES", "SESSION_DURATION_MINUTES"),
        description="How long a sign-in lasts",
    )
    oidc_issuer_url: str = Field(
        "",
        validation_alias=AliasChoices("DPP_OIDC_ISSUER_URL", "OIDC_ISSUER_URL"),
        description="Issuer URL (discovery at <issuer>/.well-known/openid-configuration)",
    )
    oidc_client_id: str = Field(
        "",
        validation_alias=AliasChoices("DPP_OIDC_CLIENT_ID", "OIDC_CLIENT_ID"),
        description="Application (client) ID; the secret is the secrets file oidc_client_secret",
    )
    oidc_redirect_uri: str = Field(
        "",
        validation_alias=AliasChoices("DPP_OIDC_REDIRECT_URI", "OIDC_REDIRECT_URI"),
        description="Callback URL registered with the provider (…/auth/callback)",
    )
    oidc_scopes: str = Field(
        "openid profile email",
        validation_alias=AliasChoices("DPP_OIDC_SCOPES", "OIDC_SCOPES"),
        description="Scopes requested (openid profile email at least)",
    )
    oidc_group_claim: str = Field(
        "groups",
        validation_alias=AliasChoices("DPP_OIDC_GROUP_CLAIM", "OIDC_GROUP_CLAIM"),
        description="ID-token claim holding the user's groups",
    )

    # --- dashboards (DESIGN §8, §10): Voila behind the API's front door -----------------
    dashboards_enabled: bool = Field(
        True, description="Serve the Voila dashboards at /dashboards/ (`dpp up` starts Voila)"
    )
    voila_port: int = Field(
        8866, description="Loopback port Voila listens on; only the API's proxy talks to it"
    )
    voila_pool_size: int = Field(
        1,
        ge=0,
        description="Preheated kernels kept ready per dashboard notebook (0: preheating off)",
    )
    dashboards_dir: Path = Field(
        Path("notebooks/dashboards"), description="The dashboard notebooks Voila serves"
    )

    # --- notebooks, schedules, reports (DESIGN §7) -----------------------------------------
    notebooks_dir: Path = Field(
        Path("notebooks"), description="The compute, report and explore notebooks"
    )
    schedules_file: Path = Field(
        Path("schedules/schedules.yaml"), description="The scheduled jobs `dpp scheduler` runs"
    )
    scheduler_enabled: bool = Field(True, description="`dpp up` starts the scheduler too")
    reports_dir: Path = Field(
        Path("reports"),
        description="Retro reports (<stream>/<sprint>.html) and executed runs (runs/)",
    )

    def rate_limits(self) -> dict[str, int]:
        """``api_rate_limits`` parsed: tier → requests per minute."""
        out: dict[str, int] = {}
        for part in self.api_rate_limits.split(","):
            tier, sep, value = part.partition("=")
            if not sep or not value.strip().isdigit() or int(value) < 1:
                raise SettingsError(
                    f"DPP_API_RATE_LIMITS: {part.strip()!r} is not '<tier>=<requests per minute>'"
                )
            out[tier.strip()] = int(value)
        return out

    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.var_dir / 'dpp.sqlite3').resolve()}"

    @property
    def is_embedded(self) -> bool:
        return self.resolved_database_url().startswith("sqlite")

    def secret_path(self, name: str) -> Path:
        if name not in SECRET_NAMES:
            raise SettingsError(f"unknown secret {name!r}; known: {', '.join(SECRET_NAMES)}")
        return self.secrets_dir / name

    def read_secret(self, name: str) -> bytes | None:
        """The secret's bytes (surrounding whitespace stripped), or None when the file is absent."""
        path = self.secret_path(name)
        if not path.exists():
            return None
        value = path.read_bytes().strip()
        if not value:
            raise SettingsError(f"secret file {path} is empty")
        if (
            self.environment == "production"
            and value.decode(errors="ignore").lower() in PLACEHOLDERS
        ):
            raise SettingsError(f"secret file {path} holds a placeholder value")
        return value

    def anonymisation_key(self) -> bytes:
        key = self.read_secret("anonymisation_key")
        if key is None:
            raise SettingsError(
                f"no anonymisation key at {self.secret_path('anonymisation_key')}; "
                "run `dpp secrets init` or mount the secret"
            )
        return key


def ensure_secrets(settings: Settings) -> list[str]:
    """Create missing secrets (random, mode 0600) for the embedded default; returns their names.

    Outside the embedded default nothing is generated: production secrets come from the
    secrets manager. Values are never printed or logged.
    """
    if settings.environment == "production":
        return []
    settings.secrets_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(settings.secrets_dir, 0o700)
    created = []
    for name in GENERATED_SECRETS:
        path = settings.secret_path(name)
        if path.exists():
            continue
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_urlsafe(48))
        created.append(name)
    return created


def warn_missing_webhook_secrets(settings: Settings) -> list[str]:
    """Log a warning for each webhook source whose signature checking is off."""
    off = []
    for source in ("github", "jira"):
        name = f"{source}_webhook_secret"
        if not settings.secret_path(name).exists():
            off.append(source)
            log.warning(
                "no %s at %s: %s webhook signature checking is OFF",
                name,
                settings.secret_path(name),
                source,
            )
    return off
