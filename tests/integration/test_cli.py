"""The `modelrun` CLI against the embedded local stack, with real runs in it.

One LocalRuntime for the module holds a run in each status: SUCCEEDED, FAILED, RUNNING (a job
that sleeps; cancelled when the module ends), CANCELLED (by `modelrun cancel`), SUPERSEDED (two
requests for one PR) and QUEUED (records written directly: a real run leaves QUEUED in
milliseconds). Jobs run a tiny placeholder instead of the model.
"""

from __future__ import annotations

import json
import os
import re
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest
from typer.testing import CliRunner, Result

from modelrun.adapters.aws import RunsTable
from modelrun.contracts import RunRequest
from modelrun.domain import naming
from modelrun.domain.run import RunRecord, run_id_for
from modelrun.domain.status import RunStatus
from modelrun_cli.app import app
from modelrun_cli.enqueue import send, with_identity
from modelrun_cli.runs import short_id
from modelrun_local.oidc_issuer import TOKEN_LIFETIME_S
from modelrun_local.runtime import NOOP_MODEL_DIR, LocalRuntime
from modelrun_local.workflow_job import Job, pull_request_job, retarget
from tests.helpers import wait_for
from tests.records import new_record

ROOT = Path(__file__).resolve().parents[2]
WEBHOOK = ROOT / "tests" / "fixtures" / "webhooks" / "pull_request.opened.json"
REPOSITORY = "county-assessor/avm"
STACK = "modelrun-local"


@dataclass
class World:
    runtime: LocalRuntime
    image: str
    table: RunsTable
    ids: dict[str, str] = field(default_factory=dict)

    @property
    def queue_url(self) -> str:
        return self.runtime.outputs["RunRequestsQueueUrl"]

    def job(self, pr: int, workflow_run: int, actor: str, sha: str | None = None, attempt: int = 1) -> Job:
        """An approved pull_request job of the PR, started by ``actor`` (GitHub records its run)."""
        event = retarget(json.loads(WEBHOOK.read_text()), REPOSITORY)
        sha = sha or f"{pr:08x}{workflow_run:032x}"[-40:]
        event["number"] = pr
        pull = event["pull_request"]
        pull["number"] = pr
        pull["head"]["sha"] = sha
        return pull_request_job(self.runtime.github, event, run_id=workflow_run, run_attempt=attempt, actor=actor)

    def unsigned(self, job: Job, mode: list[str]) -> RunRequest:
        """The job's run request, its placeholder command set, without its token."""
        built = job.request(self.image)
        return RunRequest.model_validate(built.model_dump(mode="json") | {"command": ["python", "job.py", *mode]})

    def request(
        self, pr: int, workflow_run: int, mode: list[str], actor: str, sha: str | None = None, attempt: int = 1
    ) -> RunRequest:
        """The job's run request with its OIDC token attached (audience: the queue), ready to send."""
        job = self.job(pr, workflow_run, actor, sha, attempt)
        return with_identity(self.unsigned(job, mode), job.token(self.queue_url))  # type: ignore[return-value]

    def submit(self, name: str, request: RunRequest) -> str:
        send(request, self.queue_url)
        run_id = run_id_for(request)
        self.ids[name] = run_id
        return run_id

    def record(self, name_or_id: str) -> RunRecord | None:
        return self.table.get(self.ids.get(name_or_id, name_or_id))

    def status(self, name_or_id: str) -> RunStatus | None:
        record = self.record(name_or_id)
        return record.status if record else None

    def wait_status(self, name: str, *statuses: RunStatus, timeout: float = 30) -> RunRecord:
        def reached() -> RunRecord | None:
            record = self.record(name)
            return record if record and record.status in statuses else None

        return wait_for(reached, timeout, f"{name} to reach {'/'.join(statuses)}")

    def queued(self, name: str, pr: int, workflow_run: int, compute: str, created_at: str) -> str:
        """A QUEUED record, as the submit function writes it before SubmitJob."""
        request = self.request(pr, workflow_run, ["ok"], actor="erin")
        request = request.model_copy(update={"compute": compute})
        outputs = self.runtime.outputs
        queue = outputs["GpuJobQueueArn" if compute == "gpu" else "CpuJobQueueArn"]
        record = new_record(
            request, job_queue=queue, bucket=outputs["ResultsBucketName"], vcpus=2, memory_mib=4096, gpus=0
        )
        record = record.model_copy(update={"created_at": created_at, "updated_at": created_at})
        assert self.table.create(record)
        self.ids[name] = record.run_id
        return record.run_id


