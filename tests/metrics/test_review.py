"""Review turnaround and reviewer concentration: hand-computed cases (spec §6.3.3, §4.6)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dpp_lib.metrics.common import MetricInputError
from dpp_lib.metrics.frames import make_frame
from dpp_lib.metrics.registry import get
from dpp_lib.metrics.review import ReviewTurnaround, review_turnaround

AS_OF = datetime(2026, 12, 1, tzinfo=UTC)  # window [1 Nov, 1 Dec)
IN = datetime(2026, 11, 10, 9, tzinfo=UTC)  # well inside the window
BEFORE = datetime(2026, 10, 20, tzinfo=UTC)  # before it


def h(hours: float, base: datetime = IN) -> datetime:
    return base + timedelta(hours=hours)


def pr(
    author: str,
    number: int,
    *,
    opened_at: datetime = IN,
    review_hrs: float | None = None,
    **overrides: Any,
) -> dict[str, Any]:
    """A prs row; ``review_hrs`` sets the first review that many hours after opening."""
    row: dict[str, Any] = {
        "repo_id": "repo-1",
        "pr_number": number,
        "tech_stream_id": "core-api",
        "author_hash": author,
        "opened_at": opened_at,
        "review_rounds": 0,
        "reviewer_hashes": [],
    }
    if review_hrs is not None:
        row |= {"first_review_at": h(review_hrs, opened_at), "time_to_first_review_hrs": review_hrs}
    return row | overrides


def rv(
    reviewer: str | None, author: str, number: int, at: datetime = IN, state: str = "commented"
) -> dict[str, Any]:
    return {
        "repo_id": "repo-1",
        "pr_number": number,
        "tech_stream_id": "core-api",
        "author_hash": author,
        "reviewer_hash": reviewer,
        "review_state": state,
        "event_timestamp": at,
    }


def run(prs: list[dict[str, Any]], reviews: list[dict[str, Any]], **kw: Any) -> ReviewTurnaround:
    return review_turnaround(
        make_frame("prs", prs), make_frame("reviews", reviews), as_of=AS_OF, **kw
    )


def team(
    authors: int, reviews: dict[str, int]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """PRs by authors a1..aN opened in the window, and ``count`` reviews by each reviewer,
    spread over those PRs an hour apart."""
    prs = [pr(f"a{i}", i) for i in range(1, authors + 1)]
    rows, k = [], 0
    for reviewer, count in reviews.items():
        for _ in range(count):
            number = k % authors + 1
            rows.append(rv(reviewer, f"a{number}", number, h(k)))
            k += 1
    return prs, rows


# Each case: prs, reviews, keyword arguments, expected fields (hand-computed).
CASES: dict[str, tuple[list[dict[str, Any]], list[dict[str, Any]], dict[str, Any], dict[str, Any]]]
CASES = {
    # Hours [1, 2, 4, 10]: p50 = 3.0; p85 at rank 0.85 × 3 = 2.55 → 4 + 0.55 × 6 = 7.3.
    # A PR first reviewed before the window, one reviewed exactly at as_of and one never
    # reviewed are not in the sample; one first reviewed exactly at the window start is.
    "percentiles": (
        [
            pr("a1", 1, review_hrs=1),
            pr("a2", 2, review_hrs=2),
            pr("a3", 3, review_hrs=4),
            pr("a4", 4, review_hrs=10, opened_at=datetime(2026, 10, 31, 14, tzinfo=UTC)),
            pr("a5", 5, review_hrs=100, opened_at=BEFORE),
            pr("a6", 6, review_hrs=3, opened_at=AS_OF - timedelta(hours=3)),
            pr("a7", 7),
        ],
        [],
        {},
        {"p50_hours": 3.0, "p85_hours": 7.3, "sample_size": 4, "review_count": 0},
    ),
    # 5 active people (a1–a3 authors, r1–r2 reviewers): suppressed, the signal remains.
    "five_contributors_suppressed": (
        *team(3, {"r1": 2, "r2": 1}),
        {},
        {
            "is_suppressed": True,
            "contributor_count": 5,
            "reviewer_concentration": None,
            "uneven_review_load": True,
            "review_count": 3,
        },
    ),
    # One more author: 6 active people, no longer suppressed; 2 of 3 reviews by r1.
    "six_contributors_shown": (
        *team(4, {"r1": 2, "r2": 1}),
        {},
        {
            "is_suppressed": False,
            "contributor_count": 6,
            "reviewer_concentration": 0.667,
            "uneven_review_load": True,
        },
    ),
    "min_contributors_is_a_parameter": (
        *team(3, {"r1": 2, "r2": 1}),
        {"min_contributors": 5},
        {"is_suppressed": False, "reviewer_concentration": 0.667},
    ),
    "concentration_exactly_half_is_not_flagged": (
        *team(4, {"r1": 2, "r2": 2}),
        {},
        {"reviewer_concentration": 0.5, "uneven_review_load": False, "review_count": 4},
    ),
    "concentration_above_half_is_flagged": (
        *team(4, {"r1": 3, "r2": 2}),
        {},
        {"reviewer_concentration": 0.6, "uneven_review_load": True, "review_count": 5},
    ),
    # a1 reviews their own PR three times: counted, a1 would hold 3 of 7 (0.429); without
    # them r1 and r2 share 4 reviews evenly. a1 is still one active person (as an author).
    "self_reviews_are_not_reviews": (
        team(4, {"r1": 2, "r2": 2})[0],
        team(4, {"r1": 2, "r2": 2})[1] + [rv("a1", "a1", 1, h(20 + i)) for i in range(3)],
        {},
        {
            "reviewer_concentration": 0.5,
            "uneven_review_load": False,
            "review_count": 4,
            "contributor_count": 6,
        },
    ),
    # The review_submitted row and the approved row of one submission are one review:
    # r1 1, r2 1 → 0.5 (counting rows would give r1 2 of 3).
    "companion_rows_of_a_submission_count_once": (
        team(4, {"r2": 1})[0],
        team(4, {"r2": 1})[1]
        + [rv("r1", "a2", 2, h(5), "approved"), rv("r1", "a2", 2, h(5), "approved")],
        {},
        {"reviewer_concentration": 0.5, "review_count": 2, "uneven_review_load": False},
    ),
    # Activity: a1 opened in the window; a2's PR was only merged in it; a3's PR had a
    # review in it; a4's PR and r9's review are all before it; a review without a reviewer
    # names nobody. Active: a1, a2, a3, r1, r2 = 5.
    "who_is_active": (
        [
            pr("a1", 1),
            pr("a2", 2, opened_at=BEFORE, merged_at=IN),
            pr("a3", 3, opened_at=BEFORE),
            pr("a4", 4, opened_at=BEFORE, merged_at=BEFORE + timedelta(days=1)),
        ],
        [
            rv("r1", "a3", 3, IN),
            rv("r2", "a1", 1, IN),
            rv("r9", "a4", 4, BEFORE),
            rv(None, "a1", 1, h(1)),
        ],
        {},
        {"contributor_count": 5, "is_suppressed": True, "review_count": 2},
    ),
    "empty_window": (
        [pr("a1", 1, opened_at=BEFORE, review_hrs=2)],
        [rv("r1", "a1", 1, BEFORE)],
        {},
        {
            "p50_hours": None,
            "p85_hours": None,
            "sample_size": 0,
            "review_count": 0,
            "reviewer_concentration": None,
            "uneven_review_load": False,
            "is_suppressed": True,
            "contributor_count": 0,
        },
    ),
    "no_rows_at_all": (
        [],
        [],
        {},
        {
            "sample_size": 0,
            "p50_hours": None,
            "reviewer_concentration": None,
            "is_suppressed": True,
        },
    ),
    # A 7-day window keeps only the last week: a4's first review on 28 Nov.
    "window_days": (
        [
            pr("a1", 1, review_hrs=2),
            pr("a4", 4, opened_at=datetime(2026, 11, 28, tzinfo=UTC), review_hrs=5),
        ],
        [],
        {"window_days": 7},
        {"p50_hours": 5.0, "p85_hours": 5.0, "sample_size": 1, "contributor_count": 1},
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_hand_computed(case: str) -> None:
    prs, reviews, kw, expected = CASES[case]
    result = run(prs, reviews, **kw)
    got = {k: getattr(result, k) for k in expected}
    assert got == expected


def test_is_registered_with_its_spec_section() -> None:
    info = get("review_turnaround")
    assert info.func is review_turnaround and info.spec == "§6.3.3"


def test_frames_must_be_canonical() -> None:
    with pytest.raises(MetricInputError, match="reviewer_hash"):
        review_turnaround(make_frame("prs"), pd.DataFrame({"author_hash": []}), as_of=AS_OF)


def test_as_of_must_be_timezone_aware() -> None:
    with pytest.raises(MetricInputError, match="timezone"):
        review_turnaround(make_frame("prs"), make_frame("reviews"), as_of=datetime(2026, 12, 1))


# --- property: row order never matters --------------------------------------------------------

PEOPLE = [f"p{i}" for i in range(8)]
moment = st.integers(min_value=-24 * 40, max_value=24).map(lambda k: AS_OF + timedelta(hours=k))
pr_rows = st.lists(
    st.builds(
        lambda author, n, opened, wait, merged: pr(
            author,
            n,
            opened_at=opened,
            review_hrs=wait,
            merged_at=opened + timedelta(hours=merged) if merged is not None else None,
        ),
        st.sampled_from(PEOPLE),
        st.integers(1, 30),
        moment,
        st.none() | st.floats(0, 200, allow_nan=False).map(lambda x: round(x, 2)),
        st.none() | st.integers(0, 300),
    ),
    max_size=25,
)
review_rows = st.lists(
    st.builds(
        rv,
        st.none() | st.sampled_from(PEOPLE),
        st.sampled_from(PEOPLE),
        st.integers(1, 30),
        moment,
        st.sampled_from(["commented", "approved", "changes_requested"]),
    ),
    max_size=40,
)


@settings(max_examples=150, deadline=None)
@given(pr_rows, review_rows, st.integers(0, 2**32 - 2), st.integers(1, 8))  # seed + 1 < 2**32
def test_row_order_changes_nothing(
    prs: list[dict[str, Any]], reviews: list[dict[str, Any]], seed: int, minimum: int
) -> None:
    prs_frame, reviews_frame = make_frame("prs", prs), make_frame("reviews", reviews)
    expected = review_turnaround(prs_frame, reviews_frame, as_of=AS_OF, min_contributors=minimum)
    shuffled = review_turnaround(
        prs_frame.sample(frac=1, random_state=seed),
        reviews_frame.sample(frac=1, random_state=seed + 1),
        as_of=AS_OF,
        min_contributors=minimum,
    )
    assert shuffled == expected
    if expected.reviewer_concentration is not None:
        assert 0 < expected.reviewer_concentration <= 1
    assert expected.is_suppressed == (expected.contributor_count < minimum)
