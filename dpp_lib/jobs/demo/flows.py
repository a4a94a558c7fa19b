"""What the org config says about Jira: each project's status flow, its sprints' boards,
stage option labels, and which projects carry which delivery stream."""

from __future__ import annotations

import random
from bisect import bisect_right
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from dpp_lib.jobs.demo import text
from dpp_lib.jobs.demo.clock import WorkClock
from dpp_lib.jobs.demo.model import Sprint, Status
from dpp_lib.orgconfig import DeliveryStream, JiraProject, OrgConfig

FLOW_STAGES = ("ba", "dev", "code_review", "qa", "uat")
# Stages a defect can be found in / introduced in, in pipeline order (spec §6.3.2).
DEFECT_STAGES = ("ba", "dev", "code_review", "qa", "uat", "production")
# Option labels matched case-insensitively against stage names when the value map has none.
CANONICAL_STAGE_LABELS = {
    "ba": "BA",
    "dev": "Dev",
    "code_review": "Code_Review",
    "qa": "QA",
    "uat": "UAT",
    "production": "Production",
}
SPRINT_EPOCH = date(2024, 1, 1)  # a Monday: every board's sprints start on Mondays 14 days apart


@dataclass(frozen=True)
class Flow:
    """A project's statuses: the initial one, the working steps in order, the end states."""

    project: JiraProject
    name: str
    id: int
    backlog: Status
    steps: tuple[Status, ...]
    done: Status | None
    cancelled: Status | None

    def first(self, stage: str, *, active: bool | None = None) -> Status | None:
        return next(
            (s for s in self.steps if s.stage == stage and active in (None, s.active)), None
        )


def project_flows(config: OrgConfig) -> dict[str, Flow]:
    """Each project's flow: per stage the first queue status, then the first active one."""
    ids: dict[str, str] = {}
    flows: dict[str, Flow] = {}
    for index, project in enumerate(config.jira_projects):
        statuses: list[Status] = []
        for mapping in project.status_mappings:
            status_id = ids.setdefault(mapping.status.casefold(), str(10000 + len(ids)))
            statuses.append(Status(mapping.status, status_id, mapping.stage, mapping.active))
        steps: list[Status] = []
        for stage in FLOW_STAGES:
            in_stage = [s for s in statuses if s.stage == stage]
            steps += [s for s in in_stage if not s.active][:1] + [s for s in in_stage if s.active][
                :1
            ]
        backlog = next((s for s in statuses if s.stage == "backlog"), None)
        flows[project.key] = Flow(
            project=project,
            name=_project_name(config, project),
            id=10000 + index,
            backlog=backlog or (steps[0] if steps else statuses[0]),
            steps=tuple(steps),
            done=next((s for s in statuses if s.stage == "done"), None),
            cancelled=next((s for s in statuses if s.stage == "cancelled"), None),
        )
    return flows


def _project_name(config: OrgConfig, project: JiraProject) -> str:
    if project.delivery_stream is not None:
        return config.delivery_stream(project.delivery_stream).display_name
    streams = dict.fromkeys(project.components.values())
    names = [config.delivery_stream(s).display_name for s in streams]
    return " & ".join(names) or project.key.title()


def stream_projects(config: OrgConfig, stream: DeliveryStream) -> list[tuple[str, float]]:
    """(project key, share of the stream's tickets). Dedicated projects take most; projects
    shared through a component mapping take the rest; failing both, any shared project."""
    projects = config.jira_projects
    dedicated = [p.key for p in projects if p.delivery_stream == stream.name]
    shared = [
        p.key
        for p in projects
        if p.delivery_stream is None and stream.name in p.components.values()
    ]
    if not dedicated and not shared:
        shared = [p.key for p in projects if p.delivery_stream is None]
    if dedicated and shared:
        return [(k, 0.85 / len(dedicated)) for k in dedicated] + [
            (k, 0.15 / len(shared)) for k in shared
        ]
    keys = dedicated or shared
    return [(k, 1 / len(keys)) for k in keys]


def stage_labels(config: OrgConfig) -> dict[str, list[str]]:
    """Select-option labels per defect stage: the value map's, plus the plain name for QA/UAT."""
    out: dict[str, list[str]] = {s: [] for s in DEFECT_STAGES}
    for label, stage in config.value_map.stages.items():
        if stage in out:
            out[stage].append(label)
    for stage, label in CANONICAL_STAGE_LABELS.items():
        if not out[stage] or stage in ("qa", "uat"):
            out[stage].append(label)
    return out


def sprint_prefix(config: OrgConfig, stream: DeliveryStream) -> str:
    own = [p.key for p in config.jira_projects if p.delivery_stream == stream.name]
    return own[0] if len(own) == 1 else stream.name.replace("-", "").replace("_", "")[:4].upper()


def build_sprints(
    config: OrgConfig, clock: WorkClock, seed: int, first: date, last: date
) -> dict[str, list[Sprint]]:
    """Two-week sprints per delivery stream covering ``[first, last]``; numbers and ids
    depend only on the calendar and the stream, so they agree across runs."""
    out: dict[str, list[Sprint]] = {}
    k0 = (first - SPRINT_EPOCH).days // 14
    k1 = (last - SPRINT_EPOCH).days // 14
    for index, stream in enumerate(config.delivery_streams):
        rng = random.Random(f"dpp-demo:{seed}:sprints:{stream.name}")
        offset = rng.randint(10, 40)
        board = 10 + index
        prefix = sprint_prefix(config, stream)
        sprints = []
        for k in range(k0, k1 + 1):
            monday = SPRINT_EPOCH + timedelta(days=14 * k)
            number = k + offset
            sprints.append(
                Sprint(
                    id=board * 1000 + number,
                    number=number,
                    name=f"{prefix} Sprint {number}",
                    stream=stream.name,
                    board_id=board,
                    start=clock.at_local(monday, 9),
                    end=clock.at_local(monday + timedelta(days=11), 17),
                    goal=rng.choice(text.SPRINT_GOALS),
                )
            )
        out[stream.name] = sprints
    return out


def sprint_index(sprints: list[Sprint], t: datetime) -> int:
    """Index of the sprint running at ``t`` (the last one started by then; 0 if none)."""
    return max(bisect_right([s.start for s in sprints], t) - 1, 0)
