"""The flow's test helper: one LocalRuntime, driven as the approved workflow job and read back
as the backend's state (records, Batch jobs, executions, comments, dead letters); and the
builders the integration tests share (webhooks, run requests, Batch job events)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3

from modelrun.contracts import RunRequest
from modelrun.domain.naming import execution_name
from modelrun_cli.enqueue import send, with_identity
from modelrun_local.runtime import NOOP_MODEL_DIR, LocalRuntime
from modelrun_local.workflow_job import Job, pull_request_job, retarget
from tests.helpers import wait_for, wait_until_quiet

if TYPE_CHECKING:  # boto3-stubs' shape of an entry, which the events client's put_events takes
    from mypy_boto3_events.type_defs import PutEventsRequestEntryTypeDef

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
REPOSITORY = "county-assessor/avm"


def with_command(request: RunRequest, *mode: str) -> RunRequest:
    """The request with the placeholder model's command in ``mode`` (ok, fail, sleep N, ...)."""
    return RunRequest.model_validate(request.model_dump(mode="json") | {"command": ["python", "job.py", *mode]})


def pull_request_event(pr: int, sha: str) -> dict[str, Any]:
    """GitHub's sample pull_request.opened webhook, of REPOSITORY's PR ``pr`` at ``sha``."""
    event = retarget(json.loads((FIXTURES / "webhooks" / "pull_request.opened.json").read_text()), REPOSITORY)
    event["number"] = event["pull_request"]["number"] = pr
    event["pull_request"]["head"]["sha"] = sha
    return event


class Flow:
    def __init__(self, runtime: LocalRuntime, image: str, scratch: Path) -> None:
        self.runtime = runtime
        self.image = image
        self.scratch = scratch  # flag files that release waiting jobs
        self.queue_url = runtime.outputs["RunRequestsQueueUrl"]
        self.table = boto3.resource("dynamodb").Table(runtime.outputs["RunsTableName"])
        self.batch = boto3.client("batch")
        self.s3 = boto3.client("s3")
        self.logs = boto3.client("logs")
        self.sqs = boto3.client("sqs")
        self.sfn = boto3.client("stepfunctions")

    @classmethod
    def placeholder(cls, runtime: LocalRuntime, scratch: Path) -> Flow:
        """The flow of ``runtime`` with the placeholder model pushed (jobs run job.py's modes)."""
        return cls(runtime, runtime.push_image(NOOP_MODEL_DIR, tag="placeholder"), scratch)

    def event(self, pr: int, sha: str) -> dict[str, Any]:
        return pull_request_event(pr, sha)

    def job(self, pr: int, run_id: int, sha: str | None = None, **kwargs: Any) -> Job:
        """An approved pull_request job of the PR (GitHub records its workflow run)."""
        sha = sha or f"{pr:08x}{run_id:032x}"[-40:]
        return pull_request_job(self.runtime.github, self.event(pr, sha), run_id=run_id, **kwargs)

    def request(self, pr: int, run_id: int, mode: list[str], sha: str | None = None) -> RunRequest:
        """The job's run request with its OIDC token attached, ready to send."""
        job = self.job(pr, run_id, sha)
        built = job.request(self.image)
        return with_identity(with_command(built, *mode), job.token(self.queue_url))  # type: ignore[return-value]

    def run(self, pr: int, run_id: int, mode: list[str], sha: str | None = None) -> tuple[RunRequest, dict[str, Any]]:
        """Send the job's request and wait until the stack is idle: the request and its run's record."""
        request = self.request(pr, run_id, mode, sha)
        send(request, self.queue_url)
        self.wait()
        return request, self.record(self.run_id_of(request))

    def record(self, run_id: str) -> dict[str, Any]:
        item: dict[str, Any] = self.table.get_item(Key={"run_id": run_id}, ConsistentRead=True).get("Item", {})
        return item

    def records_of(self, request: RunRequest) -> list[dict[str, Any]]:
        """The run records of the request's head commit (not the publication items beside them)."""
        return [i for i in self.table.scan()["Items"] if i.get("head_sha") == request.head_sha and "job_queue" in i]

    def run_id_of(self, request: RunRequest) -> str:
        items = self.records_of(request)
        assert len(items) == 1, items
        return str(items[0]["run_id"])

    def status_of(self, request: RunRequest) -> str | None:
        items = self.records_of(request)
        return str(items[0]["status"]) if items else None

    def wait_status(self, request: RunRequest, status: str, timeout: float = 60) -> str:
        """Wait until the request's run has ``status``; its run id."""
        wait_for(lambda: self.status_of(request) == status, timeout, f"{request.head_sha[:8]} to be {status}")
        return self.run_id_of(request)

    def github_quiet(self) -> int:
        """GitHub requests so far, once none has come for half a second (runs may be running)."""
        return wait_until_quiet(lambda: len(self.runtime.github.requests), 0.5, what="GitHub requests")

    def dead_letters(self, output: str) -> list[dict[str, Any]]:
        """The messages in the DLQ of that stack output, taken off it."""
        url = self.runtime.outputs[output]
        messages: list[Any] = self.sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"], WaitTimeSeconds=1
        ).get("Messages", [])
        for m in messages:
            self.sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
        return messages

    def jobs_named(self, run_id: str, queue: str) -> Sequence[Mapping[str, Any]]:
        jobs: list[Mapping[str, Any]] = []
        for status in ("SUBMITTED", "PENDING", "RUNNABLE", "STARTING", "RUNNING", "SUCCEEDED", "FAILED"):
            jobs += self.batch.list_jobs(jobQueue=queue, jobStatus=status)["jobSummaryList"]
        by_filter = self.batch.list_jobs(jobQueue=queue, filters=[{"name": "JOB_NAME", "values": [run_id]}])
        names = {j["jobId"] for j in by_filter["jobSummaryList"]}
        assert names == {j["jobId"] for j in jobs if j["jobName"] == run_id}
        return by_filter["jobSummaryList"]

    def executions(self, run_id: str) -> list[Mapping[str, Any]]:
        executions = self.sfn.list_executions(stateMachineArn=self.runtime.state_machine_arn)["executions"]
        return [e for e in executions if e["name"] == execution_name(run_id)]

    def comments(self, pr: int) -> list[dict[str, Any]]:
        return self.runtime.github.comments(REPOSITORY, pr)

    def subscribe_alerts(self, queue_name: str) -> str:
        """An SQS queue subscribed to the alerts topic, standing in for Slack and e-mail; its URL."""
        url: str = self.sqs.create_queue(QueueName=queue_name)["QueueUrl"]
        arn = self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        boto3.client("sns").subscribe(
            TopicArn=self.runtime.outputs["AlertsTopicArn"],
            Protocol="sqs",
            Endpoint=arn,
            Attributes={"RawMessageDelivery": "true"},
        )
        return url

    def wait(self, timeout: float = 90) -> None:
        self.runtime.wait_until_idle(timeout=timeout)


