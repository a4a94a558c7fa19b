"""Deployments, incidents and pulse responses.

Deployable repositories ship batches of merged PRs to staging then production at late-
morning and mid-afternoon slots (2–8 a week for busy repositories, fewer for quiet ones);
about half report through GitHub ``deployment_status``, the rest through the deployment
API. Incidents: about one per tech stream every 2–3 weeks, half within an hour after a
production deploy. Pulse: monthly, in the configured window, 50–85 % of each team.
"""

from __future__ import annotations

import random
from collections import defaultdict
from datetime import date, datetime, timedelta

from dpp_lib.jobs.demo import text
from dpp_lib.jobs.demo.dists import lognormal
from dpp_lib.jobs.demo.model import (
    Channel,
    Deploy,
    DeployStatus,
    Incident,
    IncidentKind,
    Person,
    PullRequest,
    PulseResponse,
    Severity,
    Trigger,
)
from dpp_lib.jobs.demo.tickets import World
from dpp_lib.orgconfig import Repository

SLOTS = ((11, 0), (15, 30))  # local deploy windows


class _DeploySim:
    def __init__(self, world: World, prs: list[PullRequest]) -> None:
        self.w = world
        self.merges: dict[str, list[PullRequest]] = defaultdict(list)
        for pr in sorted((p for p in prs if p.merged), key=lambda p: (p.closed, p.uid)):
            self.merges[pr.repo.full_name].append(pr)
        self.deploys: list[Deploy] = []
        self.counter = 0
        prod = world.config.organisation.production_environments
        self.prod, self.alt_prod = prod[0], prod[-1]

    def _add(
        self,
        rng: random.Random,
        repo: Repository,
        channel: Channel,
        env: str,
        status: DeployStatus,
        at: datetime,
        shipped: PullRequest,
        trigger: Trigger,
        pipeline: str | None = None,
        started: datetime | None = None,
    ) -> Deploy:
        self.counter += 1
        n = self.counter
        deploy = Deploy(
            key=f"{repo.full_name}:{n}",
            repo=repo,
            channel=channel,
            environment=env,
            status=status,
            at=at,
            started=started or at - timedelta(minutes=rng.uniform(3, 12)),
            sha=shipped.merge_sha,
            pipeline_id=pipeline or str(7_000_000 + n * 13),
            trigger=trigger,
            pr_number=shipped.number if channel == "api" and rng.random() < 0.5 else None,
            deployment_id=1_200_000_000 + n * 17,
            status_id=3_400_000_000 + n * 19,
            actor=shipped.author if not shipped.author.bot else self._release_person(repo),
        )
        self.deploys.append(deploy)
        return deploy

    def _release_person(self, repo: Repository) -> Person:
        org = repo.full_name.split("/")[0].lower()
        tech = next(t.name for t in self.w.config.tech_streams if t.github_org.lower() == org)
        return self.w.cast.engineers[tech][0]

    def repo(self, repo: Repository, channel: Channel, prod_env: str) -> None:
        w = self.w
        rng = random.Random(f"dpp-demo:{w.seed}:deploys:{repo.full_name}")
        merges = self.merges[repo.full_name]
        weeks = max((w.until - w.start).days / 7, 1)
        in_window = sum(1 for m in merges if w.start <= m.closed <= w.until)
        p = min(max(in_window / weeks * 1.5, 0.6), 8) / 10  # slots: 10 a week
        shipped, last = 0, None
        for day in w.clock.workdays(w.start.date(), w.until.date()):
            for hour, minute in SLOTS:
                t = w.clock.at_local(day, hour, minute) + timedelta(minutes=rng.uniform(-25, 25))
                ready = shipped
                while ready < len(merges) and merges[ready].closed < t - timedelta(minutes=10):
                    ready += 1
                if ready == shipped:
                    if channel == "api" and last is not None and rng.random() < 0.02:
                        self._add(rng, repo, channel, prod_env, "success", t, last, "config")
                    continue
                if rng.random() > p:
                    continue
                head = merges[ready - 1]
                triggers: tuple[Trigger, ...] = ("push", "manual", "schedule")
                trigger = rng.choices(triggers, weights=(78, 17, 5))[0]
                stage_at = t - timedelta(minutes=rng.uniform(20, 60))
                ok = rng.random() > 0.05
                self._add(
                    rng,
                    repo,
                    channel,
                    "staging",
                    "success" if ok else "failed",
                    stage_at,
                    head,
                    trigger,
                )
                if not ok:
                    continue
                if rng.random() < 0.08:
                    self._add(rng, repo, channel, prod_env, "failed", t, head, trigger)
                    t += timedelta(minutes=rng.uniform(20, 60))
                deploy = self._add(rng, repo, channel, prod_env, "success", t, head, trigger)
                shipped, last = ready, head
                if channel == "api" and rng.random() < 0.06:  # only the API can say "rolled back"
                    back = t + timedelta(minutes=rng.uniform(15, 90))
                    self._add(
                        rng,
                        repo,
                        channel,
                        prod_env,
                        "rolled_back",
                        back,
                        head,
                        trigger,
                        pipeline=deploy.pipeline_id,
                        started=deploy.started,
                    )

    def ignored_repo(self, repo: Repository) -> None:
        """A handful of deployments of a non-deployable repository (the platform ignores them)."""
        w = self.w
        rng = random.Random(f"dpp-demo:{w.seed}:deploys:{repo.full_name}")
        merges = [m for m in self.merges[repo.full_name] if m.closed <= w.until]
        days = w.clock.workdays(w.start.date(), w.until.date())
        for _ in range(rng.randint(3, 5) if merges and days else 0):
            t = w.clock.random_time(rng, rng.choice(days))
            before = [m for m in merges if m.closed < t]
            if before:
                self._add(rng, repo, "api", self.prod, "success", t, before[-1], "manual")


