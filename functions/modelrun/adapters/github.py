"""GitHub behind one small class: the sticky comment, the check run and the commit status.

The client is adapters/github_client.py (gidgethub's sans-I/O core over urllib3), imported
only when a GitHub call is made. It never retries, because a POST that failed with a 5xx may
still have landed. Retrying is the state machine's job (its Retry on ``GitHubUnavailable`` and
``GitHubRateLimited``; ``classify`` decides which answers are worth it), and a retried write
first looks for the comment by its marker, so a comment is never posted twice. The API base
URL comes from ``GITHUB_API_URL`` (GitHub Enterprise Server works the same way).
"""

from __future__ import annotations

import base64
import hashlib
import re
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.utilities import parameters
from aws_lambda_powertools.utilities.parameters.exceptions import TransformParameterError

from modelrun.domain.evidence import WorkflowRunFacts
from modelrun.domain.report import CHECK_NAME, MARKER
from modelrun.errors import (
    GitHubBadCredentials,
    GitHubCredentialsBroken,
    GitHubForbidden,
    GitHubInvalid,
    GitHubNotFound,
    GitHubRateLimited,
    GitHubRejected,
    GitHubUnavailable,
    Unreachable,
)

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey

    from modelrun.adapters.github_client import GitHubClient


# GitHub's words for its secondary limits ("You have exceeded a secondary rate limit", and the
# older "abuse detection mechanism").
_SECONDARY = re.compile(r"secondary rate limit|abuse", re.IGNORECASE)
SECONDARY_MIN_WAIT_S = 60.0  # GitHub: without Retry-After, wait at least one minute


def classify(status: int, headers: Mapping[str, str], message: str, now: float | None = None) -> Exception:
    """The exception for one GitHub error answer, by what GitHub documents
    (docs.github.com/rest/using-the-rest-api/rate-limits-for-the-rest-api and
    .../troubleshooting-the-rest-api): which ones to retry, and when.

    - ``Retry-After`` on a 403 or 429: a secondary rate limit; wait that long.
    - ``x-ratelimit-remaining: 0`` on a 403 or 429: the primary limit; wait until ``x-ratelimit-reset``.
    - a 403 or 429 whose message names a secondary limit (or abuse), or any 429: a secondary
      limit without ``Retry-After``; wait at least a minute.
    - 5xx (and 408): GitHub is unwell; retry with backoff.
    - 401, other 403s, 404, 422 and other 4xx: retrying will not help; fail with the cause.
    """
    lower = {k.lower(): v for k, v in headers.items()}
    text = message[:300]
    if status in (403, 429):
        retry_after = lower.get("retry-after", "")
        if retry_after.strip().isdigit():
            wait_s = float(retry_after)
            return GitHubRateLimited(f"secondary rate limit ({status}), retry after {retry_after} s", wait_s)
        if lower.get("x-ratelimit-remaining") == "0":
            reset = lower.get("x-ratelimit-reset", "")
            clock = time.time() if now is None else now
            wait = max(float(reset) - clock, 1.0) if reset.strip().isdigit() else SECONDARY_MIN_WAIT_S
            if _SECONDARY.search(message):
                wait = max(wait, SECONDARY_MIN_WAIT_S)
            return GitHubRateLimited(f"rate limit exhausted ({status}), resets in {wait:.0f} s", wait)
        if status == 429 or _SECONDARY.search(message):
            return GitHubRateLimited(
                f"secondary rate limit ({status}) without Retry-After: wait at least a minute", SECONDARY_MIN_WAIT_S
            )
        return GitHubForbidden(f"GitHub answered 403 (missing permission?): {text}")
    if status >= 500 or status == 408:
        return GitHubUnavailable(f"GitHub answered {status}")
    if status == 401:
        return GitHubBadCredentials(f"GitHub answered 401 (bad or expired credentials): {text}")
    if status == 404:
        return GitHubNotFound(f"GitHub answered 404 (gone, or not visible to the credential): {text}")
    return GitHubInvalid(f"GitHub answered {status}: {text}")


def body_sha(body: str) -> str:
    return hashlib.sha256(body.encode()).hexdigest()


