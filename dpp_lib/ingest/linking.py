"""Ticket-key extraction from pull request metadata (spec §5.3.4).

Methods, in priority order:

1. ``branch`` — the tech stream's configured pattern, ``re.match`` on the head branch;
   group 1 is the key (``feature/PAY-456-retry`` → ``PAY-456``).
2. ``title`` — the configured pattern matched at the start of the title, then the first
   Jira-shaped key anywhere in it ("Fix: PAY-456 retry" → ``PAY-456``).
3. ``body`` — the first Jira-shaped key anywhere in the description
   ("Jira ticket: LEND-12").

A Jira-shaped key is an upper-case project of at least two characters (a letter, then
letters or digits), a dash and digits, standing as a whole word: ``\\b[A-Z][A-Z0-9]+-\\d+\\b``.
Free text is full of look-alikes (``UTF-8``, ``SHA-256``, ``ISO-8601``, ``HTTP-2``,
``CVE-2024-1234``), so keys whose project part is in ``NOT_TICKET_PROJECTS`` are never
returned, by any method; a rejected candidate lets the search continue with the next one.
Keys found through the branch or title pattern are upper-cased, so a case-insensitive
custom pattern still yields the key as Jira spells it.

Manual linking (method 4 in the spec) happens elsewhere; these functions are pure.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Literal

LinkMethod = Literal["branch", "title", "body"]

JIRA_KEY = re.compile(r"\b([A-Z][A-Z0-9]+)-(\d+)\b")

# Project parts that are standards, encodings or versions, not Jira projects. Kept short
# on purpose: every entry also hides a real Jira project of that name, so only prefixes
# that routinely appear in PR text as "<NAME>-<number>" belong here.
NOT_TICKET_PROJECTS: frozenset[str] = frozenset(
    {
        "AES",  # AES-256
        "CSS",  # CSS-3
        "CVE",  # CVE-2024-1234
        "CWE",  # CWE-79
        "ECMA",  # ECMA-262
        "GMT",  # GMT-8
        "GPT",  # GPT-4
        "HTML",  # HTML-5
        "HTTP",  # HTTP-2
        "HTTPS",
        "IEEE",  # IEEE-754
        "IPV",  # IPV-6
        "ISO",  # ISO-8601
        "MPEG",  # MPEG-4
        "OAUTH",  # OAUTH-2
        "PEP",  # PEP-8
        "RFC",  # RFC-7231
        "RSA",  # RSA-2048
        "SHA",  # SHA-256
        "SOC",  # SOC-2
        "SSL",  # SSL-3
        "TLS",  # TLS-1.3
        "UTC",  # UTC-5
        "UTF",  # UTF-8
        "X86",  # X86-64
    }
)


@lru_cache(maxsize=64)
def _compiled(pattern: str) -> re.Pattern[str]:
    compiled = re.compile(pattern)
    if compiled.groups < 1:
        raise ValueError(f"ticket key pattern {pattern!r} has no capturing group for the key")
    return compiled


def is_ticket_key(key: str) -> bool:
    """True when ``key`` is Jira-shaped (``PAY-456``) and its project is not a look-alike."""
    found = JIRA_KEY.fullmatch(key)
    return found is not None and found.group(1) not in NOT_TICKET_PROJECTS


def _project_allowed(key: str) -> bool:
    project, _, _ = key.partition("-")
    return project not in NOT_TICKET_PROJECTS


def _from_pattern(text: str | None, pattern: str) -> str | None:
    if not text:
        return None
    found = _compiled(pattern).match(text)
    if found is None or not found.group(1):
        return None
    key = found.group(1).strip().upper()
    return key if key and _project_allowed(key) else None


def first_jira_key(text: str | None) -> str | None:
    """The first Jira-shaped key anywhere in ``text`` that is not a look-alike, else None."""
    if not text:
        return None
    for found in JIRA_KEY.finditer(text):
        if found.group(1) not in NOT_TICKET_PROJECTS:
            return found.group(0)
    return None


def extract_ticket_key(
    *, branch: str | None, title: str | None, body: str | None, pattern: str
) -> tuple[str | None, LinkMethod | None]:
    """The PR's ticket key and how it was found: ``(key, 'branch'|'title'|'body')``.

    ``pattern`` is the tech stream's ``ticket_key_pattern`` (one capturing group holding
    the key; ``re.match`` semantics). Returns ``(None, None)`` when no method finds a key.
    Raises ``ValueError`` for a pattern without a capturing group and ``re.error`` for an
    invalid one (the org config validator rejects both before they get here).
    """
    key = _from_pattern(branch, pattern)
    if key is not None:
        return key, "branch"
    key = _from_pattern(title, pattern) or first_jira_key(title)
    if key is not None:
        return key, "title"
    key = first_jira_key(body)
    if key is not None:
        return key, "body"
    return None, None
