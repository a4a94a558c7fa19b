"""``generate_demo``: simulate the organisation, then render every event as a delivery."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from dpp_lib.jobs.demo.clock import WorkClock
from dpp_lib.jobs.demo.delivery import Collector, Delivery
from dpp_lib.jobs.demo.flows import build_sprints, project_flows
from dpp_lib.jobs.demo.github_payloads import GitHubRenderer
from dpp_lib.jobs.demo.jira_payloads import JiraRenderer
from dpp_lib.jobs.demo.ops import simulate_deploys, simulate_incidents, simulate_pulse
from dpp_lib.jobs.demo.people import build_cast, org_slug
from dpp_lib.jobs.demo.pulls import simulate_pulls
from dpp_lib.jobs.demo.push_payloads import deployment_body, incident_bodies, pulse_body
from dpp_lib.jobs.demo.tickets import World, simulate_tickets
from dpp_lib.orgconfig import OrgConfig

RUN_ON = timedelta(days=35)  # simulate past ``until`` so open work and a backlog exist there


def _ms(t: datetime) -> datetime:
    return t.replace(microsecond=t.microsecond // 1000 * 1000)


def _s(t: datetime) -> datetime:
    return t.replace(microsecond=0)


def generate_demo(
    config: OrgConfig, *, days: int = 180, seed: int = 7, until: datetime
) -> list[Delivery]:
    """Every delivery of ``days`` of simulated activity ending at ``until``.

    Deterministic: the same (config, days, seed, until) gives an identical list, byte for
    byte. ``until`` must be timezone-aware; no event is after it or before ``until − days``.
    Sorted by ``occurred_at``, ties broken by ``delivery_id``.
    """
    if until.tzinfo is None:
        raise ValueError(f"until={until.isoformat()} has no time zone; pass an aware datetime")
    if days < 1:
        raise ValueError(f"days must be at least 1, not {days}")
    until = until.astimezone(UTC)
    start = until - timedelta(days=days)
    org = config.organisation
    clock = WorkClock(org.time_zone, org.holidays)
    sim_end = until + RUN_ON
    flows = project_flows(config)
    world = World(
        config=config,
        clock=clock,
        cast=build_cast(config, seed),
        flows=flows,
        sprints=build_sprints(config, clock, seed, start.date(), sim_end.date()),
        start=start,
        until=until,
        sim_end=sim_end,
        seed=seed,
    )
    tickets = simulate_tickets(world)
    prs, runs = simulate_pulls(world, tickets)
    deploys = simulate_deploys(world, prs)
    out = Collector(seed, start, until)

    site = f"https://{org_slug(config)}.atlassian.net"
    jira = JiraRenderer(config, flows, until, site, org.time_zone)
    for ticket in tickets:
        for index, change, body in jira.render(ticket):
            out.add("jira", f"jira:{ticket.uid}:{index}", _ms(change.at), body)

    gh = GitHubRenderer(config)
    for pr in prs:
        if out.wants(_s(pr.opened)):
            out.add(
                "github",
                f"gh:{pr.uid}:opened",
                _s(pr.opened),
                gh.pr_event(pr, "opened"),
                "pull_request",
            )
        for review in pr.reviews:
            if out.wants(_s(review.at)):
                body = gh.review_event(pr, review)
                out.add(
                    "github", f"gh:review:{review.id}", _s(review.at), body, "pull_request_review"
                )
        if out.wants(_s(pr.closed)):
            out.add(
                "github",
                f"gh:{pr.uid}:closed",
                _s(pr.closed),
                gh.pr_event(pr, "closed"),
                "pull_request",
            )
    for run in runs:
        if out.wants(_s(run.completed)):
            out.add(
                "github",
                f"gh:run:{run.id}",
                _s(run.completed),
                gh.workflow_run_event(run),
                "workflow_run",
            )

    for deploy in deploys:
        at = _s(deploy.at)
        if not out.wants(at):
            continue
        if deploy.channel == "github":
            body = gh.deployment_status_event(deploy)
            out.add("github", f"gh:deploy:{deploy.key}", at, body, "deployment_status")
        else:
            out.add(
                "deployment", f"deploy:{deploy.key}:{deploy.status}", at, deployment_body(deploy)
            )

    for incident in simulate_incidents(world, deploys):
        for event, at, body in incident_bodies(incident):
            out.add("incident", f"incident:{incident.id}:{event}", _s(at), body)
    for response in simulate_pulse(world):
        who = response.respondent.key
        key = f"pulse:{response.stream}:{response.period}:{who}:{response.attempt}"
        out.add("pulse", key, _s(response.at), pulse_body(response))
    return out.sorted()
