"""`modelrun redrive` against the embedded local stack: a dead-letter queue's messages, why they
are there, and moving them back; a run request moved back is verified again as of its original
send time. Each test starts from a quiet stack (no job running, nothing else calling GitHub), so
GitHub sees only what the test causes.
"""

from __future__ import annotations

import json
import time
from typing import Any

import boto3
import pytest

from modelrun.adapters.aws import RunsTable
from modelrun.domain.run import run_id_for
from modelrun.domain.status import RunStatus
from modelrun_cli.enqueue import send, with_identity
from modelrun_local.oidc_issuer import TOKEN_LIFETIME_S
from tests.helpers import wait_for
from tests.integration.cli_stack import REPOSITORY, World, cli


@pytest.fixture(scope="module")
def world(world: World) -> World:
    """The conftest's fresh stack (overridden here by name) once a run has gone through it: its
    functions hold a GitHub installation token, as on a stack in use, so an outage a test injects
    meets the calls the test is about (verifying the workflow run), not the token's first request."""
    run_id = world.submit("warm-up", world.request(200, 8_000_200, ["ok"], actor="ana"))
    world.ended(run_id, "the warm-up run", reported=True)
    return world


def dlq_depth(sqs: Any, url: str) -> int:
    attrs = sqs.get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    return int(attrs["ApproximateNumberOfMessages"]) + int(attrs["ApproximateNumberOfMessagesNotVisible"])


def quiet(world: World) -> None:
    """No job running, no message or report in flight: GitHub sees only what the test causes."""
    world.stop_jobs("cancelled: a quiet stack for the redrive tests")
    world.runtime.wait_until_idle(timeout=60)


def test_redrive_shows_reasons_and_moves_messages_back(world: World) -> None:
    quiet(world)
    sqs = boto3.client("sqs")
    dlq = world.runtime.outputs["RunRequestsDLQUrl"]
    bad = {"schema_version": "1", "kind": "run", "repository": REPOSITORY, "head_sha": "not-a-sha"}
    sqs.send_message(QueueUrl=world.queue_url, MessageBody=json.dumps(bad))

    def depth() -> int:
        return dlq_depth(sqs, dlq)

    wait_for(depth, what="the rejected request in the DLQ")
    listing = cli("runs", "--limit", "1")
    assert "1 message(s) in the run-requests DLQ: `modelrun redrive --queue run-requests`" in listing.stderr

    declined = cli("redrive", input="n\n")
    assert declined.exit_code == 0, declined.output
    assert "1 message(s) in the run-requests DLQ" in declined.stdout
    assert "invalid run request: run.head_sha" in declined.stdout and "Nothing moved." in declined.stdout
    assert depth() == 1
    visible = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["ApproximateNumberOfMessages"])["Attributes"]
    assert visible["ApproximateNumberOfMessages"] == "1", "declined messages are visible again"

    invocations = world.runtime.lambdas.invocations
    before = invocations.get("SubmitFunction", 0)  # the warm-up run's and the first rejection's
    moved = cli("redrive", "--queue", "run-requests", "--yes")
    assert moved.exit_code == 0, moved.output
    assert "invalid run request: run.head_sha" in moved.stdout
    # Back to the queue it came from (never the operator queue: issue 21), and the submit
    # function, which rejects it again (still malformed).
    assert "Moved 1 message(s) back to modelrun-local-RunRequestsQueue-" in moved.stdout
    wait_for(lambda: invocations.get("SubmitFunction", 0) > before and depth() == 1, what="redelivery")
    again = sqs.receive_message(QueueUrl=dlq, MessageAttributeNames=["All"], WaitTimeSeconds=1)["Messages"]
    assert json.loads(again[0]["Body"]) == bad
    sqs.delete_message(QueueUrl=dlq, ReceiptHandle=again[0]["ReceiptHandle"])

    empty = cli("redrive", "--queue", "job-events", "--yes")
    assert empty.exit_code == 0 and "The job-events DLQ is empty" in empty.stdout


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
    # GitHub is down for each of the 18 deliveries SQS makes (maxReceiveCount); by operation, as a
    # fresh environment's token exchange would take a "next request" fault.
    github.fail_next_of("actions/get-workflow-run-attempt", 18)
    send(with_identity(request, token), world.queue_url)
    # Not a rejection: the outage is waited out (each wait capped at 2 s here), and the last
    # delivery is dead-lettered with the reason once the retry budget is spent.
    wait_for(lambda: dlq_depth(sqs, dlq) == 1, 180, "the request in the DLQ after the retry budget")
    injected = [r for r in github.requests[before:] if r.injected]
    assert [r.path for r in injected] == [f"/repos/{REPOSITORY}/actions/runs/8000211/attempts/1"] * 18
    assert world.record(run_id) is None  # nothing written while it could not be verified

    listing = cli("redrive", input="n\n")
    assert listing.exit_code == 0, listing.output
    assert "GitHubUnavailable" in listing.stdout and "still failing after 18 deliveries" in listing.stdout
    assert "Nothing moved." in listing.stdout

    while time.time() < expires + 1:  # past the token's validity: only the original send time admits it
        time.sleep(0.1)
    moved = cli("redrive", "--queue", "run-requests", "--yes")
    assert moved.exit_code == 0, moved.output
    # Back to the run-requests queue: judged by when the submit function first received it.
    assert "Moved 1 message(s) back to modelrun-local-RunRequestsQueue-" in moved.stdout

    record = world.ended(run_id, "the redriven run", timeout=60)
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
        wait_for(lambda: dlq_depth(sqs, dlq) == 1, 60, "the rejected request in the DLQ")
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

    # The workflow's role can send to the run-requests queue: a sent_at it claims is not believed.
    forged = str(int((issued + 10) * 1000))  # when the token was still valid
    sqs.send_message(
        QueueUrl=world.queue_url,
        MessageBody=body,
        MessageAttributes={"sent_at": {"DataType": "Number", "StringValue": forged}},
    )
    first = rejected(keep=True)
    assert first["MessageAttributes"]["reason"]["StringValue"] == expired
    assert "sent_at" not in first["MessageAttributes"]  # the rejection carries no send time
    moved = cli("redrive", "--queue", "run-requests", "--yes")
    assert moved.exit_code == 0, moved.output
    assert expired in moved.stdout
    assert "Moved 1 message(s) back to modelrun-local-RunRequestsQueue-" in moved.stdout

    again = rejected()  # checked against when the submit function first received it: expired then
    assert again["MessageAttributes"]["reason"]["StringValue"] == expired
    assert world.record(run_id) is None
    assert dlq_depth(sqs, dlq) == 0


