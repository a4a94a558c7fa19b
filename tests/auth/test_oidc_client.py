"""dpp_lib.auth.oidc against a real OpenID provider (npm oidc-provider on loopback):
discovery, PKCE and state, the code exchange with the client secret from the secrets
directory, and ID-token validation with real provider-issued tokens, intact or modified."""

from __future__ import annotations

import base64
import hashlib
import json
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from dpp_lib.auth.oidc import (
    CLOCK_LEEWAY_SECONDS,
    LOGIN_STATE_TTL,
    OidcClient,
    OidcConfig,
    OidcRefused,
    OidcUnavailable,
    begin_login,
    complete_login,
    consume_login_state,
    identity_from_claims,
)
from dpp_lib.errors import SettingsError
from dpp_lib.settings import Settings
from dpp_lib.store.schema import oidc_login_states
from dpp_lib.store.types import now_utc
from tests.auth.oidc_support import (
    CLIENT_ID,
    CLIENT_SECRET,
    OTHER_CLIENT_ID,
    OTHER_CLIENT_SECRET,
    RunningProvider,
    client_registration,
    query,
    run_provider,
    sign_in_at_provider,
)

REDIRECT_URI = "http://testserver/auth/callback"


@pytest.fixture(scope="module")
def provider(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningProvider]:
    clients = [
        client_registration(CLIENT_ID, CLIENT_SECRET, [REDIRECT_URI]),
        client_registration(OTHER_CLIENT_ID, OTHER_CLIENT_SECRET, [REDIRECT_URI]),
    ]
    with run_provider(tmp_path_factory.mktemp("oidc-provider"), clients=clients) as running:
        yield running


@pytest.fixture(scope="module")
def second_provider(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningProvider]:
    """Another issuer with keys of its own, and the same client registered."""
    clients = [client_registration(CLIENT_ID, CLIENT_SECRET, [REDIRECT_URI])]
    with run_provider(tmp_path_factory.mktemp("oidc-provider-2"), clients=clients) as running:
        yield running


def make_config(issuer: str, **overrides: Any) -> OidcConfig:
    values: dict[str, Any] = {
        "issuer_url": issuer,
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "redirect_uri": REDIRECT_URI,
    }
    return OidcConfig(**(values | overrides))


@pytest.fixture
def client(provider: RunningProvider) -> OidcClient:
    return OidcClient(make_config(provider.issuer))


def sign_in(
    engine: sa.Engine, client: OidcClient, *, login: str = "alice", next_url: str | None = None
) -> tuple[str, str]:
    """A sign-in started here and finished at the provider: (state, code)."""
    with engine.begin() as conn:
        url = begin_login(conn, client, next_url=next_url, now=now_utc()).url
    back = query(sign_in_at_provider(url, login=login, redirect_uri=REDIRECT_URI))
    return back["state"], back["code"]


def issued_id_token(engine: sa.Engine, client: OidcClient, login: str = "alice") -> tuple[str, str]:
    """A real ID token issued to ``client``: (token, the nonce it must carry)."""
    state, code = sign_in(engine, client, login=login)
    with engine.begin() as conn:
        pending = consume_login_state(conn, state=state, now=now_utc())
    tokens = client.exchange_code(code=code, code_verifier=pending.code_verifier)
    return tokens["id_token"], pending.nonce


def b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def unb64(segment: str) -> dict[str, Any]:
    decoded: dict[str, Any] = json.loads(
        base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    )
    return decoded


def refusal(exc: pytest.ExceptionInfo[OidcRefused]) -> str:
    return exc.value.reason


# --- discovery and configuration ----------------------------------------------------------


def test_discovery_reads_the_providers_endpoints(
    client: OidcClient, provider: RunningProvider
) -> None:
    metadata = client.metadata()
    assert metadata.issuer == provider.issuer
    assert metadata.token_endpoint.startswith(provider.issuer)
    assert "RS256" in metadata.signing_algorithms
    assert client.metadata() is metadata  # cached


