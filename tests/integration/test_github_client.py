"""The backend's GitHub client (adapters/github_client.py: gidgethub's sans-I/O core over urllib3),
against the local GitHub, which checks every request and answer against
GitHub's OpenAPI description: App credentials (JWT -> installation token) and token credentials
both work for every call the backend makes, on github.com's layout and Enterprise Server's
/api/v3, and its error answers keep what ``adapters.github.classify`` reads.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import gidgethub
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from modelrun.adapters import github_client
from modelrun.adapters.github import classify
from modelrun.adapters.github_client import GitHubClient
from modelrun.errors import GitHubBadCredentials, GitHubNotFound, GitHubRateLimited, GitHubUnavailable, Unreachable
from modelrun_local.github_server import ENTERPRISE_API_PATH, LocalGitHub
from modelrun_local.stack import ROOT
from tests.integration.local_github.support import COMMENTS, OWNER_REPO, REPO, SHA, app_installation_token


@pytest.fixture
def gh() -> Iterator[LocalGitHub]:
    """The server of local_github/conftest.py, on the fixed token these tests' token credentials use."""
    with LocalGitHub(token="local-token", check_responses=True) as server:
        yield server
        assert server.response_errors == []


def app_client(gh: LocalGitHub) -> GitHubClient:
    token, expires_at = app_installation_token(gh)
    assert token.startswith("ghs_") and expires_at.endswith("Z")
    return GitHubClient(gh.url, oauth_token=token)


def every_backend_call(client: GitHubClient, gh: LocalGitHub) -> None:
    """The calls adapters/github.py makes, each answer checked for what it reads."""
    pr = {**OWNER_REPO, "number": 7}
    ids = [client.post(COMMENTS, pr, data={"body": f"comment {i}"})["id"] for i in range(5)]
    # Three pages of two: the Link header's next pages are followed to the end.
    listed = list(client.getiter(COMMENTS + "{?per_page}", {**pr, "per_page": 2}))
    assert [c["id"] for c in listed] == ids
    assert {c["user"]["login"] for c in listed} == {listed[0]["user"]["login"]}
    edited = client.patch(
        "/repos/{owner}/{repo}/issues/comments/{comment_id}",
        {**OWNER_REPO, "comment_id": ids[0]},
        data={"body": "edited"},
    )
    assert edited["body"] == "edited" and gh.comments(REPO, 7)[0]["body"] == "edited"
    client.post(
        "/repos/{owner}/{repo}/statuses/{sha}",
        {**OWNER_REPO, "sha": SHA},
        data={"state": "success", "description": "done", "context": "modelrun", "target_url": "https://example.com/r"},
    )
    assert [s["state"] for s in gh.statuses(REPO, SHA)] == ["success"]
    assert client.getitem("/repos/{owner}/{repo}", OWNER_REPO)["default_branch"] == gh.default_branch
    gh.actions_job(
        REPO, "pull_request", sha=SHA, run_id=42, run_attempt=2, actor="dev", environment="staging",
        pull_request=(7, "feature", "main", "f" * 40),
    )  # fmt: skip
    run = client.getitem(
        "/repos/{owner}/{repo}/actions/runs/{run_id}/attempts/{attempt}{?exclude_pull_requests}",
        {**OWNER_REPO, "run_id": 42, "attempt": 2, "exclude_pull_requests": "false"},
    )
    assert (run["id"], run["run_attempt"], run["head_sha"]) == (42, 2, SHA)
    assert [p["number"] for p in run["pull_requests"]] == [7]


def test_app_credentials_work_for_every_backend_call(gh: LocalGitHub) -> None:
    every_backend_call(app_client(gh), gh)
    assert not [r for r in gh.requests if r.rejected], [r.reason for r in gh.requests if r.rejected]
    # The JWT only for the exchange; the installation token for everything else.
    assert [r.auth for r in gh.requests][:2] == ["app", "installation"]
    assert {r.auth for r in gh.requests[1:]} == {"installation"}


def test_token_credentials_work_for_every_backend_call(gh: LocalGitHub) -> None:
    every_backend_call(GitHubClient(gh.url, oauth_token="local-token"), gh)
    assert {r.auth for r in gh.requests} == {"token"} and not [r for r in gh.requests if r.rejected]


