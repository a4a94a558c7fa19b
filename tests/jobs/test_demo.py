"""The demo-data generator (dpp_lib.jobs.demo): determinism, payload shapes, the mix of
events the metrics need, and signing/sending. No database, no network."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from pydantic import BaseModel

from dpp_lib.ingest.events import DeploymentBody, IncidentBody, PulseBody
from dpp_lib.ingest.registry import normalise
from dpp_lib.ingest.types import JiraFieldIds, NormaliseContext, StageMapping
from dpp_lib.jobs.demo import (
    Delivery,
    generate_demo,
    hub_signature,
    send_deliveries,
    signed_request,
)
from dpp_lib.jobs.demo import send as send_module
from dpp_lib.jobs.demo.push_payloads import DEPLOYMENT_FIELDS, INCIDENT_FIELDS, PULSE_FIELDS
from dpp_lib.orgconfig import (
    DEFAULT_TICKET_KEY_PATTERN,
    FOUND_STAGES,
    PIPELINE_STAGES,
    OrgConfig,
    parse_config,
    read_config,
)

ROOT = Path(__file__).resolve().parents[2]
CONFIG = read_config(ROOT / "config" / "example.yaml")
CONFIG_TZ = ZoneInfo(CONFIG.organisation.time_zone)
UNTIL = datetime(2026, 11, 20, 17, 0, tzinfo=UTC)
DAYS = 180
PATHS = {
    "github": "/api/v1/webhooks/github", "jira": "/api/v1/webhooks/jira",
    "deployment": "/api/v1/events/deployment", "incident": "/api/v1/events/incident",
    "pulse": "/api/v1/events/pulse",
}  # fmt: skip


@pytest.fixture(scope="module")
def demo() -> list[Delivery]:
    return generate_demo(CONFIG, days=DAYS, seed=7, until=UNTIL)


def bodies(demo: list[Delivery], source: str, event: str | None = None) -> list[dict[str, Any]]:
    return [
        json.loads(d.body)
        for d in demo
        if d.source == source and (event is None or d.event == event)
    ]


@pytest.fixture(scope="module")
def jira(demo: list[Delivery]) -> dict[str, list[dict[str, Any]]]:
    """Jira bodies per issue key in time order, parsed once and trimmed to what tests read."""
    f = CONFIG.jira_fields
    out: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for d in demo:
        if d.source != "jira":
            continue
        body = json.loads(d.body)
        fields = body["issue"]["fields"]
        out[body["issue"]["key"]].append(
            {
                "event": body["webhookEvent"],
                "project": fields["project"]["key"],
                "type": fields["issuetype"]["name"],
                "status": fields["status"]["name"],
                "items": body["changelog"]["items"],
                "found": (fields[f.found_in_stage] or {}).get("value"),
                "introduced": (fields[f.introduced_in_stage] or {}).get("value"),
                "linked": bool(fields["issuelinks"]),
                "sprints": fields[f.sprint] or [],
            }
        )
    return out


def stage_of(config: OrgConfig) -> dict[tuple[str, str], str]:
    return {(p.key, m.status): m.stage for p in config.jira_projects for m in p.status_mappings}


def parse_z(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def event_time(d: Delivery) -> datetime:
    """The event time the platform reads from the body (DESIGN §5)."""
    b = json.loads(d.body)
    if d.source == "jira":
        return datetime.fromtimestamp(b["timestamp"] / 1000, tz=UTC)
    if d.source == "deployment":
        return parse_z(b["deployed_at"])
    if d.source == "incident":
        return parse_z(b["occurred_at"])
    if d.source == "pulse":
        return parse_z(b["submitted_at"])
    if d.event == "pull_request":
        pr = b["pull_request"]
        return parse_z(pr["closed_at"] if b["action"] == "closed" else pr["created_at"])
    if d.event == "pull_request_review":
        return parse_z(b["review"]["submitted_at"])
    if d.event == "workflow_run":
        return parse_z(b["workflow_run"]["updated_at"])
    return parse_z(b["deployment_status"]["created_at"])


# --- determinism and window ---------------------------------------------------------------


def test_same_arguments_give_identical_deliveries() -> None:
    first = generate_demo(CONFIG, days=40, seed=3, until=UNTIL)
    again = generate_demo(CONFIG, days=40, seed=3, until=UNTIL)
    assert first == again
    assert [d.body for d in first] == [d.body for d in again]
    other = generate_demo(CONFIG, days=40, seed=4, until=UNTIL)
    assert [d.body for d in other] != [d.body for d in first]


def test_events_fall_in_the_window_in_order(demo: list[Delivery]) -> None:
    start = UNTIL - timedelta(days=DAYS)
    assert all(start <= d.occurred_at <= UNTIL for d in demo)
    assert demo == sorted(demo, key=lambda d: (d.occurred_at, d.delivery_id))
    assert len({d.delivery_id for d in demo}) == len(demo)
    assert all(d.path == PATHS[d.source] for d in demo)
    assert all((d.event is not None) == (d.source == "github") for d in demo)


def test_occurred_at_is_the_event_time_in_the_body(demo: list[Delivery]) -> None:
    assert all(event_time(d) == d.occurred_at for d in demo)


def test_volumes(demo: list[Delivery]) -> None:
    assert 12_000 <= len(demo) <= 25_000
    counts = Counter(d.source for d in demo)
    assert set(counts) == set(PATHS)
    short = generate_demo(CONFIG, days=30, seed=7, until=UNTIL)
    assert 1_000 <= len(short) <= 6_000


@pytest.mark.parametrize("until", [None, datetime(2026, 4, 8, 12, 30, tzinfo=UTC)])
def test_people_work_on_working_days_in_working_hours(
    demo: list[Delivery], until: datetime | None
) -> None:
    deliveries = demo if until is None else generate_demo(CONFIG, days=45, seed=5, until=until)
    holidays = set(CONFIG.organisation.holidays)
    human = [
        d.occurred_at.astimezone(CONFIG_TZ)
        for d in deliveries
        if d.source == "jira" or d.event in ("pull_request", "pull_request_review")
    ]
    assert all(t.weekday() < 5 and t.date() not in holidays for t in human)
    assert sum(1 for t in human if 8 <= t.hour < 19) / len(human) > 0.95


def test_a_minimal_config_still_generates() -> None:
    """No repositories, no Jira projects, no custom fields: only pulse responses remain."""
    config = parse_config(
        """