runner = CliRunner()
WIDE = {"COLUMNS": "220", "NO_COLOR": "1"}


def cli(*args: str, env: dict[str, str | None] | None = None, input: str | None = None, stack: bool = True) -> Result:
    argv = [*args, "--stack", STACK] if stack else list(args)
    return runner.invoke(app, argv, env={**WIDE, **(env or {})}, input=input)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    image_dir = NOOP_MODEL_DIR
    with LocalRuntime(stack_name=STACK, parameters={"LogLevel": "WARNING"}) as runtime:
        os.environ["POWERTOOLS_METRICS_DISABLED"] = "true"  # the in-process Lambdas print no EMF lines
        w = World(
            runtime, runtime.push_image(image_dir, tag="placeholder"), RunsTable(runtime.outputs["RunsTableName"])
        )
        w.submit("succeeded", w.request(201, 8_000_201, ["ok"], actor="ana"))
        w.submit("failed", w.request(202, 8_000_202, ["fail"], actor="ben"))
        w.submit("running", w.request(203, 8_000_203, ["sleep", "60"], actor="ana"))
        w.submit("to-cancel", w.request(204, 8_000_204, ["sleep", "60"], actor="carl"))
        w.submit("superseded", w.request(205, 8_000_205, ["sleep", "60"], actor="ben", sha="a" * 40))
        w.wait_status("superseded", RunStatus.RUNNING)
        w.submit("superseding", w.request(205, 8_000_206, ["ok"], actor="ben", sha="b" * 40))
        w.queued("queued-cpu-1", 206, 8_000_207, "cpu", "2020-01-01T00:00:01.000Z")
        w.queued("queued-cpu-2", 207, 8_000_208, "cpu", "2020-01-01T00:00:02.000Z")
        w.queued("queued-gpu-1", 208, 8_000_209, "gpu", "2020-01-01T00:00:03.000Z")
        w.wait_status("superseded", RunStatus.SUPERSEDED)
        for name, status in [
            ("succeeded", RunStatus.SUCCEEDED),
            ("superseding", RunStatus.SUCCEEDED),
            ("failed", RunStatus.FAILED),
            ("running", RunStatus.RUNNING),
            ("to-cancel", RunStatus.RUNNING),
        ]:
            w.wait_status(name, status)
        # the report state machine stores the metrics summary and the report link
        wait_for(lambda: (w.record("succeeded") or RunRecord.model_construct()).report, what="the report")
        yield w
        batch = boto3.client("batch")
        for record in w.table.scan():  # the sleeper (and anything else still active) stops now
            if record.job_id and not record.status.terminal:
                batch.terminate_job(jobId=record.job_id, reason="cancelled: end of the test module")
        wait_for(lambda: runtime.executor.active == 0, 20, "the jobs to stop")


def test_cancel_stops_a_running_run_and_refuses_an_ended_one(world: World) -> None:
    result = cli("cancel", short_id(world.ids["to-cancel"]), "--timeout", "20")
    assert result.exit_code == 0, result.output
    assert "Cancelling" in result.stdout and "is CANCELLED" in result.stdout
    record = world.record("to-cancel")
    assert record is not None and record.status is RunStatus.CANCELLED
    assert record.status_reason and record.status_reason.startswith("cancelled by ")
    assert record.status_reason.endswith("via modelrun CLI")

    again = cli("cancel", world.ids["to-cancel"])
    assert again.exit_code == 1
    assert "has already ended (CANCELLED): nothing to cancel" in again.stderr
    assert "Traceback" not in again.output


