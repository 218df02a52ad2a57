"""The stack's resources on moto, created from template.yaml and nothing else.

template.yaml -> aws-sam-translator (offline) -> moto's CloudFormation. What moto can't take is
adjusted here, in the template, not by hand-made resources:
- CodeUri must be an s3:// URI for the translator: a placeholder object is uploaded;
- the state machine's definition is inlined and its substitutions folded into ``Fn::Sub``;
- event source mappings are taken out (moto would push messages synchronously, one at a time,
  with no redelivery) and handed to the local poller, which has Lambda's semantics;
- Secrets Manager secrets, which moto's CloudFormation skips, are created through the API;
- the VPC and subnets the Batch compute environments need are created in moto's EC2, and
  Batch's service-linked role (which AWS creates on first use) in moto's IAM.
"""

from __future__ import annotations

import copy
import functools
import io
import json
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "template.yaml"
REPOSITORY_TEMPLATE = ROOT / "repository.yaml"  # one per model repository, beside the stack
ARTIFACTS_BUCKET = "modelrun-local-artifacts"


@dataclass
class EventSourceMapping:
    function: str  # logical id
    queue_arn: str
    batch_size: int
    report_batch_item_failures: bool
    batching_window_seconds: int


@dataclass
class DeployedStack:
    name: str
    outputs: dict[str, str]
    resources: dict[str, str]  # logical id -> physical id
    functions: dict[str, dict[str, Any]]  # logical id -> {"name", "handler", "environment"}
    event_sources: list[EventSourceMapping] = field(default_factory=list)


class _NoManagedPolicies:
    def load(self) -> dict[str, str]:
        return {}


def load_template() -> dict[str, Any]:
    """template.yaml, a fresh copy each call; parsed once per version of the file (a parse takes
    about half a second, and each runtime start needs it twice)."""
    return _load(TEMPLATE)


def load_repository_template() -> dict[str, Any]:
    """repository.yaml (plain CloudFormation), likewise."""
    return _load(REPOSITORY_TEMPLATE)


def _load(path: Path) -> dict[str, Any]:
    stat = path.stat()
    return copy.deepcopy(_parsed(path, stat.st_mtime_ns, stat.st_size))


@functools.cache
def _parsed(path: Path, mtime_ns: int, size: int) -> dict[str, Any]:
    template: dict[str, Any] = yaml_parse(path.read_text())
    return template


def translate(template: dict[str, Any]) -> dict[str, Any]:
    """SAM -> CloudFormation, offline, with the local adjustments listed above."""
    template = copy.deepcopy(template)
    template["Globals"]["Function"]["CodeUri"] = f"s3://{ARTIFACTS_BUCKET}/functions.zip"
    substitutions: dict[str, dict[str, Any]] = {}
    for logical_id, resource in template["Resources"].items():
        if resource["Type"] == "AWS::Serverless::StateMachine":
            props = resource["Properties"]
            props["Definition"] = json.loads((ROOT / props.pop("DefinitionUri")).read_text())
            substitutions[logical_id] = props.pop("DefinitionSubstitutions", {})
        if resource["Type"] == "AWS::Serverless::Function" and "CodeUri" in resource["Properties"]:
            resource["Properties"]["CodeUri"] = f"s3://{ARTIFACTS_BUCKET}/functions.zip"
        if resource["Type"] == "AWS::Serverless::LayerVersion":  # locally, layers' wheels are the venv's
            resource["Properties"]["ContentUri"] = f"s3://{ARTIFACTS_BUCKET}/functions.zip"
    cfn: dict[str, Any] = transform(template, {}, _NoManagedPolicies())
    for logical_id, subs in substitutions.items():
        props = cfn["Resources"][logical_id]["Properties"]
        definition = props.pop("DefinitionString")
        text = definition if isinstance(definition, str) else "\n".join(definition["Fn::Join"][1])
        props["DefinitionString"] = {"Fn::Sub": [text, subs]}
    return cfn


class ParameterRefused(ValueError):
    """A parameter value CloudFormation would refuse (moto does not check them)."""


def check_parameters(template: dict[str, Any], params: dict[str, str]) -> None:
    """AllowedPattern and AllowedValues, as CloudFormation applies them (each list item too)."""
    for key, value in params.items():
        spec = template.get("Parameters", {}).get(key)
        if spec is None:
            raise ParameterRefused(f"{key}: not a parameter of the template")
        items = value.split(",") if "List" in spec["Type"] else [value]
        for item in items:
            pattern = spec.get("AllowedPattern")
            if pattern and not re.fullmatch(pattern, item):
                raise ParameterRefused(f"{key}: {item!r} does not match {pattern}")
            allowed = spec.get("AllowedValues")
            if allowed and item not in allowed:
                raise ParameterRefused(f"{key}: {item!r} is not one of {allowed}")