def simulate_deploys(world: World, prs: list[PullRequest]) -> list[Deploy]:
    sim = _DeploySim(world, prs)
    deployable = [r for r in world.config.repositories if r.deployable]
    rng = random.Random(f"dpp-demo:{world.seed}:channels")
    via_github = set(rng.sample(range(len(deployable)), len(deployable) // 2))
    alt_used = False
    for i, repo in enumerate(deployable):
        channel: Channel = "github" if i in via_github else "api"
        env = sim.prod
        if channel == "api" and not alt_used:  # one repository uses the other production name
            env, alt_used = sim.alt_prod, True
        sim.repo(repo, channel, env)
    for repo in world.config.repositories:
        if not repo.deployable:
            sim.ignored_repo(repo)
    return sorted(sim.deploys, key=lambda d: (d.at, d.key))


def simulate_incidents(world: World, deploys: list[Deploy]) -> list[Incident]:
    config, w = world.config, world
    prod = set(config.organisation.production_environments)
    window = timedelta(minutes=config.organisation.incident_correlation_window_minutes)
    found: list[tuple[datetime, str, Severity, IncidentKind, datetime, str]] = []
    for tech in config.tech_streams:
        rng = random.Random(f"dpp-demo:{w.seed}:incidents:{tech.name}")
        repos = [
            r
            for r in config.repositories
            if r.deploy_target
            and r.deployable
            and r.full_name.split("/")[0].lower() == tech.github_org.lower()
        ]
        if not repos:
            continue
        names = {r.full_name for r in repos}
        shipped = [
            d
            for d in deploys
            if d.repo.full_name in names
            and d.environment in prod
            and d.status == "success"
            and d.trigger != "config"
            and w.start <= d.at <= w.until
        ]
        span = (w.until - w.start).total_seconds()
        for _ in range(round((w.until - w.start).days / rng.uniform(14, 21))):
            if shipped and rng.random() < 0.5:
                cause = rng.choice(shipped)
                limit = max(window.total_seconds() / 60 - 5, 4)
                opened = cause.at + timedelta(minutes=rng.uniform(3, limit))
                service = cause.repo.deploy_target or ""
            else:
                opened = w.start + timedelta(seconds=rng.uniform(0, span))
                service = rng.choice(repos).deploy_target or ""
            severities: tuple[Severity, ...] = ("P1", "P2", "P3", "P4")
            severity = rng.choices(severities, weights=(5, 20, 45, 30))[0]
            median = 45 if severity == "P1" else 120
            minutes = min(max(lognormal(rng, median, 1.1), 10), 2 * 24 * 60)
            kind: IncidentKind = rng.choice(("alarm", "incident"))
            name = service.split(":")[-1]
            description = rng.choice(text.INCIDENT_DESCRIPTIONS).format(service=name)
            found.append(
                (opened, service, severity, kind, opened + timedelta(minutes=minutes), description)
            )
    found.sort()
    counts: dict[int, int] = defaultdict(int)
    out = []
    for opened, service, severity, kind, resolved, description in found:
        counts[opened.year] += 1
        incident_id = f"INC-{opened.year}-{counts[opened.year]:04d}"
        out.append(Incident(incident_id, service, severity, kind, opened, resolved, description))
    return out


def simulate_pulse(world: World) -> list[PulseResponse]:
    w, cfg = world, world.config.pulse
    out: list[PulseResponse] = []
    months = _months(w.start.date(), w.until.date())
    for stream in w.config.delivery_streams:
        rng = random.Random(f"dpp-demo:{w.seed}:pulse:{stream.name}")
        means = [rng.uniform(2.6, 4.2) for _ in range(3)]
        members = w.cast.teams[stream.name].members
        for year, month in months:
            means = [min(max(m + rng.gauss(0, 0.25), 1.8), 4.6) for m in means]
            first = date(year, month, cfg.window_start_day)
            days = [first + timedelta(days=i) for i in range(cfg.window_days)]
            days = [d for d in days if d.month == month] or [first]
            k = min(round(stream.team_size * rng.uniform(0.5, 0.85)), len(members))
            for person in rng.sample(members, k):
                work = [d for d in days if w.clock.is_workday(d)] or days
                at = w.clock.random_time(rng, rng.choice(work))
                out.append(
                    _response(rng, stream.name, f"{year:04d}-{month:02d}", person, means, at, 1)
                )
                if rng.random() < 0.06:  # changed their mind
                    later = at + timedelta(hours=rng.uniform(1, 48))
                    out.append(
                        _response(
                            rng, stream.name, f"{year:04d}-{month:02d}", person, means, later, 2
                        )
                    )
    return out


def _response(
    rng: random.Random,
    stream: str,
    period: str,
    person: Person,
    means: list[float],
    at: datetime,
    attempt: int,
) -> PulseResponse:
    pace, tooling, clarity = (min(max(round(rng.gauss(m, 0.8)), 1), 5) for m in means)
    note = rng.choice(text.PULSE_COMMENTS) if rng.random() < 0.25 else None
    return PulseResponse(stream, period, person, pace, tooling, clarity, note, at, attempt)


def _months(first: date, last: date) -> list[tuple[int, int]]:
    out, (y, m) = [], (first.year, first.month)
    while (y, m) <= (last.year, last.month):
        out.append((y, m))
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    return out
