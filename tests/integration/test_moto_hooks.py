"""Smoke tests of modelrun_local.moto_hooks: an upgrade of moto that moves what they patch, or
changes what moto answers, fails here first (the flow tests exercise the hooks end to end)."""

from __future__ import annotations

import base64
import json
from decimal import Decimal
from typing import Any

import boto3
import pytest
from moto.dynamodb.responses import DynamoResult
from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser

from modelrun_local import moto_hooks
from modelrun_local.stack import ROOT

ITEMS: list[dict[str, Any]] = [
    {
        "pk": "run#1",
        "sk": 1,
        "text": "héllo | <b>",
        "number": Decimal("81234.5"),
        "big": Decimal("12345678901234567890"),
        "flag": True,
        "nothing": None,
        "blob": b"\x00\x01binary",
        "map": {"nested": {"deeper": [Decimal(1), "two", {"three": False}]}, "empty": {}},
        "list": [Decimal("0.001"), None, b"\xff", ["inner"]],
        "strings": {"b", "a"},
        "numbers": {Decimal(1), Decimal("2.5")},
        "blobs": {b"x", b"y"},
    },
    {"pk": "run#1", "sk": 2, "report": '{"metrics":{"rmse":1.5}}', "status": "SUCCEEDED"},
    {"pk": "run#2", "sk": 1, "status": "RUNNING"},
]


def dynamodb_answers() -> list[Any]:
    """The same calls on a fresh table; what boto3 hands back (its parsed responses)."""
    client = boto3.client("dynamodb")
    name = "runs"
    client.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "N"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    table = boto3.resource("dynamodb").Table(name)
    answers: list[Any] = []
    for item in ITEMS:
        answers.append(table.put_item(Item=item, ReturnValues="ALL_OLD"))
    answers.append(table.put_item(Item={**ITEMS[1], "status": "FAILED"}, ReturnValues="ALL_OLD"))
    answers.append(table.get_item(Key={"pk": "run#1", "sk": 1}, ConsistentRead=True))
    answers.append(table.get_item(Key={"pk": "run#9", "sk": 1}))
    answers.append(
        table.update_item(
            Key={"pk": "run#2", "sk": 1},
            UpdateExpression="SET #s = :s, #m = :m",
            ExpressionAttributeNames={"#s": "status", "#m": "map"},
            ExpressionAttributeValues={":s": "SUCCEEDED", ":m": {"k": [Decimal("1.25")]}},
            ReturnValues="ALL_NEW",
        )
    )
    answers.append(table.query(KeyConditionExpression="pk = :p", ExpressionAttributeValues={":p": "run#1"}))
    answers.append(table.query(KeyConditionExpression="pk = :p", ExpressionAttributeValues={":p": "run#1"}, Limit=1))
    answers.append(table.scan(ReturnConsumedCapacity="TOTAL"))
    answers.append(table.delete_item(Key={"pk": "run#2", "sk": 1}, ReturnValues="ALL_OLD"))
    client.delete_table(TableName=name)
    for answer in answers:
        answer.pop("ResponseMetadata", None)
    return answers


