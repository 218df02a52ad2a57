"""A local, stateful GitHub REST endpoint for the few calls modelrun makes.

Every request is routed and checked by GitHub's published OpenAPI description (``github_spec``),
so code that passes here sends requests GitHub would accept. Answers are GitHub's shapes
(``github_documents``) from the state ``github_state`` keeps, with Link pagination and GitHub's
error bodies, and can themselves be checked against the description's response schemas
(``LocalGitHub(check_responses=True)``).

Credentials are checked as GitHub checks them (``github_auth``): a fixed token (``token``, None
for none), or the App's JWT (``app_credentials()`` gives what the secret holds) exchanged for an
installation token that expires (``installation_token_ttl``, ``expire_installation_tokens()``);
each recorded request names the credential it was accepted with, and when it was answered.
``api_path=ENTERPRISE_API_PATH`` serves the API under ``/api/v3`` as GitHub Enterprise Server
does (``url`` then ends with it; the OIDC issuer stays at the server's root, ``/_services/token``).

Usage::

    with LocalGitHub() as gh:
        os.environ["GITHUB_API_URL"] = gh.url
        ...
        assert gh.comments("octo/repo", 7)[0]["body"].startswith("<!-- modelrun -->")
"""

from __future__ import annotations

import hashlib
import json
import secrets
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from types import TracebackType
from typing import Any, Self

from cryptography.hazmat.primitives.asymmetric import rsa
from werkzeug.datastructures import Headers
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

from modelrun_local import oidc_issuer
from modelrun_local.github_auth import APP_JWT_OPERATIONS, INSTALLATION_TOKEN_TTL, Credentials, bearer
from modelrun_local.github_documents import Documents, stable_id
from modelrun_local.github_spec import (
    DOCS,
    Rejected,
    check_request,
    error_body,
    github_description,
)
from modelrun_local.github_state import Environment, GitHubState
from modelrun_local.oidc_issuer import LocalIssuer

# github_description too: the local GitHub's tests take the description it serves from here.
__all__ = [
    "ENTERPRISE_API_PATH",
    "Environment",
    "LocalGitHub",
    "RecordedRequest",
    "github_description",
]

_WRITE_METHODS = frozenset({"post", "put", "patch", "delete"})
# API versions GitHub accepts in X-GitHub-Api-Version.
SUPPORTED_API_VERSIONS = frozenset({"2022-11-28", "2026-03-10"})
# Where GitHub Enterprise Server serves the REST API: https://HOST/api/v3/...
ENTERPRISE_API_PATH = "/api/v3"
Fault = tuple[int, int | None]  # status, Retry-After seconds


@dataclass(frozen=True)
class RecordedRequest:
    """One request the endpoint answered, for counting API calls and spotting rejects."""

    method: str  # upper case, as sent
    path: str
    status: int
    write: bool  # POST/PUT/PATCH/DELETE
    operation: str | None = None  # GitHub's operationId, e.g. "issues/create-comment"
    rejected: bool = False  # refused by auth or validation, or not an endpoint here
    injected: bool = False  # answered by fail_next()
    reason: str | None = None
    # The credential that was accepted: "token" (the fixed token), "user" (a person's token),
    # "installation" (an installation token), "app" (an App JWT); None when none was.
    auth: str | None = None
    # time.monotonic() as the answer was recorded: when its change (if any) had been applied.
    answered_at: float = field(default=0.0, compare=False)


class _QuietHandler(WSGIRequestHandler):
    # requests are recorded in LocalGitHub.requests; an access log line each would drown test output
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass


def _fault_answer(status: int, retry_after: int | None) -> tuple[dict[str, Any], dict[str, str]]:
    """What GitHub answers in an outage (5xx) or at a rate limit (403, 429)."""
    headers: dict[str, str] = {}
    if retry_after is not None:
        headers["Retry-After"] = str(retry_after)
    if status in (403, 429):
        # GitHub's secondary rate limit answer; clients look for "secondary rate" and Retry-After.
        message = (
            "You have exceeded a secondary rate limit. Please wait a few minutes before you try again. "
            "If you reach out to GitHub Support for help, please include the request ID."
        )
        docs = (
            "https://docs.github.com/rest/using-the-rest-api/rate-limits-for-the-rest-api#about-secondary-rate-limits"
        )
        return error_body(message, docs, status), headers
    if status >= 500:
        return {"message": "Server Error"}, headers
    return error_body("Injected failure", DOCS, status), headers


