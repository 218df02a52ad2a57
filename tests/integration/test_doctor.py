"""`modelrun doctor` against the local stack: a repository set up as docs/adopt.md says passes;
each misconfiguration is then made on the local GitHub, reported as one problem line with its
fix, and undone. Two LocalRuntime starts: the default stack, and one with PinnedWorkflow (the
OIDC subject's checks). The local GitHub checks its answers against GitHub's description here."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import httpx
import pytest
from typer.testing import Result

from modelrun.domain.registration import registrations_path
from modelrun_local.github_server import Environment
from modelrun_local.runtime import LocalRuntime
from tests.integration.cli_stack import cli

REPO = "county-assessor/avm"  # LocalRuntime's repository, the stack's one allow-listed
PINNED = "county-assessor/modelrun/.github/workflows/model-run.yaml@refs/tags/v1"
CLAIM_KEYS = ["repo", "context", "ref", "job_workflow_ref"]


def doctor(runtime: LocalRuntime, *args: str, repo: str = REPO) -> Result:
    return cli("doctor", repo, *args, env={"GITHUB_TOKEN": runtime.github.user_token()})


def problems(result: Result) -> list[str]:
    return [line for line in result.output.splitlines() if line.startswith("PROBLEM")]


def started(parameters: dict[str, str]) -> Iterator[LocalRuntime]:
    with LocalRuntime(parameters={"LogLevel": "WARNING", **parameters}) as runtime:
        runtime.github.check_responses = True  # our answers must fit GitHub's description too
        yield runtime
        assert runtime.github.response_errors == []
        assert [r for r in runtime.github.requests if r.rejected] == []


# Class-scoped: each class's stack stops before the next class starts its own.
@pytest.fixture(scope="class")
def default_stack() -> Iterator[LocalRuntime]:
    yield from started({})


@pytest.fixture(scope="class")
def pinned_stack() -> Iterator[LocalRuntime]:
    yield from started({"PinnedWorkflow": PINNED})


@pytest.fixture
def runtime(request: pytest.FixtureRequest) -> LocalRuntime:
    stack: LocalRuntime = request.getfixturevalue(request.cls.stack_fixture)
    return stack


class TestDefaultStack:
    stack_fixture = "default_stack"

    def test_a_repository_set_up_as_docs_adopt_says_passes(self, runtime: LocalRuntime) -> None:
        result = doctor(runtime)
        assert result.exit_code == 0, result.output
        lines = result.output.splitlines()
        assert lines[0] == f"modelrun doctor · {REPO} against stack modelrun-local (us-east-1)"
        checks = [line.split(":", 1)[0].split()[-1] for line in lines[1:-1]]
        assert checks == [
            "allow-list",
            "repository-stack",
            "app",
            "variables",
            "approval-environment",
            "baseline-environment",
            "oidc-subject",
        ]
        assert all(line.startswith("ok") for line in lines[1:-1]), result.output
        assert lines[-1] == "no problems"
        as_json = doctor(runtime, "--json")
        document = json.loads(as_json.stdout)
        assert (as_json.exit_code, document["ok"], document["repository"]) == (0, True, REPO)
        assert {f["level"] for f in document["findings"]} == {"ok"}

    @pytest.mark.parametrize(
        ("misconfigure", "expected"),
        [
            pytest.param(
                lambda gh, rt: gh.uninstall(REPO),
                f"PROBLEM app: the stack's GitHub App is not installed on {REPO} - fix: install",
                id="app-not-installed",
            ),
            pytest.param(
                lambda gh, rt: gh.set_variable(REPO, "MODELRUN_QUEUE_URL", None),
                "PROBLEM variables: MODELRUN_QUEUE_URL is not set (an organisation variable?) - fix: gh variable set "
                "MODELRUN_QUEUE_URL --repo county-assessor/avm --body 'https://sqs.",
                id="variable-missing",
            ),
            pytest.param(
                lambda gh, rt: gh.set_variable(REPO, "MODELRUN_ROLE_ARN", "arn:aws:iam::123456789012:role/other"),
                "PROBLEM variables: MODELRUN_ROLE_ARN is 'arn:aws:iam::123456789012:role/other', the stack's is "
                "'arn:aws:iam::",
                id="variable-different",
            ),
            pytest.param(
                lambda gh, rt: gh.delete_environment(REPO, "staging"),
                "PROBLEM approval-environment: environment staging does not exist: GitHub creates it at the first "
                "run that names it, unprotected - fix: create it before any run",
                id="approval-environment-missing",
            ),
            pytest.param(
                lambda gh, rt: gh.put_environment(REPO, "staging", Environment()),
                "PROBLEM approval-environment: environment staging has no required reviewers: any run starts "
                "unapproved - fix: Settings > Environments > staging > Required reviewers",
                id="no-required-reviewers",
            ),
            pytest.param(
                lambda gh, rt: gh.put_environment(REPO, "staging", Environment(reviewers=("maintainer",))),
                "PROBLEM approval-environment: environment staging lets an author approve their own run - fix: "
                "Settings > Environments > staging > tick Prevent self-review",
                id="self-review-allowed",
            ),
            pytest.param(
                lambda gh, rt: gh.put_environment(REPO, "modelrun-main", Environment()),
                "PROBLEM baseline-environment: environment modelrun-main admits every branch (a PR's job too) - fix: "
                "Settings > Environments > modelrun-main > Deployment branches and tags: Selected branches and "
                "tags, one rule: main",
                id="baseline-admits-all-branches",
            ),
            pytest.param(
                lambda gh, rt: gh.put_environment(REPO, "modelrun-main", Environment(branch_policy="protected")),
                "PROBLEM baseline-environment: environment modelrun-main admits every protected branch, not only "
                "main - fix:",
                id="baseline-admits-protected-branches",
            ),
            pytest.param(
                lambda gh, rt: gh.put_environment(
                    REPO, "modelrun-main", Environment(branch_policy="custom", branch_patterns=("main", "release/*"))
                ),
                "PROBLEM baseline-environment: environment modelrun-main admits the branches main, release/*, not "
                "only main - fix:",
                id="baseline-admits-another-branch",
            ),
            pytest.param(
                lambda gh, rt: setattr(gh, "default_branch", "trunk"),
                "PROBLEM baseline-environment: environment modelrun-main admits the branches main, not only trunk",
                id="default-branch-renamed",
            ),
        ],
    )
    def test_each_misconfiguration_is_one_problem_with_its_fix(
        self, runtime: LocalRuntime, misconfigure: Callable[[Any, LocalRuntime], None], expected: str
    ) -> None:
        misconfigure(runtime.github, runtime)
        try:
            result = doctor(runtime)
        finally:
            runtime.github.uninstall(REPO, installed=True)
            runtime.github.default_branch = "main"
            runtime.configure_repository()
        assert result.exit_code == 1, result.output
        (problem,) = problems(result)
        assert problem.startswith(expected), result.output
        assert result.output.splitlines()[-1] == "1 problem(s)"

    def test_a_repository_without_its_repository_stack(self, runtime: LocalRuntime) -> None:
        ssm = boto3.client("ssm")
        name = f"{registrations_path(runtime.stack_name)}{REPO}"
        value = ssm.get_parameter(Name=name)["Parameter"]["Value"]
        ssm.delete_parameter(Name=name)
        try:
            result = doctor(runtime)
        finally:
            ssm.put_parameter(Name=name, Value=value, Type="String")
        assert result.exit_code == 1, result.output
        (problem,) = problems(result)
        assert problem.startswith(
            f"PROBLEM repository-stack: {REPO} has no repository stack on modelrun-local: the backend refuses its "
            "runs - fix: deploy repository.yaml"
        ), result.output

    def test_a_repository_not_in_the_allow_list(self, runtime: LocalRuntime) -> None:
        result = doctor(runtime, repo="county-assessor/condo")
        assert result.exit_code == 1
        assert problems(result)[0] == (
            "PROBLEM allow-list: county-assessor/condo is not in the stack's GitHubRepositories (county-assessor/avm)"
            " - fix: add it to the GitHubRepositories parameter of stack modelrun-local and `sam deploy` "
            "(docs/adopt.md, 1)"
        )

    def test_without_a_token_it_says_how_to_get_one(self, runtime: LocalRuntime) -> None:
        result = cli("doctor", REPO, "--token-env", "NO_SUCH_TOKEN", env={"NO_SUCH_TOKEN": None})
        assert result.exit_code == 2
        assert "no GitHub token in $NO_SUCH_TOKEN: `export NO_SUCH_TOKEN=$(gh auth token)`" in result.output


class TestPinnedStack:
    stack_fixture = "pinned_stack"

    def put(self, runtime: LocalRuntime, path: str, body: dict[str, Any]) -> None:
        """docs/adopt.md's `gh api -X PUT …` with a person's token."""
        headers = {"Authorization": f"Bearer {runtime.github.user_token()}", "X-GitHub-Api-Version": "2022-11-28"}
        answered = httpx.put(f"{runtime.github.url}{path}", json=body, headers=headers)
        assert answered.status_code == 201, answered.text

    def subject_problem(self, runtime: LocalRuntime) -> str | None:
        result = doctor(runtime)
        found = problems(result)
        assert result.exit_code == (1 if found else 0), result.output
        assert len(found) <= 1 and all(p.startswith("PROBLEM oidc-subject: ") for p in found), result.output
        return found[0] if found else None

    def test_the_subject_is_checked_at_the_level_it_comes_from(self, runtime: LocalRuntime) -> None:
        repo_path = f"/repos/{REPO}/actions/oidc/customization/sub"
        org_path = "/orgs/county-assessor/actions/oidc/customization/sub"
        keys = " ".join(f"-f 'include_claim_keys[]={k}'" for k in CLAIM_KEYS)
        repo_fix = f"gh api -X PUT repos/{REPO}/actions/oidc/customization/sub -F use_default=false {keys}"

        # Not customized: GitHub's default subject, which the pinned roles do not trust.
        assert self.subject_problem(runtime) == (
            f"PROBLEM oidc-subject: {REPO} uses GitHub's default OIDC subject (repository level), but "
            f"PinnedWorkflow needs repo, context, ref, job_workflow_ref: every run is refused - fix: {repo_fix}"
        )
        # docs/adopt.md's customization: passes.
        self.put(runtime, repo_path, {"use_default": False, "include_claim_keys": CLAIM_KEYS})
        assert self.subject_problem(runtime) is None
        # The right keys in another order: another subject.
        self.put(
            runtime,
            repo_path,
            {"use_default": False, "include_claim_keys": ["repo", "context", "job_workflow_ref", "ref"]},
        )
        assert self.subject_problem(runtime) == (
            f"PROBLEM oidc-subject: {REPO}'s OIDC subject (repository level) has repo, context, job_workflow_ref, "
            f"ref, not repo, context, ref, job_workflow_ref - fix: {repo_fix}"
        )
        # Opted in to the organisation's template, which has none yet: the organisation is wrong.
        self.put(runtime, repo_path, {"use_default": False})
        problem = self.subject_problem(runtime)
        assert problem is not None and problem.startswith(
            f"PROBLEM oidc-subject: {REPO} follows county-assessor's OIDC subject template (organisation level), "
            "which has no template, not repo, context, ref, job_workflow_ref - fix: gh api -X PUT "
            f"orgs/county-assessor/actions/oidc/customization/sub {keys} (or give the repository its own: "
        ), problem
        self.put(runtime, org_path, {"include_claim_keys": ["repo", "context"]})
        problem = self.subject_problem(runtime)
        assert problem is not None and "(organisation level), which has repo, context, not" in problem
        # The template with docs/adopt.md's keys: passes, and the issuer builds the subject from it.
        self.put(runtime, org_path, {"include_claim_keys": CLAIM_KEYS})
        assert self.subject_problem(runtime) is None
        assert runtime.github.issuer.claim_keys(REPO) == tuple(CLAIM_KEYS)
        # Opted out again: the template no longer applies, and opting in is the fix.
        self.put(runtime, repo_path, {"use_default": True})
        assert self.subject_problem(runtime) == (
            f"PROBLEM oidc-subject: {REPO} uses GitHub's default OIDC subject (repository level), but "
            "PinnedWorkflow needs repo, context, ref, job_workflow_ref: every run is refused - fix: opt in to "
            f"county-assessor's template, which has them: gh api -X PUT repos/{REPO}/actions/oidc/customization/sub "
            "-F use_default=false"
        )
        assert runtime.github.issuer.claim_keys(REPO) is None
