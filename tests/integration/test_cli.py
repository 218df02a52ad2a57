"""The `modelrun` CLI's commands on runs, against the embedded local stack with real runs in it.

The module's stack (cli_stack.World) holds a run in each status: SUCCEEDED, FAILED, RUNNING (a job
that sleeps; stopped when the module ends), CANCELLED (by `modelrun cancel`), SUPERSEDED (two
requests for one PR) and QUEUED (records written directly: a real run leaves QUEUED in
milliseconds). Jobs run a tiny placeholder instead of the model. Then how the CLI finds its stack:
errors without credentials or in the wrong region, `--local` and `modelrun local up`. Dead
letters and their redrive are test_cli_redrive's.
"""

from __future__ import annotations

import json
import os
import re
import signal
import threading
from pathlib import Path
from typing import Any

import pytest

from modelrun.domain import naming
from modelrun.domain.run import RunRecord
from modelrun.domain.status import RunStatus
from modelrun_cli.runs import short_id
from tests.helpers import wait_for
from tests.integration.cli_stack import REPOSITORY, STACK, World, cli


@pytest.fixture(scope="module")
def world(world: World) -> World:
    """The conftest's fresh stack (overridden here by name) with a run in each status in it."""
    world.submit("succeeded", world.request(201, 8_000_201, ["ok"], actor="ana"))
    world.submit("failed", world.request(202, 8_000_202, ["fail"], actor="ben"))
    world.submit("running", world.request(203, 8_000_203, ["sleep", "60"], actor="ana"))
    world.submit("to-cancel", world.request(204, 8_000_204, ["sleep", "60"], actor="carl"))
    world.submit("superseded", world.request(205, 8_000_205, ["sleep", "60"], actor="ben", sha="a" * 40))
    world.wait_status("superseded", RunStatus.RUNNING)
    world.submit("superseding", world.request(205, 8_000_206, ["ok"], actor="ben", sha="b" * 40))
    world.queued("queued-cpu-1", 206, 8_000_207, "cpu", "2020-01-01T00:00:01.000Z")
    world.queued("queued-cpu-2", 207, 8_000_208, "cpu", "2020-01-01T00:00:02.000Z")
    world.queued("queued-gpu-1", 208, 8_000_209, "gpu", "2020-01-01T00:00:03.000Z")
    world.wait_status("superseded", RunStatus.SUPERSEDED)
    for name, status in [
        ("succeeded", RunStatus.SUCCEEDED),
        ("superseding", RunStatus.SUCCEEDED),
        ("failed", RunStatus.FAILED),
        ("running", RunStatus.RUNNING),
        ("to-cancel", RunStatus.RUNNING),
    ]:
        world.wait_status(name, status)
    # the report state machine stores the metrics summary and the report link
    wait_for(lambda: (world.record("succeeded") or RunRecord.model_construct()).report, what="the report")
    return world


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
    result = cli("runs", "--limit", "50")  # in a pipe: a header and one tab-separated line per run
    assert result.exit_code == 0, result.output
    out = result.stdout
    for status in RunStatus:
        if status not in (RunStatus.SUBMITTED, RunStatus.RUNNABLE, RunStatus.STARTING):
            assert status.value in out, status
    header, *rows = [line.split("\t") for line in out.splitlines()]
    assert header == ["run", "PR", "status", "queue", "took", "RMSE", "COD", "on", "author", "started"]
    assert all(len(row) == len(header) for row in rows), rows
    fields = {row[0]: dict(zip(header, row, strict=True)) for row in rows}
    lines = {name: fields[short_id(run_id)] for name, run_id in world.ids.items()}
    assert lines["queued-cpu-1"]["queue"] == "#1" and lines["queued-cpu-2"]["queue"] == "#2"
    assert lines["queued-gpu-1"]["queue"] == "#1"
    assert lines["queued-gpu-1"]["on"] == "GPU" and lines["succeeded"]["on"] == "CPU"
    assert lines["succeeded"]["RMSE"] == "16,100" and lines["succeeded"]["COD"] == "2.80"  # the comment's formats
    assert lines["running"]["PR"] == "#203" and lines["running"]["author"] == "ana"
    assert lines["running"]["took"].endswith("…")
    assert "waiting: 2 CPU, 1 GPU" in result.stderr and "waiting" not in out  # notes stay out of the pipe

    # On an 80-column terminal: as many columns as fit, every run id whole.
    terminal = cli("runs", "--limit", "50", env={"TTY_COMPATIBLE": "1", "COLUMNS": "80"})
    assert terminal.exit_code == 0, terminal.output
    shown = re.sub(r"\x1b\[[0-9;]*m", "", terminal.stdout).splitlines()  # bold stays on a terminal
    assert all(len(line.rstrip()) <= 80 for line in shown), shown
    for name, run_id in world.ids.items():
        line = next(line for line in shown if line.startswith(short_id(run_id) + " "))
        assert lines[name]["status"] in line and lines[name]["PR"][:15] in line, line
    assert "waiting: 2 CPU, 1 GPU" in terminal.stdout

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
    assert runs[world.ids["succeeded"]]["summary"]["metrics"]["rmse"] == pytest.approx(16099.75155)


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
    assert "exit code" in out and "RMSE" in out and "16,100" in out and "COD" in out and "pass" in out
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
    record = world.ended(second, "the rerun")
    assert record.status is RunStatus.FAILED and record.exit_code == 3  # the same command again
    assert record.triggered_by == "Dana-O-Neil" and record.workflow_attempt == 2
    assert record.request and record.request["command"] == original.request["command"]  # type: ignore[index]
    # the original's evidence, not the operator's say: same commit, PR, environment
    assert (record.head_sha, record.pr_number, record.environment) == (original.head_sha, 202, original.environment)

    again = cli("rerun", original.run_id, env={"USER": "zoe"})  # attempt 3: after the highest recorded
    assert again.exit_code == 0, again.output
    assert "as attempt 3 by modelrun-local-operator" in again.stdout  # the AWS caller; $USER is for --local


