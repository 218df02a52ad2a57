"""The whole flow on the embedded local stack: SQS -> submit -> Batch -> EventBridge -> track ->
report state machine -> GitHub. One LocalRuntime for the module; each test uses its own PR
number, SHA and workflow run id, and jobs run a tiny placeholder instead of the model."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3

from modelrun.contracts import RunRequest
from modelrun.domain.naming import LOG_GROUP
from modelrun_cli.enqueue import send, with_identity
from modelrun_local.github_auth import EXCHANGE_OPERATION as EXCHANGE  # once per environment and hour
from modelrun_local.runtime import NOOP_MODEL_DIR
from modelrun_local.workflow_job import pull_request_job
from tests.helpers import wait_for
from tests.integration.flow import REPOSITORY, Flow, job_detail_sample, job_event, with_command
from tests.records import new_record

if TYPE_CHECKING:
    from mypy_boto3_events.type_defs import PutEventsRequestEntryTypeDef


def test_happy_path_end_to_end(flow: Flow) -> None:
    request, record = flow.run(pr=101, run_id=7_000_101, mode=["ok"])
    run_id = record["run_id"]
    assert record["status"] == "SUCCEEDED", record

    comments = flow.comments(101)
    assert len(comments) == 1
    body = comments[0]["body"]
    assert "**SUCCEEDED**" in body
    assert "| RMSE | 16,100 |" in body and "| COD | 2.80 |" in body
    assert comments[0]["user"]["login"] == "modelrun[bot]"
    # no main run yet: no baseline, but the holdout's decile chart all the same
    assert "```mermaid" in body and "Median ratio by sale-price decile" in body

    # GitHub App credentials (the local stack's default): a check run, not a commit status
    assert flow.runtime.github.statuses(REPOSITORY, request.head_sha) == []
    [check] = flow.runtime.github.check_runs(REPOSITORY, request.head_sha)
    assert (check["name"], check["status"], check["conclusion"]) == ("modelrun", "completed", "success")
    assert check["external_id"] == run_id and check["app"]["slug"] == "modelrun"
    # the verdict: no baseline to compare with (IAAO's standards said after it)
    assert check["output"]["title"].startswith("No baseline to compare with"), check["output"]["title"]
    assert "**Merge gate: ✅ success**" in check["output"]["summary"]  # no policy file: the default
    assert "| RMSE | 16,100 |" in check["output"]["summary"] and "```mermaid" in check["output"]["summary"]
    assert "Model and data" in check["output"]["text"]
    assert check["details_url"].startswith("https://s3.console.aws.amazon.com/")  # the full report
    writes = [
        r.operation for r in flow.runtime.github.requests if r.path.endswith("/check-runs") or "/check-runs/" in r.path
    ]
    assert writes[0] == "checks/create" and set(writes[1:]) == {"checks/update"}  # queued, in progress, completed

    events = flow.logs.get_log_events(logGroupName=LOG_GROUP, logStreamName=record["log_stream"])["events"]
    messages = [e["message"] for e in events]
    assert "placeholder model starting (ok)" in messages and "wrote metrics.json" in messages

    bucket = flow.runtime.outputs["ResultsBucketName"]
    html = flow.s3.get_object(Bucket=bucket, Key=f"reports/{run_id}/report.html")["Body"].read().decode()
    assert "<h1>modelrun report</h1>" in html and run_id in html

    executions = flow.executions(run_id)
    assert len(executions) == 1 and executions[0]["status"] == "SUCCEEDED"
    assert len(flow.jobs_named(run_id, record["job_queue"])) == 1


def test_duplicate_deliveries_make_one_job_and_one_record(flow: Flow) -> None:
    request = flow.request(pr=102, run_id=7_000_102, mode=["ok"])
    for _ in range(3):
        send(request, flow.queue_url)
    flow.wait()

    run_id = flow.run_id_of(request)  # exactly one record of this SHA
    record = flow.record(run_id)
    assert record["status"] == "SUCCEEDED"
    assert len(flow.jobs_named(run_id, record["job_queue"])) == 1
    assert len(flow.executions(run_id)) == 1
    assert len(flow.comments(102)) == 1
    assert len(flow.runtime.github.check_runs(REPOSITORY, request.head_sha)) == 1


def test_malformed_message_goes_to_the_dlq_with_its_reason(flow: Flow) -> None:
    good = [flow.request(pr=103 + i, run_id=7_000_103 + i, mode=["ok"]) for i in range(2)]
    bad = json.loads(good[0].model_dump_json()) | {"head_sha": "not-a-sha"}
    flow.sqs.send_message_batch(
        QueueUrl=flow.queue_url,
        Entries=[
            {"Id": "good0", "MessageBody": good[0].model_dump_json()},
            {"Id": "bad", "MessageBody": json.dumps(bad)},
            {"Id": "good1", "MessageBody": good[1].model_dump_json()},
        ],
    )
    flow.wait()

    rejected = flow.dead_letters("RunRequestsDLQUrl")
    assert len(rejected) == 1, [(m.get("MessageAttributes"), m["Body"][:80]) for m in rejected]
    assert json.loads(rejected[0]["Body"])["head_sha"] == "not-a-sha"
    reason = rejected[0]["MessageAttributes"]["reason"]["StringValue"]
    assert reason.startswith("invalid run request: ") and "head_sha" in reason

    for request in good:
        record = flow.record(flow.run_id_of(request))
        assert record["status"] == "SUCCEEDED"
        assert record.get("job_id")


def test_failing_job_reports_failed_with_an_inert_log_tail(flow: Flow) -> None:
    request, record = flow.run(pr=110, run_id=7_000_110, mode=["fail"])
    assert record["status"] == "FAILED"
    job = flow.batch.describe_jobs(jobs=[record["job_id"]])["jobs"][0]
    assert job["attempts"][-1]["container"]["exitCode"] == 3
    comments = flow.comments(110)
    assert len(comments) == 1
    body = comments[0]["body"]
    assert "**FAILED**" in body and "Essential container in task exited" in body
    # the log tail is inside one fence longer than any backtick run in it
    fence_start = body.index("````text\n")
    fence_end = body.index("\n````", fence_start + 1)
    inside = body[fence_start:fence_end]
    assert "<script>alert(1)</script> ping @someone" in inside
    outside = body[:fence_start] + body[fence_end:]
    assert "<script" not in outside and "@someone" not in outside
    [check] = flow.runtime.github.check_runs(REPOSITORY, request.head_sha)
    assert (check["status"], check["conclusion"]) == ("completed", "failure")
    assert "Essential container in task exited" in check["output"]["summary"]


def test_newer_request_supersedes_the_running_one(flow: Flow) -> None:
    first = flow.request(pr=120, run_id=7_000_120, mode=["sleep", "3"], sha="a" * 40)
    send(first, flow.queue_url)
    first_id = flow.wait_status(first, "RUNNING")

    second = flow.request(pr=120, run_id=7_000_121, mode=["ok"], sha="b" * 40)
    send(second, flow.queue_url)
    flow.wait()

    old = flow.record(first_id)
    assert old["status"] == "SUPERSEDED"
    assert "superseded by bbbbbbbb" in old["status_reason"]
    job = flow.batch.describe_jobs(jobs=[old["job_id"]])["jobs"][0]
    assert job["status"] == "FAILED"
    events = flow.logs.get_log_events(logGroupName=LOG_GROUP, logStreamName=old["log_stream"])["events"]
    assert "wrote metrics.json" not in [e["message"] for e in events]  # killed before it finished

    new = flow.record(flow.run_id_of(second))
    assert new["status"] == "SUCCEEDED"
    comments = flow.comments(120)
    assert len(comments) == 1
    assert "**SUCCEEDED**" in comments[0]["body"]
    assert "SUPERSEDED" in comments[0]["body"]  # the earlier run, in the history
    # no report runs for a superseded run: its check run ends when it is superseded
    [check] = flow.runtime.github.check_runs(REPOSITORY, first.head_sha)
    assert (check["status"], check["conclusion"]) == ("completed", "neutral")


def test_report_outlasts_github_errors(flow: Flow) -> None:
    flag = flow.scratch / "release-130"
    request = flow.request(pr=130, run_id=7_000_130, mode=["wait-for", str(flag)])
    send(request, flow.queue_url)
    run_id = flow.wait_status(request, "RUNNING")

    # let the RUNNING check run update land first (and its request be logged), so the faults
    # hit the report
    def in_progress() -> bool:
        return [c["status"] for c in flow.runtime.github.check_runs(REPOSITORY, request.head_sha)] == ["in_progress"]

    wait_for(in_progress, 60, "the check run in progress")
    flow.github_quiet()
    # Faults by operation, not "the next requests": the function may have more than one warm
    # environment, and one that never called GitHub exchanges its App's JWT for a token first.
    github = flow.runtime.github
    github.fail_next_of("issues/create-comment", 1, status=502)
    github.fail_next_of("issues/list-comments", 1, status=502)
    github.fail_next_of("issues/list-comments", 1, status=429, retry_after=1)
    before = len(github.requests)
    flag.write_text("go")
    flow.wait(timeout=120)

    record = flow.record(run_id)
    assert record["status"] == "SUCCEEDED"
    comments = flow.comments(130)
    assert len(comments) == 1
    assert "**SUCCEEDED**" in comments[0]["body"] and "| RMSE | 16,100 |" in comments[0]["body"]
    [check] = flow.runtime.github.check_runs(REPOSITORY, request.head_sha)
    assert check["conclusion"] == "success"
    requests = flow.runtime.github.requests[before:]
    # The PR's first comment is created with the results: the 502 on that create may have
    # landed, so the retries look for it first (the 502 and the 429 hit those lookups), find
    # none and create it once; then the check run's one update.
    assert [(r.method, r.status) for r in requests if r.injected] == [("POST", 502), ("GET", 502), ("GET", 429)]
    # (A token exchange is an environment's first call, whichever environment the retry found;
    # so is the merge gate's policy read, kept per environment and base commit.)
    once = (EXCHANGE, "repos/get-content")
    served = [r.operation for r in requests if not r.injected and r.operation not in once]
    assert served == ["issues/list-comments", "issues/create-comment", "checks/update"], served
    assert sum(r.operation == "repos/get-content" for r in requests) <= 1
    executions = flow.executions(run_id)
    assert len(executions) == 1 and executions[0]["status"] == "SUCCEEDED"


def test_failed_run_records_and_shows_the_exit_code(flow: Flow) -> None:
    _, record = flow.run(pr=140, run_id=7_000_140, mode=["fail"])
    assert record["status"] == "FAILED"
    assert "exit code 3" in flow.comments(140)[0]["body"]
    assert int(record["exit_code"]) == 3


def test_a_crash_after_submit_job_gives_one_job_after_redelivery(flow: Flow, tmp_path: Path) -> None:
    """The submit function dies between SubmitJob and recording the job id; SQS redelivers."""
    hook = "tests.integration.faults:crash_once_after_submit_job"
    flow.runtime.lambdas.inject("SubmitFunction", [hook], {"FAULT_DIR": str(tmp_path)})
    request = flow.request(pr=150, run_id=7_000_150, mode=["ok"])
    send(request, flow.queue_url)
    flow.wait(timeout=60)
    flow.runtime.lambdas.inject("SubmitFunction", [])
    assert (tmp_path / "crashed").exists(), "the crash was injected"
    run_id = flow.run_id_of(request)
    assert len(flow.jobs_named(run_id, flow.runtime.outputs["CpuJobQueueArn"])) == 1
    assert flow.record(run_id)["status"] == "SUCCEEDED"
    assert len(flow.executions(run_id)) == 1


def test_cleanup_stops_only_the_closed_prs_runs(flow: Flow, tmp_path: Path) -> None:
    flag = tmp_path / "release"
    closing = flow.request(pr=160, run_id=7_000_160, mode=["wait-for", str(flag)])
    other = flow.request(pr=161, run_id=7_000_161, mode=["wait-for", str(flag)])
    send(closing, flow.queue_url)
    send(other, flow.queue_url)
    for request in (closing, other):
        flow.wait_status(request, "RUNNING")
    # The cleanup workflow's job for the closed PR (its own workflow run) sends the request.
    closed = flow.event(160, closing.head_sha) | {"action": "closed"}
    cleaner = pull_request_job(flow.runtime.github, closed, run_id=7_000_162)
    cleaner.send(cleaner.cleanup(), flow.queue_url)
    flow.wait_status(closing, "CANCELLED")
    assert flow.status_of(other) == "RUNNING"
    flag.write_text("go")
    flow.wait(timeout=60)
    assert flow.record(flow.run_id_of(closing))["status"] == "CANCELLED"
    assert flow.record(flow.run_id_of(other))["status"] == "SUCCEEDED"
    [job] = flow.batch.describe_jobs(jobs=[flow.record(flow.run_id_of(closing))["job_id"]])["jobs"]
    assert job["status"] == "FAILED" and "closed" in job.get("statusReason", "")
    definitions = flow.batch.describe_job_definitions(status="ACTIVE")["jobDefinitions"]
    assert not [d for d in definitions if d["containerProperties"]["image"] == closing.image], "deregistered"
    [check] = flow.runtime.github.check_runs(REPOSITORY, closing.head_sha)
    assert (check["status"], check["conclusion"]) == ("completed", "cancelled")


def _event(run_id: str, job_id: str, queue: str, status: str, attempts: int) -> PutEventsRequestEntryTypeDef:
    detail: dict[str, Any] = {}
    if status == "RUNNING":
        stream = {"logStreamName": f"modelrun/default/{job_id}"}
        detail = {"startedAt": 1_795_000_000_000, "container": job_detail_sample()["container"] | stream}
    if status in ("SUCCEEDED", "FAILED"):
        reason = "Essential container in task exited" if status == "FAILED" else None
        detail = {"stoppedAt": 1_795_000_060_000, "statusReason": reason}
    return job_event(run_id, job_id, queue, status, [{"container": {"exitCode": 0}}] * attempts, **detail)


def test_a_model_that_reports_false_numbers_gets_the_computed_ones_on_its_pr(flow: Flow) -> None:
    """A container whose metrics.json claims RMSE 1 and COD 31: the PR shows what modelrun
    computed from its predictions, says the model's numbers disagree, and the check run's title
    and the stored summary are modelrun's too."""
    request, record = flow.run(pr=121, run_id=7_000_221, mode=["false-metrics"])
    assert record["status"] == "SUCCEEDED", record
    [comment] = flow.comments(121)
    body = comment["body"]
    assert "| RMSE | 16,100 |" in body and "| COD | 2.80 |" in body, body[:1500]
    assert "| RMSE | 1 |" not in body and "| COD | 31.00 |" not in body
    assert "it reported RMSE 1 (modelrun: 16,100), COD 31.00 (modelrun: 2.80)" in body
    [check] = flow.runtime.github.check_runs(REPOSITORY, request.head_sha)
    # the verdict is modelrun's: COD 2.80 fails IAAO's 5 to 15 (the model claimed 31)
    assert check["output"]["title"] == "No baseline to compare with; IAAO fails COD"
    assert "it reported RMSE 1" in check["output"]["summary"]
    summary = json.loads(record["summary"]) if isinstance(record["summary"], str) else record["summary"]
    assert round(summary["metrics"]["rmse"]) == 16_100 and round(summary["ratio_study"]["cod"]["value"], 2) == 2.8


