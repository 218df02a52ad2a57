"""What becomes of a message that failed (issue 25): a GitHub outage or rate limit while a run
request is verified is waited out (ChangeMessageVisibility, backoff, about 2.6 h), broken
credentials and other refusals are dead-lettered at once, and any message's last delivery is
dead-lettered with its reason, never silently by SQS."""

from __future__ import annotations

import dataclasses
import importlib
import json
import os
import time
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from modelrun.domain.redelivery import DeadLetter, Redelivery, Retry
from modelrun.errors import (
    GitHubBadCredentials,
    GitHubCredentialsBroken,
    GitHubNotFound,
    GitHubRateLimited,
    GitHubUnavailable,
    HeldBack,
    IssuerUnavailable,
)
from modelrun.sqs_batch import fail_or_dead_letter
from tests.unit.fakes import ENVIRONMENT, FakeDeadLetters, FakeDelays, FakeGate

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
RUNS_REQUESTS = Redelivery(max_receive_count=18)  # template.yaml's
TOKEN = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJyZXBvIn0.c2lnbmF0dXJl"


# -- the policy --------------------------------------------------------------------------------


def test_waits_double_from_five_seconds_to_fifteen_minutes() -> None:
    assert [RUNS_REQUESTS.wait_s(n) for n in range(1, 11)] == [5, 10, 20, 40, 80, 160, 320, 640, 900, 900]


def test_the_outage_budget_is_the_report_paths_about_two_and_a_half_hours() -> None:
    assert 2.5 * 3600 <= RUNS_REQUESTS.budget_s <= 2.7 * 3600


def test_never_sooner_than_github_asked_and_never_past_the_cap() -> None:
    assert RUNS_REQUESTS.wait_s(1, at_least_s=1) == 5  # Retry-After: 1 on the first failure
    assert RUNS_REQUESTS.wait_s(1, at_least_s=61.2) == 62  # a secondary limit's minute, rounded up
    assert RUNS_REQUESTS.wait_s(2, at_least_s=3600) == 900  # a primary reset an hour away: come back sooner
    assert Redelivery(18, max_wait_s=2).wait_s(9) == 2  # the local stack's cap


def test_a_transient_failure_waits_until_its_last_delivery_then_is_dead_lettered_with_the_cause() -> None:
    assert RUNS_REQUESTS.decide(1, "GitHubUnavailable: GitHub answered 502", transient=True) == Retry(5)
    assert RUNS_REQUESTS.decide(17, "x", transient=True) == Retry(900)
    last = RUNS_REQUESTS.decide(18, "GitHubUnavailable: GitHub answered 502", transient=True, age_s=9500)
    assert isinstance(last, DeadLetter)
    assert last.reason.startswith("GitHubUnavailable: GitHub answered 502: still failing after 18 deliveries")
    assert "2.6 h" in last.reason and "redrive" in last.reason


def test_an_unexpected_failure_is_retried_as_sqs_does_then_dead_lettered_with_it() -> None:
    for delivery in range(1, 5):
        assert RUNS_REQUESTS.decide(delivery, "RuntimeError: boom", transient=False) == Retry(None)
    assert RUNS_REQUESTS.decide(5, "RuntimeError: boom", transient=False) == DeadLetter(
        "failed on each of 5 deliveries, lastly: RuntimeError: boom"
    )
    # A queue that allows fewer deliveries (none here) is dead-lettered at its own last one.
    assert isinstance(Redelivery(3).decide(3, "x", transient=False), DeadLetter)


# -- applying it to a message -------------------------------------------------------------------


def record(delivery: int = 1, sent_ms: int | None = None, source: str = "modelrun-run-requests") -> SQSRecord:
    raw: dict[str, Any] = json.loads((FIXTURES / "sqs" / "receive-message.json").read_text())["Records"][0]
    raw["attributes"] |= {"ApproximateReceiveCount": str(delivery), "SentTimestamp": str(sent_ms or 1_741_101_620_000)}
    raw["eventSourceARN"] = f"arn:aws:sqs:us-east-1:111122223333:{source}"
    return SQSRecord(raw)


def test_a_held_back_message_is_delayed_and_failed_back_to_the_queue() -> None:
    delays, dead = FakeDelays(), FakeDeadLetters()
    error = GitHubRateLimited("secondary rate limit (429), retry after 30 s", 30)
    with pytest.raises(HeldBack, match=r"delivered again in 30 s \(delivery 2\): GitHubRateLimited") as held:
        fail_or_dead_letter(record(2), error, RUNS_REQUESTS, dead.dead_letter, delays, transient=True, at_least_s=30)
    assert held.value.__cause__ is error
    assert delays.delays == [(record().message_id, 30)] and dead.reasons == []


