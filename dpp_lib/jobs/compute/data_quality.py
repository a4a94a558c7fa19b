"""Data-quality evaluation (spec §5.6, §8.5; hourly at :20): each stream's data-quality
rates against their targets, as the admin page shows them, and the system alerts brought
in step — a rate that fell below its target raises a LOW alert, one back above resolves it.

``refresh_system_alerts`` evaluates every condition it knows (inbox, integrations, pulse
response too); the API's latency alert is measured by the API process only, so its last
verdict is carried over rather than resolved by a job that cannot measure it. Alerts are
always evaluated for the whole organisation; ``stream`` narrows the summary only.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pandas as pd
import sqlalchemy as sa

from dpp_lib.jobs.compute.context import Context, select_streams
from dpp_lib.jobs.compute.result import ComputeResult, plural, run
from dpp_lib.metrics.common import DEFAULT_WINDOW_DAYS, Scope
from dpp_lib.views import admin, alerts

NAME = "data_quality"
RATES = (
    "pr_linkage",
    "ticket_tagging",
    "deployment_traceability",
    "defect_attribution",
    "pulse_response",
)


def evaluate_data_quality(
    engine: sa.Engine,
    *,
    as_of: datetime,
    stream: str = "all",
    window_days: int = DEFAULT_WINDOW_DAYS,
) -> ComputeResult:
    """Every stream's rates over the trailing ``window_days`` and the system alerts at
    ``as_of`` (the alerts use the spec's 30-day window whatever ``window_days`` is)."""
    return run(engine, NAME, lambda ctx: compute(ctx, stream), as_of=as_of, window_days=window_days)


def compute(ctx: Context, stream: str) -> ComputeResult:
    chosen = select_streams(ctx.org, stream, kinds=("delivery", "tech"))
    report = admin.data_quality_report(
        ctx.conn, ctx.lookups, ctx.org, scope=Scope(), as_of=ctx.as_of, window_days=ctx.window_days
    )
    before = {a["condition"] for a in alerts.active_alerts(ctx.conn)}
    active = alerts.refresh_system_alerts(
        ctx.conn, ctx.lookups, now=ctx.as_of, **_api_latency(ctx.conn)
    )
    after = {a["condition"] for a in active}
    raised, resolved = after - before, before - after
    alerting: dict[str, list[str]] = {}
    for a in active:
        if a["condition"].startswith(alerts.DATA_QUALITY + ":"):
            alerting.setdefault(str(a["details"].get("streamId")), []).append(a["details"]["rate"])
    wanted = {str(s.stream_id) for s in (*chosen.delivery, *chosen.tech)}
    lines = [
        {
            "stream": s["stream"],
            "kind": s["kind"],
            **{f"{r}_pct": s["rates"].get(r, {}).get("value") for r in RATES},
            "below_target": ", ".join(n for n, r in s["rates"].items() if r["below_target"]),
            "alerts": ", ".join(sorted(alerting.get(s["stream_id"], []))),
        }
        for s in report["streams"]
        if s["stream_id"] in wanted
    ]
    rates = [f"{r}_pct" for r in RATES]
    summary = pd.DataFrame(
        lines, columns=["stream", "kind", *rates, "below_target", "alerts"]
    ).astype(dict.fromkeys(rates, "float64"))
    dq = {c for c in after if c.startswith(alerts.DATA_QUALITY + ":")}
    return ComputeResult(
        computation=NAME,
        as_of=ctx.as_of,
        day=ctx.day,
        window_days=ctx.window_days,
        streams=chosen.names,
        rows={"system_alerts": len(raised) + len(resolved)},
        summary=summary,
        headline=_headline(summary, ctx, len(dq), len(raised), len(resolved), len(after)),
    )


def _api_latency(conn: sa.Connection) -> dict[str, Any]:
    for a in alerts.active_alerts(conn):
        if a["condition"] == alerts.API_LATENCY:
            details = a["details"]
            return {
                "api_latency_p95_ms": float(details["p95Ms"]),
                "api_requests": int(details["requests"]),
            }
    return {}


def _headline(
    summary: pd.DataFrame, ctx: Context, dq: int, raised: int, resolved: int, active: int
) -> str:
    below = summary[summary["below_target"] != ""]
    text = f"{plural(len(summary), 'stream')} checked over {ctx.window_days} days: "
    if below.empty:
        text += "every rate meets its target"
    else:
        text += f"{len(below)} below a target ({', '.join(below['stream'])})"
    return (
        f"{text}. {plural(dq, 'data-quality alert')} active; this run raised {raised} and "
        f"resolved {resolved} system alerts ({active} active in all)."
    )
