"""The backend's GitHub credentials: a GitHub App (the default on the local stack, as the README
recommends) or a token, against the local GitHub, which verifies App JWTs with the App's key and
lets installation tokens expire; credentials that cannot work fail at once, named as such; and
the whole flow on token credentials and on GitHub Enterprise Server's /api/v3.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from aws_lambda_powertools.utilities.parameters.exceptions import TransformParameterError
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from modelrun.adapters import github
from modelrun.adapters.github import PullRequests, Repositories
from modelrun.domain.report import MARKER
from modelrun.errors import GitHubCredentialsBroken, GitHubRejected, GitHubUnavailable
from modelrun_cli.enqueue import send
from modelrun_local.github_auth import EXCHANGE_OPERATION as EXCHANGE
from modelrun_local.github_server import ENTERPRISE_API_PATH, LocalGitHub, RecordedRequest
from modelrun_local.runtime import LocalRuntime
from modelrun_local.stack import ROOT
from tests.integration.flow import REPOSITORY, Flow

REPO = "octo/avm"
SHA = "0123456789abcdef0123456789abcdef01234567"
ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:modelrun-github"


class Secrets:
    """Secrets Manager as the adapter reads it (Powertools' get_secret), one secret's value."""

    def __init__(self) -> None:
        self.value: Any = None

    def get_secret(self, name: str, transform: str | None = None, max_age: int = 0) -> Any:
        assert (name, transform) == (ARN, "json")
        if isinstance(self.value, str):
            raise TransformParameterError("Expecting value: line 1 column 1 (char 0)")
        return self.value


@pytest.fixture
def secret(monkeypatch: pytest.MonkeyPatch) -> Iterator[Secrets]:
    store = Secrets()
    monkeypatch.setattr(github.parameters, "get_secret", store.get_secret)  # type: ignore[attr-defined]
    github._session.cache_clear()  # a cold container
    yield store
    github._session.cache_clear()


@pytest.fixture
def gh() -> Iterator[LocalGitHub]:
    # No fixed token: only installation tokens get through.
    with LocalGitHub(token=None, check_responses=True) as server:
        yield server
        assert server.response_errors == []


def _pem(key: Any) -> str:
    return str(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode()
    )


def test_every_backend_call_on_app_credentials_passes_githubs_description(gh: LocalGitHub, secret: Secrets) -> None:
    secret.value = gh.app_credentials() | {"bot_login": gh.bot_login}
    gh.actions_job(REPO, "pull_request", sha=SHA, run_id=77, actor="octocat", environment="staging",
                   pull_request=(7, "feature/x", "main", "f" * 40))  # fmt: skip
    prs = PullRequests(ARN, gh.url)
    comment_id = prs.create_comment(REPO, 7, MARKER + "\nqueued")
    assert PullRequests(ARN, gh.url).update_comment(REPO, comment_id, MARKER + "\ndone")
    assert PullRequests(ARN, gh.url).find_comment(REPO, 7) == (comment_id, MARKER + "\ndone")
    PullRequests(ARN, gh.url).set_status(REPO, SHA, "success", "COD 8.1", "https://example.com/r")
    check = {"status": "queued", "output": {"title": "queued", "summary": "waiting"}}
    check_run_id = prs.create_check_run(REPO, SHA, "run-1", check)
    assert prs.update_check_run(REPO, check_run_id, check | {"status": "in_progress"})
    assert prs.find_check_run(REPO, SHA, "run-1") == check_run_id
    assert prs.find_check_run(REPO, SHA, "run-2") is None
    other = prs.create_comment(REPO, 8, MARKER + "\nfirst")
    assert [c["id"] for c in gh.comments(REPO, 8)] == [other]
    repos = Repositories(ARN, gh.url)
    assert repos.workflow_run(REPO, 77, 1).head_sha == SHA
    github._default_branches.clear()
    assert repos.default_branch(REPO) == "main"

    assert not [r for r in gh.requests if r.rejected], gh.requests
    # One exchange of the App's JWT for an installation token serves every later call.
    assert (gh.requests[0].operation, gh.requests[0].auth) == (EXCHANGE, "app")
    assert {r.auth for r in gh.requests[1:]} == {"installation"}
    assert {r.operation for r in gh.requests[1:]} == {
        "issues/list-comments",
        "issues/create-comment",
        "issues/update-comment",
        "repos/create-commit-status",
        "checks/create",
        "checks/update",
        "checks/list-for-ref",
        "actions/get-workflow-run-attempt",
        "repos/get",
    }
    assert [c["user"]["login"] for c in gh.comments(REPO, 7)] == ["modelrun[bot]"]


def test_an_installation_token_is_renewed_before_it_expires(
    gh: LocalGitHub, secret: Secrets, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret.value = gh.app_credentials()
    # A margin beyond the token's hour: each token is due for renewal as soon as it is issued.
    monkeypatch.setattr(github, "_RENEW_BEFORE_EXPIRY_S", 3600.0 + 60)
    PullRequests(ARN, gh.url).set_status(REPO, SHA, "pending", "queued", None)
    assert gh.expire_installation_tokens() == 1  # the hour is up: the token would be refused
    PullRequests(ARN, gh.url).set_status(REPO, SHA, "success", "done", None)
    assert [(r.operation, r.status) for r in gh.requests] == [
        (EXCHANGE, 201),
        ("repos/create-commit-status", 201),
        (EXCHANGE, 201),
        ("repos/create-commit-status", 201),
    ]


OTHER = "octo-condo/condo-avm"  # a repository of another owner, with an installation of its own
LOOKUP = "apps/get-repo-installation"


def _without_installation_id(gh: LocalGitHub) -> dict[str, str]:
    return {k: v for k, v in gh.app_credentials().items() if k != "installation_id"}


def test_without_an_installation_id_each_repositorys_installation_is_found_once(
    gh: LocalGitHub, secret: Secrets
) -> None:
    """Repositories of several owners on one stack: the secret names no installation, and each
    repository's is looked up with the App's JWT (GET /repos/{owner}/{repo}/installation), once
    per container, as is each installation's token."""
    condo_installation = gh.install("octo-condo")
    assert condo_installation != gh.installation_id
    secret.value = _without_installation_id(gh) | {"bot_login": gh.bot_login}
    for repository in (REPO, OTHER, REPO, OTHER):
        prs = PullRequests(ARN, gh.url)
        prs.create_comment(repository, 7, MARKER + "\nqueued")
        assert prs.uses_app
        github._default_branches.clear()
        assert Repositories(ARN, gh.url).default_branch(repository) == "main"

    assert not [r for r in gh.requests if r.rejected], [r for r in gh.requests if r.rejected]
    assert [c["user"]["login"] for c in gh.comments(OTHER, 7)] == ["modelrun[bot]"] * 2
    app_calls = [(r.operation, r.path.split("/")[-2 if r.operation == EXCHANGE else 2]) for r in gh.requests]
    app_calls = [call for call in app_calls if call[0] in (LOOKUP, EXCHANGE)]
    assert app_calls == [
        (LOOKUP, "octo"),
        (EXCHANGE, str(gh.installation_id)),
        (LOOKUP, "octo-condo"),
        (EXCHANGE, str(condo_installation)),
    ]
    assert {r.auth for r in gh.requests if r.operation in (LOOKUP, EXCHANGE)} == {"app"}
    assert {r.auth for r in gh.requests if r.operation not in (LOOKUP, EXCHANGE)} == {"installation"}


def test_an_installation_token_reaches_only_its_installations_repositories(gh: LocalGitHub, secret: Secrets) -> None:
    """As on GitHub, hence the lookup: the secret's one installation cannot write to a
    repository of another owner that has an installation of its own."""
    gh.install("octo-condo")
    secret.value = gh.app_credentials()  # installation_id: the first installation's
    PullRequests(ARN, gh.url).set_status(REPO, SHA, "pending", "queued", None)
    with pytest.raises(GitHubRejected, match="404"):
        PullRequests(ARN, gh.url).set_status(OTHER, SHA, "pending", "queued", None)
    assert gh.requests[-1].reason == "outside the token's installation"
    assert gh.statuses(OTHER, SHA) == []


def test_an_installation_lookup_github_refuses_fails_at_once(gh: LocalGitHub, secret: Secrets) -> None:
    secret.value = _without_installation_id(gh) | {"private_key": _pem(_rsa())}  # a key GitHub does not know
    with pytest.raises(GitHubCredentialsBroken, match=f"finds no installation on {OTHER} .*401"):
        PullRequests(ARN, gh.url).set_status(OTHER, SHA, "pending", "queued", None)
    assert [(r.operation, r.status) for r in gh.requests] == [(LOOKUP, 401)]  # one try, no retries


def test_token_credentials_still_work(secret: Secrets) -> None:
    with LocalGitHub(token="github_pat_local", check_responses=True) as gh:
        secret.value = {"token": "github_pat_local"}
        PullRequests(ARN, gh.url).set_status(REPO, SHA, "pending", "queued", None)
        assert [(r.operation, r.auth) for r in gh.requests] == [("repos/create-commit-status", "token")]


def _broken_secrets() -> list[tuple[str, Any, str]]:
    ec_key = _pem(ec.generate_private_key(ec.SECP256R1()))
    return [
        ("the template's placeholder", {"token": ""}, "neither an App"),
        ("empty", {}, "neither an App"),
        ("not JSON", "app_id=1", "is not JSON"),
        ("not an object", ["token"], "not a JSON object"),
        ("no private key", {"app_id": "1", "installation_id": "2"}, "lack private_key"),
        ("installation id not a number", {"app_id": "1", "installation_id": "x", "private_key": "k"}, "number"),
        ("private key not PEM", {"app_id": "1", "installation_id": "2", "private_key": "ssh-rsa AAAA"}, "PEM"),
        ("private key not RSA", {"app_id": "1", "installation_id": "2", "private_key": ec_key}, "not RSA"),
    ]


@pytest.mark.parametrize(("case", "value", "message"), _broken_secrets(), ids=[c[0] for c in _broken_secrets()])
def test_a_malformed_secret_fails_before_any_request_naming_the_fault(
    gh: LocalGitHub, secret: Secrets, case: str, value: Any, message: str
) -> None:
    secret.value = value
    with pytest.raises(GitHubCredentialsBroken, match=message) as raised:
        PullRequests(ARN, gh.url)
    assert gh.requests == []
    assert "BEGIN" not in str(raised.value)  # a key never lands in a log line


@pytest.mark.parametrize(
    ("case", "change", "status"),
    [
        ("a key GitHub does not know", lambda creds: creds | {"private_key": _pem(_rsa())}, 401),
        ("another app's id", lambda creds: creds | {"app_id": str(int(creds["app_id"]) + 1)}, 401),
        ("an installation of no such app", lambda creds: creds | {"installation_id": "1"}, 404),
    ],
)
def test_app_credentials_github_refuses_fail_at_once_not_as_an_outage(
    gh: LocalGitHub, secret: Secrets, case: str, change: Any, status: int
) -> None:
    secret.value = change(gh.app_credentials())
    with pytest.raises(GitHubCredentialsBroken, match=f"GitHub refused an installation token .*{status}"):
        Repositories(ARN, gh.url)
    assert [(r.operation, r.status) for r in gh.requests] == [(EXCHANGE, status)]  # one try, no retries
    # Fixed in the secret: taken up by the next invocation, without a cold start.
    secret.value = gh.app_credentials()
    assert Repositories(ARN, gh.url).default_branch(REPO) == "main"


def test_an_outage_at_the_token_exchange_is_retried_as_one(gh: LocalGitHub, secret: Secrets) -> None:
    secret.value = gh.app_credentials()
    gh.fail_next(1, 502)
    with pytest.raises(GitHubUnavailable):
        PullRequests(ARN, gh.url)
    PullRequests(ARN, gh.url).set_status(REPO, SHA, "pending", "queued", None)  # the next try gets through


def test_broken_credentials_are_not_among_the_errors_the_state_machine_retries() -> None:
    assert issubclass(GitHubCredentialsBroken, GitHubRejected)
    definition = json.loads((ROOT / "statemachine" / "report_run.asl.json").read_text())
    # The one state that calls GitHub: what its Retry names is retried for hours.
    retried = {
        name for retrier in definition["States"]["UpdatePullRequest"]["Retry"] for name in retrier["ErrorEquals"]
    }
    assert "GitHubUnavailable" in retried
    assert not {"GitHubCredentialsBroken", "GitHubBadCredentials", "GitHubRejected", "States.ALL"} & retried


def _rsa() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


# -- the flow on the local stack -------------------------------------------------------------------


def _one_run(runtime: LocalRuntime, pr: int) -> list[RecordedRequest]:
    flow = Flow.placeholder(runtime, Path("/nonexistent"))
    request = flow.request(pr=pr, run_id=9_300 + pr, mode=["ok"])
    send(request, flow.queue_url)
    flow.wait()
    assert flow.record(flow.run_id_of(request))["status"] == "SUCCEEDED"
    (comment,) = runtime.github.comments(REPOSITORY, pr)
    assert "SUCCEEDED" in comment["body"]
    statuses = [s["state"] for s in runtime.github.statuses(REPOSITORY, request.head_sha)]
    checks = [(c["status"], c["conclusion"]) for c in runtime.github.check_runs(REPOSITORY, request.head_sha)]
    if runtime.github_credentials == "app":  # a check run carries the result; no commit status
        assert (statuses, checks) == ([], [("completed", "success")]), (statuses, checks)
    else:  # a token cannot write check runs: the commit status carries it
        assert (statuses[-1:], checks) == (["success"], []), (statuses, checks)
    requests = list(runtime.github.requests)
    assert not [r for r in requests if r.rejected], [r for r in requests if r.rejected]
    return requests


def test_the_flow_on_token_credentials() -> None:
    with LocalRuntime(parameters={"LogLevel": "ERROR"}, github_credentials="token") as runtime:
        stored = boto3.client("secretsmanager").get_secret_value(SecretId=runtime.stack.resources["GitHubCredentials"])
        assert set(json.loads(stored["SecretString"])) == {"token", "bot_login"}
        requests = _one_run(runtime, 31)
    assert {r.auth for r in requests} == {"token"}
    assert {"actions/get-workflow-run-attempt", "issues/create-comment", "repos/create-commit-status"} <= {
        r.operation for r in requests
    }
    # The comment carries the states on the way (no check run): created at submission, edited
    # at RUNNING (unless the job ended first) and with the report; the merge gate's policy read
    # once from the base commit (kept per function environment and commit); then the commit
    # status: 6 at most (5 before gates).
    operations = [r.operation for r in requests]
    assert operations[0] == "actions/get-workflow-run-attempt" and "issues/list-comments" not in operations
    assert operations.count("repos/get-content") == 1, operations
    # The default branch (a PR's base must be it) is looked up once an hour per environment, beside.
    assert operations.count("repos/get") <= 1
    per_run = [op for op in operations if op != "repos/get"]
    assert len(per_run) <= 6 and operations[-1] == "repos/create-commit-status", operations


def test_the_flow_on_github_enterprise_server() -> None:
    """GitHubApiUrl at <server>/api/v3 and the issuer at <server>/_services/token, as on GHES;
    on App credentials, the local stack's default."""
    with LocalRuntime(parameters={"LogLevel": "ERROR"}, github_api_path=ENTERPRISE_API_PATH) as runtime:
        gh = runtime.github
        assert gh.url == f"{gh.server_url}/api/v3"
        environments = [fn["environment"] for fn in runtime.stack.functions.values()]
        # The template's parameters, as the functions get them
        assert {e["GITHUB_API_URL"] for e in environments if "GITHUB_API_URL" in e} == {gh.url}
        assert {e["OIDC_ISSUER"] for e in environments if "OIDC_ISSUER" in e} == {f"{gh.server_url}/_services/token"}
        requests = _one_run(runtime, 32)
    assert all(r.path.startswith("/api/v3/") for r in requests)
    assert requests[0].operation == EXCHANGE and {r.auth for r in requests} == {"app", "installation"}
    operations = {r.operation for r in requests}
    assert {"actions/get-workflow-run-attempt", "issues/create-comment", "checks/create", "checks/update"} <= operations
    assert "repos/create-commit-status" not in operations
