"""The run status order, and the Batch event model it is read from: pure, no AWS."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from modelrun.domain.status import (
    TERMINAL,
    RunStatus,
    from_batch,
    moves_forward,
    status_of_event,
    stopped_by_submit_step,
    stopped_status,
)
from modelrun.events import BatchJobStateChange
from tests.unit.domain_helpers import FIXTURES

# -- status order -------------------------------------------------------------------------------
ORDER = [RunStatus.QUEUED, RunStatus.SUBMITTED, RunStatus.RUNNABLE, RunStatus.STARTING, RunStatus.RUNNING]


@pytest.mark.parametrize("i", range(len(ORDER) - 1))
def test_status_moves_forward_in_order(i: int) -> None:
    assert moves_forward(ORDER[i], 0, ORDER[i + 1], 0)
    assert not moves_forward(ORDER[i + 1], 0, ORDER[i], 0)


@pytest.mark.parametrize("status", ORDER)
def test_same_status_is_not_progress(status: RunStatus) -> None:
    assert not moves_forward(status, 0, status, 0)


@pytest.mark.parametrize("terminal", sorted(TERMINAL))
@pytest.mark.parametrize("new", list(RunStatus))
def test_terminal_is_final(terminal: RunStatus, new: RunStatus) -> None:
    assert terminal.terminal and not terminal.active
    for attempt in (0, 1, 5):
        assert not moves_forward(terminal, 0, new, attempt)


@pytest.mark.parametrize("active", ORDER)
@pytest.mark.parametrize("terminal", sorted(TERMINAL))
def test_any_active_status_can_end(active: RunStatus, terminal: RunStatus) -> None:
    assert moves_forward(active, 3, terminal, 0)


def test_retried_attempt_moves_forward() -> None:
    # A Spot reclaim: attempt 0 was RUNNING, Batch retries and attempt 1 goes back to RUNNABLE.
    assert moves_forward(RunStatus.RUNNING, 0, RunStatus.RUNNABLE, 1)
    assert moves_forward(RunStatus.RUNNABLE, 1, RunStatus.RUNNING, 1)
    # ... but a late event from the earlier attempt does not pull it back.
    assert not moves_forward(RunStatus.RUNNABLE, 1, RunStatus.RUNNING, 0)


def test_queued_is_the_statuses_before_a_host_is_found() -> None:
    # A place in the queue is shown only while Batch has not placed the job: from STARTING on a
    # host is being set up, and a terminal run waits for nothing.
    assert [s for s in RunStatus if s.queued] == [RunStatus.QUEUED, RunStatus.SUBMITTED, RunStatus.RUNNABLE]
    assert not any(s.queued and s.terminal for s in RunStatus)


def test_late_running_after_succeeded_is_stale() -> None:
    assert not moves_forward(RunStatus.SUCCEEDED, 0, RunStatus.RUNNING, 0)
    assert not moves_forward(RunStatus.SUCCEEDED, 0, RunStatus.RUNNING, 1)
    assert not moves_forward(RunStatus.FAILED, 0, RunStatus.SUCCEEDED, 0)


def test_from_batch_maps_every_batch_status() -> None:
    assert from_batch("PENDING") is RunStatus.SUBMITTED
    for status in ("SUBMITTED", "RUNNABLE", "STARTING", "RUNNING", "SUCCEEDED", "FAILED"):
        assert from_batch(status).value == status
    with pytest.raises(ValueError, match="unknown Batch job status"):
        from_batch("EXPLODED")


# -- the Batch event, as AWS documents it ---------------------------------------------------------
def batch_event() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / "batch" / "job-state-change.json").read_text())
    return data


def test_documented_batch_event_parses() -> None:
    event = BatchJobStateChange.model_validate(batch_event())
    assert event.detail_type == "Batch Job State Change"
    assert event.source == "aws.batch"
    assert event.detail.status == "RUNNABLE"
    assert event.detail.job_name == "avm-pr42-1a2b3c4d-9000002-1-abc123"
    assert event.detail.job_queue.endswith(":job-queue/modelrun-cpu")
    assert event.detail.attempts == []
    assert event.detail.attempt == 0


def test_batch_event_attempt_counts_finished_attempts() -> None:
    running = copy.deepcopy(batch_event())
    running["detail"] |= {
        "status": "RUNNING",
        "startedAt": 1741101700000,
        "container": {"logStreamName": "modelrun/default/abc", "futureField": {"x": 1}},
    }
    event = BatchJobStateChange.model_validate(running)
    assert event.detail.attempt == 0
    assert event.detail.container is not None and event.detail.container.log_stream_name == "modelrun/default/abc"

    attempt = {
        "container": {"exitCode": 137, "reason": "Host EC2 (instance i-0) terminated."},
        "startedAt": 1741101700000,
        "stoppedAt": 1741101800000,
        "statusReason": "Host EC2 terminated",
        "taskProperties": [],
    }
    retried = copy.deepcopy(batch_event())
    retried["detail"] |= {"status": "RUNNABLE", "attempts": [attempt]}
    assert BatchJobStateChange.model_validate(retried).detail.attempt == 1

    succeeded = copy.deepcopy(batch_event())
    second = attempt | {"container": {"exitCode": 0}}
    succeeded["detail"] |= {"status": "SUCCEEDED", "attempts": [attempt, second], "stoppedAt": 1741101900000}
    event = BatchJobStateChange.model_validate(succeeded)
    assert event.detail.attempt == 1
    assert event.detail.attempts[-1].container is not None and event.detail.attempts[-1].container.exit_code == 0


def test_batch_event_without_account_parses() -> None:
    # moto's emitter leaves out the envelope's account
    event = batch_event()
    del event["account"]
    assert BatchJobStateChange.model_validate(event).account is None


# -- why modelrun stopped a job (issue 25) -------------------------------------------------------


@pytest.mark.parametrize(
    ("reason", "status"),
    [
        ("superseded by 1a2b3c4d", RunStatus.SUPERSEDED),
        ("pull request closed", RunStatus.CANCELLED),
        ("cancelled by octocat via modelrun CLI", RunStatus.CANCELLED),
        ("Essential container in task exited", RunStatus.FAILED),
        (None, RunStatus.FAILED),
    ],
)
def test_a_failed_job_ends_as_the_stop_that_ended_it_meant(reason: str | None, status: RunStatus) -> None:
    assert status_of_event("FAILED", reason) is status


def test_only_a_failed_event_is_read_for_a_stop() -> None:
    assert status_of_event("RUNNING", "superseded by 1a2b3c4d") is RunStatus.RUNNING
    assert status_of_event("SUCCEEDED", "pull request closed") is RunStatus.SUCCEEDED


def test_only_the_submit_steps_stops_skip_the_report() -> None:
    assert stopped_by_submit_step("superseded by 1a2b3c4d") and stopped_by_submit_step("pull request closed")
    assert not stopped_by_submit_step("cancelled by octocat via modelrun CLI")  # `modelrun cancel`: reported
    assert not stopped_by_submit_step(None) and stopped_status("Essential container in task exited") is None


def test_an_event_of_a_status_batch_does_not_have_is_refused_by_the_model() -> None:
    event = json.loads((FIXTURES / "batch" / "job-state-change.json").read_text())
    event["detail"]["status"] = "UNKNOWN_STATUS"
    with pytest.raises(ValueError, match="'UNKNOWN_STATUS' is not a Batch job status"):
        BatchJobStateChange.model_validate(event)
