"""`modelrun doctor`'s checks, each over plain facts (no I/O): a repository set up as
docs/adopt.md says passes every check; each misconfiguration is one finding with its fix."""

from __future__ import annotations

import http
import json
from collections.abc import Iterator, Mapping
from dataclasses import replace
from typing import Any

import pytest
from gidgethub import BadRequest, sansio

from modelrun.adapters.github_client import GitHubClient
from modelrun.domain.registration import Registration
from modelrun_cli import doctor
from modelrun_cli.doctor import AppFacts, Finding, RepoFacts, StackFacts, Unreadable

REPO = "octo-org/condo-avm"
PINNED = "octo-org/modelrun/.github/workflows/model-run.yaml@refs/tags/v1"
ROLE = "arn:aws:iam::123456789012:role/modelrun/modelrun/condo-PullRequestRole"
BASELINE_ROLE = "arn:aws:iam::123456789012:role/modelrun/modelrun/condo-BaselineRole"
JOB_ROLE = "arn:aws:iam::123456789012:role/modelrun/modelrun/condo-PullRequestJobRole"
REGISTRATION = Registration(
    schema_version="1",
    repository=REPO,
    image_repository=f"123456789012.dkr.ecr.eu-west-1.amazonaws.com/modelrun-models/{REPO}",
    job_role_arn=JOB_ROLE,
    baseline_job_role_arn=JOB_ROLE,
    execution_role_arn=JOB_ROLE,
    github_role_arn=ROLE,
    github_baseline_role_arn=BASELINE_ROLE,
)
QUEUE = "https://sqs.eu-west-1.amazonaws.com/123456789012/modelrun-RunRequestsQueue"
KEYS = ["repo", "context", "ref", "job_workflow_ref"]
KEY_ARGS = " ".join(f"-f 'include_claim_keys[]={k}'" for k in KEYS)


def stack(**changes: Any) -> StackFacts:
    facts = StackFacts.from_stack(
        "modelrun",
        "eu-west-1",
        {
            "GitHubRepositories": f"octo-org/residential-avm,{REPO}",
            "ApprovalEnvironment": "staging",
            "BaselineEnvironment": "modelrun-main",
            "PinnedWorkflow": "",
            "GitHubApiUrl": "https://api.github.com",
        },
        {"RunRequestsQueueUrl": QUEUE},
    )
    return replace(facts, **changes)


def environment(
    reviewers: int = 1, prevent_self_review: bool = True, branches: dict[str, bool] | None = None
) -> dict[str, Any]:
    rules: list[dict[str, Any]] = []
    if reviewers:
        people = [{"type": "User", "reviewer": {"login": f"reviewer-{n}"}} for n in range(reviewers)]
        rules.append({"type": "required_reviewers", "prevent_self_review": prevent_self_review, "reviewers": people})
    return {"name": "x", "protection_rules": rules, "deployment_branch_policy": branches}


CUSTOM = {"protected_branches": False, "custom_branch_policies": True}
INSTALLATION = {"id": 42, "permissions": {**doctor.APP_PERMISSIONS, "checks": "write", "contents": "admin"}}


VARIABLES = {
    "MODELRUN_ROLE_ARN": ROLE,
    "MODELRUN_BASELINE_ROLE_ARN": BASELINE_ROLE,
    "MODELRUN_AWS_REGION": "eu-west-1",
    "MODELRUN_QUEUE_URL": QUEUE,
    "OTHER": "x",
}


def repo(**changes: Any) -> RepoFacts:
    facts = RepoFacts(
        repository=REPO,
        app=AppFacts("app", installation=INSTALLATION),
        default_branch="main",
        variables=dict(VARIABLES),
        environments={"staging": environment(), "modelrun-main": environment(reviewers=0, branches=CUSTOM)},
        branch_policies={"modelrun-main": ["main"]},
        oidc_subject={"use_default": False, "include_claim_keys": KEYS},
        organization_template=None,
        registration=REGISTRATION,
    )
    return replace(facts, **changes)


def only(findings: list[Finding]) -> Finding:
    (finding,) = findings
    return finding


def problem(check: doctor.Check, stack_facts: StackFacts | None = None, **changes: Any) -> str:
    """The one problem line the check gives for the changed facts."""
    finding = only(check(stack_facts or stack(), repo(**changes)))
    assert finding.level == "problem", finding
    assert finding.fix, finding
    return f"{finding.message} - fix: {finding.fix}"


