"""The inbox writers: group commit on Postgres, the SQLAlchemy path on SQLite — same rows."""

from __future__ import annotations

import asyncio
import uuid

import pytest
import sqlalchemy as sa

from dpp_lib.settings import Settings
from dpp_lib.store.api_keys import create_key, get_key
from ingest_service.inbox import Inbox, PostgresInbox, make_inbox
from ingest_service.records import InboxRecord
from tests.support import count, rows


def _rec(i: int, **kw: object) -> InboxRecord:
    fields: dict[str, object] = {
        "source": "github",
        "delivery_id": f"d-{i}",
        "event_kind": "ping",
        "headers": {"x-github-event": "ping"},
        "body": b'{"zen": "%d"}' % i,
    }
    fields |= kw
    return InboxRecord(**fields)  # type: ignore[arg-type]


def _inbox(settings: Settings, engine: sa.Engine) -> Inbox:
    return make_inbox(engine, settings.resolved_database_url(), pool_size=8)


async def _concurrently(inbox: Inbox, recs: list[InboxRecord]) -> list[bool]:
    await inbox.open()
    try:
        return list(await asyncio.gather(*(inbox.append(r) for r in recs)))
    finally:
        await inbox.close()


def test_concurrent_appends_store_each_delivery_once(settings: Settings, org: sa.Engine) -> None:
    """500 concurrent requests, every tenth a repeat of an earlier delivery: each delivery is
    stored once, each repeat is told it was a duplicate, nothing is lost."""
    inbox = _inbox(settings, org)
    recs = [_rec(i) for i in range(450)] + [_rec(i * 10) for i in range(45)]
    results = asyncio.run(_concurrently(inbox, recs))
    assert count(org, "raw_events") == 450
    assert results.count(True) == 450 and results.count(False) == 45
    stored = {r["delivery_id"]: bytes(r["body"]) for r in rows(org, "raw_events")}
    assert stored == {f"d-{i}": b'{"zen": "%d"}' % i for i in range(450)}
    if isinstance(inbox, PostgresInbox):
        # group commit: far fewer statements than rows, and every row in one of them
        assert inbox.rows == len(recs) and inbox.batches < len(recs) / 4


def test_same_delivery_twice_in_one_batch(settings: Settings, org: sa.Engine) -> None:
    inbox = _inbox(settings, org)
    results = asyncio.run(_concurrently(inbox, [_rec(1), _rec(1), _rec(2)]))
    assert sorted(results) == [False, True, True]
    assert count(org, "raw_events") == 2


def test_api_key_is_recorded_and_its_last_use_touched(settings: Settings, org: sa.Engine) -> None:
    with org.begin() as conn:
        key, _ = create_key(conn, name="t", permissions=["events:write"])
    inbox = _inbox(settings, org)
    recs = [_rec(i, source="deployment", api_key_id=key.key_id) for i in range(20)]
    assert all(asyncio.run(_concurrently(inbox, recs)))
    with org.connect() as conn:
        touched = get_key(conn, key.key_id)
    assert touched is not None and touched.last_used_at is not None
    assert {uuid.UUID(str(r["api_key_id"])) for r in rows(org, "raw_events")} == {key.key_id}


def test_a_bad_row_fails_only_its_own_request(settings: Settings, org: sa.Engine) -> None:
    """A row the database refuses (here a source outside the check constraint) fails its own
    request — never acknowledged — while the rows written with it are stored."""
    inbox = _inbox(settings, org)
    recs = [_rec(i) for i in range(30)]
    recs[7] = _rec(7, source="bogus")

    async def go() -> list[object]:
        await inbox.open()
        try:
            return list(
                await asyncio.gather(*(inbox.append(r) for r in recs), return_exceptions=True)
            )
        finally:
            await inbox.close()

    results = asyncio.run(go())
    assert isinstance(results[7], Exception)
    assert [r for i, r in enumerate(results) if i != 7] == [True] * 29
    assert count(org, "raw_events") == 29


@pytest.mark.parametrize("n", [1, 2])
def test_idle_inbox_writes_immediately(settings: Settings, org: sa.Engine, n: int) -> None:
    inbox = _inbox(settings, org)
    assert asyncio.run(_concurrently(inbox, [_rec(i) for i in range(n)])) == [True] * n
    assert count(org, "raw_events") == n
