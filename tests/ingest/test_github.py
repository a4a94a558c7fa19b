"""GitHub webhook normalisers against the real payloads in ../shared/fixtures/github-webhooks.

Fixtures are never edited: where a test needs a variant (a merged PR, an approving
review, a failed deployment) it changes a freshly loaded copy.
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

import dpp_lib.ingest.github  # noqa: F401  (registers the normalisers)
from dpp_lib.ingest.registry import NORMALISERS
from dpp_lib.ingest.types import EventRow, NormaliseContext, Normalised

FIXTURES = Path(__file__).resolve().parents[3] / "shared" / "fixtures" / "github-webhooks"
FIXTURE_FILES = sorted(FIXTURES.glob("*/*.json"))
assert FIXTURE_FILES, f"no GitHub webhook fixtures under {FIXTURES}"

KINDS = (
    "pull_request",
    "pull_request_review",
    "deployment_status",
    "deployment",
    "workflow_run",
    "push",
    "ping",
    "installation",
    "installation_repositories",
    "check_run",
    "check_suite",
)
AUTHOR_ID = "21031067"  # Codertocat, author and reviewer in the PR fixtures
HEAD_SHA = "ec26c3e57ca3a959ca5aad62de7213c562f8c821"
MERGE_SHA = "c4295bd74fb0f4fda03689c3df3f2803b658fd85"
DEPLOY_SHA = "f95f852bd8fca8fcc58a9a2d6c842781e32a215e"
RUN_SHA = "3484a3fb816e0859fd6e1cea078d76385ff50625"
TITLE = "Update the README with new information."
BODY = "This is a pretty simple change that we need to pull into master."


def anonymise(namespace: str, identifier: str | None) -> str | None:
    if identifier is None:
        return None
    return hmac.new(b"test-key", f"{namespace}:{identifier}".encode(), hashlib.sha256).hexdigest()


CTX = NormaliseContext(anonymise=anonymise)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def load(kind: str, name: str) -> dict[str, Any]:
    with (FIXTURES / kind / name).open() as f:
        payload: dict[str, Any] = json.load(f)
    return payload


def run(kind: str, payload: dict[str, Any]) -> Normalised:
    return NORMALISERS[("github", kind)](payload, CTX)


def only_row(result: Normalised) -> EventRow:
    assert result.ignored_reason is None
    assert len(result.rows) == 1
    return result.rows[0]


PR_VALUES = {
    "source": "github",
    "pr_number": 2,
    "github_org": "Codertocat",
    "github_repo": "Hello-World",
    "author_hash": anonymise("github", AUTHOR_ID),
    "branch_name": "changes",
    "base_branch": "master",
    "reviewer_hash": None,
    "review_state": None,
    "head_sha": HEAD_SHA,
}
PR_HINTS = {
    "installation_id": "1",
    "org_login": "Codertocat",
    "repo_full_name": "Codertocat/Hello-World",
    "branch": "changes",
    "title": TITLE,
    "body": BODY,
    "head_sha": HEAD_SHA,
}


# --- every fixture -------------------------------------------------------------------------


def test_every_kind_is_registered() -> None:
    assert {kind for source, kind in NORMALISERS if source == "github"} == set(KINDS)


@pytest.mark.parametrize("path", FIXTURE_FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_fixture_gives_rows_or_a_reason(path: Path) -> None:
    payload = json.loads(path.read_text())
    before = copy.deepcopy(payload)
    result = run(path.parent.name, payload)
    assert payload == before  # normalisers do not touch the payload
    assert bool(result.rows) != bool(result.ignored_reason)
    for row in result.rows:
        assert row.table in {"pr_events", "cicd_events"}
        assert row.values["event_timestamp"].utcoffset().total_seconds() == 0
        assert {"installation_id", "org_login", "repo_full_name"} <= set(row.hints)
    assert run(path.parent.name, payload) == result  # pure: same input, same output


def _people(payload: Any) -> set[str]:
    """Logins, user ids, names and e-mails of every person-shaped object in the payload."""
    found: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("type") in {"User", "Bot"} and "login" in node:
                found.update({str(node["login"]), str(node["id"])})
            if "email" in node:  # commit authors, committers, pushers
                found.update(str(node[k]) for k in ("name", "email", "username") if node.get(k))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(payload)
    return found


def _scanned(mapping: Any, *, repo_owner: str, repo_full_name: str) -> Iterator[str]:
    """Each value as text, less the repository's own namespace (owner login, full name).

    The repository owner is the GitHub organisation in production; in these fixtures it is
    a user account, so ``github_org``/``org_login`` and the full name inside
    ``pipeline_id`` legitimately equal a login.
    """
    for key, value in mapping.items():
        if key in {"github_org", "org_login"} and value == repo_owner:
            continue
        yield str(value).replace(repo_full_name, "<repo>")


def test_people_scan_finds_the_fixture_people() -> None:
    assert {"Codertocat", AUTHOR_ID} <= _people(load("pull_request", "opened.payload.json"))
    pushers = _people(load("push", "payload.json"))
    assert {"Codertocat", "21031067+Codertocat@users.noreply.github.com"} <= pushers


@pytest.mark.parametrize("path", FIXTURE_FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_no_person_identifier_leaves_the_normaliser(path: Path) -> None:
    payload = json.loads(path.read_text())
    people = _people(payload)
    repo = payload.get("repository") or {}
    owner = (repo.get("owner") or {}).get("login", "")
    for row in run(path.parent.name, payload).rows:
        for mapping in (row.values, row.hints):
            for text in _scanned(mapping, repo_owner=owner, repo_full_name=repo["full_name"]):
                leaked = {person for person in people if person in text}
                assert not leaked, f"{leaked} in {text!r}"


# --- pull_request --------------------------------------------------------------------------


def test_pull_request_opened() -> None:
    row = only_row(run("pull_request", load("pull_request", "opened.payload.json")))
    assert row.table == "pr_events"
    assert row.values == {
        **PR_VALUES,
        "event_timestamp": at("2019-05-15T15:20:33"),
        "event_type": "opened",
        "lines_added": 1,
        "lines_removed": 1,
        "files_changed": 1,
        "comments_count": 0,
        "merge_commit_sha": None,
    }
    assert row.hints == {**PR_HINTS, "merge_commit_sha": None}
    assert "linked_ticket_id" not in row.values  # enrichment applies the stream's pattern


def test_pull_request_opened_with_null_body_and_organisation() -> None:
    row = only_row(run("pull_request", load("pull_request", "opened.with-null-body.json")))
    assert row.hints["body"] is None
    row = only_row(
        run("pull_request", load("pull_request", "opened.with-organization.payload.json"))
    )
    assert row.hints["org_login"] == "Octocoders"
    assert row.values["github_org"] == "Codertocat"  # the repository's owner


def test_pull_request_closed_not_merged() -> None:
    row = only_row(run("pull_request", load("pull_request", "closed.payload.json")))
    assert row.values == {
        **PR_VALUES,
        "event_timestamp": at("2019-05-15T15:21:18"),
        "event_type": "closed",
        "lines_added": 1,
        "lines_removed": 1,
        "files_changed": 1,
        "comments_count": 1,  # 0 comments + 1 review comment
        "merge_commit_sha": MERGE_SHA,
    }
    assert row.hints == {**PR_HINTS, "merge_commit_sha": MERGE_SHA}


def test_pull_request_merged() -> None:
    payload = load("pull_request", "closed.payload.json")
    payload["pull_request"].update(merged=True, merged_at="2019-05-15T15:21:10Z")
    row = only_row(run("pull_request", payload))
    assert row.values["event_type"] == "merged"
    assert row.values["event_timestamp"] == at("2019-05-15T15:21:10")
    assert row.values["merge_commit_sha"] == MERGE_SHA
    assert row.hints["merge_commit_sha"] == MERGE_SHA


@pytest.mark.parametrize(
    "name",
    [
        "assigned.payload.json",
        "labeled.payload.json",
        "synchronize.payload.json",
        "reopened.payload.json",
        "ready_for_review.payload.json",
        "converted_to_draft.payload.json",
        "review_requested.payload.json",
        "locked.payload.json",
    ],
)
def test_other_pull_request_actions_are_ignored(name: str) -> None:
    payload = load("pull_request", name)
    result = run("pull_request", payload)
    assert result.rows == ()
    assert result.ignored_reason == f"pull_request action {payload['action']!r} is not used"


def test_pull_request_without_number_is_ignored() -> None:
    payload = load("pull_request", "opened.payload.json")
    del payload["pull_request"]["number"]
    assert run("pull_request", payload) == Normalised.ignored(
        "pull_request opened has no pull_request.number"
    )


def test_merged_pull_request_without_merge_time_is_ignored() -> None:
    payload = load("pull_request", "closed.payload.json")
    payload["pull_request"]["merged"] = True
    assert run("pull_request", payload) == Normalised.ignored(
        "pull_request closed has no pull_request.merged_at"
    )


def test_comments_count_is_none_without_both_counts() -> None:
    payload = load("pull_request", "opened.payload.json")
    del payload["pull_request"]["review_comments"]
    assert only_row(run("pull_request", payload)).values["comments_count"] is None


def test_offset_timestamps_become_utc() -> None:
    payload = load("pull_request", "opened.payload.json")
    payload["pull_request"]["created_at"] = "2019-05-15T17:20:33+02:00"
    assert only_row(run("pull_request", payload)).values["event_timestamp"] == at(
        "2019-05-15T15:20:33"
    )


@pytest.mark.parametrize("created_at", ["2019-05-15T15:20:33", "yesterday", 1557933633, None])
def test_unusable_timestamps_are_ignored(created_at: Any) -> None:
    payload = load("pull_request", "opened.payload.json")
    payload["pull_request"]["created_at"] = created_at
    assert run("pull_request", payload) == Normalised.ignored(
        "pull_request opened has no pull_request.created_at"
    )


# --- pull_request_review -------------------------------------------------------------------


def test_review_commented_gives_one_row() -> None:
    row = only_row(
        run("pull_request_review", load("pull_request_review", "submitted.payload.json"))
    )
    assert row.values == {
        **PR_VALUES,
        "event_timestamp": at("2019-05-15T15:20:38"),
        "event_type": "review_submitted",
        "reviewer_hash": anonymise("github", AUTHOR_ID),
        "review_state": "commented",
        "lines_added": None,  # the review payload's pull_request has no diff stats
        "lines_removed": None,
        "files_changed": None,
        "comments_count": None,
        "merge_commit_sha": MERGE_SHA,
    }
    assert row.hints == {**PR_HINTS, "merge_commit_sha": MERGE_SHA}


@pytest.mark.parametrize(
    "state", ["approved", "changes_requested", "APPROVED", "CHANGES_REQUESTED"]
)
def test_review_outcome_gives_two_rows(state: str) -> None:
    payload = load("pull_request_review", "submitted.payload.json")
    payload["review"]["state"] = state
    result = run("pull_request_review", payload)
    assert result.ignored_reason is None
    assert [row.values["event_type"] for row in result.rows] == [
        "review_submitted",
        state.lower(),
    ]
    for row in result.rows:
        assert row.values["event_timestamp"] == at("2019-05-15T15:20:38")
        assert row.values["review_state"] == state.lower()
        assert row.values["reviewer_hash"] == anonymise("github", AUTHOR_ID)
        assert row.values["author_hash"] == anonymise("github", AUTHOR_ID)


def test_review_by_another_user_hashes_the_reviewer() -> None:
    payload = load("pull_request_review", "submitted.payload.json")
    payload["review"]["user"] = {"login": "someone", "id": 42, "type": "User"}
    row = only_row(run("pull_request_review", payload))
    assert row.values["reviewer_hash"] == anonymise("github", "42")
    assert row.values["author_hash"] == anonymise("github", AUTHOR_ID)


def test_review_dismissed_is_ignored() -> None:
    result = run("pull_request_review", load("pull_request_review", "dismissed.payload.json"))
    assert result == Normalised.ignored("pull_request_review action 'dismissed' is not used")


def test_review_without_time_is_ignored() -> None:
    payload = load("pull_request_review", "submitted.payload.json")
    del payload["review"]["submitted_at"]
    assert run("pull_request_review", payload) == Normalised.ignored(
        "pull_request_review submitted has no review.submitted_at"
    )


# --- deployment_status ---------------------------------------------------------------------


def test_deployment_status_success() -> None:
    row = only_row(run("deployment_status", load("deployment_status", "payload.json")))
    assert row.table == "cicd_events"
    assert row.values == {
        "source": "github",
        "event_timestamp": at("2019-05-15T15:20:55"),
        "event_type": "deploy_completed",
        "pipeline_id": "github-deployments:Codertocat/Hello-World",
        "pipeline_run_id": "145988746",
        "environment": "production",
        "status": "success",
        "duration_seconds": 2,  # deployment created 15:20:53
        "commit_sha": DEPLOY_SHA,
        "linked_pr_number": None,
        "trigger_type": None,
        "artefact_version": "master",
        "failure_reason": None,
    }
    assert row.hints == {
        "installation_id": None,
        "org_login": "Codertocat",
        "repo_full_name": "Codertocat/Hello-World",
        "environment": "production",
    }


@pytest.mark.parametrize("state", ["failure", "error"])
def test_deployment_status_failure(state: str) -> None:
    payload = load("deployment_status", "payload.json")
    payload["deployment_status"].update(state=state, description="health check timed out")
    row = only_row(run("deployment_status", payload))
    assert row.values["event_type"] == "deploy_failed"
    assert row.values["status"] == "failure"
    assert row.values["failure_reason"] == "health check timed out"
    assert row.values["pipeline_run_id"] == "145988746"


@pytest.mark.parametrize("state", ["pending", "in_progress", "queued", "inactive"])
def test_deployment_status_in_flight_is_ignored(state: str) -> None:
    payload = load("deployment_status", "payload.json")
    payload["deployment_status"]["state"] = state
    assert run("deployment_status", payload) == Normalised.ignored(
        f"deployment_status state {state!r} is not an outcome"
    )


def test_deployment_status_falls_back_to_deployment_environment_and_updated_at() -> None:
    payload = load("deployment_status", "with-installation.payload.json")
    del payload["deployment_status"]["environment"]
    del payload["deployment_status"]["created_at"]
    payload["deployment_status"]["updated_at"] = "2019-05-15T15:25:53Z"
    row = only_row(run("deployment_status", payload))
    assert row.values["environment"] == "production"
    assert row.values["event_timestamp"] == at("2019-05-15T15:25:53")
    assert row.values["duration_seconds"] == 300
    assert row.hints["installation_id"] == "1"


def test_deployment_status_before_its_deployment_has_no_duration() -> None:
    payload = load("deployment_status", "payload.json")
    payload["deployment"]["created_at"] = "2019-05-15T15:30:00Z"
    assert only_row(run("deployment_status", payload)).values["duration_seconds"] is None


def test_deployment_status_without_deployment_id_is_ignored() -> None:
    payload = load("deployment_status", "payload.json")
    del payload["deployment"]["id"]
    assert run("deployment_status", payload) == Normalised.ignored(
        "deployment_status success has no deployment.id"
    )


# --- workflow_run --------------------------------------------------------------------------


def test_workflow_run_completed() -> None:
    row = only_row(run("workflow_run", load("workflow_run", "completed.payload.json")))
    assert row.values == {
        "source": "github",
        "event_timestamp": at("2020-10-05T16:33:49"),
        "event_type": "build_completed",
        "pipeline_id": "octo-org/octo-repo:workflow:2823525",
        "pipeline_run_id": "289782451:1",
        "environment": "ci",
        "status": "success",
        "duration_seconds": 0,
        "commit_sha": RUN_SHA,
        "linked_pr_number": None,
        "trigger_type": "repository_dispatch",
        "artefact_version": None,
        "failure_reason": None,
    }
    assert row.hints == {
        "installation_id": None,
        "org_login": "octo-org",
        "repo_full_name": "octo-org/octo-repo",
    }


def test_workflow_run_completed_with_pull_requests() -> None:
    payload = load("workflow_run", "completed.with-pull-requests.payload.json")
    assert only_row(run("workflow_run", payload)).values["linked_pr_number"] == 2


def test_workflow_run_retry_and_failure() -> None:
    payload = load("workflow_run", "completed.payload.json")
    payload["workflow_run"].update(
        run_attempt=2, conclusion="failure", updated_at="2020-10-05T16:38:49Z"
    )
    row = only_row(run("workflow_run", payload))
    assert row.values["pipeline_run_id"] == "289782451:2"
    assert row.values["status"] == "failure"
    assert row.values["duration_seconds"] == 300


@pytest.mark.parametrize(
    "name", ["requested.payload.json", "requested.with-conclusion.payload.json"]
)
def test_workflow_run_requested_is_ignored(name: str) -> None:
    assert run("workflow_run", load("workflow_run", name)) == Normalised.ignored(
        "workflow_run action 'requested' is not used"
    )


# --- acknowledged kinds and hostile payloads -----------------------------------------------


def test_acknowledged_kinds_say_why() -> None:
    assert run("ping", load("ping", "payload.json")).ignored_reason == (
        "ping acknowledged (hook 109948940)"
    )
    assert run("installation", load("installation", "created.payload.json")).ignored_reason == (
        "installation created acknowledged for installation 957387"
    )
    assert run("deployment", load("deployment", "payload.json")).ignored_reason == (
        "deployment created acknowledged: deployment_status carries the outcome"
    )
    reason = run("push", load("push", "with-new-branch.payload.json")).ignored_reason
    assert reason is not None and reason.startswith("push to refs/heads/master acknowledged")
    for kind in ("check_run", "check_suite", "installation_repositories"):
        reason = run(kind, {"action": "completed", "installation": {"id": 7}}).ignored_reason
        assert reason is not None and reason.startswith(f"{kind} completed acknowledged")


HOSTILE_PAYLOADS: list[dict[str, Any]] = [
    {},
    {"action": None},
    {"action": "opened", "pull_request": "not an object"},
    {"action": "closed", "pull_request": {"merged": True, "number": "2"}},
    {"action": "submitted", "review": [], "pull_request": None},
    {"action": "completed", "workflow_run": {"id": True, "pull_requests": "x"}},
    {"action": "created", "deployment_status": {"state": "success"}, "deployment": 5},
    {"action": "created", "installation": {"id": None}, "hook": []},
]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("payload", HOSTILE_PAYLOADS)
def test_hostile_payloads_never_raise(kind: str, payload: dict[str, Any]) -> None:
    result = run(kind, payload)
    assert result.rows == ()
    assert result.ignored_reason
