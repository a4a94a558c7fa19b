"""The scheduled computations (issue 6; the ``notebooks/compute`` notebooks call these).

One function per computation, each in its own transaction, idempotent: re-running it for
the same day replaces its own rows — of every stream, or of the one stream named — and
never touches another computation's rows. Each returns a ``ComputeResult``.

=========================  =======================================  ====================
function                   writes                                   schedule
=========================  =======================================  ====================
``refresh_sprints``        sprint_snapshots; daily_stream_metrics   every 2 hours
                           (sprint_confidence)
``refresh_cross_stream``   cross_stream_correlations                hourly
``refresh_daily_metrics``  daily_stream_metrics (flow, DORA)        daily
``refresh_diagnostics``    daily_stream_metrics (flow efficiency,   daily
                           defect escape, review turnaround)
``refresh_forecasts``      forecast_snapshots                       daily
``refresh_pulse``          pulse_aggregates                         monthly
``evaluate_data_quality``  system_alerts                            hourly
=========================  =======================================  ====================
"""

from dpp_lib.jobs.compute.cross_stream import refresh_cross_stream
from dpp_lib.jobs.compute.daily import refresh_daily_metrics
from dpp_lib.jobs.compute.data_quality import evaluate_data_quality
from dpp_lib.jobs.compute.diagnostics import refresh_diagnostics
from dpp_lib.jobs.compute.forecasts import refresh_forecasts
from dpp_lib.jobs.compute.pulse import refresh_pulse
from dpp_lib.jobs.compute.result import ComputeResult
from dpp_lib.jobs.compute.sprints import refresh_sprints

__all__ = [
    "ComputeResult",
    "evaluate_data_quality",
    "refresh_cross_stream",
    "refresh_daily_metrics",
    "refresh_diagnostics",
    "refresh_forecasts",
    "refresh_pulse",
    "refresh_sprints",
]
