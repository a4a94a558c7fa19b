"""PR cycles (spec §4.4.3, DESIGN §5 "PR cycle"): one record per pull request, from its events.

``pr_cycle`` is a pure function from one PR's ``pr_events`` rows to its record;
``refresh_pr_cycles`` recomputes and upserts the records of the PRs a worker batch touched.
Every PR with events gets a record, open ones too (review turnaround counts PRs first
reviewed in the window, merged or not); a record is rewritten whenever its PR has a new
event. The result depends on the set of events only, never on their arrival order.

Rules:
- A review is a submission by someone other than the PR's author with a known reviewer:
  the ``review_submitted`` row and the ``approved``/``changes_requested`` row the normaliser
  writes for the same submission are one review, keyed by (reviewer, time). A review by the
  PR's own author is not a review anywhere (DESIGN §5).
- ``opened_at``: the (earliest) ``opened`` event, else the earliest event; ``author_hash``
  from that same event. ``first_review_at``: the earliest review; ``approved_at``: the
  earliest approving review; ``merged_at``: the (earliest) ``merged`` event.
- ``time_to_first_review_hrs``/``time_to_merge_hrs``: wall-clock hours from ``opened_at``,
  null when the end is missing or precedes ``opened_at`` (inconsistent source data).
- ``review_rounds``: changes-requested reviews + 1 once reviewed at all (0 never reviewed).
- ``reviewer_hashes``: distinct reviewers, sorted; ``reviewer_count`` their number.
- ``lines_changed`` = added + removed of the latest event that has both; ``files_changed``
  of the latest event that has it. ``tech_stream_id``, ``delivery_stream_id`` and
  ``linked_ticket_id``: the latest non-null value (enrichment may fill them in late) — but a
  manual link (``link_method = 'manual'``) outranks any later automatic one, and the
  delivery stream it derived comes with it.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from dpp_lib.store.pr_lookup import CHUNK
from dpp_lib.store.schema import pr_cycles, pr_events
from dpp_lib.store.types import new_id
from dpp_lib.store.write import dialect_insert

REVIEW_EVENTS = frozenset({"review_submitted", "approved", "changes_requested"})
APPROVED, CHANGES_REQUESTED, COMMENTED = "approved", "changes_requested", "commented"
# Same timestamp: the PR opens before it is reviewed, and is reviewed before it is merged.
_EVENT_ORDER = {
    "opened": 0,
    "review_submitted": 1,
    "changes_requested": 2,
    "approved": 3,
    "merged": 4,
    "closed": 5,
}
EVENT_COLUMNS = (
    "repo_id",
    "pr_number",
    "event_type",
    "event_timestamp",
    "tech_stream_id",
    "delivery_stream_id",
    "linked_ticket_id",
    "link_method",
    "author_hash",
    "reviewer_hash",
    "review_state",
    "lines_added",
    "lines_removed",
    "files_changed",
    "merge_commit_sha",
    "head_sha",
)
LATEST = ("tech_stream_id", "delivery_stream_id", "linked_ticket_id")
PrKey = tuple[uuid.UUID, int]


@dataclass(frozen=True)
class Review:
    """One review submission by someone other than the PR's author."""

    reviewer_hash: str
    at: datetime
    state: str  # approved | changes_requested | commented (or GitHub's other states)


@dataclass(frozen=True)
class PrCycle:
    """A ``pr_cycles`` record (without its surrogate ``cycle_id``)."""

    repo_id: uuid.UUID | None
    pr_number: int
    tech_stream_id: uuid.UUID | None
    delivery_stream_id: uuid.UUID | None
    linked_ticket_id: str | None
    author_hash: str
    opened_at: datetime
    first_review_at: datetime | None
    approved_at: datetime | None
    merged_at: datetime | None
    time_to_first_review_hrs: float | None
    time_to_merge_hrs: float | None
    review_rounds: int
    reviewer_hashes: tuple[str, ...]
    reviewer_count: int
    lines_changed: int | None
    files_changed: int | None
    merge_commit_sha: str | None = None
    head_sha: str | None = None

    def as_row(self) -> dict[str, Any]:
        row = {f: getattr(self, f) for f in self.__dataclass_fields__}
        row["reviewer_hashes"] = list(self.reviewer_hashes)
        return row


def _sort_key(event: Mapping[str, Any]) -> tuple[Any, ...]:
    # A total order on the events of one PR, so ties resolve the same way whatever the input
    # order: time, then lifecycle order, then every other column as text.
    return (
        event["event_timestamp"],
        _EVENT_ORDER.get(event["event_type"], len(_EVENT_ORDER)),
        tuple(str(event.get(c)) for c in EVENT_COLUMNS),
    )


def _hours(start: datetime, end: datetime | None) -> float | None:
    if end is None or end < start:
        return None
    return round((end - start).total_seconds() / 3600, 3)


def reviews_of(events: Iterable[Mapping[str, Any]], author_hash: str) -> list[Review]:
    """The PR's reviews, oldest first: one per (reviewer, time), the author's own left out."""
    states: dict[tuple[datetime, str], set[str]] = defaultdict(set)
    for e in events:
        reviewer = e.get("reviewer_hash")
        if e["event_type"] not in REVIEW_EVENTS or reviewer is None or reviewer == author_hash:
            continue
        seen = states[(e["event_timestamp"], reviewer)]
        if e["event_type"] != "review_submitted":
            seen.add(e["event_type"])
        if e.get("review_state"):
            seen.add(str(e["review_state"]).lower())
    reviews = []
    for (at, reviewer), seen in sorted(states.items()):
        if APPROVED in seen:
            state = APPROVED
        elif CHANGES_REQUESTED in seen:
            state = CHANGES_REQUESTED
        else:
            state = min(seen) if seen else COMMENTED
        reviews.append(Review(reviewer, at, state))
    return reviews


