"""Two GitHub calls the ordered writes make besides adapters/github.py's, on that module's client.

- ``create_comment``: a PR's first sticky comment, posted without looking for one first. The
  caller knows there is none: its table holds no comment id and no earlier create that may
  have landed unseen (modelrun.publishing.create_recorded).
- ``find_check_run``: the run's ``modelrun`` check run on its commit, looked up only after a
  create whose answer was lost (a timeout, a 5xx, a dropped connection), so that the retry
  updates the check run GitHub may hold instead of creating a second one.

Errors are translated as adapters/github.py translates them (``GitHubUnavailable``, ...).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from modelrun.adapters.github import _errors, _translate
from modelrun.domain.report import CHECK_NAME

if TYPE_CHECKING:
    from modelrun.adapters.github_client import GitHubClient

_CHECK_RUNS_OF_REF = "/repos/{owner}/{repo}/commits/{ref}/check-runs{?check_name,filter,per_page}"


def create_comment(client: GitHubClient, repository: str, number: int, body: str) -> int:
    """Post a new comment on the PR (issue) ``number``; its id."""
    owner, repo = repository.split("/", 1)
    where = {"owner": owner, "repo": repo, "number": number}
    try:
        created = client.post("/repos/{owner}/{repo}/issues/{number}/comments", where, data={"body": body})
    except _errors() as error:
        raise _translate(error) from error
    return int(created["id"])


def find_check_run(client: GitHubClient, repository: str, head_sha: str, external_id: str) -> int | None:
    """The id of the ``modelrun`` check run on ``head_sha`` whose ``external_id`` is the run's id
    (the newest, should there be several), or None. GitHub filters by name; the external id is
    matched here (the endpoint has no filter for it)."""
    owner, repo = repository.split("/", 1)
    where = {"owner": owner, "repo": repo, "ref": head_sha, "check_name": CHECK_NAME, "filter": "all", "per_page": 100}
    found: list[int] = []
    url: str | None = _CHECK_RUNS_OF_REF
    variables: dict[str, object] | None = where
    try:
        while url:
            page, url = client.request("GET", url, variables)
            variables = None  # the next page's link is a complete URL
            found += [int(r["id"]) for r in page.get("check_runs", []) if r.get("external_id") == external_id]
    except _errors() as error:
        raise _translate(error) from error
    return max(found) if found else None
