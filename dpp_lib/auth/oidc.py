"""OpenID Connect sign-in (spec §3.2.1) against Microsoft Entra ID or any OpenID provider.

The authorization-code flow with PKCE (S256), ``state`` and ``nonce``:

1. ``begin_login`` stores a pending login in ``oidc_login_states`` (a hash of ``state``,
   never the state itself; the nonce, the PKCE verifier, where to go next) and returns the
   provider's authorization URL;
2. the provider sends the browser back with ``code`` and ``state``; ``complete_login``
   consumes the pending login once (an unknown, expired or replayed state is refused),
   exchanges the code with the client secret and the verifier, and validates the ID token:
   signature against the provider's JWKS (fetched again once for an unknown key id),
   issuer, audience (``azp`` when there are several), expiry and issue time with a small
   leeway, nonce;
3. the claims become an ``OidcIdentity`` (email, display name, groups) that the caller turns
   into a user and a session.

A refusal is an ``OidcRefused`` whose ``reason`` is a short code for the log and the audit
log (the user sees a generic page). An unreachable or invalid provider is
``OidcUnavailable``, naming the URL.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import secrets
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx
import sqlalchemy as sa
from authlib.integrations.httpx_client import (  # type: ignore[import-untyped]
    OAuth2Client,
    OAuthError,
)
from joserfc import jwt
from joserfc.errors import BadSignatureError, InvalidKeyIdError, JoseError
from joserfc.jwk import KeySet

from dpp_lib.errors import DppError, SettingsError
from dpp_lib.settings import Settings
from dpp_lib.store.schema import oidc_login_states

log = logging.getLogger(__name__)

LOGIN_STATE_TTL = timedelta(minutes=10)  # from the redirect to the provider to the callback
CLOCK_LEEWAY_SECONDS = 60  # for exp and iat: clocks of the provider and ours may differ
DISCOVERY_TTL_SECONDS = 3600.0
JWKS_REFRESH_MIN_SECONDS = 10.0  # an unknown kid fetches the keys again, at most this often
SIGNING_ALGORITHMS = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512"}
)


class OidcUnavailable(DppError):
    """The identity provider cannot be used: discovery, keys or the token endpoint failed."""

    code = "oidc_unavailable"
    http_status = 503


class OidcRefused(DppError):
    """A sign-in was refused; ``reason`` is a short code for the log and the audit log."""

    code = "oidc_refused"
    http_status = 401

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(f"OIDC sign-in refused ({reason}): {message}")
        self.reason = reason


@dataclass(frozen=True)
class OidcConfig:
    """What the client needs; ``from_settings`` reads the secret from the secrets directory."""

    issuer_url: str
    client_id: str
    client_secret: str = field(repr=False)
    redirect_uri: str
    scopes: str = "openid profile email"
    group_claim: str = "groups"

    @classmethod
    def from_settings(cls, settings: Settings) -> OidcConfig:
        missing = [
            name
            for name, value in (
                ("OIDC_ISSUER_URL", settings.oidc_issuer_url),
                ("OIDC_CLIENT_ID", settings.oidc_client_id),
                ("OIDC_REDIRECT_URI", settings.oidc_redirect_uri),
            )
            if not value.strip()
        ]
        if missing:
            raise SettingsError(f"AUTH_METHOD=oidc needs {', '.join(missing)} to be set")
        if "openid" not in settings.oidc_scopes.split():
            raise SettingsError(f"OIDC_SCOPES must include 'openid' (is {settings.oidc_scopes!r})")
        for name, url in (
            ("OIDC_ISSUER_URL", settings.oidc_issuer_url),
            ("OIDC_REDIRECT_URI", settings.oidc_redirect_uri),
        ):
            if settings.environment == "production" and not _secure_or_loopback(url.strip()):
                raise SettingsError(f"{name} must be an https URL in production: {url}")
        secret = settings.read_secret("oidc_client_secret")
        if secret is None:
            raise SettingsError(
                f"no OIDC client secret at {settings.secret_path('oidc_client_secret')}; mount"
                " the secret the identity provider issued there (never in config or environment)"
            )
        return cls(
            issuer_url=settings.oidc_issuer_url.strip(),
            client_id=settings.oidc_client_id.strip(),
            client_secret=secret.decode(),
            redirect_uri=settings.oidc_redirect_uri.strip(),
            scopes=settings.oidc_scopes,
            group_claim=settings.oidc_group_claim,
        )


@dataclass(frozen=True)
class ProviderMetadata:
    """The parts of the discovery document the client uses."""

    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    signing_algorithms: frozenset[str]


@dataclass(frozen=True)
class OidcIdentity:
    """Who signed in, from the ID token's claims."""

    issuer: str
    subject: str
    email: str
    display_name: str
    groups: tuple[str, ...]


