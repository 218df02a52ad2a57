"""template.yaml, read the way the local runtime reads it (aws-sam-translator, offline)."""

from __future__ import annotations

import copy
import json
import os
import re
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
    by_queue = {m["Properties"]["EventSourceArn"]["Fn::GetAtt"][0]: m["Properties"] for m in mappings.values()}
    assert {q: m["FunctionName"]["Ref"] for q, m in by_queue.items()} == {
        "RunRequestsQueue": "SubmitFunction",
        "OperatorRequestsQueue": "SubmitFunction",
        "JobEventsQueue": "TrackFunction",
    }
    for props in by_queue.values():
        assert props["FunctionResponseTypes"] == ["ReportBatchItemFailures"]


def _statements(role: dict[str, Any]) -> list[dict[str, Any]]:
    return [s for policy in role["Properties"].get("Policies", []) for s in policy["PolicyDocument"]["Statement"]]


def test_only_operators_send_to_the_operator_queue(cfn: dict[str, Any]) -> None:
    """The GitHub roles (repository.yaml) import the run-requests queue's ARN, never the operator queue's."""
    [export] = [
        o
        for o in cfn["Outputs"].values()
        if o.get("Export", {}).get("Name") == {"Fn::Sub": "${AWS::StackName}-RunRequestsQueueArn"}
    ]
    assert export["Value"] == {"Fn::GetAtt": ["RunRequestsQueue", "Arn"]}
    submit = cfn["Resources"]["SubmitFunction"]["Properties"]["Environment"]["Variables"]
    assert submit["OPERATOR_QUEUE_ARN"] == {"Fn::GetAtt": ["OperatorRequestsQueue", "Arn"]}
    # The token's audience is the queue the workflow sends to: this stack's own.
    assert submit["OIDC_AUDIENCE"] == {"Ref": "RunRequestsQueue"}


def test_every_queue_has_a_dlq_with_an_alarm(cfn: dict[str, Any]) -> None:
    queues = resources_of(cfn, "AWS::SQS::Queue")
    feeds = {
        name: q["Properties"]["RedrivePolicy"]["deadLetterTargetArn"]["Fn::GetAtt"][0]
        for name, q in queues.items()
        if "RedrivePolicy" in q["Properties"]
    }
    dlqs = set(feeds.values())
    # Each queue its own DLQ (issue 21): a redrive returns a dead letter to the one queue it came
    # from, so nothing that entered through the run-requests queue reaches the operator queue.
    assert feeds == {
        "RunRequestsQueue": "RunRequestsDLQ",
        "OperatorRequestsQueue": "OperatorRequestsDLQ",
        "JobEventsQueue": "JobEventsDLQ",
    }
    alarmed = {
        a["Properties"]["Dimensions"][0]["Value"]["Fn::GetAtt"][0]
        for a in resources_of(cfn, "AWS::CloudWatch::Alarm").values()
    }
    assert alarmed == dlqs


def test_each_function_knows_its_queues_max_receive_count_and_may_hold_messages_back(cfn: dict[str, Any]) -> None:
    """The handler dead-letters a message's last delivery itself, with its reason (issue 25): its
    MAX_RECEIVE_COUNT must be its queues' maxReceiveCount, or SQS dead-letters it silently first."""
    queues = cfn["Resources"]

    def max_receive(queue: str) -> int:
        return int(queues[queue]["Properties"]["RedrivePolicy"]["maxReceiveCount"])

    def setting(function: str) -> int:
        return int(queues[function]["Properties"]["Environment"]["Variables"]["MAX_RECEIVE_COUNT"])

    assert setting("SubmitFunction") == max_receive("RunRequestsQueue") == max_receive("OperatorRequestsQueue")
    assert setting("TrackFunction") == max_receive("JobEventsQueue")
    # Waits through a GitHub outage (ChangeMessageVisibility) on the submit function's own queues only.
    role = queues["SubmitFunctionRole"]
    [holds] = [s for s in _statements(role) if s["Action"] == "sqs:ChangeMessageVisibility"]
    assert holds["Resource"] == [
        {"Fn::GetAtt": ["RunRequestsQueue", "Arn"]},
        {"Fn::GetAtt": ["OperatorRequestsQueue", "Arn"]},
    ]
    variables = queues["SubmitFunction"]["Properties"]["Environment"]["Variables"]
    assert variables["RUN_REQUESTS_QUEUE_URL"] == {"Ref": "RunRequestsQueue"}
    assert variables["OPERATOR_QUEUE_URL"] == {"Ref": "OperatorRequestsQueue"}