def test_discovery_failure_names_the_url(provider: RunningProvider) -> None:
    unreachable = OidcClient(make_config("http://127.0.0.1:9/tenant"), timeout=2)
    with pytest.raises(OidcUnavailable) as exc:
        unreachable.metadata()
    assert "http://127.0.0.1:9/tenant/.well-known/openid-configuration" in exc.value.message
    assert "unreachable" in exc.value.message

    wrong_path = OidcClient(make_config(provider.issuer + "/no-such-tenant"))
    with pytest.raises(OidcUnavailable) as exc:
        wrong_path.metadata()
    assert f"{provider.issuer}/no-such-tenant/.well-known/openid-configuration" in exc.value.message
    assert "HTTP 404" in exc.value.message


def test_discovery_refuses_a_document_of_another_issuer(provider: RunningProvider) -> None:
    # the configured issuer must be the one the document names (OpenID Discovery §4.3)
    host_alias = provider.issuer.replace("127.0.0.1", "localhost")
    with pytest.raises(OidcUnavailable) as exc:
        OidcClient(make_config(host_alias)).metadata()
    assert f"names issuer '{provider.issuer}'" in exc.value.message


def oidc_settings(settings: Settings, issuer: str) -> Settings:
    return settings.model_copy(
        update={
            "auth_method": "oidc",
            "oidc_issuer_url": issuer,
            "oidc_client_id": CLIENT_ID,
            "oidc_redirect_uri": REDIRECT_URI,
        }
    )


