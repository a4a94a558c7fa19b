"""PR cycles: hand-computed records, order independence, and the upsert on both databases."""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st

from dpp_lib.projections.pull_requests import pr_cycle, refresh_pr_cycles
from dpp_lib.store.schema import delivery_streams, pr_cycles, repositories
from dpp_lib.store.write import insert_events


def person(name: str) -> str:
    return hashlib.sha256(name.encode()).hexdigest()


AUTHOR, ALICE, BOB, CAROL = person("author"), person("alice"), person("bob"), person("carol")
REPO, TECH, DELIVERY = uuid.UUID(int=1), uuid.UUID(int=2), uuid.UUID(int=3)


def t(day: int, hour: int = 9, minute: int = 0) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=UTC)


def ev(kind: str, at: datetime, **overrides: Any) -> dict[str, Any]:
    """One pr_events row as the GitHub normaliser writes it (review rows carry no sizes)."""
    row: dict[str, Any] = {
        "event_id": uuid.uuid4(),
        "source": "github",
        "event_type": kind,
        "event_timestamp": at,
        "repo_id": REPO,
        "pr_number": 101,
        "github_org": "acme-core-api",
        "github_repo": "payments-service",
        "author_hash": AUTHOR,
        "branch_name": "feature/PAY-123-refund-limits",
        "base_branch": "main",
        "linked_ticket_id": "PAY-123",
        "tech_stream_id": TECH,
        "delivery_stream_id": DELIVERY,
        "lines_added": None,
        "lines_removed": None,
        "files_changed": None,
        "reviewer_hash": None,
        "review_state": None,
    }
    row.update(overrides)
    return row


def review(
    reviewer: str, at: datetime, state: str = "commented", **kw: Any
) -> list[dict[str, Any]]:
    """The rows of one review submission: review_submitted, plus approved/changes_requested."""
    kinds = ["review_submitted"] + ([state] if state in ("approved", "changes_requested") else [])
    return [ev(k, at, reviewer_hash=reviewer, review_state=state, **kw) for k in kinds]


def story(**kw: Any) -> list[dict[str, Any]]:
    """Opened Mon 2 Nov 09:00; the author comments on their own PR at 09:45; Alice comments at
    11:30; Bob requests changes at 13:00 and approves Tue 09:00; merged Tue 10:00."""
    return [
        ev("opened", t(2), lines_added=120, lines_removed=30, files_changed=5, **kw),
        *review(AUTHOR, t(2, 9, 45), **kw),
        *review(ALICE, t(2, 11, 30), **kw),
        *review(BOB, t(2, 13), "changes_requested", **kw),
        *review(BOB, t(3, 9), "approved", **kw),
        ev("merged", t(3, 10), lines_added=150, lines_removed=40, files_changed=6, **kw),
    ]


# --- the pure function ----------------------------------------------------------------------


def test_story_gives_the_hand_computed_record() -> None:
    c = pr_cycle(story())
    assert c is not None
    assert (c.repo_id, c.pr_number, c.tech_stream_id, c.delivery_stream_id) == (
        REPO,
        101,
        TECH,
        DELIVERY,
    )
    assert c.author_hash == AUTHOR and c.linked_ticket_id == "PAY-123"
    assert c.opened_at == t(2)
    assert c.first_review_at == t(2, 11, 30)  # the author's 09:45 comment is not a review
    assert c.approved_at == t(3, 9)
    assert c.merged_at == t(3, 10)
    assert c.time_to_first_review_hrs == 2.5
    assert c.time_to_merge_hrs == 25.0
    assert c.review_rounds == 2  # one changes request + 1
    assert c.reviewer_hashes == tuple(sorted((ALICE, BOB))) and c.reviewer_count == 2
    assert c.lines_changed == 190 and c.files_changed == 6  # the merged event's sizes


def test_only_self_reviews_mean_never_reviewed() -> None:
    events = [
        ev("opened", t(2)),
        *review(AUTHOR, t(2, 10)),
        *review(AUTHOR, t(2, 11), "approved"),
        *review(AUTHOR, t(2, 12), "changes_requested"),
    ]
    c = pr_cycle(events)
    assert c is not None
    assert c.first_review_at is None and c.approved_at is None
    assert c.time_to_first_review_hrs is None
    assert c.review_rounds == 0 and c.reviewer_hashes == () and c.reviewer_count == 0


def test_self_approval_is_not_the_approval() -> None:
    events = [
        ev("opened", t(2)),
        *review(AUTHOR, t(2, 10), "approved"),
        *review(ALICE, t(2, 12), "approved"),
    ]
    c = pr_cycle(events)
    assert c is not None and c.approved_at == t(2, 12) and c.first_review_at == t(2, 12)