def test_no_alert_for_a_run_modelrun_stopped_on_purpose() -> None:
    states = json.loads((ROOT / "statemachine" / "report_run.asl.json").read_text())["States"]
    choices = states["ShouldNotify"]["Choices"]
    stopped = [c for c in choices if c["Next"] == "Done"]
    assert [sorted(o["StringEquals"] for o in c["Or"]) for c in stopped] == [["CANCELLED", "SUPERSEDED"]]
    assert states["ShouldNotify"]["Default"] == "Notify"  # FAILED still alerts


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


# --- a small resolver for the intrinsics the IAM documents use, and IAM's string conditions -----

SAMPLE_PARAMETERS: dict[str, Any] = {
    "GitHubRepositories": ["octo-org/residential-avm", "octo-org/condo-avm"],
    "ApprovalEnvironment": "staging",
    "BaselineEnvironment": "modelrun-main",
    "ModelRepositoryName": "modelrun-models",
    "PinnedWorkflow": "",
    "AWS::Partition": "aws",
    "AWS::Region": "eu-west-1",
    "AWS::AccountId": "123456789012",
    "AWS::StackName": "modelrun",
}


def condition_holds(name: str, parameters: dict[str, Any]) -> bool:
    """A template condition, written as ``!Equals [A, B]``."""
    left, right = load_template()["Conditions"][name]["Fn::Equals"]
    return bool(resolve(left, parameters) == resolve(right, parameters))


def resolve(node: Any, parameters: dict[str, Any] = SAMPLE_PARAMETERS) -> Any:
    """Ref (parameters), Fn::Sub (string form), Fn::Join, Fn::Split and Fn::If, as
    CloudFormation does."""
    if isinstance(node, list):
        return [resolve(item, parameters) for item in node]
    if not isinstance(node, dict):
        return node
    if set(node) == {"Fn::If"}:
        name, when_true, when_false = node["Fn::If"]
        return resolve(when_true if condition_holds(name, parameters) else when_false, parameters)
    if set(node) == {"Ref"}:
        return parameters[node["Ref"]]
    if set(node) == {"Fn::Sub"}:
        assert isinstance(node["Fn::Sub"], str), "only the string form is resolved here"
        return re.sub(r"\$\{([\w:]+)\}", lambda m: str(parameters[m.group(1)]), node["Fn::Sub"])
    if set(node) == {"Fn::Join"}:
        delimiter, items = node["Fn::Join"]
        assert isinstance(delimiter, str), "Fn::Join's delimiter must be a literal"
        return delimiter.join(resolve(items, parameters))
    if set(node) == {"Fn::Split"}:
        delimiter, text = node["Fn::Split"]
        assert isinstance(delimiter, str), "Fn::Split's delimiter must be a literal"
        return resolve(text, parameters).split(delimiter)
    return {key: resolve(value, parameters) for key, value in node.items()}


def iam_like(pattern: str, value: str) -> bool:
    """IAM's StringLike: `*` any run of characters, `?` one character, case-sensitive."""
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, value, flags=re.DOTALL) is not None


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def conditions_allow(conditions: dict[str, dict[str, Any]], claims: dict[str, str]) -> bool:
    """Every operator must hold (AND); within one, any listed value matches (OR)."""
    for operator, tests in conditions.items():
        for key, patterns in tests.items():
            value = claims.get(key)
            if value is None:
                return False
            patterns = as_list(patterns)
            if operator == "StringEquals":
                ok = value in patterns
            elif operator in ("StringLike", "ForAnyValue:StringLike"):  # single-valued key: the same
                ok = any(iam_like(p, value) for p in patterns)
            elif operator == "StringNotLike":
                ok = not any(iam_like(p, value) for p in patterns)
            else:
                raise AssertionError(f"unexpected condition operator {operator}")
            if not ok:
                return False
    return True


