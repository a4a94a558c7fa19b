"""DORA trend metrics (spec §6.4, DESIGN §5), each beside its 2023 State of DevOps level.

Frames (``dpp_lib.metrics.frames``), already scoped to one stream or to all streams:
``deploys`` — production deployment records; ``incidents`` — one row per incident (first open,
first resolve); ``prs`` — pull requests. Every metric takes ``as_of``: rows after it are
ignored and later changes of state are not yet known (a deploy rolled back after ``as_of`` is
still a success, an incident resolved after it is still open), so a past moment gives the
same answer whenever it is asked. Windows are ``[as_of − N days, as_of)``.

A deploy *reached production* when its status is ``success`` or ``rolled_back``; it *counts
for DORA* when, besides, it is not configuration-only (``trigger_type == "config"``) and its
repository is not flagged non-deployable (``is_deployable`` false; unknown counts).
"""

from __future__ import annotations

import bisect
from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Final, Literal

import numpy as np
import pandas as pd

from dpp_lib.calendar import WorkCalendar
from dpp_lib.metrics.common import (
    DEFAULT_WINDOW_DAYS,
    MetricInputError,
    Window,
    percentiles,
    require_columns,
    round_or_none,
)
from dpp_lib.metrics.registry import metric

DoraLevel = Literal["elite", "high", "medium", "low"]


@dataclass(frozen=True)
class LevelScale:
    """One metric's row of the level table: better direction, then bounds best → worst."""

    unit: str
    higher_is_better: bool
    # (level, bound, bound included): the first band the value falls in wins; worse than
    # the last bound is "low".
    bands: tuple[tuple[DoraLevel, float, bool], ...]


#: Accelerate State of DevOps Report 2023 (DORA, Google Cloud), software delivery performance
#: levels. The report describes each cluster; a level here runs to the edge of its
#: description. Low's deploy frequency and lead time equal medium's in the 2023 report, so low
#: is whatever is worse than medium. A month is 30 days.
DORA_2023_LEVELS: Final[Mapping[str, LevelScale]] = {
    # elite "on demand (multiple deploys per day)"; high "between once per day and once per
    # week"; medium "between once per week and once per month".
    "deployment_frequency": LevelScale(
        "deploys per week",
        True,
        (("elite", 7.0, False), ("high", 1.0, True), ("medium", 7 / 30, True)),
    ),
    # elite "less than one day"; high "between one day and one week"; medium "between one
    # week and one month".
    "lead_time_for_changes": LevelScale(
        "hours", False, (("elite", 24.0, False), ("high", 168.0, True), ("medium", 720.0, True))
    ),
    # elite 5 %, high 10 %, medium 15 %, low 64 %.
    "change_failure_rate": LevelScale(
        "percent", False, (("elite", 5.0, True), ("high", 10.0, True), ("medium", 15.0, True))
    ),
    # "failed deployment recovery time": elite "less than one hour"; high "less than one
    # day"; medium "between one day and one week"; low "between one month and six months".
    "time_to_restore": LevelScale(
        "minutes",
        False,
        (("elite", 60.0, False), ("high", 1440.0, False), ("medium", 10080.0, True)),
    ),
}

REACHED_PRODUCTION: Final = frozenset({"success", "rolled_back"})
CONFIG_TRIGGER: Final = "config"
DEFAULT_CORRELATION_MINUTES: Final = 60  # DESIGN §4, spec §5.4.4

# The columns each function reads (frames.py has the full canonical lists).
DEPLOY_COLUMNS: Final = (
    *("record_id", "pipeline_id", "pipeline_run_id", "tech_stream_id", "repo_id"),
    *("deployed_at", "status", "trigger_type", "commit_sha", "linked_pr_number"),
    *("rollback_at", "is_deployable"),
)
INCIDENT_COLUMNS: Final = ("incident_id", "tech_stream_id", "opened_at", "resolved_at")
PR_COLUMNS: Final = (
    *("repo_id", "pr_number", "opened_at", "merged_at", "merge_commit_sha", "head_sha"),
    "is_deployable",
)