def test_a_repository_set_up_as_adopt_says_passes_every_check() -> None:
    for stack_facts in (stack(), stack(pinned_workflow=PINNED)):
        findings = doctor.diagnose(stack_facts, repo())
        assert [f.check for f in findings] == [
            "allow-list",
            "repository-stack",
            "app",
            "variables",
            "approval-environment",
            "baseline-environment",
            "oidc-subject",
        ]
        assert {f.level for f in findings} == {"ok"}, findings


def test_the_stacks_parameters_and_outputs() -> None:
    facts = StackFacts.from_stack("s", "us-east-2", {"GitHubRepositories": "a/b, c/d"}, {})
    assert facts.repositories == ("a/b", "c/d")
    assert (facts.approval_environment, facts.baseline_environment) == ("staging", "modelrun-main")
    assert (facts.pinned_workflow, facts.api_url) == ("", "https://api.github.com")
    assert stack().variables(None) == {"MODELRUN_AWS_REGION": "eu-west-1", "MODELRUN_QUEUE_URL": QUEUE}
    assert stack().variables(REGISTRATION)["MODELRUN_ROLE_ARN"] == ROLE


def test_a_repository_without_its_repository_stack() -> None:
    assert problem(doctor.check_repository_stack, registration=None) == (
        f"{REPO} has no repository stack on modelrun: the backend refuses its runs - fix: deploy repository.yaml "
        f"with ModelrunStackName=modelrun Repository={REPO} (docs/adopt.md, 1)"
    )
    # Without one, the role variables have nothing to match; region and queue are still checked.
    assert only(doctor.check_variables(stack(), repo(registration=None))).level == "ok"


def test_the_image_repository_variable_may_be_left_to_its_default() -> None:
    assert only(doctor.check_variables(stack(), repo())).level == "ok"  # VARIABLES does not set it
    other = REGISTRATION.model_copy(
        update={"image_repository": "123456789012.dkr.ecr.eu-west-1.amazonaws.com/models/x/y"}
    )
    assert "MODELRUN_ECR_REPOSITORY is not set" in problem(doctor.check_variables, registration=other)


def test_a_repository_not_in_the_allow_list() -> None:
    assert problem(doctor.check_allow_list, stack(repositories=("octo-org/residential-avm",))) == (
        f"{REPO} is not in the stack's GitHubRepositories (octo-org/residential-avm) - fix: add it to the "
        "GitHubRepositories parameter of stack modelrun and `sam deploy` (docs/adopt.md, 1)"
    )
    # GitHub's names are not case sensitive.
    assert only(doctor.check_allow_list(stack(repositories=(REPO.upper(),)), repo())).level == "ok"


def test_the_app_not_installed_on_the_repository() -> None:
    assert problem(doctor.check_app, app=AppFacts("app", installation=None)) == (
        f"the stack's GitHub App is not installed on {REPO} - fix: install the stack's GitHub App on {REPO} "
        "(the App's page > Configure)"
    )


def test_the_app_without_a_permission_the_backend_uses() -> None:
    permissions = {**doctor.APP_PERMISSIONS, "checks": "read"}
    permissions.pop("actions")
    line = problem(doctor.check_app, app=AppFacts("app", installation={"id": 42, "permissions": permissions}))
    assert line.startswith("the App's installation lacks checks: write, actions: read - fix: give the App")


def test_the_secret_naming_another_installation() -> None:
    line = problem(doctor.check_app, app=AppFacts("app", installation=INSTALLATION, secret_installation_id=7))
    assert line.startswith(f"the secret names installation 7, but {REPO} is in installation 42 - fix: add {REPO}")


def test_token_credentials_are_a_note_not_a_problem() -> None:
    finding = only(doctor.check_app(stack(), repo(app=AppFacts("token"))))
    assert finding.level == "note"
    assert "holds a token, not a GitHub App: no check runs, the commit gets a commit status" in finding.message


def test_a_broken_secret() -> None:
    line = problem(doctor.check_app, app=AppFacts("broken", problem="the secret is not JSON"))
    assert line == "the secret is not JSON - fix: fix the stack's GitHub secret (docs/deploy.md)"


def test_what_the_secret_holds_is_read_without_github_when_it_cannot_be_an_app() -> None:
    assert doctor.read_app({"token": "ghp_x"}, "https://api.github.com", REPO) == AppFacts("token")
    assert doctor.read_app({"app_id": "1"}, "https://api.github.com", REPO).kind == "broken"
    broken = doctor.read_app({"app_id": "1", "private_key": "not a key"}, "https://api.github.com", REPO)
    assert broken.kind == "broken" and broken.problem.startswith("the App's private key in the secret is unusable")
    assert "not a key" not in broken.problem
    assert doctor.read_app({}, "https://api.github.com", REPO).problem.startswith("the stack's GitHub secret holds")