REPOS = SAMPLE_PARAMETERS["GitHubRepositories"]
UNTRUSTED_SUBS = [
    "repo:octo-org/other-model:environment:staging",  # not on the allow-list
    "repo:octo-org/residential-avm-fork:environment:staging",  # a longer name, same prefix
    "repo:octo-org:environment:staging",
    "repo:octo-org/residential-avm:environment:production",  # another environment
    "repo:octo-org/residential-avm:environment:Staging",  # IAM compares case-sensitively
    "repo:octo-org/residential-avm:environment:x:environment:staging",  # a name that ends like one
    "repo:octo-org/residential-avm:environment:staging:environment:x",
    "repo:octo-org/residential-avm:pull_request",  # a job outside any environment
    "repo:octo-org/residential-avm:ref:refs/heads/main",
    "repo:octo-org/evil:environment:repo:octo-org/residential-avm:environment:staging",
    "",
]


# --- issue 22: trust pinned to the platform's reusable workflow ------------------------------------

PINNED = "octo-platform/modelrun/.github/workflows/model-run.yaml@refs/tags/v1"
PINNING = {**SAMPLE_PARAMETERS, "PinnedWorkflow": PINNED}
IDS = {
    "octo-org/residential-avm": "octo-org@101/residential-avm@202",
    "octo-org/condo-avm": "octo-org@101/condo-avm@303",
}


def test_the_pinned_workflow_is_one_literal_ref() -> None:
    from modelrun_local.stack import ParameterRefused, check_parameters

    template = load_template()
    for accepted in ("", PINNED, "octo-platform/modelrun/.github/workflows/model-run.yml@" + "0" * 40):
        check_parameters(template, {"PinnedWorkflow": accepted})
    for refused in (
        "octo-platform/modelrun/.github/workflows/model-run.yaml@refs/tags/v*",  # an IAM wildcard
        "octo-platform/modelrun/.github/workflows/model-run.yaml@refs/tags/v?",
        "octo-platform/modelrun/.github/workflows/model-run.yaml@${aws:username}",  # a policy variable
        "octo-platform/modelrun/.github/workflows/model-run.yaml",  # no ref
        "octo-platform/modelrun/.github/workflows/model-run.yaml@main",  # a branch name, not a ref
        "*/modelrun/.github/workflows/model-run.yaml@refs/tags/v1",
        "octo-platform/modelrun/.github/workflows/model-run.yaml@refs/tags/v1:x",
    ):
        with pytest.raises(ParameterRefused, match="PinnedWorkflow"):
            check_parameters(template, {"PinnedWorkflow": refused})


def test_the_submit_function_is_told_the_pinned_workflow(cfn: dict[str, Any]) -> None:
    variables = cfn["Resources"]["SubmitFunction"]["Properties"]["Environment"]["Variables"]
    assert variables["PINNED_WORKFLOW"] == {"Ref": "PinnedWorkflow"}


ECR_PUSH = {
    "ecr:BatchCheckLayerAvailability",
    "ecr:BatchGetImage",
    "ecr:CompleteLayerUpload",
    "ecr:GetDownloadUrlForLayer",
    "ecr:InitiateLayerUpload",
    "ecr:PutImage",
    "ecr:UploadLayerPart",
}
ECR_PULL = {"ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"}


