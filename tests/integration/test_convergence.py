"""What the PR shows converges to the truth (issue 17), each defect attacked on the local stack:
a slow submit step racing the report, a secondary rate limit without Retry-After, a failed first
comment create, requests and events that can never succeed, a Spot reclaim with a wait between
attempts, a job event from another queue, and a PR with 500 runs."""

from __future__ import annotations

import json
from typing import Any

import boto3

from modelrun.adapters.aws import RunsTable
from modelrun.contracts import RunRequest
from modelrun.domain.report import MAX_COMMENT
from modelrun.domain.status import RunStatus
from modelrun_cli.enqueue import send, with_identity
from tests.helpers import wait_for
from tests.integration.flow import REPOSITORY, Flow, job_event, with_command
from tests.records import new_record

T0 = 1_795_000_000_000  # epoch ms of the synthetic events' first attempt


def _check_runs(flow: Flow, request: RunRequest) -> list[dict[str, Any]]:
    return flow.runtime.github.check_runs(REPOSITORY, request.head_sha)


def _sized(flow: Flow, pr: int, run_id: int, resources: dict[str, Any]) -> RunRequest:
    job = flow.job(pr, run_id)
    placeholder = with_command(job.request(flow.image))  # the placeholder model, no mode given
    sized = RunRequest.model_validate(placeholder.model_dump(mode="json") | {"resources": resources})
    return with_identity(sized, job.token(flow.queue_url))  # type: ignore[return-value]


def test_a_slow_submit_step_never_overwrites_the_final_report(flow: Flow) -> None:
    """4 s of latency in the submit step, after it read the PR's runs and before it writes the
    comment: the job runs and is reported meanwhile. The PR must end on the report."""
    flow.runtime.lambdas.inject("SubmitFunction", ["tests.integration.faults:slow_runnable_ahead"])
    requests = {pr: flow.request(pr=pr, run_id=7_170_000 + pr, mode=["ok"]) for pr in (1701, 1702)}
    for request in requests.values():
        send(request, flow.queue_url)
    flow.wait(timeout=90)
    for pr, request in requests.items():
        assert flow.status_of(request) == "SUCCEEDED"
        [comment] = flow.comments(pr)
        assert "✅ **SUCCEEDED**" in comment["body"] and "| RMSE | 16,100 |" in comment["body"], comment["body"][:200]
        # The slow submit step's "queued" comes after the report: the check run stays completed.
        [check] = _check_runs(flow, request)
        assert (check["status"], check["conclusion"]) == ("completed", "success"), check["output"]["title"]
    flow.runtime.lambdas.inject("SubmitFunction", [])


def test_a_secondary_rate_limit_403_without_retry_after_is_retried(flow: Flow) -> None:
    flag = flow.scratch / "release-1710"
    request = flow.request(pr=1710, run_id=7_171_710, mode=["wait-for", str(flag)])
    send(request, flow.queue_url)
    flow.wait_status(request, "RUNNING")
    flow.github_quiet()
    # GitHub's secondary limit as a 403, no Retry-After, x-ratelimit-remaining above 0, on the
    # report's writes: the PR's first comment (written when the run ends) and the check run.
    flow.runtime.github.fail_next_of("issues/create-comment", 1, status=403)
    flow.runtime.github.fail_next_of("checks/update", 1, status=403)
    flag.write_text("go")
    flow.wait(timeout=120)
    run_id = flow.run_id_of(request)
    [execution] = flow.executions(run_id)
    assert execution["status"] == "SUCCEEDED"
    [comment] = flow.comments(1710)
    assert "✅ **SUCCEEDED**" in comment["body"]
    [check] = _check_runs(flow, request)
    assert (check["status"], check["conclusion"]) == ("completed", "success")
    injected = [r for r in flow.runtime.github.requests if r.injected and r.status == 403]
    assert sorted((r.operation for r in injected), key=str) == ["checks/update", "issues/create-comment"]
    # A refused create landed nothing: retried as a create, without looking for the comment.
    ours = [r for r in flow.runtime.github.requests if "/issues/1710/" in r.path]
    assert [(r.operation, r.status) for r in ours] == [("issues/create-comment", 403), ("issues/create-comment", 201)]


def test_a_failed_first_create_does_not_block_the_prs_comment(flow: Flow) -> None:
    """The PR's first comment is created when the run ends; that create fails with a 502 (it
    may have landed). The retry must not wait for the failed writer's lease to lapse, and must
    look for the comment before creating it: one comment, on the first retry."""
    flow.runtime.github.fail_next_of("issues/create-comment", 1, status=502)
    request = flow.request(pr=1720, run_id=7_171_720, mode=["ok"])
    send(request, flow.queue_url)
    flow.wait(timeout=60)
    [comment] = flow.comments(1720)
    assert "✅ **SUCCEEDED**" in comment["body"]
    ours = [r for r in flow.runtime.github.requests if "/issues/1720/" in r.path]
    assert [(r.operation, r.status) for r in ours] == [
        ("issues/create-comment", 502),
        ("issues/list-comments", 200),  # an answer was lost: is the comment there after all?
        ("issues/create-comment", 201),
    ]
    # The failed create let go of the PR's comment at once: the state machine's first retry
    # got it, with no PublishBusy from a lease still held.
    [execution] = flow.executions(flow.run_id_of(request))
    history = flow.sfn.get_execution_history(executionArn=execution["executionArn"])["events"]
    failures = [e["taskFailedEventDetails"]["error"] for e in history if e["type"] == "TaskFailed"]
    assert failures == ["GitHubUnavailable"], failures