def test_enterprise_servers_api_path_is_kept() -> None:
    with LocalGitHub(token=None, api_path=ENTERPRISE_API_PATH, check_responses=True) as gh:
        client = app_client(gh)
        client.post(COMMENTS, {**OWNER_REPO, "number": 3}, data={"body": "hello"})
        assert [c["body"] for c in gh.comments(REPO, 3)] == ["hello"]
        assert all(r.path.startswith(ENTERPRISE_API_PATH + "/") for r in gh.requests)
        assert gh.response_errors == []


def test_error_answers_keep_what_classify_reads(gh: LocalGitHub) -> None:
    client = GitHubClient(gh.url, oauth_token="local-token")

    def answer() -> Exception:
        with pytest.raises(gidgethub.HTTPException) as caught:
            client.getitem("/repos/{owner}/{repo}", OWNER_REPO)
        return classify(caught.value.status_code, caught.value.headers, str(caught.value))

    gh.fail_next(1, 403, retry_after=30)
    limited = answer()
    assert isinstance(limited, GitHubRateLimited) and limited.retry_after == 30
    gh.fail_next(1, 502)
    assert isinstance(answer(), GitHubUnavailable)
    client.oauth_token = "not-a-token"
    bad = answer()
    assert isinstance(bad, GitHubBadCredentials) and "Bad credentials" in str(bad)
    client.oauth_token = "local-token"
    with pytest.raises(gidgethub.HTTPException) as caught:
        client.getitem("/repos/{owner}/{repo}/issues/comments/{comment_id}", {**OWNER_REPO, "comment_id": 1})
    assert isinstance(classify(caught.value.status_code, caught.value.headers, str(caught.value)), GitHubNotFound)


def test_a_jwt_signed_by_another_key_is_refused_at_the_exchange(gh: LocalGitHub) -> None:
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = other.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    with pytest.raises(gidgethub.HTTPException) as caught:
        github_client.installation_token(GitHubClient(gh.url), str(gh.app_id), gh.installation_id, pem)
    assert caught.value.status_code == 401
    assert [r.reason for r in gh.requests] == ["JWT not signed by the App's key"]


def test_the_apps_jwt_is_rs256_as_github_documents_it() -> None:
    """Signed with cryptography alone; read back here by PyJWT, as GitHub would."""
    import jwt as pyjwt

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    before = int(time.time())
    token = github_client.app_jwt("1234", key)
    after = int(time.time())
    assert pyjwt.get_unverified_header(token) == {"alg": "RS256", "typ": "JWT"}
    claims = pyjwt.decode(token, key.public_key(), algorithms=["RS256"], options={"require": ["iat", "exp", "iss"]})
    assert claims["iss"] == "1234" and claims["exp"] - claims["iat"] == 600  # GitHub allows ten minutes at most
    # A minute back, for clock drift: the clock read while signing lies between these two reads.
    assert before - 60 <= claims["iat"] <= after - 60
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    with pytest.raises(pyjwt.InvalidSignatureError):
        pyjwt.decode(token, other.public_key(), algorithms=["RS256"])
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    assert pyjwt.decode(github_client.app_jwt("1234", pem.decode()), key.public_key(), algorithms=["RS256"])["iss"]


def test_no_answer_is_unreachable_not_an_error_answer() -> None:
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(Unreachable, match=r"GET http://127\.0\.0\.1"):
        GitHubClient(f"http://127.0.0.1:{port}", timeout=2).getitem("/repos/{owner}/{repo}", OWNER_REPO)


def test_the_client_loads_no_jwt_or_cryptography_until_an_app_signs() -> None:
    code = (
        "import json, sys; import modelrun.adapters.github_client as c; "
        "print(json.dumps(sorted(m for m in ('jwt', 'cryptography', 'httpx', 'githubkit') if m in sys.modules)))"
    )
    env = {"PYTHONPATH": str(ROOT / "functions"), "PATH": "/usr/bin:/bin"}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert json.loads(done.stdout) == []