def test_rerun_is_a_new_attempt_through_the_operator_queue_and_succeeds(world: World) -> None:
    original = world.record("succeeded")
    assert original is not None and original.status is RunStatus.SUCCEEDED and original.workflow_attempt == 1
    result = cli("rerun", short_id(original.run_id), "--as", "ops-oncall")
    assert result.exit_code == 0, result.output
    assert f"Queued a rerun of {original.run_id} as attempt 2 by ops-oncall." in " ".join(result.stdout.split())
    assert "on the operator queue" in result.stdout and "modelrun runs --pr 201" in result.stdout

    second = naming.run_id(REPOSITORY, 201, original.head_ref, original.head_sha, 8_000_201, 2)
    record = world.ended(second, "the rerun", reported=True)
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
    assert record.results_uri.startswith(f"s3://{bucket}/runs/{REPOSITORY}/{second}/")
    assert record.results_uri != original.results_uri
    assert record.summary and record.summary["metrics"]["rmse"] == pytest.approx(16099.75155)
    assert world.status("succeeded") is RunStatus.SUCCEEDED  # the first attempt stands
    assert len(world.runtime.github.comments(REPOSITORY, 201)) == 1  # still one sticky comment


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


def stand_in_runtime(world: World, state: Path, seen: dict[str, Any]) -> type:
    """A stand-in for LocalRuntime (a second real one can't share this process with the module's)
    over the module's stack: once the state file is written, it records it and stops the server
    with SIGTERM, as a service manager does."""

    class StandIn:
        def __init__(self, *, stack_name: str, parameters: dict[str, str]) -> None:
            self.stack_name = stack_name
            self.endpoint = world.runtime.endpoint
            self.outputs = world.runtime.outputs
            self.github = world.runtime.github
            self.operator_credentials = world.runtime.operator_credentials

        def __enter__(self) -> StandIn:
            def stop_when_written() -> None:
                wait_for(state.exists, 60, "the state file")  # a loaded machine pushes the image slowly
                seen.update(json.loads(state.read_text()))
                os.kill(os.getpid(), signal.SIGTERM)  # as a service manager stops it

            threading.Thread(target=stop_when_written, daemon=True).start()
            return self

        def __exit__(self, *exc: object) -> None:
            seen["stopped"] = True

        def push_image(self, directory: Path, tag: str) -> str:
            # each test's `local up` pushes anew, and the stack's tags are immutable
            return world.runtime.push_image(directory, f"{tag}-{state.parent.name}")

    return StandIn


def test_local_up_writes_the_state_file_and_removes_it_when_stopped(
    world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`modelrun local up`: it writes the state file that --local reads, serves until SIGTERM,
    then removes the file."""
    state = tmp_path / "local.json"
    seen: dict[str, Any] = {}
    StandIn = stand_in_runtime(world, state, seen)

    monkeypatch.setattr("modelrun_local.serve.LocalRuntime", StandIn)
    result = cli("local", "up", "--state-file", str(state), "--stack-name", STACK, stack=False)
    assert result.exit_code == 0, result.output
    assert f"Local stack {STACK} is up" in result.stdout and "Stopping the local stack" in result.stdout
    assert f"AWS endpoint   {world.runtime.endpoint}" in result.stdout
    assert seen["endpoint"] == world.runtime.endpoint and seen["stack"] == STACK and seen["stopped"]
    assert seen["image"].startswith(world.runtime.repository_stack()["ImageRepositoryUri"] + "@sha256:")
    assert not state.exists(), "the state file goes with the stack"

    # --local finds the stack through such a file; a second `local up` refuses to start over it
    state.write_text(json.dumps({k: seen[k] for k in ("endpoint", "stack", "region", "credentials")}))
    listed = cli("runs", "--local", "--json", env={"MODELRUN_LOCAL_STATE": str(state)}, stack=False)
    assert listed.exit_code == 0 and len(json.loads(listed.stdout)) >= 9
    twice = cli("local", "up", "--state-file", str(state), stack=False)
    assert twice.exit_code == 2 and f"a local stack is already running at {world.runtime.endpoint}" in twice.stderr


def test_local_up_with_runs_makes_the_demos_runs_once_the_state_file_is_written(
    world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`local up --with-runs` runs make demo's flow (tests/e2e runs that flow itself) on the stack
    it serves, after writing the state file, and names the runs; it needs the sample model."""
    state = tmp_path / "local.json"
    seen: dict[str, Any] = {}
    made: list[str] = []

    def sample_runs(runtime: Any, image: str) -> list[str]:
        made.append(image)
        assert state.exists(), "commands can reach the stack while its sample runs go"
        return ["Sample runs (make demo's: main's baseline, then a PR's experiment):"]

    monkeypatch.setattr("modelrun_local.serve.LocalRuntime", stand_in_runtime(world, state, seen))
    monkeypatch.setattr("modelrun_local.serve.sample_runs", sample_runs)
    result = cli("local", "up", "--with-runs", "--state-file", str(state), "--stack-name", STACK, stack=False)
    assert result.exit_code == 0, result.output
    assert made == [seen["image"]] and "Sample runs (make demo's" in result.stdout

    refused = cli("local", "up", "--with-runs", "--no-push-model", "--state-file", str(state), stack=False)
    assert refused.exit_code == 2 and "--with-runs runs the sample model" in refused.stderr
