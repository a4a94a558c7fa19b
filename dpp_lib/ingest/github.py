"""GitHub webhook normalisers (spec §5.3.2, tables §4.3.3 pr_events and §4.3.4 cicd_events).

One pure function per ``X-GitHub-Event`` value, registered under ``("github", kind)``.
Each reads the request body and returns rows, or the reason the delivery is not used; a
payload without the fields a row needs is ignored with a reason naming the field, never
an exception. Event time is the object's own time (DESIGN §5): the PR's ``created_at``,
``merged_at`` or ``closed_at``, the review's ``submitted_at``, the deployment status's
``created_at``, the workflow run's ``updated_at``.

People appear only as ``ctx.anonymise("github", str(user.id))``: the numeric id survives
renames, and no login, name, e-mail or id reaches ``values`` or ``hints``. Every row's
hints carry ``installation_id``, ``org_login`` and ``repo_full_name`` for enrichment;
PR rows add the ticket-key candidates ``branch``, ``title``, ``body`` (see
``dpp_lib.ingest.linking``) and the commits ``head_sha`` and ``merge_commit_sha``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from dpp_lib.ingest.registry import register
from dpp_lib.ingest.types import EventRow, NormaliseContext, Normalised, utc

SOURCE = "github"
_REVIEW_OUTCOME_ROWS = {"approved": "approved", "changes_requested": "changes_requested"}
_DEPLOY_OUTCOMES = {
    "success": ("deploy_completed", "success"),
    "failure": ("deploy_failed", "failure"),
    "error": ("deploy_failed", "failure"),
}


class _Missing(Exception):
    """A field a row needs is absent; becomes the ignored reason, never escapes."""


# --- reading the payload -------------------------------------------------------------------


def _get(obj: Any, *path: str) -> Any:
    """``obj[path[0]][path[1]]...``, or None when any step is absent or not a mapping."""
    for key in path:
        if not isinstance(obj, Mapping):
            return None
        obj = obj.get(key)
    return obj


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value != "" else None


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _id(value: Any) -> str | None:
    """A numeric or string id as text (``installation.id``, ``deployment.id``)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value)
    return _str(value)


def _time(value: Any) -> datetime | None:
    """ISO 8601 text (``2019-05-15T15:20:33Z``) → aware UTC datetime; None if absent or bad."""
    text = _str(value)
    if text is None:
        return None
    try:
        return utc(datetime.fromisoformat(text))
    except ValueError:
        return None


def _need(value: Any, field: str) -> Any:
    if value is None:
        raise _Missing(field)
    return value


def _seconds_between(start: datetime | None, end: datetime | None) -> int | None:
    """Whole seconds from start to end; None when either is missing or end precedes start."""
    if start is None or end is None or end < start:
        return None
    return int((end - start).total_seconds())


def _source_hints(payload: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "installation_id": _id(_get(payload, "installation", "id")),
        "org_login": _str(_get(payload, "organization", "login"))
        or _str(_get(payload, "repository", "owner", "login")),
        "repo_full_name": _str(_get(payload, "repository", "full_name")),
    }


def _describe(kind: str, payload: Mapping[str, Any]) -> str:
    action = _str(payload.get("action"))
    return f"{kind} {action}" if action else kind


# --- pull requests -------------------------------------------------------------------------


def _pr_row(
    payload: Mapping[str, Any],
    ctx: NormaliseContext,
    *,
    event_type: str,
    at: datetime,
    reviewer_hash: str | None = None,
    review_state: str | None = None,
) -> EventRow:
    """One pr_events row from ``payload['pull_request']``; raises _Missing for needed fields."""
    pr = payload.get("pull_request")
    repo = payload.get("repository")
    number = _need(_int(_get(pr, "number")), "pull_request.number")
    author_id = _need(_id(_get(pr, "user", "id")), "pull_request.user.id")
    branch = _need(_str(_get(pr, "head", "ref")), "pull_request.head.ref")
    _need(_str(_get(repo, "full_name")), "repository.full_name")
    comments, review_comments = _int(_get(pr, "comments")), _int(_get(pr, "review_comments"))
    values = {
        "source": SOURCE,
        "event_timestamp": at,
        "event_type": event_type,
        "pr_number": number,
        "github_org": _need(_str(_get(repo, "owner", "login")), "repository.owner.login"),
        "github_repo": _need(_str(_get(repo, "name")), "repository.name"),
        "author_hash": ctx.anonymise(SOURCE, author_id),
        "branch_name": branch,
        "base_branch": _str(_get(pr, "base", "ref")),
        "lines_added": _int(_get(pr, "additions")),
        "lines_removed": _int(_get(pr, "deletions")),
        "files_changed": _int(_get(pr, "changed_files")),
        "comments_count": (
            comments + review_comments
            if comments is not None and review_comments is not None
            else None
        ),
        "reviewer_hash": reviewer_hash,
        "review_state": review_state,
        "head_sha": _str(_get(pr, "head", "sha")),
        "merge_commit_sha": _str(_get(pr, "merge_commit_sha")),
    }
    hints = {
        **_source_hints(payload),
        "branch": branch,
        "title": _str(_get(pr, "title")),
        "body": _str(_get(pr, "body")),
        "head_sha": values["head_sha"],
        "merge_commit_sha": values["merge_commit_sha"],
    }
    return EventRow(table="pr_events", values=values, hints=hints)


