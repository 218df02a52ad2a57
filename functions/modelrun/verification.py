"""The submit path's first step: a message's evidence, checked before anything is written.

The token proves the job (repository, event, ref, run id and attempt, environment, actor); GitHub's
API, asked with the stack's own credential, supplies what the token lacks (a pull request's
number, head and base commit) and the repository's default branch (a branch run's base, the only
base a pull request's run may have). Costs per request: one GitHub call (the workflow run,
cached five minutes), the default branch once per container, repository and hour, and the
issuer's keys once per container. While GitHub is down or rate-limited the request is held back
and verified again (modelrun.domain.redelivery): one lookup per delivery, at most 18.

Before any GitHub call (issue 21): one message counts per token's claims (the workflow run and
attempt; a duplicate is dropped, whatever its token), a repository's distinct requests are
counted per hour (over the limit: dead-lettered with the reason), and a message's send time is
SQS's, or the time the submit function itself first received the same body (remembered when it
dead-lettered it), never a time the message claims.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from modelrun.config import SubmitSettings
from modelrun.contracts import CleanupRequest, RunRequest
from modelrun.domain import evidence
from modelrun.domain.evidence import Verified
from modelrun.errors import Duplicate, Rejected, Unverified

if TYPE_CHECKING:
    from modelrun.submission import SubmitDeps


def policy(s: SubmitSettings) -> evidence.Policy:
    return evidence.Policy(
        repositories=s.allowed_repositories,
        approval_environment=s.approval_environment,
        baseline_environment=s.baseline_environment,
        workflow_paths=s.workflow_paths,
        pinned_workflow=s.pinned_workflow,
    )


HOUR = 3600


@dataclass(frozen=True)
class Receipt:
    """The message as SQS delivered it: its id (the message that counts for its token's claims)
    and its body's SHA-256 (under which its first receipt is remembered)."""

    message_id: str
    digest: str


def _token_time(deps: SubmitDeps, claims: evidence.Claims, sent_at: float, receipt: Receipt | None) -> None:
    limit = deps.settings.oidc_max_age_seconds
    try:
        evidence.check_token_time(claims, sent_at, limit)
    except Unverified:
        # A redriven message: believed only as of when this function itself first received the
        # same body (token included), which it remembered when it dead-lettered it.
        first = deps.gate.first_sent(receipt.digest) if receipt is not None else None
        if first is None or first >= sent_at:
            raise
        evidence.check_token_time(claims, first, limit)


def _gate(deps: SubmitDeps, kind: str, claims: evidence.Claims, receipt: Receipt) -> None:
    """One message counts per token's claims; a repository's distinct requests per hour are capped."""
    repository = claims.repository.lower()
    if not deps.gate.claim(f"{kind}#{repository}#{claims.run_id}#{claims.run_attempt}", receipt.message_id):
        raise Duplicate(f"{kind} of workflow run {claims.run_id} attempt {claims.run_attempt} counts already")
    limit = deps.settings.max_requests_per_repository_hour
    if deps.gate.count(f"requests#{repository}", HOUR) > limit:
        raise Rejected(
            f"rate limit: {claims.repository} sent more than {limit} run requests this hour "
            "(MaxRequestsPerRepositoryHour); redrive it later (modelrun redrive)"
        )


def _claims(
    deps: SubmitDeps, message: RunRequest | CleanupRequest, sent_at: float, receipt: Receipt | None
) -> tuple[evidence.Claims, evidence.Policy]:
    """The token's claims, checked for time and repository and counted once, and the policy
    they were checked by (made once per request: the comparison with GitHub's record uses it too)."""
    if message.identity is None:
        raise Unverified("identity: the request carries no OIDC token (no evidence of who sent it)")
    s = deps.settings
    claims = deps.verifier.claims(message.identity.oidc_token)
    _token_time(deps, claims, sent_at, receipt)
    # Before any GitHub call: a repository this stack does not serve, or a job of another
    # workflow than the pinned one, is not even looked up.
    rules = policy(s)
    evidence.repository_allowed(claims, rules)
    evidence.workflow_pinned(claims, rules)
    if receipt is not None:
        _gate(deps, "cleanup" if isinstance(message, CleanupRequest) else "run", claims, receipt)
    return claims, rules


def verify_run(deps: SubmitDeps, request: RunRequest, sent_at: float, receipt: Receipt | None = None) -> Verified:
    claims, rules = _claims(deps, request, sent_at, receipt)
    github = deps.repositories()
    run = github.workflow_run(claims.repository, claims.run_id, claims.run_attempt)
    default = github.default_branch(claims.repository)  # cached per container for an hour
    return evidence.verify_run(request, claims, run, rules, default)


def verify_cleanup(deps: SubmitDeps, request: CleanupRequest, sent_at: float, receipt: Receipt | None = None) -> None:
    claims, rules = _claims(deps, request, sent_at, receipt)
    run = deps.repositories().workflow_run(claims.repository, claims.run_id, claims.run_attempt)
    evidence.verify_cleanup(request, claims, run, rules)
