"""The benchmark's deliveries: fixture payload shapes with varied ids, keys and timestamps.

Every delivery is unique (delivery id, PR number / review id / run id, Jira key and
timestamp), so nothing deduplicates at the inbox or in the worker. Bodies are compact JSON,
as GitHub and Jira send them, and are signed here with the secrets the service reads.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import random
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

GITHUB_PATH = "/api/v1/webhooks/github"
JIRA_PATH = "/api/v1/webhooks/jira"
DEPLOY_PATH = "/api/v1/events/deployment"
# Repositories of config/example.yaml that deploy (the deployment events name them).
DEPLOY_REPOS = (
    "acme-core-api/payments-service",
    "acme-core-api/ledger-service",
    "acme-core-api/api-gateway",
    "acme-auth/token-service",
    "acme-auth/sso-bridge",
    "acme-data/etl-pipelines",
    "acme-data/reporting-api",
    "acme-frontend/customer-web",
    "acme-frontend/admin-console",
)
PR_REPO = "Codertocat/Hello-World"  # the repository of the pull request fixtures
GITHUB_KINDS = (  # (X-GitHub-Event, fixture file)
    ("pull_request", "pull_request/opened.payload.json"),
    ("pull_request", "pull_request/closed.payload.json"),
    ("pull_request_review", "pull_request_review/submitted.payload.json"),
    ("deployment_status", "deployment_status/payload.json"),
    ("workflow_run", "workflow_run/completed.with-pull-requests.payload.json"),
)
JIRA_FIXTURE = "cloud-status-todo-to-inprogress.json"
EPOCH = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Delivery:
    kind: str  # github:<event> | jira:<event> | deployment
    path: str
    headers: tuple[tuple[str, str], ...]
    body: bytes


def _iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def _sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _sha(rng: random.Random) -> str:
    return f"{rng.getrandbits(160):040x}"


class Builder:
    def __init__(self, fixtures: Path, secrets: dict[str, str], api_key: str, seed: int = 7):
        self.rng = random.Random(seed)
        self.secrets = secrets
        self.api_key = api_key
        gh = fixtures / "github-webhooks"
        # Templates as compact bytes: orjson.loads gives a fresh deep copy quickly.
        self.github = [
            (event, orjson.dumps(json.loads((gh / f).read_text()))) for event, f in GITHUB_KINDS
        ]
        jira = fixtures / "jira-webhooks" / JIRA_FIXTURE
        self.jira = orjson.dumps(json.loads(jira.read_text()))
        self.n = 0
        self.github_n = 0
        self.jira_n = 0
        self.merged: list[str] = []  # merge commits of closed PRs, for deploys to name

    # --- GitHub ------------------------------------------------------------------------------
    def github_delivery(self) -> Delivery:
        self.n += 1
        self.github_n += 1
        n = self.n
        i = self.github_n % len(self.github)
        event, template = self.github[i]
        p = orjson.loads(template)
        t = EPOCH + timedelta(seconds=37 * n)
        ticket = f"TES-{n % 5000 + 1}"
        if event in ("pull_request", "pull_request_review"):
            pr = p["pull_request"]
            pr["number"] = 10_000 + n
            pr["id"] = 500_000_000 + n
            pr["created_at"] = _iso(t - timedelta(hours=3))
            pr["updated_at"] = _iso(t)
            pr["head"]["ref"] = f"feature/{ticket}-work-{n}"
            pr["head"]["sha"] = _sha(self.rng)
            pr["title"] = f"{ticket}: change {n}"
            if p.get("number") is not None:
                p["number"] = pr["number"]
            if p.get("action") == "closed":
                pr["closed_at"] = pr["merged_at"] = _iso(t)
                pr["merged"] = True
                pr["merge_commit_sha"] = _sha(self.rng)
                self.merged.append(pr["merge_commit_sha"])
            if event == "pull_request_review":
                review = p["review"]
                review["id"] = 900_000_000 + n
                review["submitted_at"] = _iso(t)
                review["state"] = self.rng.choice(("approved", "commented", "changes_requested"))
        elif event == "deployment_status":
            p["deployment"]["id"] = 300_000_000 + n
            p["deployment"]["sha"] = self._deployed_sha()
            p["deployment"]["created_at"] = _iso(t - timedelta(minutes=2))
            p["deployment_status"]["id"] = 400_000_000 + n
            p["deployment_status"]["created_at"] = p["deployment_status"]["updated_at"] = _iso(t)
            p["deployment_status"]["state"] = self.rng.choice(("success", "success", "failure"))
        else:  # workflow_run
            run = p["workflow_run"]
            run["id"] = 600_000_000 + n
            run["run_number"] = n
            run["head_sha"] = _sha(self.rng)
            run["head_branch"] = f"feature/{ticket}-work-{n}"
            run["created_at"] = _iso(t - timedelta(minutes=5))
            run["updated_at"] = _iso(t)
        body = orjson.dumps(p)
        headers = (
            ("Content-Type", "application/json"),
            ("User-Agent", "GitHub-Hookshot/bench"),
            ("X-GitHub-Event", event),
            ("X-GitHub-Delivery", str(uuid.UUID(int=self.rng.getrandbits(128)))),
            ("X-GitHub-Hook-ID", "292430182"),
            ("X-Hub-Signature-256", _sign(self.secrets["github_webhook_secret"], body)),
        )
        action = p.get("action")
        return Delivery(f"github:{event}.{action}", GITHUB_PATH, headers, body)

    def _deployed_sha(self) -> str:
        """Half the deploys ship a recently merged PR's commit (links, lead time); the rest
        a commit no PR names."""
        if self.merged and self.rng.random() < 0.5:
            return self.rng.choice(self.merged[-50:])
        return _sha(self.rng)

    # --- Jira --------------------------------------------------------------------------------
    def jira_delivery(self) -> Delivery:
        self.n += 1
        self.jira_n += 1
        n = self.jira_n
        p = orjson.loads(self.jira)
        step = n % 3
        issue = n // 3 + 1
        key = f"TES-{issue}"
        t = EPOCH + timedelta(seconds=41 * n)
        p["timestamp"] = int(t.timestamp() * 1000)
        p["issue"]["id"] = str(200_000 + issue)
        p["issue"]["key"] = key
        p["issue"]["self"] = p["issue"]["self"].rsplit("/", 1)[0] + f"/{200_000 + issue}"
        fields = p["issue"]["fields"]
        fields["created"] = (t - timedelta(days=2)).strftime("%Y-%m-%dT%H:%M:%S.000+0000")
        fields["updated"] = t.strftime("%Y-%m-%dT%H:%M:%S.000+0000")
        if step == 0:  # created
            p["webhookEvent"] = "jira:issue_created"
            p["issue_event_type_name"] = "issue_created"
            p.pop("changelog", None)
            fields["created"] = fields["updated"]
            fields["status"]["name"] = "To Do"
        else:
            frm, to = (("To Do", "In Progress"), ("In Progress", "Done"))[step - 1]
            p["changelog"] = {
                "id": str(700_000 + n),
                "items": [
                    {
                        "field": "status",
                        "fieldtype": "jira",
                        "fieldId": "status",
                        "from": "1",
                        "fromString": frm,
                        "to": "2",
                        "toString": to,
                    }
                ],
            }
            fields["status"]["name"] = to
        body = orjson.dumps(p)
        headers = (
            ("Content-Type", "application/json; charset=utf-8"),
            ("User-Agent", "Atlassian Webhook HTTP Client"),
            ("X-Atlassian-Webhook-Identifier", str(uuid.UUID(int=self.rng.getrandbits(128)))),
            ("X-Atlassian-Webhook-Flow", "Primary"),
            ("X-Hub-Signature", _sign(self.secrets["jira_webhook_secret"], body)),
        )
        return Delivery(p["webhookEvent"], JIRA_PATH, headers, body)

    # --- pushed deployments ------------------------------------------------------------------
    def deployment_delivery(self) -> Delivery:
        self.n += 1
        n = self.n
        t = EPOCH + timedelta(seconds=53 * n)
        sha = self._deployed_sha()
        # A merged PR's commit deploys from the fixture repository the PRs live in.
        repo = PR_REPO if sha in self.merged else DEPLOY_REPOS[n % len(DEPLOY_REPOS)]
        data: dict[str, Any] = {
            "repo_full_name": repo,
            "environment": "production",
            "status": self.rng.choice(("success", "success", "failed")),
            "deployed_at": _iso(t),
            "commit_sha": sha,
            "pipeline_id": f"bench-{n}",
            "trigger_type": "push",
            "duration_seconds": self.rng.randrange(30, 900),
        }
        body = orjson.dumps(data)
        headers = (
            ("Content-Type", "application/json"),
            ("Authorization", f"Bearer {self.api_key}"),
            ("X-Idempotency-Key", f"bench-deploy-{n}-{self.rng.getrandbits(32):08x}"),
        )
        return Delivery("deployment", DEPLOY_PATH, headers, body)

    def mix(self, total: int) -> list[Delivery]:
        """~45 % GitHub, ~45 % Jira, ~10 % deployments, shuffled."""
        out = []
        for i in range(total):
            r = i % 20
            if r < 9:
                out.append(self.github_delivery())
            elif r < 18:
                out.append(self.jira_delivery())
            else:
                out.append(self.deployment_delivery())
        self.rng.shuffle(out)
        return out