def test_runs_shows_every_status_the_queue_and_headline_metrics(world: World) -> None:
    result = cli("runs", "--limit", "50")
    assert result.exit_code == 0, result.output
    out = result.stdout
    for status in RunStatus:
        if status not in (RunStatus.SUBMITTED, RunStatus.RUNNABLE, RunStatus.STARTING):
            assert status.value in out, status
    lines = {
        name: next(line for line in out.splitlines() if short_id(run_id) in line) for name, run_id in world.ids.items()
    }
    assert "#1" in lines["queued-cpu-1"] and "#2" in lines["queued-cpu-2"] and "#1" in lines["queued-gpu-1"]
    assert "GPU" in lines["queued-gpu-1"] and "CPU" in lines["succeeded"]
    assert "81,234" in lines["succeeded"] and "9.5" in lines["succeeded"]  # RMSE, COD
    assert "#203" in lines["running"] and "ana" in lines["running"] and "…" in lines["running"]
    assert "waiting: 2 CPU, 1 GPU" in out

    as_json = cli("runs", "--json", "--limit", "50")
    assert as_json.exit_code == 0
    runs = {r["run_id"]: r for r in json.loads(as_json.stdout)}
    assert {name: runs[run_id]["status"] for name, run_id in world.ids.items()} == {
        "succeeded": "SUCCEEDED",
        "failed": "FAILED",
        "running": "RUNNING",
        "to-cancel": "CANCELLED",
        "superseded": "SUPERSEDED",
        "superseding": "SUCCEEDED",
        "queued-cpu-1": "QUEUED",
        "queued-cpu-2": "QUEUED",
        "queued-gpu-1": "QUEUED",
    }
    assert [runs[world.ids[n]]["queue_position"] for n in ("queued-cpu-1", "queued-cpu-2", "queued-gpu-1")] == [1, 2, 1]
    assert runs[world.ids["running"]]["queue_position"] is None
    assert runs[world.ids["succeeded"]]["summary"]["metrics"]["rmse"] == 81234.5


def test_runs_filters(world: World) -> None:
    def shown(*args: str) -> set[str]:
        result = cli("runs", "--json", *args)
        assert result.exit_code == 0, result.output
        return {r["run_id"] for r in json.loads(result.stdout)}

    ids = world.ids
    assert shown("--pr", "205") == {ids["superseded"], ids["superseding"]}
    assert shown("--author", "ana") == {ids["succeeded"], ids["running"]}
    assert shown("--status", "queued,running") == {
        ids[n] for n in ("running", "queued-cpu-1", "queued-cpu-2", "queued-gpu-1")
    }
    assert shown("--status", "failed", "--status", "cancelled") == {ids["failed"], ids["to-cancel"]}
    assert len(shown("--limit", "2")) == 2
    bad = cli("runs", "--status", "bogus")
    assert bad.exit_code == 2 and "unknown status 'bogus'" in bad.stderr


def test_show_one_run_with_its_links(world: World) -> None:
    record = world.record("succeeded")
    assert record is not None and record.report
    result = cli("show", short_id(record.run_id))
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert record.run_id in out and "SUCCEEDED" in out
    assert "exit code" in out and "RMSE" in out and "81,234" in out and "COD" in out and "pass" in out
    for url in (record.report["report_url"], record.log_url, record.workflow_url, record.results_uri):
        assert url and any(line.split() == [line.split()[0], url] for line in out.splitlines()), url

    failed = cli("show", world.ids["failed"][:-3])
    assert failed.exit_code == 0
    assert "FAILED" in failed.stdout and "Essential container in task exited" in failed.stdout
    assert re.search(r"exit code +3 ", failed.stdout)

    queued = cli("show", world.ids["queued-cpu-2"])
    assert "#2 in the CPU queue" in queued.stdout

    as_json = cli("show", world.ids["failed"], "--json")
    document = json.loads(as_json.stdout)
    assert document["status"] == "FAILED" and document["exit_code"] == 3 and document["job_id"]
    assert document["request"]["command"] == ["python", "job.py", "fail"]

    ambiguous = cli("show", "avm-pr20")
    assert ambiguous.exit_code == 1 and "matches" in ambiguous.stderr and "give more of the id" in ambiguous.stderr
    missing = cli("show", "no-such-run")
    assert missing.exit_code == 1 and "no run 'no-such-run'" in missing.stderr


