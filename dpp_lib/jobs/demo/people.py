"""The invented people of the demo organisation and who works with whom.

Each tech stream has 5–9 engineers (a few belong to two); each delivery stream's team of
``team_size`` is a BA, a QA and engineers drawn from the tech streams it leans on. One tech
stream has a dominant reviewer, so reviewer concentration has something to flag.
"""

from __future__ import annotations

import hashlib
import random
import re
from dataclasses import dataclass, field

from dpp_lib.jobs.demo import text
from dpp_lib.jobs.demo.model import Person, Role
from dpp_lib.orgconfig import OrgConfig


def stable_int(key: str, lo: int, hi: int) -> int:
    """A deterministic integer in ``[lo, hi)`` from a string (not Python's salted hash)."""
    digest = hashlib.sha256(key.encode()).digest()
    return lo + int.from_bytes(digest[:8], "big") % (hi - lo)


def sha(key: str) -> str:
    """A deterministic 40-hex git-like SHA."""
    return hashlib.sha1(key.encode()).hexdigest()


def org_slug(config: OrgConfig) -> str:
    return re.sub(r"[^a-z0-9]+", "-", config.organisation.name.lower()).strip("-") or "org"


@dataclass
class Team:
    """A delivery stream's people. ``members`` are the ``team_size`` pulse respondents."""

    ba: Person
    qa: Person
    po: Person
    engineers: list[Person]
    members: list[Person]


@dataclass
class Cast:
    engineers: dict[str, list[Person]]  # tech stream name → engineers
    teams: dict[str, Team]  # delivery stream name → team
    affinity: dict[str, dict[str, float]]  # delivery stream → tech stream → weight
    dominant: dict[str, Person]  # tech stream → its dominant reviewer (one stream has one)
    bot: Person  # dependabot
    everyone: list[Person] = field(default_factory=list)


class _Names:
    def __init__(self, rng: random.Random, domain: str) -> None:
        self.rng = rng
        self.domain = domain
        self.used: set[str] = set()

    def person(self, role: Role) -> Person:
        for attempt in range(10_000):
            first, last = self.rng.choice(text.FIRST_NAMES), self.rng.choice(text.LAST_NAMES)
            name = f"{first} {last}" if attempt < 1000 else f"{first} {last} {attempt}"
            if name not in self.used:
                break
        self.used.add(name)
        key = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
        return Person(
            key=key,
            name=name,
            email=f"{key.replace('-', '.')}@{self.domain}",
            account_id=hashlib.sha1(f"jira:{key}".encode()).hexdigest()[:24],
            login=f"{key.replace('-', '')[:14]}-{self.domain.split('.')[0][:6]}",
            github_id=stable_int(f"gh:{key}", 1_000_000, 99_000_000),
            role=role,
        )


def build_cast(config: OrgConfig, seed: int) -> Cast:
    rng = random.Random(f"dpp-demo:{seed}:people")
    names = _Names(rng, f"{org_slug(config).replace('-', '')}.example")
    engineers: dict[str, list[Person]] = {
        t.name: [names.person("engineer") for _ in range(rng.randint(5, 9))]
        for t in config.tech_streams
    }
    tech_names = [t.name for t in config.tech_streams]
    if len(tech_names) > 1:  # a few engineers work in two tech streams
        for name in tech_names:
            if rng.random() < 0.6:
                other = rng.choice([t for t in tech_names if t != name])
                engineers[other].append(rng.choice(engineers[name]))

    affinity: dict[str, dict[str, float]] = {}
    for stream in config.delivery_streams:
        srng = random.Random(f"dpp-demo:{seed}:affinity:{stream.name}")
        # work follows headcount, with one tech stream the delivery stream leans on most
        weights = {t: len(engineers[t]) * srng.uniform(0.4, 1.0) for t in tech_names}
        weights[srng.choice(tech_names)] *= 1.8
        affinity[stream.name] = weights

    teams: dict[str, Team] = {}
    for stream in config.delivery_streams:
        ba, qa, po = names.person("ba"), names.person("qa"), names.person("po")
        wanted = max(stream.team_size - 2, 1) if stream.team_size >= 4 else stream.team_size
        chosen: list[Person] = []
        weights = affinity[stream.name]
        for _ in range(wanted * 20):
            if len(chosen) >= wanted:
                break
            tech = rng.choices(tech_names, weights=[weights[t] for t in tech_names])[0]
            person = rng.choice(engineers[tech])
            if person not in chosen:
                chosen.append(person)
        members = ([ba, qa] if stream.team_size >= 4 else []) + chosen
        teams[stream.name] = Team(ba=ba, qa=qa, po=po, engineers=chosen, members=members)

    dominant: dict[str, Person] = {}
    busiest = max(tech_names, key=lambda t: (len(engineers[t]), t))
    dominant[busiest] = rng.choice(engineers[busiest])
    bot = Person(
        key="dependabot",
        name="dependabot[bot]",
        email="dependabot@users.noreply.github.com",
        account_id="",
        login="dependabot[bot]",
        github_id=49699333,
        role="engineer",
        bot=True,
    )
    everyone = {p.key: p for group in engineers.values() for p in group}
    for team in teams.values():
        everyone.update({p.key: p for p in (team.ba, team.qa, team.po, *team.members)})
    return Cast(engineers, teams, affinity, dominant, bot, list(everyone.values()))