@register(SOURCE, "pull_request")
def pull_request(payload: Mapping[str, Any], ctx: NormaliseContext) -> Normalised:
    """``opened`` → opened; ``closed`` → merged (merged true) or closed; others ignored."""
    action = _str(payload.get("action"))
    pr = payload.get("pull_request")
    if action == "opened":
        event_type, time_field = "opened", "created_at"
    elif action == "closed" and _get(pr, "merged") is True:
        event_type, time_field = "merged", "merged_at"
    elif action == "closed":
        event_type, time_field = "closed", "closed_at"
    else:
        return Normalised.ignored(f"pull_request action {action!r} is not used")
    try:
        at = _need(_time(_get(pr, time_field)), f"pull_request.{time_field}")
        row = _pr_row(payload, ctx, event_type=event_type, at=at)
    except _Missing as missing:
        return Normalised.ignored(f"pull_request {action} has no {missing}")
    return Normalised(rows=(row,))


@register(SOURCE, "pull_request_review")
def pull_request_review(payload: Mapping[str, Any], ctx: NormaliseContext) -> Normalised:
    """``submitted`` → review_submitted, plus approved / changes_requested at the same time."""
    action = _str(payload.get("action"))
    if action != "submitted":
        return Normalised.ignored(f"pull_request_review action {action!r} is not used")
    review = payload.get("review")
    state = (_str(_get(review, "state")) or "").lower() or None
    reviewer_hash = ctx.anonymise(SOURCE, _id(_get(review, "user", "id")))
    try:
        at = _need(_time(_get(review, "submitted_at")), "review.submitted_at")
        event_types = ["review_submitted"]
        if state in _REVIEW_OUTCOME_ROWS:
            event_types.append(_REVIEW_OUTCOME_ROWS[state])
        rows = tuple(
            _pr_row(
                payload,
                ctx,
                event_type=event_type,
                at=at,
                reviewer_hash=reviewer_hash,
                review_state=state,
            )
            for event_type in event_types
        )
    except _Missing as missing:
        return Normalised.ignored(f"pull_request_review submitted has no {missing}")
    return Normalised(rows=rows)


# --- deployments and workflow runs ---------------------------------------------------------


def _cicd_values(**values: Any) -> dict[str, Any]:
    columns = {
        "source": SOURCE,
        "duration_seconds": None,
        "commit_sha": None,
        "linked_pr_number": None,
        "trigger_type": None,
        "artefact_version": None,
        "failure_reason": None,
    }
    columns.update(values)
    return columns


@register(SOURCE, "deployment_status")
def deployment_status(payload: Mapping[str, Any], ctx: NormaliseContext) -> Normalised:
    """``success`` → deploy_completed; ``failure``/``error`` → deploy_failed; others ignored.

    One deployment is one pipeline run: ``pipeline_id`` names the repository's GitHub
    deployments, ``pipeline_run_id`` the deployment id. Duration runs from the deployment's
    creation to this status.
    """
    status = payload.get("deployment_status")
    deployment = payload.get("deployment")
    state = _str(_get(status, "state"))
    if state not in _DEPLOY_OUTCOMES:
        return Normalised.ignored(f"deployment_status state {state!r} is not an outcome")
    event_type, outcome = _DEPLOY_OUTCOMES[state]
    try:
        at = _need(
            _time(_get(status, "created_at")) or _time(_get(status, "updated_at")),
            "deployment_status.created_at",
        )
        run_id = _need(_id(_get(deployment, "id")), "deployment.id")
        full_name = _need(_str(_get(payload, "repository", "full_name")), "repository.full_name")
        environment = _need(
            _str(_get(status, "environment")) or _str(_get(deployment, "environment")),
            "deployment_status.environment",
        )
    except _Missing as missing:
        return Normalised.ignored(f"deployment_status {state} has no {missing}")
    values = _cicd_values(
        event_timestamp=at,
        event_type=event_type,
        pipeline_id=f"github-deployments:{full_name}",
        pipeline_run_id=run_id,
        environment=environment,
        status=outcome,
        duration_seconds=_seconds_between(_time(_get(deployment, "created_at")), at),
        commit_sha=_str(_get(deployment, "sha")),
        artefact_version=_str(_get(deployment, "ref")),
        failure_reason=_str(_get(status, "description")) if outcome == "failure" else None,
    )
    hints = {**_source_hints(payload), "environment": environment}
    return Normalised(rows=(EventRow(table="cicd_events", values=values, hints=hints),))