def test_logs(world: World) -> None:
    result = cli("logs", short_id(world.ids["succeeded"]))
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == ["placeholder model starting (ok)", "wrote metrics.json"]

    failed = cli("logs", world.ids["failed"], "--follow")  # already ended: prints it all, says how it ended
    assert failed.exit_code == 1
    assert "loading data" in failed.stdout and "ended FAILED (exit code 3)" in failed.stderr

    queued = cli("logs", world.ids["queued-cpu-1"])
    assert queued.exit_code == 1 and "has no log yet (QUEUED)" in queued.stderr


def test_logs_follow_until_the_run_ends(world: World) -> None:
    run_id = world.submit("followed", world.request(209, 8_000_210, ["sleep", "1.5"], actor="dana"))
    wait_for(lambda: world.record(run_id), what="the run record")
    result = cli("logs", run_id, "--follow", "--interval", "0.2")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == ["placeholder model starting (sleep)", "wrote metrics.json"]
    assert f"run {run_id} ended SUCCEEDED (exit code 0)" in result.stderr


def test_rerun_sends_the_request_again_as_the_next_attempt(world: World) -> None:
    original = world.record("failed")
    assert original is not None
    result = cli("rerun", short_id(original.run_id), "--as", "Dana O'Neil")
    assert result.exit_code == 0, result.output
    # An operator's rerun names who asked as given (IAM decided who may send; SenderId is logged).
    assert "as attempt 2 by Dana-O-Neil" in result.stdout and "on the operator queue" in result.stdout
    second = naming.run_id(REPOSITORY, 202, original.head_ref, original.head_sha, 8_000_202, 2)
    record = ended(world, second, "the rerun")
    assert record.status is RunStatus.FAILED and record.exit_code == 3  # the same command again
    assert record.triggered_by == "Dana-O-Neil" and record.workflow_attempt == 2
    assert record.request and record.request["command"] == original.request["command"]  # type: ignore[index]
    # the original's evidence, not the operator's say: same commit, PR, environment
    assert (record.head_sha, record.pr_number, record.environment) == (original.head_sha, 202, original.environment)

    again = cli("rerun", original.run_id, env={"USER": "zoe"})  # attempt 3: after the highest recorded
    assert again.exit_code == 0, again.output
    assert "as attempt 3 by modelrun-local-operator" in again.stdout  # the AWS caller; $USER is for --local


def ended(world: World, run_id: str, what: str, *, reported: bool = False, timeout: float = 30) -> RunRecord:
    """The run's record once it is terminal (and, with ``reported``, once its report is stored)."""

    def check() -> RunRecord | None:
        record = world.record(run_id)
        return record if record and record.status.terminal and (record.report or not reported) else None

    return wait_for(check, timeout, what)