def test_requests_that_can_never_run_are_rejected_with_the_field(flow: Flow) -> None:
    """Valid-looking sizes nothing can place or store: straight to the DLQ, the reason naming the field."""
    cases: dict[int, dict[str, float]] = {
        7_171_731: {"vcpus": 3, "memory_mib": 8192},  # Fargate has no 3-vCPU size
        7_171_732: {"vcpus": 2, "memory_mib": 1000},  # nor 2 vCPUs with 1000 MiB
        7_171_733: {"vcpus": 1e-200},  # > 0, yet DynamoDB cannot store it
    }
    for run_id, resources in cases.items():
        body = _sized(flow, 1730 + run_id % 10, run_id, resources).model_dump_json() if run_id != 7_171_733 else None
        if body is None:  # the contract refuses it now: send what an old client would
            raw = json.loads(_sized(flow, 1733, run_id, {"vcpus": 1}).model_dump_json())
            raw["resources"] = resources
            body = json.dumps(raw)
        flow.sqs.send_message(QueueUrl=flow.queue_url, MessageBody=body)
    flow.wait(timeout=60)
    reasons = sorted(m["MessageAttributes"]["reason"]["StringValue"] for m in flow.dead_letters("RunRequestsDLQUrl"))
    assert len(reasons) == 3, reasons
    assert sum("resources.vcpus" in r for r in reasons) == 2 and sum("resources.memory_mib" in r for r in reasons) == 1
    assert not [i for i in flow.table.scan()["Items"] if str(i.get("workflow_run_id")) in {str(k) for k in cases}]


def _error_records(flow: Flow, function: str) -> list[dict[str, Any]]:
    """The function's log records at ERROR (Powertools' JSON lines, as CloudWatch gets them)."""
    records = []
    for line in flow.runtime.lambdas.log_lines(function):
        if line.startswith("{"):
            record = json.loads(line)
            if record.get("level") == "ERROR":
                records.append(record)
    return records


def test_a_handler_crash_is_logged_at_error_with_the_message_id(flow: Flow) -> None:
    flow.runtime.lambdas.inject("SubmitFunction", ["tests.integration.faults:crash_submit"])
    try:
        request = flow.request(pr=1740, run_id=7_171_740, mode=["ok"])
        message_id = flow.sqs.send_message(QueueUrl=flow.queue_url, MessageBody=request.model_dump_json())["MessageId"]

        def logged() -> list[dict[str, Any]]:
            return [r for r in _error_records(flow, "SubmitFunction") if r.get("message_id") == message_id]

        wait_for(logged, 60, "an ERROR log line with the message id")
    finally:
        flow.runtime.lambdas.inject("SubmitFunction", [])  # let the redelivery succeed
    record = logged()[0]
    assert "injected: the runs table is unreachable" in str(record.get("cause", ""))
    flow.wait(timeout=60)


def test_a_malformed_job_event_is_dead_lettered_with_its_reason(flow: Flow) -> None:
    events_url = next(p.queue_url for p in flow.runtime.pollers if p.mapping.function == "TrackFunction")
    bodies = [
        "not json",
        json.dumps({"source": "aws.batch", "detail-type": "Batch Job State Change", "id": "x", "detail": {}}),
        json.dumps({"hello": "world"}),
    ]
    for body in bodies:
        flow.sqs.send_message(QueueUrl=events_url, MessageBody=body)
    flow.wait()
    rejected = flow.dead_letters("JobEventsDLQUrl")
    assert sorted(m["Body"] for m in rejected) == sorted(bodies)
    for message in rejected:
        reason = message["MessageAttributes"]["reason"]["StringValue"]
        assert reason.startswith("not a Batch Job State Change event: ") and "body" in reason


def _attempt(start_s: int, stop_s: int, reason: str, stream: str, exit_code: int | None = None) -> dict[str, Any]:
    container: dict[str, Any] = {"logStreamName": stream}
    if exit_code is not None:
        container["exitCode"] = exit_code
    return {"startedAt": T0 + start_s * 1000, "stoppedAt": T0 + stop_s * 1000, "statusReason": reason,
            "container": container}  # fmt: skip


def _synthetic_run(flow: Flow, pr: int, job_id: str) -> str:
    table = RunsTable(flow.runtime.outputs["RunsTableName"])
    request = flow.request(pr=pr, run_id=7_170_000 + pr, mode=["ok"])
    record = new_record(
        request, job_queue=flow.runtime.outputs["CpuJobQueueArn"], bucket="b", vcpus=2, memory_mib=4096, gpus=0
    )
    assert table.create(record.model_copy(update={"job_id": job_id, "status": RunStatus.SUBMITTED}))
    return record.run_id


