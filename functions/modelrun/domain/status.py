"""Run statuses and the one rule about them: a run's status only moves forward.

Batch delivers state-change events at least once and in no guaranteed order, so every writer
compares progress before it writes. Progress is (attempt, rank): a Spot reclaim sends a retried
job back to RUNNABLE with a higher attempt, which is forward; a late RUNNING after SUCCEEDED is
not. Terminal statuses are final.
"""

from __future__ import annotations

from enum import StrEnum

# A job modelrun stops on purpose is terminated with a reason that says why; Batch reports it as
# FAILED with that reason, and the track function reads the reason back (stopped_status): so the
# run ends as the stop meant, whichever of the stopping step and the track step writes first.
CANCEL_REASON_PREFIX = "cancelled"  # `modelrun cancel`
SUPERSEDED_REASON_PREFIX = "superseded by"  # the submit step, for a newer run of the PR
PR_CLOSED_REASON = "pull request closed"  # the cleanup request, when the PR closes


class RunStatus(StrEnum):
    QUEUED = "QUEUED"
    SUBMITTED = "SUBMITTED"
    RUNNABLE = "RUNNABLE"
    STARTING = "STARTING"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"
    SUPERSEDED = "SUPERSEDED"

    @property
    def rank(self) -> int:
        return _RANK[self]

    @property
    def terminal(self) -> bool:
        return self in TERMINAL

    @property
    def active(self) -> bool:
        return not self.terminal

    @property
    def queued(self) -> bool:
        """Waiting in a job queue (a place in the queue means something), not yet starting."""
        return self in IN_QUEUE


_RANK = {
    RunStatus.QUEUED: 0,
    RunStatus.SUBMITTED: 1,
    RunStatus.RUNNABLE: 2,
    RunStatus.STARTING: 3,
    RunStatus.RUNNING: 4,
    RunStatus.SUCCEEDED: 9,
    RunStatus.FAILED: 9,
    RunStatus.CANCELLED: 9,
    RunStatus.SUPERSEDED: 9,
}
TERMINAL = frozenset({RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELLED, RunStatus.SUPERSEDED})
IN_QUEUE = frozenset({RunStatus.QUEUED, RunStatus.SUBMITTED, RunStatus.RUNNABLE})

# Batch's own job statuses, as they appear in "Batch Job State Change" events.
_FROM_BATCH = {
    "SUBMITTED": RunStatus.SUBMITTED,
    "PENDING": RunStatus.SUBMITTED,
    "RUNNABLE": RunStatus.RUNNABLE,
    "STARTING": RunStatus.STARTING,
    "RUNNING": RunStatus.RUNNING,
    "SUCCEEDED": RunStatus.SUCCEEDED,
    "FAILED": RunStatus.FAILED,
}


BATCH_STATUSES = frozenset(_FROM_BATCH)


def from_batch(batch_status: str) -> RunStatus:
    try:
        return _FROM_BATCH[batch_status]
    except KeyError:
        raise ValueError(f"unknown Batch job status {batch_status!r}") from None


def progress(status: RunStatus, attempt: int) -> tuple[int, int]:
    """A sortable measure of how far a run has got; terminal beats any attempt."""
    if status.terminal:
        return (1_000, status.rank)
    return (attempt, status.rank)


def moves_forward(current: RunStatus, current_attempt: int, new: RunStatus, new_attempt: int) -> bool:
    if current.terminal:
        return False
    return progress(new, new_attempt) > progress(current, current_attempt)


def stopped_status(reason: str | None) -> RunStatus | None:
    """The status a job's end means when modelrun stopped it on purpose (its terminate reason),
    else None: the job failed on its own."""
    text = reason or ""
    if text.startswith(SUPERSEDED_REASON_PREFIX):
        return RunStatus.SUPERSEDED
    if text.startswith((CANCEL_REASON_PREFIX, PR_CLOSED_REASON)):
        return RunStatus.CANCELLED
    return None


def stopped_by_submit_step(reason: str | None) -> bool:
    """Stopped by the submit function (superseded, or its PR closed): that step ends the run's
    check run and comment itself, and no report runs for it (no results, nobody to alert)."""
    text = reason or ""
    return text.startswith((SUPERSEDED_REASON_PREFIX, PR_CLOSED_REASON))


def status_of_event(batch_status: str, reason: str | None) -> RunStatus:
    """A Batch event's status as the run's: a FAILED job that modelrun stopped ends as the stop meant."""
    status = from_batch(batch_status)
    if status is RunStatus.FAILED:
        return stopped_status(reason) or status
    return status