@dataclass(frozen=True)
class PendingLogin:
    nonce: str
    code_verifier: str
    next_url: str | None


@dataclass(frozen=True)
class StartedLogin:
    url: str  # the provider's authorization URL to send the browser to
    state: str  # for the caller to bind to the browser (never stored in the clear)


@dataclass(frozen=True)
class CompletedLogin:
    identity: OidcIdentity
    next_url: str | None


class OidcClient:
    """One relying party: discovery and keys cached per process, safe to share by threads."""

    def __init__(
        self, config: OidcConfig, *, timeout: float = 10.0, leeway: int = CLOCK_LEEWAY_SECONDS
    ) -> None:
        self.config = config
        self.timeout = timeout
        self.leeway = leeway
        self._lock = threading.Lock()
        self._metadata: tuple[float, ProviderMetadata] | None = None
        self._keys: tuple[float, KeySet] | None = None

    @property
    def discovery_url(self) -> str:
        return self.config.issuer_url.rstrip("/") + "/.well-known/openid-configuration"

    def metadata(self) -> ProviderMetadata:
        """The provider's discovery document, fetched once an hour."""
        with self._lock:
            if self._metadata and time.monotonic() - self._metadata[0] < DISCOVERY_TTL_SECONDS:
                return self._metadata[1]
        found = self._discover()
        with self._lock:
            self._metadata = (time.monotonic(), found)
        return found

    def _discover(self) -> ProviderMetadata:
        url = self.discovery_url
        doc = self._get_json(url, "discovery")
        missing = [
            k
            for k in ("issuer", "authorization_endpoint", "token_endpoint", "jwks_uri")
            if not isinstance(doc.get(k), str) or not doc[k]
        ]
        if missing:
            raise OidcUnavailable(f"OIDC discovery at {url}: missing {', '.join(missing)}")
        if doc["issuer"].rstrip("/") != self.config.issuer_url.rstrip("/"):
            raise OidcUnavailable(
                f"OIDC discovery at {url}: the document names issuer {doc['issuer']!r}, not the"
                f" configured OIDC_ISSUER_URL {self.config.issuer_url!r} (for Entra ID use the"
                " tenant's own issuer, https://login.microsoftonline.com/<tenant id>/v2.0)"
            )
        methods = doc.get("code_challenge_methods_supported")
        if isinstance(methods, list) and "S256" not in methods:
            raise OidcUnavailable(f"OIDC discovery at {url}: the provider does not offer PKCE S256")
        offered = doc.get("id_token_signing_alg_values_supported") or ["RS256"]
        algorithms = SIGNING_ALGORITHMS.intersection(offered)
        if not algorithms:
            raise OidcUnavailable(
                f"OIDC discovery at {url}: no asymmetric ID-token signing algorithm in {offered}"
            )
        return ProviderMetadata(
            issuer=doc["issuer"],
            authorization_endpoint=doc["authorization_endpoint"],
            token_endpoint=doc["token_endpoint"],
            jwks_uri=doc["jwks_uri"],
            signing_algorithms=frozenset(algorithms),
        )

    def _get_json(self, url: str, what: str) -> dict[str, Any]:
        try:
            response = httpx.get(url, timeout=self.timeout, follow_redirects=False)
        except httpx.HTTPError as exc:
            raise OidcUnavailable(f"OIDC {what} at {url} is unreachable: {exc!r}") from exc
        if response.status_code != 200:
            raise OidcUnavailable(f"OIDC {what} at {url} answered HTTP {response.status_code}")
        try:
            doc = response.json()
        except ValueError:
            doc = None
        if not isinstance(doc, dict):
            raise OidcUnavailable(f"OIDC {what} at {url} did not answer a JSON object")
        return doc

    def signing_keys(self, *, refresh: bool = False) -> KeySet:
        """The provider's JWKS; ``refresh`` fetches it again unless it was just fetched."""
        with self._lock:
            cached = self._keys
        if cached and (not refresh or time.monotonic() - cached[0] < JWKS_REFRESH_MIN_SECONDS):
            return cached[1]
        url = self.metadata().jwks_uri
        doc = self._get_json(url, "JWKS")
        try:
            keys = KeySet.import_key_set(doc)  # type: ignore[arg-type]
        except (JoseError, KeyError, TypeError, ValueError) as exc:
            raise OidcUnavailable(f"OIDC JWKS at {url} holds no usable key: {exc}") from exc
        with self._lock:
            self._keys = (time.monotonic(), keys)
        return keys

    def authorization_url(self, *, state: str, nonce: str, code_verifier: str) -> str:
        with self._oauth() as oauth:
            url, _ = oauth.create_authorization_url(
                self.metadata().authorization_endpoint,
                state=state,
                nonce=nonce,
                code_verifier=code_verifier,
            )
        return str(url)

    def exchange_code(self, *, code: str, code_verifier: str) -> dict[str, Any]:
        """The token response for ``code`` (client secret and PKCE verifier sent)."""
        endpoint = self.metadata().token_endpoint
        try:
            with self._oauth() as oauth:
                token = oauth.fetch_token(
                    endpoint,
                    grant_type="authorization_code",
                    code=code,
                    code_verifier=code_verifier,
                )
        except OAuthError as exc:
            raise OidcRefused(
                "token_exchange_failed",
                f"the token endpoint {endpoint} answered {exc.error}: {exc.description}",
            ) from exc
        except httpx.HTTPError as exc:
            raise OidcUnavailable(f"OIDC token endpoint {endpoint} failed: {exc!r}") from exc
        return dict(token)

    def _oauth(self) -> OAuth2Client:
        return OAuth2Client(
            client_id=self.config.client_id,
            client_secret=self.config.client_secret,
            scope=self.config.scopes,
            redirect_uri=self.config.redirect_uri,
            code_challenge_method="S256",
            timeout=self.timeout,
        )

    def validate_id_token(self, id_token: str, *, nonce: str, now: datetime) -> dict[str, Any]:
        """The ID token's claims once its signature, issuer, audience, times and nonce hold."""
        metadata = self.metadata()
        header = _header(id_token)
        alg = header.get("alg")
        if alg not in metadata.signing_algorithms:
            raise OidcRefused(
                "unsupported_algorithm",
                f"ID token signed with {alg!r}; accepted: {sorted(metadata.signing_algorithms)}",
            )
        kid = header.get("kid")
        key_id = kid if isinstance(kid, str) else None
        try:
            key = self.signing_keys().get_by_kid(key_id)
        except InvalidKeyIdError:
            log.info("OIDC: unknown signing key %r, fetching the provider's keys again", kid)
            try:
                key = self.signing_keys(refresh=True).get_by_kid(key_id)
            except InvalidKeyIdError:
                raise OidcRefused("unknown_key", f"no key {kid!r} in the provider's JWKS") from None
        try:
            claims = jwt.decode(id_token, key, algorithms=[str(alg)]).claims
        except BadSignatureError:
            raise OidcRefused("bad_signature", "the ID token's signature does not verify") from None
        except (JoseError, ValueError) as exc:
            raise OidcRefused("malformed_token", f"the ID token cannot be read: {exc}") from None
        self._check_claims(claims, metadata=metadata, nonce=nonce, now=now)
        return claims

    def _check_claims(
        self, claims: Mapping[str, Any], *, metadata: ProviderMetadata, nonce: str, now: datetime
    ) -> None:
        for name in ("iss", "sub", "aud", "exp", "iat"):
            if name not in claims:
                raise OidcRefused("missing_claim", f"the ID token has no {name!r} claim")
        if claims["iss"] != metadata.issuer:
            raise OidcRefused(
                "wrong_issuer", f"issuer {claims['iss']!r} is not {metadata.issuer!r}"
            )
        audience = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
        client_id = self.config.client_id
        if client_id not in audience:
            raise OidcRefused("wrong_audience", f"audience {audience} does not name {client_id!r}")
        azp = claims.get("azp")
        if (len(audience) > 1 or azp is not None) and azp != client_id:
            raise OidcRefused("wrong_audience", f"authorised party {azp!r} is not {client_id!r}")
        moment = now.timestamp()
        if not isinstance(claims["exp"], int | float) or not isinstance(claims["iat"], int | float):
            raise OidcRefused("malformed_token", "exp and iat must be numbers")
        if moment > claims["exp"] + self.leeway:
            raise OidcRefused("expired_token", f"the ID token expired at {claims['exp']}")
        if claims["iat"] > moment + self.leeway:
            raise OidcRefused("issued_in_future", f"the ID token is issued at {claims['iat']}")
        got = claims.get("nonce")
        if not isinstance(got, str) or not hmac.compare_digest(got.encode(), nonce.encode()):
            raise OidcRefused("wrong_nonce", "the ID token's nonce is not this sign-in's")


