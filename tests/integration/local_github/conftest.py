"""The local GitHub for its own tests: every server here runs with ``check_responses=True``, so
our answers must also fit the response schemas of GitHub's description (the fake stays shaped
like GitHub); raw requests go through httpx, a test-only client."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from modelrun_local.github_server import LocalGitHub
from tests.integration.local_github.support import TOKEN, app_jwt


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
        headers={"Authorization": f"Bearer {app_jwt(gh)}"},
    )
    headers = {"Authorization": f"token {issued.json()['token']}", "X-GitHub-Api-Version": "2022-11-28"}
    with httpx.Client(base_url=gh.url, headers=headers) as c:
        yield c
    gh.requests.clear()
