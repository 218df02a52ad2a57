"""`modelrun doctor OWNER/NAME`: is a model repository set up for this stack (docs/adopt.md)?

Three layers, so that each check is a small function over plain data:

- ``StackFacts`` (the stack's parameters and outputs, from CloudFormation) and ``RepoFacts``
  (what GitHub says about the repository, read once by ``read_facts``);
- ``CHECKS``: functions ``(StackFacts, RepoFacts) -> list[Finding]``, no I/O; a new check is one
  more function here (and, if it needs one, one more read in ``read_facts``);
- ``render_text`` / ``as_json``: one line per finding, a problem's with its fix.

GitHub is read with the client the backend uses (gidgethub over urllib3): the App's endpoints
with the App's JWT from the stack's credentials secret (``github_client.app_jwt``), the
repository's settings with a person's token (``GITHUB_TOKEN``): the App has no permission to
read environments, variables or the OIDC customization, and needs none.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal

from botocore.exceptions import ClientError
from gidgethub import GitHubException

from modelrun.adapters.github_client import GitHubClient, app_jwt
from modelrun.domain.registration import Registration, registrations_path
from modelrun.errors import Unreachable

if TYPE_CHECKING:
    from modelrun_cli.connect import Stack

Level = Literal["ok", "problem", "note"]

# What the backend's App needs (docs/deploy.md, "The GitHub credentials the backend uses").
APP_PERMISSIONS: Mapping[str, str] = {
    "pull_requests": "write",
    "issues": "write",
    "statuses": "write",
    "checks": "write",
    "actions": "read",
    "metadata": "read",
    "contents": "read",
}
_PERMISSION_RANK = {"read": 1, "write": 2, "admin": 3}
# The subject the roles expect when PinnedWorkflow is set (template.yaml's trust policies).
PINNED_CLAIM_KEYS = ("repo", "context", "ref", "job_workflow_ref")
# Of the variables doctor compares with the stack, only recommended (docs/adopt.md): a note.
RECOMMENDED_VARIABLES = ("MODELRUN_BASELINE_ROLE_ARN",)


@dataclass(frozen=True)
class Unreadable:
    """A read that failed for another reason than "not there": the check says so, no verdict."""

    reason: str


@dataclass(frozen=True)
class Finding:
    check: str  # a short name: allow-list, app, variables, approval-environment, ...
    level: Level
    message: str
    fix: str = ""


@dataclass(frozen=True)
class StackFacts:
    """The stack's side: its allow-list, environments and pin (parameters), and what the
    repository variables must hold (outputs and region)."""

    name: str
    region: str
    repositories: tuple[str, ...]
    approval_environment: str
    baseline_environment: str
    pinned_workflow: str
    api_url: str
    outputs: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_stack(
        cls, name: str, region: str, parameters: Mapping[str, str], outputs: Mapping[str, str]
    ) -> StackFacts:
        return cls(
            name=name,
            region=region,
            repositories=tuple(r.strip() for r in parameters.get("GitHubRepositories", "").split(",") if r.strip()),
            approval_environment=parameters.get("ApprovalEnvironment") or "staging",
            baseline_environment=parameters.get("BaselineEnvironment") or "modelrun-main",
            pinned_workflow=parameters.get("PinnedWorkflow", ""),
            api_url=parameters.get("GitHubApiUrl") or "https://api.github.com",
            outputs=dict(outputs),
        )

    def variables(self, registration: Registration | None) -> dict[str, str]:
        """The repository variables docs/adopt.md has a repository set: the stack's region and
        queue, and its repository stack's roles and image repository (when it has one)."""
        shared = {
            "MODELRUN_AWS_REGION": self.region,
            "MODELRUN_QUEUE_URL": self.outputs.get("RunRequestsQueueUrl", ""),
        }
        if registration is None:
            return shared
        return {
            "MODELRUN_ROLE_ARN": registration.github_role_arn,
            "MODELRUN_BASELINE_ROLE_ARN": registration.github_baseline_role_arn,
            **shared,
            "MODELRUN_ECR_REPOSITORY": registration.image_repository_name,
        }


@dataclass(frozen=True)
class AppFacts:
    """What the stack's credentials secret holds, and where the App is installed.

    ``kind``: "app" (then ``installation`` is GitHub's answer to the App's lookup, None when it
    is not installed on the repository), "token", "broken" (``problem`` says why), or "sealed":
    the secret's resource policy admits only modelrun's functions, so an operator cannot read it
    (the deny-by-default of issue 21), and the installation is checked on GitHub's side instead."""

    kind: Literal["app", "token", "broken", "sealed"]
    installation: dict[str, Any] | Unreadable | None = None
    secret_installation_id: int | None = None  # the secret's installation_id, if it names one
    problem: str = ""