@register(SOURCE, "workflow_run")
def workflow_run(payload: Mapping[str, Any], ctx: NormaliseContext) -> Normalised:
    """``completed`` → build_completed in environment 'ci'; other actions ignored."""
    action = _str(payload.get("action"))
    if action != "completed":
        return Normalised.ignored(f"workflow_run action {action!r} is not used")
    run = payload.get("workflow_run")
    try:
        at = _need(_time(_get(run, "updated_at")), "workflow_run.updated_at")
        run_id = _need(_id(_get(run, "id")), "workflow_run.id")
        workflow_id = _need(_id(_get(run, "workflow_id")), "workflow_run.workflow_id")
        conclusion = _need(_str(_get(run, "conclusion")), "workflow_run.conclusion")
        full_name = _need(_str(_get(payload, "repository", "full_name")), "repository.full_name")
    except _Missing as missing:
        return Normalised.ignored(f"workflow_run completed has no {missing}")
    pull_requests = _get(run, "pull_requests")
    first_pr = pull_requests[0] if isinstance(pull_requests, list) and pull_requests else None
    values = _cicd_values(
        event_timestamp=at,
        event_type="build_completed",
        pipeline_id=f"{full_name}:workflow:{workflow_id}",
        pipeline_run_id=f"{run_id}:{_int(_get(run, 'run_attempt')) or 1}",
        environment="ci",
        status=conclusion,
        duration_seconds=_seconds_between(_time(_get(run, "run_started_at")), at),
        commit_sha=_str(_get(run, "head_sha")),
        linked_pr_number=_int(_get(first_pr, "number")),
        trigger_type=_str(_get(run, "event")),
    )
    hints = _source_hints(payload)
    return Normalised(rows=(EventRow(table="cicd_events", values=values, hints=hints),))


# --- acknowledged, not used ----------------------------------------------------------------


@register(SOURCE, "deployment")
def deployment(payload: Mapping[str, Any], ctx: NormaliseContext) -> Normalised:
    return Normalised.ignored(
        f"{_describe('deployment', payload)} acknowledged: deployment_status carries the outcome"
    )


@register(SOURCE, "ping")
def ping(payload: Mapping[str, Any], ctx: NormaliseContext) -> Normalised:
    hook = _id(payload.get("hook_id")) or _id(_get(payload, "hook", "id"))
    return Normalised.ignored(f"ping acknowledged (hook {hook})" if hook else "ping acknowledged")


@register(SOURCE, "installation")
def installation(payload: Mapping[str, Any], ctx: NormaliseContext) -> Normalised:
    installation_id = _id(_get(payload, "installation", "id")) or "(no id)"
    return Normalised.ignored(
        f"{_describe('installation', payload)} acknowledged for installation {installation_id}"
    )


@register(SOURCE, "installation_repositories")
def installation_repositories(payload: Mapping[str, Any], ctx: NormaliseContext) -> Normalised:
    installation_id = _id(_get(payload, "installation", "id")) or "(no id)"
    return Normalised.ignored(
        f"{_describe('installation_repositories', payload)} acknowledged for installation "
        f"{installation_id}: the repository registry comes from the org config"
    )


@register(SOURCE, "push")
def push(payload: Mapping[str, Any], ctx: NormaliseContext) -> Normalised:
    ref = _str(payload.get("ref"))
    return Normalised.ignored(
        f"push to {ref} acknowledged: pull requests and deployments carry the commits"
    )


@register(SOURCE, "check_run")
def check_run(payload: Mapping[str, Any], ctx: NormaliseContext) -> Normalised:
    return Normalised.ignored(
        f"{_describe('check_run', payload)} acknowledged: builds come from workflow_run"
    )


@register(SOURCE, "check_suite")
def check_suite(payload: Mapping[str, Any], ctx: NormaliseContext) -> Normalised:
    return Normalised.ignored(
        f"{_describe('check_suite', payload)} acknowledged: builds come from workflow_run"
    )