@pytest.mark.parametrize(
    ("variables", "expected"),
    [
        (
            {"MODELRUN_QUEUE_URL": None},
            "MODELRUN_QUEUE_URL is not set (an organisation variable?) - fix: gh variable set MODELRUN_QUEUE_URL "
            f"--repo {REPO} --body '{QUEUE}'",
        ),
        (
            {"MODELRUN_ROLE_ARN": "arn:aws:iam::123456789012:role/old"},
            "MODELRUN_ROLE_ARN is 'arn:aws:iam::123456789012:role/old', the stack's is "
            f"'{ROLE}' - fix: gh variable set MODELRUN_ROLE_ARN --repo {REPO} --body '{ROLE}'",
        ),
        (
            {"MODELRUN_AWS_REGION": "us-east-1"},
            "MODELRUN_AWS_REGION is 'us-east-1', the stack's is 'eu-west-1' - fix: gh variable set "
            f"MODELRUN_AWS_REGION --repo {REPO} --body 'eu-west-1'",
        ),
    ],
)
def test_a_variable_missing_or_different(variables: dict[str, str | None], expected: str) -> None:
    changed = {k: v for k, v in {**VARIABLES, **variables}.items() if v is not None}
    assert problem(doctor.check_variables, variables=changed) == expected


def test_the_baseline_role_variable_is_recommended_only() -> None:
    variables = dict(VARIABLES)
    del variables["MODELRUN_BASELINE_ROLE_ARN"]
    finding = only(doctor.check_variables(stack(), repo(variables=variables)))
    assert finding.level == "note" and finding.fix.startswith("gh variable set MODELRUN_BASELINE_ROLE_ARN")


def test_the_approval_environment_missing_comes_first() -> None:
    assert problem(doctor.check_approval_environment, environments={"modelrun-main": environment()}) == (
        "environment staging does not exist: GitHub creates it at the first run that names it, unprotected - "
        "fix: create it before any run: Settings > Environments > New environment 'staging', with required "
        "reviewers and Prevent self-review (docs/adopt.md, 4)"
    )


def test_the_approval_environment_without_reviewers() -> None:
    envs = {"staging": environment(reviewers=0)}
    assert problem(doctor.check_approval_environment, environments=envs) == (
        "environment staging has no required reviewers: any run starts unapproved - fix: Settings > "
        "Environments > staging > Required reviewers: the people or team who approve model runs"
    )


def test_the_approval_environment_allowing_self_review() -> None:
    envs = {"staging": environment(prevent_self_review=False)}
    assert problem(doctor.check_approval_environment, environments=envs) == (
        "environment staging lets an author approve their own run - fix: Settings > Environments > staging > "
        "tick Prevent self-review"
    )


def test_the_stacks_environment_names_are_the_ones_checked() -> None:
    envs = {"review": environment(), "baseline": environment(reviewers=0, branches=CUSTOM)}
    facts = repo(environments=envs, branch_policies={"baseline": ["main"]})
    renamed = stack(approval_environment="review", baseline_environment="baseline")
    assert {f.level for f in doctor.diagnose(renamed, facts)} == {"ok"}
    assert only(doctor.check_approval_environment(stack(), facts)).message.startswith("environment staging does not")


FIX = "Settings > Environments > modelrun-main > Deployment branches and tags: Selected branches and tags, one rule: "


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"environments": {}}, "environment modelrun-main does not exist: GitHub creates it"),
        (
            {"environments": {"modelrun-main": environment(reviewers=0)}},
            f"environment modelrun-main admits every branch (a PR's job too) - fix: {FIX}main",
        ),
        (
            {
                "environments": {
                    "modelrun-main": environment(
                        reviewers=0, branches={"protected_branches": True, "custom_branch_policies": False}
                    )
                }
            },
            f"environment modelrun-main admits every protected branch, not only main - fix: {FIX}main",
        ),
        (
            {"branch_policies": {"modelrun-main": ["main", "release/*"]}},
            f"environment modelrun-main admits the branches main, release/*, not only main - fix: {FIX}main",
        ),
        (
            {"branch_policies": {"modelrun-main": []}},
            f"environment modelrun-main admits the branches none, not only main - fix: {FIX}main",
        ),
        (
            {"default_branch": "trunk"},  # GitHub's default branch, never a name written anywhere
            f"environment modelrun-main admits the branches main, not only trunk - fix: {FIX}trunk",
        ),
    ],
)
def test_the_baseline_environment_must_admit_only_the_default_branch(changes: dict[str, Any], expected: str) -> None:
    assert problem(doctor.check_baseline_environment, **changes).startswith(expected)


