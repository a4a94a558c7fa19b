"""GitHub webhook bodies shaped like the octokit examples in
``shared/fixtures/github-webhooks``: ``pull_request``, ``pull_request_review``,
``workflow_run`` and ``deployment_status``, each with ``installation.id`` set to the
repository's tech stream's GitHub App installation."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from dpp_lib.jobs.demo.model import Deploy, Person, PullRequest, Review, WorkflowRun
from dpp_lib.jobs.demo.people import sha, stable_int
from dpp_lib.orgconfig import OrgConfig, Repository

API = "https://api.github.com"


def gh_time(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


class GitHubRenderer:
    def __init__(self, config: OrgConfig) -> None:
        self.install = {t.github_org.lower(): int(t.github_install_id) for t in config.tech_streams}

    def org(self, repo: Repository) -> str:
        return repo.full_name.split("/")[0]

    def user(self, p: Person) -> dict[str, Any]:
        return {
            "login": p.login,
            "id": p.github_id,
            "type": "Bot" if p.bot else "User",
            "site_admin": False,
            "html_url": f"https://github.com/{p.login}",
        }

    def repository(self, repo: Repository) -> dict[str, Any]:
        org = self.org(repo)
        return {
            "id": stable_int(f"repo:{repo.full_name.lower()}", 300_000_000, 900_000_000),
            "name": repo.full_name.split("/")[1],
            "full_name": repo.full_name,
            "private": True,
            "owner": {"login": org, "id": self._org_id(org), "type": "Organization"},
            "html_url": f"https://github.com/{repo.full_name}",
            "default_branch": repo.default_branch,
            "visibility": "private",
        }

    def _org_id(self, org: str) -> int:
        return stable_int(f"org:{org.lower()}", 40_000_000, 99_000_000)

    def envelope(self, repo: Repository, sender: Person) -> dict[str, Any]:
        org = self.org(repo)
        return {
            "repository": self.repository(repo),
            "organization": {"login": org, "id": self._org_id(org)},
            "installation": {"id": self.install[org.lower()]},
            "sender": self.user(sender),
        }

    def pull_request(self, pr: PullRequest, at: datetime, *, closed: bool) -> dict[str, Any]:
        repo, short = pr.repo, pr.repo.full_name.split("/")[1]
        ref = {"id": self.repository(repo)["id"], "name": short, "full_name": repo.full_name}
        reviews = [r for r in pr.reviews if r.at <= at]
        discussed = sum(1 for r in reviews if r.state != "approved")
        merged = closed and pr.merged
        return {
            "url": f"{API}/repos/{repo.full_name}/pulls/{pr.number}",
            "id": pr.id,
            "html_url": f"https://github.com/{repo.full_name}/pull/{pr.number}",
            "number": pr.number,
            "state": "closed" if closed else "open",
            "locked": False,
            "title": pr.title,
            "user": self.user(pr.author),
            "body": pr.body,
            "created_at": gh_time(pr.opened),
            "updated_at": gh_time(at),
            "closed_at": gh_time(pr.closed) if closed else None,
            "merged_at": gh_time(pr.closed) if merged else None,
            "merge_commit_sha": pr.merge_sha if closed else None,
            "head": {
                "label": f"{self.org(repo)}:{pr.branch}",
                "ref": pr.branch,
                "sha": pr.head_sha,
                "repo": ref,
            },
            "base": {
                "label": f"{self.org(repo)}:{repo.default_branch}",
                "ref": repo.default_branch,
                "sha": sha(f"base:{pr.uid}"),
                "repo": ref,
            },
            "author_association": "MEMBER",
            "draft": False,
            "merged": merged,
            "merged_by": self.user(pr.author) if merged else None,
            "comments": stable_int(f"comments:{pr.uid}", 0, 3) if closed else 0,
            "review_comments": discussed * 2,
            "commits": pr.commits,
            "additions": pr.additions,
            "deletions": pr.deletions,
            "changed_files": pr.changed_files,
        }

    def pr_event(self, pr: PullRequest, action: str) -> dict[str, Any]:
        closed = action == "closed"
        at = pr.closed if closed else pr.opened
        return {
            "action": action,
            "number": pr.number,
            "pull_request": self.pull_request(pr, at, closed=closed),
        } | self.envelope(pr.repo, pr.author)

    def review_event(self, pr: PullRequest, review: Review) -> dict[str, Any]:
        return {
            "action": "submitted",
            "review": {
                "id": review.id,
                "user": self.user(review.reviewer),
                "body": review.body,
                "commit_id": pr.head_sha,
                "submitted_at": gh_time(review.at),
                "state": review.state,
                "author_association": "MEMBER",
                "html_url": f"https://github.com/{pr.repo.full_name}/pull/{pr.number}"
                f"#pullrequestreview-{review.id}",
            },
            "pull_request": self.pull_request(pr, review.at, closed=False),
        } | self.envelope(pr.repo, review.reviewer)

    def workflow_run_event(self, run: WorkflowRun) -> dict[str, Any]:
        pr, repo = run.pr, run.repo
        workflow_id = stable_int(f"workflow:{repo.full_name}", 1_000_000, 9_000_000)
        author = {"name": pr.author.name, "email": pr.author.email}
        return {
            "action": "completed",
            "workflow": {
                "id": workflow_id,
                "name": "CI",
                "path": ".github/workflows/ci.yml",
                "state": "active",
            },
            "workflow_run": {
                "id": run.id,
                "name": "CI",
                "head_branch": repo.default_branch,
                "head_sha": pr.merge_sha,
                "path": ".github/workflows/ci.yml",
                "display_title": pr.title,
                "run_number": run.run_number,
                "event": "push",
                "status": "completed",
                "conclusion": run.conclusion,
                "workflow_id": workflow_id,
                "html_url": f"https://github.com/{repo.full_name}/actions/runs/{run.id}",
                "pull_requests": [],
                "created_at": gh_time(run.created),
                "updated_at": gh_time(run.completed),
                "run_attempt": 1,
                "run_started_at": gh_time(run.created),
                "actor": self.user(pr.author),
                "triggering_actor": self.user(pr.author),
                "head_commit": {
                    "id": pr.merge_sha,
                    "tree_id": sha(f"tree:{pr.uid}"),
                    "message": f"{pr.title} (#{pr.number})",
                    "timestamp": gh_time(pr.closed),
                    "author": author,
                    "committer": author,
                },
            },
        } | self.envelope(repo, pr.author)

    def deployment_status_event(self, d: Deploy) -> dict[str, Any]:
        state = "success"
        if d.status != "success":
            state = "error" if stable_int(d.key, 0, 4) == 0 else "failure"
        description = {
            "success": "Deployment finished",
            "failure": "Health check failed",
            "error": "Deployment job errored",
        }[state]
        creator = self.user(d.actor)
        return {
            "action": "created",
            "deployment_status": {
                "id": d.status_id,
                "state": state,
                "creator": creator,
                "description": description,
                "environment": d.environment,
                "target_url": f"https://github.com/{d.repo.full_name}/actions",
                "created_at": gh_time(d.at),
                "updated_at": gh_time(d.at),
            },
            "deployment": {
                "id": d.deployment_id,
                "sha": d.sha,
                "ref": d.repo.default_branch,
                "task": "deploy",
                "payload": {},
                "original_environment": d.environment,
                "environment": d.environment,
                "description": None,
                "creator": creator,
                "created_at": gh_time(d.started),
                "updated_at": gh_time(d.at),
            },
        } | self.envelope(d.repo, d.actor)
