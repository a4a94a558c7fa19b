"""Defect escape (spec §6.3.2, DESIGN §5) on hand-built frames."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from dpp_lib.metrics.frames import make_frame
from dpp_lib.metrics.quality import defect_escape

AS_OF = datetime(2026, 11, 20, 12, tzinfo=UTC)


def d(
    ticket: str, kind: str, days_ago: float, found: str, intro: str | None = None
) -> dict[str, Any]:
    return {
        "ticket_id": ticket,
        "event_type": kind,
        "event_timestamp": AS_OF - timedelta(days=days_ago),
        "found_in_stage": found,
        "introduced_in_stage": intro,
    }


CYCLES = make_frame(
    "cycles",
    [{"ticket_id": f"W-{i}", "completed_at": AS_OF - timedelta(days=i)} for i in (1, 2, 3, 40)],
)


def test_rate_matrix_and_unattributed_share() -> None:
    defects = make_frame(
        "defects",
        [
            d("B-1", "logged", 5, "qa"),
            d("B-1", "attributed", 4, "qa", "dev"),
            d("B-2", "logged", 6, "production"),
            d("B-2", "attributed", 5, "production", "ba"),
            d("B-2", "reclassified", 2, "uat", "ba"),  # latest attribution wins
            d("B-3", "logged", 7, "production"),  # never attributed
            d("B-4", "logged", 45, "production", "dev"),  # logged before the window
            d("B-5", "attributed", 3, "uat", "dev"),  # no logged event: not counted
        ],
    )
    r = defect_escape(defects, CYCLES, as_of=AS_OF)
    assert r.total_defects == 3 and r.sample_size == 3
    assert r.defect_count == 2 and r.rate == 66.67  # B-2 (uat) and B-3 (production)
    assert r.matrix == {"dev": {"qa": 1}, "ba": {"uat": 1}}
    assert r.unattributed_pct == 33.33
    assert r.total_completed == 3
    assert r.by_found_stage == {"production": 1, "qa": 1, "uat": 1}


def test_same_timestamp_logged_before_attributed_before_reclassified() -> None:
    defects = make_frame(
        "defects",
        [
            d("B-9", "reclassified", 1, "uat", "qa"),
            d("B-9", "attributed", 1, "production", "dev"),
            d("B-9", "logged", 1, "production"),
        ],
    )
    r = defect_escape(defects, CYCLES, as_of=AS_OF)
    assert r.matrix == {"qa": {"uat": 1}}


def test_events_after_as_of_are_ignored() -> None:
    defects = make_frame(
        "defects",
        [d("B-1", "logged", 5, "qa"), d("B-1", "reclassified", -1, "production", "dev")],
    )
    r = defect_escape(defects, CYCLES, as_of=AS_OF)
    assert r.defect_count == 0 and r.rate == 0.0 and r.unattributed_pct == 100.0


def test_empty_window() -> None:
    r = defect_escape(make_frame("defects"), make_frame("cycles"), as_of=AS_OF)
    assert (r.rate, r.total_defects, r.sample_size, r.matrix) == (None, 0, 0, {})
