"""The workflow's enqueue step, run the way GitHub Actions runs it.

GitHub records the workflow run and gives the job its OIDC token endpoint (the local GitHub does
both, see ``LocalGitHub.actions_job``); the step then does what ``modelrun enqueue`` does in the
reusable workflow (``.github/workflows/model-run.yaml``, which every model repository's workflow
calls): build the request from the event payload and the job's variables, fetch the token for
the stack's audience (the queue's URL), attach it and send.
"""

from __future__ import annotations

import copy
import secrets
from dataclasses import dataclass
from typing import Any

import boto3
from botocore import UNSIGNED
from botocore.config import Config

from modelrun.contracts import CleanupRequest, RunRequest
from modelrun_cli.enqueue import build_cleanup, build_request, oidc_token, send, with_identity
from modelrun_local.github_server import LocalGitHub

APPROVAL_ENVIRONMENT = "staging"
BASELINE_ENVIRONMENT = "modelrun-main"
# The repository variables the workflow reads (MODELRUN_ROLE_ARN, ...), by repository (lower
# case): the local runtime sets them from each repository stack's outputs, as docs/adopt.md has
# operators do. Under "" the runtime's first repository's: what a job of a repository the stack
# does not serve would try (another repository's role).
REPOSITORY_VARIABLES: dict[str, dict[str, str]] = {}


@dataclass
class Job:
    """A started job: its variables, and what it sends."""

    github: LocalGitHub
    event_name: str
    event: dict[str, Any]
    env: dict[str, str]
    environment: str | None = None

    def request(self, image: str, **kwargs: Any) -> RunRequest:
        """The run request, and the image tagged as this job's build pushes it (the reusable
        workflow's tag names the commit, the run and its attempt; the backend checks it)."""
        request = build_request(self.event_name, self.event, self.env, image=image, **kwargs)
        tag_as_built(request)
        return request

    def cleanup(self) -> CleanupRequest:
        return build_cleanup(self.event, self.env)

    def token(self, audience: str) -> str:
        return oidc_token(self.env, audience)

    @property
    def variables(self) -> dict[str, str]:
        """The repository variables of the job's repository."""
        repository = self.env.get("GITHUB_REPOSITORY", "").lower()
        return REPOSITORY_VARIABLES.get(repository) or REPOSITORY_VARIABLES.get("", {})

    def role_arn(self) -> str:
        """The role the workflow assumes: the baseline role for default-branch runs in the
        baseline environment (they alone write the build cache), else the PR role."""
        if self.environment == BASELINE_ENVIRONMENT and self.event_name != "pull_request":
            return self.variables["MODELRUN_BASELINE_ROLE_ARN"]
        return self.variables["MODELRUN_ROLE_ARN"]

    def aws_session(self) -> boto3.Session:
        """What aws-actions/configure-aws-credentials does: the job's OIDC token (audience
        sts.amazonaws.com) exchanged for the role's credentials. STS refuses a token its trust
        policy does not admit (another repository, a job outside the environments)."""
        region = self.variables["MODELRUN_AWS_REGION"]
        sts = boto3.client("sts", region_name=region, config=Config(signature_version=UNSIGNED))
        credentials = sts.assume_role_with_web_identity(
            RoleArn=self.role_arn(),
            RoleSessionName=f"GitHubActions-{self.env['GITHUB_RUN_ID']}",
            WebIdentityToken=self.token("sts.amazonaws.com"),
        )["Credentials"]
        return boto3.Session(
            aws_access_key_id=credentials["AccessKeyId"],
            aws_secret_access_key=credentials["SecretAccessKey"],
            aws_session_token=credentials["SessionToken"],
            region_name=region,
        )

    def send(self, message: RunRequest | CleanupRequest, queue_url: str) -> str:
        """Attach the job's token (audience: the queue's URL) and send as the workflow's role."""
        client = self.aws_session().client("sqs") if self.variables else None
        return send(with_identity(message, self.token(queue_url)), queue_url, sqs_client=client)


