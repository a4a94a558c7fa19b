"""PR review turnaround and reviewer concentration (spec §6.3.3, §4.6; DESIGN §5 "PR cycle").

Pure: the "prs" and "reviews" frames of ``dpp_lib.metrics.frames``, already scoped to one
stream, in; a frozen result out.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import pandas as pd

from dpp_lib.metrics.common import DEFAULT_WINDOW_DAYS, Window, percentiles, round_or_none
from dpp_lib.metrics.frames import check_frame
from dpp_lib.metrics.registry import metric

DEFAULT_MIN_CONTRIBUTORS = 6  # spec §4.6, DESIGN §4
CONCENTRATION_FLAG = 0.5  # flagged strictly above (spec §6.3.3)
PR_EVENT_TIMES = ("opened_at", "first_review_at", "approved_at", "merged_at")
SUBMISSION_KEY = ["repo_id", "pr_number", "reviewer_hash", "event_timestamp"]


@dataclass(frozen=True)
class ReviewTurnaround:
    """Review turnaround and review load of one stream over one window.

    ``reviewer_concentration`` is null when suppressed (fewer active contributors than the
    minimum) or when the window has no review; ``uneven_review_load`` is always given.
    """

    p50_hours: float | None
    p85_hours: float | None
    sample_size: int  # PRs first reviewed in the window (the percentiles' sample)
    review_count: int  # review submissions in the window, self-reviews excluded
    reviewer_concentration: float | None  # largest single reviewer's share, 0–1
    uneven_review_load: bool  # that share is above 0.5
    is_suppressed: bool
    contributor_count: int  # active authors ∪ reviewers in the window


def review_submissions(reviews: pd.DataFrame) -> pd.DataFrame:
    """Review submissions by someone other than the PR's author, one row per submission.

    The store writes an ``approved``/``changes_requested`` row beside the
    ``review_submitted`` row of the same submission: rows with the same PR, reviewer and
    time are one submission. Rows without a reviewer are not attributable and are dropped.
    """
    known = reviews[reviews["reviewer_hash"].notna()]
    others = known[known["reviewer_hash"] != known["author_hash"]]
    return others.drop_duplicates(subset=SUBMISSION_KEY)


def active_contributors(prs: pd.DataFrame, reviews: pd.DataFrame, window: Window) -> set[str]:
    """Authors of PRs with any event in the window ∪ reviewers of reviews in the window."""
    in_window = pd.Series(False, index=prs.index)
    for column in PR_EVENT_TIMES:
        in_window |= window.mask(prs[column])
    people = set(prs.loc[in_window, "author_hash"].dropna())
    recent = reviews[window.mask(reviews["event_timestamp"])]
    people |= set(recent["author_hash"].dropna())  # a review is an event of the PR
    people |= set(review_submissions(recent)["reviewer_hash"])
    return people


@metric(
    "review_turnaround",
    spec="§6.3.3",
    summary="How long do PRs wait for a first review, and does one person carry the reviews?",
)
def review_turnaround(
    prs: pd.DataFrame,
    reviews: pd.DataFrame,
    *,
    as_of: datetime,
    window_days: int = DEFAULT_WINDOW_DAYS,
    min_contributors: int = DEFAULT_MIN_CONTRIBUTORS,
) -> ReviewTurnaround:
    """PR review turnaround p50/p85 and reviewer concentration (spec §6.3.3, §4.6).

    ``prs``: the "prs" frame (one row per PR, from pr_cycles, whose ``first_review_at`` and
    ``time_to_first_review_hrs`` already leave self-reviews out); ``reviews``: the "reviews"
    frame (review rows with the PR's ``author_hash``). Both scoped to one stream. Window
    ``[as_of − window_days, as_of)``.

    - Turnaround: linear percentiles of ``time_to_first_review_hrs`` (wall-clock hours) over
      PRs whose ``first_review_at`` is in the window; a null value is left out.
    - Concentration: the largest single reviewer's share (0–1) of review submissions in the
      window, self-reviews excluded; ``uneven_review_load`` when above 0.5.
    - Suppression: with fewer than ``min_contributors`` active people (authors of PRs with
      any event in the window ∪ reviewers in it), ``is_suppressed`` is true and the
      concentration is null; ``uneven_review_load`` is still given.
    """
    check_frame("prs", prs)
    check_frame("reviews", reviews)
    window = Window.trailing(as_of, window_days)

    reviewed = prs[window.mask(prs["first_review_at"])]
    hours = [float(h) for h in reviewed["time_to_first_review_hrs"] if not pd.isna(h)]
    pct = percentiles(hours, (50, 85))

    submissions = review_submissions(reviews[window.mask(reviews["event_timestamp"])])
    share: float | None = None
    if len(submissions):
        share = float(submissions["reviewer_hash"].value_counts().max()) / len(submissions)
    contributors = len(active_contributors(prs, reviews, window))
    suppressed = contributors < min_contributors
    return ReviewTurnaround(
        p50_hours=round_or_none(pct[50]),
        p85_hours=round_or_none(pct[85]),
        sample_size=len(hours),
        review_count=len(submissions),
        reviewer_concentration=None if suppressed else round_or_none(share, 3),
        uneven_review_load=share is not None and share > CONCENTRATION_FLAG,
        is_suppressed=suppressed,
        contributor_count=contributors,
    )
