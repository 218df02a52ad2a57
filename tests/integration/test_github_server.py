"""LocalGitHub: state round trips, GitHub's validation rules, auth, fault injection, the backend's
client (adapters/github_client.py); raw requests go through httpx, a test-only client.

Every server here runs with ``check_responses=True``: our answers must also fit the response
schemas of GitHub's description, so the fake stays shaped like GitHub.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import httpx
import jwt as pyjwt
import pytest

from modelrun.adapters import github_client
from modelrun.adapters.github_client import GitHubClient
from modelrun_local.github_server import ENTERPRISE_API_PATH, LocalGitHub, github_description

REPO = "octo/avm"
TOKEN = "test-token"
SHA = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture
def gh() -> Iterator[LocalGitHub]:
    with LocalGitHub(token=TOKEN, check_responses=True) as server:
        yield server
        assert server.response_errors == []


@pytest.fixture
def client(gh: LocalGitHub) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {TOKEN}", "X-GitHub-Api-Version": "2022-11-28"}
    with httpx.Client(base_url=gh.url, headers=headers) as c:
        yield c


@pytest.fixture
def app_client(gh: LocalGitHub) -> Iterator[httpx.Client]:
    """A client with an installation token of the App (check runs need one)."""
    issued = httpx.post(
        f"{gh.url}/app/installations/{gh.installation_id}/access_tokens",
        headers={"Authorization": f"Bearer {_app_jwt(gh)}"},
    )
    headers = {"Authorization": f"token {issued.json()['token']}", "X-GitHub-Api-Version": "2022-11-28"}
    with httpx.Client(base_url=gh.url, headers=headers) as c:
        yield c
    gh.requests.clear()


def _jwt(claims: dict[str, Any]) -> str:
    def part(obj: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).decode().rstrip("=")

    return f"{part({'alg': 'RS256', 'typ': 'JWT'})}.{part(claims)}.c2lnbmF0dXJl"


def test_comments_round_trip(gh: LocalGitHub, client: httpx.Client) -> None:
    created = client.post(f"/repos/{REPO}/issues/7/comments", json={"body": "<!-- modelrun -->\nqueued"})
    assert created.status_code == 201
    comment = created.json()
    assert comment["user"]["login"] == "modelrun[bot]"
    assert comment["user"]["type"] == "Bot"
    assert comment["html_url"].endswith(f"/pull/7#issuecomment-{comment['id']}")
    assert created.headers["Location"] == comment["url"]

    edited = client.patch(f"/repos/{REPO}/issues/comments/{comment['id']}", json={"body": "done"})
    assert edited.status_code == 200
    assert edited.json()["body"] == "done"

    listed = client.get(f"/repos/{REPO}/issues/7/comments").json()
    assert [(c["id"], c["body"]) for c in listed] == [(comment["id"], "done")]
    assert [c["body"] for c in gh.comments(REPO, 7)] == ["done"]
    assert gh.comments(REPO, 8) == []
    # The same comment id under another repository does not exist.
    assert client.patch(f"/repos/octo/other/issues/comments/{comment['id']}", json={"body": "x"}).status_code == 404
    assert [c["body"] for c in gh.comments(REPO, 7)] == ["done"]
    assert [(r.method, r.status, r.write) for r in gh.requests] == [
        ("POST", 201, True),
        ("PATCH", 200, True),
        ("GET", 200, False),
        ("PATCH", 404, True),
    ]
    assert all(a.answered_at <= b.answered_at for a, b in zip(gh.requests, gh.requests[1:]))


def test_pagination_follows_link_headers(gh: LocalGitHub, client: httpx.Client) -> None:
    for i in range(5):
        client.post(f"/repos/{REPO}/issues/3/comments", json={"body": f"c{i}"})
    first = client.get(f"/repos/{REPO}/issues/3/comments", params={"per_page": 2})
    assert [c["body"] for c in first.json()] == ["c0", "c1"]
    assert 'rel="next"' in first.headers["Link"] and 'rel="last"' in first.headers["Link"]
    bodies, url = [], f"/repos/{REPO}/issues/3/comments?per_page=2"
    while url:
        page = client.get(url)
        bodies += [c["body"] for c in page.json()]
        url = page.links.get("next", {}).get("url", "")
    assert bodies == [f"c{i}" for i in range(5)]
    assert "Link" not in client.get(f"/repos/{REPO}/issues/3/comments").headers


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [
        ("POST", f"/repos/{REPO}/issues/1/comments", {}, 422),  # no body
        ("POST", f"/repos/{REPO}/issues/1/comments", {"body": 5}, 422),  # wrong type
        ("POST", f"/repos/{REPO}/issues/1/comments", {"body": "x" * 65537}, 422),  # GitHub's limit
        ("POST", f"/repos/{REPO}/issues/1/comments", {"body": "  "}, 422),  # blank
        ("POST", f"/repos/{REPO}/statuses/{SHA}", {"state": "bogus"}, 422),  # not in the enum
        ("POST", f"/repos/{REPO}/statuses/{SHA}", {"state": "success", "description": "d" * 141}, 422),
        ("POST", f"/repos/{REPO}/issue/1/comments", {"body": "x"}, 404),  # no such path
        ("DELETE", f"/repos/{REPO}/issues/1/comments", None, 404),  # no such method
        ("GET", f"/repos/{REPO}/issues/one/comments", None, 404),  # path parameter not an integer
        ("GET", f"/repos/{REPO}/issues/1/events", None, 404),  # GitHub has it, we do not
        ("GET", f"/repos/{REPO}/issues/comments/1001", None, 404),  # nor this: nothing here reads one comment
    ],
)
def test_validator_rejects_what_github_rejects(
    gh: LocalGitHub, client: httpx.Client, method: str, path: str, body: Any, status: int
) -> None:
    response = client.request(method, path, json=body)
    assert response.status_code == status, response.text
    payload = response.json()
    assert payload["message"] and payload["documentation_url"].startswith("https://docs.github.com/")
    if status == 422:
        assert payload["errors"]
    (recorded,) = gh.requests
    assert recorded.rejected and recorded.reason
    assert gh.comments(REPO, 1) == [] and gh.statuses(REPO, SHA) == [] and gh.check_runs(REPO, SHA) == []


@pytest.mark.parametrize(
    "body",
    [
        {"name": "modelrun"},  # no head_sha
        {"name": "m", "head_sha": SHA, "status": "completed"},  # completed without a conclusion
        {"name": "m", "head_sha": SHA, "output": {"title": "t", "summary": "s" * 65536}},  # GitHub's limit
        {"name": "m", "head_sha": SHA, "status": "done"},  # not in the enum
    ],
)
def test_check_runs_are_validated_as_github_validates_them(
    gh: LocalGitHub, app_client: httpx.Client, body: dict[str, Any]
) -> None:
    gh.requests.clear()
    response = app_client.post(f"/repos/{REPO}/check-runs", json=body)
    assert response.status_code == 422, response.text
    assert response.json()["errors"]
    (recorded,) = gh.requests
    assert recorded.rejected and recorded.reason
    assert gh.check_runs(REPO, SHA) == []


def test_check_runs_are_refused_to_a_token_as_github_refuses_them(gh: LocalGitHub, client: httpx.Client) -> None:
    created = client.post(f"/repos/{REPO}/check-runs", json={"name": "modelrun", "head_sha": SHA})
    assert created.status_code == 403
    assert created.json()["message"] == "You must authenticate via a GitHub App."
    assert client.patch(f"/repos/{REPO}/check-runs/1001", json={"status": "in_progress"}).status_code == 403
    assert [r.reason for r in gh.requests] == ["check runs need GitHub App credentials"] * 2
    assert gh.check_runs(REPO, SHA) == []


def test_malformed_json_is_400(client: httpx.Client) -> None:
    response = client.post(
        f"/repos/{REPO}/issues/1/comments", content=b"{nope", headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json()["message"] == "Problems parsing JSON"


def test_authentication_required(gh: LocalGitHub) -> None:
    url = f"{gh.url}/repos/{REPO}/issues/1/comments"
    assert httpx.post(url, json={"body": "x"}).status_code == 401
    wrong = httpx.post(url, json={"body": "x"}, headers={"Authorization": "Bearer nope"})
    assert (wrong.status_code, wrong.json()["message"]) == (401, "Bad credentials")
    # Both schemes GitHub accepts for a token.
    assert httpx.post(url, json={"body": "x"}, headers={"Authorization": f"token {TOKEN}"}).status_code == 201
    assert httpx.post(url, json={"body": "y"}, headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 201
    assert [c["body"] for c in gh.comments(REPO, 1)] == ["x", "y"]
    assert [r.rejected for r in gh.requests] == [True, True, False, False]


def test_unsupported_api_version_is_400(client: httpx.Client) -> None:
    response = client.get(f"/repos/{REPO}/issues/1/comments", headers={"X-GitHub-Api-Version": "2020-01-01"})
    assert response.status_code == 400


def test_fail_next_rate_limit_then_success(gh: LocalGitHub, client: httpx.Client) -> None:
    gh.fail_next(2, 429, retry_after=1)
    path = f"/repos/{REPO}/issues/2/comments"
    for _ in range(2):
        limited = client.post(path, json={"body": "report"})
        assert limited.status_code == 429
        assert limited.headers["Retry-After"] == "1"
        assert "secondary rate limit" in limited.json()["message"]
    assert gh.comments(REPO, 2) == []  # an injected failure changes nothing
    assert client.post(path, json={"body": "report"}).status_code == 201
    assert [c["body"] for c in gh.comments(REPO, 2)] == ["report"]
    assert [(r.status, r.injected) for r in gh.requests] == [(429, True), (429, True), (201, False)]


def test_fail_next_server_error(gh: LocalGitHub, client: httpx.Client) -> None:
    gh.fail_next(1)
    assert client.post(f"/repos/{REPO}/statuses/{SHA}", json={"state": "pending"}).status_code == 502
    assert gh.statuses(REPO, SHA) == []
    assert client.post(f"/repos/{REPO}/statuses/{SHA}", json={"state": "pending"}).status_code == 201


def test_statuses_and_check_runs(gh: LocalGitHub, client: httpx.Client, app_client: httpx.Client) -> None:
    client.post(f"/repos/{REPO}/statuses/{SHA}", json={"state": "pending", "context": "modelrun"})
    client.post(
        f"/repos/{REPO}/statuses/{SHA}",
        json={"state": "success", "context": "modelrun", "target_url": "https://example.com/r/1"},
    )
    assert [(s["state"], s["context"]) for s in gh.statuses(REPO, SHA)] == [
        ("pending", "modelrun"),
        ("success", "modelrun"),
    ]
    run = app_client.post(f"/repos/{REPO}/check-runs", json={"name": "modelrun", "head_sha": SHA}).json()
    assert (run["status"], run["conclusion"]) == ("queued", None)
    running = app_client.patch(
        f"/repos/{REPO}/check-runs/{run['id']}",
        json={
            "status": "in_progress",
            "details_url": "https://example.com/logs/1",
            "started_at": "2026-01-02T03:04:05Z",
        },
    ).json()
    assert (running["status"], running["details_url"]) == ("in_progress", "https://example.com/logs/1")
    done = app_client.patch(
        f"/repos/{REPO}/check-runs/{run['id']}",
        json={"conclusion": "success", "output": {"title": "COD 8.1", "summary": "passed"}},
    ).json()
    assert (done["status"], done["conclusion"], done["output"]["title"]) == (
        "completed",
        "success",
        "COD 8.1",
    )
    assert done["completed_at"]
    assert gh.check_runs(REPO, SHA)[0]["conclusion"] == "success"


def test_a_commits_check_runs_are_listed_from_its_state(
    gh: LocalGitHub, client: httpx.Client, app_client: httpx.Client
) -> None:
    """GET /repos/{o}/{r}/commits/{ref}/check-runs as GitHub answers it: newest first, by name and
    status, the newest of each name by default (filter=latest), every one with filter=all, in
    pages linked by Link; a token may read them (only writes need an App)."""
    ids = []
    for external_id in ("run-a", "run-b", "run-a"):
        body = {"name": "modelrun", "head_sha": SHA, "external_id": external_id}
        ids.append(app_client.post(f"/repos/{REPO}/check-runs", json=body).json()["id"])
    lint = app_client.post(f"/repos/{REPO}/check-runs", json={"name": "lint", "head_sha": SHA, "status": "in_progress"})
    app_client.post(f"/repos/{REPO}/check-runs", json={"name": "modelrun", "head_sha": "0" * 40})  # another commit
    path = f"/repos/{REPO}/commits/{SHA}/check-runs"

    def listed(**query: Any) -> list[tuple[int, str]]:
        page = app_client.get(path, params=query).json()
        assert page["total_count"] >= len(page["check_runs"])
        return [(r["id"], r["external_id"]) for r in page["check_runs"]]

    assert listed() == [(lint.json()["id"], ""), (ids[2], "run-a")]
    assert listed(check_name="modelrun", filter="all") == [(ids[2], "run-a"), (ids[1], "run-b"), (ids[0], "run-a")]
    assert listed(status="in_progress", filter="all") == [(lint.json()["id"], "")]
    first = app_client.get(path, params={"check_name": "modelrun", "filter": "all", "per_page": 2})
    assert [r["id"] for r in first.json()["check_runs"]] == [ids[2], ids[1]]
    assert first.json()["total_count"] == 3
    following = httpx.get(first.links["next"]["url"], headers=app_client.headers).json()
    assert [r["id"] for r in following["check_runs"]] == [ids[0]]
    assert client.get(path).status_code == 200  # the token's read
    assert client.get(path, params={"filter": "some"}).status_code == 422  # not in the enum
    assert listed(check_name="nothing") == []
    empty = app_client.get(f"/repos/{REPO}/commits/{'1' * 40}/check-runs").json()
    assert empty == {"total_count": 0, "check_runs": []}


def test_installation_token_from_app_jwt(gh: LocalGitHub) -> None:
    url = f"{gh.url}/app/installations/{gh.installation_id}/access_tokens"
    jwt = _app_jwt(gh)
    assert httpx.post(url, headers={"Authorization": f"token {TOKEN}"}).status_code == 401  # a token is no JWT
    issued = httpx.post(url, headers={"Authorization": f"Bearer {jwt}"})
    assert issued.status_code == 201, issued.text
    token = issued.json()["token"]
    assert token.startswith("ghs_")
    expires = datetime.fromisoformat(issued.json()["expires_at"].replace("Z", "+00:00")).timestamp()
    assert 3590 < expires - time.time() <= 3600  # an hour, as GitHub's
    comment = httpx.post(
        f"{gh.url}/repos/{REPO}/issues/4/comments",
        json={"body": "via app"},
        headers={"Authorization": f"token {token}"},
    )
    assert comment.status_code == 201
    # The JWT itself is not a token for the REST endpoints.
    assert (
        httpx.get(f"{gh.url}/repos/{REPO}/issues/4/comments", headers={"Authorization": f"Bearer {jwt}"}).status_code
        == 401
    )
    assert [(r.status, r.auth) for r in gh.requests] == [(401, None), (201, "app"), (201, "installation"), (401, None)]


def _app_jwt(gh: LocalGitHub, key: Any = None, headers: dict[str, Any] | None = None, **claims: Any) -> str:
    """A JWT as the backend's client (gidgethub) makes one for the App: iat a minute back, exp nine
    minutes ahead."""
    now = int(time.time())
    body = {"iat": now - 60, "exp": now + 540, "iss": str(gh.app_id)} | claims
    body = {k: v for k, v in body.items() if v is not None}
    return pyjwt.encode(body, key or gh.app_credentials()["private_key"], algorithm="RS256", headers=headers)


def _other_key() -> Any:
    from cryptography.hazmat.primitives.asymmetric import rsa

    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _t(offset: int) -> int:
    return int(time.time()) + offset


@pytest.mark.parametrize(
    ("case", "make", "reason"),
    [
        ("signed by another key", lambda gh: _app_jwt(gh, key=_other_key()), "not signed by the App's key"),
        ("another app's id", lambda gh: _app_jwt(gh, iss=str(gh.app_id + 1)), "is not app"),
        ("no issuer", lambda gh: _app_jwt(gh, iss=None), "is not app"),
        ("expired", lambda gh: _app_jwt(gh, iat=_t(-700), exp=_t(-100)), "representing the future time"),
        ("valid for an hour", lambda gh: _app_jwt(gh, iat=_t(0), exp=_t(3600)), "too far in the future"),
        ("issued in the future", lambda gh: _app_jwt(gh, iat=_t(300), exp=_t(500)), "a time in the past"),
        ("no expiry", lambda gh: _app_jwt(gh, exp=None), "must be integers"),
        ("not RS256", lambda gh: pyjwt.encode({"iss": str(gh.app_id)}, "s" * 32, algorithm="HS256"), "must be RS256"),
        ("unsigned", lambda gh: _jwt({"iat": _t(-60), "exp": _t(540), "iss": str(gh.app_id)}), "not signed by"),
        ("not a JWT", lambda gh: "ghs_notajwt", "needs an app JWT"),
    ],
)
def test_the_app_endpoint_refuses_jwts_github_refuses(gh: LocalGitHub, case: str, make: Any, reason: str) -> None:
    url = f"{gh.url}/app/installations/{gh.installation_id}/access_tokens"
    refused = httpx.post(url, headers={"Authorization": f"Bearer {make(gh)}"})
    assert refused.status_code == 401, case
    assert refused.json()["message"] and refused.json()["documentation_url"].startswith("https://docs.github.com/")
    (recorded,) = gh.requests
    assert recorded.rejected and recorded.auth is None
    assert reason in str(recorded.reason), recorded.reason


def test_a_token_for_another_apps_installation_is_not_found(gh: LocalGitHub) -> None:
    url = f"{gh.url}/app/installations/{gh.installation_id + 1}/access_tokens"
    assert httpx.post(url, headers={"Authorization": f"Bearer {_app_jwt(gh)}"}).status_code == 404


def test_an_expired_installation_token_is_refused_as_github_refuses_it(gh: LocalGitHub) -> None:
    url = f"{gh.url}/app/installations/{gh.installation_id}/access_tokens"
    token = httpx.post(url, headers={"Authorization": f"Bearer {_app_jwt(gh)}"}).json()["token"]
    path = f"{gh.url}/repos/{REPO}/issues/4/comments"
    assert httpx.get(path, headers={"Authorization": f"token {token}"}).status_code == 200
    assert gh.expire_installation_tokens() == 1  # an hour later
    expired = httpx.get(path, headers={"Authorization": f"token {token}"})
    assert (expired.status_code, expired.json()["message"]) == (401, "Bad credentials")
    assert gh.requests[-1].reason == "installation token expired"


def test_installation_tokens_expire_after_their_lifetime() -> None:
    with LocalGitHub(token=None, installation_token_ttl=timedelta(seconds=1)) as gh:
        url = f"{gh.url}/app/installations/{gh.installation_id}/access_tokens"
        token = httpx.post(url, headers={"Authorization": f"Bearer {_app_jwt(gh)}"}).json()["token"]
        path = f"{gh.url}/repos/{REPO}/issues/4/comments"
        deadline = time.time() + 3
        while httpx.get(path, headers={"Authorization": f"token {token}"}).status_code == 200:
            assert time.time() < deadline, "the token outlived its lifetime"
            time.sleep(0.2)
        assert gh.requests[-1].reason == "installation token expired"


def test_without_a_fixed_token_only_installation_tokens_pass() -> None:
    with LocalGitHub(token=None) as gh:
        path = f"{gh.url}/repos/{REPO}/issues/4/comments"
        assert httpx.get(path, headers={"Authorization": "token local-token"}).status_code == 401


def _installation_client(gh: LocalGitHub) -> GitHubClient:
    """The backend's client on the App's installation token (its JWT exchanged as the adapter does)."""
    creds = gh.app_credentials()
    token, _ = github_client.installation_token(
        GitHubClient(gh.url), creds["app_id"], int(creds["installation_id"]), creds["private_key"]
    )
    return GitHubClient(gh.url, oauth_token=token)


OWNER_REPO = {"owner": "octo", "repo": "avm"}
COMMENTS = "/repos/{owner}/{repo}/issues/{number}/comments"


def test_the_backends_client_authenticates_as_the_app_installation() -> None:
    with LocalGitHub(token=None, check_responses=True) as gh:
        github = _installation_client(gh)
        github.post(COMMENTS, {**OWNER_REPO, "number": 11}, data={"body": "<!-- modelrun -->\nqueued"})
        github.post(
            "/repos/{owner}/{repo}/statuses/{sha}",
            {**OWNER_REPO, "sha": SHA},
            data={"state": "pending", "context": "modelrun"},
        )
        assert [(r.operation, r.auth) for r in gh.requests] == [
            ("apps/create-installation-access-token", "app"),
            ("issues/create-comment", "installation"),
            ("repos/create-commit-status", "installation"),
        ]
        assert gh.response_errors == []


def test_enterprise_server_serves_the_api_under_api_v3() -> None:
    """GitHub Enterprise Server: REST at https://HOST/api/v3/..., the OIDC issuer at
    https://HOST/_services/token; URLs in answers name the API's base."""
    with LocalGitHub(token=TOKEN, api_path=ENTERPRISE_API_PATH, check_responses=True) as gh:
        assert gh.url == f"{gh.server_url}/api/v3"
        assert gh.issuer.issuer == f"{gh.server_url}/_services/token"
        headers = {"Authorization": f"token {TOKEN}"}
        at_root = httpx.post(f"{gh.server_url}/repos/{REPO}/issues/3/comments", json={"body": "x"}, headers=headers)
        assert at_root.status_code == 404 and gh.requests[-1].reason == "not under the API path /api/v3"
        for i in range(3):
            created = httpx.post(f"{gh.url}/repos/{REPO}/issues/3/comments", json={"body": f"c{i}"}, headers=headers)
            assert created.status_code == 201, created.text
            assert created.json()["url"].startswith(f"{gh.url}/repos/{REPO}/issues/comments/")
        page = httpx.get(f"{gh.url}/repos/{REPO}/issues/3/comments", params={"per_page": 2}, headers=headers)
        assert page.links["next"]["url"].startswith(f"{gh.url}/repos/{REPO}/issues/3/comments?")
        assert httpx.get(f"{gh.issuer.issuer}/.well-known/jwks").status_code == 200

        # The backend's client with an App, based at /api/v3: the token exchange and the calls land there
        github = _installation_client(gh)
        listed = list(github.getiter(COMMENTS + "{?per_page}", {**OWNER_REPO, "number": 3, "per_page": 2}))
        assert [c["body"] for c in listed] == ["c0", "c1", "c2"]
        tail = gh.requests[-3:]
        assert [(r.path, r.auth) for r in tail] == [
            (f"/api/v3/app/installations/{gh.installation_id}/access_tokens", "app"),
            (f"/api/v3/repos/{REPO}/issues/3/comments", "installation"),
            (f"/api/v3/repos/{REPO}/issues/3/comments", "installation"),
        ]
        assert gh.response_errors == []


