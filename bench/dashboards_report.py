"""The dashboards benchmark's targets and its section of ``docs/performance.md``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs" / "performance.md"
START = "<!-- bench-dashboards:results:start -->"
END = "<!-- bench-dashboards:results:end -->"
TARGET_MS = {"warm": 2000.0, "cold": 5000.0}  # first chart (issue 7)
SPEC_MS = {"warm": 3000.0, "cold": 8000.0}  # spec §8.1
TARGET_USERS_P95_MS = 5000.0
DATASET_LABEL = {"demo": "demo organisation", "4m": "4-million-event dataset"}


def _first(summary: dict[str, Any]) -> float | None:
    """The page's first chart (p50), or its ready mark for a page without charts."""
    value: float | None = summary["first_chart_ms"]["p50"]
    return value if value is not None else summary["done_ms"]["p50"]


def targets(result: dict[str, Any]) -> dict[str, Any]:
    rows = []
    for key, data in result["datasets"].items():
        for page, modes in data["pages"].items():
            for mode, summary in modes.items():
                value = _first(summary)
                rows.append(
                    {
                        "dataset": key,
                        "page": page,
                        "mode": mode,
                        "first_chart_p50_ms": value,
                        "target_ms": TARGET_MS[mode],
                        "met": value is not None
                        and value < TARGET_MS[mode]
                        and summary["errors"] == 0,
                    }
                )
    users = None
    for key, data in result["datasets"].items():
        if "users" in data:
            u = data["users"]
            p95 = u["done_ms"]["p95"]
            users = {
                "dataset": key,
                "p95_ms": p95,
                "errors": u["errors"],
                "met": p95 is not None and p95 < TARGET_USERS_P95_MS and u["errors"] == 0,
            }
    return {"pages": rows, "users": users}


def compact(result: dict[str, Any]) -> dict[str, Any]:
    """The result without the per-load rows (what the run prints)."""
    out = {k: v for k, v in result.items() if k != "datasets"}
    out["datasets"] = {
        key: {
            "pages": {
                page: {mode: _strip(s) for mode, s in modes.items()}
                for page, modes in data["pages"].items()
            },
            **({"users": _strip(data["users"])} if "users" in data else {}),
        }
        for key, data in result["datasets"].items()
    }
    return out


def _strip(summary: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in summary.items() if k != "loads"}


def _s(ms: float | None) -> str:
    return "—" if ms is None else f"{ms / 1000:.2f}"


def _mb(values: list[int] | None) -> str:
    return f"{max(values):,} MB" if values else "—"


def _met(ok: bool) -> str:
    return "met" if ok else "**MISSED**"


