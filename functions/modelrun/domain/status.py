"""Run statuses and the one rule about them: a run's status only moves forward.

Batch delivers state-change events at least once and in no guaranteed order, so every writer
compares progress before it writes. Progress is (attempt, rank): a Spot reclaim sends a retried
job back to RUNNABLE with a higher attempt, which is forward; a late RUNNING after SUCCEEDED is
not. Terminal statuses are final.
"""

from __future__ import annotations

from enum import StrEnum

# A job stopped on purpose (`modelrun cancel`) carries a reason starting so: Batch reports it as
# FAILED, the track function reads it as CANCELLED.
CANCEL_REASON_PREFIX = "cancelled"


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
