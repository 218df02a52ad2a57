"""GitHub behind one small class: the sticky comment and the commit status.

githubkit is the client; its own retries are off, because a POST that failed with a 5xx may
still have landed. Retrying is the state machine's job (its Retry on ``GitHubUnavailable`` and
``GitHubRateLimited``), and a retried write first looks for the comment by its marker, so a
comment is never posted twice. The API base URL comes from ``GITHUB_API_URL`` (GitHub
Enterprise Server works the same way).
"""

from __future__ import annotations

import hashlib
import ssl
import time
from functools import cache
from typing import Any

import httpx
from aws_lambda_powertools.utilities import parameters
from githubkit import AppInstallationAuthStrategy, GitHub, TokenAuthStrategy
from githubkit.exception import RateLimitExceeded, RequestError, RequestFailed

from modelrun.domain.evidence import WorkflowRunFacts
from modelrun.domain.report import MARKER


class GitHubUnavailable(Exception):
    """GitHub answered 5xx or could not be reached: retry later (the state machine backs off)."""


class GitHubRateLimited(Exception):
    """Primary or secondary rate limit, or 429: retry after a while."""


class GitHubRejected(Exception):
    """GitHub refused the request (4xx): retrying will not help."""


def body_sha(body: str) -> str:
    return hashlib.sha256(body.encode()).hexdigest()


@cache
def _client(secret_arn: str, api_url: str) -> tuple[GitHub[Any], str | None]:
    creds: dict[str, Any] = parameters.get_secret(secret_arn, transform="json", max_age=300)  # type: ignore[assignment]
    auth: Any
    if creds.get("app_id"):
        auth = AppInstallationAuthStrategy(
            app_id=creds["app_id"], private_key=creds["private_key"], installation_id=int(creds["installation_id"])
        )
    elif creds.get("token"):
        auth = TokenAuthStrategy(creds["token"])
    else:
        raise GitHubRejected("the GitHub credentials secret holds neither an app nor a token")
    # githubkit opens an httpx client per request outside a `with` block: one TLS context, made
    # once, keeps that cheap. Its HTTP cache is off: every call here is a write or must be fresh.
    client = GitHub(
        auth,
        base_url=api_url,
        auto_retry=False,
        timeout=10.0,
        ssl_verify=_tls_context(),
        http_cache=False,
    )
    return client, creds.get("bot_login")


@cache
def _tls_context() -> ssl.SSLContext:
    return httpx.create_ssl_context()  # what httpx would build per client, built once


def _translate(error: Exception) -> Exception:
    if isinstance(error, RateLimitExceeded):
        return GitHubRateLimited(f"rate limited, retry after {error.retry_after}")
    if isinstance(error, RequestFailed):
        status = error.response.status_code
        if status == 429:
            return GitHubRateLimited("429 Too Many Requests")
        if status >= 500:
            return GitHubUnavailable(f"GitHub answered {status}")
        return GitHubRejected(f"GitHub answered {status}: {error.response.text[:300]}")
    if isinstance(error, RequestError):
        return GitHubUnavailable(f"GitHub unreachable: {type(error).__name__}")
    return error


class PullRequests:
    def __init__(self, secret_arn: str, api_url: str) -> None:
        self.gh, self.bot_login = _client(secret_arn, api_url)

    def _is_ours(self, comment: Any) -> bool:
        body = comment.body or ""
        user = comment.user
        if not body.startswith(MARKER) or user is None:
            return False
        return bool(user.login == self.bot_login if self.bot_login else user.type == "Bot")

    def find_comment(self, repository: str, number: int) -> tuple[int, str] | None:
        owner, repo = repository.split("/", 1)
        try:
            comment: Any
            for comment in self.gh.rest.paginate(
                self.gh.rest.issues.list_comments, owner=owner, repo=repo, issue_number=number, per_page=100
            ):
                if self._is_ours(comment):
                    return comment.id, comment.body or ""
        except (RequestFailed, RequestError) as error:
            raise _translate(error) from error
        return None

    def upsert_comment(self, repository: str, number: int, body: str, comment_id: int | None) -> int:
        """Edit our comment in place, or create it if the PR has none (looked up by marker first)."""
        owner, repo = repository.split("/", 1)
        try:
            if comment_id is None:
                found = self.find_comment(repository, number)
                if found and found[1] == body:
                    return found[0]
                comment_id = found[0] if found else None
            if comment_id is None:
                created = self.gh.rest.issues.create_comment(owner, repo, number, body=body).parsed_data
                return created.id
            self.gh.rest.issues.update_comment(owner, repo, comment_id, body=body)
            return comment_id
        except RequestFailed as error:
            if error.response.status_code == 404 and comment_id is not None:
                # Someone deleted our comment: start a new one.
                return self.upsert_comment(repository, number, body, None)
            raise _translate(error) from error
        except RequestError as error:
            raise _translate(error) from error

    def set_status(self, repository: str, sha: str, state: str, description: str, target_url: str | None) -> None:
        owner, repo = repository.split("/", 1)
        try:
            kwargs: dict[str, Any] = {"state": state, "description": description[:140], "context": "modelrun"}
            if target_url:
                kwargs["target_url"] = target_url
            self.gh.rest.repos.create_commit_status(owner, repo, sha, **kwargs)
        except (RequestFailed, RequestError) as error:
            raise _translate(error) from error


class Repositories:
    """What GitHub says about a repository and its workflow runs: the evidence for a run request.

    Needs the credential's read access to Actions and metadata (GitHub App permissions
    "Actions: read" and "Metadata: read"; a fine-grained token the same)."""

    _DEFAULT_BRANCH_TTL_S = 300

    def __init__(self, secret_arn: str, api_url: str) -> None:
        self.gh, _ = _client(secret_arn, api_url)

    def workflow_run(self, repository: str, run_id: int, attempt: int) -> WorkflowRunFacts:
        owner, repo = repository.split("/", 1)
        try:
            response = self.gh.rest.actions.get_workflow_run_attempt(
                owner, repo, run_id, attempt, exclude_pull_requests=False
            )
        except (RequestFailed, RequestError) as error:
            raise _translate(error) from error
        return WorkflowRunFacts.from_api(dict(response.json()))

    def default_branch(self, repository: str) -> str:
        cached = _default_branches.get(repository.lower())
        if cached and cached[1] > time.monotonic():
            return cached[0]
        owner, repo = repository.split("/", 1)
        try:
            branch = str(self.gh.rest.repos.get(owner, repo).json()["default_branch"])
        except (RequestFailed, RequestError) as error:
            raise _translate(error) from error
        _default_branches[repository.lower()] = (branch, time.monotonic() + self._DEFAULT_BRANCH_TTL_S)
        return branch


# Per container: a repository's default branch rarely changes; five minutes is fresh enough.
_default_branches: dict[str, tuple[str, float]] = {}