def render(result: dict[str, Any]) -> str:
    m = result["machine"]
    st = result["settings"]
    lines = [
        START,
        f"## Dashboards — {result['started'][:16].replace('T', ' ')} UTC",
        "",
        "`make bench-dashboards` (`bench/dashboards.py`): Chromium (Playwright) opens each page"
        " through the front door (uvicorn, signed-in session cookie) → Voila → a kernel; times"
        " are measured inside the page from navigation start. *HTML end* is when Voila finished"
        " streaming the notebook, i.e. when the kernel had executed every cell; the rest is the"
        " browser (Voila's Javascript, the widget manager, the widgets' views). Every load is a"
        " first visit (a new browser context: nothing cached). Voila serves the measured"
        " page's notebook alone. *Warm*: "
        f"{st['pool']} preheated kernel(s), each load after Voila went idle (the pool"
        " refilled); *cold*: no preheating, the load starts its kernel. *Kernel memory*: the"
        " resident memory of an idle preheated kernel (after its warm-up), which Voila keeps"
        " per notebook and per pool slot."
        f" `as_of={result['as_of']}`; pages measured: {', '.join(result['pages_measured'])}.",
        "",
        f"- **Code:** commit `{result['code']['commit']}`.",
        f"- **Machine:** {m['nproc']} CPUs ({m['cpu']}), {m.get('memory_gb')} GB, Python"
        f" {m['python']}, PostgreSQL {m['postgres']} on the same machine; load average when the"
        f" run started {', '.join(str(x) for x in m['loadavg_at_start'])}.",
        "",
        "### One page at a time",
        "",
        f"p50 of {st['repeats']} loads on the demo organisation and"
        f" {st.get('big_repeats', st['repeats'])} on the 4-million-event dataset (max in"
        " brackets), seconds. Target: first chart warm"
        " < 2 s, cold < 5 s (spec §8.1: 3 s and 8 s); a page without charts (pulse survey):"
        " the form ready.",
        "",
        "| Dataset | Page | Mode | errors | HTML first byte | HTML end | first chart | all zones"
        " | Kernel memory | Target | Met |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|:---:|",
    ]
    met = {(r["dataset"], r["page"], r["mode"]): r["met"] for r in result["targets"]["pages"]}
    for key, data in result["datasets"].items():
        for page, modes in data["pages"].items():
            for mode, s in modes.items():
                lines.append(
                    f"| {DATASET_LABEL.get(key, key)} | {page} | {mode} | {s['errors']}"
                    f" | {_s(s['ttfb_ms']['p50'])} | {_s(s['html_end_ms']['p50'])}"
                    f" | {_s(s['first_chart_ms']['p50'])} ({_s(s['first_chart_ms']['max'])})"
                    f" | {_s(s['done_ms']['p50'])} ({_s(s['done_ms']['max'])})"
                    f" | {_mb(s.get('idle_kernels_mb'))}"
                    f" | < {TARGET_MS[mode] / 1000:.0f} | {_met(met[(key, page, mode)])} |"
                )
    errors = [
        f"- {key} {page} {mode}: {e}"
        for key, data in result["datasets"].items()
        for page, modes in data["pages"].items()
        for mode, s in modes.items()
        for e in s["error_samples"]
    ]
    if errors:
        lines += ["", "Errors:", "", *errors]
    for key, data in result["datasets"].items():
        if "users" not in data:
            continue
        u = data["users"]
        t = result["targets"]["users"]
        lines += [
            "",
            f"### {u['users']} simultaneous users — Overview, {DATASET_LABEL.get(key, key)}",
            "",
            f"{u['users']} signed-in viewers, each of one delivery stream (streams spread over"
            f" the users), open the Overview at the same moment from {u['browsers']} Chromium"
            f" processes; Voila keeps {u['pool']} preheated kernels per notebook, so the others"
            " start theirs. Target: p95 to every zone drawn < 5 s with no error —"
            f" **{_met(t['met']).strip('*')}**.",
            "",
            "| | p50 s | p95 s | max s |",
            "|---|---:|---:|---:|",
        ]
        for name, label in (
            ("ttfb_ms", "HTML first byte"),
            ("html_end_ms", "HTML end (kernel done)"),
            ("first_chart_ms", "first chart"),
            ("done_ms", "all zones drawn"),
        ):
            v = u[name]
            lines.append(f"| {label} | {_s(v['p50'])} | {_s(v['p95'])} | {_s(v['max'])} |")
        cpu = u["cpu_s"]
        lines += [
            "",
            f"Errors: {u['errors']} of {u['n']}"
            + (f" ({'; '.join(u['error_samples'])})" if u["error_samples"] else "")
            + (
                f". **Abandoned**: the machine's available memory fell below the guard"
                f" ({u['lowest_available_gb']} GB left)"
                if u.get("abandoned")
                else f". Lowest available memory during the phase: {u['lowest_available_gb']} GB"
            )
            + f". Whole phase {u['elapsed_s']} s; CPU seconds: Voila and its kernels"
            f" {cpu.get('voila')}, API {cpu.get('api')}, Postgres {cpu.get('postgres')},"
            f" machine {cpu.get('total_busy')}.",
        ]
    memory = result.get("memory") or {}
    if memory:
        trips = "; ".join(memory.get("guard") or []) or "never tripped"
        lines += [
            "",
            f"Memory: lowest available during the run {memory.get('lowest_available_gb')} GB;"
            f" memory guard: {trips}.",
        ]
    lines += [
        "",
        f"Whole benchmark: {result['seconds']} s. Raw numbers: `bench/results/dashboards-*.json`.",
        END,
    ]
    return "\n".join(lines)


def write_docs(result: dict[str, Any]) -> None:
    """Replace the bench-dashboards section of docs/performance.md (append it the first time);
    the other sections stay as they are."""
    section = render(result)
    text = DOCS.read_text()
    if START in text and END in text:
        head, rest = text.split(START, 1)
        _, tail = rest.split(END, 1)
        text = head + section + tail
    else:
        text = text.rstrip() + "\n\n" + section + "\n"
    DOCS.write_text(text)
