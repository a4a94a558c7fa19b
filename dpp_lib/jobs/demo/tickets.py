"""The Jira side of the simulation: tickets flowing through each project's statuses.

Per delivery stream, items start (leave the backlog) at ``~0.26 × team_size`` a working
day, then spend lognormal working-day durations in each status, queues usually longer than
active work. About 10 % are flagged for 0.5–4 days, 5 % re-open from done, 3 % are
cancelled; bugs (~15 %) are found while a linked story is in a stage (or after it went live).
Simulation runs past ``until`` so that open work and a backlog exist there; the caller drops
every event after it.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from dpp_lib.jobs.demo import defects, text
from dpp_lib.jobs.demo.clock import WorkClock
from dpp_lib.jobs.demo.dists import lognormal, poisson
from dpp_lib.jobs.demo.flows import (
    Flow,
    sprint_index,
    stage_labels,
    stream_projects,
)
from dpp_lib.jobs.demo.model import Change, IssueType, Person, Sprint, Status, Ticket
from dpp_lib.jobs.demo.people import Cast, Team
from dpp_lib.orgconfig import DeliveryStream, OrgConfig, Repository

# (stage, active) → (median working days, sigma of the log)
DURATIONS = {
    ("ba", True): (0.7, 0.7),
    ("ba", False): (1.0, 0.8),
    ("dev", False): (2.2, 0.9),
    ("dev", True): (1.8, 0.7),
    ("code_review", True): (0.6, 0.8),
    ("code_review", False): (0.5, 0.8),
    ("qa", False): (1.5, 0.9),
    ("qa", True): (0.8, 0.7),
    ("uat", False): (1.9, 0.9),
    ("uat", True): (0.5, 0.7),
}
POINTS = ((1.0, 2.0, 3.0, 5.0, 8.0, 13.0), (8, 18, 30, 26, 14, 4))
PRIORITIES = ("Highest", "High", "Medium", "Low", "Lowest")


@dataclass
class World:
    """Everything the stream simulations share."""

    config: OrgConfig
    clock: WorkClock
    cast: Cast
    flows: dict[str, Flow]
    sprints: dict[str, list[Sprint]]
    start: datetime  # until − days
    until: datetime
    sim_end: datetime  # simulation continues to here; events after ``until`` are dropped
    seed: int


def simulate_tickets(world: World) -> list[Ticket]:
    """All tickets of all delivery streams, with keys and issue ids assigned."""
    tickets: list[Ticket] = []
    for stream in world.config.delivery_streams:
        if stream_projects(world.config, stream):
            tickets += _StreamSim(world, stream).run()
    rng = random.Random(f"dpp-demo:{world.seed}:keys")
    order = sorted(tickets, key=lambda t: (t.created, t.uid))
    id_base = rng.randint(10_100, 19_000)
    counters = {p.key: rng.randint(40, 900) for p in world.config.jira_projects}
    for n, ticket in enumerate(order):
        counters[ticket.project] += 1
        ticket.key = f"{ticket.project}-{counters[ticket.project]}"
        ticket.issue_id = id_base + n
        ticket.changes.sort(key=lambda c: c.at)
    return order


class _StreamSim:
    def __init__(self, world: World, stream: DeliveryStream) -> None:
        self.w = world
        self.stream = stream
        self.rng = random.Random(f"dpp-demo:{world.seed}:tickets:{stream.name}")
        self.team: Team = world.cast.teams[stream.name]
        self.projects = stream_projects(world.config, stream)
        self.themes = text.theme(stream.name, stream.display_name)
        self.rate = min(max(stream.team_size * 0.26, 1.2), 3.2)
        self.speed = self.rng.uniform(0.85, 1.2)
        self.bottleneck = self.rng.choice(("dev", "qa", "uat"))
        self.labels = stage_labels(world.config)
        self.sprints = world.sprints[stream.name]
        self.fields = world.config.jira_fields
        self.n = 0
        tech = world.config.tech_streams
        self.tech_names = [t.name for t in tech]
        self.tech_display = {t.name: t.display_name for t in tech}
        self.repos: dict[str, list[Repository]] = {t.name: [] for t in tech}
        org_of = {t.github_org.lower(): t.name for t in tech}
        for repo in world.config.repositories:
            self.repos[org_of[repo.full_name.split("/")[0].lower()]].append(repo)

    # -- the stream's items ---------------------------------------------------------------

    def run(self) -> list[Ticket]:
        rng, clock = self.rng, self.w.clock
        days = clock.workdays(self.w.start.date(), self.w.sim_end.date())
        items: list[Ticket] = []
        kinds: tuple[IssueType, ...] = ("Story", "Task", "Spike")
        for i, day in enumerate(days):
            for _ in range(poisson(rng, self.rate * 0.85)):
                kind = rng.choices(kinds, weights=(62, 30, 8))[0]
                start = clock.random_time(rng, day)
                back = int(lognormal(rng, 7, 0.9))
                created = clock.random_time(rng, days[max(i - back, 0)])
                items.append(self._item(kind, created, start))
        open_days = [d for d in days if clock.at(d, 0) < self.w.until]
        for _ in range(round(self.rate * 8) if open_days else 0):  # ideas waiting in the backlog
            kind = rng.choices(kinds[:2], weights=(70, 30))[0]
            items.append(self._item(kind, clock.random_time(rng, rng.choice(open_days)), None))
        stories = [t for t in items if t.issue_type != "Spike" and len(t.changes) > 2]
        n_bugs = round(len(items) * 0.17 / 0.83 * rng.uniform(0.9, 1.1))
        return items + [self._bug(stories) for _ in range(n_bugs)]

    def _item(self, kind: IssueType, created: datetime, start: datetime | None) -> Ticket:
        created = self._clip(created)
        ticket = self._ticket(kind, created)
        if start is None or self.rng.random() < 0.02:  # never started (or cancelled early)
            if self.rng.random() < 0.3 or start is not None:
                self._cancel(ticket, self.w.clock.add(created, self.rng.uniform(2, 40)))
            return ticket
        start = max(start, created + timedelta(minutes=self.rng.randint(20, 240)))
        self._flow(ticket, start, skip_ba=False, skip_uat=self.rng.random() < 0.05)
        return ticket

    def _clip(self, t: datetime) -> datetime:
        """Items older than the window were entered in its first working day ("imported")."""
        if t > self.w.start:
            return t
        return self.w.clock.add(self.w.start, self.rng.uniform(0.01, 1.0))

    def _ticket(self, kind: IssueType, created: datetime, creator: Person | None = None) -> Ticket:
        rng, flds = self.rng, self.fields
        self.n += 1
        keys, shares = zip(*self.projects, strict=True)
        project = rng.choices(keys, weights=shares)[0]
        flow = self.w.flows[project]
        weights = self.w.cast.affinity[self.stream.name]
        tech = rng.choices(self.tech_names, weights=[weights[t] for t in self.tech_names])
        if rng.random() < 0.35 and len(self.tech_names) > 1:
            second = rng.choices(self.tech_names, weights=[weights[t] for t in self.tech_names])
            tech += [t for t in second if t not in tech]
        prio = rng.choices(PRIORITIES, weights=(3, 15, 60, 18, 4))[0]
        points = rng.choices(*POINTS)[0] if kind in ("Story", "Task") else None
        ticket = Ticket(
            uid=f"{self.stream.name}:{self.n}",
            project=project,
            stream=self.stream.name,
            issue_type=kind,
            summary=text.summary(rng, self.themes, kind),
            priority=prio,
            created=created,
            creator=creator or rng.choice((self.team.po, self.team.ba)),
            initial_status=flow.backlog,
            story_points=points if flds.story_points else None,
            tech_streams=tech,
        )
        if flds.tech_streams and rng.random() < 0.94:
            ticket.tech_options = [self.tech_display[t] for t in tech]
        if rng.random() < 0.2:
            ticket.labels.append(rng.choice(text.FLAVOUR_LABELS))
        self._stream_fields(ticket, flow)
        ticket.changes.append(Change(created, "created", ticket.creator, {}))
        self._code_owner(ticket)
        return ticket

    def _stream_fields(self, ticket: Ticket, flow: Flow) -> None:
        """Delivery stream custom field on ~92 %; else a label or component where the
        project cannot stand in for the stream (spec §5.2.4), and sometimes nothing."""
        rng, project = self.rng, flow.project
        label = (
            self.stream.labels[0] if self.stream.labels and "label" in project.derivation else None
        )
        components = [c for c, s in project.components.items() if s == self.stream.name]
        component = components[0] if components and "component" in project.derivation else None
        by_project = "project" in project.derivation and project.delivery_stream == self.stream.name
        if self.fields.delivery_stream and rng.random() < 0.92:
            ticket.stream_option = self.stream.display_name
        elif not by_project and rng.random() < 0.7:
            if label and (component is None or rng.random() < 0.5):
                ticket.labels.append(label)
            elif component:
                ticket.components.append(component)
            return
        else:
            return
        if label and rng.random() < 0.25:
            ticket.labels.append(label)
        if component and rng.random() < 0.5:
            ticket.components.append(component)

    def _code_owner(self, ticket: Ticket) -> None:
        """The repository a change would land in and the engineer who makes it."""
        rng = self.rng
        tech = next((t for t in ticket.tech_streams if self.repos[t]), None)
        if tech is None:
            tech = next((t for t in self.tech_names if self.repos[t]), ticket.tech_streams[0])
        repos = self.repos[tech]
        if repos:
            deployable = [r for r in repos if r.deployable]
            libraries = [r for r in repos if not r.deployable]
            pool = (
                libraries if libraries and (not deployable or rng.random() < 0.15) else deployable
            )
            ticket.repo = rng.choice(pool)
        engineers = self.w.cast.engineers[tech]
        mine = [p for p in self.team.engineers if p in engineers]
        ticket.engineer = rng.choice(mine if mine and rng.random() < 0.8 else engineers)

    # -- a ticket's path ------------------------------------------------------------------

    def _flow(self, t: Ticket, start: datetime, *, skip_ba: bool, skip_uat: bool) -> None:
        rng, clock, flow = self.rng, self.w.clock, self.w.flows[t.project]
        dropped = {"ba"} if skip_ba else set()
        if skip_uat:
            dropped.add("uat")
        if t.issue_type == "Spike":
            dropped |= {"code_review", "qa", "uat"}
        steps = [s for s in flow.steps if s.stage not in dropped]
        cancel_after = rng.randrange(len(steps)) if steps and rng.random() < 0.012 else None
        flaggable = [i for i, s in enumerate(steps) if s.stage in ("dev", "code_review", "qa")]
        flag_at_step = (
            rng.choice(flaggable)
            if flaggable and self.fields.flagged and rng.random() < 0.12
            else None
        )
        at, assignee = start, None
        for i, step in enumerate(steps):
            updates: dict[str, object] = {"status": step}
            who = self._assignee(step, t)
            if who is not None and who != assignee:
                updates["assignee"] = assignee = who
            t.changes.append(Change(at, "transition", assignee or self.team.po, updates))
            duration = self._duration(step, t)
            if step.stage == "dev" and step.active and t.dev_start is None:
                t.dev_start = at
            if i == flag_at_step:
                duration += self._flag(t, at, duration, assignee or self.team.po)
            end = clock.add(at, duration)
            if step.stage == "code_review":
                t.review_windows.append((at, end))
            at = end
            if i == cancel_after:
                self._cancel(t, at)
                self._plan(t, start, at)
                return
        if flow.done is None:
            self._plan(t, start, None)
            return
        actor = assignee or self.team.po
        t.changes.append(
            Change(at, "transition", actor, {"status": flow.done, "resolution": "Done"})
        )
        if rng.random() < 0.05:  # re-opened: back to QA, then done again
            back = flow.first("qa", active=True) or (steps[-1] if steps else flow.backlog)
            at = clock.add(at, lognormal(rng, 0.8, 0.7))
            who = self.team.qa
            t.changes.append(
                Change(at, "transition", who, {"status": back, "resolution": None, "assignee": who})
            )
            at = clock.add(at, lognormal(rng, 0.6, 0.6))
            t.changes.append(
                Change(at, "transition", who, {"status": flow.done, "resolution": "Done"})
            )
        self._plan(t, start, at)

    def _assignee(self, step: Status, t: Ticket) -> Person | None:
        if not step.active:
            return None
        return {
            "ba": self.team.ba,
            "dev": t.engineer,
            "code_review": t.engineer,
            "qa": self.team.qa,
            "uat": self.team.po,
        }.get(step.stage)

    def _duration(self, step: Status, t: Ticket) -> float:
        median, sigma = DURATIONS.get((step.stage, step.active), (1.0, 0.8))
        if step.stage == "dev" and step.active:
            median *= ((t.story_points or 3.0) / 3.0) ** 0.5
        if t.issue_type == "Bug":
            median *= 0.6
        if step.stage == self.bottleneck and not step.active:
            median *= 1.7
        return lognormal(self.rng, median * self.speed, sigma)

    def _flag(self, t: Ticket, at: datetime, duration: float, actor: Person) -> float:
        """Flag part-way through a status; returns the working days spent blocked."""
        rng, clock = self.rng, self.w.clock
        flagged = clock.add(at, duration * rng.uniform(0.1, 0.8))
        blocked = min(max(lognormal(rng, 1.3, 0.6), 0.5), 4.0)
        updates: dict[str, object] = {"flagged": True}
        if self.fields.blocking_tech_stream:
            names = self.tech_names
            weight = [3.0 if any(k in n for k in ("core", "infra")) else 1.0 for n in names]
            updates["blocking"] = self.tech_display[rng.choices(names, weights=weight)[0]]
        t.changes.append(Change(flagged, "field", actor, updates))
        t.changes.append(Change(clock.add(flagged, blocked), "field", actor, {"flagged": False}))
        return blocked

    def _cancel(self, t: Ticket, at: datetime) -> None:
        cancelled = self.w.flows[t.project].cancelled
        if cancelled is not None:
            updates = {"status": cancelled, "resolution": "Won't Do"}
            t.changes.append(Change(at, "transition", self.team.po, updates))

    def _plan(self, t: Ticket, start: datetime, finish: datetime | None) -> None:
        """Sprint field history: planned into the sprint it starts in (at refinement, at
        planning, or added mid-sprint), then carried over while unfinished."""
        if not self.fields.sprint or not self.sprints:
            return
        rng = self.rng
        first = sprint_index(self.sprints, start)
        sprint = self.sprints[first]
        clock = self.w.clock
        planning = clock.add(sprint.start, rng.uniform(0.07, 0.2))  # next working morning
        at = planning
        if t.created < sprint.start and rng.random() < 0.6:  # at a refinement before the sprint
            since = max(t.created, sprint.start - timedelta(days=21))
            at = clock.between(since, sprint.start, rng.uniform(0.2, 0.95))
        if at <= t.created or at >= start:
            at = max(
                t.created + timedelta(minutes=2), start - timedelta(minutes=rng.randint(3, 50))
            )
        chosen = [sprint]
        t.changes.append(Change(at, "field", self.team.po, {"sprints": tuple(chosen)}))
        for nxt in self.sprints[first + 1 :]:
            if (finish is not None and nxt.start >= finish) or nxt.start > self.w.sim_end:
                break
            chosen.append(nxt)
            moved = clock.add(nxt.start, rng.uniform(0.05, 0.17))
            t.changes.append(Change(moved, "field", self.team.po, {"sprints": tuple(chosen)}))

    # -- bugs -----------------------------------------------------------------------------

    def _bug(self, stories: list[Ticket]) -> Ticket:
        rng, clock = self.rng, self.w.clock
        found = defects.found_stage(rng)
        window = (self.w.start.date(), self.w.until.date(), self.w.sim_end.date())
        days = clock.workdays(window[0], window[1]) or clock.workdays(window[0], window[2])
        anchor, created = defects.anchor(rng, clock, stories, found, days)
        creator = self.team.qa if found in ("qa", "uat") else self.team.po
        if found in ("dev", "code_review") and anchor is not None and anchor.engineer:
            creator = anchor.engineer
        bug = self._ticket("Bug", self._clip(created), creator)
        bug.priority = rng.choices(PRIORITIES, weights=(8, 30, 45, 15, 2))[0]
        bug.story_points = (
            rng.choice((1.0, 2.0, 3.0)) if self.fields.story_points and rng.random() < 0.6 else None
        )
        bug.linked = anchor
        if self.fields.found_in_stage:
            bug.found_label = rng.choice(self.labels[found])
        if self.fields.introduced_in_stage and rng.random() < 0.7:
            defects.attribute(rng, clock, bug, found, self.labels, bug.engineer or self.team.qa)
        urgent = bug.priority in ("Highest", "High")
        start = clock.add(bug.created, lognormal(rng, 0.4 if urgent else 1.5, 0.8))
        if start > self.w.sim_end:
            return bug
        if rng.random() < 0.03:
            self._cancel(bug, start)
            return bug
        self._flow(bug, start, skip_ba=rng.random() < 0.7, skip_uat=rng.random() < 0.3)
        return bug
