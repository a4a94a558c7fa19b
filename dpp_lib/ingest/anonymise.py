"""Person identifiers → HMAC-SHA256 hashes (spec §4.6), keyed by the anonymisation key."""

from __future__ import annotations

import hashlib
import hmac
from functools import lru_cache

from dpp_lib.ingest.types import Anonymiser


def make_anonymiser(key: bytes) -> Anonymiser:
    """``anonymise(namespace, identifier)`` → 64 hex chars; the same person, the same hash.

    The namespace ('jira', 'github', 'survey') keeps identifiers of different systems apart.
    """
    if len(key) < 16:
        raise ValueError("the anonymisation key must be at least 16 bytes")

    @lru_cache(maxsize=65536)
    def anonymise(namespace: str, identifier: str | None) -> str | None:
        if identifier is None or identifier == "":
            return None
        message = f"{namespace}:{identifier}".encode()
        return hmac.new(key, message, hashlib.sha256).hexdigest()

    return anonymise