def test_rerun_is_a_new_attempt_through_the_operator_queue_and_succeeds(world: World) -> None:
    original = world.record("succeeded")
    assert original is not None and original.status is RunStatus.SUCCEEDED and original.workflow_attempt == 1
    result = cli("rerun", short_id(original.run_id), "--as", "ops-oncall")
    assert result.exit_code == 0, result.output
    assert f"Queued a rerun of {original.run_id} as attempt 2 by ops-oncall." in " ".join(result.stdout.split())
    assert "on the operator queue" in result.stdout and "modelrun runs --pr 201" in result.stdout

    second = naming.run_id(REPOSITORY, 201, original.head_ref, original.head_sha, 8_000_201, 2)
    record = ended(world, second, "the rerun", reported=True)
    assert record.status is RunStatus.SUCCEEDED and record.exit_code == 0
    assert (record.workflow_run_id, record.workflow_attempt) == (8_000_201, 2)
    # the backend reran its own stored, verified request: same commit, image and command
    assert original.request and record.request == original.request | {
        "workflow": {"run_id": 8_000_201, "run_attempt": 2}
    }
    assert (record.head_sha, record.image, record.pr_number) == (original.head_sha, original.image, 201)
    assert (record.environment, record.event, record.baseline) == (original.environment, "pull_request", False)
    assert record.triggered_by == "ops-oncall"  # who asked: only submission.rerun (operator queue) sets it
    assert record.workflow_url == f"https://github.com/{REPOSITORY}/actions/runs/8000201/attempts/2"
    # its own results prefix: runs/<run id>/<a new random key>/
    bucket = world.runtime.outputs["ResultsBucketName"]
    assert record.results_uri.startswith(f"s3://{bucket}/runs/{second}/") and record.results_uri != original.results_uri
    assert record.summary and record.summary["metrics"]["rmse"] == 81234.5
    assert world.status("succeeded") is RunStatus.SUCCEEDED  # the first attempt stands
    assert len(world.runtime.github.comments(REPOSITORY, 201)) == 1  # still one sticky comment


def test_redrive_shows_reasons_and_moves_messages_back(world: World) -> None:
    sqs = boto3.client("sqs")
    dlq = world.runtime.outputs["RunRequestsDLQUrl"]
    bad = {"schema_version": "1", "kind": "run", "repository": REPOSITORY, "head_sha": "not-a-sha"}
    sqs.send_message(QueueUrl=world.queue_url, MessageBody=json.dumps(bad))

    def depth() -> int:
        attrs = sqs.get_queue_attributes(
            QueueUrl=dlq, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
        )["Attributes"]
        return int(attrs["ApproximateNumberOfMessages"]) + int(attrs["ApproximateNumberOfMessagesNotVisible"])

    wait_for(depth, what="the rejected request in the DLQ")
    listing = cli("runs", "--limit", "1")
    assert "1 message(s) in the run-requests DLQ: `modelrun redrive --queue run-requests`" in listing.stdout

    declined = cli("redrive", input="n\n")
    assert declined.exit_code == 0, declined.output
    assert "1 message(s) in the run-requests DLQ" in declined.stdout
    assert "invalid run request: run.head_sha" in declined.stdout and "Nothing moved." in declined.stdout
    assert depth() == 1
    visible = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["ApproximateNumberOfMessages"])["Attributes"]
    assert visible["ApproximateNumberOfMessages"] == "1", "declined messages are visible again"

    moved = cli("redrive", "--queue", "run-requests", "--yes")
    assert moved.exit_code == 0, moved.output
    assert "invalid run request: run.head_sha" in moved.stdout
    # Back through the operator queue (its senders are operators: the original send time it
    # carries is believed), and the submit function, which rejects it again (still malformed).
    assert "Moved 1 message(s) back to modelrun-local-OperatorRequestsQueue-" in moved.stdout
    wait_for(lambda: world.runtime.lambdas.invocations.get("SubmitFunction", 0) and depth() == 1, what="redelivery")
    again = sqs.receive_message(QueueUrl=dlq, MessageAttributeNames=["All"], WaitTimeSeconds=1)["Messages"]
    assert json.loads(again[0]["Body"]) == bad
    sqs.delete_message(QueueUrl=dlq, ReceiptHandle=again[0]["ReceiptHandle"])

    empty = cli("redrive", "--queue", "job-events", "--yes")
    assert empty.exit_code == 0 and "The job-events DLQ is empty" in empty.stdout


