"""The GitHub side: pull requests for tickets in code review, reviews, CI runs on merge.

About 90 % of tickets that reach code review get a PR (10 % a second one; 5 % an earlier
attempt closed unmerged). Ticket PRs name the key in the branch (84 %), only in the title
(5.5 %) or nowhere (10.5 %); with key-less chores and dependency bumps on top, about 85 %
of all PRs link with the default pattern (spec §5.3.4, Appendix B).
"""

from __future__ import annotations

import random
from collections import defaultdict
from datetime import datetime, timedelta
from typing import Literal

from dpp_lib.jobs.demo import text
from dpp_lib.jobs.demo.dists import lognormal
from dpp_lib.jobs.demo.model import Person, PullRequest, Review, Ticket, WorkflowRun
from dpp_lib.jobs.demo.people import sha
from dpp_lib.jobs.demo.tickets import World
from dpp_lib.orgconfig import Repository

ReviewState = Literal["approved", "changes_requested", "commented"]
REVIEW_PATTERNS: tuple[tuple[tuple[ReviewState, ...], int], ...] = (
    (("approved",), 52),
    (("commented", "approved"), 20),
    (("changes_requested", "approved"), 15),
    (("approved", "approved"), 9),
    (("commented", "changes_requested", "approved"), 4),
)