@dataclass(frozen=True)
class RepoFacts:
    """What GitHub says about the repository. An environment or template that does not exist is
    None (GitHub's 404); a read that failed otherwise is Unreadable."""

    repository: str  # owner/name
    app: AppFacts
    default_branch: str | Unreadable
    variables: dict[str, str] | Unreadable
    environments: dict[str, dict[str, Any] | Unreadable | None]  # by name
    branch_policies: dict[str, list[str] | Unreadable]  # by environment name, custom policies only
    oidc_subject: dict[str, Any] | Unreadable | None = None  # read only when PinnedWorkflow is set
    organization_template: dict[str, Any] | Unreadable | None = None
    # The repository stack's registration (repository.yaml, in SSM): None when there is none.
    registration: Registration | Unreadable | None = None

    @property
    def owner(self) -> str:
        return self.repository.split("/", 1)[0]


def _ok(check: str, message: str) -> Finding:
    return Finding(check, "ok", message)


def _problem(check: str, message: str, fix: str) -> Finding:
    return Finding(check, "problem", message, fix)


def _unreadable(check: str, what: str, failed: Unreadable, fix: str) -> Finding:
    return _problem(check, f"cannot read {what}: {failed.reason}", fix)


_READ_FIX = "use a token of a repository administrator (GITHUB_TOKEN, or --token-env NAME)"


# -- the checks --------------------------------------------------------------------------------


def check_allow_list(stack: StackFacts, repo: RepoFacts) -> list[Finding]:
    """The roles trust, and the submit function accepts, only GitHubRepositories."""
    listed = {r.lower() for r in stack.repositories}
    if repo.repository.lower() in listed:
        return [_ok("allow-list", f"{repo.repository} is in the stack's GitHubRepositories")]
    return [
        _problem(
            "allow-list",
            f"{repo.repository} is not in the stack's GitHubRepositories ({', '.join(stack.repositories) or 'none'})",
            f"add it to the GitHubRepositories parameter of stack {stack.name} and `sam deploy` (docs/adopt.md, 1)",
        )
    ]


def check_app(stack: StackFacts, repo: RepoFacts) -> list[Finding]:
    """The App is installed on the repository, with the permissions the backend uses."""
    app = repo.app
    if app.kind == "token":
        return [
            Finding(
                "app",
                "note",
                "the stack's GitHub secret holds a token, not a GitHub App: no check runs, the commit gets a "
                "commit status (docs/deploy.md)",
            )
        ]
    if app.kind == "broken":
        return [_problem("app", app.problem, "fix the stack's GitHub secret (docs/deploy.md)")]
    if app.kind == "sealed":
        return [
            Finding(
                "app",
                "note",
                "the stack's GitHub secret admits only modelrun's functions, so the App's installation was not "
                f"checked: see that the App is installed on {repo.repository} (Settings > GitHub Apps)",
            )
        ]
    install = f"install the stack's GitHub App on {repo.repository} (the App's page > Configure)"
    if isinstance(app.installation, Unreadable):
        return [_unreadable("app", "the App's installation", app.installation, "check the App's credentials")]
    if app.installation is None:
        return [_problem("app", f"the stack's GitHub App is not installed on {repo.repository}", install)]
    findings: list[Finding] = []
    found = int(app.installation.get("id", 0))
    if app.secret_installation_id and app.secret_installation_id != found:
        findings.append(
            _problem(
                "app",
                f"the secret names installation {app.secret_installation_id}, but {repo.repository} is in "
                f"installation {found}",
                f"add {repo.repository} to installation {app.secret_installation_id}, or remove installation_id "
                "from the secret (the backend then finds each repository's installation)",
            )
        )
    granted = app.installation.get("permissions") or {}
    short = [
        f"{name}: {level}"
        for name, level in APP_PERMISSIONS.items()
        if _PERMISSION_RANK.get(str(granted.get(name, "")), 0) < _PERMISSION_RANK[level]
    ]
    if short:
        findings.append(
            _problem(
                "app",
                f"the App's installation lacks {', '.join(short)}",
                "give the App these repository permissions (its settings > Permissions), then accept them on "
                "the installation",
            )
        )
    if not findings:
        findings.append(_ok("app", f"the GitHub App is installed on {repo.repository} (installation {found})"))
    return findings


