"""Ticket-key extraction from branch, title and body (spec §5.3.4)."""

from __future__ import annotations

import pytest

from dpp_lib.ingest.linking import extract_ticket_key, first_jira_key, is_ticket_key
from dpp_lib.orgconfig import DEFAULT_TICKET_KEY_PATTERN

CUSTOM_PATTERN = r"^(?:[A-Za-z]+/)?([A-Z][A-Z0-9]+-\d+)"


def extract(
    branch: str | None = None,
    title: str | None = None,
    body: str | None = None,
    pattern: str = DEFAULT_TICKET_KEY_PATTERN,
) -> tuple[str | None, str | None]:
    return extract_ticket_key(branch=branch, title=title, body=body, pattern=pattern)


@pytest.mark.parametrize(
    ("branch", "expected"),
    [
        ("feature/PAY-456-add-retry-logic", "PAY-456"),
        ("bugfix/AUTH-78-fix-token-expiry", "AUTH-78"),
        ("PAY-456-add-retry-logic", "PAY-456"),
        ("hotfix/CORE-901-null-check", "CORE-901"),
        ("chore/OPS2-7", "OPS2-7"),
        ("spike/DATA-1", "DATA-1"),
        ("feature/pay-456", None),  # Jira keys are upper case
        ("feature/add-retry", None),
        ("release/PAY-456", None),  # not a prefix the default pattern knows
        ("changes", None),
        ("feature/UTF-8-cleanup", None),  # look-alike, even through the branch pattern
        ("", None),
    ],
)
def test_branch_with_default_pattern(branch: str, expected: str | None) -> None:
    assert extract(branch=branch) == (expected, "branch" if expected else None)


@pytest.mark.parametrize(
    ("title", "expected"),
    [
        ("PAY-456: Add retry logic", "PAY-456"),
        ("[PAY-456] Add retry logic", "PAY-456"),
        ("Add retry logic (PAY-456)", "PAY-456"),
        ("Use UTF-8 everywhere", None),
        ("Switch hashing to SHA-256", None),
        ("Dates as ISO-8601, then PAY-9", "PAY-9"),  # look-alike skipped, search goes on
        ("Support HTTP-2 and fix CVE-2024-1234", None),
        ("A-1 is too short a project", None),
        ("Update the README with new information.", None),
    ],
)
def test_title(title: str, expected: str | None) -> None:
    assert extract(branch="changes", title=title) == (expected, "title" if expected else None)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("Jira ticket: LEND-12", "LEND-12"),
        ("Fixes https://example.atlassian.net/browse/PAY-77 and PAY-78", "PAY-77"),
        ("Encode as UTF-8.\n\nJira ticket: LEND-12", "LEND-12"),
        ("Jira ticket: N/A", None),
        ("lowercase pay-12 is not a key", None),
        ("", None),
    ],
)
def test_body_takes_first_key(body: str, expected: str | None) -> None:
    assert extract(branch="changes", title="Tidy up", body=body) == (
        expected,
        "body" if expected else None,
    )


def test_priority_is_branch_then_title_then_body() -> None:
    both = {"title": "TITLE-2: thing", "body": "Jira ticket: BODY-3"}
    assert extract(branch="feature/BRANCH-1-x", **both) == ("BRANCH-1", "branch")
    assert extract(branch="feature/no-key", **both) == ("TITLE-2", "title")
    assert extract(branch="feature/no-key", title="thing", body=both["body"]) == (
        "BODY-3",
        "body",
    )


def test_custom_pattern() -> None:
    assert extract(branch="INFRA/OPS-12-x", pattern=CUSTOM_PATTERN) == ("OPS-12", "branch")
    # The default pattern does not know the INFRA/ prefix.
    assert extract(branch="INFRA/OPS-12-x") == (None, None)


def test_case_insensitive_custom_pattern_yields_upper_case_key() -> None:
    assert extract(branch="feature/pay-456", pattern=r"(?i)^feature/([a-z]+-\d+)") == (
        "PAY-456",
        "branch",
    )


def test_none_inputs() -> None:
    assert extract() == (None, None)
    assert extract(branch=None, title=None, body="PAY-1") == ("PAY-1", "body")


def test_pattern_without_group_is_rejected() -> None:
    with pytest.raises(ValueError, match="capturing group"):
        extract(branch="PAY-1", pattern=r"^[A-Z]+-\d+")


@pytest.mark.parametrize(
    ("key", "expected"),
    [("PAY-456", True), ("OPS2-7", True), ("UTF-8", False), ("pay-1", False), ("P-1", False)],
)
def test_is_ticket_key(key: str, expected: bool) -> None:
    assert is_ticket_key(key) is expected


def test_first_jira_key_needs_whole_words() -> None:
    assert first_jira_key("xPAY-1 PAY-2x PAY-3") == "PAY-3"
