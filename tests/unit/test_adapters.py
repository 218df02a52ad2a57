"""The AWS adapters' own choices: how a record is stored, how the queue ahead is counted, what a
dead letter carries, a report already started, a job log's tail.

DynamoDB is moto in this process (the ``aws`` fixture); Batch is botocore's Stubber, which checks the exact
request the adapter sends.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber

from modelrun.adapters import aws
from modelrun.adapters import batch as batch_adapter
from modelrun.adapters.aws import Results, RunsTable
from modelrun.adapters.aws import client as aws_client
from modelrun.adapters.batch import BatchJobs
from modelrun.domain.registration import job_grant
from modelrun.domain.report import RUNS_AHEAD_CAP
from modelrun.domain.run import RunRecord
from modelrun.domain.status import RunStatus
from modelrun.errors import Unreadable
from tests.unit.domain_helpers import metrics_report, record
from tests.unit.fakes import registration


@pytest.fixture
def table(aws: None) -> RunsTable:
    boto3.client("dynamodb").create_table(
        TableName="runs",
        KeySchema=[{"AttributeName": "run_id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "run_id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    return RunsTable("runs")


def raw(table: RunsTable, run_id: str) -> dict[str, Any]:
    low_level = boto3.client("dynamodb")  # typed attribute values, as DynamoDB stores them
    item: dict[str, Any] = low_level.get_item(TableName="runs", Key={"run_id": {"S": run_id}})["Item"]
    return item


def test_documents_are_stored_as_json_text_and_read_back_as_documents(table: RunsTable) -> None:
    report = metrics_report()
    rec = record(RunStatus.SUCCEEDED, report=report, summary={"metrics": report["metrics"]})
    assert table.create(rec)
    stored = raw(table, rec.run_id)
    for key in ("report", "summary", "request"):
        assert set(stored[key]) == {"S"}, key  # one string attribute, not a map of typed values
    assert json.loads(stored["report"]["S"]) == json.loads(json.dumps(report))
    back = table.get(rec.run_id)
    assert back is not None
    assert back.report == rec.report
    assert back.summary == rec.summary
    assert back.request == rec.request


def test_updates_and_field_writes_store_documents_as_text_too(table: RunsTable) -> None:
    rec = record(RunStatus.RUNNING)
    table.create(rec)
    after = table.update(rec, status=RunStatus.SUCCEEDED, summary={"metrics": {"rmse": 1.5}})
    table.set_fields(rec.run_id, report={"metrics": {"rmse": 1.5}, "data": {"n_test": 10}})
    stored = raw(table, rec.run_id)
    assert set(stored["summary"]) == {"S"} and set(stored["report"]) == {"S"}
    back = table.get(rec.run_id)
    assert back is not None and back.status is RunStatus.SUCCEEDED == after.status
    assert back.summary == {"metrics": {"rmse": 1.5}}
    assert back.report == {"metrics": {"rmse": 1.5}, "data": {"n_test": 10}}


def test_records_written_with_documents_as_maps_still_read(table: RunsTable) -> None:
    rec = record(RunStatus.SUCCEEDED, summary={"metrics": {"rmse": 2.25, "r2": 0.9}})
    table.table.put_item(Item=aws._to_dynamo(rec.item()))  # the layout before documents were text
    back = table.get(rec.run_id)
    assert back is not None
    assert back.summary == {"metrics": {"rmse": 2.25, "r2": 0.9}}
    assert back.request == rec.request


def jobs_page(ids: list[str], more: bool = False) -> dict[str, Any]:
    page: dict[str, Any] = {"jobSummaryList": [{"jobId": i, "jobName": f"run-{i}"} for i in ids]}
    if more:
        page["nextToken"] = "next"
    return page


@pytest.mark.parametrize(
    ("page", "ahead"),
    [
        (jobs_page([]), 0),
        (jobs_page(["mine"]), 0),
        (jobs_page(["a", "mine", "b"]), 2),
        (jobs_page([str(i) for i in range(RUNS_AHEAD_CAP)], more=True), RUNS_AHEAD_CAP),
    ],
)
def test_runs_ahead_is_one_bounded_call_for_runnable_jobs_not_counting_ours(
    monkeypatch: pytest.MonkeyPatch, page: dict[str, Any], ahead: int
) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    stubbed = boto3.client("batch", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    monkeypatch.setattr(batch_adapter, "client", lambda service: stubbed)  # the client it makes on first use
    jobs = BatchJobs(3600)
    with Stubber(stubbed) as stub:
        stub.add_response(
            "list_jobs", page, {"jobQueue": "modelrun-cpu", "jobStatus": "RUNNABLE", "maxResults": RUNS_AHEAD_CAP}
        )
        assert jobs.runnable_ahead("modelrun-cpu", "mine") == ahead
        stub.assert_no_pending_responses()


def test_a_job_definition_carries_its_repositorys_grant(monkeypatch: pytest.MonkeyPatch) -> None:
    """The repository's roles and secrets (Batch secrets, by ARN), and for GPU a non-root user."""
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    stubbed = boto3.client("batch", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    monkeypatch.setattr(batch_adapter, "client", lambda service: stubbed)
    secret = "arn:aws:secretsmanager:us-east-1:111122223333:secret:condo/db-password-AbCdEf"
    grant = job_grant(registration(secrets=[secret]), baseline=False, compute="gpu")
    image = "111122223333.dkr.ecr.us-east-1.amazonaws.com/modelrun-models/a/b@sha256:" + "ab" * 32
    name = f"modelrun-gpu-{'ab' * 20}-{grant.key}"
    arn = f"arn:aws:batch:us-east-1:111122223333:job-definition/{name}:1"
    calls: list[dict[str, Any]] = []

    def register(**kwargs: Any) -> dict[str, str]:
        calls.append(kwargs)
        return {"jobDefinitionArn": arn}

    monkeypatch.setattr(stubbed, "register_job_definition", register)
    monkeypatch.setattr(stubbed, "describe_job_definitions", lambda **kw: {"jobDefinitions": []})
    assert BatchJobs(3600).job_definition(image, "gpu", {}, grant) == arn
    assert calls[0]["jobDefinitionName"] == name
    [call] = calls
    container = call["containerProperties"]
    assert container["jobRoleArn"].endswith("PullRequestJobRole-1")
    assert container["executionRoleArn"].endswith("JobExecutionRole-1")
    assert container["secrets"] == [{"name": "CONDO_DB_PASSWORD", "valueFrom": secret}]
    assert container["user"] == "10001:10001" and call["platformCapabilities"] == ["EC2"]


def test_a_record_round_trips_through_the_item_it_is_stored_as() -> None:
    rec = record(RunStatus.FAILED, exit_code=3, status_reason="Essential container in task exited")
    assert RunRecord.model_validate(rec.item()) == rec


# --- the dead-letter queues, the report state machine and the job logs (moto in this process) ---


@pytest.fixture
def clients(aws: None) -> Iterator[None]:
    """The adapters' per-process clients made afresh inside moto, and forgotten after it."""
    aws_client.cache_clear()  # imported by name: "aws" here is the fixture, not the module
    yield
    aws_client.cache_clear()


def sqs_record(body: str) -> Any:
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

    return SQSRecord(
        {"messageId": "m-1", "receiptHandle": "h", "body": body, "attributes": {}, "messageAttributes": {}}
    )


def test_a_dead_letter_carries_the_body_as_it_came_and_its_reason(clients: None) -> None:
    sqs = boto3.client("sqs")
    url = sqs.create_queue(QueueName="modelrun-dlq")["QueueUrl"]
    sent = {"sent_at": {"DataType": "Number", "StringValue": "1741101620000"}}
    aws.SqsDeadLetters(url).dead_letter(sqs_record('{"kind": "run"}'), "x" * 5000, sent)
    (message,) = sqs.receive_message(QueueUrl=url, MessageAttributeNames=["All"])["Messages"]
    attributes = {k: v["StringValue"] for k, v in message["MessageAttributes"].items()}
    assert message["Body"] == '{"kind": "run"}'
    assert attributes == {"reason": "x" * 4000, "source_message_id": "m-1", "sent_at": "1741101620000"}


def test_a_report_already_started_under_its_name_is_no_error(monkeypatch: pytest.MonkeyPatch) -> None:
    stubbed = boto3.client("stepfunctions", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    monkeypatch.setattr(aws, "client", lambda service: stubbed)
    arn = "arn:aws:states:us-east-1:111122223333:stateMachine:report"
    expected = {"stateMachineArn": arn, "name": "run-1", "input": '{"run_id": "run-1"}'}
    reports = aws.StepFunctionsReports(arn)
    with Stubber(stubbed) as stub:
        stub.add_response("start_execution", {"executionArn": f"{arn}:run-1", "startDate": 0}, expected)
        stub.add_client_error("start_execution", "ExecutionAlreadyExists", expected_params=expected)
        stub.add_client_error("start_execution", "StateMachineDoesNotExist", expected_params=expected)
        assert reports.start("run-1", {"run_id": "run-1"})
        assert not reports.start("run-1", {"run_id": "run-1"})  # a duplicate event: that execution exists
        with pytest.raises(ClientError):
            reports.start("run-1", {"run_id": "run-1"})
        stub.assert_no_pending_responses()


def test_a_jobs_log_tail_is_its_last_lines_and_nothing_when_unreadable(clients: None) -> None:
    logs = boto3.client("logs")
    logs.create_log_group(logGroupName="/aws/batch/job")
    logs.create_log_stream(logGroupName="/aws/batch/job", logStreamName="job/1")
    now = int(time.time() * 1000)  # events older than 14 days are refused
    logs.put_log_events(
        logGroupName="/aws/batch/job",
        logStreamName="job/1",
        logEvents=[{"timestamp": now + i, "message": f"line {i}\n"} for i in range(50)],
    )
    assert aws.BatchLogs().tail("job/1", 3) == ["line 47", "line 48", "line 49"]
    assert aws.BatchLogs().tail("no/such/stream", 3) == []


def test_an_archived_object_is_unreadable_not_an_error_and_a_copy_is_standard(aws: None) -> None:
    """Issue 21: a job's GLACIER write makes the file unavailable (the report says so), never a
    failed report; the collected copy is STANDARD whatever the source was."""
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="results")
    s3.put_object(Bucket="results", Key="runs/r/k/a.csv.gz", Body=b"archived", StorageClass="GLACIER")
    s3.put_object(Bucket="results", Key="runs/r/k/b.yaml", Body=b"x: 1", StorageClass="STANDARD_IA")
    results = Results("results")
    with pytest.raises(Unreadable, match="InvalidObjectState"):
        results.read_capped("s3://results/runs/r/k/a.csv.gz", 1024)
    with pytest.raises(Unreadable):
        results.copy("s3://results/runs/r/k/a.csv.gz", "reports/r/artifacts/a.csv.gz")
    results.copy("s3://results/runs/r/k/b.yaml", "reports/r/artifacts/b.yaml")
    kept = s3.head_object(Bucket="results", Key="reports/r/artifacts/b.yaml")
    assert kept.get("StorageClass", "STANDARD") == "STANDARD"
    assert results.read_capped("s3://results/reports/r/artifacts/b.yaml", 1024) == b"x: 1"
    assert results.read_capped("s3://results/reports/r/artifacts/missing", 1024) is None
