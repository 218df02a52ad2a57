"""Nothing lost from view (issue 25), each defect on the local stack: a run modelrun stops on
purpose racing its own events, a job event of an unknown status, a GitHub outage and broken
credentials while a request is verified, a job whose command does not exist."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from modelrun.adapters.aws import RunsTable
from modelrun.contracts import RunRequest
from modelrun.domain.status import RunStatus
from modelrun_cli.enqueue import send, with_identity
from modelrun_local.workflow_job import pull_request_job
from tests.helpers import wait_for
from tests.integration.flow import REPOSITORY, Flow, job_event
from tests.records import new_record

T0 = 1_795_000_000_000  # epoch ms of the synthetic events
LOOKUP = "actions/get-workflow-run-attempt"  # verification's one GitHub call for a PR's run


@pytest.fixture(scope="module")
def alerts(flow: Flow) -> str:
    """An SQS queue subscribed to the alerts topic (it stands in for Slack and e-mail)."""
    return flow.subscribe_alerts("reliability-alerts")


def _alerts_about(flow: Flow, alerts: str, run_id: str) -> list[str]:
    bodies: list[str] = []
    while messages := flow.sqs.receive_message(QueueUrl=alerts, MaxNumberOfMessages=10).get("Messages", []):
        bodies += [m["Body"] for m in messages]
        for m in messages:
            flow.sqs.delete_message(QueueUrl=alerts, ReceiptHandle=m["ReceiptHandle"])
    return [b for b in bodies if run_id in b]


@pytest.fixture
def held(flow: Flow, tmp_path: Path) -> Iterator[Path]:
    """The submit function holds between TerminateJob and the record's write until ``go``."""
    flow.runtime.lambdas.inject(
        "SubmitFunction", ["tests.integration.faults:hold_after_terminate"], {"FAULT_DIR": str(tmp_path)}
    )
    try:
        yield tmp_path
    finally:
        (tmp_path / "go").write_text("go")
        flow.runtime.lambdas.inject("SubmitFunction", [])


def _older_run(flow: Flow, pr: int, run_id: int) -> tuple[str, str]:
    """An active run of the PR, as the submit step left it (SUBMITTED, its job id): its run id and job id."""
    request = flow.request(pr=pr, run_id=run_id, mode=["ok"])
    record = new_record(
        request, job_queue=flow.runtime.outputs["CpuJobQueueArn"], bucket="b", vcpus=2, memory_mib=4096, gpus=0
    )
    job_id = f"job-{run_id}"
    assert RunsTable(flow.runtime.outputs["RunsTableName"]).create(
        record.model_copy(update={"job_id": job_id, "status": RunStatus.SUBMITTED})
    )
    return record.run_id, job_id


def _put(flow: Flow, run_id: str, job_id: str, status: str, reason: str | None = None) -> None:
    """The older job's state change, as Batch sends it through EventBridge."""
    queue = flow.runtime.outputs["CpuJobQueueArn"]
    stream = {"logStreamName": f"modelrun/default/{job_id}"}
    if status == "RUNNING":
        entry = job_event(run_id, job_id, queue, status, [], startedAt=T0, container={"exitCode": None} | stream)
    else:
        attempt = {"startedAt": T0, "stoppedAt": T0 + 5000, "statusReason": reason, "container": stream}
        entry = job_event(
            run_id, job_id, queue, status, [attempt], startedAt=T0, stoppedAt=T0 + 5000, statusReason=reason
        )
    assert not boto3.client("events").put_events(Entries=[entry])["FailedEntryCount"]


def _terminated(held: Path) -> str:
    """The reason the submit step terminated the job with, once it did."""
    marker = held / "terminated"
    return wait_for(lambda: marker.read_text() if marker.exists() else None, 60, "TerminateJob")


def _status(flow: Flow, run_id: str) -> str:
    return str(flow.record(run_id).get("status"))


# -- 1. a run modelrun stopped on purpose ends as the stop meant, whoever writes first -------------


@pytest.mark.parametrize("racing", ["RUNNING", "FAILED"])
def test_a_superseded_run_racing_its_own_events_ends_superseded_without_an_alert(
    flow: Flow, alerts: str, held: Path, racing: str
) -> None:
    """The supersede step terminates the older job; before it writes the record, the track step
    moves that record (its RUNNING event, or the terminated job's own FAILED event)."""
    pr = 2510 if racing == "RUNNING" else 2511
    older, job_id = _older_run(flow, pr, 7_250_000 + pr)
    newer = flow.request(pr=pr, run_id=7_251_000 + pr, mode=["ok"])
    send(newer, flow.queue_url)
    reason = _terminated(held)
    assert reason == f"superseded by {newer.head_sha[:8]}"
    _put(flow, older, job_id, racing, reason if racing == "FAILED" else None)
    wait_for(lambda: _status(flow, older) != "SUBMITTED", 60, "the track step to move the older run")
    (held / "go").write_text("go")
    if racing == "RUNNING":
        _put(flow, older, job_id, "FAILED", reason)  # what Batch sends for the terminated job
    flow.wait()

    record = flow.record(older)
    assert record["status"] == "SUPERSEDED", record.get("status_reason")
    assert record["status_reason"] == reason
    assert _status(flow, flow.run_id_of(newer)) == "SUCCEEDED"
    assert flow.executions(older) == []  # no report, so no "modelrun failed" alert
    assert _alerts_about(flow, alerts, older) == []
    [check] = flow.runtime.github.check_runs(REPOSITORY, str(record["head_sha"]))
    assert (check["status"], check["conclusion"]) == ("completed", "neutral"), check["output"]["title"]
    [comment] = flow.comments(pr)
    assert "FAILED" not in comment["body"] and "SUPERSEDED" in comment["body"]


