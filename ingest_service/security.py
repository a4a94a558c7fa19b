"""Webhook signatures (HMAC-SHA256 over the raw body, constant-time compare) and API keys."""

from __future__ import annotations

import hashlib
import hmac


class SignatureError(Exception):
    """Why a signature was refused (the message is safe to return to the caller)."""


def sign(secret: bytes, body: bytes) -> str:
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


def verify_signature(
    secret: bytes | None, header: str | None, body: bytes, *, header_name: str
) -> None:
    """Check ``sha256=<hex>`` (GitHub ``X-Hub-Signature-256``, Jira ``X-Hub-Signature``).

    No secret configured → signature checking is off for the source (API reference).
    The method before the first ``=`` must be sha256 (Jira may add others later).
    """
    if secret is None:
        return
    if not header:
        raise SignatureError(f"missing {header_name} header (a webhook secret is configured)")
    method, sep, digest = header.strip().partition("=")
    if not sep or method.strip().lower() != "sha256":
        raise SignatureError(f"{header_name} must be 'sha256=<hex digest>'")
    expected = hmac.new(secret, body, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected.encode(), digest.strip().lower().encode()):
        raise SignatureError(f"{header_name} does not match the request body")