def dora_level(name: str, value: float | None) -> DoraLevel | None:
    """The 2023 level of ``value`` for metric ``name`` (a key of ``DORA_2023_LEVELS``)."""
    if value is None or pd.isna(value):
        return None
    scale = DORA_2023_LEVELS[name]
    for level, bound, included in scale.bands:
        if value == bound and included:
            return level
        if (value > bound) if scale.higher_is_better else (value < bound):
            return level
    return "low"


# --- results ------------------------------------------------------------------------------


@dataclass(frozen=True)
class DeploymentFrequency:
    deployment_frequency: float | None  # deploys per week; None when none in the window
    deploy_count: int
    weekly: dict[date, int]  # Monday (org time zone) → deploys; every week the window touches
    level: DoraLevel | None
    window: Window
    sample_size: int  # = deploy_count


@dataclass(frozen=True)
class ChangeFailureRate:
    change_failure_rate: float | None  # percent, 0–100
    deploy_count: int
    failed_count: int  # rolled back or caused an incident (each deploy once)
    rolled_back_count: int
    caused_incident_count: int
    level: DoraLevel | None
    window: Window
    sample_size: int  # = deploy_count


@dataclass(frozen=True)
class TimeToRestore:
    ttr_median: float | None  # minutes
    ttr_mean: float | None  # minutes
    incident_count: int  # incidents opened in the window
    level: DoraLevel | None  # of the median
    window: Window
    sample_size: int  # incidents resolved in the window with a restore time


@dataclass(frozen=True)
class LeadTimeForChanges:
    lead_time_p50: float | None  # hours
    lead_time_p85: float | None  # hours
    lead_time_deploy_count: int  # deploys in the window that shipped at least one PR
    pr_count: int  # PRs shipped by those deploys
    level: DoraLevel | None  # of the p50
    window: Window
    sample_size: int  # shipped PRs with a lead time


# --- the two joins --------------------------------------------------------------------------


def correlate_incidents(
    deploys: pd.DataFrame,
    incidents: pd.DataFrame,
    *,
    window_minutes: int = DEFAULT_CORRELATION_MINUTES,
) -> pd.DataFrame:
    """The deploys frame plus ``caused_incident`` (bool) and ``incident_id`` (str or None).

    DESIGN §5 "Deploy → incident correlation", spec §5.4.4: an incident first opened at ``t``
    (``opened_at``) for tech stream T is linked to the latest deploy of T (``tech_stream_id``)
    that reached production with ``deployed_at`` in ``[t − window_minutes, t]``, both ends
    included. Any deploy that reached production can be linked, configuration-only ones too
    (the metrics then leave those out). A deploy linked to several incidents keeps the first
    (earliest ``opened_at``, then smallest ``incident_id``). Rows without a tech stream or a
    time are never linked. Deploys at the same instant are ordered by ``record_id``,
    ``pipeline_id``, ``pipeline_run_id``; the last is "latest". Row order and index are kept.
    """
    require_columns(deploys, DEPLOY_COLUMNS, name="deploys")
    require_columns(incidents, INCIDENT_COLUMNS, name="incidents")
    if window_minutes < 0:
        raise MetricInputError(f"correlation window must be ≥ 0 minutes, got {window_minutes}")
    span = pd.Timedelta(minutes=window_minutes)
    caused = np.zeros(len(deploys), dtype=bool)
    linked: list[Any] = [None] * len(deploys)

    candidates = _ordered(deploys.reset_index(drop=True))
    candidates = candidates[
        _reached_production(candidates)
        & candidates["deployed_at"].notna()
        & candidates["tech_stream_id"].notna()
    ]
    streams: dict[Hashable, tuple[list[pd.Timestamp], list[int]]] = {}
    for pos, stream, when in zip(
        candidates.index, candidates["tech_stream_id"], candidates["deployed_at"], strict=True
    ):
        times, positions = streams.setdefault(stream, ([], []))
        times.append(when)
        positions.append(int(pos))

    opened = incidents[incidents["opened_at"].notna() & incidents["tech_stream_id"].notna()]
    opened = opened.assign(_id=opened["incident_id"].astype(str))
    opened = opened.sort_values(["opened_at", "_id"], kind="mergesort")
    for stream, start, incident_id in zip(
        opened["tech_stream_id"], opened["opened_at"], opened["incident_id"], strict=True
    ):
        if stream not in streams:
            continue
        times, positions = streams[stream]
        i = bisect.bisect_right(times, start) - 1
        if i < 0 or times[i] < start - span:
            continue
        pos = positions[i]
        if not caused[pos]:
            caused[pos] = True
            linked[pos] = incident_id
    return deploys.assign(
        caused_incident=caused, incident_id=pd.Series(linked, index=deploys.index, dtype=object)
    )