def check_repository_stack(stack: StackFacts, repo: RepoFacts) -> list[Finding]:
    """The repository has its repository stack (repository.yaml): its roles, images, grants."""
    registration = repo.registration
    if isinstance(registration, Unreadable):
        fix = "allow ssm:GetParameter on it"
        return [_unreadable("repository-stack", "the repository's registration", registration, fix)]
    if registration is None:
        return [
            _problem(
                "repository-stack",
                f"{repo.repository} has no repository stack on {stack.name}: the backend refuses its runs",
                f"deploy repository.yaml with ModelrunStackName={stack.name} Repository={repo.repository} "
                "(docs/adopt.md, 1)",
            )
        ]
    return [_ok("repository-stack", f"repository stack registered: images in {registration.image_repository_name}")]


def check_variables(stack: StackFacts, repo: RepoFacts) -> list[Finding]:
    """The repository variables the workflow reads hold this stack's values."""
    if isinstance(repo.variables, Unreadable):
        return [_unreadable("variables", "the repository variables", repo.variables, _READ_FIX)]
    findings: list[Finding] = []
    registration = repo.registration if isinstance(repo.registration, Registration) else None
    for name, want in stack.variables(registration).items():
        fix = f"gh variable set {name} --repo {repo.repository} --body '{want}'"
        have = repo.variables.get(name)
        if name == "MODELRUN_ECR_REPOSITORY" and have is None:
            if want != f"modelrun-models/{repo.repository.lower()}":  # the workflow's default
                findings.append(_problem("variables", f"{name} is not set and the default is not {want!r}", fix))
            continue
        if have is None:
            if name in RECOMMENDED_VARIABLES:
                findings.append(
                    Finding("variables", "note", f"{name} is not set: default-branch runs leave the build cache", fix)
                )
            else:
                findings.append(_problem("variables", f"{name} is not set (an organisation variable?)", fix))
        elif have != want:
            findings.append(_problem("variables", f"{name} is {have!r}, the stack's is {want!r}", fix))
    if not findings:
        findings.append(_ok("variables", f"the repository variables match stack {stack.name}"))
    return findings


def _environment(check: str, name: str, repo: RepoFacts, purpose: str) -> tuple[dict[str, Any] | None, list[Finding]]:
    """The environment's document, or the finding that says it is missing or unreadable."""
    found = repo.environments.get(name)
    if isinstance(found, Unreadable):
        return None, [_unreadable(check, f"environment {name}", found, _READ_FIX)]
    if found is None:
        return None, [
            _problem(
                check,
                f"environment {name} does not exist: GitHub creates it at the first run that names it, unprotected",
                f"create it before any run: Settings > Environments > New environment {name!r}, {purpose} "
                "(docs/adopt.md, 4)",
            )
        ]
    return found, []


def check_approval_environment(stack: StackFacts, repo: RepoFacts) -> list[Finding]:
    """Required reviewers approve each run, and never their own."""
    check, name = "approval-environment", stack.approval_environment
    env, missing = _environment(check, name, repo, "with required reviewers and Prevent self-review")
    if env is None:
        return missing
    rules = [r for r in env.get("protection_rules") or [] if r.get("type") == "required_reviewers"]
    reviewers = [r for rule in rules for r in rule.get("reviewers") or []]
    where = f"Settings > Environments > {name}"
    if not reviewers:
        return [
            _problem(
                check,
                f"environment {name} has no required reviewers: any run starts unapproved",
                f"{where} > Required reviewers: the people or team who approve model runs",
            )
        ]
    if not all(rule.get("prevent_self_review") for rule in rules):
        return [
            _problem(
                check,
                f"environment {name} lets an author approve their own run",
                f"{where} > tick Prevent self-review",
            )
        ]
    return [_ok(check, f"environment {name} has {len(reviewers)} required reviewer(s) and prevents self-review")]