def test_a_rerun_sent_to_the_run_requests_queue_never_gains_operator_meaning(world: World) -> None:
    """Issue 21, attack 4: the workflow's role sends an operator's message (a rerun) to the
    run-requests queue; it is refused there, and a redrive returns it there, refused again:
    nothing is rerun, superseded or relabelled, and nothing reaches the operator queue."""
    sqs = boto3.client("sqs")
    dlq = world.runtime.outputs["RunRequestsDLQUrl"]
    operator_dlq = world.runtime.outputs["OperatorRequestsDLQUrl"]
    quiet(world)
    table = RunsTable(world.runtime.outputs["RunsTableName"])
    records = table.scan()
    target = records[0]  # an existing run: a rerun would run it again, with operator meaning
    rerun = {"schema_version": "1", "kind": "rerun", "run_id": target.run_id, "attempt": 2, "requested_by": "mallory"}
    sqs.send_message(QueueUrl=world.queue_url, MessageBody=json.dumps(rerun))
    wait_for(lambda: dlq_depth(sqs, dlq) == 1, 60, "the refused rerun in the run-requests DLQ")
    invocations = world.runtime.lambdas.invocations
    before = invocations.get("SubmitFunction", 0)
    moved = cli("redrive", "--queue", "run-requests", "--yes")
    assert moved.exit_code == 0, moved.output
    assert "Moved 1 message(s) back to modelrun-local-RunRequestsQueue-" in moved.stdout
    wait_for(lambda: invocations.get("SubmitFunction", 0) > before and dlq_depth(sqs, dlq) == 1, what="refused again")
    (again,) = sqs.receive_message(QueueUrl=dlq, MessageAttributeNames=["All"], WaitTimeSeconds=1)["Messages"]
    assert again["MessageAttributes"]["reason"]["StringValue"].startswith("invalid run request")
    sqs.delete_message(QueueUrl=dlq, ReceiptHandle=again["ReceiptHandle"])
    assert dlq_depth(sqs, operator_dlq) == 0
    assert {r.run_id: r.status for r in table.scan()} == {r.run_id: r.status for r in records}
