"""The workflow's enqueue command, fed real webhook payloads (tests/fixtures/webhooks, see PROVENANCE.md).

What it produces must be accepted, unchanged, by the submit handler's parser (``MESSAGE``).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws
from pydantic import ValidationError
from typer.testing import CliRunner

from modelrun.contracts import MESSAGE, CleanupRequest, RunRequest
from modelrun_cli.app import app
from modelrun_cli.enqueue import (
    MissingEnvironment,
    Skip,
    build_cleanup,
    build_request,
    send,
    summary_markdown,
)

WEBHOOKS = Path(__file__).parents[1] / "fixtures" / "webhooks"
IMAGE = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/modelrun-models@sha256:" + "ab" * 32
PR_HEAD_SHA = "ec26c3e57ca3a959ca5aad62de7213c562f8c821"  # pull_request.head.sha in the examples
DISPATCH_SHA = "0123456789abcdef0123456789abcdef01234567"


def payload(name: str) -> dict[str, Any]:
    event: dict[str, Any] = json.loads((WEBHOOKS / name).read_text())
    return event


def actions_env(repository: str, **extra: str) -> dict[str, str]:
    """The GitHub Actions environment of a workflow run in ``repository``."""
    env = {
        "GITHUB_ACTIONS": "true",
        "GITHUB_REPOSITORY": repository,
        "GITHUB_RUN_ID": "16011227436",
        "GITHUB_RUN_ATTEMPT": "2",
        "GITHUB_SERVER_URL": "https://github.com",
        "GITHUB_ACTOR": "Codertocat",
        "GITHUB_SHA": "f95f852bd8fca8fcc58a9a2d6c842781e32a215e",  # the PR's merge commit: not used
        "GITHUB_REF_NAME": "2/merge",
    }
    env.update(extra)
    return env


PR_ENV = actions_env("Codertocat/Hello-World")
DISPATCH_ENV = actions_env(
    "octo-org/octo-repo",
    GITHUB_SHA=DISPATCH_SHA,
    GITHUB_REF_NAME="feature/bigger-trees",
    GITHUB_ACTOR="octocat",
)


# --- build_request: pull_request -------------------------------------------------------------


@pytest.mark.parametrize("name", ["pull_request.opened.json", "pull_request.synchronize.json"])
def test_pull_request_builds_the_run_request(name: str) -> None:
    request = build_request("pull_request", payload(name), PR_ENV, image=IMAGE)

    assert request.schema_version == "1"
    assert request.kind == "run"
    assert request.event == "pull_request"
    assert request.repository == "Codertocat/Hello-World"
    assert request.pr_number == 2
    assert request.head_sha == PR_HEAD_SHA  # the PR head, not GITHUB_SHA (the merge commit)
    assert request.head_ref == "changes"
    assert request.base_ref == "master"
    assert request.image == IMAGE
    assert request.compute == "cpu"
    assert request.note is None
    assert request.command is None
    assert request.triggered_by == "Codertocat"
    assert request.workflow.run_id == 16011227436
    assert request.workflow.run_attempt == 2
    assert str(request.workflow.url) == (
        "https://github.com/Codertocat/Hello-World/actions/runs/16011227436/attempts/2"
    )


@pytest.mark.parametrize("name", ["pull_request.opened.json", "pull_request.synchronize.json"])
def test_the_message_json_is_accepted_unchanged_by_the_submit_parser(name: str) -> None:
    request = build_request("pull_request", payload(name), PR_ENV, image=IMAGE, compute="gpu", note="deeper")
    body = request.model_dump_json()

    parsed = MESSAGE.validate_json(body)

    assert isinstance(parsed, RunRequest)
    assert parsed == request
    assert parsed.compute == "gpu"
    assert parsed.note == "deeper"


def test_a_rerun_is_triggered_by_whoever_reran_it() -> None:
    env = {**PR_ENV, "GITHUB_TRIGGERING_ACTOR": "maintainer-1"}
    request = build_request("pull_request", payload("pull_request.synchronize.json"), env, image=IMAGE)
    assert request.triggered_by == "maintainer-1"


def test_a_fork_pull_request_is_skipped_with_the_reason() -> None:
    with pytest.raises(Skip, match=r"#2 comes from a fork \(octocat/Hello-World\).*no OIDC token"):
        build_request("pull_request", payload("pull_request.synchronize.from_fork.json"), PR_ENV, image=IMAGE)


def test_a_pull_request_from_a_deleted_fork_is_skipped() -> None:
    event = payload("pull_request.synchronize.from_fork.json")
    event["pull_request"]["head"]["repo"] = None
    with pytest.raises(Skip, match="deleted fork"):
        build_request("pull_request", event, PR_ENV, image=IMAGE)


def test_a_draft_pull_request_is_skipped_with_the_reason() -> None:
    event = payload("pull_request.converted_to_draft.json")
    assert event["pull_request"]["draft"] is True
    with pytest.raises(Skip, match=r"#2 is a draft\. Mark it ready for review"):
        build_request("pull_request", event, PR_ENV, image=IMAGE)


def test_a_closed_pull_request_does_not_start_a_run() -> None:
    with pytest.raises(Skip, match="closed"):
        build_request("pull_request", payload("pull_request.closed.json"), PR_ENV, image=IMAGE)


def test_other_events_do_not_start_runs() -> None:
    with pytest.raises(Skip, match="'push' events do not start model runs"):
        build_request("push", payload("workflow_dispatch.json"), DISPATCH_ENV, image=IMAGE)


# --- build_request: workflow_dispatch ---------------------------------------------------------


def test_workflow_dispatch_runs_the_dispatched_commit() -> None:
    request = build_request("workflow_dispatch", payload("workflow_dispatch.json"), DISPATCH_ENV, image=IMAGE)

    assert request.event == "workflow_dispatch"
    assert request.repository == "octo-org/octo-repo"
    assert request.pr_number is None
    assert request.head_sha == DISPATCH_SHA
    assert request.head_ref == "feature/bigger-trees"
    assert request.base_ref == "main"  # repository.default_branch
    assert request.compute == "cpu"
    assert request.note is None
    assert request.triggered_by == "octocat"  # sender.login
    assert MESSAGE.validate_json(request.model_dump_json()) == request


def test_workflow_dispatch_takes_compute_and_note_from_its_inputs() -> None:
    event = copy.deepcopy(payload("workflow_dispatch.json"))
    event["inputs"] = {"compute": "gpu", "note": "  try max_depth=8  "}

    request = build_request("workflow_dispatch", event, DISPATCH_ENV, image=IMAGE)
    assert (request.compute, request.note) == ("gpu", "try max_depth=8")

    # explicit arguments win over the inputs; a blank note is no note
    request = build_request("workflow_dispatch", event, DISPATCH_ENV, image=IMAGE, compute="cpu", note="")
    assert (request.compute, request.note) == ("cpu", None)


def test_workflow_dispatch_without_ref_name_uses_the_payload_ref() -> None:
    env = {k: v for k, v in DISPATCH_ENV.items() if k != "GITHUB_REF_NAME"}
    request = build_request("workflow_dispatch", payload("workflow_dispatch.json"), env, image=IMAGE)
    assert request.head_ref == "main"


# --- invalid input ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"image": "modelrun-models:latest"}, "image"),
        ({"image": IMAGE, "compute": "tpu"}, "compute"),
        ({"image": IMAGE, "note": "x" * 1001}, "note"),
    ],
)
def test_invalid_values_raise_validation_errors(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as error:
        build_request("pull_request", payload("pull_request.opened.json"), PR_ENV, **kwargs)
    assert error.value.errors()[0]["loc"] == (field,)


def test_a_missing_actions_environment_is_reported_by_name() -> None:
    env = {k: v for k, v in PR_ENV.items() if k != "GITHUB_RUN_ID"}
    with pytest.raises(MissingEnvironment, match="GITHUB_RUN_ID is not set"):
        build_request("pull_request", payload("pull_request.opened.json"), env, image=IMAGE)


# --- build_cleanup ----------------------------------------------------------------------------


def test_a_closed_pull_request_builds_the_cleanup_request() -> None:
    cleanup = build_cleanup(payload("pull_request.closed.json"), PR_ENV)

    assert cleanup.kind == "cleanup"
    assert cleanup.schema_version == "1"
    assert (cleanup.repository, cleanup.pr_number, cleanup.triggered_by) == (
        "Codertocat/Hello-World",
        2,
        "Codertocat",
    )
    assert isinstance(MESSAGE.validate_json(cleanup.model_dump_json()), CleanupRequest)


def test_cleanup_skips_forks_and_events_without_a_pull_request() -> None:
    with pytest.raises(Skip, match="fork"):
        build_cleanup(payload("pull_request.synchronize.from_fork.json"), PR_ENV)
    with pytest.raises(Skip, match="no pull request"):
        build_cleanup(payload("workflow_dispatch.json"), DISPATCH_ENV)


# --- summary ----------------------------------------------------------------------------------


def test_the_summary_says_what_was_queued_and_where_results_appear() -> None:
    request = build_request("pull_request", payload("pull_request.opened.json"), PR_ENV, image=IMAGE, note="a | b\n<c>")
    summary = summary_markdown(request, "msg-1")

    assert "model run queued" in summary
    assert "`ec26c3e`" in summary
    assert "comment on pull request #2" in summary
    assert "`msg-1`" in summary
    assert "| Note | a \\| b &lt;c&gt; |" in summary  # user text cannot break the table
    dispatch = build_request("workflow_dispatch", payload("workflow_dispatch.json"), DISPATCH_ENV, image=IMAGE)
    assert "No pull request" in summary_markdown(dispatch, "msg-2")


# --- send, against moto's SQS -----------------------------------------------------------------


@pytest.fixture
def sqs(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "eu-west-1",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    with mock_aws():
        yield boto3.client("sqs", region_name="eu-west-1")


def receive_all(sqs: Any, queue_url: str) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = sqs.receive_message(
        QueueUrl=queue_url, MaxNumberOfMessages=10, AttributeNames=["All"]
    ).get("Messages", [])
    return messages


def test_send_puts_exactly_one_message_on_the_queue(sqs: Any) -> None:
    queue_url = sqs.create_queue(QueueName="modelrun-run-requests")["QueueUrl"]
    request = build_request("pull_request", payload("pull_request.synchronize.json"), PR_ENV, image=IMAGE)

    message_id = send(request, queue_url)  # its own client, region taken from the queue URL

    messages = receive_all(sqs, queue_url)
    assert len(messages) == 1
    assert messages[0]["MessageId"] == message_id
    assert messages[0]["Body"] == request.model_dump_json()
    assert MESSAGE.validate_json(messages[0]["Body"]) == request


def test_send_to_a_fifo_queue_groups_by_pull_request_and_dedupes_by_workflow_attempt(sqs: Any) -> None:
    queue_url = sqs.create_queue(QueueName="modelrun-run-requests.fifo", Attributes={"FifoQueue": "true"})["QueueUrl"]
    request = build_request("pull_request", payload("pull_request.synchronize.json"), PR_ENV, image=IMAGE)

    send(request, queue_url, sqs)
    send(request, queue_url, sqs)  # a retried step: deduplicated

    messages = receive_all(sqs, queue_url)
    assert len(messages) == 1
    assert messages[0]["Attributes"]["MessageGroupId"] == "Codertocat/Hello-World#2"


# --- the CLI ----------------------------------------------------------------------------------

runner = CliRunner()


def cli_env(env: dict[str, str], event_file: Path, event_name: str, tmp_path: Path) -> dict[str, str | None]:
    """The CLI's environment: the given one, whatever the test process runs in (even GitHub Actions)."""
    return {
        "GITHUB_TRIGGERING_ACTOR": None,
        "MODELRUN_QUEUE_URL": None,
        **env,
        "GITHUB_EVENT_PATH": str(event_file),
        "GITHUB_EVENT_NAME": event_name,
        "GITHUB_STEP_SUMMARY": str(tmp_path / "summary.md"),
    }


