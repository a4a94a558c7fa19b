"""Cached answers without the framework: the outermost ASGI layer answers a GET whose answer
is in the cache before routing, parameter validation and dependency resolution run.

It recognises a request it has answered before — the same path, query string and API key —
through an *alias* that ``serving.serve`` records after answering it the long way (which
resolved the stream names, parsed ``as_of`` and checked the key's scope). It still checks
everything that can change since: the key (revoked or expired keys are refused by the long
way: every revocation moves the ``api_keys`` data version), its permission, the config (a
renamed stream changes what a name means), the rate limit, and the cached answer's own data
versions and TTL. Anything it cannot answer it hands on untouched, so its answers are the same
bytes and headers as the long way's.
"""

from __future__ import annotations

import hashlib
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from starlette.types import ASGIApp, Receive, Scope, Send

from dpp_lib.access import Principal
from dpp_lib.store.api_keys import ApiKey
from dpp_lib.store.types import now_utc
from ingest_service.middleware import API_VERSION

if TYPE_CHECKING:
    from ingest_service.state import ServiceState

KEY_RECHECK_SECONDS = 60.0  # a key is read again this often even when no version moved
MAX_ALIASES = 100_000
MAX_KEYS = 10_000


def token_digest(token: str) -> bytes:
    """What the API process keeps of a key: its SHA-256, never the key."""
    return hashlib.sha256(token.encode()).digest()


def bearer_token(header: str) -> str | None:
    scheme, _, token = header.partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


@dataclass(frozen=True)
class _KnownKey:
    key: ApiKey
    principal: Principal
    version: int  # the ``api_keys`` data version when it was read
    read_at: float


class KnownKeys:
    """API keys read recently, by digest: valid while the ``api_keys`` version holds (create,
    revoke and every other change of a key moves it), for ``KEY_RECHECK_SECONDS`` at most,
    and only while the key itself is active and unexpired."""

    def __init__(self) -> None:
        self._keys: dict[bytes, _KnownKey] = {}
        self._lock = threading.Lock()

    def get(self, digest: bytes, versions: Mapping[str, int]) -> _KnownKey | None:
        known = self._keys.get(digest)
        if known is None:
            return None
        if (
            known.version != versions.get("api_keys", 0)
            or time.monotonic() - known.read_at > KEY_RECHECK_SECONDS
            or not known.key.usable(now_utc())
        ):
            with self._lock:
                self._keys.pop(digest, None)
            return None
        return known

    def put(self, digest: bytes, key: ApiKey, versions: Mapping[str, int]) -> None:
        known = _KnownKey(
            key, Principal.from_api_key(key), versions.get("api_keys", 0), time.monotonic()
        )
        with self._lock:
            if len(self._keys) >= MAX_KEYS:
                self._keys.clear()
            self._keys[digest] = known


@dataclass(frozen=True)
class Alias:
    """A request answered before: its cache key, what it needs, and the config it assumed."""

    cache_key: str
    permission: str
    tier: str
    config_version: int


class Aliases:
    def __init__(self) -> None:
        self._aliases: dict[tuple[str, bytes, bytes], Alias] = {}
        self._lock = threading.Lock()

    def get(self, path: str, query: bytes, digest: bytes) -> Alias | None:
        return self._aliases.get((path, query, digest))

    def put(self, path: str, query: bytes, digest: bytes, alias: Alias) -> None:
        with self._lock:
            if len(self._aliases) >= MAX_ALIASES:
                self._aliases.clear()
            self._aliases[(path, query, digest)] = alias


class CachedAnswers:
    """The ASGI layer, outermost: it sets the same headers as ``RequestIdMiddleware`` and
    ``serving.serve`` (a test compares both ways' answers)."""

    def __init__(self, app: ASGIApp, state: ServiceState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "GET":
            path: str = scope["path"]
            if path.startswith("/api/v1/") and await self._answer(scope, send):
                return
        await self.app(scope, receive, send)

    async def _answer(self, scope: Scope, send: Send) -> bool:
        from ingest_service import serving  # serving imports this module

        state = self.state
        started = time.perf_counter()
        header = b""
        incoming = b""
        for name, value in scope["headers"]:
            if name == b"authorization":
                header = value
            elif name == b"x-request-id":
                incoming = value
        token = bearer_token(header.decode("latin-1"))
        versions = state.versions.fresh()
        if token is None or versions is None:
            return False
        digest = token_digest(token)
        alias = state.aliases.get(scope["path"], scope["query_string"], digest)
        if alias is None or alias.config_version != versions.get("config", 0):
            return False
        known = state.known_keys.get(digest, versions)
        if known is None or not known.principal.has(alias.permission):
            return False
        found = state.cache.get(alias.cache_key, versions)
        if found is None:
            return False  # counted as the miss the long way then computes
        decision = state.rate_limiter.hit(known.principal.subject, alias.tier)
        scope.setdefault("state", {})["rate_limit_decision"] = decision
        if not decision.allowed:
            return False  # the long way answers 429 with the same decision
        serving.count_key_use(state, known.principal.subject)
        if found.renew is not None:
            serving.renew(state, alias.cache_key, found.renew)
        text = incoming.decode("latin-1")
        rid = text if 8 <= len(text) <= 64 and text.isprintable() else uuid.uuid4().hex
        body = found.body + serving.tail(rid, stale=found.stale)
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"x-cache", b"STALE" if found.stale else b"HIT"),
            (b"x-request-id", rid.encode()),
            (b"x-api-version", API_VERSION.encode()),
        ]
        headers += [(k.lower().encode(), v.encode()) for k, v in decision.headers().items()]
        state.cache.stats.fast_path += 1
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})
        state.latency.record((time.perf_counter() - started) * 1000)
        return True
