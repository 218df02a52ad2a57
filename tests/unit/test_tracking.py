"""The track path (modelrun.tracking) on in-memory fakes, fed AWS's documented Batch event:
statuses only move forward, a terminal event starts one report per run attempt however often it
comes, a cancellation reads as CANCELLED, events of jobs that are not the run's change nothing,
and a write that lost a race is decided again on fresh data."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from modelrun import tracking
from modelrun.domain.naming import execution_name
from modelrun.domain.run import RunRecord
from modelrun.domain.status import CANCEL_REASON_PREFIX, RunStatus
from modelrun.errors import StaleWrite
from modelrun.events import BatchJobStateChange, JobDetail
from tests.records import stored_record
from tests.unit.fakes import FakeGitHub, FakeReports, FakeRuns, track_deps

EVENT = Path(__file__).resolve().parents[1] / "fixtures" / "batch" / "job-state-change.json"
JOB_ID = "0f3c2b1a-9d8e-4f7a-b6c5-d4e3f2a1b0c9"
STARTED, STOPPED = 1741101700000, 1741102000000


def detail(status: str, **changes: Any) -> JobDetail:
    """The documented event's detail, for our run's job, at ``status``."""
    event: dict[str, Any] = json.loads(EVENT.read_text())
    event["detail"] |= {"jobName": RECORD.run_id, "status": status, **changes}
    if status in ("RUNNING", "SUCCEEDED", "FAILED"):
        event["detail"].setdefault("startedAt", STARTED)
        event["detail"]["container"] |= {"logStreamName": "modelrun/default/abc"}
    if status in ("SUCCEEDED", "FAILED"):
        event["detail"].setdefault("stoppedAt", STOPPED)
        event["detail"]["container"] |= {"exitCode": 0 if status == "SUCCEEDED" else 1}
        event["detail"].setdefault(
            "attempts", [{"startedAt": STARTED, "stoppedAt": STOPPED, "container": {"exitCode": 0}}]
        )
    return BatchJobStateChange.model_validate(event).detail


RECORD = stored_record(RunStatus.SUBMITTED, job_id=JOB_ID, report=None, started_at=None, stopped_at=None)


class World:
    def __init__(self, record: RunRecord = RECORD, uses_app: bool = True) -> None:
        self.runs, self.github, self.reports = FakeRuns(record), FakeGitHub(uses_app), FakeReports()
        self.deps = track_deps(self.runs, self.github, self.reports)

    def track(self, status: str, **changes: Any) -> str:
        return tracking.track(self.deps, detail(status, **changes))

    @property
    def record(self) -> RunRecord:
        stored = self.runs.get(RECORD.run_id)
        assert stored is not None
        return stored


def test_running_moves_the_run_on_with_its_log_link_and_shows_it_in_the_check_run() -> None:
    world = World()
    assert world.track("RUNNING") == "advanced"
    assert world.record.status is RunStatus.RUNNING and world.record.log_stream == "modelrun/default/abc"
    assert world.record.log_url is not None and world.record.log_url.startswith("https://us-east-1.console.aws")
    assert world.record.started_at == "2025-03-04T15:21:40.000Z"
    assert world.github.calls == ["create_check_run"] and world.reports.executions == {}


def test_a_terminal_event_starts_one_report_however_often_it_comes() -> None:
    world = World()
    assert world.track("SUCCEEDED") == "advanced"
    assert world.track("SUCCEEDED") == "duplicate"  # a repeat (or a retry after a crash) starts it again...
    assert world.reports.starts == 2
    assert world.reports.executions == {  # ... and Step Functions keeps one execution of that name
        execution_name(RECORD.run_id): {"run_id": RECORD.run_id, "status": "SUCCEEDED", "attempt": 1}
    }
    assert world.record.status is RunStatus.SUCCEEDED and world.record.exit_code == 0
    assert world.github.calls == []  # the report writes the final state


def test_a_late_event_changes_nothing() -> None:
    world = World()
    world.track("SUCCEEDED")
    assert world.track("RUNNING") == "stale"
    assert world.record.status is RunStatus.SUCCEEDED


def test_a_job_stopped_on_purpose_is_cancelled_not_failed() -> None:
    world = World()
    world.track("FAILED", statusReason=f"{CANCEL_REASON_PREFIX} by octocat via modelrun CLI")
    assert world.record.status is RunStatus.CANCELLED


def test_a_failure_keeps_its_reason() -> None:
    world = World()
    world.track("FAILED", statusReason="Essential container in task exited")
    assert (
        world.record.status is RunStatus.FAILED and world.record.status_reason == "Essential container in task exited"
    )


@pytest.mark.parametrize(
    "changes",
    [
        {"jobId": "another-job"},  # a job of the run's name that is not its job
        {"jobQueue": "arn:aws:batch:us-east-1:999988887777:job-queue/someone-elses"},
        {"jobName": "no-such-run"},
    ],
)
def test_events_of_jobs_that_are_not_the_runs_are_ignored(changes: dict[str, Any]) -> None:
    world = World()
    assert world.track("RUNNING", **changes) == "ignored"
    assert world.record == RECORD and world.github.calls == []


def test_runnable_again_after_a_lost_attempt_is_shown() -> None:
    world = World(RECORD.model_copy(update={"status": RunStatus.RUNNING}))
    lost = [{"startedAt": STARTED, "stoppedAt": STOPPED, "statusReason": "Host EC2 (instance i-1) terminated."}]
    assert world.track("RUNNABLE", attempts=lost) == "advanced"
    assert world.record.status is RunStatus.RUNNABLE and world.record.batch_attempt == 1
    assert world.record.attempts is not None
    assert world.record.attempts[0].reason == "Host EC2 (instance i-1) terminated."
    assert world.github.calls == ["create_check_run"]


def test_a_write_that_lost_a_race_is_decided_again() -> None:
    world = World()
    world.runs.stale_updates = 1
    assert world.track("RUNNING") == "advanced"
    world.runs.stale_updates = 5
    with pytest.raises(StaleWrite):  # always moved on by someone else: the message is retried
        world.track("SUCCEEDED")


def test_on_a_token_running_is_shown_in_the_comment() -> None:
    world = World(uses_app=False)
    world.track("RUNNING")
    assert world.github.calls == ["create_comment"]


@pytest.mark.parametrize(
    ("reason", "status"),
    [("superseded by 1a2b3c4d", RunStatus.SUPERSEDED), ("pull request closed", RunStatus.CANCELLED)],
)
def test_a_job_the_submit_step_stopped_ends_as_it_meant_with_no_report(reason: str, status: RunStatus) -> None:
    """The job's end reaches the record before the stopping step's own write (issue 25)."""
    world = World(RECORD.model_copy(update={"status": RunStatus.RUNNING}))
    assert world.track("FAILED", statusReason=reason) == "advanced"
    assert (world.record.status, world.record.status_reason) == (status, reason)
    assert world.reports.starts == 0  # no report, no alert: the check run ends here instead
    assert world.github.calls == ["create_check_run"]
    assert world.track("FAILED", statusReason=reason) == "duplicate" and world.reports.starts == 0


def test_a_stopped_job_whose_record_the_submit_step_ended_first_changes_nothing() -> None:
    world = World(RECORD.model_copy(update={"status": RunStatus.SUPERSEDED, "status_reason": "superseded by x"}))
    assert world.track("FAILED", statusReason="superseded by x") == "duplicate"
    assert world.record.status is RunStatus.SUPERSEDED and world.reports.starts == 0


def test_starting_costs_no_github_request() -> None:
    world = World()
    assert world.track("STARTING") == "advanced"
    assert world.record.status is RunStatus.STARTING and world.github.calls == []
