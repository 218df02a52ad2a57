"""A local, stateful GitHub REST endpoint for the few calls modelrun makes.

Every request is checked against GitHub's published OpenAPI description (vendored from npm
``@octokit/openapi``, see ``vendor/github-openapi/PROVENANCE.md``), so code that passes here sends
requests GitHub would accept. Answers are shaped like GitHub's (ids, urls, users, timestamps,
Link pagination, error bodies) and can themselves be checked against the description's response
schemas (``LocalGitHub(check_responses=True)``), so the fake cannot drift into a shape of its own.

Credentials are checked as GitHub checks them: a fixed token (``token``, None for none), or the
App's: a JWT signed with the App's key (``app_credentials()`` gives what the secret holds), with
GitHub's rules for ``iss``, ``iat`` and ``exp``, exchanged for an installation token that
expires (``installation_token_ttl``, ``expire_installation_tokens()``); each recorded request
names the credential it was accepted with. ``api_path=ENTERPRISE_API_PATH`` serves the API under
``/api/v3`` as GitHub Enterprise Server does (``url`` then ends with it; the OIDC issuer stays
at the server's root, ``/_services/token``).

Usage::

    with LocalGitHub() as gh:
        os.environ["GITHUB_API_URL"] = gh.url
        ...
        assert gh.comments("octo/repo", 7)[0]["body"].startswith("<!-- modelrun -->")
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import lzma
import re
import secrets
import threading
import time
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Any, Self
from urllib.parse import urlencode

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from openapi_core import Config, OpenAPI
from openapi_core.datatypes import RequestParameters
from openapi_core.templating.paths.exceptions import PathError
from openapi_core.templating.responses.exceptions import ResponseNotFound
from openapi_core.validation.request.exceptions import (
    MissingRequiredRequestBody,
    ParameterValidationError,
    RequestBodyValidationError,
)
from werkzeug.datastructures import Headers, ImmutableMultiDict
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

from modelrun_local import oidc_issuer
from modelrun_local.oidc_issuer import LocalIssuer

__all__ = [
    "DESCRIPTION_PATH",
    "GitHubDescription",
    "LocalGitHub",
    "RecordedRequest",
    "github_description",
]

DESCRIPTION_PATH = Path(__file__).parent / "vendor" / "github-openapi" / "api.github.com.json.xz"

# The operations this endpoint implements. Only these (and the components they reference) are
# handed to openapi-core: path finding over all ~800 GitHub paths costs ~10 ms a request, over
# these ~2-3 ms. The full description still decides whether an unknown request is a real GitHub
# endpoint (not implemented here) or no endpoint at all.
IMPLEMENTED: tuple[tuple[str, str], ...] = (
    ("get", "/repos/{owner}/{repo}/issues/{issue_number}/comments"),
    ("post", "/repos/{owner}/{repo}/issues/{issue_number}/comments"),
    ("get", "/repos/{owner}/{repo}/issues/comments/{comment_id}"),
    ("patch", "/repos/{owner}/{repo}/issues/comments/{comment_id}"),
    ("post", "/repos/{owner}/{repo}/statuses/{sha}"),
    ("post", "/repos/{owner}/{repo}/check-runs"),
    ("patch", "/repos/{owner}/{repo}/check-runs/{check_run_id}"),
    ("get", "/repos/{owner}/{repo}/commits/{ref}/check-runs"),
    ("get", "/repos/{owner}/{repo}/pulls/{pull_number}"),
    ("post", "/app/installations/{installation_id}/access_tokens"),
    ("get", "/repos/{owner}/{repo}/actions/runs/{run_id}/attempts/{attempt_number}"),
    ("get", "/repos/{owner}/{repo}"),
)

# GitHub's server URL in the description; requests are checked as if sent there.
_SPEC_HOST = "https://api.github.com"
_DOCS = "https://docs.github.com/rest"
_WRITE_METHODS = frozenset({"post", "put", "patch", "delete"})
# API versions GitHub accepts in X-GitHub-Api-Version (githubkit 0.16 sends 2026-03-10).
SUPPORTED_API_VERSIONS = frozenset({"2022-11-28", "2026-03-10"})
# Limits GitHub enforces beyond what the description states.
COMMENT_BODY_MAX = 65536
STATUS_DESCRIPTION_MAX = 140
PER_PAGE_MAX = 100
INSTALLATION_TOKEN_TTL = timedelta(hours=1)  # GitHub's installation tokens last an hour
_JWT_MAX_LIFETIME_S = 600  # GitHub refuses app JWTs that expire more than 10 minutes ahead
_JWT_CLOCK_SKEW_S = 60  # GitHub tolerates an 'iat' this far in the future (clock drift)
# Where GitHub Enterprise Server serves the REST API: https://HOST/api/v3/...
ENTERPRISE_API_PATH = "/api/v3"


# --------------------------------------------------------------------------------------------
# The description
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Operation:
    """One operation of the description, as the router needs it."""

    method: str
    template: str
    operation_id: str
    docs_url: str
    # Path segments; None marks a parameter. Plain segment matching (no regexes): compiling
    # ~1200 patterns would add ~0.4 s to the load.
    segments: tuple[str | None, ...] = field(repr=False, compare=False)
    param_names: tuple[str, ...] = field(repr=False, compare=False)

    @classmethod
    def parse(cls, method: str, template: str, operation_id: str, docs_url: str) -> Operation:
        parts = template.split("/")
        segments = tuple(None if p.startswith("{") and p.endswith("}") else p for p in parts)
        names = tuple(p[1:-1] for p in parts if p.startswith("{") and p.endswith("}"))
        return cls(method, template, operation_id, docs_url, segments, names)

    def match(self, parts: list[str]) -> dict[str, str] | None:
        if len(parts) != len(self.segments):
            return None
        values = []
        for want, got in zip(self.segments, parts, strict=True):
            if want is None:
                if not got:
                    return None
                values.append(got)
            elif want != got:
                return None
        return dict(zip(self.param_names, values, strict=True))


class _SpecRequest:
    """A request as openapi-core reads it (its ``openapi_core.protocols.Request``)."""

    def __init__(self, method: str, path: str, query: Mapping[str, str], headers: Headers, body: bytes):
        self.host_url = _SPEC_HOST
        self.path = path
        self.method = method
        self.body: bytes | None = body or None
        # GitHub parses a body as JSON whatever its Content-Type says, so we do too.
        self.content_type = "application/json"
        self.parameters = RequestParameters(query=ImmutableMultiDict(query), header=headers)


class _SpecResponse:
    """A response as openapi-core reads it (its ``openapi_core.protocols.Response``)."""

    def __init__(self, status_code: int, data: bytes, headers: Headers):
        self.status_code = status_code
        self.data = data
        self.headers = headers
        self.content_type = "application/json"


class GitHubDescription:
    """GitHub's OpenAPI description, loaded once per process (see ``github_description()``)."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.info_version: str = document["info"]["version"]
        self.operations: list[Operation] = []
        for template, item in document["paths"].items():
            for method, op in item.items():
                if method in {"get", "post", "put", "patch", "delete", "head"}:
                    docs = op.get("externalDocs", {}).get("url", _DOCS)
                    self.operations.append(Operation.parse(method, template, op["operationId"], docs))
        # More literal segments first: /issues/comments/{id} before /issues/{issue_number}.
        self.operations.sort(key=lambda o: (o.template.count("{"), -len(o.template)))
        self.implemented = {(m, t) for m, t in IMPLEMENTED}
        missing = self.implemented - {(o.method, o.template) for o in self.operations}
        if missing:
            raise ValueError(f"the vendored description lacks {sorted(missing)}")
        self.openapi = OpenAPI.from_dict(_subset(document, IMPLEMENTED), config=Config(spec_validator_cls=None))

    def find(self, method: str, path: str) -> tuple[Operation, dict[str, str]] | None:
        """The documented operation for ``method path`` and its path parameters."""
        parts = path.split("/")
        for op in self.operations:
            if op.method == method and (params := op.match(parts)) is not None:
                return op, params
        return None

    def path_exists(self, path: str) -> bool:
        parts = path.split("/")
        return any(op.match(parts) is not None for op in self.operations)

    def request_errors(
        self, method: str, path: str, query: Mapping[str, str], headers: Headers, body: bytes
    ) -> list[Exception]:
        req = _SpecRequest(method, path, query, headers, body)
        return list(self.openapi.request_validator.iter_errors(req))

    def response_errors(
        self, method: str, path: str, query: Mapping[str, str], status: int, headers: Headers, data: bytes
    ) -> list[Exception]:
        req = _SpecRequest(method, path, query, Headers(), b"")
        resp = _SpecResponse(status, data, headers)
        return list(self.openapi.response_validator.iter_errors(req, resp))


