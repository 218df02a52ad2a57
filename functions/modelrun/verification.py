"""The submit path's first step: a message's evidence, checked before anything is written.

The token proves the job (repository, event, ref, run id and attempt, environment, actor); GitHub's
API, asked with the stack's own credential, supplies what the token lacks (a pull request's
number, head and base commit) and the repository's default branch for branch runs. Costs per
request: one GitHub call for a pull request's run, two for a branch run (the default branch is
cached per container for five minutes), and the issuer's keys once per container.
"""

from __future__ import annotations

from modelrun.adapters.github import Repositories
from modelrun.adapters.oidc import TokenVerifier
from modelrun.config import settings
from modelrun.contracts import CleanupRequest, RunRequest
from modelrun.domain import evidence
from modelrun.domain.evidence import Unverified, Verified


def policy() -> evidence.Policy:
    s = settings()
    return evidence.Policy(
        repositories=s.allowed_repositories,
        approval_environment=s.approval_environment,
        baseline_environment=s.baseline_environment,
    )


def _claims(message: RunRequest | CleanupRequest, sent_at: float) -> evidence.Claims:
    if message.identity is None:
        raise Unverified("identity: the request carries no OIDC token (no evidence of who sent it)")
    s = settings()
    claims = TokenVerifier(s.oidc_issuer, s.oidc_audience).claims(message.identity.oidc_token)
    evidence.check_token_time(claims, sent_at, s.oidc_max_age_seconds)
    # Before any GitHub call: a repository this stack does not serve is not even looked up.
    evidence.repository_allowed(claims, policy())
    return claims


def verify_run(request: RunRequest, sent_at: float) -> Verified:
    claims = _claims(request, sent_at)
    s = settings()
    github = Repositories(s.github_secret_arn, s.github_api_url)
    run = github.workflow_run(claims.repository, claims.run_id, claims.run_attempt)
    default = github.default_branch(claims.repository) if claims.event_name != "pull_request" else None
    return evidence.verify_run(request, claims, run, policy(), default)


def verify_cleanup(request: CleanupRequest, sent_at: float) -> None:
    claims = _claims(request, sent_at)
    s = settings()
    run = Repositories(s.github_secret_arn, s.github_api_url).workflow_run(
        claims.repository, claims.run_id, claims.run_attempt
    )
    evidence.verify_cleanup(request, claims, run, policy())
