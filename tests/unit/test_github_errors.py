"""GitHub's error answers, classified by what GitHub documents (issue 17): rate limits of both
kinds are retried (a 403 without Retry-After too), outages are retried, the rest fail fast and
name their cause; and job sizes no compute environment can place are refused by field."""

from __future__ import annotations

import pytest

from modelrun.adapters.github import classify
from modelrun.domain import sizes
from modelrun.errors import (
    GitHubBadCredentials,
    GitHubForbidden,
    GitHubInvalid,
    GitHubNotFound,
    GitHubRateLimited,
    GitHubUnavailable,
)

SECONDARY = "You have exceeded a secondary rate limit. Please wait a few minutes before you try again."


@pytest.mark.parametrize(
    ("status", "headers", "message", "kind", "wait"),
    [
        (403, {"x-ratelimit-remaining": "4999"}, SECONDARY, GitHubRateLimited, 60),  # no Retry-After
        (429, {}, "", GitHubRateLimited, 60),
        (403, {"Retry-After": "120"}, SECONDARY, GitHubRateLimited, 120),
        (429, {"retry-after": "5"}, "", GitHubRateLimited, 5),
        (
            403,
            {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "1300"},
            "API rate limit exceeded",
            GitHubRateLimited,
            300,
        ),
        (403, {}, "You have triggered an abuse detection mechanism.", GitHubRateLimited, 60),
        (502, {}, "", GitHubUnavailable, None),
        (408, {}, "", GitHubUnavailable, None),
        (401, {}, "Bad credentials", GitHubBadCredentials, None),
        (403, {"x-ratelimit-remaining": "4999"}, "Resource not accessible by integration", GitHubForbidden, None),
        (404, {}, "Not Found", GitHubNotFound, None),
        (422, {}, "Validation Failed", GitHubInvalid, None),
    ],
)
def test_each_answer_is_classified_as_github_documents_it(
    status: int, headers: dict[str, str], message: str, kind: type[Exception], wait: float | None
) -> None:
    error = classify(status, headers, message, now=1000.0)
    assert type(error) is kind, error
    if wait is not None:
        assert isinstance(error, GitHubRateLimited) and error.retry_after == wait
    if kind in (GitHubBadCredentials, GitHubForbidden, GitHubNotFound, GitHubInvalid):
        assert message in str(error)  # the alert names the cause


@pytest.mark.parametrize(
    ("vcpus", "memory", "field"),
    [(3, 8192, "resources.vcpus"), (2, 1000, "resources.memory_mib"), (0.25, 1536, "resources.memory_mib")],
)
def test_fargate_refuses_sizes_it_has_not(vcpus: float, memory: int, field: str) -> None:
    problem = sizes.fargate_problem(vcpus, memory)
    assert problem is not None and problem.startswith(field)


def test_fargate_takes_its_own_sizes() -> None:
    assert all(sizes.fargate_problem(v, r[0]) is None and sizes.fargate_problem(v, r[-1]) is None
               for v, r in sizes.FARGATE_MEMORY_MIB.items())  # fmt: skip


def test_gpu_sizes_must_fit_an_instance_of_the_environment() -> None:
    types = ["g4dn.xlarge", "g4dn.2xlarge"]
    assert sizes.ec2_gpu_problem(4, 15_000, 1, types, 32) is None
    assert "resources: no instance type" in (sizes.ec2_gpu_problem(8, 60_000, 1, types, 32) or "")
    assert (sizes.ec2_gpu_problem(2, 8192, 4, types, 32) or "").startswith("resources: no instance type")
    assert (sizes.ec2_gpu_problem(1.5, 8192, 1, types, 32) or "").startswith("resources.vcpus")
    assert (sizes.ec2_gpu_problem(64, 8192, 1, ["unknown.type"], 32) or "").startswith("resources.vcpus")
    assert sizes.ec2_gpu_problem(64, 8192, 1, ["unknown.type"], None) is None  # unknown types: benefit of the doubt