class _PullSim:
    def __init__(self, world: World) -> None:
        self.w = world
        self.rng = random.Random(f"dpp-demo:{world.seed}:pulls")
        org_of = {t.github_org.lower(): t.name for t in world.config.tech_streams}
        self.tech_of = {
            r.full_name: org_of[r.full_name.split("/")[0].lower()]
            for r in world.config.repositories
        }
        self.prs: list[PullRequest] = []

    def tech(self, repo: Repository) -> str:
        return self.tech_of[repo.full_name]

    def for_ticket(self, t: Ticket) -> None:
        rng, clock = self.rng, self.w.clock
        if not t.review_windows or t.repo is None or t.engineer is None or rng.random() > 0.9:
            return
        begin, end = t.review_windows[0]
        style = rng.choices(("branch", "title", "none"), weights=(84, 5.5, 10.5))[0]
        opened = begin - timedelta(minutes=rng.randint(0, 90))
        if t.dev_start is not None:
            opened = max(opened, t.dev_start + timedelta(minutes=10))
        closed = max(end - timedelta(minutes=rng.randint(2, 30)), opened + timedelta(minutes=20))
        if rng.random() < 0.05 and t.dev_start is not None and t.dev_start < opened:
            first = clock.between(t.dev_start, opened, rng.uniform(0.1, 0.5))
            gone = clock.between(first, opened, rng.uniform(0.3, 0.9))
            self._pr(t, t.repo, t.engineer, style, first, gone, merged=False, suffix="-first-try")
        self._pr(t, t.repo, t.engineer, style, opened, closed, merged=True)
        if rng.random() < 0.10:
            others = [
                r
                for r in self.w.config.repositories
                if self.tech(r) in t.tech_streams and r != t.repo
            ] or [t.repo]
            repo = rng.choice(others)
            author = rng.choice(self.w.cast.engineers[self.tech(repo)])
            second = clock.between(opened, closed, rng.uniform(0.05, 0.5))
            done = clock.between(second, closed, rng.uniform(0.5, 0.95))
            self._pr(t, repo, author, style, second, done, merged=True, suffix="-part-2")

    def _pr(
        self,
        t: Ticket,
        repo: Repository,
        author: Person,
        style: str,
        opened: datetime,
        closed: datetime,
        *,
        merged: bool,
        suffix: str = "",
    ) -> None:
        rng = self.rng
        words = text.slug(t.summary) + suffix
        key = t.key
        body: str | None = rng.choice((None, "Implements the change described in the ticket."))
        if style == "branch":
            if t.issue_type == "Bug":
                prefix = "hotfix/" if t.priority == "Highest" and rng.random() < 0.5 else "bugfix/"
            elif t.issue_type == "Spike":
                prefix = "spike/"
            else:
                prefix = "chore/" if t.issue_type == "Task" and rng.random() < 0.15 else "feature/"
            branch = ("" if rng.random() < 0.15 else prefix) + f"{key}-{words}"
            title = f"{key}: {t.summary}" if rng.random() < 0.6 else t.summary
            if rng.random() < 0.4:
                body = f"Jira ticket: {key}\n\n{body or ''}".strip()
        elif style == "title":
            branch = rng.choice(("", "feature/")) + words
            title = f"{key}: {t.summary}"
        else:
            branch = rng.choice(("", "fix-", "wip-")) + words
            title = t.summary
        self._add(repo, author, branch, title, body, opened, closed, merged, t)

    def _add(
        self,
        repo: Repository,
        author: Person,
        branch: str,
        title: str,
        body: str | None,
        opened: datetime,
        closed: datetime,
        merged: bool,
        t: Ticket | None,
    ) -> None:
        rng = self.rng
        uid = f"pr:{len(self.prs)}"
        additions = max(1, int(lognormal(rng, 80, 1.0)))
        pr = PullRequest(
            uid=uid,
            repo=repo,
            author=author,
            branch=branch,
            title=title,
            body=body,
            opened=opened,
            closed=closed,
            merged=merged,
            head_sha=sha(f"{self.w.seed}:{uid}:head"),
            merge_sha=sha(f"{self.w.seed}:{uid}:merge"),
            additions=additions,
            deletions=int(additions * rng.uniform(0.05, 0.6)),
            changed_files=min(1 + additions // 40, 60),
            commits=rng.randint(1, 8),
            ticket=t,
        )
        self._reviews(pr)
        self.prs.append(pr)

    def _reviews(self, pr: PullRequest) -> None:
        rng, clock = self.rng, self.w.clock
        tech = self.tech(pr.repo)
        pool = [p for p in self.w.cast.engineers[tech] if p != pr.author]
        if not pool:
            return
        states: tuple[ReviewState, ...]
        if pr.merged:
            patterns, weights = zip(*REVIEW_PATTERNS, strict=True)
            states = rng.choices(patterns, weights)[0]
        else:
            states = rng.choice((("commented",), ("changes_requested",), ()))
        dominant = self.w.cast.dominant.get(tech)
        first = dominant if dominant in pool and rng.random() < 0.65 else rng.choice(pool)
        cuts = sorted(rng.uniform(0.05, 0.95) for _ in states)
        for i, (state, cut) in enumerate(zip(states, cuts, strict=True)):
            reviewer = first
            if i > 0 and (states[0] == "approved" or rng.random() < 0.3):
                reviewer = rng.choice([p for p in pool if p != first] or pool)
            body = rng.choice(text.REVIEW_BODIES[state])
            pr.reviews.append(
                Review(0, reviewer, state, clock.between(pr.opened, pr.closed, cut), body)
            )

    def chores(self) -> None:
        """Key-less PRs outside tickets: dependency bumps and small chores."""
        rng, clock = self.rng, self.w.clock
        busy: dict[str, int] = defaultdict(int)
        for pr in self.prs:
            busy[pr.repo.full_name] += 1
        repos = self.w.config.repositories
        if not repos:
            return
        days = clock.workdays(self.w.start.date(), self.w.sim_end.date())
        weights = [busy[r.full_name] + 3 for r in repos]
        for _ in range(round(len(self.prs) * 0.058)):
            repo = rng.choices(repos, weights=weights)[0]
            opened = max(clock.random_time(rng, rng.choice(days)), self.w.start)
            opened = clock.add(opened, 0.01)  # in working hours, inside the window
            merged = rng.random() > 0.05
            closed = clock.add(opened, lognormal(rng, 0.3, 0.9))
            if rng.random() < 0.5:
                eco, package, version = rng.choice(text.DEPENDENCIES)
                branch = f"dependabot/{eco}/{package}-{version}"
                title = f"Bump {package} to {version}"
                self._add(
                    repo,
                    self.w.cast.bot,
                    branch,
                    title,
                    "Bumps the dependency.",
                    opened,
                    closed,
                    merged,
                    None,
                )
            else:
                branch, title = rng.choice(text.CHORE_PRS)
                author = rng.choice(self.w.cast.engineers[self.tech(repo)])
                self._add(repo, author, branch, title, None, opened, closed, merged, None)


def simulate_pulls(
    world: World, tickets: list[Ticket]
) -> tuple[list[PullRequest], list[WorkflowRun]]:
    """Pull requests (numbered per repository in order of opening) and CI runs on merge."""
    sim = _PullSim(world)
    for ticket in tickets:
        sim.for_ticket(ticket)
    sim.chores()
    rng = random.Random(f"dpp-demo:{world.seed}:numbers")
    prs = sorted(sim.prs, key=lambda p: (p.opened, p.uid))
    numbers = {r.full_name: rng.randint(100, 2500) for r in world.config.repositories}
    pr_base, review_id = (
        rng.randint(1_800_000_000, 1_900_000_000),
        rng.randint(2_100_000_000, 2_200_000_000),
    )
    for n, pr in enumerate(prs):
        numbers[pr.repo.full_name] += 1
        pr.number, pr.id = numbers[pr.repo.full_name], pr_base + n * 3
        pr.reviews = [
            Review(review_id + n * 7 + i, r.reviewer, r.state, r.at, r.body)
            for i, r in enumerate(pr.reviews)
        ]
    runs: list[WorkflowRun] = []
    run_base = rng.randint(9_000_000_000, 9_500_000_000)
    run_numbers = {r.full_name: rng.randint(300, 4000) for r in world.config.repositories}
    for pr in sorted((p for p in prs if p.merged), key=lambda p: (p.closed, p.uid)):
        run_numbers[pr.repo.full_name] += 1
        created = pr.closed + timedelta(seconds=rng.randint(3, 40))
        runs.append(
            WorkflowRun(
                id=run_base + len(runs) * 11,
                run_number=run_numbers[pr.repo.full_name],
                repo=pr.repo,
                pr=pr,
                created=created,
                completed=created + timedelta(minutes=rng.uniform(4, 15)),
                conclusion="success" if rng.random() < 0.9 else "failure",
            )
        )
    return prs, runs