class LocalGitHub:
    """A GitHub REST endpoint on 127.0.0.1 (WSGI on a background thread), with inspectable state."""

    def __init__(
        self,
        *,
        token: str | None = "local-token",  # noqa: S107 - a local fake, not a secret
        bot_login: str = "modelrun[bot]",
        check_responses: bool = False,
        app_id: int | None = None,
        installation_id: int | None = None,
        app_key: rsa.RSAPrivateKey | None = None,
        installation_token_ttl: timedelta = INSTALLATION_TOKEN_TTL,
        api_path: str = "",
    ) -> None:
        """``token``: a fixed token the REST endpoints accept (None: only installation tokens).
        The App (``bot_login``'s) signs its JWTs with ``app_key`` (made here if not given) and is
        installed once, as ``installation_id``. ``api_path``: where the REST API is served,
        ``ENTERPRISE_API_PATH`` as on GitHub Enterprise Server; ``url`` includes it."""
        if api_path and (not api_path.startswith("/") or api_path.endswith("/")):
            raise ValueError(f"api_path must start with / and not end with one: {api_path!r}")
        self.bot_login = bot_login
        slug = bot_login.removesuffix("[bot]")
        self.app_id = app_id if app_id is not None else stable_id("app:" + slug)
        self.installation_id = installation_id if installation_id is not None else stable_id("installation:" + slug)
        self.credentials = Credentials(
            token,
            self.app_id,
            self.installation_id,
            app_key or rsa.generate_private_key(public_exponent=65537, key_size=2048),
            installation_token_ttl,
        )
        self.api_path = api_path
        # When set, every answer is also checked against the description's response schema;
        # failures land in ``response_errors`` (tests assert it stays empty).
        self.check_responses = check_responses
        self.response_errors: list[str] = []
        self.requests: list[RecordedRequest] = []
        self.server_url = ""  # http://127.0.0.1:PORT, the web server's root
        self.url = ""  # the REST API's base URL (GITHUB_API_URL): server_url + api_path
        self.state = GitHubState(Documents(lambda: self.url, bot_login, self.app_id), self.credentials)
        self._lock = self.state.lock
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None
        self._faults: list[Fault] = []
        self._operation_faults: dict[str, list[Fault]] = {}
        self._latency_of: Callable[[str], float] | None = None
        self._rate_remaining = 5000
        # GitHub Actions' OIDC issuer for the jobs started by actions_job().
        self.issuer = LocalIssuer()
        # The subject customizations the API sets (PUT …/actions/oidc/customization/sub), the
        # repositories' and the organisations' templates.
        self.issuer.subjects = self.state.oidc_subjects
        self.issuer.organization_subjects = self.state.organization_oidc_subjects

    @property
    def token(self) -> str | None:
        return self.credentials.token

    @property
    def default_branch(self) -> str:
        return self.state.default_branch

    @default_branch.setter
    def default_branch(self, branch: str) -> None:
        self.state.default_branch = branch

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self) -> LocalGitHub:
        if self._server is not None:
            return self
        github_description()  # load before serving, so the first request is not the slow one
        self._server = make_server("127.0.0.1", 0, self._wsgi, threaded=True, request_handler=_QuietHandler)
        self.server_url = f"http://127.0.0.1:{self._server.server_port}"
        self.url = self.server_url + self.api_path
        # The OIDC issuer hangs off the server's root, beside /api/v3 on Enterprise Server.
        self.issuer.bind(self.server_url)
        # A short poll interval: shutdown() waits up to one interval, 0.5 s by default.
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.02},
            name="local-github",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None
        self._thread = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # -- state, for tests and the local runtime ------------------------------------------------

    def comments(self, repo: str, number: int) -> list[dict[str, Any]]:
        return self.state.comments(repo, number)

    def statuses(self, repo: str, sha: str) -> list[dict[str, Any]]:
        """Commit statuses in the order they were created (GitHub lists them newest first)."""
        return self.state.statuses(repo, sha)

    def check_runs(self, repo: str, sha: str) -> list[dict[str, Any]]:
        return self.state.check_runs(repo, sha)

    def put_file(self, repo: str, ref: str, path: str, data: bytes) -> None:
        """A file in the repository at ``ref`` (a commit SHA or a branch), as the contents API serves it."""
        self.state.put_file(repo, ref, path, data)

    def install(self, owner: str) -> int:
        """Install the App on ``owner``'s repositories as an installation of its own (a
        repository's lookup then finds it, and only its tokens reach them); its id."""
        installation_id = stable_id("installation:" + owner.lower())
        self.credentials.add_installation(owner, installation_id)
        return installation_id

    def uninstall(self, repository: str, *, installed: bool = False) -> None:
        """Leave ``owner/name`` out of the App's installation (``installed``: put it back):
        the App's lookup of its installation finds none, and installation tokens do not reach it."""
        with self._lock:
            if installed:
                self.credentials.uninstalled.discard(repository.lower())
            else:
                self.credentials.uninstalled.add(repository.lower())

    def user_token(self, login: str = "octo-admin") -> str:
        """A person's token (as `gh auth token` prints one): it reads what its holder may, here
        every repository, and writes no check run (only an App may)."""
        return self.credentials.user_token(login)

    def put_environment(self, repository: str, name: str, environment: Environment) -> None:
        """Create or replace an environment of the repository."""
        self.state.put_environment(repository, name, environment)

    def delete_environment(self, repository: str, name: str) -> None:
        self.state.delete_environment(repository, name)

    def set_variable(self, repository: str, name: str, value: str | None) -> None:
        """A repository's Actions variable (None deletes it)."""
        self.state.set_variable(repository, name, value)

    def app_credentials(self) -> dict[str, str]:
        """The App's credentials as the README stores them in the secret (ids as strings, the
        private key as the PEM file GitHub lets an App owner download)."""
        return self.credentials.app_secret()

    def expire_installation_tokens(self) -> int:
        """Every installation token issued so far expires now (as an hour later); returns how many."""
        return self.credentials.expire_installation_tokens()

    def requests_since(self, start: int) -> list[RecordedRequest]:
        """The requests answered after the first ``start`` (``len(requests)`` taken earlier)."""
        with self._lock:
            return self.requests[start:]

    def api_calls(self, *, writes_only: bool = False) -> int:
        """How many requests were answered (fault-injected ones included: a client sent them)."""
        with self._lock:
            return sum(1 for r in self.requests if r.write or not writes_only)

    # -- faults --------------------------------------------------------------------------------

    def fail_next(self, n: int, status: int = 502, retry_after: int | None = None) -> None:
        """The next ``n`` requests answer ``status`` and change nothing (an outage or a rate limit)."""
        with self._lock:
            self._faults.extend([(status, retry_after)] * n)

    def fail_next_of(self, operation_id: str, n: int, status: int = 502, retry_after: int | None = None) -> None:
        """The next ``n`` requests of one operation (``issues/create-comment``, ...) answer
        ``status`` and change nothing; other requests are served as usual."""
        with self._lock:
            self._operation_faults.setdefault(operation_id, []).extend([(status, retry_after)] * n)

    def add_latency(self, latency: Callable[[str], float] | None) -> None:
        """Before each request, sleep ``latency(operation_id or path)`` seconds (a slow GitHub);
        None: no more latency."""
        self._latency_of = latency

    def _next_fault(self, operation: str) -> Fault | None:
        with self._lock:
            queued = self._operation_faults.get(operation)
            if queued:
                return queued.pop(0)
            return self._faults.pop(0) if self._faults else None

    # -- GitHub Actions --------------------------------------------------------------------------

    def actions_job(
        self,
        repository: str,
        event_name: str,
        *,
        sha: str,
        run_id: int,
        actor: str,
        environment: str | None,
        run_attempt: int = 1,
        ref: str | None = None,
        pull_request: tuple[int, str, str, str] | None = None,  # number, head ref, base ref, base sha
        workflow_ref: str | None = None,
        triggering_actor: str | None = None,
        job_workflow_ref: str | None = None,
        job_workflow_sha: str | None = None,
    ) -> dict[str, str]:
        """Start a job of a workflow run: GitHub records the run (its API serves it) and the job
        gets its token endpoint. Returns the variables GitHub Actions sets for the job's steps.

        For a pull request ``sha`` is the PR's head commit; the job's GITHUB_SHA and the token's
        ``sha`` are the merge commit, its ref ``refs/pull/N/merge``, as on GitHub.

        ``workflow_ref`` is the caller's file; ``job_workflow_ref`` (and ``_sha``) the reusable
        workflow the job runs: by default the repository's own ``model-run.yaml`` at the job's
        ref and commit, as this repository's ``run-model.yaml`` calls it."""
        default_ref = f"refs/heads/{self.default_branch}"
        if pull_request is not None:
            number, head_ref, base_ref, base_sha = pull_request
            ref = f"refs/pull/{number}/merge"
            job_sha = hashlib.sha1(f"merge:{sha}:{base_sha}".encode()).hexdigest()  # noqa: S324 - a fake SHA
            head_branch = head_ref
        else:
            ref = ref or default_ref
            job_sha, head_ref, base_ref, head_branch = sha, "", "", ref.removeprefix("refs/heads/")
        workflow_ref = workflow_ref or f"{repository}/.github/workflows/run-model.yaml@{ref}"
        job = oidc_issuer.Job(
            repository=repository,
            event_name=event_name,
            ref=ref,
            sha=job_sha,
            run_id=run_id,
            run_attempt=run_attempt,
            actor=actor,
            environment=environment,
            workflow_ref=workflow_ref,
            head_ref=head_ref,
            base_ref=base_ref,
            job_workflow_ref=job_workflow_ref or f"{repository}/.github/workflows/model-run.yaml@{ref}",
            job_workflow_sha=job_workflow_sha or job_sha,
        )
        if environment:
            self.state.ensure_environment(repository, environment)
        run = self.state.documents.workflow_run(
            repository, event_name, sha, head_branch, run_id, run_attempt, actor, triggering_actor, pull_request
        )
        self.state.add_workflow_run(repository, run)
        token_bearer = self.issuer.register(job)
        return {
            "GITHUB_ACTIONS": "true",
            "GITHUB_REPOSITORY": repository,
            "GITHUB_EVENT_NAME": event_name,
            "GITHUB_RUN_ID": str(run_id),
            "GITHUB_RUN_ATTEMPT": str(run_attempt),
            "GITHUB_SERVER_URL": "https://github.com",
            "GITHUB_ACTOR": actor,
            "GITHUB_TRIGGERING_ACTOR": triggering_actor or actor,
            "GITHUB_SHA": job_sha,
            "GITHUB_REF": ref,
            "GITHUB_REF_NAME": ref.removeprefix("refs/heads/").removeprefix("refs/"),
            "ACTIONS_ID_TOKEN_REQUEST_URL": f"{self.issuer.issuer}/request?api-version=2.0",
            "ACTIONS_ID_TOKEN_REQUEST_TOKEN": token_bearer,
        }

    def _issuer_endpoint(self, request: Request, path: str) -> Response:
        def answer(status: int, body: Any) -> Response:
            return Response(json.dumps(body), status=status, content_type="application/json")

        if request.method != "GET":
            return answer(405, {"message": "Method Not Allowed"})
        if path == "/.well-known/openid-configuration":
            return answer(200, self.issuer.discovery())
        if path == "/.well-known/jwks":
            return answer(200, self.issuer.jwks())
        if path == "/request":
            token = self.issuer.token_for(
                bearer(request.headers.get("Authorization", "")), request.args.get("audience")
            )
            if token is None:
                return answer(401, {"message": "Bad credentials"})
            return answer(200, {"count": 1, "value": token})
        return answer(404, {"message": "Not Found"})

    # -- WSGI ----------------------------------------------------------------------------------

    def _wsgi(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        request = Request(environ)
        response = self._handle(request)
        return response(environ, start_response)

    def _handle(self, request: Request) -> Response:
        method = request.method.lower()
        if request.path.startswith(oidc_issuer.PATH):
            return self._issuer_endpoint(request, request.path.removeprefix(oidc_issuer.PATH))
        # The path as the description names it: on Enterprise Server, what follows /api/v3.
        under_api = not self.api_path or request.path.startswith(self.api_path + "/")
        path = request.path.removeprefix(self.api_path) if under_api else request.path
        description = github_description()
        found = description.find(method, path) if under_api else None
        operation = found[0] if found else None
        docs = operation.docs_url if operation else DOCS
        record: dict[str, Any] = {"method": request.method, "path": request.path, "write": method in _WRITE_METHODS}
        record["api_path"] = path
        record["operation"] = operation.operation_id if operation else None
        record["implemented"] = bool(operation and (operation.method, operation.template) in description.implemented)
        record["auth"] = None
        try:
            latency = self._latency_of
            if latency is not None:
                time.sleep(max(0.0, latency(record["operation"] or path)))
            fault = self._next_fault(record["operation"] or path)
            if fault is not None:
                body, headers = _fault_answer(*fault)
                return self._respond(request, fault[0], body, headers, record, injected=True)
            if not under_api:
                # Enterprise Server serves the REST API under /api/v3 only.
                raise Rejected(404, error_body("Not Found", DOCS, 404), f"not under the API path {self.api_path}")
            if operation is None:
                # GitHub answers an unknown method on a known path with 404 too.
                why = "method not documented for path" if description.path_exists(path) else "no such path"
                raise Rejected(404, error_body("Not Found", DOCS, 404), f"not a GitHub endpoint: {why}")
            if not record["implemented"]:
                reason = f"not implemented by LocalGitHub: {operation.operation_id}"
                raise Rejected(404, error_body("Not Found", docs, 404), reason)
            self._check_api_version(request, docs)
            authorization = request.headers.get("Authorization", "")
            params = found[1] if found else {}
            if operation.operation_id in APP_JWT_OPERATIONS:
                record["auth"] = self.credentials.check_app_jwt(authorization, docs)
            else:
                record["auth"] = self.credentials.token_kind(authorization, docs)
                if "owner" in params and not self.credentials.reaches(
                    authorization, params["owner"], params.get("repo")
                ):
                    # GitHub: a repository outside the token's installation is not there for it.
                    raise Rejected(404, error_body("Not Found", docs, 404), "outside the token's installation")
            if operation.operation_id.startswith("checks/") and record["write"] and record["auth"] in ("token", "user"):
                # GitHub: only a GitHub App may write check runs; a personal token is refused
                # (reading them is open to a token with read access).
                refusal = error_body("You must authenticate via a GitHub App.", docs, 403)
                raise Rejected(403, refusal, "check runs need GitHub App credentials")
            body_bytes = request.get_data(cache=True)
            parsed = check_request(description, method, path, request.args, Headers(request.headers), body_bytes, docs)
            with self._lock:
                status, body, headers = self.state.answer(operation, params, path, request.args, parsed, docs)
                self._rate_remaining = max(self._rate_remaining - 1, 0)
            return self._respond(request, status, body, headers, record)
        except Rejected as rej:
            return self._respond(request, rej.status, rej.body, rej.headers, record, rejected=True, reason=rej.reason)
        except Exception as exc:  # a bug in the fake: answer and record it rather than drop the connection
            reason = f"LocalGitHub bug: {exc!r}"
            return self._respond(request, 500, {"message": "Server Error"}, {}, record, rejected=True, reason=reason)

    def _check_api_version(self, request: Request, docs: str) -> None:
        version = request.headers.get("X-GitHub-Api-Version")
        if version is not None and version not in SUPPORTED_API_VERSIONS:
            refusal = error_body(f"API version '{version}' is not supported.", docs, 400)
            raise Rejected(400, refusal, "unsupported API version")

    def _respond(
        self,
        request: Request,
        status: int,
        body: Any,
        headers: Mapping[str, str],
        record: dict[str, Any],
        *,
        rejected: bool = False,
        injected: bool = False,
        reason: str | None = None,
    ) -> Response:
        data = b"" if body is None else json.dumps(body).encode()
        out = Headers(
            {
                "Content-Type": "application/json; charset=utf-8",
                "X-GitHub-Request-Id": secrets.token_hex(8).upper(),
                "X-GitHub-Api-Version-Selected": request.headers.get("X-GitHub-Api-Version", "2022-11-28"),
                "X-RateLimit-Limit": "5000",
                "X-RateLimit-Remaining": str(self._rate_remaining),
                "X-RateLimit-Reset": str(int(time.time()) + 3600),
                "X-RateLimit-Resource": "core",
            }
        )
        for k, v in headers.items():
            out[k] = v
        if self.check_responses and record["implemented"] and not injected:
            # Our own answers must be shaped as GitHub documents them.
            errs = github_description().response_errors(
                request.method.lower(), record["api_path"], request.args, status, out, data
            )
            with self._lock:
                self.response_errors.extend(f"{request.method} {request.path} -> {status}: {e}" for e in errs)
        with self._lock:
            self.requests.append(
                RecordedRequest(
                    method=record["method"],
                    path=record["path"],
                    status=status,
                    write=record["write"],
                    operation=record["operation"],
                    rejected=rejected,
                    injected=injected,
                    reason=reason,
                    auth=None if rejected or injected else record.get("auth"),
                    answered_at=time.monotonic(),
                )
            )
        return Response(data, status=status, headers=out)
