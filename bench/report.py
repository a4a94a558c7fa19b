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


def _stored(phase: dict[str, Any], label: str) -> list[dict[str, Any]]:
    claimed, bound = phase["inbox"]["claimed"], phase["inbox"]["stored_bound"]
    return [
        {
            "metric": f"receipt→stored p99 (s), {label}: processed_at − received_at",
            "measured": claimed["p99"],
            "shown": _secs(claimed, "p99"),
            "target": f"< {TARGET_STORED_P99_S:.0f}",
            "met": claimed["p99"] < TARGET_STORED_P99_S and not claimed["p99_is_lower_bound"],
        },
        {
            "metric": f"receipt→stored p99 (s), {label}: batch commit, upper bound",
            "measured": bound["p99"],
            "shown": _secs(bound, "p99"),
            "target": f"< {TARGET_STORED_P99_S:.0f}",
            "met": bound["p99"] < TARGET_STORED_P99_S and not bound["p99_is_lower_bound"],
        },
    ]


def targets(run: dict[str, Any], ceiling: dict[str, Any]) -> list[dict[str, Any]]:
    """Each target of the brief, on the phase that measures it: measured, shown, target, met."""
    closed = run["closed"]["load"]["send"]
    paced = run["paced"]["load"]["send"]
    accept = run["accept_only"]["load"]["send"]
    single = ceiling["2kb_1conn_rows_per_s"]
    share = accept["rate_per_s"] / single
    rate = run["paced"]["rate"]
    non_ok = sum(run[p]["load"]["send"]["non_ok"] for p in ("closed", "paced", "accept_only"))
    return [
        {
            "metric": "Accepted deliveries/s, worker running, closed loop",
            "measured": closed["rate_per_s"],
            "shown": f"{closed['rate_per_s']:,.0f}",
            "target": f"≥ {TARGET_RATE:,.0f}",
            "met": closed["rate_per_s"] >= TARGET_RATE,
        },
        {
            "metric": f"Request latency p99 (ms) at {rate:,.0f}/s offered, worker running "
            "(from each request's due time)",
            "measured": paced["p99_ms"],
            "shown": f"{paced['p99_ms']:.1f} (achieved {paced['rate_per_s']:,.0f}/s)",
            "target": f"< {TARGET_P99_MS:.0f}",
            "met": paced["p99_ms"] < TARGET_P99_MS and paced["rate_per_s"] >= 0.98 * rate,
        },
        *_stored(run["paced"], f"at {rate:,.0f}/s"),
        {
            "metric": "Accepted/s of the API alone ÷ single-row INSERT ceiling (~2 KB, 1 conn.)",
            "measured": share,
            "shown": f"{share:.2f} ({accept['rate_per_s']:,.0f} ÷ {single:,.0f})",
            "target": f"≥ {TARGET_CEILING_SHARE}",
            "met": share >= TARGET_CEILING_SHARE,
        },
        {
            "metric": "Non-202 responses, all phases",
            "measured": non_ok,
            "shown": str(non_ok),
            "target": "0",
            "met": non_ok == 0,
        },
    ]


def _api_cpu_ms(send: dict[str, Any]) -> float:
    cores = float(send["cores_used"].get("api", 0.0))
    return 1000 * cores / max(float(send["rate_per_s"]), 1e-9)


def _rounded(stats: dict[str, Any]) -> dict[str, Any]:
    return {k: round(v, 3) if isinstance(v, float) else v for k, v in stats.items()}


def _send_summary(send: dict[str, Any]) -> dict[str, Any]:
    return {
        "accepted_per_s": round(send["rate_per_s"], 1),
        "p50_ms": round(send["p50_ms"], 2),
        "p99_ms": round(send["p99_ms"], 2),
        "non_202": send["non_ok"],
        "api_cpu_ms_per_request": round(_api_cpu_ms(send), 3),
        "cores_used": send["cores_used"],
    }


