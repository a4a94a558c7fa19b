"""argon2id password hashing (spec §3.2.2)."""

from __future__ import annotations

import pytest

from dpp_lib.auth import passwords
from dpp_lib.auth.errors import AccessError


def test_hash_is_argon2id_salted_and_verifies() -> None:
    first = passwords.hash_password("a long enough password")
    second = passwords.hash_password("a long enough password")
    assert first.startswith("$argon2id$")
    assert first != second  # salted
    assert passwords.verify_password(first, "a long enough password")
    assert not passwords.verify_password(first, "a long enough passworD")
    assert not passwords.needs_rehash(first)


@pytest.mark.parametrize("stored", [None, "", "not-a-hash", "$argon2id$v=19$broken"])
def test_missing_or_malformed_hashes_never_match(stored: str | None) -> None:
    assert not passwords.verify_password(stored, "a long enough password")


def test_short_and_huge_passwords_are_refused_with_the_reason() -> None:
    with pytest.raises(AccessError, match="at least 12"):
        passwords.hash_password("short")
    with pytest.raises(AccessError, match="at most"):
        passwords.hash_password("x" * 2000)


def test_hashes_with_weaker_parameters_need_a_rehash() -> None:
    from argon2 import PasswordHasher

    weak = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1).hash("a long enough password")
    assert passwords.verify_password(weak, "a long enough password")
    assert passwords.needs_rehash(weak)