def _subset(document: dict[str, Any], operations: Iterable[tuple[str, str]]) -> dict[str, Any]:
    """The description cut down to ``operations`` and every component they reference."""
    paths: dict[str, Any] = {}
    for method, template in operations:
        item = document["paths"][template]
        kept = paths.setdefault(template, {k: v for k, v in item.items() if k == "parameters"})
        kept[method] = item[method]
    paths = copy.deepcopy(paths)
    components: dict[str, dict[str, Any]] = {}
    pending: list[Any] = [paths]
    while pending:
        node = pending.pop()
        if isinstance(node, dict):
            if node.get("nullable") is True and isinstance(node.get("enum"), list) and None not in node["enum"]:
                # OAS 3.0.3: a nullable enum must list null to allow it; GitHub's description
                # omits it (check-run "conclusion" is null while a run is queued), so add it.
                node["enum"] = [*node["enum"], None]
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/components/"):
                _, _, section, name = ref.split("/", 3)
                bucket = components.setdefault(section, {})
                if name not in bucket:
                    bucket[name] = copy.deepcopy(document["components"][section][name])
                    pending.append(bucket[name])
            pending.extend(node.values())
        elif isinstance(node, list):
            pending.extend(node)
    return {
        "openapi": document["openapi"],
        "info": document["info"],
        "servers": document["servers"],
        "paths": paths,
        "components": components,
    }


_description: GitHubDescription | None = None
_description_lock = threading.Lock()


def github_description() -> GitHubDescription:
    """The vendored description, decompressed and prepared on first use (~0.3 s), then cached."""
    global _description
    with _description_lock:
        if _description is None:
            with lzma.open(DESCRIPTION_PATH) as f:
                _description = GitHubDescription(json.load(f))
        return _description


# --------------------------------------------------------------------------------------------
# The server
# --------------------------------------------------------------------------------------------


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
    # The credential that was accepted: "token" (the fixed token), "installation" (an
    # installation token), "app" (an App JWT); None when none was.
    auth: str | None = None


class _Reject(Exception):
    def __init__(self, status: int, body: dict[str, Any], reason: str, headers: Mapping[str, str] | None = None):
        super().__init__(reason)
        self.status = status
        self.body = body
        self.reason = reason
        self.headers = dict(headers or {})


class _QuietHandler(WSGIRequestHandler):
    # requests are recorded in LocalGitHub.requests; an access log line each would drown test output
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def _iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def _stable_id(text: str) -> int:
    # Deterministic ids for users and repositories, so the same login always has the same id.
    return zlib.crc32(text.encode()) % 90_000_000 + 10_000_000


def _node_id(prefix: str, number: int) -> str:
    return f"{prefix}_" + base64.b64encode(f"local:{number}".encode()).decode().rstrip("=")