def summary(result: dict[str, Any]) -> dict[str, Any]:
    """The compact JSON printed at the end of every run."""
    out: dict[str, Any] = {
        "date": result["date"],
        "machine": result["machine"],
        "config": result["config"],
        "client_ceiling_per_s": round(result["client_ceiling"]["rate_per_s"], 1),
        "insert_ceiling_rows_per_s": _rounded(result["ceiling"]),
        "runs": [],
        "total_s": round(result["total_s"], 1),
    }
    for run in result["runs"]:
        entry: dict[str, Any] = {"api_workers": run["api_workers"]}
        for phase in ("closed", "paced"):
            inbox = run[phase]["inbox"]
            entry[phase] = _send_summary(run[phase]["load"]["send"]) | {
                "receipt_to_stored_s": _rounded(inbox["claimed"]),
                "receipt_to_stored_commit_bound_s": _rounded(inbox["stored_bound"]),
                "drained": inbox["drained"],
                "worker_rows_per_s": round(inbox["worker_rows_per_s"], 1),
            }
        accept = run["accept_only"]
        entry["accept_only"] = _send_summary(accept["load"]["send"]) | {
            "backlog": _rounded(accept["backlog"])
        }
        entry["targets_met"] = {t["metric"]: t["met"] for t in targets(run, result["ceiling"])}
        out["runs"].append(entry)
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
        f"{cfg['concurrency']} keep-alive connections from one asyncio load process, in three "
        "phases on a fresh database each: closed loop (as fast as the API answers) with the "
        f"worker running; paced at {cfg['rate']:,.0f} requests/s with the worker running; the "
        "API alone in a closed loop, after which the worker drains the backlog (at most "
        f"{cfg['backlog_timeout_s']:.0f} s). With the worker running it is given "
        f"{cfg['drain_timeout_s']:.0f} s after the last send to drain the inbox. Before each "
        f"measured send, {cfg['warmup_requests']:,} other deliveries of the same mix are sent "
        "the same way to warm the API (connection pool, prepared statements); they are not "
        "in the figures.",
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
    lines = [
        f"### `--workers {run['api_workers']}`",
        "",
        "| Target | Measured | Target | Met |",
        "|---|---:|---:|:---:|",
    ]
    for t in targets(run, ceil):
        lines.append(
            f"| {t['metric']} | {t['shown']} | {t['target']} | "
            f"{'met' if t['met'] else '**missed**'} |"
        )
    lines += [
        "",
        "| Phase | Accepted/s | p50 / p90 / p99 / max (ms) | API CPU ms/req "
        "| Cores: API, worker, Postgres, client, machine |",
        "|---|---:|---:|---:|---|",
    ]
    labels = {
        "closed": "closed loop, worker running",
        "paced": f"paced at {run['paced']['rate']:,.0f}/s, worker running",
        "accept_only": "API alone, closed loop",
    }
    for phase, label in labels.items():
        send = run[phase]["load"]["send"]
        cores = send["cores_used"]
        lines.append(
            f"| {label} | {send['rate_per_s']:,.0f} | {send['p50_ms']:.1f} / "
            f"{send['p90_ms']:.1f} / {send['p99_ms']:.1f} / {send['max_ms']:.0f} | "
            f"{_api_cpu_ms(send):.2f} | "
            + ", ".join(f"{cores.get(k, 0.0):.2f}" for k in ("api", "worker", "postgres", "client"))
            + f", {cores['total_busy']:.2f} of {m['nproc']} |"
        )
    lines += ["", "| Inbox | closed loop | paced |", "|---|---:|---:|"]
    closed, paced = run["closed"]["inbox"], run["paced"]["inbox"]
    for label, fn in (
        ("receipt→stored p50 / max (s), processed_at − received_at", _p50_max("claimed")),
        ("receipt→stored p50 / max (s), batch commit bound", _p50_max("stored_bound")),
        ("Last send → inbox drained", _drained),
        ("Worker rows/s, first send → drained", lambda i: f"{i['worker_rows_per_s']:,.0f}"),
    ):
        lines.append(f"| {label} | {fn(closed)} | {fn(paced)} |")
    backlog = run["accept_only"]["backlog"]
    health = run["closed"]["load"].get("health", {})
    send = run["closed"]["load"]["send"]
    lines += [
        "",
        f"Backlog left by the API-alone phase ({backlog['rows']:,} "
        "deliveries), drained by one worker with nothing else running: "
        + (
            f"{backlog['seconds']:.1f} s, **{backlog['rows_per_s']:,.0f} rows/s**."
            if backlog["drained"]
            else f"not drained in {backlog['seconds']:.0f} s ({backlog['rows_per_s']:,.0f} rows/s)."
        )
        + f" GET /health on the same API: {health.get('rate_per_s', 0):,.0f} req/s "
        f"(p99 {health.get('p99_ms', 0):.1f} ms). New Postgres connections during the "
        f"closed-loop send: {send.get('new_pg_sessions', 'n/a')}.",
        "",
        "| Delivery kind (closed loop) | n | p50 ms | p99 ms |",
        "|---|---:|---:|---:|",
    ]
    for kind, v in send["by_kind"].items():
        lines.append(f"| {kind} | {v['n']:,} | {v['p50_ms']:.1f} | {v['p99_ms']:.1f} |")
    lines.append("")
    return lines


def _p50_max(key: str) -> Any:
    return lambda inbox: f"{_secs(inbox[key], 'p50')} / {_secs(inbox[key], 'max')}"


def _drained(inbox: dict[str, Any]) -> str:
    if inbox["drained"]:
        return f"{inbox['cutoff_after_last_send_s']:.2f} s"
    return (
        f"not within {inbox['cutoff_after_last_send_s']:.0f} s "
        f"({inbox['pending_at_cutoff']:,} pending)"
    )


def _mix_text(result: dict[str, Any]) -> str:
    mix = result["runs"][0]["closed"]["load"]["mix"]
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
