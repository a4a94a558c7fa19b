"""Set-based look-ups of pull requests by number or by commit, for a whole worker batch.

A deploy or a CI run names the PR it ships either by number or by a commit that is the PR's
merge commit or head commit. These helpers answer for every (repository, number) or
(repository, commit) of a batch with a handful of indexed queries instead of one per event.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

import sqlalchemy as sa

from dpp_lib.store.schema import pr_events

CHUNK = 500  # bound the size of IN lists (SQLite's variable limit, plan stability)


@dataclass(frozen=True)
class PrEventRow:
    pr_number: int
    event_type: str
    event_timestamp: datetime
    linked_ticket_id: str | None
    delivery_stream_id: uuid.UUID | None


PrKey = tuple[uuid.UUID, int]
T = TypeVar("T")


def _chunks(items: list[T]) -> Iterable[list[T]]:
    for i in range(0, len(items), CHUNK):
        yield items[i : i + CHUNK]


def numbers_by_commit(
    conn: sa.Connection, commits: Iterable[tuple[uuid.UUID, str]]
) -> dict[tuple[uuid.UUID, str], set[int]]:
    """The PR numbers whose merge or head commit is each (repo_id, sha)."""
    wanted = sorted(set(commits))
    out: dict[tuple[uuid.UUID, str], set[int]] = defaultdict(set)
    p = pr_events
    for part in _chunks(wanted):
        for column in (p.c.merge_commit_sha, p.c.head_sha):
            rows = conn.execute(
                sa.select(p.c.repo_id, column, p.c.pr_number)
                .where(sa.tuple_(p.c.repo_id, column).in_(part))
                .distinct()
            )
            for repo_id, sha, number in rows:
                out[(repo_id, sha)].add(number)
    return dict(out)


def events_by_pr(conn: sa.Connection, prs: Iterable[PrKey]) -> dict[PrKey, list[PrEventRow]]:
    """Every stored event of each (repo_id, pr_number), oldest first."""
    wanted = sorted(set(prs))
    out: dict[PrKey, list[PrEventRow]] = defaultdict(list)
    p = pr_events
    for part in _chunks(wanted):
        rows = conn.execute(
            sa.select(
                p.c.repo_id,
                p.c.pr_number,
                p.c.event_type,
                p.c.event_timestamp,
                p.c.linked_ticket_id,
                p.c.delivery_stream_id,
            )
            .where(sa.tuple_(p.c.repo_id, p.c.pr_number).in_(part))
            .order_by(p.c.event_timestamp, p.c.event_id)
        )
        for r in rows:
            out[(r.repo_id, r.pr_number)].append(
                PrEventRow(
                    r.pr_number,
                    r.event_type,
                    r.event_timestamp,
                    r.linked_ticket_id,
                    r.delivery_stream_id,
                )
            )
    return dict(out)


class PrIndex:
    """The PRs a batch names, loaded up front: ``candidates`` then resolves each reference."""

    def __init__(
        self, conn: sa.Connection, refs: Iterable[tuple[uuid.UUID, int | None, str | None]]
    ):
        refs = list(refs)
        self.by_commit = numbers_by_commit(
            conn, [(repo, sha) for repo, number, sha in refs if number is None and sha]
        )
        keys: set[PrKey] = {(repo, number) for repo, number, _ in refs if number is not None}
        for (repo, _), numbers in self.by_commit.items():
            keys.update((repo, n) for n in numbers)
        self.events = events_by_pr(conn, keys)

    def candidates(
        self, repo_id: uuid.UUID, number: int | None, sha: str | None
    ) -> list[PrEventRow]:
        """The events of the PR(s) a reference names, oldest first (the old per-row rule)."""
        if number is not None:
            return self.events.get((repo_id, number), [])
        if not sha:
            return []
        rows = [
            e
            for n in self.by_commit.get((repo_id, sha), ())
            for e in self.events.get((repo_id, n), [])
        ]
        rows.sort(key=lambda e: (e.event_timestamp, e.pr_number))
        return rows
