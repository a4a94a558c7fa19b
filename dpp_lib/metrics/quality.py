"""Defect escape rate with the introduced × found matrix (spec §6.3.2, DESIGN §5)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import pandas as pd

from dpp_lib.metrics.common import DEFAULT_WINDOW_DAYS, Window, records
from dpp_lib.metrics.frames import check_frame
from dpp_lib.metrics.registry import metric

ESCAPED_STAGES = ("uat", "production")
# Same timestamp: a defect is logged before it is attributed, attributed before reclassified.
EVENT_RANK = {"logged": 0, "attributed": 1, "reclassified": 2}


@dataclass(frozen=True)
class DefectEscape:
    window: Window
    rate: float | None  # escaped ÷ all × 100
    defect_count: int  # escaped (found in uat or production)
    total_defects: int
    total_completed: int  # work items completed in the window
    matrix: dict[str, dict[str, int]]  # introduced stage → found stage → defects
    by_found_stage: dict[str, int]
    unattributed_pct: float | None  # share with no introduced stage
    sample_size: int


def latest_attribution(defects: pd.DataFrame, *, as_of: datetime) -> pd.DataFrame:
    """Each defect's latest event before ``as_of`` (ties: logged < attributed <
    reclassified), with ``logged_at`` = its first ``logged`` event."""
    check_frame("defects", defects)
    known = defects[defects["event_timestamp"] < as_of].copy()
    if known.empty:
        return known.assign(logged_at=pd.Series(dtype="datetime64[ns, UTC]"))
    known["_rank"] = known["event_type"].map(EVENT_RANK).fillna(9)
    known = known.sort_values(["ticket_id", "event_timestamp", "_rank"])
    logged = known[known["event_type"] == "logged"].groupby("ticket_id")["event_timestamp"].min()
    latest = known.groupby("ticket_id").tail(1).set_index("ticket_id")
    latest["logged_at"] = logged
    return latest.drop(columns="_rank").reset_index()


@metric(
    "defect_escape", spec="§6.3.2", summary="Where is quality escaping, and where do bugs start?"
)
def defect_escape(
    defects: pd.DataFrame,
    cycles: pd.DataFrame,
    *,
    as_of: datetime,
    window_days: int = DEFAULT_WINDOW_DAYS,
) -> DefectEscape:
    """Defects whose ``logged`` event falls in the window, each resolved to its latest event
    before ``as_of``. ``rate`` = found in uat or production ÷ all × 100; the matrix counts
    (introduced, found) pairs of attributed defects; ``unattributed_pct`` = share with no
    introduced stage. ``total_completed`` = work items (frame ``cycles``) completed in the
    window. Defects without a ``logged`` event are not counted."""
    window = Window.trailing(as_of, window_days)
    check_frame("cycles", cycles)
    latest = latest_attribution(defects, as_of=as_of)
    sample = latest[window.mask(latest["logged_at"])] if not latest.empty else latest
    n = len(sample)
    completed = int(window.mask(cycles["completed_at"]).sum())
    if n == 0:
        return DefectEscape(window, None, 0, 0, completed, {}, {}, None, 0)
    found = sample["found_in_stage"].fillna("unknown")
    escaped = int(found.isin(ESCAPED_STAGES).sum())
    attributed = sample[sample["introduced_in_stage"].notna()]
    matrix: dict[str, dict[str, int]] = {}
    for row in records(attributed):
        intro, where = str(row["introduced_in_stage"]), str(row["found_in_stage"])
        matrix.setdefault(intro, {})[where] = matrix.get(intro, {}).get(where, 0) + 1
    return DefectEscape(
        window=window,
        rate=round(escaped / n * 100, 2),
        defect_count=escaped,
        total_defects=n,
        total_completed=completed,
        matrix=matrix,
        by_found_stage={str(k): int(v) for k, v in found.value_counts().sort_index().items()},
        unattributed_pct=round((n - len(attributed)) / n * 100, 2),
        sample_size=n,
    )
