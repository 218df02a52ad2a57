"""What the tests of LocalGitHub share: the repository they use, the fixed token, and the App's
credentials as the backend uses them."""

from __future__ import annotations

import time
from typing import Any

import jwt as pyjwt

from modelrun.adapters import github_client
from modelrun.adapters.github_client import GitHubClient
from modelrun_local.github_server import LocalGitHub

REPO = "octo/avm"
OWNER_REPO = {"owner": "octo", "repo": "avm"}
TOKEN = "test-token"
SHA = "0123456789abcdef0123456789abcdef01234567"
COMMENTS = "/repos/{owner}/{repo}/issues/{number}/comments"


def app_jwt(gh: LocalGitHub, key: Any = None, headers: dict[str, Any] | None = None, **claims: Any) -> str:
    """A JWT as the backend's client (gidgethub) makes one for the App: iat a minute back, exp nine
    minutes ahead; a claim given as None is left out."""
    now = int(time.time())
    body = {"iat": now - 60, "exp": now + 540, "iss": str(gh.app_id)} | claims
    body = {k: v for k, v in body.items() if v is not None}
    return pyjwt.encode(body, key or gh.app_credentials()["private_key"], algorithm="RS256", headers=headers)


def app_installation_token(gh: LocalGitHub) -> tuple[str, str]:
    """The App's installation token and its expiry, its JWT exchanged as the adapter does."""
    creds = gh.app_credentials()
    return github_client.installation_token(
        GitHubClient(gh.url), creds["app_id"], int(creds["installation_id"]), creds["private_key"]
    )


def installation_client(gh: LocalGitHub) -> GitHubClient:
    """The backend's client on the App's installation token."""
    token, _ = app_installation_token(gh)
    return GitHubClient(gh.url, oauth_token=token)
