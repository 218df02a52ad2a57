"""template.yaml, read the way the local runtime reads it (aws-sam-translator, offline)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from modelrun_local.stack import ROOT, load_template, translate


@pytest.fixture(scope="module")
def cfn() -> dict[str, Any]:
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    return translate(load_template())


def resources_of(cfn: dict[str, Any], kind: str) -> dict[str, Any]:
    return {k: v for k, v in cfn["Resources"].items() if v["Type"] == kind}


def test_both_queues_feed_their_function_with_partial_batch_failures(cfn: dict[str, Any]) -> None:
    mappings = resources_of(cfn, "AWS::Lambda::EventSourceMapping")
    by_function = {m["Properties"]["FunctionName"]["Ref"]: m["Properties"] for m in mappings.values()}
    assert set(by_function) == {"SubmitFunction", "TrackFunction"}
    assert by_function["SubmitFunction"]["EventSourceArn"] == {"Fn::GetAtt": ["RunRequestsQueue", "Arn"]}
    assert by_function["TrackFunction"]["EventSourceArn"] == {"Fn::GetAtt": ["JobEventsQueue", "Arn"]}
    for props in by_function.values():
        assert props["FunctionResponseTypes"] == ["ReportBatchItemFailures"]


def test_every_queue_has_a_dlq_with_an_alarm(cfn: dict[str, Any]) -> None:
    queues = resources_of(cfn, "AWS::SQS::Queue")
    dlqs = {
        q["Properties"]["RedrivePolicy"]["deadLetterTargetArn"]["Fn::GetAtt"][0]
        for q in queues.values()
        if "RedrivePolicy" in q["Properties"]
    }
    assert dlqs == {"RunRequestsDLQ", "JobEventsDLQ"}
    alarmed = {
        a["Properties"]["Dimensions"][0]["Value"]["Fn::GetAtt"][0]
        for a in resources_of(cfn, "AWS::CloudWatch::Alarm").values()
    }
    assert alarmed == dlqs


def test_the_rule_takes_only_this_stacks_batch_queues_to_the_job_events_queue(cfn: dict[str, Any]) -> None:
    rule = cfn["Resources"]["JobStateChangeRule"]["Properties"]
    assert rule["EventPattern"]["source"] == ["aws.batch"]
    assert rule["EventPattern"]["detail-type"] == ["Batch Job State Change"]
    assert rule["EventPattern"]["detail"]["jobQueue"] == [{"Ref": "CpuJobQueue"}, {"Ref": "GpuJobQueue"}]
    assert rule["Targets"] == [{"Id": "JobEventsQueue", "Arn": {"Fn::GetAtt": ["JobEventsQueue", "Arn"]}}]


def test_the_results_bucket_is_private_encrypted_and_tls_only(cfn: dict[str, Any]) -> None:
    bucket = cfn["Resources"]["ResultsBucket"]["Properties"]
    assert all(bucket["PublicAccessBlockConfiguration"].values())
    assert bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert bucket["LifecycleConfiguration"]["Rules"]
    statement = cfn["Resources"]["ResultsBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"][0]
    assert statement["Effect"] == "Deny" and statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_github_role_trust_is_pinned_to_the_repository_and_approval_environment(cfn: dict[str, Any]) -> None:
    role = cfn["Resources"]["GitHubActionsRole"]["Properties"]
    [statement] = role["AssumeRolePolicyDocument"]["Statement"]
    assert statement["Action"] == "sts:AssumeRoleWithWebIdentity"
    conditions = statement["Condition"]
    assert list(conditions) == ["StringEquals"]  # no StringLike wildcards
    assert conditions["StringEquals"]["token.actions.githubusercontent.com:aud"] == "sts.amazonaws.com"
    assert conditions["StringEquals"]["token.actions.githubusercontent.com:sub"] == {
        "Fn::Sub": "repo:${GitHubRepository}:environment:${ApprovalEnvironment}"
    }


def test_github_role_may_only_push_to_the_stacks_repository_and_enqueue(cfn: dict[str, Any]) -> None:
    role = cfn["Resources"]["GitHubActionsRole"]["Properties"]
    assert "ManagedPolicyArns" not in role
    [policy] = role["Policies"]
    granted = {
        (s["Sid"], json.dumps(s["Resource"], sort_keys=True)): set(
            s["Action"] if isinstance(s["Action"], list) else [s["Action"]]
        )
        for s in policy["PolicyDocument"]["Statement"]
    }
    assert all(s["Effect"] == "Allow" for s in policy["PolicyDocument"]["Statement"])
    assert granted == {
        ("EcrLogin", '"*"'): {"ecr:GetAuthorizationToken"},  # account-wide by AWS's design
        ("PushModelImage", '{"Fn::GetAtt": ["ModelRepository", "Arn"]}'): {
            "ecr:BatchCheckLayerAvailability",
            "ecr:BatchGetImage",
            "ecr:CompleteLayerUpload",
            "ecr:GetDownloadUrlForLayer",
            "ecr:InitiateLayerUpload",
            "ecr:PutImage",
            "ecr:UploadLayerPart",
        },
        ("EnqueueRun", '{"Fn::GetAtt": ["RunRequestsQueue", "Arn"]}'): {"sqs:SendMessage"},
    }


def test_the_state_machine_definition_gets_every_substitution(cfn: dict[str, Any]) -> None:
    text, substitutions = cfn["Resources"]["ReportStateMachine"]["Properties"]["DefinitionString"]["Fn::Sub"]
    import re

    assert set(re.findall(r"\$\{(\w+)\}", text)) == set(substitutions)


def test_lambda_requirements_match_the_lock_file() -> None:
    uv = ROOT / ".tools" / "bin" / "uv"
    if not uv.exists():
        pytest.fail("run `make setup` first: .tools/bin/uv is missing")
    exported = subprocess.run(
        [str(uv), "export", "--only-group", "lambda", "--no-hashes", "--frozen", "--no-emit-project", "--no-header"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert exported == (ROOT / "functions" / "requirements.txt").read_text(), "run `make requirements`"


def test_the_report_validates_with_the_model_containers_schema() -> None:
    ours = ROOT / "functions" / "modelrun" / "schemas" / "metrics.v1.schema.json"
    theirs = ROOT / "model_container" / "metrics.schema.json"
    assert json.loads(ours.read_text()) == json.loads(theirs.read_text()), f"copy {theirs} to {ours}"


def test_the_report_schema_loads_in_powertools_validator() -> None:
    from aws_lambda_powertools.utilities.validation import validate

    schema = json.loads((ROOT / "functions" / "modelrun" / "schemas" / "metrics.v1.schema.json").read_text())
    with pytest.raises(Exception, match="must contain"):
        validate(event={}, schema=schema)
    assert sys.version_info[:2] == (3, 12), "the Lambda runtime is python3.12"
    assert Path(ROOT / "template.yaml").read_text().count("Runtime: python3.12") == 1
