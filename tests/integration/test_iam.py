"""IAM on the local stack: every role is held to template.yaml's policies, as AWS holds it.

A happy run makes no denied call; a token AWS would refuse gets no credentials; and removing
one permission the flow needs from the template makes the flow fail on the call that needs it.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from modelrun_local.runtime import LocalRuntime
from modelrun_local.stack import load_repository_template, load_template
from tests.helpers import wait_for
from tests.integration.flow import REPOSITORY, Flow, with_command


def _roles_named(decisions: list[Any], fragment: str) -> list[Any]:
    return [d for d in decisions if fragment in d.principal]


def test_a_happy_run_is_allowed_every_call_and_each_role_was_checked(flow: Flow) -> None:
    job = flow.job(pr=3001, run_id=9_300_001)
    request = with_command(job.request(flow.image), "ok")
    job.send(request, flow.queue_url)  # as the GitHub role, by AssumeRoleWithWebIdentity
    flow.wait(timeout=60)
    assert flow.record(flow.run_id_of(request))["status"] == "SUCCEEDED"
    assert "✅ **SUCCEEDED**" in flow.comments(3001)[0]["body"]
    decisions = flow.runtime.iam_decisions()
    assert flow.runtime.iam_denials() == []
    checked = {(d.principal.split("-")[-2] if "-" in d.principal else d.principal, d.action) for d in decisions}
    for role, action in [
        ("PullRequestRole", "sqs:SendMessage"),
        ("SubmitFunctionRole", "batch:SubmitJob"),
        ("SubmitFunctionRole", "iam:PassRole"),
        ("SubmitFunctionRole", "secretsmanager:GetSecretValue"),
        ("TrackFunctionRole", "states:StartExecution"),
        ("ReportStateMachineRole", "lambda:InvokeFunction"),
        ("CollectResultsFunctionRole", "s3:GetObject"),
        ("UpdatePullRequestFunctionRole", "secretsmanager:GetSecretValue"),
        ("PullRequestJobRole", "s3:PutObject"),
        ("SubmitFunctionRole", "ssm:GetParameter"),
    ]:
        assert any(r.endswith(role) and a.lower() == action.lower() for r, a in checked), (role, action, checked)
    web = [d for d in decisions if d.action == "sts:AssumeRoleWithWebIdentity"]
    assert web and all(d.allowed for d in web)
    assert web[-1].principal == f"web-identity:repo:{REPOSITORY}:environment:staging"


def _refused(action: Callable[[], object]) -> str:
    with pytest.raises(ClientError) as refused:
        action()
    return str(refused.value.response["Error"]["Code"])


def test_sts_refuses_a_token_from_another_repository_or_outside_the_environments(flow: Flow) -> None:
    other = flow.job(pr=3002, run_id=9_300_002)
    other.env = flow.runtime.github.actions_job(
        "someone-else/avm", "pull_request", sha="ab" * 20, run_id=9_300_002, actor="mallory", environment="staging"
    )
    assert _refused(other.aws_session) == "AccessDenied"
    unapproved = flow.job(pr=3003, run_id=9_300_003, environment=None)  # a job outside any environment
    assert _refused(unapproved.aws_session) == "AccessDenied"
    denied = [d for d in flow.runtime.iam_denials() if d.action == "sts:AssumeRoleWithWebIdentity"]
    assert [d.principal for d in denied[-2:]] == [
        "web-identity:repo:someone-else/avm:environment:staging",
        f"web-identity:repo:{REPOSITORY}:pull_request",
    ]


# -- each permission the flow needs, removed from the template, fails the flow ----------------


# SAM policy templates that grant an action the flow needs (removing one removes the action).
SAM_TEMPLATES = {
    "secretsmanager:GetSecretValue": "AWSSecretsManagerGetSecretValuePolicy",
    "states:StartExecution": "StepFunctionsExecutionPolicy",
}


def _without(resource: str, action: str, template: dict[str, Any] | None = None) -> dict[str, Any]:
    """template.yaml (or the template given) with ``action`` taken out of ``resource``'s policies
    (a role's or a function's, or an AWS::IAM::Policy's document)."""
    template = copy.deepcopy(template or load_template())
    props = template["Resources"][resource]["Properties"]
    if "PolicyDocument" in props:
        props = {"Policies": [props]}  # the one document, edited in place below
    kept = [p for p in props["Policies"] if not (isinstance(p, dict) and SAM_TEMPLATES.get(action) in p)]
    removed = len(kept) < len(props["Policies"])
    props["Policies"][:] = kept
    for policy in kept:
        document = policy.get("PolicyDocument", policy) if isinstance(policy, dict) else {}
        for statement in document.get("Statement", []):
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            if action in actions:
                statement["Action"] = [a for a in actions if a != action] or ["none:Nothing"]
                removed = True
    assert removed, (resource, action)
    return template


MUTATIONS = {
    "batch:SubmitJob": ("SubmitFunction", "batch:SubmitJob", "SubmitFunctionRole"),
    "iam:PassRole": ("SubmitFunction", "iam:PassRole", "SubmitFunctionRole"),
    "states:StartExecution (track)": ("TrackFunction", "states:StartExecution", "TrackFunctionRole"),
    "s3:PutObject (job role)": ("ResultsPolicy", "s3:PutObject", "PullRequestJobRole"),
    "secretsmanager:GetSecretValue (update)": (
        "UpdatePullRequestFunction",
        "secretsmanager:GetSecretValue",
        "UpdatePullRequestFunctionRole",
    ),
    "sqs:SendMessage (GitHub role)": ("PullRequestRole", "sqs:SendMessage", "PullRequestRole"),
}
# The repository stack's roles (repository.yaml); the rest are the stack's.
IN_REPOSITORY_STACK = {"ResultsPolicy", "PullRequestRole"}


@pytest.mark.parametrize("name", list(MUTATIONS))
def test_removing_a_permission_the_flow_needs_fails_the_flow(name: str, tmp_path: Path) -> None:
    resource, action, role = MUTATIONS[name]
    in_repository = resource in IN_REPOSITORY_STACK
    with LocalRuntime(
        parameters={"LogLevel": "ERROR"},
        template=None if in_repository else _without(resource, action),
        repository_template=_without(resource, action, load_repository_template()) if in_repository else None,
    ) as runtime:
        flow = Flow.placeholder(runtime, tmp_path)
        job = flow.job(pr=3100, run_id=9_310_000)
        request = with_command(job.request(flow.image), "ok")
        try:
            job.send(request, flow.queue_url)
        except ClientError as error:  # the enqueue step itself is refused
            assert action == "sqs:SendMessage" and error.response["Error"]["Code"] == "AccessDenied"

        def refused() -> bool:
            return any(role in d.principal and d.action.lower() == action.lower() for d in runtime.iam_denials())

        # The flow is refused at the call that needs the permission ...
        wait_for(refused, 60, f"a denial of {action} to {role}")
        # ... and, once its retries are spent (the message dead-lettered, the run or its report
        # ended), the PR never shows a success: no commit status, no check run.
        flow.wait()
        assert "success" not in [s["state"] for s in runtime.github.statuses(REPOSITORY, request.head_sha)]
        assert "success" not in [c["conclusion"] for c in runtime.github.check_runs(REPOSITORY, request.head_sha)]