def test_an_unreadable_read_is_a_problem_that_says_so() -> None:
    failed = Unreadable("GitHub answered 403 (the token lacks a permission): Resource not accessible")
    line = problem(doctor.check_variables, variables=failed)
    assert line == (
        "cannot read the repository variables: GitHub answered 403 (the token lacks a permission): Resource not "
        "accessible - fix: use a token of a repository administrator (GITHUB_TOKEN, or --token-env NAME)"
    )
    assert problem(doctor.check_approval_environment, environments={"staging": failed}).startswith(
        "cannot read environment staging: GitHub answered 403"
    )


REPO_FIX = f"gh api -X PUT repos/{REPO}/actions/oidc/customization/sub -F use_default=false {KEY_ARGS}"
ORG_FIX = f"gh api -X PUT orgs/octo-org/actions/oidc/customization/sub {KEY_ARGS}"


def test_the_subject_needs_no_customization_without_a_pin() -> None:
    facts = repo(oidc_subject={"use_default": True})
    assert only(doctor.check_oidc_subject(stack(), facts)).level == "ok"


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        (
            {"oidc_subject": {"use_default": True}},
            f"{REPO} uses GitHub's default OIDC subject (repository level), but PinnedWorkflow needs repo, context, "
            f"ref, job_workflow_ref: every run is refused - fix: {REPO_FIX}",
        ),
        (
            # use_default wins over the organisation's template, as on GitHub: opting in is the fix.
            {"oidc_subject": {"use_default": True}, "organization_template": {"include_claim_keys": KEYS}},
            f"{REPO} uses GitHub's default OIDC subject (repository level), but PinnedWorkflow needs repo, context, "
            "ref, job_workflow_ref: every run is refused - fix: opt in to octo-org's template, which has them: "
            f"gh api -X PUT repos/{REPO}/actions/oidc/customization/sub -F use_default=false",
        ),
        (
            {"oidc_subject": {"use_default": False, "include_claim_keys": ["repo", "context", "job_workflow_ref"]}},
            f"{REPO}'s OIDC subject (repository level) has repo, context, job_workflow_ref, not repo, context, ref, "
            f"job_workflow_ref - fix: {REPO_FIX}",
        ),
        (
            {"oidc_subject": {"use_default": False}, "organization_template": {"include_claim_keys": ["repo"]}},
            f"{REPO} follows octo-org's OIDC subject template (organisation level), which has repo, not repo, "
            f"context, ref, job_workflow_ref - fix: {ORG_FIX} (or give the repository its own: {REPO_FIX})",
        ),
        (
            {"oidc_subject": {"use_default": False}, "organization_template": None},  # a user's repository
            f"{REPO} follows octo-org's OIDC subject template (organisation level), which has no template",
        ),
    ],
)
def test_the_subject_under_a_pin_is_judged_at_its_level(changes: dict[str, Any], expected: str) -> None:
    assert problem(doctor.check_oidc_subject, stack(pinned_workflow=PINNED), **changes).startswith(expected)


def test_the_subject_from_the_organisations_template_passes() -> None:
    facts = repo(oidc_subject={"use_default": False}, organization_template={"include_claim_keys": KEYS})
    finding = only(doctor.check_oidc_subject(stack(pinned_workflow=PINNED), facts))
    assert (finding.level, finding.message) == (
        "ok",
        "the OIDC subject (octo-org's template) carries repo, context, ref, job_workflow_ref",
    )


def test_the_text_has_one_line_per_finding_and_a_problem_its_fix() -> None:
    findings = doctor.diagnose(stack(), repo(app=AppFacts("token"), environments={"modelrun-main": environment()}))
    lines = doctor.render_text(findings)
    assert lines[2].startswith("note    app: the stack's GitHub secret holds a token")
    assert lines[4].startswith("PROBLEM approval-environment: environment staging does not exist")
    assert " - fix: create it before any run" in lines[4]
    assert lines[-1] == "2 problem(s)"
    assert doctor.render_text([])[-1] == "no problems"


