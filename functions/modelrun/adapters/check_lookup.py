"""Kept importable only for tests/integration/test_github_auth.py, which calls these on a raw
client: the functions call PullRequests.create_comment and PullRequests.find_check_run."""

from __future__ import annotations

from typing import TYPE_CHECKING

from modelrun.adapters.github import PullRequests

if TYPE_CHECKING:
    from modelrun.adapters.github_client import GitHubClient


def create_comment(client: GitHubClient, repository: str, number: int, body: str) -> int:
    return PullRequests.on(client).create_comment(repository, number, body)


def find_check_run(client: GitHubClient, repository: str, head_sha: str, external_id: str) -> int | None:
    return PullRequests.on(client).find_check_run(repository, head_sha, external_id)
