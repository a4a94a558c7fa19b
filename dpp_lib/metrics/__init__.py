"""Every number the platform shows, computed once (DESIGN §1, §5).

Pure functions: DataFrames and keyword-only parameters in (always ``as_of`` and a window),
a frozen, typed result with ``sample_size`` out. No database, web or file access here; the
frames come from ``dpp_lib.store.read`` (or a test's factories). Each function is
registered by name in ``dpp_lib.metrics.registry`` and documented in ``docs/metrics/``.
"""
