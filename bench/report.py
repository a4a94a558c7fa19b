"""Targets, the JSON summary and the results section of ``docs/performance.md``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

DOCS = Path(__file__).resolve().parents[1] / "docs" / "performance.md"
START, END = "<!-- bench-ingest:results:start -->", "<!-- bench-ingest:results:end -->"
TARGET_RATE = 1000.0  # deliveries/s
TARGET_P99_MS = 50.0  # request latency
TARGET_STORED_P99_S = 2.0  # receipt → stored
TARGET_CEILING_SHARE = 0.5  # accepted/s ÷ single-connection INSERT ceiling


def _secs(stats: dict[str, Any], name: str) -> str:
    return ("≥ " if stats[f"{name}_is_lower_bound"] else "") + f"{stats[name]:.2f}"


def targets(run: dict[str, Any], ceiling: dict[str, Any]) -> list[dict[str, Any]]:
    """Each target of the brief: measured, shown, target text, met."""
    send, inbox = run["load"]["send"], run["inbox"]
    single = ceiling["2kb_1conn_rows_per_s"]
    claimed, bound = inbox["claimed"], inbox["stored_bound"]
    share = send["rate_per_s"] / single
    return [
        {
            "metric": "Accepted deliveries/s (202s ÷ send-phase wall time)",
            "measured": send["rate_per_s"],
            "shown": f"{send['rate_per_s']:,.0f}",
            "target": f"≥ {TARGET_RATE:,.0f}",
            "met": send["rate_per_s"] >= TARGET_RATE,
        },
        {
            "metric": "Request latency p99 (ms)",
            "measured": send["p99_ms"],
            "shown": f"{send['p99_ms']:.1f}",
            "target": f"< {TARGET_P99_MS:.0f}",
            "met": send["p99_ms"] < TARGET_P99_MS,
        },
        {
            "metric": "Non-202 responses",
            "measured": send["non_ok"],
            "shown": str(send["non_ok"]),
            "target": "0",
            "met": send["non_ok"] == 0,
        },
        {
            "metric": "receipt→stored p99 (s): processed_at − received_at",
            "measured": claimed["p99"],
            "shown": _secs(claimed, "p99"),
            "target": f"< {TARGET_STORED_P99_S:.0f}",
            "met": claimed["p99"] < TARGET_STORED_P99_S and not claimed["p99_is_lower_bound"],
        },
        {
            "metric": "receipt→stored p99 (s): batch commit, upper bound",
            "measured": bound["p99"],
            "shown": _secs(bound, "p99"),
            "target": f"< {TARGET_STORED_P99_S:.0f}",
            "met": bound["p99"] < TARGET_STORED_P99_S and not bound["p99_is_lower_bound"],
        },
        {
            "metric": "Accepted/s ÷ single-row INSERT ceiling (~2 KB, 1 connection)",
            "measured": share,
            "shown": f"{share:.2f}",
            "target": f"≥ {TARGET_CEILING_SHARE}",
            "met": share >= TARGET_CEILING_SHARE,
        },
    ]


def _api_cpu_ms(send: dict[str, Any]) -> float:
    cores = float(send["cores_used"].get("api", 0.0))
    return 1000 * cores / max(float(send["rate_per_s"]), 1e-9)


def summary(result: dict[str, Any]) -> dict[str, Any]:
    """The compact JSON printed at the end of every run."""
    out: dict[str, Any] = {
        "date": result["date"],
        "machine": result["machine"],
        "config": result["config"],
        "client_ceiling_per_s": round(result["client_ceiling"]["rate_per_s"], 1),
        "insert_ceiling_rows_per_s": {
            k: round(v, 1) if isinstance(v, float) else v for k, v in result["ceiling"].items()
        },
        "runs": [],
        "total_s": round(result["total_s"], 1),
    }
    for run in result["runs"]:
        send, inbox = run["load"]["send"], run["inbox"]
        health = run["load"].get("health", {})
        out["runs"].append(
            {
                "api_workers": run["api_workers"],
                "accepted_per_s": round(send["rate_per_s"], 1),
                "p50_ms": round(send["p50_ms"], 2),
                "p99_ms": round(send["p99_ms"], 2),
                "non_202": send["non_ok"],
                "by_status": send["by_status"],
                "health_per_s": round(health.get("rate_per_s", 0.0), 1),
                "api_cpu_ms_per_request": round(_api_cpu_ms(send), 3),
                "new_pg_sessions_during_send": send.get("new_pg_sessions"),
                "receipt_to_stored_s": {
                    k: round(v, 3) if isinstance(v, float) else v
                    for k, v in inbox["claimed"].items()
                },
                "receipt_to_stored_commit_bound_s": {
                    k: round(v, 3) if isinstance(v, float) else v
                    for k, v in inbox["stored_bound"].items()
                },
                "drained": inbox["drained"],
                "pending_at_cutoff": inbox["pending_at_cutoff"],
                "last_send_to_drained_s": (
                    round(inbox["cutoff_after_last_send_s"], 2) if inbox["drained"] else None
                ),
                "worker_rows_per_s": round(inbox["worker_rows_per_s"], 1),
                "worker_rows_per_s_full_batches": inbox["worker_rows_per_s_full_batches"],
                "states_at_cutoff": inbox["states_at_cutoff"],
                "cores_used": send["cores_used"],
                "targets_met": {t["metric"]: t["met"] for t in targets(run, result["ceiling"])},
            }
        )
    return out


def render(result: dict[str, Any]) -> str:
    m, cfg, ceil = result["machine"], result["config"], result["ceiling"]
    lines = [
        START,
        f"## Results — {result['date']}",
        "",
        f"- **Machine:** {m['nproc']} CPUs ({m['cpu']}), {m['platform']}, Python {m['python']}, "
        f"PostgreSQL {m['postgres']} on the same machine (stock settings: fsync and "
        f"synchronous_commit on). Load average when the run started: "
        f"{', '.join(map(str, m['loadavg_at_start']))}.",
        f"- **Configuration:** `{' '.join(cfg['api_command'])}` and one `dpp worker` (batch "
        f"{cfg['worker_batch_size']}, idle poll {cfg['worker_poll_seconds']} s), both with "
        f"`DPP_ENVIRONMENT=test`; {cfg['requests']:,} deliveries per run "
        f"({_mix_text(result)}; mean body {cfg['mean_body_bytes']:,.0f} B) over "
        f"{cfg['concurrency']} keep-alive connections from one asyncio load process "
        + (
            f"paced at {cfg['rate']:,.0f} requests/s"
            if cfg.get("rate")
            else "sending as fast as the API answers (closed loop)"
        )
        + "; a fresh "
        f"database per run; the worker is given {cfg['drain_timeout_s']:.0f} s after the last "
        "send to drain the inbox.",
        "",
    ]
    for run in result["runs"]:
        lines += _run_section(run, ceil, m)
    cc = result["client_ceiling"]
    lines += [
        "### Ceilings (same machine, measured in the same run)",
        "",
        "| Ceiling | Rate |",
        "|---|---:|",
        f"| Load client against a stub HTTP server (same {cfg['requests']:,} requests, "
        f"{cfg['concurrency']} connections) | {cc['rate_per_s']:,.0f} req/s "
        f"(p99 {cc['p99_ms']:.1f} ms) |",
        f"| Single-row INSERT into `raw_events`, ~2 KB body ({ceil['two_kb_body_bytes']:,} B), "
        f"1 connection — the target's reference | {ceil['2kb_1conn_rows_per_s']:,.0f} rows/s |",
        f"| Single-row INSERT, ~2 KB body, {ceil['connections']} connections | "
        f"{ceil['2kb_nconn_rows_per_s']:,.0f} rows/s |",
        f"| Single-row INSERT, the benchmark's own bodies (mean "
        f"{ceil['mix_mean_body_bytes']:,.0f} B), 1 connection | "
        f"{ceil['mix_1conn_rows_per_s']:,.0f} rows/s |",
        f"| Single-row INSERT, the benchmark's own bodies, {ceil['connections']} connections | "
        f"{ceil['mix_nconn_rows_per_s']:,.0f} rows/s |",
        "",
        f"Whole benchmark: {result['total_s']:.0f} s. Raw numbers: `bench/results/*.json` "
        "(not committed).",
        END,
    ]
    return "\n".join(lines)


def _run_section(run: dict[str, Any], ceil: dict[str, Any], m: dict[str, Any]) -> list[str]:
    send, inbox = run["load"]["send"], run["inbox"]
    health = run["load"].get("health", {})
    claimed, bound = inbox["claimed"], inbox["stored_bound"]
    lines = [
        f"### `--workers {run['api_workers']}`",
        "",
        "| Metric | Measured | Target | Met |",
        "|---|---:|---:|:---:|",
    ]
    for t in targets(run, ceil):
        lines.append(
            f"| {t['metric']} | {t['shown']} | {t['target']} | "
            f"{'met' if t['met'] else '**missed**'} |"
        )
    drained = (
        f"{inbox['cutoff_after_last_send_s']:.2f} s"
        if inbox["drained"]
        else f"not within {inbox['cutoff_after_last_send_s']:.0f} s "
        f"({inbox['pending_at_cutoff']:,} still pending)"
    )
    full = inbox["worker_rows_per_s_full_batches"]
    lines += [
        f"| Request latency p50 / p90 / max (ms) | {send['p50_ms']:.1f} / {send['p90_ms']:.1f} "
        f"/ {send['max_ms']:.0f} | — | |",
        f"| receipt→stored p50 / max (s): processed_at − received_at | "
        f"{_secs(claimed, 'p50')} / {_secs(claimed, 'max')} | — | |",
        f"| receipt→stored p50 / max (s): batch commit, upper bound | "
        f"{_secs(bound, 'p50')} / {_secs(bound, 'max')} | — | |",
        f"| Last send → inbox drained | {drained} | — | |",
        f"| Worker throughput, first send → drained or cut-off (rows/s) | "
        f"{inbox['worker_rows_per_s']:,.0f} | — | |",
        f"| Worker throughput over full batches of {inbox['batch_size_max']} (rows/s) | "
        + (f"{full:,.0f}" if full else "n/a (no full batch: it kept up)")
        + " | — | |",
        f"| API CPU per request (ms, all API processes) | {_api_cpu_ms(send):.2f} | — | |",
        f"| New Postgres connections opened during the send phase | "
        f"{send.get('new_pg_sessions', 'n/a')} | — | |",
        f"| GET /health on the same API, {health.get('requests', 0):,} requests (req/s, p99 ms) "
        f"| {health.get('rate_per_s', 0):,.0f}, {health.get('p99_ms', 0):.1f} | — | |",
        "",
        f"Send phase {send['elapsed_s']:.1f} s; inbox states when the wait ended: "
        f"{_states(inbox['states_at_cutoff'])}. Cores used during the send phase: "
        + ", ".join(f"{k} {v:.2f}" for k, v in send["cores_used"].items() if k != "total_busy")
        + f"; whole machine {send['cores_used']['total_busy']:.2f} of {m['nproc']} "
        "(the rest: kernel, other processes).",
        "",
        "| Delivery kind | n | p50 ms | p99 ms |",
        "|---|---:|---:|---:|",
    ]
    for kind, v in send["by_kind"].items():
        lines.append(f"| {kind} | {v['n']:,} | {v['p50_ms']:.1f} | {v['p99_ms']:.1f} |")
    lines.append("")
    return lines


def _mix_text(result: dict[str, Any]) -> str:
    mix = result["runs"][0]["load"]["mix"]
    total = sum(mix.values())
    share = {
        "GitHub": sum(v for k, v in mix.items() if k.startswith("github:")),
        "Jira": sum(v for k, v in mix.items() if k.startswith("jira:")),
        "deployment events": mix.get("deployment", 0),
    }
    return ", ".join(f"{100 * v / total:.0f} % {k}" for k, v in share.items())


def _states(states: dict[str, int]) -> str:
    return ", ".join(f"{k} {v:,}" for k, v in sorted(states.items()))


def write_docs(result: dict[str, Any]) -> None:
    """Replace the results section of docs/performance.md (create the file if needed)."""
    section = render(result)
    text = DOCS.read_text() if DOCS.exists() else ""
    if START in text and END in text:
        head, rest = text.split(START, 1)
        _, tail = rest.split(END, 1)
        text = head + section + tail
    else:
        text = (text.rstrip() + "\n\n" if text else "# Ingestion performance\n\n") + section + "\n"
    DOCS.write_text(text)
