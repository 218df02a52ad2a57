"""The flow's test helper: one LocalRuntime, driven as the approved workflow job and read back
as the backend's state (records, Batch jobs, executions, comments)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3

from modelrun.contracts import RunRequest
from modelrun.domain.naming import execution_name
from modelrun_cli.enqueue import with_identity
from modelrun_local.runtime import LocalRuntime
from modelrun_local.workflow_job import Job, pull_request_job, retarget

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
REPOSITORY = "county-assessor/avm"


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

    def event(self, pr: int, sha: str) -> dict[str, Any]:
        event = retarget(json.loads((FIXTURES / "webhooks" / "pull_request.opened.json").read_text()), REPOSITORY)
        event["number"] = pr
        event["pull_request"]["number"] = pr
        event["pull_request"]["head"]["sha"] = sha
        return event

    def job(self, pr: int, run_id: int, sha: str | None = None, **kwargs: Any) -> Job:
        """An approved pull_request job of the PR (GitHub records its workflow run)."""
        sha = sha or f"{pr:08x}{run_id:032x}"[-40:]
        return pull_request_job(self.runtime.github, self.event(pr, sha), run_id=run_id, **kwargs)

    def request(self, pr: int, run_id: int, mode: list[str], sha: str | None = None) -> RunRequest:
        """The job's run request with its OIDC token attached, ready to send."""
        job = self.job(pr, run_id, sha)
        built = job.request(self.image)
        request = RunRequest.model_validate(built.model_dump(mode="json") | {"command": ["python", "job.py", *mode]})
        return with_identity(request, job.token(self.queue_url))  # type: ignore[return-value]

    def record(self, run_id: str) -> dict[str, Any]:
        item: dict[str, Any] = self.table.get_item(Key={"run_id": run_id}, ConsistentRead=True).get("Item", {})
        return item

    def run_id_of(self, request: RunRequest) -> str:
        items = [i for i in self.table.scan()["Items"] if i.get("head_sha") == request.head_sha and "job_queue" in i]
        assert len(items) == 1, items
        return str(items[0]["run_id"])

    def jobs_named(self, run_id: str, queue: str) -> list[dict[str, Any]]:
        jobs: list[dict[str, Any]] = []
        for status in ("SUBMITTED", "PENDING", "RUNNABLE", "STARTING", "RUNNING", "SUCCEEDED", "FAILED"):
            jobs += self.batch.list_jobs(jobQueue=queue, jobStatus=status)["jobSummaryList"]
        by_filter = self.batch.list_jobs(jobQueue=queue, filters=[{"name": "JOB_NAME", "values": [run_id]}])
        names = {j["jobId"] for j in by_filter["jobSummaryList"]}
        assert names == {j["jobId"] for j in jobs if j["jobName"] == run_id}
        return by_filter["jobSummaryList"]

    def executions(self, run_id: str) -> list[dict[str, Any]]:
        executions = self.sfn.list_executions(stateMachineArn=self.runtime.state_machine_arn)["executions"]
        return [e for e in executions if e["name"] == execution_name(run_id)]

    def comments(self, pr: int) -> list[dict[str, Any]]:
        return self.runtime.github.comments(REPOSITORY, pr)

    def wait(self, timeout: float = 45) -> None:
        self.runtime.wait_until_idle(timeout=timeout)