def test_ec2_compute_environments_require_imdsv2_with_one_hop(cfn: dict[str, Any]) -> None:
    ec2 = {
        name: env["Properties"]["ComputeResources"]
        for name, env in resources_of(cfn, "AWS::Batch::ComputeEnvironment").items()
        if env["Properties"]["ComputeResources"]["Type"] in ("EC2", "SPOT")
    }
    assert set(ec2) == {"GpuComputeEnvironment"}
    for resources in ec2.values():
        template = resources["LaunchTemplate"]
        [name] = {template["LaunchTemplateId"]["Ref"], template["Version"]["Fn::GetAtt"][0]}
        assert template["Version"] == {"Fn::GetAtt": [name, "LatestVersionNumber"]}
        launch_template = cfn["Resources"][name]
        assert launch_template["Type"] == "AWS::EC2::LaunchTemplate"
        assert launch_template["Properties"]["LaunchTemplateData"]["MetadataOptions"] == {
            "HttpEndpoint": "enabled",
            "HttpTokens": "required",
            "HttpPutResponseHopLimit": 1,
        }


# --- alerts: every publisher of the encrypted topic can use its key ----------------------------


def mentions(node: Any, logical_id: str) -> bool:
    return f'"{logical_id}"' in json.dumps(node)


def statement_allows(statement: dict[str, Any], action: str) -> bool:
    return statement.get("Effect") == "Allow" and any(iam_like(a, action) for a in as_list(statement["Action"]))


def alert_key_problems(cfn: dict[str, Any]) -> list[str]:
    """Why a publisher of AlertsTopic could not use the topic's KMS key (empty: every one can)."""
    resources = cfn["Resources"]
    key_ref = resources["AlertsTopic"]["Properties"]["KmsMasterKeyId"]
    if not isinstance(key_ref, dict):
        return [f"AlertsTopic is encrypted with {key_ref!r}, not a key of this stack"]
    [key_id] = [name for name in resources if mentions(key_ref, name)]
    key = resources[key_id]
    assert key["Type"] == "AWS::KMS::Key"
    key_statements = key["Properties"]["KeyPolicy"]["Statement"]
    use = ("kms:GenerateDataKey", "kms:Decrypt")
    problems = []

    def admitted_service(service: str) -> bool:
        return any(
            service in as_list(s.get("Principal", {}).get("Service", []))
            and all(statement_allows(s, action) for action in use)
            and "aws:SourceAccount" in json.dumps(s.get("Condition", {}))
            for s in key_statements
        )

    # Services that publish: CloudWatch alarms (AlarmActions), EventBridge rules (targets).
    for name, resource in resources.items():
        props = resource.get("Properties", {})
        if resource["Type"] == "AWS::CloudWatch::Alarm" and mentions(props.get("AlarmActions", []), "AlertsTopic"):
            if not admitted_service("cloudwatch.amazonaws.com"):
                problems.append(f"{name}: the key policy does not admit cloudwatch.amazonaws.com")
        if resource["Type"] == "AWS::Events::Rule" and mentions(props.get("Targets", []), "AlertsTopic"):
            if not admitted_service("events.amazonaws.com"):
                problems.append(f"{name}: the key policy does not admit events.amazonaws.com")

    # Roles (of state machines and functions) that may publish: their own policy grants the key.
    # The key policy's account statement lets IAM policies grant it.
    if not any(
        s.get("Principal", {}).get("AWS") == {"Fn::Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:root"}
        and statement_allows(s, "kms:CreateGrant")
        for s in key_statements
    ):
        problems.append(f"{key_id}: the account cannot administer the key, so IAM policies grant nothing")
    for name, resource in resources.items():
        if resource["Type"] != "AWS::IAM::Role":
            continue
        statements = [
            statement
            for policy in resource["Properties"].get("Policies", [])
            for statement in as_list(policy["PolicyDocument"]["Statement"])
        ]
        publishes = any(
            statement_allows(s, "sns:Publish") and mentions(s["Resource"], "AlertsTopic") for s in statements
        )
        if publishes and not all(
            any(statement_allows(s, action) and mentions(s["Resource"], key_id) for s in statements) for action in use
        ):
            problems.append(f"{name}: publishes to AlertsTopic without kms:GenerateDataKey and kms:Decrypt on {key_id}")
    return problems