def pr_cycle(events: Iterable[Mapping[str, Any]]) -> PrCycle | None:
    """The record of one PR from all its ``pr_events`` rows (any order); None without events.

    Each row needs the columns of ``EVENT_COLUMNS`` (missing optional ones count as null);
    times are timezone-aware.
    """
    ordered = sorted(events, key=_sort_key)
    if not ordered:
        return None
    keys = {(e.get("repo_id"), e["pr_number"]) for e in ordered}
    if len(keys) > 1:
        raise ValueError(f"pr_cycle got the events of several PRs: {sorted(keys, key=str)}")
    opened = next((e for e in ordered if e["event_type"] == "opened"), ordered[0])
    author: str = opened["author_hash"]
    opened_at: datetime = opened["event_timestamp"]
    reviews = reviews_of(ordered, author)
    first_review_at = reviews[0].at if reviews else None
    approved_at = next((r.at for r in reviews if r.state == APPROVED), None)
    merged_at = next((e["event_timestamp"] for e in ordered if e["event_type"] == "merged"), None)
    reviewers = tuple(sorted({r.reviewer_hash for r in reviews}))
    sized = [e for e in ordered if e.get("lines_added") is not None]
    sized = [e for e in sized if e.get("lines_removed") is not None]
    files = [e["files_changed"] for e in ordered if e.get("files_changed") is not None]
    latest = {c: _latest(ordered, c) for c in LATEST}
    manual = [e for e in ordered if e.get("link_method") == "manual" and e.get("linked_ticket_id")]
    if manual:  # a person's link outranks what a later event's branch or title suggests
        latest["linked_ticket_id"] = manual[-1]["linked_ticket_id"]
        latest["delivery_stream_id"] = (
            _latest(manual, "delivery_stream_id") or latest["delivery_stream_id"]
        )
    return PrCycle(
        repo_id=opened.get("repo_id"),
        pr_number=opened["pr_number"],
        tech_stream_id=latest["tech_stream_id"],
        delivery_stream_id=latest["delivery_stream_id"],
        linked_ticket_id=latest["linked_ticket_id"],
        author_hash=author,
        opened_at=opened_at,
        first_review_at=first_review_at,
        approved_at=approved_at,
        merged_at=merged_at,
        time_to_first_review_hrs=_hours(opened_at, first_review_at),
        time_to_merge_hrs=_hours(opened_at, merged_at),
        review_rounds=(sum(r.state == CHANGES_REQUESTED for r in reviews) + 1) if reviews else 0,
        reviewer_hashes=reviewers,
        reviewer_count=len(reviewers),
        lines_changed=sized[-1]["lines_added"] + sized[-1]["lines_removed"] if sized else None,
        files_changed=files[-1] if files else None,
        merge_commit_sha=max(
            (e["merge_commit_sha"] for e in ordered if e.get("merge_commit_sha")), default=None
        ),
        head_sha=max((e["head_sha"] for e in ordered if e.get("head_sha")), default=None),
    )


def _greatest(events: Sequence[Mapping[str, Any]], column: str) -> Any:
    """The greatest non-empty value (a PR's events agree on their commits or add one)."""
    return max((e[column] for e in events if e.get(column)), default=None)


def _latest(ordered: Sequence[Mapping[str, Any]], column: str) -> Any:
    return next((e[column] for e in reversed(ordered) if e.get(column) is not None), None)


def refresh_pr_cycles(conn: sa.Connection, prs: Iterable[tuple[uuid.UUID | None, int]]) -> int:
    """Recompute and upsert the records of the given (repo_id, pr_number) PRs.

    One select of their events and one upsert (in chunks of ``CHUNK`` PRs). PRs without a
    ``repo_id`` or whose events carry no ``tech_stream_id`` get no record (pr_cycles requires
    both). Returns how many records were written.
    """
    wanted: list[PrKey] = sorted({(r, n) for r, n in prs if r is not None})
    written = 0
    p = pr_events
    for i in range(0, len(wanted), CHUNK):
        part = wanted[i : i + CHUNK]
        events: dict[PrKey, list[Mapping[str, Any]]] = defaultdict(list)
        rows = conn.execute(
            sa.select(*(p.c[c] for c in EVENT_COLUMNS)).where(
                sa.tuple_(p.c.repo_id, p.c.pr_number).in_(part)
            )
        )
        for row in rows:
            events[(row.repo_id, row.pr_number)].append(row._asdict())
        records = []
        for key in part:
            cycle = pr_cycle(events.get(key, ()))
            if cycle is not None and cycle.tech_stream_id is not None:
                records.append({"cycle_id": new_id(), **cycle.as_row()})
        if records:
            stmt = dialect_insert(conn, pr_cycles)
            keep = ("cycle_id", "repo_id", "pr_number")
            conn.execute(
                stmt.on_conflict_do_update(
                    index_elements=["repo_id", "pr_number"],
                    set_={k: stmt.excluded[k] for k in records[0] if k not in keep},
                ),
                records,
            )
        written += len(records)
    return written
