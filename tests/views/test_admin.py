"""The data-quality report's per-stream rates: computed for every stream at once from
``stream_rows`` they equal each stream scoped on its own."""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd
import pytest
import sqlalchemy as sa

from dpp_lib.ingest.lookups import OrgLookups
from dpp_lib.metrics.common import Scope
from dpp_lib.store import read
from dpp_lib.store.config_tables import load_lookups
from dpp_lib.views import admin
from dpp_lib.views.common import load_org
from tests.conftest import DemoOrg

AS_OF = datetime(2026, 11, 12, 18, tzinfo=UTC)


def test_per_stream_rates_from_shared_rows_equal_one_stream_at_a_time(
    demo_sqlite: DemoOrg,
) -> None:
    with demo_sqlite.engine.connect() as conn:
        lookups = load_lookups(conn)
        org = load_org(conn)
        frames = admin._frames(conn, lookups, AS_OF, 30)
    checked = 0
    for kind, streams in (("delivery", org.delivery), ("tech", org.tech)):
        rows = admin._stream_rows(frames, kind)
        for s in streams:
            alone = admin.stream_rates(frames, s, kind, as_of=AS_OF, window_days=30)
            shared = admin.stream_rates(frames, s, kind, as_of=AS_OF, window_days=30, rows=rows)
            assert shared == alone, (kind, s.name)
            checked += sum(r["denominator"] or 0 for r in alone.values())
    assert checked > 0  # the demo organisation has something to rate


def _whole_history(
    conn: sa.Connection, lookups: OrgLookups, as_of: datetime, window_days: int
) -> dict[str, pd.DataFrame]:
    """Every row before ``as_of``: what the report read before its reads were windowed."""
    return {
        "prs": read.prs(conn, as_of=as_of),
        "transitions": read.transitions(conn, lookups, as_of=as_of),
        "deploys": read.deploys(conn, as_of=as_of),
        "defects": read.defects(conn, as_of=as_of),
        "pulse": read.pulse(conn, as_of=as_of),
    }


@pytest.mark.parametrize("window_days", [7, 30, 90])
def test_the_report_reads_only_its_window_and_equals_the_whole_historys(
    demo_sqlite: DemoOrg, window_days: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    with demo_sqlite.engine.connect() as conn:
        lookups = load_lookups(conn)
        org = load_org(conn)
        some = Scope(delivery_stream_id=org.delivery[0].stream_id)
        windowed = admin._frames(conn, lookups, AS_OF, window_days)
        everything = _whole_history(conn, lookups, AS_OF, window_days)
        reports = [
            admin.data_quality_report(
                conn, lookups, org, scope=scope, as_of=AS_OF, window_days=window_days
            )
            for scope in (Scope(), some)
        ]
        monkeypatch.setattr(admin, "_frames", _whole_history)
        expected = [
            admin.data_quality_report(
                conn, lookups, org, scope=scope, as_of=AS_OF, window_days=window_days
            )
            for scope in (Scope(), some)
        ]
    assert reports == expected
    read_rows, all_rows = sum(map(len, windowed.values())), sum(map(len, everything.values()))
    assert read_rows <= all_rows
    if window_days <= 30:  # the demo organisation's history is longer than that
        assert read_rows < all_rows
    assert reports[0]["sampleSizes"]["ticketTaggingRate"] > 0
