"""CPU seconds per process group from /proc (Linux), to show where the cores went."""

from __future__ import annotations

import os
from pathlib import Path

TICK = os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> tuple[str, int, float, float] | None:
    """(comm, ppid, utime+stime, cutime+cstime) in seconds, or None when it is gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    comm = raw[raw.index("(") + 1 : raw.rindex(")")]
    rest = raw[raw.rindex(")") + 2 :].split()
    return (
        comm,
        int(rest[1]),
        (int(rest[11]) + int(rest[12])) / TICK,
        (int(rest[13]) + int(rest[14])) / TICK,
    )


def _all() -> dict[int, tuple[str, int, float, float]]:
    out = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            st = _stat(int(entry))
            if st is not None:
                out[int(entry)] = st
    return out


def snapshot(groups: dict[str, int]) -> dict[str, float]:
    """CPU seconds so far of each named process tree, of Postgres (every ``postgres`` process
    plus the reaped ones: backends that exited are counted in the postmaster's child time),
    and the machine's busy time (``total_busy``)."""
    procs = _all()
    children: dict[int, list[int]] = {}
    for pid, (_, ppid, _, _) in procs.items():
        children.setdefault(ppid, []).append(pid)
    out: dict[str, float] = {}
    for name, root in groups.items():
        total, stack = 0.0, [root]
        while stack:
            pid = stack.pop()
            if pid in procs:
                total += procs[pid][2]
            stack.extend(children.get(pid, []))
        out[name] = total
    out["postgres"] = sum(
        t + reaped for comm, _, t, reaped in procs.values() if comm.startswith("postgres")
    )
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    values = [int(v) for v in fields]
    idle = values[3] + values[4]  # idle + iowait
    out["total_busy"] = (sum(values[:8]) - idle) / TICK
    return out


def delta(before: dict[str, float], after: dict[str, float], seconds: float) -> dict[str, float]:
    """Average cores used by each group between two snapshots."""
    return {k: round((after[k] - before.get(k, 0.0)) / seconds, 3) for k in after}