def _head_sha(flow: Flow, run_id: str) -> str:
    return str(flow.record(run_id)["head_sha"])


def test_a_spot_reclaim_shows_the_lost_attempt_the_wait_and_all_attempts_cost(flow: Flow) -> None:
    queue = flow.runtime.outputs["CpuJobQueueArn"]
    job_id = "job-spot-1750"
    run_id = _synthetic_run(flow, 1750, job_id)
    events = boto3.client("events")
    first_stream = f"modelrun/default/{job_id}-a1"
    running = job_event(run_id, job_id, queue, "RUNNING", [], startedAt=T0, container={"logStreamName": first_stream})
    reclaimed = _attempt(0, 120, "Host EC2 (instance i-0abc) terminated.", first_stream)
    waiting = job_event(run_id, job_id, queue, "RUNNABLE", [reclaimed], container={"logStreamName": first_stream})
    for entry in (running, waiting):
        assert events.put_events(Entries=[entry])["FailedEntryCount"] == 0
        flow.wait()
    # On App credentials the check run carries the live state; the comment waits for the end.
    assert not flow.comments(1750)
    [check] = flow.runtime.github.check_runs(REPOSITORY, _head_sha(flow, run_id))
    title, summary = check["output"]["title"], check["output"]["summary"]
    assert check["status"] == "queued" and "RUNNABLE" in title, title
    assert "lost to a Spot reclaim" in summary and "waiting for a new instance" in summary, summary
    assert "RUNNING since" not in summary and check["details_url"] == flow.record(run_id)["workflow_url"]
    assert "**Attempts**" in summary and "1. 11:06:40–11:08:40 UTC, 2m 0s: lost to a Spot reclaim" in summary

    second_stream = f"modelrun/default/{job_id}-a2"
    done = _attempt(300, 360, "Essential container in task exited", second_stream, exit_code=3)
    final = job_event(
        run_id,
        job_id,
        queue,
        "FAILED",
        [reclaimed, done],
        startedAt=T0 + 300_000,
        stoppedAt=T0 + 360_000,
        statusReason="Essential container in task exited",
        container={"logStreamName": second_stream, "exitCode": 3},
    )
    assert events.put_events(Entries=[final])["FailedEntryCount"] == 0
    flow.wait(timeout=60)
    [comment] = flow.comments(1750)
    body = comment["body"]
    # 120 s lost + 60 s last attempt: both count, in duration and cost.
    assert "❌ **FAILED** in 3m 0s over 2 attempts on CPU" in body, body[:400]
    assert "2. 11:11:40–11:12:40 UTC, 1m 0s: failed" in body, body
    [check] = flow.runtime.github.check_runs(REPOSITORY, _head_sha(flow, run_id))
    assert (check["status"], check["conclusion"]) == ("completed", "failure")


def test_an_event_from_another_job_queue_is_ignored(flow: Flow) -> None:
    job_id = "job-queue-1760"
    run_id = _synthetic_run(flow, 1760, job_id)
    other_queue = flow.runtime.outputs["GpuJobQueueArn"]
    entry = job_event(run_id, job_id, other_queue, "RUNNING", [], startedAt=T0, container={"logStreamName": "x"})
    assert boto3.client("events").put_events(Entries=[entry])["FailedEntryCount"] == 0
    flow.wait()
    assert flow.record(run_id)["status"] == "SUBMITTED"
    assert not flow.comments(1760) and not flow.runtime.github.check_runs(REPOSITORY, _head_sha(flow, run_id))


def test_a_pr_with_500_runs_keeps_its_comment_whole(flow: Flow) -> None:
    table = RunsTable(flow.runtime.outputs["RunsTableName"])
    pr = 1770
    template = flow.request(pr=pr, run_id=7_180_000, mode=["ok"])
    for i in range(499):
        request = template.model_copy(
            update={"head_sha": f"{i:040x}", "workflow": template.workflow.model_copy(update={"run_id": 7_180_001 + i})}
        )
        record = new_record(request, job_queue="q", bucket="b", vcpus=2, memory_mib=4096, gpus=0)
        stamp = f"2026-01-01T{i // 60:02d}:{i % 60:02d}:00.000Z"
        assert table.create(
            record.model_copy(
                update={"status": RunStatus.SUCCEEDED, "created_at": stamp, "updated_at": stamp, "job_id": f"j{i}"}
            )
        )
    send(template, flow.queue_url)
    flow.wait(timeout=90)
    [comment] = flow.comments(pr)
    body = comment["body"]
    assert "✅ **SUCCEEDED**" in body
    assert len(body) <= MAX_COMMENT
    assert body.count("<details") == body.count("</details>") == 1
    in_table = False
    for line in body.splitlines():
        if line.startswith("|"):
            in_table = True
            assert line.endswith("|"), line  # no row cut in half
        elif in_table:
            assert line == "", line  # a table ends with a blank line, never mid-markup
            in_table = False
    assert "older runs not shown" in body
    assert body.rstrip().endswith("</details>")
