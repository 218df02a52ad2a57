"""The local stack's IAM evaluation (modelrun_local.iam): IAM's rules, on the template's own
policies where it has them."""

from __future__ import annotations

from typing import Any

import pytest

from modelrun_local import iam
from tests.unit.test_repository_template import CONDO
from tests.unit.test_repository_template import role as repository_role


def _trust(role: str) -> dict[str, Any]:
    """A GitHub role's trust policy (repository.yaml) as CloudFormation resolves it for county-assessor/avm."""
    document: dict[str, Any] = repository_role(role, CONDO | {"Repository": "county-assessor/avm"})[
        "AssumeRolePolicyDocument"
    ]
    return document


def _context(sub: str) -> dict[str, str]:
    return {
        "token.actions.githubusercontent.com:aud": "sts.amazonaws.com",
        "token.actions.githubusercontent.com:sub": sub,
    }


FEDERATED = {"Federated": "arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com"}


@pytest.mark.parametrize(
    ("sub", "trusted"),
    [
        ("repo:county-assessor/avm:environment:staging", True),
        ("repo:county-assessor/avm:environment:modelrun-main", True),
        ("repo:county-assessor/condo:environment:modelrun-main", False),  # another repository
        ("repo:someone-else/avm:environment:staging", False),
        ("repo:county-assessor/avm:pull_request", False),  # a job outside any environment
        ("repo:county-assessor/avm:environment:x:environment:staging", False),
        ("repo:county-assessor/avm:ref:refs/heads/main", False),
        ("repo:county-assessor@7/avm@8:environment:staging", True),  # a newer repository's subject
        ("repo:county-assessor@7/other@9:environment:staging", False),
    ],
)
def test_the_github_roles_trust_admits_exactly_repository_x_environment(sub: str, trusted: bool) -> None:
    allowed, _ = iam.trusts(_trust("PullRequestRole"), FEDERATED, "sts:AssumeRoleWithWebIdentity", _context(sub))
    assert allowed is trusted


def test_the_baseline_role_trusts_only_the_baseline_environment() -> None:
    trust = _trust("BaselineRole")
    ok = _context("repo:county-assessor/avm:environment:modelrun-main")
    assert iam.trusts(trust, FEDERATED, "sts:AssumeRoleWithWebIdentity", ok)[0]
    staging = _context("repo:county-assessor/avm:environment:staging")
    assert not iam.trusts(trust, FEDERATED, "sts:AssumeRoleWithWebIdentity", staging)[0]
    wrong_audience = ok | {"token.actions.githubusercontent.com:aud": "https://example.com"}
    assert not iam.trusts(trust, FEDERATED, "sts:AssumeRoleWithWebIdentity", wrong_audience)[0]
    assert not iam.trusts(
        trust, {"Federated": "arn:aws:iam::1:oidc-provider/other"}, "sts:AssumeRoleWithWebIdentity", ok
    )[0]


def test_iam_evaluation_rules() -> None:
    allow = {"Effect": "Allow", "Action": "batch:SubmitJob", "Resource": "arn:aws:batch:*:*:job-queue/q"}
    deny = {"Effect": "Deny", "Action": "batch:*", "Resource": "*"}
    assert iam.evaluate([{"Statement": [allow]}], "batch:submitjob", "arn:aws:batch:r:1:job-queue/q", {})[0]
    assert not iam.evaluate([{"Statement": [allow]}], "batch:SubmitJob", "arn:aws:batch:r:1:job-queue/other", {})[0]
    assert iam.evaluate(
        [{"Statement": [allow]}, {"Statement": [deny]}], "batch:SubmitJob", "arn:aws:batch:r:1:job-queue/q", {}
    ) == (
        False,
        "explicit deny in policy 1",
    )
    not_resource = {"Effect": "Allow", "NotAction": "s3:Delete*", "NotResource": "arn:aws:s3:::secret/*"}
    assert iam.evaluate([{"Statement": not_resource}], "s3:PutObject", "arn:aws:s3:::bucket/k", {})[0]
    assert not iam.evaluate([{"Statement": not_resource}], "s3:PutObject", "arn:aws:s3:::secret/k", {})[0]
    assert not iam.evaluate([{"Statement": not_resource}], "s3:DeleteObject", "arn:aws:s3:::bucket/k", {})[0]