def _secure_or_loopback(url: str) -> bool:
    """https, or http to this machine (tests and local development): spec §8.4."""
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return True
    return parts.scheme == "http" and parts.hostname in ("127.0.0.1", "localhost", "::1")


def _header(token: str) -> dict[str, Any]:
    segment = token.split(".", 1)[0]
    try:
        header = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    except ValueError:
        header = None
    if token.count(".") != 2 or not isinstance(header, dict):
        raise OidcRefused("malformed_token", "the ID token is not a signed JWT")
    return header


def identity_from_claims(claims: Mapping[str, Any], *, group_claim: str) -> OidcIdentity:
    """Email (``email``, else Entra ID's ``preferred_username`` or ``upn``), display name
    (``name``, else the email) and groups (the ``group_claim`` list; none when absent)."""
    email = next(
        (
            str(claims[k]).strip().lower()
            for k in ("email", "preferred_username", "upn")
            if isinstance(claims.get(k), str) and "@" in claims[k]
        ),
        None,
    )
    if email is None:
        raise OidcRefused(
            "no_email", "the ID token has no email, preferred_username or upn with an address"
        )
    names = claims.get("_claim_names")
    if (isinstance(names, dict) and group_claim in names) or claims.get("hasgroups"):
        raise OidcRefused(
            "group_overage",
            f"the ID token leaves out the {group_claim!r} claim (too many groups); configure the"
            " app registration to emit only the groups assigned to the application",
        )
    raw = claims.get(group_claim, [])
    groups = [raw] if isinstance(raw, str) else raw
    if not isinstance(groups, list) or not all(isinstance(g, str) for g in groups):
        raise OidcRefused("bad_groups", f"the {group_claim!r} claim is not a list of names")
    name = claims.get("name")
    return OidcIdentity(
        issuer=str(claims["iss"]),
        subject=str(claims["sub"]),
        email=email,
        display_name=name.strip() if isinstance(name, str) and name.strip() else email,
        groups=tuple(dict.fromkeys(groups)),
    )