def _network(region: str) -> tuple[str, list[str]]:
    ec2 = boto3.client("ec2", region_name=region)
    vpc = ec2.create_vpc(CidrBlock="10.42.0.0/16")["Vpc"]["VpcId"]
    subnets = [ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.42.{i}.0/24")["Subnet"]["SubnetId"] for i in range(2)]
    return vpc, subnets


def _replace_refs(value: Any, arns: dict[str, str]) -> Any:
    if isinstance(value, dict):
        if set(value) == {"Ref"} and value["Ref"] in arns:
            return arns[value["Ref"]]
        return {k: _replace_refs(v, arns) for k, v in value.items()}
    if isinstance(value, list):
        return [_replace_refs(v, arns) for v in value]
    return value


def _condition_holds(cfn: dict[str, Any], name: str, params: dict[str, str]) -> bool:
    """The template's conditions are ``!Equals [!Ref Parameter, "value"]``: evaluated as such."""
    condition = cfn["Conditions"][name]
    left, right = condition["Fn::Equals"]
    if not (isinstance(left, dict) and set(left) == {"Ref"} and isinstance(right, str)):
        raise RuntimeError(f"condition {name}: the local stack evaluates only !Equals [!Ref P, value]")
    value = params.get(left["Ref"], cfn["Parameters"][left["Ref"]].get("Default"))
    return bool(value == right)


def _create_oidc_providers(cfn: dict[str, Any], params: dict[str, str], region: str) -> None:
    """moto's CloudFormation skips OIDC providers: create them through the API (if their
    condition holds), as CloudFormation would."""
    iam = boto3.client("iam", region_name=region)
    for logical_id, resource in list(cfn["Resources"].items()):
        if resource["Type"] != "AWS::IAM::OIDCProvider":
            continue
        del cfn["Resources"][logical_id]
        if "Condition" in resource and not _condition_holds(cfn, resource["Condition"], params):
            continue
        props = resource["Properties"]
        iam.create_open_id_connect_provider(
            Url=props["Url"], ClientIDList=props.get("ClientIdList", []), ThumbprintList=props.get("ThumbprintList", [])
        )


def _attach_managed_policies(cfn: dict[str, Any], resources: dict[str, str], region: str) -> None:
    """moto's CloudFormation drops a role's ManagedPolicyArns: attach them as CloudFormation does."""
    iam = boto3.client("iam", region_name=region)
    for logical_id, resource in cfn["Resources"].items():
        if resource["Type"] != "AWS::IAM::Role":
            continue
        for arn in resource["Properties"].get("ManagedPolicyArns", []):
            text = arn["Fn::Sub"] if isinstance(arn, dict) else arn
            if not isinstance(text, str) or "${" in text.replace("${AWS::Partition}", ""):
                raise RuntimeError(f"{logical_id}: a managed policy ARN the local stack cannot resolve: {arn}")
            iam.attach_role_policy(RoleName=resources[logical_id], PolicyArn=text.replace("${AWS::Partition}", "aws"))


def _reserved_concurrency(resource: dict[str, Any]) -> int | None:
    value = resource["Properties"].get("ReservedConcurrentExecutions")
    return int(value) if value is not None else None


def deploy(name: str, parameters: dict[str, str], region: str, template: dict[str, Any] | None = None) -> DeployedStack:
    template = template if template is not None else load_template()
    cfn = translate(template)
    event_sources = []
    for logical_id, resource in list(cfn["Resources"].items()):
        if resource["Type"] == "AWS::Lambda::EventSourceMapping":
            props = resource["Properties"]
            event_sources.append(
                EventSourceMapping(
                    function=props["FunctionName"]["Ref"],
                    queue_arn=props["EventSourceArn"]["Fn::GetAtt"][0],  # resolved after create
                    batch_size=int(props.get("BatchSize", 10)),
                    report_batch_item_failures="ReportBatchItemFailures" in props.get("FunctionResponseTypes", []),
                    batching_window_seconds=int(props.get("MaximumBatchingWindowInSeconds", 0)),
                )
            )
            del cfn["Resources"][logical_id]

    s3 = boto3.client("s3", region_name=region)
    s3.create_bucket(Bucket=ARTIFACTS_BUCKET)
    placeholder = io.BytesIO()
    with zipfile.ZipFile(placeholder, "w") as archive:
        archive.writestr("README", "Local runtime: the handlers run in-process from functions/.")
    s3.put_object(Bucket=ARTIFACTS_BUCKET, Key="functions.zip", Body=placeholder.getvalue())

    vpc, subnets = _network(region)
    # AWS creates Batch's service-linked role on first use; moto wants it to exist already.
    boto3.client("iam", region_name=region).create_role(
        RoleName="AWSServiceRoleForBatch",
        Path="/aws-service-role/batch.amazonaws.com/",
        AssumeRolePolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {"Effect": "Allow", "Principal": {"Service": "batch.amazonaws.com"}, "Action": "sts:AssumeRole"}
                ],
            }
        ),
    )
    params = {"VpcId": vpc, "SubnetIds": ",".join(subnets), **parameters}
    check_parameters(template, params)
    # moto splits list parameters only when they are passed, not their defaults: pass them.
    for key, spec in template.get("Parameters", {}).items():
        if key not in params and "List" in spec["Type"] and "Default" in spec:
            params[key] = spec["Default"]
    # Secrets: moto's CloudFormation skips them (their Refs, policies' resources included, would
    # be empty): create them through the API first and put their ARNs where the template refers.
    secrets = boto3.client("secretsmanager", region_name=region)
    secret_arns: dict[str, str] = {}
    for logical_id, resource in list(cfn["Resources"].items()):
        if resource["Type"] == "AWS::SecretsManager::Secret":
            secret_arns[logical_id] = secrets.create_secret(
                Name=f"{name}-{logical_id}", SecretString=resource["Properties"].get("SecretString", "{}")
            )["ARN"]
            del cfn["Resources"][logical_id]
    cfn = _replace_refs(cfn, secret_arns)
    _create_oidc_providers(cfn, params, region)
    cloudformation = boto3.client("cloudformation", region_name=region)
    cloudformation.create_stack(
        StackName=name,
        TemplateBody=json.dumps(cfn),
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in params.items()],
        Capabilities=["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"],
    )
    described = cloudformation.describe_stacks(StackName=name)["Stacks"][0]
    if described["StackStatus"] != "CREATE_COMPLETE":
        raise RuntimeError(f"local stack failed: {described['StackStatus']} {described.get('StackStatusReason')}")
    outputs = {o["OutputKey"]: o["OutputValue"] for o in described.get("Outputs", [])}
    resources = {
        r["LogicalResourceId"]: r["PhysicalResourceId"]
        for r in cloudformation.list_stack_resources(StackName=name)["StackResourceSummaries"]
    }
    sqs = boto3.client("sqs", region_name=region)
    for mapping in event_sources:
        url = resources[mapping.queue_arn]
        mapping.queue_arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]

    resources.update(secret_arns)
    _attach_managed_policies(cfn, resources, region)

    lambda_client = boto3.client("lambda", region_name=region)
    functions = {}
    for logical_id, resource in cfn["Resources"].items():
        if resource["Type"] == "AWS::Lambda::Function":
            config = lambda_client.get_function_configuration(FunctionName=resources[logical_id])
            environment = dict(config.get("Environment", {}).get("Variables", {}))
            functions[logical_id] = {
                "name": config["FunctionName"],
                "arn": config["FunctionArn"],
                "handler": config["Handler"],
                "environment": environment,
                "timeout": config.get("Timeout", 3),
                "role": config["Role"],
                "memory": config.get("MemorySize", 128),
                "reserved_concurrency": _reserved_concurrency(resource),
            }
    return DeployedStack(
        name=name,
        outputs=outputs,
        resources=resources,
        functions=functions,
        event_sources=event_sources,
    )


def deploy_repository(
    name: str, parameters: dict[str, str], region: str, template: dict[str, Any] | None = None
) -> dict[str, str]:
    """One model repository's stack (repository.yaml) beside the deployed stack; its outputs."""
    template = template if template is not None else load_repository_template()
    check_parameters(template, parameters)
    params = dict(parameters)
    for key, spec in template.get("Parameters", {}).items():  # as in deploy(): list defaults passed
        if key not in params and "List" in spec["Type"] and "Default" in spec:
            params[key] = spec["Default"]
    cloudformation = boto3.client("cloudformation", region_name=region)
    cloudformation.create_stack(
        StackName=name,
        TemplateBody=json.dumps(template),
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in params.items()],
        Capabilities=["CAPABILITY_IAM"],
    )
    described = cloudformation.describe_stacks(StackName=name)["Stacks"][0]
    if described["StackStatus"] != "CREATE_COMPLETE":
        raise RuntimeError(f"repository stack failed: {described['StackStatus']} {described.get('StackStatusReason')}")
    return {o["OutputKey"]: o["OutputValue"] for o in described.get("Outputs", [])}