# An installation token is renewed this long before it expires: longer than any function runs
# (120 s at most), so the token an invocation starts with outlives it. GitHub's last an hour.
_RENEW_BEFORE_EXPIRY_S = 300.0


@dataclass
class _Session:
    """The clients for one secret's credentials. With a GitHub App, ``app`` signs the App's JWTs
    and exchanges them for the installation token that ``client`` carries: the secret's
    ``installation_id``'s, or, without one, each repository's installation's (found with the
    App's JWT and kept per container, as are their tokens)."""

    secret: dict[str, Any] | None = None  # what the clients were made from
    bot_login: str | None = None
    client: GitHubClient | None = None
    app: GitHubClient | None = None
    app_id: str = ""
    installation_id: int = 0  # the secret's; 0: each repository's own
    private_key: RSAPrivateKey | None = None  # the App's, loaded once, to sign its JWTs
    renew_at: float = 0.0  # time.time() after which the installation token is renewed
    lock: threading.Lock = field(default_factory=threading.Lock)
    installation_of: dict[str, int] = field(default_factory=dict)  # repository (lower case) -> installation
    installation_clients: dict[int, tuple[GitHubClient, float]] = field(default_factory=dict)  # -> client, renew_at


@cache
def _session(secret_arn: str, api_url: str) -> _Session:
    return _Session()  # filled in by _client, per container


def _client(secret_arn: str, api_url: str) -> tuple[GitHubClient, str | None]:
    """The client for the secret's credentials, and the bot's login if the secret names it.

    The secret is read as Powertools caches it (five minutes), so a fixed or rotated secret is
    taken up without a cold start. Credentials that cannot work raise GitHubCredentialsBroken
    here, before any request: at the token exchange the same faults could pass for an outage
    and be retried for hours."""
    try:
        creds = parameters.get_secret(secret_arn, transform="json", max_age=300)
    except TransformParameterError:
        raise GitHubCredentialsBroken(f"the GitHub credentials secret {secret_arn} is not JSON") from None
    if not isinstance(creds, dict):
        raise GitHubCredentialsBroken(f"the GitHub credentials secret {secret_arn} is not a JSON object")
    session = _session(secret_arn, api_url)
    with session.lock:
        if session.secret != creds:
            _configure(session, creds, api_url)
        if session.app is not None and session.installation_id and time.time() >= session.renew_at:
            session.client, session.renew_at = _installation_client(session, session.installation_id)
        assert session.client is not None
        return session.client, session.bot_login


def _configure(session: _Session, creds: dict[str, Any], api_url: str) -> None:
    from modelrun.adapters.github_client import GitHubClient, PerRepositoryClient

    session.secret, session.client, session.app, session.renew_at = None, None, None, 0.0
    session.installation_of, session.installation_clients = {}, {}
    app_fields = ("app_id", "private_key")
    if any(creds.get(k) for k in (*app_fields, "installation_id")):
        missing = [k for k in app_fields if not creds.get(k)]
        if missing:
            raise GitHubCredentialsBroken(f"the GitHub App credentials in the secret lack {', '.join(missing)}")
        app_id = str(creds["app_id"])
        try:
            # Optional: without it, each repository's installation is looked up (any owner).
            installation_id = int(creds.get("installation_id") or 0)
        except (TypeError, ValueError):
            raise GitHubCredentialsBroken(
                "installation_id in the secret must be the installation's number (the end of its settings URL)"
            ) from None
        # Loaded once here, and kept to sign with (each load checks the key, some 70 ms): a key
        # that is not a PEM RSA private key fails now, with its reason. cryptography (the JWT
        # layer's) loads only for an App.
        from cryptography.exceptions import UnsupportedAlgorithm
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import rsa

        try:
            key = serialization.load_pem_private_key(str(creds["private_key"]).encode(), password=None)
        except (TypeError, ValueError, UnsupportedAlgorithm) as error:
            problem = str(error).split("\n")[0]  # cryptography's reason, never the key itself
            raise _not_an_rsa_key(app_id, problem) from None
        if not isinstance(key, rsa.RSAPrivateKey):
            raise _not_an_rsa_key(app_id, f"a {type(key).__name__}, not RSA")
        # The App's JWT is signed afresh for each token exchange (about once an hour): no cache.
        session.app = GitHubClient(api_url)
        session.app_id, session.installation_id, session.private_key = app_id, installation_id, key
        if not installation_id:
            app = session.app
            session.client = PerRepositoryClient(app, lambda repository: _repository_client(session, repository))
    elif creds.get("token"):
        session.client = GitHubClient(api_url, oauth_token=str(creds["token"]))
    else:
        raise GitHubCredentialsBroken(
            "the GitHub credentials secret holds neither an App (app_id, private_key) nor a token"
        )
    session.bot_login = creds.get("bot_login") or None
    session.secret = dict(creds)