def shipped_prs(prs: pd.DataFrame, deploys: pd.DataFrame) -> pd.DataFrame:
    """Merged PRs that reached production, with the deploy that shipped each.

    DESIGN §5 "Lead time for changes", spec §6.4.4 (PR-based). Only merged PRs
    (``merged_at`` set) of deployable repositories (``is_deployable`` not false) and deploys
    that count for DORA take part. A deploy names a PR of its own repository (``repo_id``)
    by ``linked_pr_number`` or by ``commit_sha`` equal to the PR's ``merge_commit_sha`` or
    ``head_sha`` (case-insensitive); the earliest naming deploy not before the PR was opened
    ships it (an explicit link wins over the time rule). Any other merged PR is shipped by the
    first deploy of its repository at or after ``merged_at``. PRs not shipped yet are absent.

    Returns the shipped PRs' rows (their index kept) plus ``record_id`` and ``deployed_at``
    of the shipping deploy, ``ship_rule`` (``"explicit"`` or ``"time"``) and
    ``lead_time_hrs`` = deployed_at − opened_at in hours (None when ``opened_at`` is missing
    or after the deploy).
    """
    pr_pos, deploy_pos, rules, lead = _ship(prs, deploys)
    ships = deploys.reset_index(drop=True)
    out = prs.iloc[pr_pos].copy()
    out["record_id"] = ships["record_id"].to_numpy()[deploy_pos]
    out["deployed_at"] = ships["deployed_at"].iloc[deploy_pos].to_numpy()
    out["ship_rule"] = rules
    out["lead_time_hrs"] = pd.Series(lead, index=out.index, dtype=object)
    return out


# --- metrics ------------------------------------------------------------------------------


@metric(
    "deployment_frequency",
    spec="§6.4.1",
    summary="How often do we put changes into production?",
)
def deployment_frequency(
    deploys: pd.DataFrame,
    *,
    as_of: datetime | None = None,
    window_days: int = DEFAULT_WINDOW_DAYS,
    window: Window | None = None,
    calendar: WorkCalendar | None = None,
) -> DeploymentFrequency:
    """Deploys that reached production per week, and the raw count of each week.

    Input: ``deploys`` (columns record_id, pipeline_id, pipeline_run_id, tech_stream_id,
    repo_id, deployed_at, status, trigger_type, commit_sha, linked_pr_number, rollback_at,
    is_deployable). Counted: deploys that count for DORA with ``deployed_at`` in the window;
    rows without ``deployed_at`` are ignored. ``deployment_frequency`` = count ÷ window days
    × 7 (deploys per week, 2 decimals); None when the window has no deploy. ``weekly`` holds
    the raw count of every week (Monday start in ``calendar``'s time zone, UTC by default)
    that the window touches; the first and last weeks count only their part in the window.
    Spec §6.4.1, DESIGN §5 "Deployment frequency".
    """
    win = _resolve_window(as_of, window_days, window)
    cal = calendar if calendar is not None else WorkCalendar.of("UTC")
    frame = _dora_in_window(_known_at(deploys, win.as_of), win)
    count = len(frame)
    per_week = count * 7 / win.days if count and win.days > 0 else None
    weekly: dict[date, int] = {}
    if win.end > win.start:
        week = cal.week_start(win.start)
        last = cal.week_start(win.end - timedelta(microseconds=1))
        while week <= last:
            weekly[week] = 0
            week += timedelta(days=7)
    for when in frame["deployed_at"]:
        weekly[cal.week_start(when)] += 1
    return DeploymentFrequency(
        deployment_frequency=round_or_none(per_week),
        deploy_count=count,
        weekly=weekly,
        level=dora_level("deployment_frequency", per_week),
        window=win,
        sample_size=count,
    )