def test_the_backends_client_requests_pass_validation(gh: LocalGitHub) -> None:
    github = GitHubClient(gh.url, oauth_token=TOKEN)
    pr = {**OWNER_REPO, "number": 11}
    created = github.post(COMMENTS, pr, data={"body": "<!-- modelrun -->\nqueued"})
    assert created["user"]["login"] == "modelrun[bot]"
    updated = github.patch(
        "/repos/{owner}/{repo}/issues/comments/{comment_id}",
        {**OWNER_REPO, "comment_id": created["id"]},
        data={"body": "<!-- modelrun -->\ndone"},
    )
    assert updated["body"] == "<!-- modelrun -->\ndone"
    status = github.post(
        "/repos/{owner}/{repo}/statuses/{sha}",
        {**OWNER_REPO, "sha": SHA},
        data={"state": "success", "context": "modelrun", "description": "COD 8.1"},
    )
    assert status["state"] == "success"
    listed = list(github.getiter(COMMENTS + "{?per_page}", {**pr, "per_page": 1}))
    assert [c["body"] for c in listed] == ["<!-- modelrun -->\ndone"]
    assert [c["body"] for c in gh.comments(REPO, 11)] == ["<!-- modelrun -->\ndone"]
    assert gh.statuses(REPO, SHA)[0]["description"] == "COD 8.1"
    assert not any(r.rejected for r in gh.requests), gh.requests
    assert sum(r.write for r in gh.requests) == 3