def test_events_in_any_order_each_twice_end_in_one_comment_and_one_report(flow: Flow) -> None:
    """All 24 orders of RUNNABLE, STARTING, RUNNING and the terminal state, for SUCCEEDED and
    FAILED, each order delivered twice through EventBridge and the template's rule."""
    import itertools

    from modelrun.adapters.aws import RunsTable
    from modelrun.domain.status import RunStatus

    table = RunsTable(flow.runtime.outputs["RunsTableName"])
    queue = flow.runtime.outputs["CpuJobQueueArn"]
    bucket = flow.runtime.outputs["ResultsBucketName"]
    # One real placeholder run provides a metrics.json that follows the container contract.
    source = flow.request(pr=999, run_id=8_000_999, mode=["ok"])
    send(source, flow.queue_url)
    flow.wait()
    metrics = flow.s3.get_object(
        Bucket=bucket, Key=flow.record(flow.run_id_of(source))["results_uri"].split("/", 3)[3] + "metrics.json"
    )["Body"].read()
    events = boto3.client("events")
    scenarios: dict[str, tuple[int, str]] = {}
    pr = 1000
    for terminal in ("SUCCEEDED", "FAILED"):
        for order in itertools.permutations(["RUNNABLE", "STARTING", "RUNNING", terminal]):
            pr += 1
            request = flow.request(pr=pr, run_id=8_000_000 + pr, mode=["ok"])
            record = new_record(
                request,
                job_queue=queue,
                bucket=flow.runtime.outputs["ResultsBucketName"],
                vcpus=2,
                memory_mib=4096,
                gpus=0,
            )
            job_id = f"job-{pr}"
            assert table.create(record.model_copy(update={"job_id": job_id, "status": RunStatus.SUBMITTED}))
            if terminal == "SUCCEEDED":  # what the model would have written
                flow.s3.put_object(
                    Bucket=bucket, Key=record.results_uri.split("/", 3)[3] + "metrics.json", Body=metrics
                )
            scenarios[record.run_id] = (pr, terminal)
            entries = [_event(record.run_id, job_id, queue, s, 1 if s == terminal else 0) for s in order] * 2
            for start in range(0, len(entries), 10):
                assert events.put_events(Entries=entries[start : start + 10])["FailedEntryCount"] == 0
    flow.wait(timeout=180)
    icons = {"SUCCEEDED": "✅ **SUCCEEDED**", "FAILED": "❌ **FAILED**"}
    for run_id, (pr, terminal) in scenarios.items():
        assert flow.record(run_id)["status"] == terminal, run_id
        assert len(flow.executions(run_id)) == 1, run_id
        [comment] = flow.comments(pr)
        assert icons[terminal] in comment["body"], (run_id, comment["body"][:300])


