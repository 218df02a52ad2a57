"""Helpers of the enqueue tests: GitHub's documented webhook payloads (tests/fixtures/webhooks,
see PROVENANCE.md), the Actions job's variables for each event, and a stand-in for the job's
OIDC token endpoint."""

from __future__ import annotations

import io
import json
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

WEBHOOKS = Path(__file__).parents[1] / "fixtures" / "webhooks"
IMAGE = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/modelrun-models@sha256:" + "ab" * 32
PR_HEAD_SHA = "ec26c3e57ca3a959ca5aad62de7213c562f8c821"  # pull_request.head.sha in the examples
DISPATCH_SHA = "0123456789abcdef0123456789abcdef01234567"


def payload(name: str) -> dict[str, Any]:
    event: dict[str, Any] = json.loads((WEBHOOKS / name).read_text())
    return event


def actions_env(repository: str, **extra: str) -> dict[str, str]:
    """The GitHub Actions environment of a workflow run in ``repository``."""
    env = {
        "GITHUB_ACTIONS": "true",
        "GITHUB_REPOSITORY": repository,
        "GITHUB_RUN_ID": "16011227436",
        "GITHUB_RUN_ATTEMPT": "2",
        "GITHUB_SERVER_URL": "https://github.com",
        "GITHUB_ACTOR": "Codertocat",
        "GITHUB_SHA": "f95f852bd8fca8fcc58a9a2d6c842781e32a215e",  # the PR's merge commit: not used
        "GITHUB_REF_NAME": "2/merge",
    }
    env.update(extra)
    return env


PR_ENV = actions_env("Codertocat/Hello-World")
DISPATCH_ENV = actions_env(
    "octo-org/octo-repo",
    GITHUB_SHA=DISPATCH_SHA,
    GITHUB_REF="refs/heads/feature/bigger-trees",
    GITHUB_REF_NAME="feature/bigger-trees",
    GITHUB_ACTOR="octocat",
)
PUSH_ENV = actions_env(
    "octo-org/octo-repo",
    GITHUB_EVENT_NAME="push",
    GITHUB_SHA=DISPATCH_SHA,
    GITHUB_REF="refs/heads/main",
    GITHUB_REF_NAME="main",
    GITHUB_ACTOR="octocat",
)


def push_payload() -> dict[str, Any]:
    """A push to main, with the dispatch example's repository and sender (no inputs on a push)."""
    dispatch = payload("workflow_dispatch.json")
    return {
        "ref": "refs/heads/main",
        "before": "0" * 40,
        "after": DISPATCH_SHA,
        "repository": dispatch["repository"],
        "sender": dispatch["sender"],
        "pusher": {"name": "octocat", "email": "octocat@github.com"},
    }


TOKEN = "eyJhbGciOiJSUzI1NiJ9.eyJhdWQiOiJ4In0.c2lnbmF0dXJl"
AUDIENCE = "https://sqs.eu-west-1.amazonaws.com/123456789012/modelrun-run-requests"
TOKEN_URL = "https://pipelines.actions.githubusercontent.com/abc123/_apis/distributedtask/idtoken?api-version=2.0"


class FakeOpener:
    """urlopen's stand-in: records each request and answers with ``body`` (JSON), raw bytes or an error."""

    def __init__(self, body: Any = None, *, raw: bytes | None = None, error: Exception | None = None) -> None:
        self.body = {"count": 1, "value": TOKEN} if body is None else body
        self.raw = raw
        self.error = error
        self.requests: list[tuple[urllib.request.Request, float]] = []

    def __call__(self, request: urllib.request.Request, timeout: float) -> io.BytesIO:
        self.requests.append((request, timeout))
        if self.error is not None:
            raise self.error
        return io.BytesIO(self.raw if self.raw is not None else json.dumps(self.body).encode())

    @property
    def url(self) -> str:
        return self.requests[-1][0].full_url


def token_env(url: str = TOKEN_URL, bearer: str = "the-request-token") -> dict[str, str]:
    return {**PR_ENV, "ACTIONS_ID_TOKEN_REQUEST_URL": url, "ACTIONS_ID_TOKEN_REQUEST_TOKEN": bearer}
