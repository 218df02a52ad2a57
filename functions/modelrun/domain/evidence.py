"""Who sent a run request, from evidence only: the job's OIDC token and GitHub's own record.

A run request is written by the workflow, and an approved ``pull_request`` job runs the PR's own
workflow file and code while it holds the workflow's AWS role: the body proves nothing. What
GitHub signed (the token's claims) and what GitHub's API says about that workflow run are the
evidence; every fact modelrun later shows on a PR is taken from them, and a body that disagrees
is refused. This module is pure: the token's signature is checked by ``adapters.oidc`` and the
workflow run is fetched by ``adapters.github``; here the facts are compared.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from modelrun.contracts import CleanupRequest, RunRequest
from modelrun.errors import Unverified

_PULL_REF = re.compile(r"^refs/pull/([1-9][0-9]{0,9})/merge$")
_BRANCH_REF = re.compile(r"^refs/heads/(.+)$")


class Claims(BaseModel):
    """The GitHub Actions OIDC token's claims modelrun relies on (others are ignored)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    iss: str
    aud: str | list[str]
    iat: int
    exp: int
    nbf: int | None = None
    repository: str
    ref: str
    sha: str
    event_name: str
    run_id: int
    run_attempt: int
    actor: str
    environment: str | None = None
    workflow_ref: str
    # The workflow the job itself runs: the called reusable workflow's OWNER/REPO/PATH@REF.
    job_workflow_ref: str | None = None
    head_ref: str | None = None
    base_ref: str | None = None

    # GitHub sends the ids as strings.
    @field_validator("run_id", "run_attempt", mode="before")
    @classmethod
    def _number(cls, value: Any) -> Any:
        if isinstance(value, str) and value.isdigit():
            return int(value)
        return value


