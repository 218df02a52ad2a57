"""Faults injected into a function's execution environments (``Lambdas.inject``): each is
called in the worker process before the handler loads, and patches what it breaks there."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any


def slow_runnable_ahead() -> None:
    """4 s in the submit step, after it read the PR's runs and before it writes the comment."""
    from modelrun.adapters.batch import BatchJobs

    original = BatchJobs.runnable_ahead

    def slow(self: BatchJobs, job_queue: str, own_job_id: str) -> int:
        ahead = original(self, job_queue, own_job_id)
        time.sleep(4)
        return ahead

    BatchJobs.runnable_ahead = slow  # type: ignore[method-assign]


def crash_submit() -> None:
    from modelrun import submission

    def crash(deps: Any, request: Any, verified: Any, *, rerun: bool = False) -> Any:
        raise RuntimeError("injected: the runs table is unreachable")

    submission.submit = crash


def crash_once_after_submit_job() -> None:
    """The submit function dies between SubmitJob and recording the job id, once (a marker file
    in FAULT_DIR says it happened: environments share nothing else)."""
    from modelrun.adapters.aws import RunsTable

    marker = Path(os.environ["FAULT_DIR"]) / "crashed"
    original = RunsTable.update

    def crash_once(self: RunsTable, before: Any, **changes: Any) -> Any:
        if changes.get("job_id") and not marker.exists():
            marker.write_text(before.run_id)
            raise RuntimeError("injected crash after SubmitJob")
        return original(self, before, **changes)

    RunsTable.update = crash_once  # type: ignore[method-assign]


def hold_after_terminate() -> None:
    """The submit function stops between terminating a job and writing the run's record (the
    supersede and cleanup steps' race): after TerminateJob it writes FAULT_DIR/terminated and
    waits for FAULT_DIR/go, so the test can move the record through the track function first."""
    from modelrun.adapters.batch import BatchJobs

    fault_dir = Path(os.environ["FAULT_DIR"])
    original = BatchJobs.terminate

    def terminate_and_hold(self: BatchJobs, job_id: str, reason: str) -> None:
        original(self, job_id, reason)
        (fault_dir / "terminated").write_text(reason)
        deadline = time.monotonic() + 60
        while not (fault_dir / "go").exists() and time.monotonic() < deadline:
            time.sleep(0.05)

    BatchJobs.terminate = terminate_and_hold  # type: ignore[method-assign]
