"""Password hashing for database sign-in (spec §3.2.2): argon2id with the library's
defaults (RFC 9106's second recommended profile: 64 MiB, 3 passes, 4 lanes)."""

from __future__ import annotations

import contextlib

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from dpp_lib.auth.errors import AccessError

MIN_LENGTH = 12
MAX_LENGTH = 1024

_hasher = PasswordHasher(type=Type.ID)
# Verified when the account does not exist, so an unknown email costs the same time.
_DUMMY_HASH = _hasher.hash("dpp-no-such-account-placeholder")


def check_strength(password: str) -> None:
    if len(password) < MIN_LENGTH:
        raise AccessError(f"a password needs at least {MIN_LENGTH} characters")
    if len(password) > MAX_LENGTH:
        raise AccessError(f"a password may have at most {MAX_LENGTH} characters")


def hash_password(password: str) -> str:
    """An argon2id hash in PHC format (salt and parameters included)."""
    check_strength(password)
    return _hasher.hash(password)


def verify_password(stored: str | None, password: str) -> bool:
    """True when ``password`` matches ``stored``; a missing or malformed hash never matches
    (and still costs one verification)."""
    if not stored or len(password) > MAX_LENGTH:
        _verify_dummy(password[:MAX_LENGTH])
        return False
    try:
        return _hasher.verify(stored, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(stored: str) -> bool:
    """The hash was made with other parameters than today's (rehash at the next sign-in)."""
    try:
        return _hasher.check_needs_rehash(stored)
    except InvalidHashError:
        return True


def _verify_dummy(password: str) -> None:
    with contextlib.suppress(VerificationError):
        _hasher.verify(_DUMMY_HASH, password)
