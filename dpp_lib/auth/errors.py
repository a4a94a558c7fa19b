"""Errors of the access layer; each names what was wrong."""

from __future__ import annotations

from dpp_lib.errors import DppError


class AccessError(DppError):
    """An invalid user, role, mapping or session request (HTTP 422 by default)."""

    code = "access_error"


class AccessNotFound(AccessError):
    """The user, grant or mapping named does not exist."""

    code = "not_found"
    http_status = 404


def require_printable(value: str, what: str) -> str:
    """``value`` unless it holds control characters (Postgres refuses NUL in text)."""
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise AccessError(f"{what} contains control characters")
    return value