def test_every_publisher_of_the_alerts_topic_can_use_its_key(cfn: dict[str, Any]) -> None:
    assert alert_key_problems(cfn) == []
    resources = cfn["Resources"]
    key = resources["AlertsKey"]["Properties"]
    assert key["EnableKeyRotation"] is True
    alias = resources["AlertsKeyAlias"]["Properties"]
    assert alias["TargetKeyId"] == {"Ref": "AlertsKey"}
    assert resolve(alias["AliasName"]) == "alias/modelrun-alerts"
    # The topic policy lets alarms of this account publish.
    [topic_statement] = resources["AlertsTopicPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    assert topic_statement["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
    assert resolve(topic_statement["Condition"]["StringEquals"]) == {"aws:SourceAccount": "123456789012"}


@pytest.mark.parametrize("mutation", ["alias", "key policy", "state machine role"])
def test_the_alerts_key_check_catches_a_missing_grant(cfn: dict[str, Any], mutation: str) -> None:
    broken = copy.deepcopy(cfn)
    resources = broken["Resources"]
    if mutation == "alias":
        resources["AlertsTopic"]["Properties"]["KmsMasterKeyId"] = "alias/aws/sns"
        expected = "not a key of this stack"
    elif mutation == "key policy":
        statements = resources["AlertsKey"]["Properties"]["KeyPolicy"]["Statement"]
        statements[:] = [s for s in statements if s.get("Sid") != "CloudWatchAlarmsPublish"]
        expected = "does not admit cloudwatch.amazonaws.com"
    else:
        policies = resources["ReportStateMachineRole"]["Properties"]["Policies"]
        policies[:] = [p for p in policies if not mentions(p, "AlertsKey")]
        expected = "ReportStateMachineRole: publishes to AlertsTopic without"
    problems = alert_key_problems(broken)
    assert problems and all(expected in p for p in problems[:1]), problems


def test_the_state_machine_definition_gets_every_substitution(cfn: dict[str, Any]) -> None:
    text, substitutions = cfn["Resources"]["ReportStateMachine"]["Properties"]["DefinitionString"]["Fn::Sub"]
    assert set(re.findall(r"\$\{(\w+)\}", text)) == set(substitutions)


LAYER_PACKAGES = ("pyjwt", "cryptography", "cffi", "pycparser")


def _export(*args: str) -> str:
    uv = ROOT / ".tools" / "bin" / "uv"
    if not uv.exists():
        pytest.fail("run `make setup` first: .tools/bin/uv is missing")
    command = [str(uv), "export", "--frozen", "--no-emit-project", "--no-header", "--quiet", *args]
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=True).stdout


def _function_names(template: dict[str, Any]) -> dict[str, str]:
    """logical id -> its requirements file's name (SubmitFunction -> submit)."""
    return {
        k: re.sub(r"(?<!^)(?=[A-Z])", "-", k.removesuffix("Function")).lower()
        for k, r in template["Resources"].items()
        if r["Type"] == "AWS::Serverless::Function"
    }


def test_each_functions_requirements_match_the_lock_file() -> None:
    """functions/requirements/*.txt are `make requirements`' export of uv.lock, hashes included."""
    names = _function_names(load_template())
    assert set(names.values()) == {"submit", "track", "collect-results", "update-pull-request"}
    requirements = ROOT / "functions" / "requirements"
    layer_args = [a for p in LAYER_PACKAGES for a in ("--no-emit-package", p)]
    for name in names.values():
        exported = _export("--only-group", f"lambda-{name}", *layer_args)
        assert exported == (requirements / f"{name}.txt").read_text(), f"{name}: run `make requirements`"
    assert _export("--only-group", "lambda-jwt") == (requirements / "jwt-layer.txt").read_text()
    assert sorted(p.name for p in requirements.glob("*.txt")) == sorted(
        [f"{n}.txt" for n in names.values()] + ["jwt-layer.txt"]
    )
    assert not (ROOT / "functions" / "requirements.txt").exists(), "sam build no longer reads it"