class PullRequestRef(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    number: int
    head_sha: str
    base_ref: str
    base_sha: str
    base_repo_url: str = ""  # GitHub's API URL of the PR's base repository (``base.repo.url``)


class WorkflowRunFacts(BaseModel):
    """GitHub's record of the workflow run attempt (GET .../actions/runs/{id}/attempts/{n})."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    id: int
    run_attempt: int
    event: str
    head_sha: str
    head_branch: str | None = None
    repository: str
    triggering_actor: str | None = None
    actor: str | None = None
    pull_requests: tuple[PullRequestRef, ...] = ()

    @classmethod
    def from_api(cls, doc: dict[str, Any]) -> WorkflowRunFacts:
        try:
            return cls(
                id=doc["id"],
                run_attempt=doc.get("run_attempt") or 1,
                event=doc["event"],
                head_sha=doc["head_sha"],
                head_branch=doc.get("head_branch"),
                repository=doc["repository"]["full_name"],
                triggering_actor=(doc.get("triggering_actor") or {}).get("login"),
                actor=(doc.get("actor") or {}).get("login"),
                pull_requests=tuple(
                    PullRequestRef(
                        number=p["number"],
                        head_sha=p["head"]["sha"],
                        base_ref=p["base"]["ref"],
                        base_sha=p["base"]["sha"],
                        base_repo_url=(p["base"].get("repo") or {}).get("url") or "",
                    )
                    for p in doc.get("pull_requests") or []
                ),
            )
        except (KeyError, TypeError, ValidationError) as error:
            raise Unverified(f"GitHub's record of the workflow run is not readable: {error!r}") from error


@dataclass(frozen=True)
class Policy:
    """The stack's rules (template parameters)."""

    repositories: frozenset[str]  # the allow-list, lower case
    approval_environment: str
    baseline_environment: str
    # The workflow files that may request runs (issue 21): another file of the same repository,
    # in the same environment, requests nothing.
    workflow_paths: tuple[str, ...] = (".github/workflows/modelrun.yaml", ".github/workflows/run-model.yaml")
    # The reusable workflow (``job_workflow_ref``) every job must run (issue 22); empty: any.
    pinned_workflow: str = ""


@dataclass(frozen=True)
class Verified:
    """What the evidence establishes about a run request."""

    repository: str
    event: str
    environment: str
    actor: str
    pr_number: int | None
    head_sha: str
    head_ref: str
    base_ref: str
    base_sha: str | None  # a PR's base commit, for the baseline of that commit
    default_branch: str | None
    baseline: bool  # a verified run of the default branch's own workflow: it may be a baseline


def repository_allowed(claims: Claims, policy: Policy) -> None:
    if claims.repository.lower() not in policy.repositories:
        raise Unverified(f"repository {claims.repository} is not served by this stack (its allow-list)")


def workflow_pinned(claims: Claims, policy: Policy) -> None:
    """The job ran the pinned reusable workflow, whatever the roles' trust says: a stack whose
    subjects are not customized, or a role edited by hand, still runs nothing else."""
    if policy.pinned_workflow and claims.job_workflow_ref != policy.pinned_workflow:
        raise Unverified(
            f"the job ran workflow {claims.job_workflow_ref!r}, not the pinned {policy.pinned_workflow!r} "
            "(PinnedWorkflow): call the pinned reusable workflow (docs/adopt.md)"
        )


def _agree(field: str, body: Any, evidence: Any) -> None:
    if body != evidence:
        raise Unverified(f"{field}: the request says {body!r}, the evidence says {evidence!r}")


def _common(message: RunRequest | CleanupRequest, claims: Claims, run: WorkflowRunFacts, policy: Policy) -> str:
    """Checks shared by run and cleanup requests; returns the environment."""
    repository_allowed(claims, policy)
    workflow_pinned(claims, policy)
    _agree("repository", message.repository, claims.repository)
    _agree("workflow.run_id", message.workflow.run_id, claims.run_id)
    _agree("workflow.run_attempt", message.workflow.run_attempt, claims.run_attempt)
    # GitHub's record of that run must be the same run (the token names it; the API confirms it).
    _agree("the workflow run's repository", run.repository.lower(), claims.repository.lower())
    _agree("the workflow run's id", run.id, claims.run_id)
    _agree("the workflow run's attempt", run.run_attempt, claims.run_attempt)
    _agree("the workflow run's event", run.event, claims.event_name)
    actors = {a for a in (claims.actor, run.actor, run.triggering_actor) if a}
    if message.triggered_by not in actors:
        raise Unverified(f"triggered_by: {message.triggered_by!r} did not start this workflow run ({sorted(actors)})")
    environment = claims.environment
    if environment not in (policy.approval_environment, policy.baseline_environment):
        raise Unverified(
            f"the job ran in environment {environment!r}, not in {policy.approval_environment!r} "
            f"or {policy.baseline_environment!r}: no approval gate"
        )
    return environment


def _workflow_file(claims: Claims, policy: Policy) -> None:
    """The token's workflow is one of the pinned files of this repository (``workflow_ref`` is
    ``OWNER/REPO/PATH@REF``: the caller's file, for a reusable workflow)."""
    path = claims.workflow_ref.rsplit("@", 1)[0]
    expected = [f"{claims.repository}/{p}" for p in policy.workflow_paths]
    if path.lower() not in {e.lower() for e in expected}:
        raise Unverified(f"the workflow file is {path!r}, not one of this stack's {expected}")


def _on_this_repository(pull: PullRequestRef, repository: str) -> bool:
    return pull.base_repo_url.lower().rstrip("/").endswith(f"/repos/{repository.lower()}")


def verify_run(
    request: RunRequest, claims: Claims, run: WorkflowRunFacts, policy: Policy, default_branch: str | None
) -> Verified:
    """Compare a run request with the evidence; raise :class:`Unverified` on any disagreement.

    ``default_branch`` is GitHub's (``GET /repos/{owner}/{repo}``): a branch run's base, and the
    only base a pull request's run may have (issue 21)."""
    environment = _common(request, claims, run, policy)
    _workflow_file(claims, policy)
    _agree("event", request.event, claims.event_name)
    _agree("head_sha", request.head_sha, run.head_sha)
    base_sha: str | None = None
    if claims.event_name == "pull_request":
        match = _PULL_REF.match(claims.ref)
        if not match:
            raise Unverified(f"a pull_request token's ref is {claims.ref!r}, not refs/pull/<n>/merge")
        number = int(match.group(1))
        _agree("pr_number", request.pr_number, number)
        if environment != policy.approval_environment:
            raise Unverified(f"a pull request's run must be approved in {policy.approval_environment!r}")
        pull = next((p for p in run.pull_requests if p.number == number), None)
        if pull is None:
            raise Unverified(f"GitHub does not list pull request #{number} for workflow run {run.id}")
        _agree("head_ref", request.head_ref, claims.head_ref)
        _agree("base_ref", request.base_ref, claims.base_ref)
        _agree("base_ref (GitHub's pull request)", request.base_ref, pull.base_ref)
        # A PR into the attacker's branch (carrying the attacker's workflow) would otherwise
        # run, and report on, another author's head commit.
        if default_branch is None:
            raise Unverified("GitHub did not say which branch is the repository's default")
        _agree("the pull request's base (the repository's default branch)", pull.base_ref, default_branch)
        if not _on_this_repository(pull, claims.repository):
            raise Unverified(f"pull request #{number}'s base repository is not {claims.repository}")
        base_sha = pull.base_sha
        head_ref, base_ref, baseline = request.head_ref, request.base_ref, False
    elif claims.event_name in ("push", "workflow_dispatch"):
        match = _BRANCH_REF.match(claims.ref)
        if not match:
            # A tag named "main" is not main.
            raise Unverified(f"a {claims.event_name} run must be on a branch (refs/heads/…), not {claims.ref!r}")
        _agree("pr_number", request.pr_number, None)
        _agree("head_ref", request.head_ref, match.group(1))
        _agree("head_sha", request.head_sha, claims.sha)
        if default_branch is None:
            raise Unverified("GitHub did not say which branch is the repository's default")
        _agree("base_ref", request.base_ref, default_branch)
        on_default = claims.ref == f"refs/heads/{default_branch}"
        if environment == policy.baseline_environment and not on_default:
            raise Unverified(f"environment {environment!r} serves only the default branch {default_branch!r}")
        # Main's own workflow file (not a PR's) on main, in main's environment.
        workflow_on_default = claims.workflow_ref.endswith(f"@refs/heads/{default_branch}") and (
            claims.workflow_ref.lower().startswith(f"{claims.repository.lower()}/")
        )
        baseline = on_default and workflow_on_default and environment == policy.baseline_environment
        head_ref, base_ref = match.group(1), default_branch
    else:
        raise Unverified(f"{claims.event_name!r} runs cannot start model runs")
    return Verified(
        repository=claims.repository,
        event=claims.event_name,
        environment=environment,
        # GitHub's record of who started this attempt, not the request's choice among the actors.
        actor=run.triggering_actor or run.actor or claims.actor,
        pr_number=request.pr_number,
        head_sha=request.head_sha,
        head_ref=head_ref,
        base_ref=base_ref,
        base_sha=base_sha,
        default_branch=default_branch,
        baseline=baseline,
    )


def verify_cleanup(request: CleanupRequest, claims: Claims, run: WorkflowRunFacts, policy: Policy) -> None:
    """A cleanup request may clean up only the pull request whose workflow sent it."""
    _common(request, claims, run, policy)
    _agree("event", "pull_request", claims.event_name)
    match = _PULL_REF.match(claims.ref)
    if not match:
        raise Unverified(f"a cleanup token's ref is {claims.ref!r}, not refs/pull/<n>/merge")
    _agree("pr_number", request.pr_number, int(match.group(1)))


def check_token_time(claims: Claims, sent_at: float, max_age_seconds: int, skew_seconds: int = 60) -> None:
    """The token must have been valid when the message was sent (SQS's SentTimestamp): a request
    may wait in the queue for days, but a token cannot be reused long after it was issued."""
    if claims.iat > sent_at + skew_seconds or (claims.nbf is not None and claims.nbf > sent_at + skew_seconds):
        raise Unverified("the OIDC token was issued after the message was sent")
    if sent_at > claims.exp + skew_seconds:
        raise Unverified("the OIDC token had expired when the message was sent")
    if sent_at - claims.iat > max_age_seconds:
        raise Unverified(f"the message was sent more than {max_age_seconds} s after its OIDC token was issued")


__all__ = [
    "Claims",
    "Policy",
    "PullRequestRef",
    "Unverified",
    "Verified",
    "WorkflowRunFacts",
    "check_token_time",
    "repository_allowed",
    "verify_cleanup",
    "verify_run",
    "workflow_pinned",
]