def test_a_run_caught_moving_when_its_pr_closes_ends_cancelled(flow: Flow, alerts: str, held: Path) -> None:
    older, job_id = _older_run(flow, 2520, 7_252_520)
    closed = flow.event(2520, "c" * 40) | {"action": "closed"}
    cleaner = pull_request_job(flow.runtime.github, closed, run_id=7_252_521)
    cleaner.send(cleaner.cleanup(), flow.queue_url)
    reason = _terminated(held)
    _put(flow, older, job_id, "RUNNING")
    wait_for(lambda: _status(flow, older) == "RUNNING", 60, "the RUNNING event to land first")
    (held / "go").write_text("go")
    _put(flow, older, job_id, "FAILED", reason)
    flow.wait()

    record = flow.record(older)
    assert (record["status"], record["status_reason"]) == ("CANCELLED", "pull request closed")
    assert _alerts_about(flow, alerts, older) == []
    [check] = flow.runtime.github.check_runs(REPOSITORY, str(record["head_sha"]))
    assert (check["status"], check["conclusion"]) == ("completed", "cancelled")


# -- 2. an event that can never be processed is refused at once, with its reason ---------------


def test_a_job_event_of_an_unknown_status_is_dead_lettered_once_with_its_reason(flow: Flow) -> None:
    run_id, job_id = _older_run(flow, 2530, 7_252_530)
    track = next(p for p in flow.runtime.pollers if p.mapping.function == "TrackFunction")
    redelivered = track.redelivered
    _put(flow, run_id, job_id, "UNKNOWN_STATUS")
    flow.wait()
    [dead] = flow.dead_letters("JobEventsDLQUrl")
    reason = dead["MessageAttributes"]["reason"]["StringValue"]
    assert "UNKNOWN_STATUS" in reason and "is not a Batch job status" in reason, reason
    assert json.loads(dead["Body"])["detail"]["jobId"] == job_id
    assert track.redelivered == redelivered  # refused on its first delivery, not retried
    assert _status(flow, run_id) == "SUBMITTED"


# -- 3. a GitHub outage while verifying is waited out; broken credentials are dead-lettered -----


def test_honest_requests_sent_into_a_github_outage_all_run_once_it_ends(flow: Flow) -> None:
    github = flow.runtime.github
    submit = next(p for p in flow.runtime.pollers if p.mapping.queue_arn.endswith(flow.queue_url.rsplit("/", 1)[-1]))
    redelivered = submit.redelivered
    github.fail_next_of(LOOKUP, 30, status=502)
    before = len(github.requests)
    requests = [flow.request(pr=pr, run_id=7_250_000 + pr, mode=["ok"]) for pr in (2541, 2542, 2543)]
    for request in requests:
        send(request, flow.queue_url)
    flow.wait(timeout=240)

    lookups = [r for r in github.requests[before:] if r.operation == LOOKUP]
    assert sum(r.injected and r.status == 502 for r in lookups) == 30  # the whole outage was met
    assert submit.redelivered - redelivered >= 30  # each failed lookup's message came back
    for request in requests:
        run_id = flow.run_id_of(request)
        assert _status(flow, run_id) == "SUCCEEDED"
        assert len(flow.jobs_named(run_id, flow.runtime.outputs["CpuJobQueueArn"])) == 1
    assert flow.dead_letters("RunRequestsDLQUrl") == []


def test_a_rate_limited_lookup_waits_as_github_asks(flow: Flow) -> None:
    flow.runtime.github.fail_next_of(LOOKUP, 2, status=429, retry_after=1)
    request = flow.request(pr=2550, run_id=7_252_550, mode=["ok"])
    send(request, flow.queue_url)
    flow.wait(timeout=120)
    assert _status(flow, flow.run_id_of(request)) == "SUCCEEDED"
    assert flow.dead_letters("RunRequestsDLQUrl") == []


def test_broken_credentials_dead_letter_the_request_at_once_with_the_reason(flow: Flow) -> None:
    submit = next(p for p in flow.runtime.pollers if p.mapping.queue_arn.endswith(flow.queue_url.rsplit("/", 1)[-1]))
    redelivered = submit.redelivered
    flow.runtime.github.fail_next_of(LOOKUP, 1, status=401)
    request = flow.request(pr=2560, run_id=7_252_560, mode=["ok"])
    send(request, flow.queue_url)
    flow.wait()
    [dead] = flow.dead_letters("RunRequestsDLQUrl")
    reason = dead["MessageAttributes"]["reason"]["StringValue"]
    assert reason.startswith("GitHub credentials broken") and "401" in reason, reason
    assert submit.redelivered == redelivered
    assert flow.records_of(request) == []


# -- 4. a job whose command cannot start fails, as Batch fails it, and the PR says why ----------


def test_a_job_whose_command_does_not_exist_fails_with_its_reason_on_the_pr(flow: Flow) -> None:
    job = flow.job(2570, 7_252_570)
    built: dict[str, Any] = job.request(flow.image).model_dump(mode="json") | {"command": ["x"]}
    request = with_identity(RunRequest.model_validate(built), job.token(flow.queue_url))
    assert isinstance(request, RunRequest)
    send(request, flow.queue_url)
    flow.wait()
    record = flow.record(flow.run_id_of(request))
    assert record["status"] == "FAILED"
    assert record["status_reason"].startswith("CannotStartContainerError") and '"x"' in record["status_reason"]
    [comment] = flow.comments(2570)
    assert "**FAILED**" in comment["body"] and "CannotStartContainerError" in comment["body"]
    [check] = flow.runtime.github.check_runs(REPOSITORY, request.head_sha)
    assert (check["status"], check["conclusion"]) == ("completed", "failure")
    assert "CannotStartContainerError" in check["output"]["summary"]