def test_description_is_loaded_once() -> None:
    assert github_description() is github_description()
    assert github_description().find("post", f"/repos/{REPO}/issues/1/comments") is not None


# -- the evidence a run request is checked against: workflow runs, repositories, the OIDC issuer ---

BASE_SHA = "fedcba9876543210fedcba9876543210fedcba98"
AUDIENCE = "https://sqs.us-east-1.amazonaws.com/123456789012/modelrun-run-requests"


def pr_job(gh: LocalGitHub, **overrides: Any) -> dict[str, str]:
    """A pull_request job for PR #7 (feature -> main), attempt 2, in the approval environment."""
    kwargs: dict[str, Any] = {
        "sha": SHA,
        "run_id": 16_011_227_436,
        "run_attempt": 2,
        "actor": "octocat",
        "environment": "staging",
        "pull_request": (7, "feature/x", "main", BASE_SHA),
        "triggering_actor": "maintainer-1",
    }
    return gh.actions_job(REPO, "pull_request", **(kwargs | overrides))


def test_a_workflow_run_attempt_is_served_after_actions_job(gh: LocalGitHub, client: httpx.Client) -> None:
    path = f"/repos/{REPO}/actions/runs/16011227436/attempts/2"
    assert client.get(path).status_code == 404  # GitHub has no such run yet
    env = pr_job(gh)
    run = client.get(path)
    assert run.status_code == 200, run.text
    doc = run.json()
    assert (doc["id"], doc["run_attempt"], doc["event"]) == (16_011_227_436, 2, "pull_request")
    assert (doc["head_sha"], doc["head_branch"]) == (SHA, "feature/x")  # the PR's head, not the merge commit
    assert doc["repository"]["full_name"] == REPO
    assert (doc["actor"]["login"], doc["triggering_actor"]["login"]) == ("octocat", "maintainer-1")
    (pull,) = doc["pull_requests"]
    assert (pull["number"], pull["head"]["sha"], pull["base"]["ref"], pull["base"]["sha"]) == (7, SHA, "main", BASE_SHA)
    assert doc["previous_attempt_url"].endswith("/actions/runs/16011227436/attempts/1")
    # the job's variables match GitHub's: the merge commit and ref, its token endpoint
    assert env["GITHUB_REF"] == "refs/pull/7/merge" and env["GITHUB_SHA"] != SHA
    assert (env["GITHUB_RUN_ID"], env["GITHUB_RUN_ATTEMPT"], env["GITHUB_EVENT_NAME"]) == (
        "16011227436",
        "2",
        "pull_request",
    )
    assert env["ACTIONS_ID_TOKEN_REQUEST_URL"].startswith(f"{gh.issuer.issuer}/")

    # another attempt, another run, another repository: 404, as GitHub answers
    assert client.get(f"/repos/{REPO}/actions/runs/16011227436/attempts/1").status_code == 404
    assert client.get(f"/repos/{REPO}/actions/runs/99/attempts/2").status_code == 404
    assert client.get("/repos/octo/other/actions/runs/16011227436/attempts/2").status_code == 404
    assert [(r.status, r.operation) for r in gh.requests] == [(404, "actions/get-workflow-run-attempt")] + [
        (200, "actions/get-workflow-run-attempt")
    ] + [(404, "actions/get-workflow-run-attempt")] * 3