NO_CREDENTIALS: dict[str, str | None] = {
    "AWS_ACCESS_KEY_ID": None,
    "AWS_SECRET_ACCESS_KEY": None,
    "AWS_SESSION_TOKEN": None,
    "AWS_PROFILE": None,
    "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/credentials",
    "AWS_CONFIG_FILE": "/nonexistent/config",
    "AWS_EC2_METADATA_DISABLED": "true",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI": None,
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI": None,
    "AWS_WEB_IDENTITY_TOKEN_FILE": None,
}


def test_clear_errors_without_credentials_or_in_the_wrong_region(world: World, tmp_path: Path) -> None:
    for args in (["runs"], ["show", "x"], ["logs", "x"], ["cancel", "x"], ["rerun", "x"], ["redrive", "--yes"]):
        result = cli(*args, env=NO_CREDENTIALS)
        assert result.exit_code == 2, (args, result.output)
        assert result.stderr.startswith("modelrun: no AWS credentials: run `aws sso login`"), result.stderr
        assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.output

    wrong = cli("runs", "--region", "eu-west-1")
    assert wrong.exit_code == 2
    assert wrong.stderr.strip() == f"modelrun: stack {STACK} not found in eu-west-1: wrong --region?"

    other = cli("runs", "--stack", "nope", stack=False)
    assert other.exit_code == 2 and "stack nope not found in us-east-1" in other.stderr

    profile = cli("runs", "--profile", "no-such-profile", env={"AWS_CONFIG_FILE": str(tmp_path / "none")})
    assert profile.exit_code == 2 and "AWS profile 'no-such-profile' not found" in profile.stderr


def test_local_reads_the_state_file_and_says_when_the_stack_is_not_running(world: World, tmp_path: Path) -> None:
    state = tmp_path / "local.json"
    env: dict[str, str | None] = {"MODELRUN_LOCAL_STATE": str(state), **NO_CREDENTIALS, "AWS_ENDPOINT_URL": None}
    missing = cli("runs", "--local", env=env, stack=False)
    assert missing.exit_code == 2
    assert missing.stderr.strip() == (
        f"modelrun: the local stack isn't running (no {state}): start it with `modelrun local up` (in another terminal)"
    )

    state.write_text(json.dumps({"endpoint": "http://127.0.0.1:9", "stack": STACK}))
    dead = cli("runs", "--local", env=env, stack=False)
    assert dead.exit_code == 2 and "nothing answers at http://127.0.0.1:9" in dead.stderr

    live_state = {"endpoint": world.runtime.endpoint, "stack": STACK, "region": "us-east-1"}
    state.write_text(json.dumps(live_state | {"credentials": {"AWS_ACCESS_KEY_ID": "AKIA0000000000000000"}}))
    refused = cli("show", world.ids["succeeded"], "--local", "--json", env=env, stack=False)
    assert refused.exit_code == 2 and "InvalidClientTokenId" in refused.stderr  # IAM is on locally too
    state.write_text(json.dumps(live_state | {"credentials": world.runtime.operator_credentials}))
    live = cli("show", world.ids["succeeded"], "--local", "--json", env=env, stack=False)
    assert live.exit_code == 0, live.output
    assert json.loads(live.stdout)["status"] == "SUCCEEDED"