def _not_an_rsa_key(app_id: str, problem: str) -> GitHubCredentialsBroken:
    return GitHubCredentialsBroken(
        f"the private_key of GitHub App {app_id} in the secret is not a PEM RSA private key "
        f"(the .pem file GitHub generates): {problem}"
    )


def _installation_client(session: _Session, installation_id: int) -> tuple[GitHubClient, float]:
    """A client on a fresh token of the installation, and when to renew it."""
    from modelrun.adapters.github_client import installation_token

    assert session.app is not None and session.private_key is not None
    try:
        token, expires_at = installation_token(session.app, session.app_id, installation_id, session.private_key)
    except _errors() as error:
        translated = _translate(error)
        if isinstance(translated, GitHubRejected):
            # 401 (JWT refused: wrong key or app id), 404 (no such installation of this app),
            # 403 (installation suspended): the secret, or the App's installation, needs fixing.
            raise GitHubCredentialsBroken(
                f"GitHub refused an installation token for GitHub App {session.app_id}, installation "
                f"{installation_id} ({translated}): check app_id, installation_id and private_key "
                "in the secret, and that the App is installed"
            ) from error
        raise translated from error  # an outage or a rate limit: retried like any other call
    expires = datetime.fromisoformat(expires_at.replace("Z", "+00:00")).timestamp()
    return session.app.with_token(token), expires - _RENEW_BEFORE_EXPIRY_S


def _repository_client(session: _Session, repository: str) -> GitHubClient:
    """The client on the token of ``repository``'s installation (a secret without an
    installation_id): the installation found once per container, its token renewed as above."""
    from modelrun.adapters.github_client import repository_installation

    assert session.app is not None and session.private_key is not None
    key = repository.lower()
    with session.lock:
        installation_id = session.installation_of.get(key)
        if installation_id is None:
            try:
                installation_id = repository_installation(session.app, session.app_id, repository, session.private_key)
            except _errors() as error:
                translated = _translate(error)
                if isinstance(translated, GitHubRejected):
                    raise GitHubCredentialsBroken(
                        f"GitHub App {session.app_id} finds no installation on {repository} ({translated}): "
                        "install the App on it (or check app_id and private_key in the secret)"
                    ) from error
                raise translated from error
            session.installation_of[key] = installation_id
        client, renew_at = session.installation_clients.get(installation_id, (None, 0.0))
        if client is None or time.time() >= renew_at:
            try:
                client, renew_at = _installation_client(session, installation_id)
            except GitHubCredentialsBroken:
                del session.installation_of[key]  # reinstalled? look it up again next time
                raise
            session.installation_clients[installation_id] = (client, renew_at)
        return client


def _errors() -> tuple[type[Exception], ...]:
    """What a GitHub call raises: an error answer (gidgethub's, its status and headers kept) or
    no answer at all. Imported when a call is made, as the client is."""
    from gidgethub import HTTPException

    return HTTPException, Unreachable


def _translate(error: Exception) -> Exception:
    """The client's exception as one of ours. gidgethub's own rate-limit detection is not
    enough: it misses a secondary limit that comes as a 403 without ``Retry-After`` (remaining
    above 0), so every error answer is classified from its status, headers and message here."""
    from gidgethub import HTTPException

    if isinstance(error, HTTPException):
        return classify(int(error.status_code), error.headers, str(error))
    if isinstance(error, Unreachable):
        return GitHubUnavailable(f"GitHub unreachable: {error}")
    return error