def test_a_last_delivery_is_dead_lettered_not_raised() -> None:
    delays, dead = FakeDelays(), FakeDeadLetters()
    sent = int((time.time() - 3 * 3600) * 1000)
    outage = GitHubUnavailable("GitHub answered 502")
    fail_or_dead_letter(record(18, sent), outage, RUNS_REQUESTS, dead.dead_letter, delays, transient=True)
    [(_, reason)] = dead.reasons
    assert "still failing after 18 deliveries over 3.0 h" in reason and delays.delays == []


# -- the submit handler ---------------------------------------------------------------------------

with mock.patch.dict(os.environ, ENVIRONMENT):  # the handler reads its settings at import
    submit_app = importlib.import_module("submit.app")


def handled(error: Exception, delivery: int = 1) -> tuple[list[tuple[str, int]], list[str], bool]:
    """The submit handler with verification raising ``error``: (delays, dead-letter reasons, raised)."""
    body = json.dumps({"schema_version": "1", "kind": "cleanup", "repository": "county-assessor/avm",
                       "pr_number": 42, "triggered_by": "octocat", "workflow": {"run_id": 1, "run_attempt": 1},
                       "identity": {"oidc_token": TOKEN}})  # fmt: skip
    raw = record(delivery)._data | {"body": body}
    delays, reasons = FakeDelays(), []
    with (
        mock.patch.object(submit_app, "DELAYS", delays),
        mock.patch.object(submit_app, "DEPS", dataclasses.replace(submit_app.DEPS, gate=FakeGate())),
        mock.patch.object(submit_app, "reject", side_effect=lambda r, reason: reasons.append(reason)),
        mock.patch.object(submit_app.verification, "verify_cleanup", side_effect=error),
        mock.patch.object(submit_app.submission, "cleanup", side_effect=AssertionError("accepted")),
    ):
        try:
            submit_app.record_handler(SQSRecord(raw))
        except Exception as raised:
            assert raised is error or (isinstance(raised, HeldBack) and raised.__cause__ is error)
            return delays.delays, reasons, True
    return delays.delays, reasons, False


@pytest.mark.parametrize(
    "error",
    [GitHubUnavailable("GitHub answered 502"), GitHubRateLimited("rate", 1), IssuerUnavailable("keys")],
)
def test_an_outage_while_verifying_holds_the_request_back(error: Exception) -> None:
    delays, reasons, raised = handled(error, delivery=3)
    assert raised and reasons == [] and [seconds for _, seconds in delays] == [20]


def test_broken_credentials_dead_letter_the_request_at_once() -> None:
    for error in (GitHubBadCredentials("GitHub answered 401"), GitHubCredentialsBroken("the secret is not JSON")):
        delays, reasons, raised = handled(error)
        assert not raised and delays == []
        assert reasons == [f"GitHub credentials broken, fix the secret and redrive: {error}"]


def test_another_refusal_by_github_dead_letters_the_request_at_once() -> None:
    _, reasons, raised = handled(GitHubNotFound("GitHub answered 404"))
    assert not raised and reasons == ["GitHub refused the verification lookup: GitHub answered 404"]


def test_an_unexpected_error_is_retried_then_dead_lettered_with_it() -> None:
    assert handled(RuntimeError("boom"), delivery=4) == ([], [], True)
    last = ["failed on each of 5 deliveries, lastly: RuntimeError: boom"]
    assert handled(RuntimeError("boom"), delivery=5) == ([], last, False)


# -- the track handler ------------------------------------------------------------------------------

with mock.patch.dict(os.environ, ENVIRONMENT):
    track_app = importlib.import_module("track.app")


def test_a_job_event_that_keeps_failing_is_dead_lettered_with_the_error_on_its_last_delivery() -> None:
    event = json.loads((FIXTURES / "batch" / "job-state-change.json").read_text())
    reasons: list[str] = []
    with (
        mock.patch.object(track_app, "reject", side_effect=lambda r, reason: reasons.append(reason)),
        mock.patch.object(track_app.tracking, "track", side_effect=RuntimeError("the runs table is unreachable")),
    ):
        for delivery in (4, 5):  # an unexpected failure: five deliveries
            raw = record(delivery, source="modelrun-job-events")._data | {"body": json.dumps(event)}
            try:
                track_app.record_handler(SQSRecord(raw))
            except RuntimeError:
                assert delivery == 4
    assert reasons == ["failed on each of 5 deliveries, lastly: RuntimeError: the runs table is unreachable"]