@metric(
    "change_failure_rate",
    spec="§6.4.2",
    summary="What share of our production deploys were rolled back or caused an incident?",
)
def change_failure_rate(
    deploys: pd.DataFrame,
    incidents: pd.DataFrame,
    *,
    as_of: datetime | None = None,
    window_days: int = DEFAULT_WINDOW_DAYS,
    window: Window | None = None,
    correlation_window_minutes: int = DEFAULT_CORRELATION_MINUTES,
) -> ChangeFailureRate:
    """Of the deploys that reached production in the window, the share that failed, × 100.

    Inputs: ``deploys`` (as for deployment frequency) and ``incidents`` (incident_id,
    tech_stream_id, opened_at, resolved_at). A deploy failed when it was rolled back by
    ``as_of`` (status ``rolled_back`` and ``rollback_at`` before ``as_of`` or unknown) or
    caused an incident opened before ``as_of`` (``correlate_incidents``, window
    ``correlation_window_minutes``). Only deploys that count for DORA, with ``deployed_at``
    in the window, are counted; an incident may be opened after the window's deploy but
    before ``as_of``. ``change_failure_rate`` is a percentage 0–100 (2 decimals), None with no
    deploy. Spec §6.4.2, DESIGN §5 "Change failure rate".
    """
    win = _resolve_window(as_of, window_days, window)
    known = _known_at(deploys, win.as_of)
    require_columns(incidents, INCIDENT_COLUMNS, name="incidents")
    opened = incidents[incidents["opened_at"] < win.as_of]
    linked = correlate_incidents(known, opened, window_minutes=correlation_window_minutes)
    frame = _dora_in_window(linked, win)
    rolled_back = _text(frame["status"]) == "rolled_back"
    caused = frame["caused_incident"].astype(bool)
    count, failed = len(frame), int((rolled_back | caused).sum())
    rate = failed / count * 100 if count else None
    return ChangeFailureRate(
        change_failure_rate=round_or_none(rate),
        deploy_count=count,
        failed_count=failed,
        rolled_back_count=int(rolled_back.sum()),
        caused_incident_count=int(caused.sum()),
        level=dora_level("change_failure_rate", rate),
        window=win,
        sample_size=count,
    )