@pytest.mark.parametrize(
    ("reviews", "rounds"),
    [
        ([], 0),
        ([(ALICE, 10, "commented")], 1),
        ([(ALICE, 10, "approved")], 1),
        ([(ALICE, 10, "changes_requested"), (ALICE, 12, "approved")], 2),
        ([(ALICE, 10, "changes_requested")], 2),  # a changes request opens the next round
        (
            [
                (ALICE, 10, "changes_requested"),
                (BOB, 11, "changes_requested"),
                (BOB, 15, "approved"),
            ],
            3,
        ),
        ([(AUTHOR, 10, "changes_requested"), (ALICE, 12, "approved")], 1),  # self: not counted
    ],
)
def test_review_rounds(reviews: list[tuple[str, int, str]], rounds: int) -> None:
    events = [ev("opened", t(2))] + [r for who, h, s in reviews for r in review(who, t(2, h), s)]
    c = pr_cycle(events)
    assert c is not None and c.review_rounds == rounds


def test_approval_from_review_state_alone() -> None:
    # A review_submitted row whose state says approved, without its companion row.
    events = [
        ev("opened", t(2)),
        ev("review_submitted", t(2, 14), reviewer_hash=ALICE, review_state="APPROVED"),
    ]
    c = pr_cycle(events)
    assert c is not None and c.approved_at == t(2, 14) and c.review_rounds == 1


def test_review_without_reviewer_is_ignored() -> None:
    events = [ev("opened", t(2)), *review(None, t(2, 10)), *review(CAROL, t(2, 15))]  # type: ignore[arg-type]
    c = pr_cycle(events)
    assert c is not None and c.first_review_at == t(2, 15) and c.reviewer_hashes == (CAROL,)


def test_without_opened_event_the_earliest_event_opens() -> None:
    events = [
        ev("merged", t(4), lines_added=7, lines_removed=3, files_changed=1),
        *review(BOB, t(3, 12), "approved"),
    ]
    c = pr_cycle(events)
    assert c is not None
    assert c.opened_at == t(3, 12) and c.first_review_at == t(3, 12)
    assert c.time_to_first_review_hrs == 0.0 and c.time_to_merge_hrs == 21.0


def test_review_before_opened_gives_no_duration() -> None:
    c = pr_cycle([ev("opened", t(2, 12)), *review(ALICE, t(2, 11))])
    assert c is not None
    assert c.first_review_at == t(2, 11) and c.time_to_first_review_hrs is None


def test_sizes_and_streams_come_from_the_latest_event_that_has_them() -> None:
    other = uuid.UUID(int=99)
    events = [
        ev(
            "opened",
            t(2),
            lines_added=10,
            lines_removed=5,
            files_changed=2,
            delivery_stream_id=None,
        ),
        ev("closed", t(5), lines_added=None, lines_removed=None, delivery_stream_id=other),
        ev(
            "merged",
            t(3),
            lines_added=20,
            lines_removed=None,
            files_changed=4,
            linked_ticket_id=None,
        ),
    ]
    c = pr_cycle(events)
    assert c is not None
    assert c.lines_changed == 15  # the merged event lacks lines_removed
    assert c.files_changed == 4
    assert c.delivery_stream_id == other and c.linked_ticket_id == "PAY-123"
    assert c.merged_at == t(3)


def test_no_events_no_record_and_mixed_prs_refused() -> None:
    assert pr_cycle([]) is None
    with pytest.raises(ValueError, match="several PRs"):
        pr_cycle([ev("opened", t(2)), ev("opened", t(2), pr_number=102)])


STORY = story()


@settings(max_examples=60, deadline=None)
@given(st.permutations(STORY))
def test_any_order_gives_the_same_record(events: list[dict[str, Any]]) -> None:
    assert pr_cycle(events) == pr_cycle(STORY)


# --- the store ------------------------------------------------------------------------------


@pytest.fixture
def ids(org: sa.Engine) -> dict[str, Any]:
    with org.connect() as conn:
        repo = conn.execute(
            sa.select(repositories.c.repo_id, repositories.c.tech_stream_id).where(
                repositories.c.full_name == "acme-core-api/payments-service"
            )
        ).one()
        delivery = conn.execute(
            sa.select(delivery_streams.c.stream_id).where(delivery_streams.c.name == "payments")
        ).scalar_one()
    return {"repo_id": repo.repo_id, "tech_stream_id": repo.tech_stream_id, "delivery": delivery}


def stored_story(ids: dict[str, Any], number: int) -> list[dict[str, Any]]:
    return story(
        repo_id=ids["repo_id"],
        tech_stream_id=ids["tech_stream_id"],
        delivery_stream_id=ids["delivery"],
        pr_number=number,
    )


def cycles(engine: sa.Engine) -> dict[int, dict[str, Any]]:
    with engine.connect() as conn:
        return {
            r["pr_number"]: dict(r)
            for r in conn.execute(sa.select(pr_cycles).order_by(pr_cycles.c.pr_number)).mappings()
        }


