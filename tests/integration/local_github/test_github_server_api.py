"""LocalGitHub's REST state and GitHub's rules: comments, statuses and check runs round trip,
pages follow Link headers, requests GitHub would reject are rejected as GitHub rejects them,
injected faults change nothing, and the backend's client (adapters/github_client.py) passes.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from modelrun.adapters.github_client import GitHubClient
from modelrun_local.github_server import LocalGitHub, github_description
from tests.integration.local_github.support import COMMENTS, OWNER_REPO, REPO, SHA, TOKEN


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


def test_a_file_is_served_by_the_contents_api_as_github_serves_it(gh: LocalGitHub) -> None:
    """A nested path (the description's multi-segment parameter), at a commit; a file missing
    there is a 404, as on GitHub. The fixture checks the answers against the response schema."""
    from modelrun.adapters.github import PullRequests

    policy = b"must_pass: [cod]\n"
    gh.put_file(REPO, SHA, ".github/modelrun.yaml", policy)
    github = GitHubClient(gh.url, oauth_token=TOKEN)
    where = {**OWNER_REPO, "path": ".github/modelrun.yaml", "ref": SHA}
    found = github.getitem("/repos/{owner}/{repo}/contents/{+path}{?ref}", where)
    assert (found["type"], found["path"], found["name"], found["size"]) == (
        "file",
        ".github/modelrun.yaml",
        "modelrun.yaml",
        17,
    )
    with pytest.raises(Exception, match="Not Found"):
        github.getitem("/repos/{owner}/{repo}/contents/{+path}{?ref}", {**where, "ref": "f" * 40})
    files = PullRequests.__new__(PullRequests)  # the adapter's call, on this client
    files.gh = github
    assert files.file_at(REPO, ".github/modelrun.yaml", SHA, 16_384) == policy
    assert files.file_at(REPO, ".github/modelrun.yaml", "f" * 40, 16_384) is None
    assert [r.operation for r in gh.requests] == ["repos/get-content"] * 4
    assert [r.status for r in gh.requests] == [200, 404, 200, 404]


def test_description_is_loaded_once() -> None:
    assert github_description() is github_description()
    assert github_description().find("post", f"/repos/{REPO}/issues/1/comments") is not None
