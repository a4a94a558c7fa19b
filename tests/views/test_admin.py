"""The data-quality report's per-stream rates: computed for every stream at once from
``stream_rows`` they equal each stream scoped on its own."""

from __future__ import annotations

from datetime import UTC, datetime

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
        frames = admin._frames(conn, lookups, AS_OF)
    checked = 0
    for kind, streams in (("delivery", org.delivery), ("tech", org.tech)):
        rows = admin._stream_rows(frames, kind)
        for s in streams:
            alone = admin.stream_rates(frames, s, kind, as_of=AS_OF, window_days=30)
            shared = admin.stream_rates(frames, s, kind, as_of=AS_OF, window_days=30, rows=rows)
            assert shared == alone, (kind, s.name)
            checked += sum(r["denominator"] or 0 for r in alone.values())
    assert checked > 0  # the demo organisation has something to rate