def test_cli_dry_run_prints_the_message_the_submit_parser_accepts(tmp_path: Path) -> None:
    event_file = WEBHOOKS / "pull_request.synchronize.json"
    result = runner.invoke(
        app,
        ["enqueue", "--image", IMAGE, "--compute", "gpu", "--note", "", "--dry-run"],
        env=cli_env(PR_ENV, event_file, "pull_request", tmp_path),
    )

    assert result.exit_code == 0, result.output
    parsed = MESSAGE.validate_json(result.stdout)
    expected = build_request("pull_request", payload(event_file.name), PR_ENV, image=IMAGE, compute="gpu")
    assert parsed == expected


def test_cli_dry_run_of_a_cleanup(tmp_path: Path) -> None:
    result = runner.invoke(
        app,
        ["enqueue", "--cleanup", "--dry-run"],
        env=cli_env(PR_ENV, WEBHOOKS / "pull_request.closed.json", "pull_request", tmp_path),
    )
    assert result.exit_code == 0, result.output
    assert MESSAGE.validate_json(result.stdout) == build_cleanup(payload("pull_request.closed.json"), PR_ENV)


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("pull_request.converted_to_draft.json", "is a draft"),
        ("pull_request.synchronize.from_fork.json", "fork"),
    ],
)
def test_cli_skips_with_the_message_and_exit_code_0(name: str, reason: str, tmp_path: Path) -> None:
    result = runner.invoke(
        app,
        ["enqueue", "--image", IMAGE, "--queue-url", "https://sqs.eu-west-1.amazonaws.com/1/never-used"],
        env=cli_env(PR_ENV, WEBHOOKS / name, "pull_request", tmp_path),
    )

    assert result.exit_code == 0, result.output
    assert reason in result.stdout
    assert "::notice title=modelrun::Skipped" in result.stdout
    summary = (tmp_path / "summary.md").read_text()
    assert summary.startswith("### modelrun: no run") and reason in summary


