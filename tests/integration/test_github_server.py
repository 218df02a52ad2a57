"""LocalGitHub: state round trips, GitHub's validation rules, auth, fault injection, a real client.

Every server here runs with ``check_responses=True``: our answers must also fit the response
schemas of GitHub's description, so the fake stays shaped like GitHub.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from githubkit import GitHub, TokenAuthStrategy

from modelrun_local.github_server import LocalGitHub, github_description

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

    fetched = client.get(f"/repos/{REPO}/issues/comments/{comment['id']}").json()
    assert fetched["body"] == "done"
    assert [c["body"] for c in gh.comments(REPO, 7)] == ["done"]
    assert gh.comments(REPO, 8) == []
    # The same comment id under another repository does not exist.
    assert client.get(f"/repos/octo/other/issues/comments/{comment['id']}").status_code == 404
    assert [(r.method, r.status, r.write) for r in gh.requests] == [
        ("POST", 201, True),
        ("PATCH", 200, True),
        ("GET", 200, False),
        ("GET", 404, False),
    ]


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
        ("POST", f"/repos/{REPO}/check-runs", {"name": "modelrun"}, 422),  # no head_sha
        ("POST", f"/repos/{REPO}/check-runs", {"name": "m", "head_sha": SHA, "status": "completed"}, 422),
        ("POST", f"/repos/{REPO}/issue/1/comments", {"body": "x"}, 404),  # no such path
        ("DELETE", f"/repos/{REPO}/issues/1/comments", None, 404),  # no such method
        ("GET", f"/repos/{REPO}/issues/one/comments", None, 404),  # path parameter not an integer
        ("GET", f"/repos/{REPO}/issues/1/events", None, 404),  # GitHub has it, we do not
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


def test_statuses_and_check_runs(gh: LocalGitHub, client: httpx.Client) -> None:
    client.post(f"/repos/{REPO}/statuses/{SHA}", json={"state": "pending", "context": "modelrun"})
    client.post(
        f"/repos/{REPO}/statuses/{SHA}",
        json={"state": "success", "context": "modelrun", "target_url": "https://example.com/r/1"},
    )
    assert [(s["state"], s["context"]) for s in gh.statuses(REPO, SHA)] == [
        ("pending", "modelrun"),
        ("success", "modelrun"),
    ]
    run = client.post(f"/repos/{REPO}/check-runs", json={"name": "modelrun", "head_sha": SHA}).json()
    assert (run["status"], run["conclusion"]) == ("queued", None)
    done = client.patch(
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


def test_pull_request_seeded(gh: LocalGitHub, client: httpx.Client) -> None:
    assert client.get(f"/repos/{REPO}/pulls/9").status_code == 404
    gh.add_pull(REPO, 9, head_sha=SHA, head_ref="feature/x", base_ref="main", user="alice")
    pull = client.get(f"/repos/{REPO}/pulls/9").json()
    assert (pull["head"]["sha"], pull["head"]["ref"], pull["base"]["ref"]) == (SHA, "feature/x", "main")
    assert pull["user"]["login"] == "alice"


def test_installation_token_from_app_jwt(gh: LocalGitHub) -> None:
    url = f"{gh.url}/app/installations/42/access_tokens"
    now = int(time.time())
    jwt = _jwt({"iat": now - 60, "exp": now + 540, "iss": "12345"})
    assert httpx.post(url, headers={"Authorization": f"token {TOKEN}"}).status_code == 401
    too_long = _jwt({"iat": now, "exp": now + 3600, "iss": "12345"})
    assert httpx.post(url, headers={"Authorization": f"Bearer {too_long}"}).status_code == 401
    issued = httpx.post(url, headers={"Authorization": f"Bearer {jwt}"})
    assert issued.status_code == 201
    token = issued.json()["token"]
    assert token.startswith("ghs_") and issued.json()["expires_at"]
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


def test_githubkit_requests_pass_validation(gh: LocalGitHub) -> None:
    github = GitHub(TokenAuthStrategy(TOKEN), base_url=gh.url)
    created = github.rest.issues.create_comment("octo", "avm", 11, body="<!-- modelrun -->\nqueued").parsed_data
    assert created.user is not None and created.user.login == "modelrun[bot]"
    updated = github.rest.issues.update_comment("octo", "avm", created.id, body="<!-- modelrun -->\ndone")
    assert updated.parsed_data.body == "<!-- modelrun -->\ndone"
    status = github.rest.repos.create_commit_status(
        "octo", "avm", SHA, state="success", context="modelrun", description="COD 8.1"
    ).parsed_data
    assert status.state == "success"
    listed: list[Any] = list(
        github.rest.paginate(github.rest.issues.list_comments, owner="octo", repo="avm", issue_number=11, per_page=1)
    )
    assert [c.body for c in listed] == ["<!-- modelrun -->\ndone"]
    assert [c["body"] for c in gh.comments(REPO, 11)] == ["<!-- modelrun -->\ndone"]
    assert gh.statuses(REPO, SHA)[0]["description"] == "COD 8.1"
    assert not any(r.rejected for r in gh.requests), gh.requests
    assert sum(r.write for r in gh.requests) == 3


def test_description_is_loaded_once() -> None:
    assert github_description() is github_description()
    assert github_description().find("post", f"/repos/{REPO}/issues/1/comments") is not None