@contextmanager
def _translated() -> Iterator[None]:
    """Around one GitHub call: what it raises comes out as one of ours (``_translate``)."""
    try:
        yield
    except _errors() as error:
        raise _translate(error) from error


_CHECK_RUNS_OF_REF = "/repos/{owner}/{repo}/commits/{ref}/check-runs{?check_name,filter,per_page}"


class PullRequests:
    """The calls the ordered writes make (modelrun.publishing), on one secret's credentials:
    made per use (modelrun.ports.GitHub), so the secret is read, as Powertools caches it, then."""

    def __init__(self, secret_arn: str, api_url: str) -> None:
        self.gh, self.bot_login = _client(secret_arn, api_url)
        # Only GitHub Apps can write check runs: with a token the commit status carries the result.
        self.uses_app = _session(secret_arn, api_url).app is not None

    def _is_ours(self, comment: Mapping[str, Any]) -> bool:
        body = comment.get("body") or ""
        user = comment.get("user")
        if not body.startswith(MARKER) or not isinstance(user, dict):
            return False
        return bool(user.get("login") == self.bot_login if self.bot_login else user.get("type") == "Bot")

    def find_comment(self, repository: str, number: int) -> tuple[int, str] | None:
        owner, repo = repository.split("/", 1)
        where = {"owner": owner, "repo": repo, "number": number, "per_page": 100}
        with _translated():
            for comment in self.gh.getiter("/repos/{owner}/{repo}/issues/{number}/comments{?per_page}", where):
                if self._is_ours(comment):
                    return int(comment["id"]), str(comment.get("body") or "")
        return None

    def create_comment(self, repository: str, number: int, body: str) -> int:
        """Post a new comment on the PR (issue) ``number``, without looking for ours first; its id."""
        owner, repo = repository.split("/", 1)
        where = {"owner": owner, "repo": repo, "number": number}
        with _translated():
            created = self.gh.post("/repos/{owner}/{repo}/issues/{number}/comments", where, data={"body": body})
        return int(created["id"])

    def update_comment(self, repository: str, comment_id: int, body: str) -> bool:
        """Edit our comment in place; False if GitHub no longer has it (someone deleted it)."""
        owner, repo = repository.split("/", 1)
        where = {"owner": owner, "repo": repo, "comment_id": comment_id}
        try:
            with _translated():
                self.gh.patch("/repos/{owner}/{repo}/issues/comments/{comment_id}", where, data={"body": body})
        except GitHubNotFound:
            return False
        return True

    def set_status(self, repository: str, sha: str, state: str, description: str, target_url: str | None) -> None:
        owner, repo = repository.split("/", 1)
        kwargs: dict[str, Any] = {"state": state, "description": description[:140], "context": "modelrun"}
        if target_url:
            kwargs["target_url"] = target_url
        with _translated():
            self.gh.post(
                "/repos/{owner}/{repo}/statuses/{sha}", {"owner": owner, "repo": repo, "sha": sha}, data=kwargs
            )

    def create_check_run(self, repository: str, head_sha: str, external_id: str, body: Mapping[str, Any]) -> int:
        """A new ``modelrun`` check run on ``head_sha``; its id."""
        owner, repo = repository.split("/", 1)
        data = {"name": CHECK_NAME, "head_sha": head_sha, "external_id": external_id, **body}
        with _translated():
            created = self.gh.post("/repos/{owner}/{repo}/check-runs", {"owner": owner, "repo": repo}, data=data)
        return int(created["id"])

    def update_check_run(self, repository: str, check_run_id: int, body: Mapping[str, Any]) -> bool:
        """Update the check run; False if GitHub no longer has it (the caller creates a new one)."""
        owner, repo = repository.split("/", 1)
        where = {"owner": owner, "repo": repo, "check_run_id": check_run_id}
        try:
            with _translated():
                self.gh.patch("/repos/{owner}/{repo}/check-runs/{check_run_id}", where, data=dict(body))
        except GitHubNotFound:
            return False
        return True

    def file_at(self, repository: str, path: str, ref: str, limit: int) -> bytes | None:
        """A file's bytes at ``ref`` (a commit SHA or a branch); None when there is none there
        (404). GitHub's contents API; a directory, a symlink or a file over ``limit`` bytes
        raises GitHubInvalid (needs "Contents: read")."""
        owner, repo = repository.split("/", 1)
        where = {"owner": owner, "repo": repo, "path": path, "ref": ref}
        try:
            with _translated():
                found = self.gh.getitem("/repos/{owner}/{repo}/contents/{+path}{?ref}", where)
        except GitHubNotFound:
            return None
        if not isinstance(found, dict) or found.get("type") != "file":
            raise GitHubInvalid(f"{path} is not a file")
        if int(found.get("size") or 0) > limit or found.get("encoding") != "base64":
            raise GitHubInvalid(f"{path} is larger than {limit:,} bytes")
        return base64.b64decode(str(found.get("content") or ""))

    def find_check_run(self, repository: str, head_sha: str, external_id: str) -> int | None:
        """The id of the ``modelrun`` check run on ``head_sha`` whose ``external_id`` is the run's
        id (the newest, should there be several), or None. Asked only after a create whose answer
        was lost, so that the retry updates the check run GitHub may hold instead of creating a
        second. GitHub filters by name; the external id is matched here (no filter for it)."""
        owner, repo = repository.split("/", 1)
        where = {
            "owner": owner,
            "repo": repo,
            "ref": head_sha,
            "check_name": CHECK_NAME,
            "filter": "all",
            "per_page": 100,
        }
        with _translated():
            runs = self.gh.getiter(_CHECK_RUNS_OF_REF, where, key="check_runs")
            found = [int(r["id"]) for r in runs if r.get("external_id") == external_id]
        return max(found) if found else None