def test_cli_rejects_an_image_not_pinned_by_digest(tmp_path: Path) -> None:
    result = runner.invoke(
        app,
        ["enqueue", "--image", "modelrun-models:latest", "--dry-run"],
        env=cli_env(PR_ENV, WEBHOOKS / "pull_request.opened.json", "pull_request", tmp_path),
    )

    assert result.exit_code == 1
    assert "invalid run request, nothing sent" in result.stderr
    assert "must be an image URI pinned by digest" in result.stderr


def test_cli_sends_one_message_and_writes_the_step_summary(sqs: Any, tmp_path: Path) -> None:
    queue_url = sqs.create_queue(QueueName="modelrun-run-requests")["QueueUrl"]
    event_file = tmp_path / "event.json"
    event = payload("workflow_dispatch.json")
    event["inputs"] = {"compute": "gpu", "note": "bigger trees"}
    event_file.write_text(json.dumps(event))

    result = runner.invoke(
        app,
        ["enqueue", "--image", IMAGE, "--note", "bigger trees"],
        env={
            **cli_env(DISPATCH_ENV, event_file, "workflow_dispatch", tmp_path),
            "MODELRUN_QUEUE_URL": queue_url,
        },
    )

    assert result.exit_code == 0, result.output
    messages = receive_all(sqs, queue_url)
    assert len(messages) == 1
    request = MESSAGE.validate_json(messages[0]["Body"])
    assert isinstance(request, RunRequest)
    assert (request.compute, request.note, request.head_sha) == ("gpu", "bigger trees", DISPATCH_SHA)
    assert messages[0]["MessageId"] in result.stdout
    summary = (tmp_path / "summary.md").read_text()
    assert summary.startswith("### modelrun: model run queued")
    assert messages[0]["MessageId"] in summary


