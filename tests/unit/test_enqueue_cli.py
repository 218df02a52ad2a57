"""The enqueue command end to end: sending to SQS (moto), the CLI's options and exit codes, and the
submit handler's record handler accepting what the CLI sends, as it is."""

from __future__ import annotations

import dataclasses
import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws
from typer.testing import CliRunner

from modelrun.contracts import MESSAGE, RunRequest
from modelrun_cli.app import app
from modelrun_cli.enqueue import (
    build_cleanup,
    build_request,
    send,
    with_identity,
)
from tests.unit.enqueue_helpers import (
    DISPATCH_ENV,
    DISPATCH_SHA,
    IMAGE,
    PR_ENV,
    TOKEN,
    TOKEN_URL,
    WEBHOOKS,
    FakeOpener,
    payload,
)

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
        "ACTIONS_ID_TOKEN_REQUEST_URL": None,
        "ACTIONS_ID_TOKEN_REQUEST_TOKEN": None,
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


def test_cli_sends_one_message_with_its_token_and_writes_the_step_summary(
    sqs: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    queue_url = sqs.create_queue(QueueName="modelrun-run-requests")["QueueUrl"]
    event_file = tmp_path / "event.json"
    event = payload("workflow_dispatch.json")
    event["inputs"] = {"compute": "gpu", "note": "bigger trees"}
    event_file.write_text(json.dumps(event))
    opener = FakeOpener()
    monkeypatch.setattr(urllib.request, "urlopen", opener)  # the job's token endpoint

    result = runner.invoke(
        app,
        ["enqueue", "--image", IMAGE, "--note", "bigger trees"],
        env={
            **cli_env(DISPATCH_ENV, event_file, "workflow_dispatch", tmp_path),
            "MODELRUN_QUEUE_URL": queue_url,
            "ACTIONS_ID_TOKEN_REQUEST_URL": TOKEN_URL,
            "ACTIONS_ID_TOKEN_REQUEST_TOKEN": "the-request-token",
        },
    )

    assert result.exit_code == 0, result.output
    # the token was asked for with the queue's URL as its audience
    assert urllib.parse.parse_qs(urllib.parse.urlsplit(opener.url).query)["audience"] == [queue_url]
    assert opener.requests[0][0].get_header("Authorization") == "Bearer the-request-token"
    messages = receive_all(sqs, queue_url)
    assert len(messages) == 1
    request = MESSAGE.validate_json(messages[0]["Body"])
    assert isinstance(request, RunRequest)
    assert (request.compute, request.note, request.head_sha) == ("gpu", "bigger trees", DISPATCH_SHA)
    assert request.identity is not None and request.identity.oidc_token == TOKEN
    assert messages[0]["MessageId"] in result.stdout
    assert TOKEN not in result.stdout  # the token is sent, never printed
    summary = (tmp_path / "summary.md").read_text()
    assert summary.startswith("### modelrun: model run queued")
    assert messages[0]["MessageId"] in summary
    assert "| Identity | OIDC token attached (verified by the backend) |" in summary and TOKEN not in summary


def test_cli_without_the_jobs_token_sends_nothing(sqs: Any, tmp_path: Path) -> None:
    queue_url = sqs.create_queue(QueueName="modelrun-run-requests")["QueueUrl"]
    result = runner.invoke(
        app,
        ["enqueue", "--image", IMAGE],
        env={
            **cli_env(PR_ENV, WEBHOOKS / "pull_request.opened.json", "pull_request", tmp_path),
            "MODELRUN_QUEUE_URL": queue_url,
        },
    )
    assert result.exit_code == 1
    assert "id-token: write" in result.stderr and "nothing sent" in result.stderr
    assert "::error title=modelrun::" in result.stdout
    assert receive_all(sqs, queue_url) == []


def test_cli_without_a_queue_url_sends_nothing(tmp_path: Path) -> None:
    env = cli_env(PR_ENV, WEBHOOKS / "pull_request.opened.json", "pull_request", tmp_path)
    env["MODELRUN_QUEUE_URL"] = ""
    result = runner.invoke(app, ["enqueue", "--image", IMAGE], env=env)
    assert result.exit_code == 2
    assert "MODELRUN_QUEUE_URL" in result.output


# --- the submit handler's record handler accepts the CLI's output as it is ----------------------

SENT_MS = 1741101620000


def handle(body: str, monkeypatch: pytest.MonkeyPatch, **patches: Any) -> list[str]:
    """Hand one SQS record of ``body`` to the submit handler, as the run-requests queue delivers
    it; returns the reasons it was rejected for. ``patches`` replace verification's functions."""
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

    from modelrun import verification
    from modelrun.config import SubmitSettings
    from tests.unit.fakes import FakeGate, environment

    variables = environment(
        RUNS_TABLE="runs",
        RESULTS_BUCKET="results",
        GITHUB_SECRET_ARN="arn:aws:secretsmanager:eu-west-1:1:secret:github",
        OPERATOR_QUEUE_ARN="arn:aws:sqs:eu-west-1:1:modelrun-operator-requests",
    )
    with monkeypatch.context() as init:  # the handler reads its settings at import (Lambda's init)
        for name, value in variables.items():
            init.setenv(name, value)
        from submit import app as submit_app
    rejected: list[str] = []
    record = {
        "messageId": "m-1",
        "receiptHandle": "h",
        "body": body,
        "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": str(SENT_MS), "SenderId": "AROAEXAMPLE"},
        "messageAttributes": {},
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:eu-west-1:1:modelrun-run-requests",
    }
    with monkeypatch.context() as patched:  # for this record only
        patched.setattr(submit_app, "SETTINGS", SubmitSettings.from_environ(variables))
        for name, value in patches.items():
            patched.setattr(verification, name, value)
        patched.setattr(submit_app, "reject", lambda record, reason: rejected.append(reason))
        patched.setattr(submit_app, "DEPS", dataclasses.replace(submit_app.DEPS, gate=FakeGate()))
        submit_app.record_handler(SQSRecord(record))
    return rejected