def test_each_function_and_layer_is_built_by_its_own_makefile_target() -> None:
    """sam build runs `make build-<LogicalId>` in CodeUri (functions/): one target each."""
    template = load_template()
    makefile = (ROOT / "functions" / "Makefile").read_text()
    built = {
        k: r
        for k, r in template["Resources"].items()
        if r["Type"] in ("AWS::Serverless::Function", "AWS::Serverless::LayerVersion")
    }
    assert "JwtLayer" in built
    for logical_id, resource in built.items():
        assert resource["Metadata"]["BuildMethod"] == "makefile", logical_id
        assert re.search(rf"^build-{logical_id}:", makefile, re.M), logical_id
    for logical_id, name in _function_names(template).items():
        assert re.search(rf"^build-{logical_id}:\n\t\$\(call function_package,\w+,{name},", makefile, re.M)
    codes = {r["Properties"].get("CodeUri", template["Globals"]["Function"]["CodeUri"]) for r in built.values()}
    assert codes - {None} == {"functions/"} and built["JwtLayer"]["Properties"]["ContentUri"] == "functions/"


def test_the_functions_that_sign_or_verify_rs256_have_the_jwt_layer() -> None:
    """PyJWT and cryptography come from the layer only; a function without it never loads them."""
    resources = load_template()["Resources"]
    layered = {k for k, r in resources.items() if {"Ref": "JwtLayer"} in r.get("Properties", {}).get("Layers", [])}
    # CollectResults never calls GitHub: nothing of the layer is loaded there (test_packages.py).
    assert layered == {"SubmitFunction", "TrackFunction", "UpdatePullRequestFunction"}
    requirements = ROOT / "functions" / "requirements"
    for name in ("submit", "track", "collect-results", "update-pull-request"):
        text = (requirements / f"{name}.txt").read_text()
        assert not [p for p in LAYER_PACKAGES if re.search(rf"^{p}==", text, re.M)], name
    layer = (requirements / "jwt-layer.txt").read_text()
    assert all(re.search(rf"^{p}==", layer, re.M) for p in LAYER_PACKAGES)


def test_the_report_validates_with_the_model_containers_schema() -> None:
    ours = ROOT / "functions" / "modelrun" / "schemas" / "metrics.v2.schema.json"
    theirs = ROOT / "model_container" / "metrics.schema.json"
    assert json.loads(ours.read_text()) == json.loads(theirs.read_text()), f"copy {theirs} to {ours}"


def test_the_report_schema_loads_in_powertools_validator() -> None:
    from aws_lambda_powertools.utilities.validation import validate

    schema = json.loads((ROOT / "functions" / "modelrun" / "schemas" / "metrics.v2.schema.json").read_text())
    with pytest.raises(Exception, match="must contain"):
        validate(event={}, schema=schema)
    assert sys.version_info[:2] == (3, 12), "the Lambda runtime is python3.12"
    assert Path(ROOT / "template.yaml").read_text().count("Runtime: python3.12") == 1


def test_the_local_stack_refuses_parameters_cloudformation_would_refuse() -> None:
    from modelrun_local.stack import ParameterRefused, check_parameters

    template = load_template()
    check_parameters(template, {"GitHubOidcIssuer": "https://token.actions.githubusercontent.com"})
    check_parameters(template, {"GitHubOidcIssuer": "https://ghes.example.org/_services/token"})
    check_parameters(template, {"GitHubOidcIssuer": "http://127.0.0.1:8123/_services/token"})
    for refused in (
        "http://token.actions.githubusercontent.com",
        "https://evil.example/x",
        "http://10.0.0.1:80/_services/token",
    ):
        with pytest.raises(ParameterRefused, match="GitHubOidcIssuer"):
            check_parameters(template, {"GitHubOidcIssuer": refused})
    with pytest.raises(ParameterRefused, match="LogLevel"):
        check_parameters(template, {"LogLevel": "LOUD"})
    with pytest.raises(ParameterRefused, match="NoSuchParameter"):
        check_parameters(template, {"NoSuchParameter": "x"})