def check_baseline_environment(stack: StackFacts, repo: RepoFacts) -> list[Finding]:
    """Only the default branch deploys to the baseline environment: custom branch policies that
    name exactly the default branch. "Protected branches" is not enough: it admits every
    protected branch, whose runs would then assume the baseline role."""
    check, name = "baseline-environment", stack.baseline_environment
    if isinstance(repo.default_branch, Unreadable):
        return [_unreadable(check, "the repository's default branch", repo.default_branch, _READ_FIX)]
    branch = repo.default_branch
    purpose = f"Deployment branches and tags: Selected branches and tags, one rule: {branch}"
    env, missing = _environment(check, name, repo, purpose)
    if env is None:
        return missing
    fix = f"Settings > Environments > {name} > {purpose}"
    policy = env.get("deployment_branch_policy")
    if not policy:
        return [_problem(check, f"environment {name} admits every branch (a PR's job too)", fix)]
    if policy.get("protected_branches"):
        return [_problem(check, f"environment {name} admits every protected branch, not only {branch}", fix)]
    patterns = repo.branch_policies.get(name, [])
    if isinstance(patterns, Unreadable):
        return [_unreadable(check, f"the deployment branch policies of {name}", patterns, _READ_FIX)]
    if patterns != [branch]:
        shown = ", ".join(patterns) or "none"
        return [_problem(check, f"environment {name} admits the branches {shown}, not only {branch}", fix)]
    return [_ok(check, f"environment {name} admits only the default branch {branch}")]


def check_oidc_subject(stack: StackFacts, repo: RepoFacts) -> list[Finding]:
    """With PinnedWorkflow, the roles trust only subjects customized to repo, context, ref,
    job_workflow_ref in that order. A repository's subject is GitHub's default when it says
    ``use_default: true`` (whatever its organisation's template), its own keys when it has them,
    and otherwise its organisation's template (GitHub's OIDC reference: a repository opts in to
    the template with ``use_default: false``)."""
    check = "oidc-subject"
    if not stack.pinned_workflow:
        return [_ok(check, "PinnedWorkflow is not set: the default OIDC subject is trusted")]
    want = list(PINNED_CLAIM_KEYS)
    keys_args = " ".join(f"-f 'include_claim_keys[]={k}'" for k in want)
    repo_fix = f"gh api -X PUT repos/{repo.repository}/actions/oidc/customization/sub -F use_default=false {keys_args}"
    org_fix = f"gh api -X PUT orgs/{repo.owner}/actions/oidc/customization/sub {keys_args}"
    subject = repo.oidc_subject
    if isinstance(subject, Unreadable):
        return [_unreadable(check, "the repository's OIDC subject customization", subject, _READ_FIX)]
    subject = subject or {"use_default": True}
    ordered = ", ".join(want)
    template = repo.organization_template
    org_keys = list(template.get("include_claim_keys") or []) if isinstance(template, dict) else []
    if subject.get("use_default", True):
        # The organisation's template applies only to the repositories that opted in to it.
        opt_in = f"gh api -X PUT repos/{repo.repository}/actions/oidc/customization/sub -F use_default=false"
        fix = f"opt in to {repo.owner}'s template, which has them: {opt_in}" if org_keys == want else repo_fix
        return [
            _problem(
                check,
                f"{repo.repository} uses GitHub's default OIDC subject (repository level), but PinnedWorkflow "
                f"needs {ordered}: every run is refused",
                fix,
            )
        ]
    own = list(subject.get("include_claim_keys") or [])
    if own:
        if own != want:
            return [
                _problem(
                    check,
                    f"{repo.repository}'s OIDC subject (repository level) has {', '.join(own)}, not {ordered}",
                    repo_fix,
                )
            ]
        return [_ok(check, f"the OIDC subject (repository level) carries {ordered}")]
    if isinstance(template, Unreadable):
        return [_unreadable(check, f"the OIDC subject template of {repo.owner}", template, _READ_FIX)]
    if org_keys != want:
        has = ", ".join(org_keys) if org_keys else "no template"
        return [
            _problem(
                check,
                f"{repo.repository} follows {repo.owner}'s OIDC subject template (organisation level), which has "
                f"{has}, not {ordered}",
                f"{org_fix} (or give the repository its own: {repo_fix})",
            )
        ]
    return [_ok(check, f"the OIDC subject ({repo.owner}'s template) carries {ordered}")]


Check = Callable[[StackFacts, RepoFacts], list[Finding]]
CHECKS: tuple[Check, ...] = (
    check_allow_list,
    check_repository_stack,
    check_app,
    check_variables,
    check_approval_environment,
    check_baseline_environment,
    check_oidc_subject,
)


def diagnose(stack: StackFacts, repo: RepoFacts, checks: tuple[Check, ...] = CHECKS) -> list[Finding]:
    return [finding for check in checks for finding in check(stack, repo)]