def test_a_branch_jobs_workflow_run_has_no_pull_requests(gh: LocalGitHub, client: httpx.Client) -> None:
    env = gh.actions_job(REPO, "push", sha=SHA, run_id=5, actor="octocat", environment="modelrun-main")
    doc = client.get(f"/repos/{REPO}/actions/runs/5/attempts/1").json()
    assert (doc["event"], doc["head_sha"], doc["head_branch"], doc["pull_requests"]) == ("push", SHA, "main", [])
    assert doc["previous_attempt_url"] is None
    assert (env["GITHUB_REF"], env["GITHUB_SHA"], env["GITHUB_REF_NAME"]) == ("refs/heads/main", SHA, "main")


def test_a_repository_names_its_default_branch(gh: LocalGitHub, client: httpx.Client) -> None:
    repo = client.get(f"/repos/{REPO}")
    assert repo.status_code == 200, repo.text
    assert (repo.json()["full_name"], repo.json()["default_branch"]) == (REPO, "main")
    gh.default_branch = "trunk"
    assert client.get(f"/repos/{REPO}").json()["default_branch"] == "trunk"
    assert httpx.get(f"{gh.url}/repos/{REPO}", headers={"Authorization": "Bearer nope"}).status_code == 401


def test_the_backends_client_reads_workflow_runs_and_repositories_as_the_backend_does(gh: LocalGitHub) -> None:
    from modelrun.domain.evidence import WorkflowRunFacts

    pr_job(gh)
    github = GitHubClient(gh.url, oauth_token=TOKEN)
    # the calls modelrun.adapters.github.Repositories makes
    run = github.getitem(
        "/repos/{owner}/{repo}/actions/runs/{run_id}/attempts/{attempt}{?exclude_pull_requests}",
        {**OWNER_REPO, "run_id": 16_011_227_436, "attempt": 2, "exclude_pull_requests": "false"},
    )
    assert (run["id"], run["run_attempt"]) == (16_011_227_436, 2)
    facts = WorkflowRunFacts.from_api(dict(run))
    assert (facts.repository, facts.event, facts.head_sha, facts.triggering_actor) == (
        REPO,
        "pull_request",
        SHA,
        "maintainer-1",
    )
    assert [(p.number, p.base_ref, p.base_sha) for p in facts.pull_requests] == [(7, "main", BASE_SHA)]
    assert github.getitem("/repos/{owner}/{repo}", OWNER_REPO)["default_branch"] == "main"
    assert not any(r.rejected for r in gh.requests), gh.requests


