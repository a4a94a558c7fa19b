"""``Scope``: one stream, sets of streams (what a principal may see), and empty frames."""

from __future__ import annotations

import uuid

from dpp_lib.metrics.common import Scope, stream_rows
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


def test_stream_rows_is_every_single_stream_scope_at_once() -> None:
    cycles = make_frame(
        "cycles",
        [
            {"ticket_id": "X-1", "delivery_stream_id": A, "tech_stream_ids": [A, B]},
            {"ticket_id": "X-2", "delivery_stream_id": None, "tech_stream_ids": [C, C]},
            {"ticket_id": "X-3", "delivery_stream_id": B, "tech_stream_ids": None},
            {"ticket_id": "X-4", "delivery_stream_id": A, "tech_stream_ids": []},
            {"ticket_id": "X-5", "delivery_stream_id": B, "tech_stream_ids": [B]},
        ],
    )
    gappy = cycles.iloc[[4, 0, 2, 1]]  # an index that is neither ordered nor 0..n
    prs = make_frame(
        "prs",
        [
            {"pr_number": 1, "delivery_stream_id": A, "tech_stream_id": B},
            {"pr_number": 2, "delivery_stream_id": C, "tech_stream_id": None},
            {"pr_number": 3, "delivery_stream_id": A, "tech_stream_id": B},
        ],
    )
    for frame in (cycles, gappy, prs):
        for kind in ("delivery", "tech"):
            rows = stream_rows(frame, kind)
            for stream in (A, B, C):
                one = (
                    Scope(delivery_stream_id=stream)
                    if kind == "delivery"
                    else Scope(tech_stream_id=stream)
                )
                expected = one.apply(frame)
                got = frame.iloc[rows[stream]] if stream in rows else frame.iloc[0:0]
                assert got.index.tolist() == expected.index.tolist(), (kind, stream)
    assert sorted(map(str, stream_rows(cycles, "tech"))) == sorted(map(str, (A, B, C)))
    assert stream_rows(cycles.iloc[0:0], "tech") == {}