def test_a_failed_run_alerts_slack_and_email_subscribers(flow: Flow) -> None:
    """SNS -> an SQS subscriber stands in for AWS Chatbot: the message is Chatbot's custom format."""
    queue_url = flow.subscribe_alerts("alerts-subscriber")
    request = flow.request(pr=170, run_id=7_000_170, mode=["fail"])
    send(request, flow.queue_url)
    flow.wait()
    messages = flow.sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", [])
    run_id = flow.run_id_of(request)
    chatbot = [json.loads(m["Body"]) for m in messages if run_id in m["Body"]]
    assert len(chatbot) == 1, messages
    assert chatbot[0]["version"] == "1.0" and chatbot[0]["source"] == "custom"
    assert "failed" in chatbot[0]["content"]["title"] and run_id in chatbot[0]["content"]["description"]


def test_a_pr_is_compared_with_main_over_the_sales_both_scored(flow: Flow) -> None:
    """Main's run first (a push, in main's environment: the baseline), then the PR's. Every run
    of the placeholder scores the same 20 sales alike: the paired bootstrap finds nothing, so
    every change reads ≈; and the GitHub requests of one PR run, from submission to its report."""
    from modelrun_local.workflow_job import branch_job

    repository = flow.event(190, "c" * 40)["repository"]
    main = branch_job(flow.runtime.github, repository, "push", branch="main", sha="d" * 40, run_id=7_000_189, actor="m")
    base = main.request(flow.image)
    send(with_identity(with_command(base, "ok"), main.token(flow.queue_url)), flow.queue_url)
    flow.wait()
    before = len(flow.runtime.github.requests)
    _, record = flow.run(pr=190, run_id=7_000_190, mode=["ok"], sha="c" * 40)
    assert record["status"] == "SUCCEEDED"
    report = json.loads(record["report"])
    assert report["baseline"]["head_sha"] == "d" * 40
    comparison = report["comparison"]
    assert (comparison["status"], comparison["n_sales"], comparison["resamples"]) == ("paired", 20, 1000)
    assert {c["verdict"] for c in comparison["changes"].values()} == {"same"}
    [comment] = flow.comments(190)
    body = comment["body"]
    assert "| RMSE | 16,100 | 16,100 | 0 (±0%) | 0 to 0 | ≈ |" in body, body[:1500]
    assert "1,000 resamples of the 20 holdout sales both runs scored" in body
    assert body.count("```mermaid") == 1  # the deciles (the placeholder reports no areas)
    # A token exchange (an environment's first call) is counted beside, as make bench does.
    # Beside the run's own requests: token exchanges and the default branch's lookup (a PR's base
    # must be it), each once an hour per function environment.
    besides = (EXCHANGE, "repos/get")
    operations = [r.operation for r in flow.runtime.github.requests[before:] if r.operation not in besides]
    # On App credentials: verified (1); the check run created queued at submission, updated
    # when Batch runs it (unless the job has ended by then: a render from the fresh record is
    # the final one) and completed with the results; the comment written once, at the end, a
    # create without a lookup (the PR has none); and the merge gate's policy file read from the
    # base commit (one contents request: a commit's file is kept per function environment, so
    # the PR's next runs on the same base don't read it again): 6 at most, 5 before gates.
    assert operations[:2] == ["actions/get-workflow-run-attempt", "checks/create"], operations
    assert operations.count("issues/create-comment") == 1 and "issues/list-comments" not in operations, operations
    # (None when an earlier run of this module read the same base commit's policy: kept.)
    assert operations.count("repos/get-content") <= 1, operations
    assert set(operations[2:]) - {"repos/get-content"} == {"checks/update", "issues/create-comment"}, operations
    assert len(operations) <= 6, operations


