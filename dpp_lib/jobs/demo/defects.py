"""Where simulated bugs come from: the stage they are found in (anchored to a story that
was in that stage then, or live) and the stage they are attributed to (spec §5.2.7, §6.3.2).

About 20 % are found in UAT or live (escaped); 70 % get an introduced-in stage, at creation
or a few days later, and 10 % of those are reclassified after root-cause analysis.
"""

from __future__ import annotations

import random
from datetime import date, datetime

from dpp_lib.jobs.demo.clock import WorkClock
from dpp_lib.jobs.demo.dists import lognormal
from dpp_lib.jobs.demo.flows import DEFECT_STAGES
from dpp_lib.jobs.demo.model import Change, Person, Ticket

FOUND_WEIGHTS = {"dev": 0.18, "code_review": 0.05, "qa": 0.55, "uat": 0.13, "production": 0.09}
INTRODUCED_WEIGHTS = {"ba": 0.2, "dev": 0.65, "code_review": 0.05, "qa": 0.05, "uat": 0.05}


def found_stage(rng: random.Random) -> str:
    return rng.choices(list(FOUND_WEIGHTS), weights=list(FOUND_WEIGHTS.values()))[0]


def anchor(
    rng: random.Random, clock: WorkClock, stories: list[Ticket], found: str, days: list[date]
) -> tuple[Ticket | None, datetime]:
    """The story the bug was found on and when: while it was in ``found``, or after it
    went live; failing that, no story and a random working time on one of ``days``."""
    for _ in range(8 if stories else 0):
        story = rng.choice(stories)
        spans = story.stage_intervals()
        if found == "production":
            done = [s for s in spans if s[0] == "done"]
            if done:
                return story, clock.add(done[0][1], lognormal(rng, 4, 0.9))
            continue
        matching = [s for s in spans if s[0] == found]
        if matching:
            _, enter, leave = rng.choice(matching)
            leave = leave or clock.add(enter, 1.0)
            return story, clock.between(enter, leave, rng.uniform(0.1, 0.9))
    return None, clock.random_time(rng, rng.choice(days))


def attribute(
    rng: random.Random,
    clock: WorkClock,
    bug: Ticket,
    found: str,
    labels: dict[str, list[str]],
    actor: Person,
) -> None:
    """Set the introduced-in stage (at creation or later) and sometimes reclassify it."""
    limit = DEFECT_STAGES.index(found)
    options = [s for s in INTRODUCED_WEIGHTS if DEFECT_STAGES.index(s) <= limit]
    weights = [INTRODUCED_WEIGHTS[s] for s in options]
    stage = rng.choices(options, weights=weights)[0]
    label = rng.choice(labels[stage])
    if rng.random() < 0.6:
        bug.introduced_at_creation = label
        at = bug.created
    else:
        at = clock.add(bug.created, rng.uniform(0.5, 5))
        bug.changes.append(Change(at, "field", actor, {"introduced": label}))
    others = [s for s in options if s != stage]
    if others and rng.random() < 0.10:  # reclassified after root-cause analysis
        other = rng.choice(labels[rng.choice(others)])
        bug.changes.append(
            Change(clock.add(at, rng.uniform(2, 10)), "field", actor, {"introduced": other})
        )