def tag_as_built(request: RunRequest) -> None:
    """Tag the request's image ``<sha>[-gpu]-<run id>-<attempt>-<random>``, as the reusable
    workflow's build step pushes it (here as the operator: the roles' push rights are tested apart).
    An image ECR does not hold is left alone: the backend refuses it."""
    ecr = boto3.client("ecr")
    name, _, digest = request.image.split("/", 1)[1].partition("@")
    try:
        [image] = ecr.batch_get_image(repositoryName=name, imageIds=[{"imageDigest": digest}])["images"]
    except (ValueError, ecr.exceptions.RepositoryNotFoundException):
        return
    gpu = "-gpu" if request.compute == "gpu" else ""
    run = request.workflow
    tag = f"{request.head_sha}{gpu}-{run.run_id}-{run.run_attempt}-{secrets.token_hex(6)}"
    ecr.put_image(repositoryName=name, imageManifest=image["imageManifest"], imageTag=tag, imageDigest=digest)


def retarget(event: dict[str, Any], repository: str, default_branch: str = "main") -> dict[str, Any]:
    """A webhook sample moved to ``repository`` whose default branch is ``default_branch``, a PR
    against it (the samples name GitHub's example repository, default branch ``master``)."""
    event = copy.deepcopy(event)
    owner, name = repository.split("/", 1)
    repos = [event.get("repository")]
    pull = event.get("pull_request") or {}
    repos += [(pull.get("head") or {}).get("repo"), (pull.get("base") or {}).get("repo")]
    for repo in repos:
        if repo:
            repo["full_name"], repo["name"], repo["default_branch"] = repository, name, default_branch
            repo.setdefault("owner", {})["login"] = owner
    if pull.get("base"):
        pull["base"]["ref"] = default_branch
        pull["base"]["label"] = f"{owner}:{default_branch}"
    return event


def pull_request_job(
    github: LocalGitHub,
    event: dict[str, Any],
    *,
    run_id: int,
    run_attempt: int = 1,
    environment: str | None = APPROVAL_ENVIRONMENT,
    actor: str | None = None,
    job_workflow_ref: str | None = None,
) -> Job:
    """A ``pull_request`` job in the approval environment (its reviewers approved it);
    ``job_workflow_ref``: the reusable workflow its caller names (``uses:``)."""
    pull = event["pull_request"]
    repository = event["repository"]["full_name"]
    env = github.actions_job(
        repository,
        "pull_request",
        sha=pull["head"]["sha"],
        run_id=run_id,
        run_attempt=run_attempt,
        actor=actor or pull["user"]["login"],
        environment=environment,
        pull_request=(pull["number"], pull["head"]["ref"], pull["base"]["ref"], pull["base"]["sha"]),
        job_workflow_ref=job_workflow_ref,
    )
    return Job(github, "pull_request", event, env, environment)


def branch_job(
    github: LocalGitHub,
    repository_payload: dict[str, Any],
    event_name: str,
    *,
    branch: str,
    sha: str,
    run_id: int,
    actor: str,
    environment: str | None = BASELINE_ENVIRONMENT,
    inputs: dict[str, Any] | None = None,
    ref: str | None = None,
    job_workflow_ref: str | None = None,
) -> Job:
    """A ``push`` or ``workflow_dispatch`` job on a branch (the default branch's environment by
    default: a merge to main re-baselines)."""
    repository = repository_payload["full_name"]
    event: dict[str, Any] = {"repository": repository_payload, "ref": ref or f"refs/heads/{branch}"}
    if event_name == "workflow_dispatch":
        event["inputs"] = inputs or {}
    else:
        event["after"] = sha
    env = github.actions_job(
        repository,
        event_name,
        sha=sha,
        run_id=run_id,
        actor=actor,
        environment=environment,
        ref=ref or f"refs/heads/{branch}",
        job_workflow_ref=job_workflow_ref,
    )
    return Job(github, event_name, event, env, environment)