def test_client_secret_comes_from_the_secrets_directory_only(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    configured = oidc_settings(settings, "https://login.example.test/tenant/v2.0")
    for name in ("OIDC_CLIENT_SECRET", "DPP_OIDC_CLIENT_SECRET"):
        monkeypatch.setenv(name, "secret-from-the-environment")
    with pytest.raises(SettingsError) as exc:
        OidcConfig.from_settings(configured)
    assert str(settings.secrets_dir / "oidc_client_secret") in exc.value.message

    (settings.secrets_dir / "oidc_client_secret").write_text(CLIENT_SECRET + "\n")
    config = OidcConfig.from_settings(configured)
    assert config.client_secret == CLIENT_SECRET
    assert CLIENT_SECRET not in repr(config)


@pytest.mark.parametrize(
    ("issuer", "redirect", "named"),
    [
        (
            "http://login.example.test/t/v2.0",
            "https://dpp.example.test/auth/callback",
            "OIDC_ISSUER_URL",
        ),
        (
            "https://login.example.test/t/v2.0",
            "http://dpp.example.test/auth/callback",
            "OIDC_REDIRECT_URI",
        ),
        ("login.example.test/t/v2.0", "https://dpp.example.test/auth/callback", "OIDC_ISSUER_URL"),
    ],
)
def test_production_urls_must_be_https(
    settings: Settings, issuer: str, redirect: str, named: str
) -> None:
    (settings.secrets_dir / "oidc_client_secret").write_text(CLIENT_SECRET)
    configured = oidc_settings(settings, issuer).model_copy(
        update={"oidc_redirect_uri": redirect, "environment": "production"}
    )
    with pytest.raises(SettingsError) as exc:
        OidcConfig.from_settings(configured)
    assert exc.value.message.startswith(f"{named} must be an https URL in production")
    good = configured.model_copy(
        update={
            "oidc_issuer_url": "https://login.example.test/t/v2.0",
            "oidc_redirect_uri": "https://dpp.example.test/auth/callback",
        }
    )
    assert OidcConfig.from_settings(good).issuer_url == "https://login.example.test/t/v2.0"
    loopback = good.model_copy(update={"oidc_issuer_url": "http://127.0.0.1:8080/t"})
    assert OidcConfig.from_settings(loopback).issuer_url == "http://127.0.0.1:8080/t"


def test_missing_settings_are_named(settings: Settings) -> None:
    with pytest.raises(SettingsError) as exc:
        OidcConfig.from_settings(settings.model_copy(update={"auth_method": "oidc"}))
    assert "OIDC_ISSUER_URL, OIDC_CLIENT_ID, OIDC_REDIRECT_URI" in exc.value.message


# --- the flow -------------------------------------------------------------------------------


def test_sign_in_with_pkce_state_and_nonce(
    engine: sa.Engine, client: OidcClient, provider: RunningProvider
) -> None:
    with engine.begin() as conn:
        url = begin_login(conn, client, next_url="/dashboards/?stream=payments", now=now_utc()).url
    params = query(url)
    assert url.startswith(provider.issuer + "/auth?")
    assert params["code_challenge_method"] == "S256"
    assert params["client_id"] == CLIENT_ID and params["redirect_uri"] == REDIRECT_URI
    assert params["scope"] == "openid profile email"
    with engine.connect() as conn:
        rows = conn.execute(sa.select(oidc_login_states)).all()
    assert [r.state_hash for r in rows] == [hashlib.sha256(params["state"].encode()).hexdigest()]
    assert rows[0].nonce == params["nonce"]
    verifier_challenge = base64.urlsafe_b64encode(
        hashlib.sha256(rows[0].code_verifier.encode()).digest()
    ).rstrip(b"=")
    assert params["code_challenge"] == verifier_challenge.decode()

    back = query(sign_in_at_provider(url, login="alice", redirect_uri=REDIRECT_URI))
    done = complete_login(engine, client, state=back["state"], code=back["code"], now=now_utc())
    assert done.next_url == "/dashboards/?stream=payments"
    assert done.identity.email == "alice.admin@example.com"
    assert done.identity.display_name == "Alice Admin"
    assert done.identity.groups == ("dpp-platform-admins", "staff")
    assert (done.identity.subject, done.identity.issuer) == ("alice", provider.issuer)


def test_a_state_serves_once(engine: sa.Engine, client: OidcClient) -> None:
    state, code = sign_in(engine, client)
    complete_login(engine, client, state=state, code=code, now=now_utc())
    with pytest.raises(OidcRefused) as exc:
        complete_login(engine, client, state=state, code=code, now=now_utc())
    assert refusal(exc) == "replayed_state"


def test_unknown_and_expired_states_are_refused(engine: sa.Engine, client: OidcClient) -> None:
    with pytest.raises(OidcRefused) as exc:
        complete_login(engine, client, state="made-up", code="x", now=now_utc())
    assert refusal(exc) == "unknown_state"

    state, code = sign_in(engine, client)
    later = now_utc() + LOGIN_STATE_TTL + timedelta(seconds=1)
    with pytest.raises(OidcRefused) as exc:
        complete_login(engine, client, state=state, code=code, now=later)
    assert refusal(exc) == "expired_state"


def test_the_provider_refuses_a_code_without_its_pkce_verifier(
    engine: sa.Engine, client: OidcClient
) -> None:
    _, code = sign_in(engine, client)  # its verifier stays unused
    other_state, _ = sign_in(engine, client)
    with pytest.raises(OidcRefused) as exc:
        complete_login(engine, client, state=other_state, code=code, now=now_utc())
    assert refusal(exc) == "token_exchange_failed"
    assert "invalid_grant" in exc.value.message


def test_a_wrong_client_secret_is_refused_at_the_token_endpoint(
    engine: sa.Engine, provider: RunningProvider
) -> None:
    client = OidcClient(make_config(provider.issuer, client_secret="not-the-secret"))
    state, code = sign_in(engine, client)
    with pytest.raises(OidcRefused) as exc:
        complete_login(engine, client, state=state, code=code, now=now_utc())
    assert refusal(exc) == "token_exchange_failed"
    assert "invalid_client" in exc.value.message


def test_a_provider_error_consumes_the_state(engine: sa.Engine, client: OidcClient) -> None:
    with engine.begin() as conn:
        url = begin_login(conn, client, next_url=None, now=now_utc()).url
    back = query(sign_in_at_provider(url, login="alice", redirect_uri=REDIRECT_URI, consent=False))
    assert back["error"] == "access_denied"
    with pytest.raises(OidcRefused) as exc:
        complete_login(
            engine, client, state=back["state"], code="", error=back["error"], now=now_utc()
        )
    assert refusal(exc) == "provider_error"
    with pytest.raises(OidcRefused) as exc:
        complete_login(engine, client, state=back["state"], code="x", now=now_utc())
    assert refusal(exc) == "replayed_state"


# --- ID-token validation with real tokens ----------------------------------------------------


def test_a_real_token_validates(engine: sa.Engine, client: OidcClient) -> None:
    token, nonce = issued_id_token(engine, client, login="pat")
    claims = client.validate_id_token(token, nonce=nonce, now=now_utc())
    assert claims["aud"] == CLIENT_ID and claims["groups"] == ["dpp-payments-leads"]


def test_a_tampered_token_is_refused(engine: sa.Engine, client: OidcClient) -> None:
    token, nonce = issued_id_token(engine, client, login="pat")
    header, payload, signature = token.split(".")
    claims = unb64(payload) | {"groups": ["dpp-platform-admins"]}
    with pytest.raises(OidcRefused) as exc:
        client.validate_id_token(f"{header}.{b64(claims)}.{signature}", nonce=nonce, now=now_utc())
    assert refusal(exc) == "bad_signature"


def test_a_token_for_another_client_is_refused(
    engine: sa.Engine, client: OidcClient, provider: RunningProvider
) -> None:
    other = OidcClient(
        make_config(provider.issuer, client_id=OTHER_CLIENT_ID, client_secret=OTHER_CLIENT_SECRET)
    )
    token, nonce = issued_id_token(engine, other)
    assert other.validate_id_token(token, nonce=nonce, now=now_utc())["aud"] == OTHER_CLIENT_ID
    with pytest.raises(OidcRefused) as exc:
        client.validate_id_token(token, nonce=nonce, now=now_utc())
    assert refusal(exc) == "wrong_audience"


def test_a_wrong_nonce_is_refused(engine: sa.Engine, client: OidcClient) -> None:
    token, _ = issued_id_token(engine, client)
    with pytest.raises(OidcRefused) as exc:
        client.validate_id_token(token, nonce="another-sign-in", now=now_utc())
    assert refusal(exc) == "wrong_nonce"


def test_an_expired_token_is_refused(engine: sa.Engine, client: OidcClient) -> None:
    token, nonce = issued_id_token(engine, client)
    expires = unb64(token.split(".")[1])["exp"]
    moment = now_utc()
    at_expiry = moment + timedelta(seconds=expires - moment.timestamp())
    client.validate_id_token(
        token, nonce=nonce, now=at_expiry + timedelta(seconds=CLOCK_LEEWAY_SECONDS - 1)
    )
    with pytest.raises(OidcRefused) as exc:
        client.validate_id_token(
            token, nonce=nonce, now=at_expiry + timedelta(seconds=CLOCK_LEEWAY_SECONDS + 1)
        )
    assert refusal(exc) == "expired_token"


def test_a_token_issued_before_our_clock_allows_is_refused(
    engine: sa.Engine, client: OidcClient
) -> None:
    token, nonce = issued_id_token(engine, client)
    issued = unb64(token.split(".")[1])["iat"]
    moment = now_utc()
    at_issue = moment + timedelta(seconds=issued - moment.timestamp())
    early = at_issue - timedelta(seconds=CLOCK_LEEWAY_SECONDS + 1)
    with pytest.raises(OidcRefused) as exc:
        client.validate_id_token(token, nonce=nonce, now=early)
    assert refusal(exc) == "issued_in_future"


def test_a_token_of_another_issuer_name_is_refused(engine: sa.Engine, client: OidcClient) -> None:
    """The signature holds but ``iss`` is not the discovered issuer (as if the keys were
    shared by two issuers)."""
    token, nonce = issued_id_token(engine, client)
    metadata = client.metadata()
    client._metadata = (time.monotonic(), replace(metadata, issuer="https://elsewhere.test"))
    with pytest.raises(OidcRefused) as exc:
        client.validate_id_token(token, nonce=nonce, now=now_utc())
    assert refusal(exc) == "wrong_issuer"


def test_an_unsigned_or_hmac_token_is_refused(engine: sa.Engine, client: OidcClient) -> None:
    token, nonce = issued_id_token(engine, client)
    _, payload, _ = token.split(".")
    for alg in ("none", "HS256"):
        forged = f"{b64({'alg': alg, 'typ': 'JWT'})}.{payload}.c2ln"
        with pytest.raises(OidcRefused) as exc:
            client.validate_id_token(forged, nonce=nonce, now=now_utc())
        assert refusal(exc) == "unsupported_algorithm"


def test_a_token_signed_by_another_issuer_is_refused(
    engine: sa.Engine, client: OidcClient, second_provider: RunningProvider
) -> None:
    foreign = OidcClient(make_config(second_provider.issuer))
    token, nonce = issued_id_token(engine, foreign)
    with pytest.raises(OidcRefused) as exc:
        client.validate_id_token(token, nonce=nonce, now=now_utc())
    assert refusal(exc) == "unknown_key"


def test_an_unknown_key_id_fetches_the_keys_again_once(
    engine: sa.Engine,
    client: OidcClient,
    second_provider: RunningProvider,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    token, nonce = issued_id_token(engine, client)
    # the client holds keys that predate a rotation: another provider's, fetched long ago
    stale = OidcClient(make_config(second_provider.issuer)).signing_keys()
    client._keys = (0.0, stale)
    fetched: list[str] = []
    original = client._get_json

    def counting(url: str, what: str) -> dict[str, Any]:
        fetched.append(what)
        return original(url, what)

    monkeypatch.setattr(client, "_get_json", counting)
    assert client.validate_id_token(token, nonce=nonce, now=now_utc())["sub"] == "alice"
    assert fetched == ["JWKS"]
    client.validate_id_token(token, nonce=nonce, now=now_utc())
    assert fetched == ["JWKS"]  # the new keys are kept


# --- claims → identity ------------------------------------------------------------------------

BASE = {"iss": "https://issuer.test", "sub": "s-1"}


@pytest.mark.parametrize(
    ("claims", "email", "name", "groups"),
    [
        (
            {"email": "A@X.test", "name": "A", "groups": ["g1", "g2", "g1"]},
            "a@x.test",
            "A",
            ("g1", "g2"),
        ),
        ({"preferred_username": "b@x.test", "name": "B"}, "b@x.test", "B", ()),
        ({"upn": "c@x.test", "groups": "solo"}, "c@x.test", "c@x.test", ("solo",)),
        ({"email": "not-an-address", "preferred_username": "d@x.test"}, "d@x.test", "d@x.test", ()),
        ({"email": "e@x.test", "name": "  ", "groups": []}, "e@x.test", "e@x.test", ()),
    ],
)
def test_identity_from_claims(
    claims: dict[str, Any], email: str, name: str, groups: tuple[str, ...]
) -> None:
    identity = identity_from_claims(BASE | claims, group_claim="groups")
    assert (identity.email, identity.display_name, identity.groups) == (email, name, groups)


def test_the_group_claim_is_configurable() -> None:
    claims = BASE | {"email": "a@x.test", "groups": ["ignored"], "roles": ["DPP.Admin"]}
    assert identity_from_claims(claims, group_claim="roles").groups == ("DPP.Admin",)


@pytest.mark.parametrize(
    ("claims", "reason"),
    [
        ({"name": "No Mail"}, "no_email"),
        ({"preferred_username": "just-a-name"}, "no_email"),
        ({"email": "a@x.test", "_claim_names": {"groups": "src1"}}, "group_overage"),
        ({"email": "a@x.test", "hasgroups": True}, "group_overage"),
        ({"email": "a@x.test", "groups": [1, 2]}, "bad_groups"),
        ({"email": "a@x.test", "groups": {"a": 1}}, "bad_groups"),
    ],
)
def test_identity_refusals(claims: dict[str, Any], reason: str) -> None:
    with pytest.raises(OidcRefused) as exc:
        identity_from_claims(BASE | claims, group_claim="groups")
    assert refusal(exc) == reason