# -- reading GitHub ------------------------------------------------------------------------------

INSTALLATION_URL = "/repos/{owner}/{repo}/installation"
REPO_URL = "/repos/{owner}/{repo}"
VARIABLES_URL = "/repos/{owner}/{repo}/actions/variables{?per_page}"
ENVIRONMENT_URL = "/repos/{owner}/{repo}/environments/{environment_name}"
BRANCH_POLICIES_URL = ENVIRONMENT_URL + "/deployment-branch-policies{?per_page}"
SUBJECT_URL = "/repos/{owner}/{repo}/actions/oidc/customization/sub"
TEMPLATE_URL = "/orgs/{org}/actions/oidc/customization/sub"


def _status(error: Exception) -> int | None:
    code = getattr(error, "status_code", None)
    return int(code) if code is not None else None


def _read(read: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """``read(*args, **kwargs)``; None for GitHub's 404; Unreadable for any other failure."""
    try:
        return read(*args, **kwargs)
    except GitHubException as error:
        status = _status(error)
        if status == 404:
            return None
        hint = {401: "bad or expired credentials", 403: "the token lacks a permission"}.get(status or 0, "")
        return Unreadable(f"GitHub answered {status}" + (f" ({hint})" if hint else "") + f": {error}")
    except Unreachable as error:
        return Unreadable(f"GitHub did not answer ({error})")


def _listing(client: GitHubClient, url: str, url_vars: Mapping[str, Any], key: str) -> list[Any]:
    return list(client.getiter(url, url_vars, key=key))


def read_app(secret: Mapping[str, Any], api_url: str, repository: str) -> AppFacts:
    """What the secret holds and, for an App, its installation on the repository (asked with
    the App's JWT, as the backend asks: ``GET /repos/{owner}/{repo}/installation``)."""
    if secret.get("app_id") or secret.get("private_key"):
        if not secret.get("app_id") or not secret.get("private_key"):
            return AppFacts("broken", problem="the App credentials in the secret lack app_id or private_key")
        try:
            jwt = app_jwt(str(secret["app_id"]), str(secret["private_key"]))
        except (TypeError, ValueError) as error:
            reason = str(error).split("\n")[0]  # never the key itself
            return AppFacts("broken", problem=f"the App's private key in the secret is unusable: {reason}")
        try:
            pinned = int(secret.get("installation_id") or 0) or None
        except (TypeError, ValueError):
            return AppFacts("broken", problem="installation_id in the secret is not a number")
        owner, name = repository.split("/", 1)
        url_vars = {"owner": owner, "repo": name}
        answer = _read(GitHubClient(api_url).request, "GET", INSTALLATION_URL, url_vars, jwt=jwt)
        installation = answer[0] if isinstance(answer, tuple) else answer
        return AppFacts("app", installation=installation, secret_installation_id=pinned)
    if secret.get("token"):
        return AppFacts("token")
    return AppFacts(
        "broken", problem="the stack's GitHub secret holds neither an App (app_id, private_key) nor a token"
    )


def read_facts(stack: StackFacts, repository: str, client: GitHubClient, app: AppFacts) -> RepoFacts:
    """Everything the checks need of the repository, read with a person's token (``client``)."""
    owner, name = repository.split("/", 1)
    where = {"owner": owner, "repo": name}
    repo_doc = _read(client.getitem, REPO_URL, where)
    if not isinstance(repo_doc, dict):
        # Not visible to the token (or no such repository): every 404 below would read as
        # "missing", so nothing is judged.
        failed = repo_doc or Unreadable("GitHub answered 404: no such repository, or not visible to the token")
        envs = (stack.approval_environment, stack.baseline_environment)
        return RepoFacts(
            repository=repository,
            app=app,
            default_branch=failed,
            variables=failed,
            environments=dict.fromkeys(envs, failed),
            branch_policies={},
            oidc_subject=failed,
        )
    default_branch = str(repo_doc["default_branch"])

    listed = _read(_listing, client, VARIABLES_URL, where | {"per_page": 30}, "variables")
    variables = listed if isinstance(listed, Unreadable) else {v["name"]: v["value"] for v in listed or []}

    environments: dict[str, dict[str, Any] | Unreadable | None] = {}
    branch_policies: dict[str, list[str] | Unreadable] = {}
    for env in (stack.approval_environment, stack.baseline_environment):
        env_where = where | {"environment_name": env}
        found = _read(client.getitem, ENVIRONMENT_URL, env_where)
        environments[env] = found
        policy = found.get("deployment_branch_policy") if isinstance(found, dict) else None
        if policy and policy.get("custom_branch_policies"):
            policies = _read(_listing, client, BRANCH_POLICIES_URL, env_where | {"per_page": 100}, "branch_policies")
            # A tag rule admits tags' jobs too: listed as such, so it is never taken for a branch.
            branch_policies[env] = (
                policies
                if isinstance(policies, Unreadable)
                else [p["name"] if p.get("type", "branch") == "branch" else f"tag {p['name']}" for p in policies or []]
            )

    subject: dict[str, Any] | Unreadable | None = None
    template: dict[str, Any] | Unreadable | None = None
    if stack.pinned_workflow:
        subject = _read(client.getitem, SUBJECT_URL, where)
        if isinstance(subject, dict) and not subject.get("include_claim_keys"):
            # The template it follows, or could opt in to (404: the owner is a user, no template).
            template = _read(client.getitem, TEMPLATE_URL, {"org": owner})
    return RepoFacts(
        repository=repository,
        app=app,
        default_branch=default_branch,
        variables=variables,
        environments=environments,
        branch_policies=branch_policies,
        oidc_subject=subject,
        organization_template=template,
    )


# -- output --------------------------------------------------------------------------------------

_MARK = {"ok": "ok     ", "note": "note   ", "problem": "PROBLEM"}


def render_text(findings: list[Finding]) -> list[str]:
    """One line per finding; a problem's line ends with its fix."""
    lines = []
    for f in findings:
        line = f"{_MARK[f.level]} {f.check}: {f.message}"
        if f.fix and f.level != "ok":
            line += f" - fix: {f.fix}"
        lines.append(line)
    problems = sum(1 for f in findings if f.level == "problem")
    lines.append(f"{problems} problem(s)" if problems else "no problems")
    return lines


def as_json(stack: StackFacts, repository: str, findings: list[Finding]) -> str:
    document = {
        "repository": repository,
        "stack": stack.name,
        "region": stack.region,
        "ok": not any(f.level == "problem" for f in findings),
        "findings": [asdict(f) for f in findings],
    }
    return json.dumps(document, indent=2, sort_keys=True)


# -- the command ---------------------------------------------------------------------------------

REPOSITORY = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")


def read_secret(target: Stack) -> dict[str, Any] | str | None:
    """The stack's GitHub credentials secret as JSON, why it is not a JSON object, or None where
    its resource policy refuses the caller (on AWS it admits only modelrun's functions)."""
    arn = target.output("GitHubCredentialsSecretArn")
    try:
        text = target.client("secretsmanager").get_secret_value(SecretId=arn).get("SecretString") or ""
    except ClientError as error:
        if error.response["Error"]["Code"] in ("AccessDeniedException", "AccessDenied"):
            return None
        raise
    try:
        secret = json.loads(text)
    except ValueError:
        return f"the stack's GitHub secret {arn} is not JSON"
    return secret if isinstance(secret, dict) else f"the stack's GitHub secret {arn} is not a JSON object"


def run(target: Stack, repository: str, token: str) -> tuple[StackFacts, list[Finding]]:
    """Read the stack's and GitHub's facts about ``repository`` and check them."""
    stack = StackFacts.from_stack(target.name, target.region, target.parameters, target.outputs)
    secret = read_secret(target)
    if secret is None:
        app = AppFacts("sealed")
    elif isinstance(secret, str):
        app = AppFacts("broken", problem=secret)
    else:
        app = read_app(secret, stack.api_url, repository)
    facts = read_facts(stack, repository, GitHubClient(stack.api_url, oauth_token=token), app)
    facts = replace(facts, registration=read_registration(target, repository))
    return stack, diagnose(stack, facts)


def read_registration(target: Stack, repository: str) -> Registration | Unreadable | None:
    """The repository's registration, as the submit function reads it."""
    name = f"{registrations_path(target.name)}{repository}"
    try:
        value = target.client("ssm").get_parameter(Name=name)["Parameter"]["Value"]
    except ClientError as error:
        if error.response["Error"]["Code"] == "ParameterNotFound":
            return None
        return Unreadable(f"{name}: {error.response['Error']['Code']}")
    try:
        return Registration.model_validate_json(value)
    except ValueError as error:
        return Unreadable(f"{name} is not a registration: {error}")