def test_dynamodb_items_written_directly_read_back_as_moto_writes_them(
    aws: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    by_moto = dynamodb_answers()
    real = moto_hooks._original_dynamo_result
    left_to_moto: list[str] = []

    def moto_serialises(result: Any, context: Any) -> Any:
        left_to_moto.append(context.operation_model.name)
        return real(result, context)

    monkeypatch.setattr(moto_hooks, "_original_dynamo_result", moto_serialises)
    moto_hooks.write_dynamodb_items_directly()
    try:
        direct = dynamodb_answers()
    finally:
        moto_hooks.restore()
        DynamoResult.execute_result = real  # type: ignore[method-assign]
    assert direct == by_moto
    assert not set(left_to_moto) & moto_hooks.DYNAMODB_WIRE_FORM_OPERATIONS, left_to_moto
    item = next(a["Item"] for a in direct if "Item" in a)
    assert item["blob"].value == b"\x00\x01binary" and base64.b64encode(item["blob"].value)
    assert any(a.get("LastEvaluatedKey") for a in direct)  # a paged query kept its key


def test_state_machine_parse_is_reused_per_definition_and_restored() -> None:
    definition = (ROOT / "statemachine" / "report_run.asl.json").read_text()
    moto_hooks.reuse_state_machine_work()
    try:
        assert AmazonStateLanguageParser.parse(definition) is AmazonStateLanguageParser.parse(definition)
    finally:
        moto_hooks.restore()
    assert AmazonStateLanguageParser.parse(definition) is not AmazonStateLanguageParser.parse(definition)


def test_what_the_hooks_patch_is_still_where_they_patch_it() -> None:
    from moto import backends
    from moto.awslambda_simple.models import LambdaSimpleBackend
    from moto.batch.models import Job
    from moto.batch_simple.models import BatchSimpleBackend
    from moto.stepfunctions.parser.asl.component.state.exec.state_task import lambda_eval_utils
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import state_task_service_sns

    assert callable(LambdaSimpleBackend.invoke)
    assert callable(BatchSimpleBackend._mark_job_as_finished)
    assert callable(backends.list_of_moto_modules)
    for module in (lambda_eval_utils, state_task_service_sns):  # a name each imports, not one it exports
        assert callable(getattr(module, "boto_client_for")), module.__name__
    for attribute in ("_start_attempt", "_mark_stopped", "_get_container_property", "describe"):
        assert callable(getattr(Job, attribute)), attribute


def test_deep_queues_keep_the_retention_rule_and_eventbridge_its_routing(aws: None) -> None:
    sqs = boto3.client("sqs")
    moto_hooks.keep_deep_queues_cheap()
    try:
        url = sqs.create_queue(QueueName="short", Attributes={"MessageRetentionPeriod": "60"})["QueueUrl"]
        sqs.send_message(QueueUrl=url, MessageBody="expired")
        sqs.send_message(QueueUrl=url, MessageBody="fresh")
        from moto.sqs.models import SQSBackend, sqs_backends

        backend = sqs_backends["123456789012"]["us-east-1"]
        queue = backend.queues["short"]
        old = next(m for m in queue._messages if m.body == "expired")
        # sent 61 s ago: past the queue's retention period (moto declares the int it sets as None)
        old.sent_timestamp -= 61_000  # type: ignore[operator, assignment]
        verdicts = {
            m.body: SQSBackend.is_message_valid_based_on_retention_period(backend, "short", m) for m in queue._messages
        }
        assert verdicts == {"expired": False, "fresh": True}
        original = moto_hooks._original_retention_check
        assert verdicts == {m.body: original(backend, "short", m) for m in queue._messages}

        events = boto3.client("events")
        target = sqs.create_queue(QueueName="events")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=target, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        events.put_rule(Name="batch", EventPattern='{"source": ["aws.batch"]}')
        events.put_targets(Rule="batch", Targets=[{"Id": "q", "Arn": arn}])
        for status in ("RUNNING", "SUCCEEDED"):
            events.put_events(
                Entries=[
                    {
                        "Source": "aws.batch",
                        "DetailType": "Batch Job State Change",
                        "Detail": f'{{"status": "{status}"}}',
                    }
                ]
            )
        bodies = [m["Body"] for m in sqs.receive_message(QueueUrl=target, MaxNumberOfMessages=10)["Messages"]]
        assert sorted(json.loads(b)["detail"]["status"] for b in bodies) == ["RUNNING", "SUCCEEDED"]
        assert all(json.loads(b)["source"] == "aws.batch" for b in bodies)
    finally:
        moto_hooks.restore()


def test_iam_hooks_decide_a_roles_calls_and_give_services_only_trusted_roles(aws: None) -> None:
    from moto.core.authorization import ActionAuthenticatorMixin

    from modelrun_local import iam

    client = boto3.client("iam")
    statement = {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
    trust = {"Version": "2012-10-17", "Statement": [statement]}
    arn = client.create_role(RoleName="fn", AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    allow = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sqs:ListQueues", "Resource": "*"}]}
    client.put_role_policy(RoleName="fn", PolicyName="p", PolicyDocument=json.dumps(allow))
    with pytest.raises(moto_hooks.UntrustedService):
        moto_hooks.service_credentials(arn, "ecs-tasks.amazonaws.com", "s")
    log = iam.DecisionLog(None)
    moto_hooks.enforce_iam(moto_hooks.Enforcement(log))
    try:
        keys = moto_hooks.service_credentials(arn, "lambda.amazonaws.com", "s")
        session = boto3.Session(
            aws_access_key_id=keys["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=keys["AWS_SECRET_ACCESS_KEY"],
            aws_session_token=keys["AWS_SESSION_TOKEN"],
        )
        session.client("sqs").list_queues()
        with pytest.raises(session.client("dynamodb").exceptions.ClientError):
            session.client("dynamodb").list_tables()
    finally:
        moto_hooks.stop_enforcing()
    assert ActionAuthenticatorMixin._authenticate_and_authorize_action is moto_hooks._original_authorize
    assert [(d.action, d.allowed) for d in log.decisions] == [
        ("sts:AssumeRole", True),
        ("sqs:ListQueues", True),
        ("dynamodb:ListTables", False),
    ]


def test_a_list_parameter_is_described_comma_joined_as_aws_does(aws: None) -> None:
    cloudformation = boto3.client("cloudformation")
    template = {
        "Parameters": {"Repos": {"Type": "CommaDelimitedList"}, "Name": {"Type": "String"}},
        "Resources": {"Topic": {"Type": "AWS::SNS::Topic"}},
    }
    cloudformation.create_stack(
        StackName="lists",
        TemplateBody=json.dumps(template),
        Parameters=[
            {"ParameterKey": "Repos", "ParameterValue": "octo/a,octo/b"},
            {"ParameterKey": "Name", "ParameterValue": "x"},
        ],
    )

    def described() -> dict[str, str]:
        (stack,) = cloudformation.describe_stacks(StackName="lists")["Stacks"]
        return {p["ParameterKey"]: p["ParameterValue"] for p in stack["Parameters"]}

    assert described()["Repos"] != "octo/a,octo/b"  # moto's own answer: the list's repr
    moto_hooks.describe_list_parameters_as_aws()
    try:
        assert described() == {"Repos": "octo/a,octo/b", "Name": "x"}
    finally:
        moto_hooks.restore()
    assert described()["Repos"] != "octo/a,octo/b"