def test_the_json_for_machines() -> None:
    document = json.loads(doctor.as_json(stack(), REPO, doctor.diagnose(stack(), repo(default_branch="trunk"))))
    assert (document["ok"], document["repository"], document["stack"], document["region"]) == (
        False,
        REPO,
        "modelrun",
        "eu-west-1",
    )
    assert [f["level"] for f in document["findings"]].count("problem") == 1
    assert set(document["findings"][0]) == {"check", "level", "message", "fix"}


class FakeGitHub(GitHubClient):
    """GitHub's answers by expanded path; a path not given answers 404."""

    def __init__(self, answers: dict[str, Any]) -> None:
        super().__init__("https://api.github.com")
        self.answers = answers
        self.asked: list[str] = []

    def _answer(self, url: str, url_vars: Mapping[str, Any] | None) -> Any:
        path = sansio.format_url(url, url_vars, base_url="").split("?")[0]
        self.asked.append(path)
        if path not in self.answers:
            raise BadRequest(http.HTTPStatus.NOT_FOUND, "Not Found")
        return self.answers[path]

    def getitem(self, url: str, url_vars: Mapping[str, Any] | None = None) -> Any:
        return self._answer(url, url_vars)

    def getiter(self, url: str, url_vars: Mapping[str, Any] | None = None, *, key: str | None = None) -> Iterator[Any]:
        page = self._answer(url, url_vars)
        yield from page if key is None else page[key]


def test_what_github_says_becomes_the_facts_the_checks_read() -> None:
    base = f"/repos/{REPO}"
    github = FakeGitHub(
        {
            base: {"default_branch": "trunk"},
            f"{base}/actions/variables": {"variables": [{"name": "MODELRUN_ROLE_ARN", "value": ROLE}]},
            f"{base}/environments/staging": environment(),
            f"{base}/environments/modelrun-main": environment(reviewers=0, branches=CUSTOM),
            f"{base}/environments/modelrun-main/deployment-branch-policies": {
                "branch_policies": [{"name": "trunk", "type": "branch"}, {"name": "v*", "type": "tag"}]
            },
            f"{base}/actions/oidc/customization/sub": {"use_default": False},
            "/orgs/octo-org/actions/oidc/customization/sub": {"include_claim_keys": KEYS},
        }
    )
    facts = doctor.read_facts(stack(pinned_workflow=PINNED), REPO, github, AppFacts("token"))
    assert facts.default_branch == "trunk"
    assert facts.variables == {"MODELRUN_ROLE_ARN": ROLE}
    assert facts.branch_policies == {"modelrun-main": ["trunk", "tag v*"]}  # a tag rule is not a branch
    assert facts.organization_template == {"include_claim_keys": KEYS}  # the repository follows it
    finding = only(doctor.check_baseline_environment(stack(), facts))
    assert finding.message == "environment modelrun-main admits the branches trunk, tag v*, not only trunk"
    # Without a pin the subject is not read.
    github.asked.clear()
    doctor.read_facts(stack(), REPO, github, AppFacts("token"))
    assert not [p for p in github.asked if "oidc" in p]


def test_a_repository_the_token_cannot_see_is_not_judged_missing_everything() -> None:
    facts = doctor.read_facts(stack(pinned_workflow=PINNED), REPO, FakeGitHub({}), AppFacts("token"))
    findings = doctor.diagnose(stack(pinned_workflow=PINNED), replace(facts, registration=REGISTRATION))
    problems = [f.message for f in findings if f.level == "problem"]
    assert len(problems) == 4
    assert all(m.startswith("cannot read ") and "not visible to the token" in m for m in problems), problems


def test_the_command_refuses_a_bad_repository_name_and_a_missing_token_before_any_call() -> None:
    from typer.testing import CliRunner

    from modelrun_cli.app import app

    runner = CliRunner()
    named = runner.invoke(app, ["doctor", "not-a-repository"], env={"GITHUB_TOKEN": "t"})
    assert named.exit_code == 2 and "'not-a-repository' is not OWNER/NAME" in named.output
    tokenless = runner.invoke(app, ["doctor", REPO], env={"GITHUB_TOKEN": None})
    assert tokenless.exit_code == 2
    assert tokenless.stderr.startswith(
        "modelrun: no GitHub token in $GITHUB_TOKEN: `export GITHUB_TOKEN=$(gh auth token)`"
    )


def test_a_secret_sealed_by_its_resource_policy_is_a_note_not_a_problem() -> None:
    # On AWS the secret's policy admits only modelrun's functions (issue 21): no operator reads it.
    finding = only(doctor.check_app(stack(), repo(app=AppFacts("sealed"))))
    assert finding.level == "note" and "not checked" in finding.message