def job_detail_sample() -> dict[str, Any]:
    """The detail of AWS Batch's sample Job State Change event (tests/fixtures/batch)."""
    detail: dict[str, Any] = json.loads((FIXTURES / "batch" / "job-state-change.json").read_text())["detail"]
    return detail


def job_event(
    run_id: str, job_id: str, queue: str, status: str, attempts: list[dict[str, Any]], **detail: Any
) -> PutEventsRequestEntryTypeDef:
    """A PutEvents entry of the job's state change: the sample's detail with this job's fields."""
    fields = job_detail_sample() | {"jobName": run_id, "jobId": job_id, "jobQueue": queue, "status": status}
    fields |= {"attempts": attempts} | detail
    return {"Source": "aws.batch", "DetailType": "Batch Job State Change", "Detail": json.dumps(fields)}


def job_role_s3(
    runtime: LocalRuntime, session: str, repository: str | None = None, output: str = "PullRequestJobRoleArn"
) -> Any:
    """An S3 client holding a repository's PR job role, as every approved PR's model container
    of that repository does (``output``: another of its stack's roles)."""
    return job_role_client(runtime, "s3", session, repository, output)


def job_role_client(
    runtime: LocalRuntime,
    service: str,
    session: str,
    repository: str | None = None,
    output: str = "PullRequestJobRoleArn",
) -> Any:
    """A client of ``service`` holding a repository stack's role (a job's, by default)."""
    role = runtime.repository_stack(repository)[output]
    keys = runtime.service_credentials(str(role), "ecs-tasks.amazonaws.com", session)
    return boto3.Session().client(  # type: ignore[call-overload]  # any service's client
        service,
        aws_access_key_id=keys["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=keys["AWS_SECRET_ACCESS_KEY"],
        aws_session_token=keys["AWS_SESSION_TOKEN"],
    )


def dead_letter_reason(sqs: Any, dlq_url: str, message_id: str) -> str:
    """The reason the submit function gave for dead-lettering ``message_id`` (the letter is
    taken off the DLQ); waits up to a minute for it."""

    def dead_lettered() -> str | None:
        for m in sqs.receive_message(
            QueueUrl=dlq_url, MaxNumberOfMessages=10, MessageAttributeNames=["All"], WaitTimeSeconds=1
        ).get("Messages", []):
            attributes: Mapping[str, Mapping[str, Any]] = m.get("MessageAttributes", {})
            if attributes.get("source_message_id", {}).get("StringValue") == message_id:
                sqs.delete_message(QueueUrl=dlq_url, ReceiptHandle=m["ReceiptHandle"])
                return str(attributes["reason"]["StringValue"])
        return None

    return wait_for(dead_lettered, 60, f"message {message_id} in the DLQ")