# --- issue 21: isolation ------------------------------------------------------------------------


def _actions(statement: dict[str, Any]) -> list[str]:
    action = statement["Action"]
    return [action] if isinstance(action, str) else list(action)


def test_gpu_hosts_get_a_least_privilege_instance_role(cfn: dict[str, Any]) -> None:
    """Batch runs GPU jobs with host networking: the instance role is a job's too."""
    role = cfn["Resources"]["BatchInstanceRole"]
    assert "ManagedPolicyArns" not in role["Properties"]  # no AmazonEC2ContainerServiceforEC2Role
    statements = _statements(role)
    actions = [a for s in statements for a in _actions(s)]
    assert not [a for a in actions if a.startswith("logs:") or (a.endswith("*") and a != "ecs:Submit*")]
    for s in statements:
        if s["Resource"] == "*":  # only actions that take no resource
            assert set(_actions(s)) <= {"ecr:GetAuthorizationToken", "ecs:DiscoverPollEndpoint", "ec2:DescribeTags"}
    pulls = [s for s in statements if "ecr:BatchGetImage" in _actions(s)]
    # The model repositories' images (PREFIX/owner/name, repository.yaml), not every ECR repository.
    assert [s["Resource"] for s in pulls] == [
        {"Fn::Sub": "arn:${AWS::Partition}:ecr:${AWS::Region}:${AWS::AccountId}:repository/${ModelRepositoryName}/*"}
    ]
    (ecs,) = [s for s in statements if "ecs:RegisterContainerInstance" in _actions(s)]
    for arn in ecs["Resource"]:
        assert "AWSBatch-${AWS::StackName}-gpu-" in arn["Fn::Sub"]
    gpu = cfn["Resources"]["GpuComputeEnvironment"]["Properties"]
    assert gpu["ComputeEnvironmentName"] == {"Fn::Sub": "${AWS::StackName}-gpu"}
    assert gpu["ComputeResources"]["InstanceRole"] == {"Fn::GetAtt": ["BatchInstanceProfile", "Arn"]}


def test_gpu_hosts_keep_jobs_from_the_instance_metadata_service(cfn: dict[str, Any]) -> None:
    data = cfn["Resources"]["GpuLaunchTemplate"]["Properties"]["LaunchTemplateData"]
    assert data["MetadataOptions"] == {
        "HttpEndpoint": "enabled",
        "HttpTokens": "required",
        "HttpPutResponseHopLimit": 1,
    }
    user_data = data["UserData"]["Fn::Base64"]
    assert user_data.startswith("MIME-Version: 1.0\nContent-Type: multipart/mixed;")  # as Batch requires
    rules = [line for line in user_data.splitlines() if line.startswith("iptables ")]
    # Host networking: every uid but root's (the ECS agent) is refused the metadata service.
    assert any("OUTPUT" in r and "169.254.169.254/32" in r and "! --uid-owner 0" in r and "REJECT" in r for r in rules)
    assert any("FORWARD" in r and "docker+" in r and "169.254.169.254/32" in r for r in rules)
    assert not any("169.254.170.2" in r for r in rules)  # the job role's endpoint stays open
    dockerfile = (ROOT / "model_container" / "Dockerfile").read_text()
    assert re.search(r"^USER [1-9][0-9]*:", dockerfile, re.MULTILINE), "the model must not run as root"


def _policy_statements(cfn: dict[str, Any], logical_id: str, key: str = "PolicyDocument") -> list[dict[str, Any]]:
    statements: list[dict[str, Any]] = cfn["Resources"][logical_id]["Properties"][key]["Statement"]
    return statements


def _deny(statements: list[dict[str, Any]], action: str) -> dict[str, Any]:
    (deny,) = [s for s in statements if s["Effect"] == "Deny" and action in _actions(s)]
    assert deny["Principal"] == "*"
    return deny


