"""The submit path's first step: a message's evidence, checked before anything is written.

The token proves the job (repository, event, ref, run id and attempt, environment, actor); GitHub's
API, asked with the stack's own credential, supplies what the token lacks (a pull request's
number, head and base commit) and the repository's default branch for branch runs. Costs per
request: one GitHub call for a pull request's run, two for a branch run (the default branch is
cached per container for five minutes), and the issuer's keys once per container. While GitHub
is down or rate-limited the request is held back and verified again (modelrun.domain.redelivery):
one lookup per delivery, at most 18.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from modelrun.config import SubmitSettings
from modelrun.contracts import CleanupRequest, RunRequest
from modelrun.domain import evidence
from modelrun.domain.evidence import Verified
from modelrun.errors import Unverified

if TYPE_CHECKING:
    from modelrun.submission import SubmitDeps


def policy(s: SubmitSettings) -> evidence.Policy:
    return evidence.Policy(
        repositories=s.allowed_repositories,
        approval_environment=s.approval_environment,
        baseline_environment=s.baseline_environment,
    )


def _claims(
    deps: SubmitDeps, message: RunRequest | CleanupRequest, sent_at: float
) -> tuple[evidence.Claims, evidence.Policy]:
    """The token's claims, checked for time and repository, and the policy they were checked by
    (made once per request: the comparison with GitHub's record uses it too)."""
    if message.identity is None:
        raise Unverified("identity: the request carries no OIDC token (no evidence of who sent it)")
    s = deps.settings
    claims = deps.verifier.claims(message.identity.oidc_token)
    evidence.check_token_time(claims, sent_at, s.oidc_max_age_seconds)
    # Before any GitHub call: a repository this stack does not serve is not even looked up.
    rules = policy(s)
    evidence.repository_allowed(claims, rules)
    return claims, rules


def verify_run(deps: SubmitDeps, request: RunRequest, sent_at: float) -> Verified:
    claims, rules = _claims(deps, request, sent_at)
    github = deps.repositories()
    run = github.workflow_run(claims.repository, claims.run_id, claims.run_attempt)
    default = github.default_branch(claims.repository) if claims.event_name != "pull_request" else None
    return evidence.verify_run(request, claims, run, rules, default)


def verify_cleanup(deps: SubmitDeps, request: CleanupRequest, sent_at: float) -> None:
    claims, rules = _claims(deps, request, sent_at)
    run = deps.repositories().workflow_run(claims.repository, claims.run_id, claims.run_attempt)
    evidence.verify_cleanup(request, claims, run, rules)