def _state_hash(state: str) -> str:
    return hashlib.sha256(state.encode()).hexdigest()


def begin_login(
    conn: sa.Connection, client: OidcClient, *, next_url: str | None, now: datetime
) -> StartedLogin:
    """Store a pending login; the provider's authorization URL to redirect to and the state."""
    url_state, nonce = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    code_verifier = secrets.token_urlsafe(64)  # 86 characters (RFC 7636: 43 to 128)
    url = client.authorization_url(state=url_state, nonce=nonce, code_verifier=code_verifier)
    conn.execute(
        oidc_login_states.delete().where(oidc_login_states.c.expires_at < now - LOGIN_STATE_TTL)
    )
    conn.execute(
        oidc_login_states.insert().values(
            state_hash=_state_hash(url_state),
            nonce=nonce,
            code_verifier=code_verifier,
            next_url=next_url,
            created_at=now,
            expires_at=now + LOGIN_STATE_TTL,
        )
    )
    return StartedLogin(url, url_state)


def consume_login_state(conn: sa.Connection, *, state: str, now: datetime) -> PendingLogin:
    """The pending login of ``state``, marked used; unknown, used or expired ones refused."""
    table = oidc_login_states
    key = _state_hash(state)
    row = conn.execute(sa.select(table).where(table.c.state_hash == key)).one_or_none()
    if row is None:
        raise OidcRefused("unknown_state", "no sign-in was started with this state")
    if row.consumed_at is not None:
        raise OidcRefused("replayed_state", f"this state was used at {row.consumed_at:%H:%M:%S}")
    if row.expires_at <= now:
        raise OidcRefused("expired_state", f"this sign-in expired at {row.expires_at:%H:%M:%S}")
    used = conn.execute(
        table.update()
        .where(table.c.state_hash == key, table.c.consumed_at.is_(None))
        .values(consumed_at=now)
    )
    if used.rowcount != 1:  # another request consumed it between the two statements
        raise OidcRefused("replayed_state", "this state was used by a concurrent request")
    return PendingLogin(row.nonce, row.code_verifier, row.next_url)


def complete_login(
    engine: sa.Engine,
    client: OidcClient,
    *,
    state: str,
    code: str,
    now: datetime,
    started_here: bool = True,
    error: str = "",
    error_description: str = "",
) -> CompletedLogin:
    """Consume the state (committed at once, so it never serves twice), exchange the code
    and validate the ID token. ``started_here`` says whether the browser showing the state
    is the one that started the sign-in (the caller's cookie check): a state from another
    browser is refused, so nobody can sign a victim in as themselves (login CSRF).
    ``error`` is the provider's own refusal (``access_denied`` when the user declines, for
    example): the state is consumed and the sign-in refused."""
    with engine.begin() as conn:
        pending = consume_login_state(conn, state=state, now=now)
    if not started_here:
        raise OidcRefused(
            "state_from_another_browser", "this browser did not start the sign-in it returns"
        )
    if error:
        raise OidcRefused("provider_error", f"the provider answered {error}: {error_description}")
    if not code:
        raise OidcRefused("no_code", "the provider sent no authorization code")
    tokens = client.exchange_code(code=code, code_verifier=pending.code_verifier)
    id_token = tokens.get("id_token")
    if not isinstance(id_token, str):
        raise OidcRefused("no_id_token", "the token response carries no ID token")
    claims = client.validate_id_token(id_token, nonce=pending.nonce, now=now)
    identity = identity_from_claims(claims, group_claim=client.config.group_claim)
    return CompletedLogin(identity, pending.next_url)