def test_the_operator_queue_admits_only_operators_and_the_submit_function(cfn: dict[str, Any]) -> None:
    policy = cfn["Resources"]["OperatorRequestsQueuePolicy"]["Properties"]
    assert policy["Queues"] == [{"Ref": "OperatorRequestsQueue"}]
    statements = _policy_statements(cfn, "OperatorRequestsQueuePolicy")
    assert all(s["Effect"] == "Deny" for s in statements)  # deny by default: grants stay with IAM
    send = _deny(statements, "sqs:SendMessage")["Condition"]["ArnNotLike"]["aws:PrincipalArn"]
    assert send == {"Fn::Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:role/${OperatorRoleName}"}
    receive = _deny(statements, "sqs:ReceiveMessage")
    assert {"sqs:DeleteMessage", "sqs:ChangeMessageVisibility"} <= set(_actions(receive))
    assert receive["Condition"] == {"ArnNotEquals": {"aws:PrincipalArn": {"Fn::GetAtt": ["SubmitFunctionRole", "Arn"]}}}


def test_the_job_events_queue_admits_only_the_rule_and_the_track_function(cfn: dict[str, Any]) -> None:
    statements = _policy_statements(cfn, "JobEventsQueuePolicy")
    rule = {"Fn::GetAtt": ["JobStateChangeRule", "Arn"]}
    assert _deny(statements, "sqs:SendMessage")["Condition"] == {"ArnNotEquals": {"aws:SourceArn": rule}}
    receive = _deny(statements, "sqs:ReceiveMessage")
    assert receive["Condition"] == {"ArnNotEquals": {"aws:PrincipalArn": {"Fn::GetAtt": ["TrackFunctionRole", "Arn"]}}}


def test_only_the_functions_that_call_github_read_its_credentials(cfn: dict[str, Any]) -> None:
    policy = cfn["Resources"]["GitHubCredentialsPolicy"]["Properties"]
    assert policy["SecretId"] == {"Ref": "GitHubCredentials"} and policy["BlockPublicPolicy"] is True
    deny = _deny(policy["ResourcePolicy"]["Statement"], "secretsmanager:GetSecretValue")
    readers = {r["Fn::GetAtt"][0] for r in deny["Condition"]["ArnNotEquals"]["aws:PrincipalArn"]}
    granted = {
        name.removesuffix("Role")
        for name, role in resources_of(cfn, "AWS::IAM::Role").items()
        if any("secretsmanager:GetSecretValue" in _actions(s) for s in _statements(role))
    }
    assert (
        readers
        == {f"{f}Role" for f in granted}
        == {
            "SubmitFunctionRole",
            "TrackFunctionRole",
            "UpdatePullRequestFunctionRole",
        }
    )


def test_capacity_has_per_request_ceilings_and_a_fair_share_per_repository(cfn: dict[str, Any]) -> None:
    parameters = cfn["Parameters"]
    assert (parameters["MaxRequestVcpus"]["Default"], parameters["MaxRequestMemoryMiB"]["Default"]) == (8, 32768)
    assert parameters["MaxRequestVcpus"]["Default"] * 8 <= parameters["CpuMaxVcpus"]["Default"]
    submit = cfn["Resources"]["SubmitFunction"]["Properties"]["Environment"]["Variables"]
    assert submit["MAX_REQUEST_VCPUS"] == {"Ref": "MaxRequestVcpus"}
    assert submit["MAX_REQUEST_MEMORY_MIB"] == {"Ref": "MaxRequestMemoryMiB"}
    assert submit["MAX_REQUESTS_PER_REPOSITORY_HOUR"] == {"Ref": "MaxRequestsPerRepositoryHour"}
    policy = cfn["Resources"]["RepositoryFairShare"]["Properties"]["FairsharePolicy"]
    assert policy["ShareDecaySeconds"] == 3600 and 0 < policy["ComputeReservation"] < 100
    for queue in resources_of(cfn, "AWS::Batch::JobQueue").values():
        assert queue["Properties"]["SchedulingPolicyArn"] == {"Ref": "RepositoryFairShare"}