def test_the_submit_handler_accepts_what_the_cli_sends(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from modelrun import submission
    from tests.records import verified_from

    result = runner.invoke(
        app,
        ["enqueue", "--image", IMAGE, "--dry-run"],
        env=cli_env(PR_ENV, WEBHOOKS / "pull_request.opened.json", "pull_request", tmp_path),
    )
    assert result.exit_code == 0, result.output
    built = build_request("pull_request", payload("pull_request.opened.json"), PR_ENV, image=IMAGE)
    assert MESSAGE.validate_json(result.stdout) == built
    # What the CLI sends: the printed message with the job's token attached.
    sent = with_identity(MESSAGE.validate_json(result.stdout), TOKEN)

    verified = verified_from(built)
    checked: list[tuple[object, float]] = []
    submitted: list[tuple[object, object]] = []
    monkeypatch.setattr(submission, "submit", lambda deps, message, evidence: submitted.append((message, evidence)))

    def verify_run(deps: object, message: RunRequest, sent_at: float, receipt: object) -> object:
        checked.append((message, sent_at))
        return verified

    assert handle(sent.model_dump_json(), monkeypatch, verify_run=verify_run) == []
    assert checked == [(sent, SENT_MS / 1000)]  # verified against SQS's send time
    assert submitted == [(sent, verified)]


def test_the_submit_handler_refuses_the_cli_output_without_its_token(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from modelrun import submission

    monkeypatch.setattr(submission, "submit", lambda *a: pytest.fail("submitted without evidence"))
    result = runner.invoke(
        app,
        ["enqueue", "--image", IMAGE, "--dry-run"],
        env=cli_env(PR_ENV, WEBHOOKS / "pull_request.opened.json", "pull_request", tmp_path),
    )
    assert result.exit_code == 0, result.output
    (reason,) = handle(result.stdout.strip(), monkeypatch)
    assert reason.startswith("unverified: identity: the request carries no OIDC token")


def test_the_submit_handler_accepts_the_cleanup_request(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from modelrun import submission

    cleaned: list[object] = []
    checked: list[tuple[object, float]] = []
    monkeypatch.setattr(submission, "cleanup", lambda deps, message: cleaned.append(message))
    result = runner.invoke(
        app,
        ["enqueue", "--cleanup", "--dry-run"],
        env=cli_env(PR_ENV, WEBHOOKS / "pull_request.closed.json", "pull_request", tmp_path),
    )
    assert result.exit_code == 0, result.output
    sent = with_identity(MESSAGE.validate_json(result.stdout), TOKEN)
    assert sent.model_copy(update={"identity": None}) == build_cleanup(payload("pull_request.closed.json"), PR_ENV)

    rejected = handle(
        sent.model_dump_json(),
        monkeypatch,
        verify_cleanup=lambda deps, message, sent_at, receipt: checked.append((message, sent_at)),
    )

    assert rejected == []
    assert checked == [(sent, SENT_MS / 1000)]
    assert cleaned == [sent]
    # and without its token it is refused, nothing cleaned
    assert handle(result.stdout.strip(), monkeypatch)[0].startswith("unverified: identity:")
    assert cleaned == [sent]
