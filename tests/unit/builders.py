"""Builders of an honest pull request's run: its request, its cleanup, the OIDC token's claims
and GitHub's record of the workflow run, for the evidence and submission tests. Each takes the
fields a test changes; the rest agree with each other."""

from __future__ import annotations

from typing import Any

from modelrun.contracts import CleanupRequest, RunRequest
from modelrun.domain.evidence import Claims, WorkflowRunFacts

REPO = "county-assessor/avm"
HEAD = "a" * 40
MERGE = "m" * 40  # the merge commit a pull_request workflow checks out
MAIN = "c" * 40
MODEL_REPOSITORY_URI = "111122223333.dkr.ecr.us-east-1.amazonaws.com/modelrun-model"
IMAGE = f"{MODEL_REPOSITORY_URI}@sha256:" + "ab" * 32
ISSUER = "https://token.actions.githubusercontent.com"
AUDIENCE = "https://sqs.us-east-1.amazonaws.com/111122223333/modelrun-run-requests"
# What every request of this PR's workflow run says, whatever its kind.
SENDER: dict[str, Any] = {
    "schema_version": "1",
    "repository": REPO,
    "pr_number": 42,
    "triggered_by": "octocat",
    "workflow": {"run_id": 900, "run_attempt": 1},
}


def run_request(**changes: Any) -> RunRequest:
    fields = {"kind": "run", "head_sha": HEAD, "head_ref": "feature/x", "base_ref": "main", "image": IMAGE}
    return RunRequest.model_validate(SENDER | fields | {"event": "pull_request"} | changes)


def cleanup_request(**changes: Any) -> CleanupRequest:
    return CleanupRequest.model_validate(SENDER | {"kind": "cleanup"} | changes)


def claims(**changes: Any) -> Claims:
    fields: dict[str, Any] = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "iat": 1_000,
        "exp": 1_300,
        "nbf": 1_000,
        "repository": REPO,
        "ref": "refs/pull/42/merge",
        "sha": MERGE,
        "event_name": "pull_request",
        "run_id": "900",
        "run_attempt": "1",
        "actor": "octocat",
        "environment": "staging",
        "workflow_ref": f"{REPO}/.github/workflows/run-model.yaml@refs/pull/42/merge",
        "head_ref": "feature/x",
        "base_ref": "main",
    }
    return Claims.model_validate(fields | changes)


def workflow_run(**changes: Any) -> WorkflowRunFacts:
    doc: dict[str, Any] = {
        "id": 900,
        "run_attempt": 1,
        "event": "pull_request",
        "head_sha": HEAD,
        "head_branch": "feature/x",
        "repository": {"full_name": REPO},
        "actor": {"login": "octocat"},
        "triggering_actor": {"login": "octocat"},
        "pull_requests": [
            {
                "number": 42,
                "head": {"sha": HEAD, "ref": "feature/x"},
                "base": {"ref": "main", "sha": MAIN, "repo": {"url": f"https://api.github.com/repos/{REPO}"}},
            }
        ],
    }
    return WorkflowRunFacts.from_api(doc | changes)