def test_cli_without_a_queue_url_sends_nothing(tmp_path: Path) -> None:
    env = cli_env(PR_ENV, WEBHOOKS / "pull_request.opened.json", "pull_request", tmp_path)
    env["MODELRUN_QUEUE_URL"] = ""
    result = runner.invoke(app, ["enqueue", "--image", IMAGE], env=env)
    assert result.exit_code == 2
    assert "MODELRUN_QUEUE_URL" in result.output


# --- the submit handler's record handler accepts the CLI's output as it is ----------------------


def test_the_submit_handler_accepts_what_the_cli_prints(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

    from modelrun import submission
    from submit import app as submit_app

    submitted: list[object] = []
    rejected: list[str] = []
    monkeypatch.setattr(submission, "submit", submitted.append)
    monkeypatch.setattr(submit_app, "reject", lambda record, reason: rejected.append(reason))
    result = runner.invoke(
        app,
        ["enqueue", "--image", IMAGE, "--dry-run"],
        env=cli_env(PR_ENV, WEBHOOKS / "pull_request.opened.json", "pull_request", tmp_path),
    )
    assert result.exit_code == 0, result.output

    submit_app.record_handler(SQSRecord({"messageId": "m-1", "body": result.stdout.strip()}))

    assert rejected == []
    assert submitted == [build_request("pull_request", payload("pull_request.opened.json"), PR_ENV, image=IMAGE)]


def test_the_submit_handler_accepts_the_cleanup_request(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

    from modelrun import submission
    from submit import app as submit_app

    cleaned: list[object] = []
    monkeypatch.setattr(submission, "cleanup", cleaned.append)
    monkeypatch.setattr(submit_app, "reject", lambda record, reason: pytest.fail(reason))
    result = runner.invoke(
        app,
        ["enqueue", "--cleanup", "--dry-run"],
        env=cli_env(PR_ENV, WEBHOOKS / "pull_request.closed.json", "pull_request", tmp_path),
    )
    assert result.exit_code == 0, result.output

    submit_app.record_handler(SQSRecord({"messageId": "m-2", "body": result.stdout.strip()}))

    assert cleaned == [build_cleanup(payload("pull_request.closed.json"), PR_ENV)]