organisation: {name: Tiny Co}
delivery_streams: [{name: core, display_name: Core, team_size: 3}]
tech_streams: [{name: web, display_name: Web, github_org: tiny-web, github_install_id: "1"}]
"""
    )
    deliveries = generate_demo(config, days=60, seed=1, until=UNTIL)
    assert deliveries and {d.source for d in deliveries} == {"pulse"}


def test_naive_until_is_refused() -> None:
    with pytest.raises(ValueError, match="no time zone"):
        generate_demo(CONFIG, days=10, until=datetime(2026, 1, 1))


def test_a_weekend_window_is_quiet_but_fine() -> None:
    saturday = datetime(2026, 11, 21, 23, 0, tzinfo=UTC)
    deliveries = generate_demo(CONFIG, days=1, seed=7, until=saturday)
    assert all(saturday - timedelta(days=1) <= d.occurred_at <= saturday for d in deliveries)


def test_bodies_are_compact_json(demo: list[Delivery]) -> None:
    for d in demo[:500]:
        assert d.body == json.dumps(json.loads(d.body), separators=(",", ":")).encode()


# --- shapes -------------------------------------------------------------------------------


def test_github_bodies_carry_the_tech_streams_installation(demo: list[Delivery]) -> None:
    install = {t.github_org: int(t.github_install_id) for t in CONFIG.tech_streams}
    repos = {r.full_name for r in CONFIG.repositories}
    events: Counter[str | None] = Counter()
    for d in demo:
        if d.source != "github":
            continue
        body = json.loads(d.body)
        full_name = body["repository"]["full_name"]
        assert full_name in repos
        assert body["installation"]["id"] == install[full_name.split("/")[0]]
        assert body["organization"]["login"] == full_name.split("/")[0]
        events[d.event] += 1
    assert set(events) == {
        "pull_request",
        "pull_request_review",
        "workflow_run",
        "deployment_status",
    }


def test_jira_statuses_come_from_the_projects_mappings(
    jira: dict[str, list[dict[str, Any]]],
) -> None:
    allowed = {p.key: {m.status for m in p.status_mappings} for p in CONFIG.jira_projects}
    for key, history in jira.items():
        for body in history:
            project = body["project"]
            assert key.startswith(project + "-")
            assert body["status"] in allowed[project]
            for item in body["items"]:
                if item["fieldId"] == "status":
                    assert item["toString"] in allowed[project]
                    assert item["fromString"] is None or item["fromString"] in allowed[project]
            assert body["event"] in ("jira:issue_created", "jira:issue_updated")


def test_created_events_come_first_with_a_status_item(
    jira: dict[str, list[dict[str, Any]]],
) -> None:
    for history in jira.values():
        assert history[0]["event"] == "jira:issue_created"
        assert [e["event"] for e in history[1:]].count("jira:issue_created") == 0
        items = history[0]["items"]
        assert any(i["field"] == "Status" and i["fromString"] is None for i in items)


def test_sprints_are_cloud_objects_with_states_as_of_until(
    jira: dict[str, list[dict[str, Any]]],
) -> None:
    seen: dict[int, dict[str, Any]] = {}
    for body in (b for history in jira.values() for b in history):
        for sprint in body["sprints"]:
            assert set(sprint) == {"id", "name", "state", "startDate", "endDate", "boardId", "goal"}
            assert seen.setdefault(sprint["id"], sprint) == sprint  # same in every payload
    assert {"closed", "active", "future"} <= {s["state"] for s in seen.values()}
    for sprint in seen.values():
        start, end = parse_z(sprint["startDate"]), parse_z(sprint["endDate"])
        assert re.fullmatch(r"[A-Z]+ Sprint \d+", sprint["name"])
        assert start.astimezone(CONFIG_TZ).weekday() == 0 and end - start < timedelta(days=14)
        expected = "closed" if end <= UNTIL else "active" if start <= UNTIL else "future"
        assert sprint["state"] == expected


def test_push_bodies_have_exactly_the_documented_fields(demo: list[Delivery]) -> None:
    repos = {r.full_name for r in CONFIG.repositories}
    targets = {r.deploy_target for r in CONFIG.repositories if r.deploy_target}
    streams = {s.name for s in CONFIG.delivery_streams}
    required = {"repo_full_name", "environment", "status", "deployed_at"}
    for body in bodies(demo, "deployment"):
        assert required <= set(body) <= DEPLOYMENT_FIELDS
        assert body["repo_full_name"] in repos
        assert body["status"] in ("success", "failed", "rolled_back", "cancelled")
        assert body["trigger_type"] in ("push", "manual", "schedule", "config")
        assert isinstance(body.get("pr_number", 0), int)
    for body in bodies(demo, "incident"):
        assert set(body) == INCIDENT_FIELDS
        assert body["service_name"] in targets
        assert body["event_type"] in (
            "alarm_triggered",
            "incident_opened",
            "alarm_resolved",
            "incident_resolved",
        )
    for body in bodies(demo, "pulse"):
        assert set(body) - {"free_text"} == PULSE_FIELDS - {"free_text"}
        assert body["delivery_stream"] in streams
        assert re.fullmatch(r"\d{4}-\d{2}", body["survey_period"])
        for score in ("pace_score", "tooling_score", "clarity_score"):
            assert isinstance(body[score], int) and 1 <= body[score] <= 5


def test_pulse_arrives_in_the_window_with_some_resubmissions(demo: list[Delivery]) -> None:
    window = range(CONFIG.pulse.window_start_day,
                   CONFIG.pulse.window_start_day + CONFIG.pulse.window_days)  # fmt: skip
    per_period: Counter[tuple[str, str, str]] = Counter()
    for body in bodies(demo, "pulse"):
        submitted = parse_z(body["submitted_at"]).astimezone(CONFIG_TZ)
        assert submitted.day in window or submitted.day <= window.stop + 2  # resubmits run late
        per_period[(body["delivery_stream"], body["survey_period"], body["respondent_id"])] += 1
    assert max(per_period.values()) == 2
    sizes = {s.name: s.team_size for s in CONFIG.delivery_streams}
    people: Counter[tuple[str, str]] = Counter(k[:2] for k in per_period)
    assert all(n <= sizes[stream] for (stream, _), n in people.items())


def test_the_platform_normalises_every_delivery() -> None:
    """Round trip through the ingest layer: API bodies pass the route models, webhooks give
    rows and are never ignored (catches drift between demo and normalisers)."""
    mappings = {
        (p.key, m.status.casefold()): StageMapping(m.stage, m.active)
        for p in CONFIG.jira_projects
        for m in p.status_mappings
    }
    aliases = {s: s for s in (*PIPELINE_STAGES, *FOUND_STAGES)}
    aliases |= {label.casefold(): stage for label, stage in CONFIG.value_map.stages.items()}
    ctx = NormaliseContext(
        anonymise=lambda namespace, value: None if value is None else f"{namespace}:{value}",
        status_mappings=mappings,
        jira_fields=JiraFieldIds(**CONFIG.jira_fields.model_dump()),
        stage_aliases=aliases,
        production_environments=frozenset(CONFIG.organisation.production_environments),
    )
    models: dict[str, type[BaseModel]] = {
        "deployment": DeploymentBody,
        "incident": IncidentBody,
        "pulse": PulseBody,
    }
    tables: Counter[str] = Counter()
    for d in generate_demo(CONFIG, days=30, seed=7, until=UNTIL):
        payload = json.loads(d.body)
        if d.source in models:
            models[d.source].model_validate(payload)
        if d.source == "pulse":
            continue  # stored with the respondent hashed by the route; normalised from that
        kind = payload["webhookEvent"] if d.source == "jira" else d.event or d.source
        result = normalise(d.source, kind, payload, ctx)
        assert result.ignored_reason is None, (d.source, kind, result.ignored_reason)
        tables.update(row.table for row in result.rows)
    assert {"work_item_events", "pr_events", "cicd_events", "incident_events"} <= set(tables)
    assert tables["defect_events"] > 0 and tables["work_item_field_changes"] > 0


# --- linking ------------------------------------------------------------------------------


def test_about_85_percent_of_pull_requests_link_with_the_default_pattern(
    demo: list[Delivery],
) -> None:
    pattern = re.compile(DEFAULT_TICKET_KEY_PATTERN)
    projects = "|".join(p.key for p in CONFIG.jira_projects)
    keys = re.compile(rf"\b(?:{projects})-\d+")
    prs = {
        (b["repository"]["full_name"], b["number"]): b["pull_request"]
        for b in bodies(demo, "github", "pull_request")
    }
    linked = 0
    for pr in prs.values():
        if pattern.search(pr["head"]["ref"]) or pattern.search(pr["title"]):
            linked += 1
        else:  # key-less PRs carry no key anywhere, the body included
            assert not keys.search(pr["body"] or "")
    assert 0.80 <= linked / len(prs) <= 0.90


def test_branch_names_follow_appendix_b(demo: list[Delivery]) -> None:
    refs = [b["pull_request"]["head"]["ref"] for b in bodies(demo, "github", "pull_request")]
    prefixes = Counter(r.split("/")[0] for r in refs if "/" in r)
    assert {"feature", "bugfix", "dependabot"} <= set(prefixes)
    assert any(re.match(r"^[A-Z]+-\d+-[a-z0-9-]+$", r) for r in refs)  # prefix omitted


# --- the mix the metrics need ------------------------------------------------------------


def test_bugs_and_escapes(jira: dict[str, list[dict[str, Any]]]) -> None:
    stages = {k.casefold(): v for k, v in CONFIG.value_map.stages.items()}
    latest = [history[-1] for history in jira.values()]
    bugs = [b for b in latest if b["type"] == "Bug"]
    assert 0.10 <= len(bugs) / len(latest) <= 0.20
    labels = [b["found"].casefold() for b in bugs if b["found"]]
    found = [stages.get(label, label) for label in labels]
    assert len(found) == len(bugs)
    escaped = sum(1 for s in found if s in ("uat", "production"))
    assert 0.10 <= escaped / len(found) <= 0.35
    introduced = sum(1 for b in bugs if b["introduced"])
    assert 0.5 <= introduced / len(bugs) <= 0.85
    assert sum(1 for b in bugs if b["linked"]) / len(bugs) > 0.7
    assert not any(b["found"] for b in latest if b["type"] != "Bug")


def test_flags_reopens_cancellations_wip_and_backlog(
    jira: dict[str, list[dict[str, Any]]],
) -> None:
    stage = stage_of(CONFIG)
    flag_id = CONFIG.jira_fields.flagged
    flagged, unflagged, reopened = set(), set(), set()
    finals: Counter[str] = Counter()
    for key, history in jira.items():
        project = history[0]["project"]
        for body in history:
            for item in body["items"]:
                if item["fieldId"] == flag_id and item["toString"] == "Impediment":
                    flagged.add(key)
                if item["fieldId"] == flag_id and item["fromString"] == "Impediment":
                    assert key in flagged
                    unflagged.add(key)
                was = item["fromString"]
                if item["fieldId"] == "status" and was and stage[(project, was)] == "done":
                    reopened.add(key)
                    items = body["items"]
                    assert any(i["fieldId"] == "resolution" and i["to"] is None for i in items)
        finals[stage[(project, history[-1]["status"])]] += 1
    total = sum(finals.values())
    assert len(flagged) / total > 0.04 and len(unflagged) >= 0.8 * len(flagged)
    assert len(reopened) / finals["done"] > 0.02
    assert finals["cancelled"] / total > 0.01
    assert finals["backlog"] > 20
    assert sum(finals[s] for s in ("ba", "dev", "code_review", "qa", "uat")) > 20


def test_blocking_tech_stream_leans_on_core_and_infra(
    jira: dict[str, list[dict[str, Any]]],
) -> None:
    field = CONFIG.jira_fields.blocking_tech_stream
    names = Counter(
        item["toString"]
        for history in jira.values()
        for body in history
        for item in body["items"]
        if item["fieldId"] == field and item["toString"]
    )
    displays = {t.display_name for t in CONFIG.tech_streams}
    assert set(names) <= displays
    assert names["Core API"] + names["Infrastructure"] > sum(names.values()) / 2


def deploys_to_production(demo: list[Delivery]) -> list[tuple[str, str, datetime]]:
    """(repository, outcome, time) of every production deployment, from both channels."""
    prod = set(CONFIG.organisation.production_environments)
    out = []
    for b in bodies(demo, "deployment"):
        if b["environment"] in prod:
            out.append((b["repo_full_name"], b["status"], parse_z(b["deployed_at"])))
    for b in bodies(demo, "github", "deployment_status"):
        status = b["deployment_status"]
        if status["environment"] in prod:
            out.append(
                (b["repository"]["full_name"], status["state"], parse_z(status["created_at"]))
            )
    return out


def test_deployments_fail_roll_back_and_skip_nothing(demo: list[Delivery]) -> None:
    deploys = deploys_to_production(demo)
    outcomes = Counter(outcome for _, outcome, _ in deploys)
    assert outcomes["rolled_back"] > 0
    failed = outcomes["failed"] + outcomes["failure"] + outcomes["error"]
    assert 0.03 <= failed / len(deploys) <= 0.15
    api = bodies(demo, "deployment")
    rolled = [b for b in api if b["status"] == "rolled_back"]
    pipelines = {b["pipeline_id"]: b for b in api if b["status"] == "success"}
    for b in rolled:
        original = pipelines[b["pipeline_id"]]
        assert parse_z(original["deployed_at"]) < parse_z(b["deployed_at"])
    assert any(b["trigger_type"] == "config" for b in api)
    ignored = {r.full_name for r in CONFIG.repositories if not r.deployable}
    assert 0 < sum(1 for repo, _, _ in deploys if repo in ignored) <= 6 * len(ignored)
    assert {"staging"} <= {b["environment"] for b in api}


def test_deployed_shas_are_merge_commits(demo: list[Delivery]) -> None:
    merged = {
        b["pull_request"]["merge_commit_sha"]
        for b in bodies(demo, "github", "pull_request")
        if b["pull_request"]["merged"]
    }
    shas = [b["commit_sha"] for b in bodies(demo, "deployment")]
    shas += [b["deployment"]["sha"] for b in bodies(demo, "github", "deployment_status")]
    assert shas and all(sha in merged for sha in shas)


def test_some_incidents_follow_a_production_deploy_within_the_window(
    demo: list[Delivery],
) -> None:
    window = timedelta(minutes=CONFIG.organisation.incident_correlation_window_minutes)
    repo_of = {r.deploy_target: r.full_name for r in CONFIG.repositories if r.deploy_target}
    shipped = defaultdict(list)
    for repo, outcome, at in deploys_to_production(demo):
        if outcome == "success":
            shipped[repo].append(at)
    openings = [
        b
        for b in bodies(demo, "incident")
        if b["event_type"] in ("alarm_triggered", "incident_opened")
    ]
    follow = [
        b for b in openings
        if any(timedelta(0) <= parse_z(b["occurred_at"]) - t <= window
               for t in shipped[repo_of[b["service_name"]]])
    ]  # fmt: skip
    assert len(openings) >= 5 * len(CONFIG.tech_streams)
    assert 0.3 <= len(follow) / len(openings) <= 0.8
    closes = Counter(b["incident_id"] for b in bodies(demo, "incident"))
    assert set(closes.values()) <= {1, 2}


def test_one_tech_stream_has_a_dominant_reviewer(demo: list[Delivery]) -> None:
    per_org: dict[str, Counter[str]] = defaultdict(Counter)
    for b in bodies(demo, "github", "pull_request_review"):
        assert b["review"]["state"] in ("approved", "changes_requested", "commented")
        assert b["review"]["user"]["login"] != b["pull_request"]["user"]["login"]
        per_org[b["organization"]["login"]][b["review"]["user"]["login"]] += 1
    shares = sorted(max(c.values()) / sum(c.values()) for c in per_org.values())
    assert shares[-1] > 0.4 and shares[0] < 0.4


# --- signing and sending ------------------------------------------------------------------


def delivery(source: str, event: str | None = None) -> Delivery:
    return Delivery(
        source=source,  # type: ignore[arg-type]
        path=PATHS[source],
        delivery_id="5b0e2f7e-0000-5000-8000-000000000001",
        event=event,
        body=b'{"hello":"world"}',
        occurred_at=UNTIL,
    )


def test_jira_test_vector() -> None:
    expected = "sha256=a4771c39fbe90f317c7824e83ddef3caae9cb3d976c214ace1f2937e133263c9"
    assert hub_signature(b"It's a Secret to Everybody", b"Hello World!") == expected


def test_signed_github_request() -> None:
    d = delivery("github", "pull_request")
    path, headers, body = signed_request(d, github_secret=b"gh", jira_secret=b"j", api_key="k")
    assert (path, body) == ("/api/v1/webhooks/github", d.body)
    assert headers["X-GitHub-Event"] == "pull_request"
    assert headers["X-GitHub-Delivery"] == d.delivery_id
    digest = hmac.new(b"gh", body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(headers["X-Hub-Signature-256"], f"sha256={digest}")
    assert "Authorization" not in headers and "X-Hub-Signature" not in headers


def test_signed_jira_request() -> None:
    d = delivery("jira")
    path, headers, body = signed_request(d, github_secret=b"gh", jira_secret=b"j", api_key="k")
    assert path == "/api/v1/webhooks/jira"
    assert headers["X-Atlassian-Webhook-Identifier"] == d.delivery_id
    digest = hmac.new(b"j", body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(headers["X-Hub-Signature"], f"sha256={digest}")


@pytest.mark.parametrize("source", ["deployment", "incident", "pulse"])
def test_pushed_events_use_the_api_key(source: str) -> None:
    d = delivery(source)
    path, headers, _ = signed_request(d, github_secret=b"gh", jira_secret=b"j", api_key="k1")
    assert path == PATHS[source]
    assert headers["Authorization"] == "Bearer k1"
    assert headers["X-Idempotency-Key"] == d.delivery_id


def test_no_secret_no_signature() -> None:
    for source, event in (("github", "workflow_run"), ("jira", None)):
        _, headers, _ = signed_request(
            delivery(source, event), github_secret=None, jira_secret=None, api_key="k"
        )
        assert not any(h.startswith("X-Hub-Signature") for h in headers)


def test_send_retries_and_reports(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(send_module, "RETRY_DELAYS", (0.0, 0.0, 0.0))
    demo = generate_demo(CONFIG, days=3, seed=1, until=UNTIL)[:30]
    attempts: Counter[str] = Counter()
    bad = {demo[1].delivery_id}
    flaky = {demo[2].delivery_id}
    down = {demo[3].delivery_id}

    def handler(request: httpx.Request) -> httpx.Response:
        ident = (request.headers.get("X-GitHub-Delivery")
                 or request.headers.get("X-Atlassian-Webhook-Identifier")
                 or request.headers.get("X-Idempotency-Key") or "")  # fmt: skip
        attempts[ident] += 1
        if ident in down:
            raise httpx.ConnectError("refused", request=request)
        if ident in flaky and attempts[ident] < 3:
            return httpx.Response(503, text="busy")
        if ident in bad:
            return httpx.Response(422, json={"status": "error", "message": "bad body"})
        return httpx.Response(202, json={"ok": True})

    report = send_deliveries(
        demo, base_url="http://dpp.test", github_secret=b"s", jira_secret=b"t", api_key="k",
        concurrency=4, progress=False, transport=httpx.MockTransport(handler),
    )  # fmt: skip
    assert report.sent == 30 and report.accepted == 28
    assert report.failed == {0: 1, 422: 1}
    assert attempts[demo[2].delivery_id] == 3 and attempts[demo[1].delivery_id] == 1
    assert attempts[demo[3].delivery_id] == 4
    assert len(report.errors) == 2 and any("422" in e for e in report.errors)
    assert report.seconds >= 0