@metric(
    "time_to_restore",
    spec="§6.4.3",
    summary="When production breaks, how long does it take us to restore service?",
)
def time_to_restore(
    incidents: pd.DataFrame,
    *,
    as_of: datetime | None = None,
    window_days: int = DEFAULT_WINDOW_DAYS,
    window: Window | None = None,
) -> TimeToRestore:
    """Median and mean restore time, in minutes, of incidents resolved in the window.

    Input: ``incidents`` (incident_id, opened_at, resolved_at, time_to_restore_min). Per
    incident: resolved_at − opened_at in whole minutes (half up, never negative), as the
    incidents projection computes it; ``time_to_restore_min`` is used only when a time is
    missing. Incidents opened at or after ``as_of`` are ignored, and resolutions at or after
    it are not yet known. ``ttr_median``/``ttr_mean`` (2 decimals) are over incidents with
    ``resolved_at`` in the window and a restore time, None when there is none;
    ``incident_count`` counts incidents with ``opened_at`` in the window. Spec §6.4.3, DESIGN
    §5 "Time to restore"; the level is the median's.
    """
    win = _resolve_window(as_of, window_days, window)
    require_columns(incidents, (*INCIDENT_COLUMNS, "time_to_restore_min"), name="incidents")
    known = incidents[~(incidents["opened_at"] >= win.as_of)]
    seconds = (known["resolved_at"] - known["opened_at"]).dt.total_seconds()
    minutes = ((seconds / 60 + 0.5) // 1).clip(lower=0)
    fallback = pd.to_numeric(known["time_to_restore_min"], errors="coerce")
    minutes = minutes.where(minutes.notna(), fallback)
    resolved = minutes[win.mask(known["resolved_at"]) & minutes.notna()]
    values = [float(v) for v in resolved]
    median = percentiles(values, (50,))[50]
    mean = float(np.mean(values)) if values else None
    return TimeToRestore(
        ttr_median=round_or_none(median),
        ttr_mean=round_or_none(mean),
        incident_count=int(win.mask(known["opened_at"]).sum()),
        level=dora_level("time_to_restore", median),
        window=win,
        sample_size=len(values),
    )


@metric(
    "lead_time_for_changes",
    spec="§6.4.4",
    summary="How long does a change take from pull request opened to running in production?",
)
def lead_time_for_changes(
    prs: pd.DataFrame,
    deploys: pd.DataFrame,
    *,
    as_of: datetime | None = None,
    window_days: int = DEFAULT_WINDOW_DAYS,
    window: Window | None = None,
) -> LeadTimeForChanges:
    """p50 and p85 lead time, in hours, of the PRs shipped by deploys in the window.

    Inputs: ``prs`` (repo_id, pr_number, opened_at, merged_at, merge_commit_sha, head_sha,
    is_deployable) and ``deploys`` (as for deployment frequency). PRs are matched to deploys
    by ``shipped_prs`` using what was known at ``as_of``: PRs opened at or after it are
    ignored, PRs merged at or after it are not merged yet, deploys at or after it do not
    exist yet. Lead time = shipping deploy's deployed_at − PR opened_at, hours; percentiles
    linear-interpolated (2 decimals), None when no shipped PR has a lead time.
    ``lead_time_deploy_count`` = deploys in the window that shipped at least one PR. Spec
    §6.4.4 (PR-based method), DESIGN §5 "Lead time for changes"; the level is the p50's.
    """
    win = _resolve_window(as_of, window_days, window)
    require_columns(prs, PR_COLUMNS, name="prs")
    known_prs = prs[~(prs["opened_at"] >= win.as_of)]
    known_prs = known_prs.assign(
        merged_at=known_prs["merged_at"].where(known_prs["merged_at"] < win.as_of)
    )
    known_deploys = _known_at(deploys, win.as_of).reset_index(drop=True)
    _, deploy_pos, _, lead = _ship(known_prs, known_deploys)
    in_window = win.mask(known_deploys["deployed_at"]).to_numpy()
    shipped = [(d, h) for d, h in zip(deploy_pos, lead, strict=True) if in_window[d]]
    hours = [h for _, h in shipped if h is not None]
    got = percentiles(hours, (50, 85))
    return LeadTimeForChanges(
        lead_time_p50=round_or_none(got[50]),
        lead_time_p85=round_or_none(got[85]),
        lead_time_deploy_count=len({d for d, _ in shipped}),
        pr_count=len(shipped),
        level=dora_level("lead_time_for_changes", got[50]),
        window=win,
        sample_size=len(hours),
    )


# --- helpers ------------------------------------------------------------------------------


def _resolve_window(as_of: datetime | None, window_days: int, window: Window | None) -> Window:
    if window is not None:
        if as_of is not None and as_of != window.end:
            raise MetricInputError(f"as_of {as_of} differs from the window's end {window.end}")
        return window
    if as_of is None:
        raise MetricInputError("as_of (or a window) is required")
    return Window.trailing(as_of, window_days)


def _text(series: pd.Series[Any]) -> pd.Series[str]:
    """Lower-case, stripped strings; '' for anything that is not a string."""
    return series.map(lambda v: v.strip().lower() if isinstance(v, str) else "").astype(str)


def _reached_production(frame: pd.DataFrame) -> pd.Series[bool]:
    return _text(frame["status"]).isin(REACHED_PRODUCTION)


def _counts_for_dora(frame: pd.DataFrame) -> pd.Series[bool]:
    config = _text(frame["trigger_type"]) == CONFIG_TRIGGER
    non_deployable = frame["is_deployable"].map(lambda v: v is False or v is np.False_)
    return (
        _reached_production(frame)
        & ~config
        & ~non_deployable.astype(bool)
        & frame["deployed_at"].notna()
    )


def _known_at(deploys: pd.DataFrame, as_of: datetime) -> pd.DataFrame:
    """Deploys before ``as_of``; a rollback at or after ``as_of`` has not happened yet."""
    require_columns(deploys, DEPLOY_COLUMNS, name="deploys")
    frame = deploys[deploys["deployed_at"] < as_of]
    later = (_text(frame["status"]) == "rolled_back") & (frame["rollback_at"] >= as_of)
    if not later.any():
        return frame
    return frame.assign(status=frame["status"].where(~later, "success"))


def _dora_in_window(deploys: pd.DataFrame, win: Window) -> pd.DataFrame:
    return deploys[_counts_for_dora(deploys) & win.mask(deploys["deployed_at"])]


def _ordered(deploys: pd.DataFrame) -> pd.DataFrame:
    """By deployed_at, ties broken by record_id, pipeline_id, pipeline_run_id (as text)."""
    tie = (
        deploys["record_id"].astype(str)
        + "|"
        + deploys["pipeline_id"].astype(str)
        + "|"
        + deploys["pipeline_run_id"].astype(str)
    )
    return deploys.assign(_tie=tie).sort_values(["deployed_at", "_tie"], kind="mergesort")


def _pr_number(value: object) -> int | None:
    if isinstance(value, bool | np.bool_):
        return None
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return None


def _sha(value: object) -> str | None:
    return value.strip().lower() or None if isinstance(value, str) else None


def _ship(
    prs: pd.DataFrame, deploys: pd.DataFrame
) -> tuple[list[int], list[int], list[str], list[float | None]]:
    """Positions of shipped PRs and of their deploys, the rule used, and lead times (h)."""
    require_columns(prs, PR_COLUMNS, name="prs")
    require_columns(deploys, DEPLOY_COLUMNS, name="deploys")
    table = deploys.reset_index(drop=True)
    ships = _ordered(table[_counts_for_dora(table) & table["repo_id"].notna()])
    pr_table = prs.reset_index(drop=True)
    non_deployable = pr_table["is_deployable"].map(lambda v: v is False or v is np.False_)
    merged = pr_table[
        pr_table["merged_at"].notna() & pr_table["repo_id"].notna() & ~non_deployable.astype(bool)
    ]
    by_number: dict[tuple[Hashable, int], list[int]] = {}
    by_sha: dict[tuple[Hashable, str], list[int]] = {}
    for pos, repo, number, merge_sha, head_sha in zip(
        merged.index,
        merged["repo_id"],
        merged["pr_number"],
        merged["merge_commit_sha"],
        merged["head_sha"],
        strict=True,
    ):
        n = _pr_number(number)
        if n is not None:
            by_number.setdefault((repo, n), []).append(int(pos))
        for sha in {_sha(merge_sha), _sha(head_sha)} - {None}:
            by_sha.setdefault((repo, str(sha)), []).append(int(pos))

    opened_at = pr_table["opened_at"].tolist()  # plain lists: scalar access in the loops
    deployed_at = table["deployed_at"].tolist()
    explicit: dict[int, int] = {}
    repo_times: dict[Hashable, tuple[list[pd.Timestamp], list[int]]] = {}
    for pos, repo, when, number, sha in zip(
        ships.index,
        ships["repo_id"],
        ships["deployed_at"],
        ships["linked_pr_number"],
        ships["commit_sha"],
        strict=True,
    ):
        times, positions = repo_times.setdefault(repo, ([], []))
        times.append(when)
        positions.append(int(pos))
        n, s = _pr_number(number), _sha(sha)
        named = set(by_number.get((repo, n), []) if n is not None else [])
        named |= set(by_sha.get((repo, s), []) if s is not None else [])
        for pr in named:
            opened = opened_at[pr]
            if pr not in explicit and (pd.isna(opened) or when >= opened):
                explicit[pr] = int(pos)

    pr_pos: list[int] = []
    deploy_pos: list[int] = []
    rules: list[str] = []
    lead: list[float | None] = []
    for pos, repo, merged_at in zip(
        merged.index, merged["repo_id"], merged["merged_at"], strict=True
    ):
        pr = int(pos)
        if pr in explicit:
            deploy, rule = explicit[pr], "explicit"
        else:
            times, positions = repo_times.get(repo, ([], []))
            i = bisect.bisect_left(times, merged_at)
            if i == len(times):
                continue
            deploy, rule = positions[i], "time"
        hours = (deployed_at[deploy] - opened_at[pr]).total_seconds() / 3600
        pr_pos.append(pr)
        deploy_pos.append(deploy)
        rules.append(rule)
        lead.append(float(hours) if not pd.isna(hours) and hours >= 0 else None)
    return pr_pos, deploy_pos, rules, lead