def test_the_executor_runs_entrypoint_and_cmd_in_workdir_with_the_jobs_environment_over_the_images(
    flow: Flow, tmp_path: Path
) -> None:
    """An image of the placeholder model built differently: ENTRYPOINT + CMD, a nested WORKDIR,
    and an ENV that the job's environment (MODELRUN_THREADS, set by the submit function) overrides."""
    context = tmp_path / "context"
    (context / "model").mkdir(parents=True)
    shutil.copy2(NOOP_MODEL_DIR / "job.py", context / "model" / "job.py")
    (context / "Dockerfile").write_text(
        "FROM python:3.12.11-slim-bookworm AS base\nARG WHERE=/srv\n"
        "FROM base\nARG WHERE=/srv\nWORKDIR ${WHERE}\nWORKDIR placeholder\n"
        "COPY model/job.py ./\nENV MODELRUN_THREADS=99\n"
        'ENTRYPOINT ["python", "job.py"]\nCMD ["ok"]\n'
    )
    image = flow.runtime.push_image(context, tag="entrypoint")
    job = flow.job(pr=131, run_id=7_000_131)
    request = with_identity(job.request(image), job.token(flow.queue_url))
    assert isinstance(request, RunRequest) and request.command is None  # the image's CMD runs
    send(request, flow.queue_url)
    flow.wait()
    record = flow.record(flow.run_id_of(request))
    assert record["status"] == "SUCCEEDED", record
    bucket = flow.runtime.outputs["ResultsBucketName"]
    key = record["results_uri"].split("/", 3)[3] + "metrics.json"
    metrics = json.loads(flow.s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    assert metrics["model"]["threads"] != 99  # the job's MODELRUN_THREADS, not the image's
    events = boto3.client("logs").filter_log_events(logGroupName=LOG_GROUP)["events"]
    assert any(e["message"] == "placeholder model starting (ok)" for e in events)