def test_conditions_follow_iam_on_missing_keys_and_operators() -> None:
    def holds(condition: dict[str, Any], context: dict[str, Any]) -> bool:
        statement = {"Effect": "Allow", "Action": "iam:PassRole", "Resource": "*", "Condition": condition}
        return iam.evaluate([{"Statement": [statement]}], "iam:PassRole", "arn:aws:iam::1:role/r", context)[0]

    passed = {"StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}}
    assert holds(passed, {"iam:PassedToService": "ecs-tasks.amazonaws.com"})
    assert not holds(passed, {"iam:PassedToService": "lambda.amazonaws.com"})
    assert not holds(passed, {})  # a missing key matches nothing
    assert holds({"StringEqualsIfExists": {"k": "v"}}, {})
    assert holds({"StringNotEquals": {"k": "v"}}, {})
    assert holds({"Null": {"k": "true"}}, {}) and not holds({"Null": {"k": "true"}}, {"k": "x"})
    assert holds({"ForAllValues:StringLike": {"k": ["a*"]}}, {"k": ["ab", "ac"]})
    assert not holds({"ForAllValues:StringLike": {"k": ["a*"]}}, {"k": ["ab", "b"]})
    assert holds({"ForAnyValue:StringLike": {"k": ["a*"]}}, {"k": ["b", "ab"]})
    assert holds(
        {"ArnLike": {"aws:SourceArn": "arn:aws:events:*:*:rule/x"}}, {"aws:SourceArn": "arn:aws:events:r:1:rule/x"}
    )
    with pytest.raises(iam.UnsupportedCondition):
        holds({"NumericLessThan": {"k": "3"}}, {"k": "2"})


def _call(service: str, operation: str, params: dict[str, Any], path: str = "/") -> iam.Call:
    return iam.Call(service, operation, "us-east-1", "123456789012", path, params, "*")


def test_calls_are_authorized_against_iams_names_and_resource_arns() -> None:
    assert iam.action_of(_call("sqs", "DeleteMessageBatch", {})) == "sqs:DeleteMessage"
    assert iam.action_of(_call("lambda", "Invoke", {})) == "lambda:InvokeFunction"
    query = _call("dynamodb", "Query", {"TableName": "runs", "IndexName": "by-pr"})
    assert iam.resources_of(query, lambda _: None) == ["arn:aws:dynamodb:us-east-1:123456789012:table/runs/index/by-pr"]
    submit = _call(
        "batch", "submitjob", {"jobQueue": "arn:aws:batch:us-east-1:1:job-queue/cpu", "jobDefinition": "modelrun-x:3"}
    )
    assert iam.resources_of(submit, lambda _: None) == [
        "arn:aws:batch:us-east-1:1:job-queue/cpu",
        "arn:aws:batch:us-east-1:123456789012:job-definition/modelrun-x:3",
    ]
    invoke = _call(
        "lambda", "Invoke", {}, "/2015-03-31/functions/arn%3Aaws%3Alambda%3Aus-east-1%3A1%3Afunction%3Af/invocations"
    )
    assert iam.resources_of(invoke, lambda _: None) == ["arn:aws:lambda:us-east-1:1:function:f"]
    register = _call(
        "batch",
        "registerjobdefinition",
        {"jobDefinitionName": "modelrun-x", "containerProperties": {"jobRoleArn": "arn:aws:iam::1:role/job"}},
    )
    assert iam.implied_checks(register) == [
        ("iam:PassRole", "arn:aws:iam::1:role/job", {"iam:PassedToService": "ecs-tasks.amazonaws.com"})
    ]
