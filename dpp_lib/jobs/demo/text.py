"""Flavour text for the demo: names, ticket summaries, PR chores, incident descriptions.

Nothing here may look like a Jira key (``[A-Z][A-Z0-9]+-\\d+``: no "UTF-8", "SHA-256"),
or key-less pull requests would become linkable.
"""

from __future__ import annotations

import random

FIRST_NAMES = (
    "Ada", "Ben", "Chloe", "Dev", "Ella", "Farid", "Grace", "Hugo", "Isla", "Jamal", "Kira",
    "Liam", "Maya", "Nikhil", "Olive", "Priya", "Quinn", "Rosa", "Sami", "Tara", "Umar",
    "Vera", "Wes", "Xin", "Yusuf", "Zoe", "Aoife", "Bruno", "Carmen", "Dmitri", "Esme",
    "Felix", "Gita", "Hamish", "Ines", "Jonah", "Keiko", "Luca", "Mei", "Nadia",
)  # fmt: skip
LAST_NAMES = (
    "Okafor", "Patel", "Nowak", "Ferreira", "Lindqvist", "Mensah", "Harrison", "Kowalski",
    "Duarte", "Nakamura", "Brennan", "Achebe", "Rossi", "Haddad", "Larsen", "Moreau",
    "Singh", "O'Brien", "Castillo", "Ivanova", "Fitzgerald", "Yilmaz", "Novak", "Sato",
    "MacLeod", "Adeyemi", "Costa", "Horvath", "Quinlan", "Weber", "Zhou", "Banerjee",
)  # fmt: skip

_THEMES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "pay": (
        ("Add", "Support", "Harden", "Refactor", "Expose", "Validate", "Speed up", "Audit"),
        (
            "retry logic for card payments",
            "refund webhooks",
            "payment status polling",
            "3DS challenge flow",
            "idempotency keys on transfers",
            "FX rate caching",
            "chargeback notifications",
            "settlement report export",
            "direct debit mandates",
            "payment limits per customer",
            "open banking consent renewal",
            "ledger reconciliation",
        ),
    ),
    "onboard": (
        ("Add", "Simplify", "Fix", "Redesign", "Localise", "Track", "Validate", "Automate"),
        (
            "identity document upload",
            "KYC status page",
            "address lookup step",
            "email verification reminders",
            "selfie liveness check",
            "onboarding progress bar",
            "business account sign-up",
            "PEP and sanctions screening",
            "welcome journey emails",
            "password setup screen",
            "mobile number verification",
            "referral code entry",
        ),
    ),
    "lend": (
        ("Add", "Calculate", "Expose", "Refine", "Support", "Automate", "Validate", "Migrate"),
        (
            "affordability check",
            "loan repayment schedule",
            "early settlement quotes",
            "credit decision API",
            "arrears notifications",
            "APR disclosure text",
            "loan top-up journey",
            "broker application intake",
            "underwriting rules engine",
            "overpayment handling",
            "credit limit increase flow",
            "loan statement PDF",
        ),
    ),
    "insight": (
        ("Build", "Add", "Backfill", "Optimise", "Expose", "Schedule", "Fix", "Extend"),
        (
            "spending categories dashboard",
            "monthly statement insights",
            "churn risk model",
            "customer segment export",
            "savings goal nudges",
            "transaction enrichment job",
            "merchant logo matching",
            "budget alerts",
            "cohort retention report",
            "data freshness checks",
            "insights API pagination",
            "weekly summary email",
        ),
    ),
}
_GENERIC = (
    ("Add", "Improve", "Refactor", "Fix", "Support", "Expose", "Clean up", "Document"),
    (
        "audit logging",
        "feature flag for new flow",
        "error handling on timeouts",
        "admin search filters",
        "rate limiting",
        "pagination on list endpoints",
        "accessibility of forms",
        "metrics and alerts",
        "configuration validation",
        "customer notification preferences",
        "session expiry handling",
        "CSV export",
    ),
)
BUG_OPENERS = (
    "Fix",
    "Crash in",
    "Wrong totals in",
    "Timeout in",
    "Duplicate entries in",
    "Missing validation in",
    "Broken layout of",
    "Race condition in",
)
SPIKE_OPENERS = ("Investigate", "Spike:", "Evaluate options for", "Prototype")