def test_the_oidc_issuer_publishes_its_discovery_document_and_keys(gh: LocalGitHub) -> None:
    issuer = gh.issuer.issuer
    assert issuer == f"{gh.url}/_services/token"  # shaped as GitHub Enterprise Server's
    discovery = httpx.get(f"{issuer}/.well-known/openid-configuration")
    assert discovery.status_code == 200
    doc = discovery.json()
    assert doc["issuer"] == issuer and doc["jwks_uri"] == f"{issuer}/.well-known/jwks"
    assert doc["id_token_signing_alg_values_supported"] == ["RS256"]
    (key,) = httpx.get(doc["jwks_uri"]).json()["keys"]
    assert (key["kty"], key["alg"], key["use"], key["kid"]) == ("RSA", "RS256", "sig", gh.issuer.kid)
    assert "d" not in key  # the public half only
    assert httpx.post(f"{issuer}/.well-known/jwks").status_code == 405
    assert httpx.get(f"{issuer}/nope").status_code == 404
    assert gh.requests == []  # not GitHub's REST API: not in its request log


def test_a_jobs_oidc_token_verifies_against_the_issuers_keys_with_githubs_claims(gh: LocalGitHub) -> None:
    import jwt

    env = pr_job(gh)
    url = f"{env['ACTIONS_ID_TOKEN_REQUEST_URL']}&audience={AUDIENCE}"
    bearer = {"Authorization": f"Bearer {env['ACTIONS_ID_TOKEN_REQUEST_TOKEN']}"}
    assert httpx.get(url).status_code == 401  # no bearer
    wrong = httpx.get(url, headers={"Authorization": "Bearer not-this-jobs"})
    assert (wrong.status_code, wrong.json()["message"]) == (401, "Bad credentials")
    answered = httpx.get(url, headers=bearer)
    assert answered.status_code == 200
    token = answered.json()["value"]
    assert answered.json()["count"] == 1

    jwks = jwt.PyJWKClient(f"{gh.issuer.issuer}/.well-known/jwks")
    key = jwks.get_signing_key_from_jwt(token).key
    claims = jwt.decode(token, key, algorithms=["RS256"], audience=AUDIENCE, issuer=gh.issuer.issuer)
    assert claims["aud"] == AUDIENCE and claims["iss"] == gh.issuer.issuer
    assert {k: claims[k] for k in ("repository", "repository_owner", "ref", "sha", "event_name")} == {
        "repository": REPO,
        "repository_owner": "octo",
        "ref": "refs/pull/7/merge",
        "sha": env["GITHUB_SHA"],  # the merge commit, as GitHub signs it
        "event_name": "pull_request",
    }
    assert (claims["run_id"], claims["run_attempt"]) == ("16011227436", "2")  # strings, as GitHub sends them
    assert (claims["environment"], claims["actor"]) == ("staging", "octocat")
    assert (claims["head_ref"], claims["base_ref"]) == ("feature/x", "main")
    assert claims["sub"] == f"repo:{REPO}:environment:staging"
    assert claims["workflow_ref"] == f"{REPO}/.github/workflows/run-model.yaml@refs/pull/7/merge"
    assert claims["iat"] <= time.time() < claims["exp"] <= claims["iat"] + 600
    with pytest.raises(jwt.InvalidAudienceError):
        jwt.decode(token, key, algorithms=["RS256"], audience="sts.amazonaws.com", issuer=gh.issuer.issuer)
    with pytest.raises(jwt.InvalidIssuerError):
        jwt.decode(
            token, key, algorithms=["RS256"], audience=AUDIENCE, issuer="https://token.actions.githubusercontent.com"
        )

    # GitHub's default audience is the owner's URL; a bearer is one job's only
    plain = httpx.get(env["ACTIONS_ID_TOKEN_REQUEST_URL"], headers=bearer).json()["value"]
    assert jwt.decode(plain, options={"verify_signature": False})["aud"] == "https://github.com/octo"


