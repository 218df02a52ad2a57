"""Trust pinned to the platform's reusable workflow (issue 22): a stack with PinnedWorkflow set,
its repository's OIDC subject customized as docs/adopt.md says. A job of the pinned workflow runs;
a job of any other workflow gets no credentials from STS, and its token, sent by whoever can
reach the queue, is dead-lettered by the submit function with its reason. One LocalRuntime for
the module; jobs run the tiny placeholder model."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import boto3
import httpx
import pytest
from botocore.exceptions import ClientError

from modelrun.adapters.aws import RunsTable
from modelrun.domain.run import RunRecord
from modelrun_cli.enqueue import with_identity
from modelrun_local.runtime import NOOP_MODEL_DIR, LocalRuntime
from modelrun_local.workflow_job import Job, branch_job, pull_request_job
from tests.helpers import wait_until_quiet
from tests.integration.flow import REPOSITORY, dead_letter_reason, pull_request_event, with_command
from tests.integration.local_github.support import app_installation_token

PINNED = "county-assessor/modelrun/.github/workflows/model-run.yaml@refs/tags/v1"
# docs/adopt.md's customization, in its order.
CLAIM_KEYS = ["repo", "context", "ref", "job_workflow_ref"]
MAIN_SHA = "c" * 40


class Pinned:
    def __init__(self, runtime: LocalRuntime, image: str) -> None:
        self.runtime = runtime
        self.github = runtime.github
        self.image = image
        self.queue_url = runtime.outputs["RunRequestsQueueUrl"]
        self.dlq_url = runtime.outputs["RunRequestsDLQUrl"]
        self.sqs = boto3.client("sqs")
        self.table = RunsTable(runtime.outputs["RunsTableName"])

    def customize(self, body: dict[str, Any]) -> None:
        """The one call of docs/adopt.md (`gh api -X PUT …/actions/oidc/customization/sub`)."""
        token, _ = app_installation_token(self.github)
        answered = httpx.put(
            f"{self.github.url}/repos/{REPOSITORY}/actions/oidc/customization/sub",
            json=body,
            headers={"Authorization": f"Bearer {token}", "X-GitHub-Api-Version": "2022-11-28"},
        )
        assert answered.status_code == 201, answered.text

    def pr_job(self, pr: int, run_id: int, sha: str, workflow: str = PINNED) -> Job:
        event = pull_request_event(pr, sha)
        event["pull_request"]["head"]["ref"] = f"feature-{pr}"
        event["pull_request"]["base"]["sha"] = MAIN_SHA
        return pull_request_job(self.github, event, run_id=run_id, job_workflow_ref=workflow)

    def record_of(self, sha: str) -> RunRecord | None:
        found = [r for r in self.table.scan() if r.head_sha == sha]
        assert len(found) <= 1, found
        return found[0] if found else None

    def refused(self, body: str) -> str:
        """Send a raw message (as anyone the queue admits) and return its dead-letter reason;
        fails if anything was written to GitHub meanwhile."""

        def writes() -> int:
            return wait_until_quiet(lambda: self.github.api_calls(writes_only=True), 1.0, what="GitHub writes")

        before = writes()
        message_id = self.sqs.send_message(QueueUrl=self.queue_url, MessageBody=body)["MessageId"]

        reason = dead_letter_reason(self.sqs, self.dlq_url, message_id)
        assert writes() == before, "a refused request wrote to GitHub"
        return reason


@pytest.fixture(scope="module")
def stack() -> Iterator[Pinned]:
    with LocalRuntime(parameters={"LogLevel": "WARNING", "PinnedWorkflow": PINNED}) as runtime:
        s = Pinned(runtime, runtime.push_image(NOOP_MODEL_DIR, tag="noop"))
        s.customize({"use_default": False, "include_claim_keys": CLAIM_KEYS})
        yield s


def _refused(action: Callable[[], object]) -> str:
    with pytest.raises(ClientError) as refused:
        action()
    return str(refused.value.response["Error"]["Code"])


def main_push_job(stack: Pinned, run_id: int, workflow: str) -> Job:
    """A push to main whose job ran ``workflow`` (the baseline environment's job)."""
    repository = pull_request_event(0, MAIN_SHA)["repository"]
    return branch_job(
        stack.github,
        repository,
        "push",
        branch="main",
        sha=MAIN_SHA,
        run_id=run_id,
        actor="maintainer",
        job_workflow_ref=workflow,
    )


def test_jobs_of_the_pinned_workflow_run_as_baseline_and_pull_request(stack: Pinned) -> None:
    main = main_push_job(stack, 7_000_001, PINNED)
    main.send(with_command(main.request(stack.image), "ok"), stack.queue_url)  # the baseline role
    stack.runtime.wait_until_idle(timeout=60)
    record = stack.record_of(MAIN_SHA)
    assert record is not None and record.status.value == "SUCCEEDED" and record.baseline

    job = stack.pr_job(700, 7_000_700, "7" * 40)
    job.send(with_command(job.request(stack.image), "ok"), stack.queue_url)
    stack.runtime.wait_until_idle(timeout=60)
    record = stack.record_of("7" * 40)
    assert record is not None and record.status.value == "SUCCEEDED" and record.base_sha == MAIN_SHA
    web = [d for d in stack.runtime.iam_decisions() if d.action == "sts:AssumeRoleWithWebIdentity"]
    assert web[-1].allowed and web[-1].principal == (
        f"web-identity:repo:{REPOSITORY}:environment:staging:ref:refs/pull/700/merge:job_workflow_ref:{PINNED}"
    )


@pytest.mark.parametrize(
    "workflow",
    [
        f"{REPOSITORY}/.github/workflows/model-run.yaml@refs/pull/701/merge",  # the PR's own copy
        PINNED.replace("refs/tags/v1", "refs/heads/main"),
        PINNED.replace("county-assessor/", "evil/"),  # a fork of the platform
    ],
)
def test_sts_refuses_a_job_of_another_workflow(stack: Pinned, workflow: str) -> None:
    job = stack.pr_job(701, 7_000_701, "8" * 40, workflow=workflow)
    assert _refused(job.aws_session) == "AccessDenied"
    main = main_push_job(stack, 7_000_702, workflow)
    assert main.role_arn() == stack.runtime.repository_stack()["BaselineRoleArn"]
    assert _refused(main.aws_session) == "AccessDenied"
    denied = stack.runtime.iam_denials()[-1]
    assert denied.action == "sts:AssumeRoleWithWebIdentity" and denied.principal.endswith(f":{workflow}")


def test_sts_refuses_the_pinned_workflow_under_the_default_subject(stack: Pinned) -> None:
    """A repository whose subject is not customized carries no workflow in `sub`: refused."""
    stack.customize({"use_default": True})
    try:
        assert _refused(stack.pr_job(702, 7_000_703, "9" * 40).aws_session) == "AccessDenied"
        assert stack.runtime.iam_denials()[-1].principal == f"web-identity:repo:{REPOSITORY}:environment:staging"
    finally:
        stack.customize({"use_default": False, "include_claim_keys": CLAIM_KEYS})
    stack.pr_job(702, 7_000_704, "9" * 40).aws_session()  # customized again: trusted


def test_a_newer_repositorys_immutable_subject_is_trusted_by_name(stack: Pinned) -> None:
    """`repo:OWNER@ID/REPO@ID:…` (repositories created after 2026-07-15): the same roles, by name."""
    stack.customize({"use_default": False, "include_claim_keys": CLAIM_KEYS, "use_immutable_subject": True})
    try:
        stack.pr_job(705, 7_000_707, "d" * 40).aws_session()
        trusted = [d for d in stack.runtime.iam_decisions() if d.action == "sts:AssumeRoleWithWebIdentity"][-1]
        owner, name = REPOSITORY.split("/")
        assert trusted.allowed and trusted.principal.startswith(f"web-identity:repo:{owner}@")
        assert f"/{name}@" in trusted.principal and trusted.principal.endswith(f":job_workflow_ref:{PINNED}")
        other = stack.pr_job(706, 7_000_708, "e" * 40, workflow=PINNED.replace("v1", "v2"))
        assert _refused(other.aws_session) == "AccessDenied"
    finally:
        stack.customize({"use_default": False, "include_claim_keys": CLAIM_KEYS, "use_immutable_subject": False})


def test_the_submit_function_refuses_a_token_of_another_workflow_whatever_the_roles_say(stack: Pinned) -> None:
    # A job of another workflow, its request sent by a sender the queue admits (a role edited by
    # hand, another stack's customization): the token itself is checked.
    other = f"{REPOSITORY}/.github/workflows/model-run.yaml@refs/pull/703/merge"
    job = stack.pr_job(703, 7_000_705, "a" * 40, workflow=other)
    request = with_identity(with_command(job.request(stack.image), "ok"), job.token(stack.queue_url))
    reason = stack.refused(request.model_dump_json())
    assert reason == f"unverified: the job ran workflow {other!r}, not the pinned {PINNED!r} (PinnedWorkflow): " + (
        "call the pinned reusable workflow (docs/adopt.md)"
    )
    assert stack.record_of("a" * 40) is None and stack.github.comments(REPOSITORY, 703) == []
    # The same job of the pinned workflow, sent the same way, is accepted (the refusal was the workflow's).
    honest = stack.pr_job(704, 7_000_706, "b" * 40)
    body = with_identity(with_command(honest.request(stack.image), "ok"), honest.token(stack.queue_url))
    stack.sqs.send_message(QueueUrl=stack.queue_url, MessageBody=body.model_dump_json())
    stack.runtime.wait_until_idle(timeout=60)
    record = stack.record_of("b" * 40)
    assert record is not None and record.status.value == "SUCCEEDED"
