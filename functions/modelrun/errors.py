"""Every exception the functions raise across a module boundary, in one place.

The report state machine matches Lambda errors by class name (its Retry and Catch), and the SQS
handlers sort messages by them (dead-letter, or let SQS deliver again): a name here is part of
the backend's contract, so it has one home. tests/unit/test_errors.py checks that every name the
state machine matches is a class here that the code raises.
"""

from __future__ import annotations

from pydantic import ValidationError


class SettingsInvalid(Exception):
    """The function's environment lacks a variable template.yaml sets, or holds a malformed one:
    raised at cold start (the function's init fails), naming the variables."""


# --- run requests (the submit path) ---------------------------------------------------------


class Rejected(Exception):
    """The request is well-formed but can never run here: it goes to the DLQ with this reason."""


class Unverified(Exception):
    """The request has no evidence, or its body disagrees with it: it goes to the DLQ, unanswered."""


class Duplicate(Exception):
    """Another message counts already for the same token's claims (workflow run and attempt):
    this one is dropped before any GitHub call (issue 21)."""


class IssuerUnavailable(Exception):
    """The OIDC issuer's keys could not be fetched: retry later (not the request's fault)."""


class HeldBack(Exception):
    """The message waits out a transient failure (GitHub or the OIDC issuer down or rate-limited):
    its visibility was extended, and SQS delivers it again after the wait (modelrun.sqs_batch)."""


# --- the runs table and the results bucket --------------------------------------------------


class StaleWrite(Exception):
    """Someone else moved the record first: re-read and decide again."""


class TooLarge(Exception):
    """An object is larger than the reader accepts (a container contract breach)."""


class Unreadable(Exception):
    """An object is there but cannot be read as stored (archived to GLACIER, encrypted with a
    customer key...): what a job wrote makes that file unavailable, never a failed report."""


class ContractError(Exception):
    """The results break the container contract; ``str(error)`` says how, in one line."""


class RunNotFound(Exception):
    """The report state machine names a run the table does not hold."""


# --- GitHub -----------------------------------------------------------------------------------


class Unreachable(Exception):
    """No answer from GitHub: connection refused or reset, TLS failure, or a timeout."""


class PublishBusy(Exception):
    """Another writer holds the target and has not taken this state in yet: try again shortly."""


class GitHubUnavailable(Exception):
    """GitHub answered 5xx, timed out or could not be reached: retry later (the state machine backs off)."""


class GitHubRateLimited(Exception):
    """A primary or secondary rate limit (403 or 429): retry after ``retry_after`` seconds at the
    earliest (the state machine waits at least a minute and backs off)."""

    def __init__(self, message: str, retry_after: float = 60.0) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class GitHubRejected(Exception):
    """GitHub refused the request for good: retrying will not help (the alert names the cause)."""


class GitHubBadCredentials(GitHubRejected):
    """401: the stack's credential is wrong, expired or revoked."""


class GitHubForbidden(GitHubRejected):
    """403 that is not a rate limit: the credential lacks a permission (or the repository blocks it)."""


class GitHubNotFound(GitHubRejected):
    """404: the pull request, commit or repository is gone (or invisible to the credential)."""


class GitHubInvalid(GitHubRejected):
    """422 (or another 4xx): GitHub found the request itself invalid."""


class GitHubCredentialsBroken(GitHubBadCredentials):
    """The credentials secret is missing or malformed, or GitHub refuses to exchange the App's
    JWT for an installation token (or to find a repository's installation): fix the secret
    (README: "The GitHub credentials the backend uses") or install the App. Raised before any
    other request, and never retried: it is no outage."""


# --- how a validation error is said -----------------------------------------------------------


def validation_problems(error: ValidationError, *, show_input: bool = False) -> list[str]:
    """One ``field: what is wrong`` per problem (``(message)`` when the whole value is wrong);
    ``show_input`` adds what was given, shortened (for a person at a terminal, not for logs)."""
    problems = []
    for e in error.errors(include_url=False):
        line = f"{'.'.join(str(p) for p in e['loc']) or '(message)'}: {e['msg']}"
        if show_input:
            got = repr(e.get("input"))
            line += f" (got {got if len(got) <= 80 else got[:77] + '...'})"
        problems.append(line)
    return problems


def describe(error: ValidationError) -> str:
    """Every problem on one line, as a dead-lettered message's reason says it."""
    return "; ".join(validation_problems(error))