def test_the_token_as_the_workflow_step_and_the_backend_see_it(gh: LocalGitHub) -> None:
    from cryptography.hazmat.primitives.asymmetric import rsa

    from modelrun.adapters.oidc import TokenVerifier
    from modelrun.domain.evidence import Unverified
    from modelrun_cli.enqueue import oidc_token
    from modelrun_local import oidc_issuer

    env = gh.actions_job(REPO, "workflow_dispatch", sha=SHA, run_id=77, actor="octocat", environment=None)
    token = oidc_token(env, AUDIENCE)  # the enqueue step's own request (urllib, ?…&audience=)
    claims = TokenVerifier(gh.issuer.issuer, AUDIENCE).claims(token)  # the submit function's check
    assert (claims.repository, claims.event_name, claims.ref, claims.sha) == (
        REPO,
        "workflow_dispatch",
        "refs/heads/main",
        SHA,
    )
    assert (claims.run_id, claims.run_attempt, claims.environment) == (77, 1, None)  # no environment claim
    with pytest.raises(Unverified, match="OIDC token"):
        TokenVerifier(gh.issuer.issuer, "another-audience").claims(token)
    job = oidc_issuer.Job(REPO, "push", "refs/heads/main", SHA, 78, 1, "octocat", "modelrun-main", f"{REPO}/w@main")
    forged = gh.issuer.mint(job, AUDIENCE, key=rsa.generate_private_key(public_exponent=65537, key_size=2048))
    with pytest.raises(Unverified, match="Signature verification failed"):
        TokenVerifier(gh.issuer.issuer, AUDIENCE).claims(forged)
