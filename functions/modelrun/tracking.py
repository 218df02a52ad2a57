"""The track path: Batch state-change events move a run's status forward.

Duplicates and late events (a RUNNING after SUCCEEDED) change nothing and cost no GitHub call.
A terminal event starts the report state machine under a name derived from the run id, so any
number of duplicate events start one execution per run attempt.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools import Logger

from modelrun import checks
from modelrun.adapters.aws import StepFunctionsReports, log_url
from modelrun.config import TrackSettings
from modelrun.domain import naming
from modelrun.domain.run import Attempt, RunRecord
from modelrun.domain.status import RunStatus, moves_forward, status_of_event, stopped_by_submit_step
from modelrun.errors import StaleWrite
from modelrun.events import JobDetail
from modelrun.ports import ReportStarter
from modelrun.wiring import RecordsAndGitHub, records_and_github

logger = Logger(child=True)


@dataclass(frozen=True)
class TrackDeps(RecordsAndGitHub[TrackSettings]):
    """What the track path works with, made at the handler's cold start."""

    reports: ReportStarter

    @classmethod
    def of(cls, s: TrackSettings) -> TrackDeps:
        return cls(s, *records_and_github(s), StepFunctionsReports(s.report_state_machine_arn))


def _iso(epoch_ms: int | None) -> str | None:
    if not epoch_ms:
        return None
    return datetime.fromtimestamp(epoch_ms / 1000, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def attempts_of(detail: JobDetail) -> list[Attempt]:
    """Batch's finished attempts (a Spot reclaim ends one), as the run record keeps them."""
    out = []
    for attempt in detail.attempts:
        container = attempt.container
        out.append(
            Attempt(
                started_at=_iso(attempt.started_at),
                stopped_at=_iso(attempt.stopped_at),
                reason=attempt.status_reason or (container.reason if container else None),
                log_stream=container.log_stream_name if container else None,
                exit_code=container.exit_code if container else None,
            )
        )
    return out


def changes_for(region: str, record: RunRecord, detail: JobDetail, status: RunStatus) -> dict[str, Any]:
    changes: dict[str, Any] = {"status": status, "batch_attempt": detail.attempt}
    if detail.attempts:
        changes["attempts"] = attempts_of(detail)
    if record.job_id is None:
        changes["job_id"] = detail.job_id
    stream = detail.container.log_stream_name if detail.container else None
    if stream:
        changes["log_stream"] = stream
        changes["log_url"] = log_url(region, stream)
    if status in (RunStatus.RUNNING, RunStatus.SUCCEEDED, RunStatus.FAILED) and detail.started_at:
        changes["started_at"] = _iso(detail.started_at)
    if status.terminal:
        changes["stopped_at"] = _iso(detail.stopped_at)
        changes["status_reason"] = detail.status_reason or (detail.container.reason if detail.container else None)
        if detail.container and detail.container.exit_code is not None:
            changes["exit_code"] = detail.container.exit_code
    return changes


def _queue_name(queue: str) -> str:
    """A job queue's name, from its ARN (events) or its name (either may be stored)."""
    return queue.rsplit("/", 1)[-1]


def track(deps: TrackDeps, detail: JobDetail) -> str:
    """Apply one event; returns what happened (for logs and tests)."""
    # A job modelrun stopped on purpose ends as the stop meant (superseded, cancelled), even when
    # this event gets to the record before the stopping step does.
    new_status = status_of_event(detail.status, detail.status_reason)
    # Superseded or its PR closed: the submit step ends its check run and comment; no report.
    by_submit_step = new_status.terminal and stopped_by_submit_step(detail.status_reason)
    for _ in range(5):
        record = deps.runs.get(detail.job_name)
        if record is None or (record.job_id and record.job_id != detail.job_id):
            logger.info("event for a job that is not ours: ignored", extra={"job_id": detail.job_id})
            return "ignored"
        if _queue_name(detail.job_queue) != _queue_name(record.job_queue):
            # The EventBridge rule filters on our queues on AWS; a job of the same name in
            # another queue (another stack, a hand-made job) must not move this run.
            logger.warning(
                "event from a job queue that is not the run's: ignored",
                extra={"run_id": record.run_id, "job_id": detail.job_id, "job_queue": detail.job_queue},
            )
            return "ignored"
        if new_status.terminal and record.status is new_status:
            # A repeat of the terminal event (or a retry after a crash): make sure the report runs.
            if not by_submit_step:
                start_report(deps, record)
            return "duplicate"
        if not moves_forward(record.status, record.batch_attempt, new_status, detail.attempt):
            return "stale"
        try:
            record = deps.runs.update(record, **changes_for(deps.settings.region, record, detail, new_status))
        except StaleWrite:
            continue  # another event moved it first: decide again on fresh data
        logger.info("run status", extra={"run_id": record.run_id, "status": record.status.value})
        if by_submit_step:
            # Got here before the stopping step's own write: end the check run as it would
            # (ordered writes: whichever publishes last shows the same final state).
            checks.publish_quietly(deps.runs, deps.github, record)
        elif new_status.terminal:
            start_report(deps, record)
        elif new_status is RunStatus.RUNNING or (new_status is RunStatus.RUNNABLE and detail.attempt > 0):
            # (STARTING is not shown: a sixth GitHub request per run, over the five budgeted in
            # modelrun.checks, for a state RUNNING follows.)
            # RUNNABLE again after an attempt was lost (a Spot reclaim): say so, and that it waits.
            checks.publish_interim(deps.runs, deps.github, record)
        return "advanced"
    raise StaleWrite(detail.job_name)


def start_report(deps: TrackDeps, record: RunRecord) -> None:
    name = naming.execution_name(record.run_id)
    payload = {"run_id": record.run_id, "status": record.status.value, "attempt": record.workflow_attempt}
    if deps.reports.start(name, payload):
        logger.info("report started", extra={"run_id": record.run_id, "execution": name})