def theme(stream_name: str, display_name: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Verbs and objects for a delivery stream, picked by words in its names (flavour only)."""
    text = f"{stream_name} {display_name}".lower()
    return next((v for k, v in _THEMES.items() if k in text), _GENERIC)


def summary(
    rng: random.Random, themes: tuple[tuple[str, ...], tuple[str, ...]], issue_type: str
) -> str:
    verbs, objects = themes
    obj = rng.choice(objects)
    if issue_type == "Bug":
        return f"{rng.choice(BUG_OPENERS)} {obj}"
    if issue_type == "Spike":
        return f"{rng.choice(SPIKE_OPENERS)} {obj}"
    return f"{rng.choice(verbs)} {obj}"


def slug(text: str, words: int = 5) -> str:
    """Kebab-case of the first few words: "Add retry logic" → "add-retry-logic"."""
    kept = "".join(c if c.isalnum() else " " for c in text.lower()).split()
    return "-".join(kept[:words]) or "change"


CHORE_PRS = (
    ("fix-typo-in-readme", "Fix typo in README"),
    ("refactor-logging", "Refactor logging setup"),
    ("bump-python-base-image", "Bump Python base image"),
    ("tidy-ci-workflow", "Tidy CI workflow"),
    ("remove-dead-code", "Remove dead code"),
    ("update-codeowners", "Update CODEOWNERS"),
    ("improve-test-fixtures", "Improve test fixtures"),
    ("faster-unit-tests", "Speed up unit tests"),
    ("lint-fixes", "Lint fixes"),
    ("wip-cleanup", "Small clean-ups"),
)  # fmt: skip
DEPENDENCIES = (
    ("npm_and_yarn", "axios", "1.7.4"), ("npm_and_yarn", "react-dom", "18.3.1"),
    ("pip", "requests", "2.32.3"), ("pip", "sqlalchemy", "2.0.36"),
    ("github_actions", "actions/checkout", "4.2.2"), ("pip", "boto3", "1.35.40"),
    ("npm_and_yarn", "typescript", "5.6.3"), ("terraform", "hashicorp/aws", "5.72.1"),
)  # fmt: skip
REVIEW_BODIES = {
    "approved": (None, "LGTM", "Looks good, thanks!", "Nice one.", "Approved, minor nits inline."),
    "changes_requested": (
        "Needs a test for the failure path.", "Please handle the timeout case.",
        "Can we avoid the extra query here?", "Missing migration for the new column.",
    ),
    "commented": (None, "A couple of questions inline.", "Is this behind a flag?",
                  "Could you add a note to the changelog?"),
}  # fmt: skip
INCIDENT_DESCRIPTIONS = (
    "Error rate above 5% on {service}", "p99 latency over 2s on {service}",
    "Health checks failing for {service}", "5xx spike after release of {service}",
    "Queue backlog growing for {service}", "Memory pressure and restarts on {service}",
    "Elevated timeouts calling {service}", "Failed jobs in {service}",
)  # fmt: skip
SPRINT_GOALS = (
    "Ship the next release candidate", "Reduce carry-over and finish in-flight work",
    "Close out the regulatory items", "Deliver the customer feedback fixes",
    "Stabilise after the last release", "Land the new journey behind a flag", "",
)  # fmt: skip
PULSE_COMMENTS = (
    "Too many priorities changing mid-sprint.", "CI is slow again, builds take ages.",
    "Good sprint, clear goals.", "Waiting on other teams for reviews and releases.",
    "UAT environment is often down.", "Pace feels sustainable right now.",
    "Would like fewer meetings.", "Requirements arrive late and incomplete.",
)  # fmt: skip
FLAVOUR_LABELS = ("tech-debt", "customer-request", "regulatory", "quick-win", "security")