class Repositories:
    """What GitHub says about a repository and its workflow runs: the evidence for a run request.

    Needs the credential's read access to Actions and metadata (GitHub App permissions
    "Actions: read" and "Metadata: read"; a fine-grained token the same)."""

    _DEFAULT_BRANCH_TTL_S = 3600  # every PR run needs it (issue 21); it rarely changes
    _WORKFLOW_RUN_TTL_S = 300

    def __init__(self, secret_arn: str, api_url: str) -> None:
        self.gh, _ = _client(secret_arn, api_url)

    def workflow_run(self, repository: str, run_id: int, attempt: int) -> WorkflowRunFacts:
        key = (repository.lower(), run_id, attempt)
        cached = _workflow_runs.get(key)
        if cached and cached[1] > time.monotonic():
            return cached[0]
        owner, repo = repository.split("/", 1)
        where = {"owner": owner, "repo": repo, "run_id": run_id, "attempt": attempt, "exclude_pull_requests": "false"}
        with _translated():
            run = self.gh.getitem(
                "/repos/{owner}/{repo}/actions/runs/{run_id}/attempts/{attempt}{?exclude_pull_requests}", where
            )
        facts = WorkflowRunFacts.from_api(dict(run))
        if len(_workflow_runs) >= _WORKFLOW_RUNS_KEPT:
            _workflow_runs.clear()
        _workflow_runs[key] = (facts, time.monotonic() + self._WORKFLOW_RUN_TTL_S)
        return facts

    def default_branch(self, repository: str) -> str:
        cached = _default_branches.get(repository.lower())
        if cached and cached[1] > time.monotonic():
            return cached[0]
        owner, repo = repository.split("/", 1)
        with _translated():
            branch = str(self.gh.getitem("/repos/{owner}/{repo}", {"owner": owner, "repo": repo})["default_branch"])
        _default_branches[repository.lower()] = (branch, time.monotonic() + self._DEFAULT_BRANCH_TTL_S)
        return branch


# Per container: a repository's default branch rarely changes; an hour is fresh enough.
_default_branches: dict[str, tuple[str, float]] = {}
# Per container, five minutes: an attempt's head and event never change, and a redelivered or
# duplicated request (issue 21) costs no second lookup.
_workflow_runs: dict[tuple[str, int, int], tuple[WorkflowRunFacts, float]] = {}
_WORKFLOW_RUNS_KEPT = 1000