def test_local_up_writes_the_state_file_and_removes_it_when_stopped(
    world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`modelrun local up` around a stand-in for LocalRuntime (a second real one can't share this
    process with the module's): it writes the state file that --local reads, serves until SIGTERM,
    then removes the file."""
    state = tmp_path / "local.json"
    seen: dict[str, Any] = {}

    class StandIn:
        def __init__(self, *, stack_name: str, parameters: dict[str, str]) -> None:
            self.stack_name = stack_name
            self.endpoint = world.runtime.endpoint
            self.outputs = world.runtime.outputs
            self.github = world.runtime.github
            self.operator_credentials = world.runtime.operator_credentials

        def __enter__(self) -> StandIn:
            def stop_when_written() -> None:
                wait_for(state.exists, 10, "the state file")
                seen.update(json.loads(state.read_text()))
                os.kill(os.getpid(), signal.SIGTERM)  # as a service manager stops it

            threading.Thread(target=stop_when_written, daemon=True).start()
            return self

        def __exit__(self, *exc: object) -> None:
            seen["stopped"] = True

        def push_image(self, directory: Path, tag: str) -> str:
            return world.runtime.push_image(directory, tag)

    monkeypatch.setattr("modelrun_local.serve.LocalRuntime", StandIn)
    result = cli("local", "up", "--state-file", str(state), "--stack-name", STACK, stack=False)
    assert result.exit_code == 0, result.output
    assert f"Local stack {STACK} is up" in result.stdout and "Stopping the local stack" in result.stdout
    assert f"AWS endpoint   {world.runtime.endpoint}" in result.stdout
    assert seen["endpoint"] == world.runtime.endpoint and seen["stack"] == STACK and seen["stopped"]
    assert seen["image"].startswith(world.runtime.outputs["ModelRepositoryUri"] + "@sha256:")
    assert not state.exists(), "the state file goes with the stack"

    # --local finds the stack through such a file; a second `local up` refuses to start over it
    state.write_text(json.dumps({k: seen[k] for k in ("endpoint", "stack", "region", "credentials")}))
    listed = cli("runs", "--local", "--json", env={"MODELRUN_LOCAL_STATE": str(state)}, stack=False)
    assert listed.exit_code == 0 and len(json.loads(listed.stdout)) >= 9
    twice = cli("local", "up", "--state-file", str(state), stack=False)
    assert twice.exit_code == 2 and f"a local stack is already running at {world.runtime.endpoint}" in twice.stderr


# -- redrive of run requests: re-verified at their original send time ------------------------------
# At the end of the module: these need a quiet stack (no job running, nothing else calling GitHub),
# so they stop what still runs.


def dlq_depth(sqs: Any, url: str) -> int:
    attrs = sqs.get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    return int(attrs["ApproximateNumberOfMessages"]) + int(attrs["ApproximateNumberOfMessagesNotVisible"])


def quiet(world: World) -> None:
    """No job running, no message or report in flight: GitHub sees only what the test causes."""
    batch = boto3.client("batch")
    for record in world.table.scan():
        if record.job_id and not record.status.terminal:
            batch.terminate_job(jobId=record.job_id, reason="cancelled: a quiet stack for the redrive tests")
    wait_for(lambda: world.runtime.executor.active == 0, 20, "the jobs to stop")
    world.runtime.wait_until_idle(timeout=60)


def test_redrive_re_verifies_a_request_refused_while_github_was_down_at_its_original_send_time(
    world: World,
) -> None:
    sqs = boto3.client("sqs")
    dlq = world.runtime.outputs["RunRequestsDLQUrl"]
    github = world.runtime.github
    quiet(world)
    assert dlq_depth(sqs, dlq) == 0
    job = world.job(210, 8_000_211, actor="erin")
    request = world.unsigned(job, ["ok"])
    run_id = run_id_for(request)
    # A token valid when the message is sent whose validity (with the backend's 60 s of clock
    # skew) ends 5 s later: checked against the redrive's own send time it would be refused.
    sent = time.time()
    expires = sent + 5
    token = github.issuer.mint_like(job.token(world.queue_url), issued_at=expires - 60 - TOKEN_LIFETIME_S)

    before = len(github.requests)
    github.fail_next(5)  # GitHub is down for each of the 5 deliveries SQS makes (maxReceiveCount)
    send(with_identity(request, token), world.queue_url)
    # Not a rejection: GitHubUnavailable propagates, the message is retried and SQS moves it.
    wait_for(lambda: dlq_depth(sqs, dlq) == 1, 60, "SQS to move the request to the DLQ")
    injected = [r for r in github.requests[before:] if r.injected]
    assert [r.path for r in injected] == [f"/repos/{REPOSITORY}/actions/runs/8000211/attempts/1"] * 5
    assert world.record(run_id) is None  # nothing written while it could not be verified

    listing = cli("redrive", input="n\n")
    assert listing.exit_code == 0, listing.output
    assert "failed after 5 receives" in listing.stdout and "Nothing moved." in listing.stdout

    while time.time() < expires + 1:  # past the token's validity: only the original send time admits it
        time.sleep(0.1)
    moved = cli("redrive", "--queue", "run-requests", "--yes")
    assert moved.exit_code == 0, moved.output
    assert "Moved 1 message(s) back to modelrun-local-OperatorRequestsQueue-" in moved.stdout

    record = ended(world, run_id, "the redriven run", timeout=60)
    assert record.status is RunStatus.SUCCEEDED and record.exit_code == 0
    assert (record.triggered_by, record.workflow_attempt, record.environment) == ("erin", 1, "staging")
    assert dlq_depth(sqs, dlq) == 0


def test_a_redriven_request_whose_token_had_expired_at_its_original_send_is_refused_again(world: World) -> None:
    sqs = boto3.client("sqs")
    dlq = world.runtime.outputs["RunRequestsDLQUrl"]
    quiet(world)
    assert dlq_depth(sqs, dlq) == 0
    job = world.job(211, 8_000_212, actor="erin")
    request = world.unsigned(job, ["ok"])
    run_id = run_id_for(request)
    issued = time.time() - 1000  # expired 700 s before it is sent
    stale = world.runtime.github.issuer.mint_like(job.token(world.queue_url), issued_at=issued)
    body = with_identity(request, stale).model_dump_json()
    expired = "unverified: the OIDC token had expired when the message was sent"

    def rejected(*, keep: bool = False) -> dict[str, Any]:
        wait_for(lambda: dlq_depth(sqs, dlq) == 1, 30, "the rejected request in the DLQ")
        (received,) = sqs.receive_message(
            QueueUrl=dlq, MessageAttributeNames=["All"], AttributeNames=["All"], WaitTimeSeconds=1
        )["Messages"]
        message: dict[str, Any] = dict(received)
        if keep:  # visible again, for the redrive
            sqs.change_message_visibility(QueueUrl=dlq, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0)
        else:
            sqs.delete_message(QueueUrl=dlq, ReceiptHandle=message["ReceiptHandle"])
        assert message["Body"] == body  # as it came, token included
        return message

    def sent_between(message: dict[str, Any], start_ms: int, end_ms: int) -> str:
        """The send time the rejection recorded (the run-requests queue's SentTimestamp)."""
        value = str(message["MessageAttributes"]["sent_at"]["StringValue"])
        assert start_ms - 1000 <= int(value) <= end_ms + 1000, (value, start_ms, end_ms)
        return value

    # The workflow's role can send to the run-requests queue: a sent_at it claims is not believed.
    forged = str(int((issued + 10) * 1000))  # when the token was still valid
    start = int(time.time() * 1000)
    sqs.send_message(
        QueueUrl=world.queue_url,
        MessageBody=body,
        MessageAttributes={"sent_at": {"DataType": "Number", "StringValue": forged}},
    )
    claimed = rejected()
    assert claimed["MessageAttributes"]["reason"]["StringValue"] == expired
    assert sent_between(claimed, start, int(time.time() * 1000)) != forged

    start = int(time.time() * 1000)
    send(with_identity(request, stale), world.queue_url)
    first = rejected(keep=True)
    assert first["MessageAttributes"]["reason"]["StringValue"] == expired
    original_send = sent_between(first, start, int(time.time() * 1000))
    # redriven through the operator queue, where the original send time it carries is believed
    moved = cli("redrive", "--queue", "run-requests", "--yes")
    assert moved.exit_code == 0, moved.output
    assert expired in moved.stdout
    assert "Moved 1 message(s) back to modelrun-local-OperatorRequestsQueue-" in moved.stdout

    again = rejected()  # checked against its original send time: still expired then
    assert again["MessageAttributes"]["reason"]["StringValue"] == expired
    assert again["MessageAttributes"]["sent_at"]["StringValue"] == original_send
    assert world.record(run_id) is None
    assert dlq_depth(sqs, dlq) == 0
