"""``Scope``: one stream, sets of streams (what a principal may see), and empty frames."""

from __future__ import annotations

import uuid

from dpp_lib.metrics.common import Scope
from dpp_lib.metrics.frames import make_frame

A, B, C = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()


def test_sets_of_streams_restrict_each_dimension() -> None:
    prs = make_frame(
        "prs",
        [
            {"pr_number": 1, "delivery_stream_id": A, "tech_stream_id": B},
            {"pr_number": 2, "delivery_stream_id": C, "tech_stream_id": B},
            {"pr_number": 3, "delivery_stream_id": A, "tech_stream_id": C},
        ],
    )
    assert list(Scope(delivery_in=frozenset({A})).apply(prs)["pr_number"]) == [1, 3]
    assert list(Scope(tech_in=frozenset({B})).apply(prs)["pr_number"]) == [1, 2]
    assert list(Scope(delivery_in=frozenset()).apply(prs)["pr_number"]) == []
    both = Scope(delivery_stream_id=A, tech_in=frozenset({C}))
    assert list(both.apply(prs)["pr_number"]) == [3]
    assert both.delivery_part() == Scope(delivery_stream_id=A)
    assert both.tech_part() == Scope(tech_in=frozenset({C}))
    assert Scope().is_all and not Scope(tech_in=frozenset()).is_all


def test_membership_of_tech_streams_and_empty_frames_keep_their_columns() -> None:
    cycles = make_frame(
        "cycles",
        [
            {"ticket_id": "X-1", "tech_stream_ids": [A, B]},
            {"ticket_id": "X-2", "tech_stream_ids": [C]},
            {"ticket_id": "X-3", "tech_stream_ids": None},
        ],
    )
    assert list(Scope(tech_stream_id=B).apply(cycles)["ticket_id"]) == ["X-1"]
    assert list(Scope(tech_in=frozenset({A, C})).apply(cycles)["ticket_id"]) == ["X-1", "X-2"]
    empty = make_frame("cycles")
    scoped = Scope(tech_stream_id=A).apply(empty)
    assert list(scoped.columns) == list(empty.columns) and scoped.empty