def _error(message: str, docs_url: str, status: int, errors: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"message": message, "documentation_url": docs_url, "status": str(status)}
    if errors is not None:
        body["errors"] = errors
    return body


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
        self.token = token
        self.bot_login = bot_login
        slug = bot_login.removesuffix("[bot]")
        self.app_id = app_id if app_id is not None else _stable_id("app:" + slug)
        self.installation_id = installation_id if installation_id is not None else _stable_id("installation:" + slug)
        self._app_key = app_key or rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.installation_token_ttl = installation_token_ttl
        self.api_path = api_path
        # When set, every answer is also checked against the description's response schema;
        # failures land in ``response_errors`` (tests assert it stays empty).
        self.check_responses = check_responses
        self.response_errors: list[str] = []
        self.requests: list[RecordedRequest] = []
        self.server_url = ""  # http://127.0.0.1:PORT, the web server's root
        self.url = ""  # the REST API's base URL (GITHUB_API_URL): server_url + api_path
        self._lock = threading.RLock()
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None
        self._next_id = 1000
        self._issue_comments: dict[tuple[str, int], list[int]] = {}
        self._comments: dict[int, tuple[str, int, dict[str, Any]]] = {}
        self._statuses: dict[tuple[str, str], list[dict[str, Any]]] = {}
        self._check_runs: dict[int, tuple[str, dict[str, Any]]] = {}
        self._pulls: dict[tuple[str, int], dict[str, Any]] = {}
        self._installation_tokens: dict[str, datetime] = {}
        self._faults: list[tuple[int, int | None]] = []
        self._rate_remaining = 5000
        self._workflow_runs: dict[tuple[str, int, int], dict[str, Any]] = {}
        self.default_branch = "main"
        # GitHub Actions' OIDC issuer for the jobs started by actions_job().
        self.issuer = LocalIssuer()

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
        with self._lock:
            ids = self._issue_comments.get((repo.lower(), number), [])
            return [copy.deepcopy(self._comments[i][2]) for i in ids]

    def statuses(self, repo: str, sha: str) -> list[dict[str, Any]]:
        """Commit statuses in the order they were created (GitHub lists them newest first)."""
        with self._lock:
            return copy.deepcopy(self._statuses.get((repo.lower(), sha), []))

    def check_runs(self, repo: str, sha: str) -> list[dict[str, Any]]:
        with self._lock:
            return [
                copy.deepcopy(run)
                for r, run in self._check_runs.values()
                if r == repo.lower() and run["head_sha"] == sha
            ]

    def app_credentials(self) -> dict[str, str]:
        """The App's credentials as the README stores them in the secret (ids as strings, the
        private key as the PEM file GitHub lets an App owner download)."""
        pem = self._app_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
        ).decode()
        return {"app_id": str(self.app_id), "installation_id": str(self.installation_id), "private_key": pem}

    def expire_installation_tokens(self) -> int:
        """Every installation token issued so far expires now (as an hour later); returns how many."""
        with self._lock:
            past = _now() - timedelta(seconds=1)
            for token in self._installation_tokens:
                self._installation_tokens[token] = past
            return len(self._installation_tokens)

    def fail_next(self, n: int, status: int = 502, retry_after: int | None = None) -> None:
        """The next ``n`` requests answer ``status`` and change nothing (an outage or a rate limit)."""
        with self._lock:
            self._faults.extend([(status, retry_after)] * n)

    def fail_next_of(self, operation_id: str, n: int, status: int = 502, retry_after: int | None = None) -> None:
        """The next ``n`` requests of one operation (``issues/create-comment``, ...) answer
        ``status`` and change nothing; other requests are served as usual."""
        self._install_fault_hooks()
        with self._lock:
            self._operation_faults.setdefault(operation_id, []).extend([(status, retry_after)] * n)

    def add_latency(self, latency: Callable[[str], float]) -> None:
        """Before each request, sleep ``latency(operation_id or path)`` seconds (a slow GitHub)."""
        self._install_fault_hooks()
        self._latency_of: Callable[[str], float] | None = latency

    def _install_fault_hooks(self) -> None:
        # Wraps the instance's _handle once: no cost for a LocalGitHub without these faults.
        if getattr(self, "_operation_faults", None) is not None:
            return
        self._operation_faults: dict[str, list[tuple[int, int | None]]] = {}
        self._latency_of = None
        handle = self._handle

        def with_faults(request: Request) -> Response:
            path = request.path.removeprefix(self.api_path) if self.api_path else request.path
            found = github_description().find(request.method.lower(), path)
            operation = found[0].operation_id if found else path
            if self._latency_of is not None:
                time.sleep(max(0.0, self._latency_of(operation)))
            with self._lock:
                queued = self._operation_faults.get(operation)
                fault = queued.pop(0) if queued else None
            if fault is None:
                return handle(request)
            body, headers = self._fault(*fault)
            write = request.method.lower() in _WRITE_METHODS
            record = {"method": request.method, "path": request.path, "write": write}
            record |= {"operation": operation, "implemented": True}
            return self._respond(request, fault[0], body, headers, record, injected=True)

        self._handle = with_faults  # type: ignore[method-assign]

    def add_pull(self, repo: str, number: int, head_sha: str, head_ref: str, base_ref: str, user: str) -> None:
        with self._lock:
            self._pulls[(repo.lower(), number)] = self._pull_json(repo, number, head_sha, head_ref, base_ref, user)

    def api_calls(self, *, writes_only: bool = False) -> int:
        """How many requests were answered (fault-injected ones included: a client sent them)."""
        with self._lock:
            return sum(1 for r in self.requests if r.write or not writes_only)

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
    ) -> dict[str, str]:
        """Start a job of a workflow run: GitHub records the run (its API serves it) and the job
        gets its token endpoint. Returns the variables GitHub Actions sets for the job's steps.

        For a pull request ``sha`` is the PR's head commit; the job's GITHUB_SHA and the token's
        ``sha`` are the merge commit, its ref ``refs/pull/N/merge``, as on GitHub."""
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
        )
        with self._lock:
            self._workflow_runs[(repository.lower(), run_id, run_attempt)] = self._workflow_run_json(
                repository, event_name, sha, head_branch, run_id, run_attempt, actor, triggering_actor, pull_request
            )
        bearer = self.issuer.register(job)
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
            "ACTIONS_ID_TOKEN_REQUEST_TOKEN": bearer,
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
            token = self.issuer.token_for(self._bearer(request), request.args.get("audience"))
            if token is None:
                return answer(401, {"message": "Bad credentials"})
            return answer(200, {"count": 1, "value": token})
        return answer(404, {"message": "Not Found"})

    def _workflow_run_json(
        self,
        repo: str,
        event_name: str,
        head_sha: str,
        head_branch: str,
        run_id: int,
        attempt: int,
        actor: str,
        triggering_actor: str | None,
        pull_request: tuple[int, str, str, str] | None,
    ) -> dict[str, Any]:
        api = f"{self.url}/repos/{repo}"
        now = _iso(_now())
        repository = self._repository(repo)
        suite = _stable_id(f"suite:{repo}:{run_id}:{attempt}")
        pulls = []
        if pull_request is not None:
            number, head_ref, base_ref, base_sha = pull_request
            rid = repository["id"]
            pulls.append(
                {
                    "id": _stable_id(f"pull:{repo.lower()}#{number}"),
                    "number": number,
                    "url": f"{api}/pulls/{number}",
                    "head": {"ref": head_ref, "sha": head_sha, "repo": {"id": rid, "url": api, "name": repo}},
                    "base": {"ref": base_ref, "sha": base_sha, "repo": {"id": rid, "url": api, "name": repo}},
                }
            )
        person = {"name": actor, "email": f"{actor}@users.noreply.github.com"}
        return {
            "id": run_id,
            "name": "run-model",
            "node_id": _node_id("WFR", run_id),
            "check_suite_id": suite,
            "check_suite_node_id": _node_id("CS", suite),
            "head_branch": head_branch,
            "head_sha": head_sha,
            "path": ".github/workflows/run-model.yaml",
            "display_title": f"run-model #{run_id}",
            "run_number": run_id % 10_000,
            "run_attempt": attempt,
            "event": event_name,
            "status": "in_progress",
            "conclusion": None,
            "workflow_id": _stable_id(f"workflow:{repo}"),
            "url": f"{api}/actions/runs/{run_id}",
            "html_url": f"https://github.com/{repo}/actions/runs/{run_id}",
            "pull_requests": pulls,
            "created_at": now,
            "updated_at": now,
            "run_started_at": now,
            "actor": self._user(actor),
            "triggering_actor": self._user(triggering_actor or actor),
            "jobs_url": f"{api}/actions/runs/{run_id}/attempts/{attempt}/jobs",
            "logs_url": f"{api}/actions/runs/{run_id}/attempts/{attempt}/logs",
            "check_suite_url": f"{api}/check-suites/{suite}",
            "artifacts_url": f"{api}/actions/runs/{run_id}/artifacts",
            "cancel_url": f"{api}/actions/runs/{run_id}/cancel",
            "rerun_url": f"{api}/actions/runs/{run_id}/rerun",
            "previous_attempt_url": f"{api}/actions/runs/{run_id}/attempts/{attempt - 1}" if attempt > 1 else None,
            "workflow_url": f"{api}/actions/workflows/{_stable_id(f'workflow:{repo}')}",
            "head_commit": {
                "id": head_sha,
                "tree_id": hashlib.sha1(f"tree:{head_sha}".encode()).hexdigest(),  # noqa: S324 - a fake SHA
                "message": "A commit",
                "timestamp": now,
                "author": person,
                "committer": person,
            },
            "repository": repository,
            "head_repository": repository,
        }

    def _full_repository(self, repo: str) -> dict[str, Any]:
        full = self._repository(repo)
        full.update(
            {
                "default_branch": self.default_branch,
                "has_discussions": False,
                "network_count": 0,
                "subscribers_count": 0,
            }
        )
        return full

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
        docs = operation.docs_url if operation else _DOCS
        record: dict[str, Any] = {"method": request.method, "path": request.path, "write": method in _WRITE_METHODS}
        record["api_path"] = path
        record["operation"] = operation.operation_id if operation else None
        record["implemented"] = bool(operation and (operation.method, operation.template) in description.implemented)
        record["auth"] = None
        headers: dict[str, str] = {}
        try:
            with self._lock:
                if self._faults:
                    status, retry_after = self._faults.pop(0)
                    body, headers = self._fault(status, retry_after)
                    return self._respond(request, status, body, headers, record, injected=True)
            if not under_api:
                # Enterprise Server serves the REST API under /api/v3 only.
                raise _Reject(404, _error("Not Found", _DOCS, 404), f"not under the API path {self.api_path}")
            if operation is None:
                # GitHub answers an unknown method on a known path with 404 too.
                why = "method not documented for path" if description.path_exists(path) else "no such path"
                raise _Reject(404, _error("Not Found", _DOCS, 404), f"not a GitHub endpoint: {why}")
            if (operation.method, operation.template) not in description.implemented:
                raise _Reject(
                    404,
                    _error("Not Found", docs, 404),
                    f"not implemented by LocalGitHub: {operation.operation_id}",
                )
            self._check_api_version(request, docs)
            is_app_endpoint = operation.operation_id == "apps/create-installation-access-token"
            if is_app_endpoint:
                record["auth"] = self._check_app_jwt(request, docs)
            else:
                record["auth"] = self._check_token(request, docs)
            if operation.operation_id.startswith("checks/") and record["write"] and record["auth"] == "token":
                # GitHub: only a GitHub App may write check runs; a personal token is refused
                # (reading them is open to a token with read access).
                raise _Reject(
                    403,
                    _error("You must authenticate via a GitHub App.", docs, 403),
                    "check runs need GitHub App credentials",
                )
            body_bytes = request.get_data(cache=True)
            parsed = self._check_request(description, method, path, request, body_bytes, docs)
            params = found[1] if found else {}
            with self._lock:
                status, body, headers = self._dispatch(operation, params, path, request, parsed, docs)
                self._rate_remaining = max(self._rate_remaining - 1, 0)
            return self._respond(request, status, body, headers, record)
        except _Reject as rej:
            return self._respond(request, rej.status, rej.body, rej.headers, record, rejected=True, reason=rej.reason)
        except Exception as exc:  # a bug in the fake: answer and record it rather than drop the connection
            return self._respond(
                request,
                500,
                {"message": "Server Error"},
                {},
                record,
                rejected=True,
                reason=f"LocalGitHub bug: {exc!r}",
            )

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
                request.method.lower(), record.get("api_path", request.path), request.args, status, out, data
            )
            with self._lock:
                self.response_errors.extend(
                    f"{request.method} {request.path} -> {status}: {_describe(e)}"
                    for e in errs
                    # The description lists only some error statuses per operation (no 401 or
                    # 422 for statuses, say); an undocumented status has no schema to check.
                    if not isinstance(e, ResponseNotFound)
                )
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
                )
            )
        return Response(data, status=status, headers=out)

    # -- checks --------------------------------------------------------------------------------

    def _fault(self, status: int, retry_after: int | None) -> tuple[dict[str, Any], dict[str, str]]:
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
                "https://docs.github.com/rest/using-the-rest-api/rate-limits-for-the-rest-api"
                "#about-secondary-rate-limits"
            )
            return _error(message, docs, status), headers
        if status >= 500:
            return {"message": "Server Error"}, headers
        return _error("Injected failure", _DOCS, status), headers

    def _check_api_version(self, request: Request, docs: str) -> None:
        version = request.headers.get("X-GitHub-Api-Version")
        if version is not None and version not in SUPPORTED_API_VERSIONS:
            raise _Reject(
                400,
                _error(f"API version '{version}' is not supported.", docs, 400),
                "unsupported API version",
            )

    def _bearer(self, request: Request) -> str | None:
        auth = request.headers.get("Authorization", "")
        scheme, _, credential = auth.partition(" ")
        if scheme.lower() in ("bearer", "token") and credential.strip():
            return credential.strip()
        return None

    def _check_token(self, request: Request, docs: str) -> str:
        """The kind of token the request carries, or a 401 as GitHub answers (an expired
        installation token included: GitHub says "Bad credentials" for it too)."""
        credential = self._bearer(request)
        if credential is None:
            raise _Reject(401, _error("Requires authentication", docs, 401), "no credentials")
        if self.token is not None and secrets.compare_digest(credential, self.token):
            return "token"
        with self._lock:
            expires = self._installation_tokens.get(credential)
        if expires is None:
            raise _Reject(401, _error("Bad credentials", _DOCS, 401), "bad credentials")
        if expires <= _now():
            raise _Reject(401, _error("Bad credentials", _DOCS, 401), "installation token expired")
        return "installation"

    def _check_app_jwt(self, request: Request, docs: str) -> str:
        """An App JWT as GitHub checks it: RS256, signed by the App's key, 'iss' the App's id
        (or client id), issued in the past, expiring in the future but at most 10 minutes ahead."""
        auth = request.headers.get("Authorization", "")
        scheme, _, token = auth.partition(" ")
        token = token.strip()

        def refuse(message: str, reason: str | None = None) -> _Reject:
            return _Reject(401, _error(message, docs, 401), reason or message)

        if scheme.lower() != "bearer" or token.count(".") != 2:
            raise refuse("A JSON web token could not be decoded", "access token needs an app JWT")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.DecodeError as exc:
            raise refuse("A JSON web token could not be decoded", f"undecodable JWT: {exc}") from exc
        if header.get("alg") != "RS256":
            raise refuse("A JSON web token could not be decoded", "JWT alg must be RS256")
        try:
            # Times are checked below with GitHub's own rules and messages.
            claims = jwt.decode(
                token,
                self._app_key.public_key(),
                algorithms=["RS256"],
                options={"verify_exp": False, "verify_iat": False, "verify_nbf": False, "verify_iss": False},
            )
        except jwt.InvalidSignatureError as exc:
            raise refuse("A JSON web token could not be decoded", "JWT not signed by the App's key") from exc
        except jwt.InvalidTokenError as exc:
            raise refuse("A JSON web token could not be decoded", f"undecodable JWT: {exc}") from exc
        now = time.time()
        iat, exp, iss = claims.get("iat"), claims.get("exp"), claims.get("iss")
        if not isinstance(iat, int) or not isinstance(exp, int):
            raise refuse("'Issued at' and 'Expiration time' claims must be integers")
        if str(iss) not in {str(self.app_id), self._app()["client_id"]}:
            # GitHub looks the issuer up: another app's id, or none, finds no key to verify with.
            raise refuse("A JSON web token could not be decoded", f"JWT issuer {iss!r} is not app {self.app_id}")
        if iat > now + _JWT_CLOCK_SKEW_S:
            raise refuse("'Issued at' claim ('iat') must be an Integer representing a time in the past")
        if exp <= now:
            raise refuse("'Expiration time' claim ('exp') must be a numeric value representing the future time")
        if exp - now > _JWT_MAX_LIFETIME_S + _JWT_CLOCK_SKEW_S or exp - iat > _JWT_MAX_LIFETIME_S + _JWT_CLOCK_SKEW_S:
            raise refuse("'Expiration time' claim ('exp') is too far in the future")
        return "app"

    def _check_request(
        self, description: GitHubDescription, method: str, path: str, request: Request, body: bytes, docs: str
    ) -> Any:
        parsed: Any = None
        if body:
            try:
                parsed = json.loads(body)
            except ValueError as exc:
                raise _Reject(400, _error("Problems parsing JSON", docs, 400), "body is not JSON") from exc
        errors = description.request_errors(method, path, request.args, Headers(request.headers), body)
        if not errors:
            return parsed
        first = errors[0]
        if isinstance(first, PathError) or (isinstance(first, ParameterValidationError) and first.location == "path"):
            # e.g. /issues/abc/comments: GitHub does not route it at all.
            raise _Reject(404, _error("Not Found", docs, 404), _describe(first))
        items = [item for e in errors for item in _error_items(e)]
        message = "Invalid request.\n\n" + "\n".join(i["message"] for i in items)
        raise _Reject(422, _error(message, docs, 422, items), "; ".join(_describe(e) for e in errors))

    # -- endpoints -----------------------------------------------------------------------------

    def _dispatch(
        self, op: Operation, params: dict[str, str], path: str, request: Request, body: Any, docs: str
    ) -> tuple[int, Any, dict[str, str]]:
        repo = f"{params.get('owner', '')}/{params.get('repo', '')}"
        key = repo.lower()
        match op.operation_id:
            case "issues/list-comments":
                return self._list_comments(request, path, key, int(params["issue_number"]))
            case "issues/create-comment":
                text = self._comment_body(body, docs)
                comment = self._new_comment(repo, int(params["issue_number"]), text)
                return 201, comment, {"Location": comment["url"]}
            case "issues/get-comment" | "issues/update-comment":
                entry = self._comments.get(int(params["comment_id"]))
                if entry is None or entry[0] != key:
                    raise _Reject(404, _error("Not Found", docs, 404), "no such comment")
                comment = entry[2]
                if op.operation_id == "issues/update-comment":
                    comment["body"] = self._comment_body(body, docs)
                    comment["updated_at"] = _iso(_now())
                return 200, copy.deepcopy(comment), {}
            case "repos/create-commit-status":
                status = self._new_status(repo, params["sha"], body, docs)
                return 201, status, {"Location": status["url"]}
            case "checks/list-for-ref":
                return self._list_check_runs(request, path, key, params["ref"])
            case "checks/create":
                run = self._new_check_run(repo, body, docs)
                return 201, run, {}
            case "checks/update":
                found = self._check_runs.get(int(params["check_run_id"]))
                if found is None or found[0] != key:
                    raise _Reject(404, _error("Not Found", docs, 404), "no such check run")
                self._update_check_run(found[1], body, docs)
                return 200, copy.deepcopy(found[1]), {}
            case "pulls/get":
                pull = self._pulls.get((key, int(params["pull_number"])))
                if pull is None:
                    raise _Reject(404, _error("Not Found", docs, 404), "no such pull request (add_pull it)")
                return 200, copy.deepcopy(pull), self._cache_headers(pull)
            case "actions/get-workflow-run-attempt":
                found_run = self._workflow_runs.get((key, int(params["run_id"]), int(params["attempt_number"])))
                if found_run is None:
                    raise _Reject(404, _error("Not Found", docs, 404), "no such workflow run (actions_job it)")
                return 200, copy.deepcopy(found_run), {}
            case "repos/get":
                return 200, self._full_repository(repo), {}
            case "apps/create-installation-access-token":
                if int(params["installation_id"]) != self.installation_id:
                    # GitHub: another app's installation, or none, is not found for this app.
                    raise _Reject(404, _error("Not Found", docs, 404), "not this app's installation")
                return 201, self._new_installation_token(body), {}
        raise _Reject(404, _error("Not Found", docs, 404), f"unrouted {op.operation_id}")  # pragma: no cover

    def _cache_headers(self, payload: Any) -> dict[str, str]:
        # GitHub marks GETs cacheable for 60 s with an ETag; a caching client (githubkit's default
        # hishel cache) may serve a stale copy within that window, as it would against GitHub.
        etag = hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:32]
        return {
            "ETag": f'W/"{etag}"',
            "Cache-Control": "private, max-age=60, s-maxage=60",
            "Vary": "Accept, Authorization",
        }

    def _list_comments(self, request: Request, path: str, key: str, number: int) -> tuple[int, Any, dict[str, str]]:
        since = request.args.get("since")
        items = [self._comments[i][2] for i in self._issue_comments.get((key, number), [])]
        if since:
            items = [c for c in items if c["updated_at"] >= since]
        chunk, headers = self._page(request, path, items)
        return 200, chunk, headers

    def _list_check_runs(self, request: Request, path: str, key: str, ref: str) -> tuple[int, Any, dict[str, str]]:
        """A commit's check runs as GitHub lists them, newest first: by ``check_name`` and
        ``status``; ``filter=latest`` (the default) keeps the newest run of each name. The ref
        must be the commit's SHA here (LocalGitHub keeps no branches or tags)."""
        runs = [run for r, run in self._check_runs.values() if r == key and run["head_sha"] == ref]
        runs.sort(key=lambda run: run["id"], reverse=True)
        if name := request.args.get("check_name"):
            runs = [run for run in runs if run["name"] == name]
        if status := request.args.get("status"):
            runs = [run for run in runs if run["status"] == status]
        if request.args.get("filter", "latest") == "latest":
            newest: dict[str, dict[str, Any]] = {}
            for run in runs:
                newest.setdefault(run["name"], run)
            runs = list(newest.values())
        chunk, headers = self._page(request, path, runs)
        return 200, {"total_count": len(runs), "check_runs": chunk}, headers

    def _page(self, request: Request, path: str, items: list[dict[str, Any]]) -> tuple[list[Any], dict[str, str]]:
        """One page of a listing (``per_page``, ``page``) and its headers: the cache headers and
        GitHub's ``Link`` to the other pages."""
        per_page = min(max(request.args.get("per_page", 30, type=int) or 30, 1), PER_PAGE_MAX)
        page = max(request.args.get("page", 1, type=int) or 1, 1)
        chunk = copy.deepcopy(items[(page - 1) * per_page : page * per_page])
        last = max((len(items) + per_page - 1) // per_page, 1)
        headers = self._cache_headers(chunk)
        links = []
        base_args = {k: v for k, v in request.args.items() if k not in ("page", "per_page")}

        def url(p: int) -> str:
            return f"{self.url}{path}?{urlencode({**base_args, 'per_page': per_page, 'page': p})}"

        if page > 1:
            links += [f'<{url(page - 1)}>; rel="prev"', f'<{url(1)}>; rel="first"']
        if page < last:
            links += [f'<{url(page + 1)}>; rel="next"', f'<{url(last)}>; rel="last"']
        if links:
            headers["Link"] = ", ".join(links)
        return chunk, headers

    def _comment_body(self, body: Any, docs: str) -> str:
        text: str = body["body"]
        if len(text) > COMMENT_BODY_MAX:
            raise _Reject(
                422,
                _error(
                    "Validation Failed",
                    docs,
                    422,
                    [
                        {
                            "resource": "IssueComment",
                            "code": "custom",
                            "field": "body",
                            "message": f"Body is too long (maximum is {COMMENT_BODY_MAX} characters)",
                        }
                    ],
                ),
                "comment body too long",
            )
        if not text.strip():
            raise _Reject(
                422,
                _error(
                    "Validation Failed",
                    docs,
                    422,
                    [{"resource": "IssueComment", "code": "missing_field", "field": "body"}],
                ),
                "comment body blank",
            )
        return text

    def _new_id(self) -> int:
        self._next_id += 1
        return self._next_id

    def _user(self, login: str, kind: str | None = None) -> dict[str, Any]:
        kind = kind or ("Bot" if login.endswith("[bot]") else "User")
        api = f"{self.url}/users/{login}"
        uid = _stable_id(login)
        return {
            "login": login,
            "id": uid,
            "node_id": _node_id("BOT" if kind == "Bot" else "U", uid),
            "avatar_url": f"https://avatars.githubusercontent.com/u/{uid}?v=4",
            "gravatar_id": "",
            "url": api,
            # A bot's page is its app's page.
            "html_url": f"https://github.com/apps/{login.removesuffix('[bot]')}"
            if kind == "Bot"
            else f"https://github.com/{login}",
            "followers_url": f"{api}/followers",
            "following_url": f"{api}/following{{/other_user}}",
            "gists_url": f"{api}/gists{{/gist_id}}",
            "starred_url": f"{api}/starred{{/owner}}{{/repo}}",
            "subscriptions_url": f"{api}/subscriptions",
            "organizations_url": f"{api}/orgs",
            "repos_url": f"{api}/repos",
            "events_url": f"{api}/events{{/privacy}}",
            "received_events_url": f"{api}/received_events",
            "type": kind,
            "user_view_type": "public",
            "site_admin": False,
        }

    def _new_comment(self, repo: str, number: int, text: str) -> dict[str, Any]:
        cid = self._new_id()
        now = _iso(_now())
        api = f"{self.url}/repos/{repo}"
        comment = {
            "id": cid,
            "node_id": _node_id("IC", cid),
            "url": f"{api}/issues/comments/{cid}",
            "html_url": f"https://github.com/{repo}/pull/{number}#issuecomment-{cid}",
            "issue_url": f"{api}/issues/{number}",
            "body": text,
            "user": self._user(self.bot_login, "Bot"),
            "created_at": now,
            "updated_at": now,
            "author_association": "NONE",
            "performed_via_github_app": None,
            "reactions": {
                "url": f"{api}/issues/comments/{cid}/reactions",
                "total_count": 0,
                **dict.fromkeys(("+1", "-1", "laugh", "hooray", "confused", "heart", "rocket", "eyes"), 0),
            },
        }
        key = repo.lower()
        self._comments[cid] = (key, number, comment)
        self._issue_comments.setdefault((key, number), []).append(cid)
        return copy.deepcopy(comment)

    def _new_status(self, repo: str, sha: str, body: Any, docs: str) -> dict[str, Any]:
        description = body.get("description")
        if description is not None and len(description) > STATUS_DESCRIPTION_MAX:
            raise _Reject(
                422,
                _error(
                    "Validation Failed",
                    docs,
                    422,
                    [
                        {
                            "resource": "Status",
                            "code": "custom",
                            "field": "description",
                            "message": f"description is too long (maximum is {STATUS_DESCRIPTION_MAX} characters)",
                        }
                    ],
                ),
                "status description too long",
            )
        sid = self._new_id()
        now = _iso(_now())
        bot = self._user(self.bot_login, "Bot")
        status = {
            "url": f"{self.url}/repos/{repo}/statuses/{sha}",
            "avatar_url": bot["avatar_url"],
            "id": sid,
            "node_id": _node_id("SC", sid),
            "state": body["state"],
            "description": description,
            "target_url": body.get("target_url"),
            "context": body.get("context", "default"),
            "created_at": now,
            "updated_at": now,
            "creator": bot,
        }
        self._statuses.setdefault((repo.lower(), sha), []).append(status)
        return copy.deepcopy(status)

    def _app(self) -> dict[str, Any]:
        slug = self.bot_login.removesuffix("[bot]")
        app_id = self.app_id
        now = _iso(datetime(2024, 1, 1, tzinfo=UTC))
        return {
            "id": app_id,
            "slug": slug,
            "node_id": _node_id("A", app_id),
            "client_id": f"Iv1.{app_id:016x}",
            "owner": self._user(slug, "Organization"),
            "name": slug,
            "description": "",
            "external_url": "https://example.invalid/modelrun",
            "html_url": f"https://github.com/apps/{slug}",
            "created_at": now,
            "updated_at": now,
            "permissions": {
                "actions": "read",
                "checks": "write",
                "issues": "write",
                "metadata": "read",
                "pull_requests": "write",
                "statuses": "write",
            },
            "events": [],
        }

    def _check_conclusion(self, run: dict[str, Any], docs: str) -> None:
        # GitHub: "conclusion" is required once a run is completed, and a conclusion completes it.
        if run["conclusion"] is not None:
            run["status"] = "completed"
        if run["status"] == "completed":
            if run["conclusion"] is None:
                raise _Reject(
                    422,
                    _error(
                        'Invalid request.\n\nNo subschema in "anyOf" matched.\n"conclusion" wasn\'t supplied.',
                        docs,
                        422,
                        [{"resource": "CheckRun", "code": "missing_field", "field": "conclusion"}],
                    ),
                    "completed check run without conclusion",
                )
            run["completed_at"] = run["completed_at"] or _iso(_now())

    def _new_check_run(self, repo: str, body: Any, docs: str) -> dict[str, Any]:
        rid = self._new_id()
        api = f"{self.url}/repos/{repo}/check-runs/{rid}"
        output = body.get("output") or {}
        run: dict[str, Any] = {
            "id": rid,
            "head_sha": body["head_sha"],
            "node_id": _node_id("CR", rid),
            "external_id": body.get("external_id", ""),
            "url": api,
            "html_url": f"https://github.com/{repo}/runs/{rid}",
            "details_url": body.get("details_url", f"https://github.com/{repo}/runs/{rid}"),
            "status": body.get("status", "queued"),
            "conclusion": body.get("conclusion"),
            "started_at": body.get("started_at", _iso(_now())),
            "completed_at": body.get("completed_at"),
            "output": {
                "title": output.get("title"),
                "summary": output.get("summary"),
                "text": output.get("text"),
                "annotations_count": len(output.get("annotations", [])),
                "annotations_url": f"{api}/annotations",
            },
            "name": body["name"],
            "check_suite": {"id": _stable_id(f"suite:{repo}:{body['head_sha']}")},
            "app": self._app(),
            "pull_requests": [],
        }
        self._check_conclusion(run, docs)
        self._check_runs[rid] = (repo.lower(), run)
        return copy.deepcopy(run)

    def _update_check_run(self, run: dict[str, Any], body: Any, docs: str) -> None:
        before = copy.deepcopy(run)
        for k in ("name", "details_url", "external_id", "started_at", "status", "conclusion", "completed_at"):
            if k in body:
                run[k] = body[k]
        if "output" in body:
            out = body["output"]
            run["output"].update({k: out.get(k) for k in ("title", "summary", "text")})
            run["output"]["annotations_count"] += len(out.get("annotations", []))
        try:
            self._check_conclusion(run, docs)
        except _Reject:
            run.clear()
            run.update(before)  # a rejected request changes nothing
            raise

    def _new_installation_token(self, body: Any) -> dict[str, Any]:
        token = "ghs_" + secrets.token_urlsafe(27)[:36]
        expires = _now() + self.installation_token_ttl
        self._installation_tokens[token] = expires
        body = body or {}
        result: dict[str, Any] = {
            "token": token,
            "expires_at": _iso(expires),
            "permissions": body.get(
                "permissions",
                {
                    "checks": "write",
                    "issues": "write",
                    "pull_requests": "write",
                    "statuses": "write",
                    "actions": "read",
                    "metadata": "read",
                },
            ),
            "repository_selection": "selected" if body.get("repositories") or body.get("repository_ids") else "all",
        }
        return result

    def _repository(self, full_name: str) -> dict[str, Any]:
        owner, name = full_name.split("/", 1)
        api = f"{self.url}/repos/{full_name}"
        rid = _stable_id("repo:" + full_name.lower())
        created = _iso(datetime(2024, 1, 1, tzinfo=UTC))
        templated = {
            "archive_url": "/{archive_format}{/ref}",
            "assignees_url": "/assignees{/user}",
            "blobs_url": "/git/blobs{/sha}",
            "branches_url": "/branches{/branch}",
            "collaborators_url": "/collaborators{/collaborator}",
            "comments_url": "/comments{/number}",
            "commits_url": "/commits{/sha}",
            "compare_url": "/compare/{base}...{head}",
            "contents_url": "/contents/{+path}",
            "git_commits_url": "/git/commits{/sha}",
            "git_refs_url": "/git/refs{/sha}",
            "git_tags_url": "/git/tags{/sha}",
            "issue_comment_url": "/issues/comments{/number}",
            "issue_events_url": "/issues/events{/number}",
            "issues_url": "/issues{/number}",
            "keys_url": "/keys{/key_id}",
            "labels_url": "/labels{/name}",
            "milestones_url": "/milestones{/number}",
            "notifications_url": "/notifications{?since,all,participating}",
            "pulls_url": "/pulls{/number}",
            "releases_url": "/releases{/id}",
            "statuses_url": "/statuses/{sha}",
            "trees_url": "/git/trees{/sha}",
        }
        plain = (
            "contributors",
            "deployments",
            "downloads",
            "events",
            "forks",
            "hooks",
            "languages",
            "merges",
            "stargazers",
            "subscribers",
            "subscription",
            "tags",
            "teams",
        )
        repo: dict[str, Any] = {
            "id": rid,
            "node_id": _node_id("R", rid),
            "name": name,
            "full_name": full_name,
            "owner": self._user(owner, "Organization"),
            "private": False,
            "html_url": f"https://github.com/{full_name}",
            "description": None,
            "fork": False,
            "url": api,
            **{k: api + v for k, v in templated.items()},
            **{f"{k}_url": f"{api}/{k}" for k in plain},
            "clone_url": f"https://github.com/{full_name}.git",
            "git_url": f"git://github.com/{full_name}.git",
            "ssh_url": f"git@github.com:{full_name}.git",
            "svn_url": f"https://github.com/{full_name}",
            "mirror_url": None,
            "homepage": None,
            "language": "Python",
            "default_branch": "main",
            "forks": 0,
            "forks_count": 0,
            "stargazers_count": 0,
            "watchers": 0,
            "watchers_count": 0,
            "open_issues": 0,
            "open_issues_count": 0,
            "size": 0,
            "has_issues": True,
            "has_projects": False,
            "has_wiki": False,
            "has_pages": False,
            "has_downloads": True,
            "archived": False,
            "disabled": False,
            "license": None,
            "visibility": "public",
            "pushed_at": created,
            "created_at": created,
            "updated_at": created,
        }
        return repo

    def _pull_json(
        self, repo: str, number: int, head_sha: str, head_ref: str, base_ref: str, user: str
    ) -> dict[str, Any]:
        owner = repo.split("/", 1)[0]
        api = f"{self.url}/repos/{repo}"
        pid = _stable_id(f"pull:{repo.lower()}#{number}")
        now = _iso(_now())
        author = self._user(user)
        repository = self._repository(repo)

        def link(href: str) -> dict[str, str]:
            return {"href": href}

        return {
            "url": f"{api}/pulls/{number}",
            "id": pid,
            "node_id": _node_id("PR", pid),
            "html_url": f"https://github.com/{repo}/pull/{number}",
            "diff_url": f"https://github.com/{repo}/pull/{number}.diff",
            "patch_url": f"https://github.com/{repo}/pull/{number}.patch",
            "issue_url": f"{api}/issues/{number}",
            "commits_url": f"{api}/pulls/{number}/commits",
            "review_comments_url": f"{api}/pulls/{number}/comments",
            "review_comment_url": f"{api}/pulls/comments{{/number}}",
            "comments_url": f"{api}/issues/{number}/comments",
            "statuses_url": f"{api}/statuses/{head_sha}",
            "number": number,
            "state": "open",
            "locked": False,
            "title": f"Pull request #{number}",
            "user": author,
            "body": None,
            "labels": [],
            "milestone": None,
            "active_lock_reason": None,
            "created_at": now,
            "updated_at": now,
            "closed_at": None,
            "merged_at": None,
            "merge_commit_sha": None,
            "assignee": None,
            "assignees": [],
            "requested_reviewers": [],
            "requested_teams": [],
            "head": {
                "label": f"{owner}:{head_ref}",
                "ref": head_ref,
                "sha": head_sha,
                "user": author,
                "repo": repository,
            },
            "base": {
                "label": f"{owner}:{base_ref}",
                "ref": base_ref,
                "sha": "0" * 40,
                "user": repository["owner"],
                "repo": repository,
            },
            "_links": {
                "self": link(f"{api}/pulls/{number}"),
                "html": link(f"https://github.com/{repo}/pull/{number}"),
                "issue": link(f"{api}/issues/{number}"),
                "comments": link(f"{api}/issues/{number}/comments"),
                "review_comments": link(f"{api}/pulls/{number}/comments"),
                "review_comment": link(f"{api}/pulls/comments{{/number}}"),
                "commits": link(f"{api}/pulls/{number}/commits"),
                "statuses": link(f"{api}/statuses/{head_sha}"),
            },
            "author_association": "CONTRIBUTOR",
            "auto_merge": None,
            "draft": False,
            "merged": False,
            "mergeable": True,
            "rebaseable": True,
            "mergeable_state": "clean",
            "merged_by": None,
            "comments": 0,
            "review_comments": 0,
            "maintainer_can_modify": False,
            "commits": 1,
            "additions": 1,
            "deletions": 0,
            "changed_files": 1,
        }


def _schema_errors(exc: BaseException) -> list[Any]:
    cause = exc.__cause__
    return list(getattr(cause, "schema_errors", None) or getattr(exc, "schema_errors", None) or [])


def _describe(exc: BaseException) -> str:
    details = [e.message for e in _schema_errors(exc)]
    return f"{exc}" + (f" ({'; '.join(details)})" if details else "")


def _error_items(exc: Exception) -> Iterator[dict[str, Any]]:
    """GitHub-style ``errors`` entries for one openapi-core validation error."""
    if isinstance(exc, MissingRequiredRequestBody):
        yield {"code": "missing", "message": "Request body is required"}
        return
    if isinstance(exc, ParameterValidationError):
        yield {"code": "invalid", "field": exc.name, "message": f'"{exc.name}" is invalid ({exc.location})'}
        return
    schema_errors = _schema_errors(exc)
    if isinstance(exc, RequestBodyValidationError) and schema_errors:
        for err in schema_errors:
            field_path = "/".join(str(p) for p in err.absolute_path)
            if err.validator == "required":
                missing = re.findall(r"'([^']+)' is a required property", err.message)
                name = "/".join(filter(None, [field_path, *missing]))
                yield {"code": "missing_field", "field": name, "message": f'"{name}" wasn\'t supplied.'}
            else:
                yield {"code": "invalid", "field": field_path, "message": err.message}
        return
    yield {"code": "invalid", "message": str(exc)}