def test_refresh_writes_the_record(org: sa.Engine, ids: dict[str, Any]) -> None:
    with org.begin() as conn:
        insert_events(conn, "pr_events", stored_story(ids, 101))
        assert refresh_pr_cycles(conn, [(ids["repo_id"], 101)]) == 1
    row = cycles(org)[101]
    assert row["repo_id"] == ids["repo_id"] and row["tech_stream_id"] == ids["tech_stream_id"]
    assert row["delivery_stream_id"] == ids["delivery"]
    assert row["author_hash"] == AUTHOR and row["linked_ticket_id"] == "PAY-123"
    assert row["opened_at"] == t(2) and row["first_review_at"] == t(2, 11, 30)
    assert row["approved_at"] == t(3, 9) and row["merged_at"] == t(3, 10)
    assert float(row["time_to_first_review_hrs"]) == 2.5
    assert float(row["time_to_merge_hrs"]) == 25.0
    assert row["review_rounds"] == 2
    assert row["reviewer_hashes"] == sorted((ALICE, BOB)) and row["reviewer_count"] == 2
    assert (row["lines_changed"], row["files_changed"]) == (190, 6)


def test_reverse_arrival_gives_the_same_record(org: sa.Engine, ids: dict[str, Any]) -> None:
    with org.begin() as conn:
        insert_events(conn, "pr_events", stored_story(ids, 101))
        refresh_pr_cycles(conn, [(ids["repo_id"], 101)])
    # PR 102 has the same history delivered newest first, one event per worker batch.
    for event in reversed(stored_story(ids, 102)):
        with org.begin() as conn:
            insert_events(conn, "pr_events", [event])
            refresh_pr_cycles(conn, [(ids["repo_id"], 102)])
    got = cycles(org)
    forward, backward = (
        {k: v for k, v in got[n].items() if k not in ("cycle_id", "pr_number")} for n in (101, 102)
    )
    assert forward == backward
    assert backward["first_review_at"] == t(2, 11, 30) and backward["review_rounds"] == 2


def test_refresh_again_changes_nothing(org: sa.Engine, ids: dict[str, Any]) -> None:
    prs = [(ids["repo_id"], 101), (ids["repo_id"], 102)]
    with org.begin() as conn:
        insert_events(conn, "pr_events", stored_story(ids, 101) + stored_story(ids, 102))
        assert refresh_pr_cycles(conn, prs) == 2
    before = cycles(org)
    with org.begin() as conn:
        insert_events(conn, "pr_events", stored_story(ids, 101))  # a redelivery: no new rows
        assert refresh_pr_cycles(conn, prs + prs) == 2
    assert cycles(org) == before
    assert len(before) == 2


def test_a_later_event_updates_the_record(org: sa.Engine, ids: dict[str, Any]) -> None:
    key = [(ids["repo_id"], 101)]
    first_two = stored_story(ids, 101)[:2]  # opened + the author's own comment
    with org.begin() as conn:
        insert_events(conn, "pr_events", first_two)
        refresh_pr_cycles(conn, key)
    open_row = cycles(org)[101]
    assert open_row["first_review_at"] is None and open_row["merged_at"] is None
    assert open_row["review_rounds"] == 0 and open_row["reviewer_hashes"] == []
    with org.begin() as conn:
        insert_events(conn, "pr_events", stored_story(ids, 101)[2:])
        refresh_pr_cycles(conn, key)
    row = cycles(org)[101]
    assert row["cycle_id"] == open_row["cycle_id"]
    assert row["merged_at"] == t(3, 10) and row["review_rounds"] == 2


def test_prs_without_repo_or_tech_stream_get_no_record(org: sa.Engine, ids: dict[str, Any]) -> None:
    with org.begin() as conn:
        insert_events(
            conn,
            "pr_events",
            [
                ev(
                    "opened",
                    t(2),
                    repo_id=ids["repo_id"],
                    pr_number=7,
                    tech_stream_id=None,
                    delivery_stream_id=None,
                ),
                ev(
                    "opened",
                    t(2),
                    repo_id=None,
                    pr_number=8,
                    tech_stream_id=ids["tech_stream_id"],
                    delivery_stream_id=None,
                    github_repo="unregistered",
                ),
            ],
        )
        written = refresh_pr_cycles(conn, [(ids["repo_id"], 7), (None, 8), (ids["repo_id"], 404)])
    assert written == 0
    assert cycles(org) == {}


def test_a_manual_link_outranks_a_later_automatic_one() -> None:
    pay, lend = uuid.uuid4(), uuid.uuid4()
    events = [
        ev("opened", t(1), linked_ticket_id="PAY-1", delivery_stream_id=pay),
        ev(
            "review_submitted",
            t(2),
            reviewer_hash=person("rev"),
            review_state="commented",
            linked_ticket_id="LEND-7",
            link_method="manual",
            delivery_stream_id=lend,
        ),
        ev("merged", t(3), linked_ticket_id="PAY-1", link_method="branch", delivery_stream_id=pay),
    ]
    cycle = pr_cycle(events)
    assert cycle is not None
    assert (cycle.linked_ticket_id, cycle.delivery_stream_id) == ("LEND-7", lend)
    no_manual = pr_cycle([e | {"link_method": None} for e in events])
    assert no_manual is not None and no_manual.linked_ticket_id == "PAY-1"
