"""The run record: what modelrun knows about one run, as stored in the runs table."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict

from modelrun.contracts import RunRequest
from modelrun.domain import naming
from modelrun.domain.evidence import Verified
from modelrun.domain.status import RunStatus


def utcnow() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Attempt(BaseModel):
    """One of Batch's finished attempts of a job, as the run record keeps it: a Spot reclaim
    ends one and Batch starts the next. Every field is optional, as Batch's events have them."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    started_at: str | None = None
    stopped_at: str | None = None
    reason: str | None = None
    log_stream: str | None = None
    exit_code: int | None = None


def run_id_for(request: RunRequest) -> str:
    """The run id every copy of this request maps to (see domain.naming)."""
    return naming.run_id(
        request.repository,
        request.pr_number,
        request.head_ref,
        request.head_sha,
        request.workflow.run_id,
        request.workflow.run_attempt,
    )


class RunRecord(BaseModel):
    model_config = ConfigDict(extra="ignore")

    run_id: str
    repository: str
    pr_number: int | None = None
    pr_key: str | None = None
    # Set only on verified runs of the default branch: the by_branch index holds baselines only.
    branch_key: str | None = None
    event: str | None = None
    environment: str | None = None
    base_sha: str | None = None  # a PR's base commit: its main run is the PR's baseline
    baseline: bool = False
    head_sha: str
    head_ref: str
    base_ref: str
    image: str
    compute: str
    job_queue: str
    job_definition: str | None = None
    job_id: str | None = None
    status: RunStatus = RunStatus.QUEUED
    batch_attempt: int = 0
    # Batch's finished attempts, as the latest event lists them.
    attempts: list[Attempt] | None = None
    status_reason: str | None = None
    exit_code: int | None = None
    created_at: str
    updated_at: str
    started_at: str | None = None
    stopped_at: str | None = None
    log_stream: str | None = None
    log_url: str | None = None
    results_uri: str
    triggered_by: str
    note: str | None = None
    workflow_url: str
    workflow_run_id: int
    workflow_attempt: int
    vcpus: float
    memory_mib: int
    gpus: int = 0
    summary: dict[str, Any] | None = None
    report: dict[str, Any] | None = None
    gate: dict[str, Any] | None = None  # the merge gate's policy, as read (domain.policy.GateSource)
    request: dict[str, Any] | None = None  # the run request as received: `modelrun rerun` resends it

    @classmethod
    def new(
        cls,
        request: RunRequest,
        verified: Verified,
        *,
        job_queue: str,
        bucket: str,
        results_key: str,
        server_url: str,
        vcpus: float,
        memory_mib: int,
        gpus: int,
    ) -> RunRecord:
        """A run from a verified request: identity fields come from the evidence, links are
        built here. ``results_key`` is the random part of the run's results prefix."""
        run = run_id_for(request)
        now = utcnow()
        return cls(
            run_id=run,
            # The evidence's own facts, under the same names (modelrun.verification).
            repository=verified.repository,
            pr_number=verified.pr_number,
            event=verified.event,
            environment=verified.environment,
            base_sha=verified.base_sha,
            baseline=verified.baseline,
            head_sha=verified.head_sha,
            head_ref=verified.head_ref,
            base_ref=verified.base_ref,
            pr_key=naming.pr_key(verified.repository, verified.pr_number) if verified.pr_number else None,
            branch_key=naming.branch_key(verified.repository, verified.head_ref) if verified.baseline else None,
            image=request.image,
            compute=request.compute,
            job_queue=job_queue,
            created_at=now,
            updated_at=now,
            results_uri=f"s3://{bucket}/{naming.results_prefix(verified.repository, run, results_key)}",
            triggered_by=verified.actor,
            note=request.note,
            workflow_url=naming.workflow_run_url(
                server_url, verified.repository, request.workflow.run_id, request.workflow.run_attempt
            ),
            workflow_run_id=request.workflow.run_id,
            workflow_attempt=request.workflow.run_attempt,
            vcpus=vcpus,
            memory_mib=memory_mib,
            gpus=gpus,
            # Without the token: it is evidence for this submission only, never stored.
            request=request.model_dump(mode="json", exclude={"identity"}),
        )

    def evidence(self) -> Verified:
        """What was verified when this run was submitted (an operator's rerun reuses it)."""
        request = self.request or {}
        return Verified(
            repository=self.repository,
            event=self.event or str(request.get("event", "")),
            environment=self.environment or "",
            actor=self.triggered_by,
            pr_number=self.pr_number,
            head_sha=self.head_sha,
            head_ref=self.head_ref,
            base_ref=self.base_ref,
            base_sha=self.base_sha,
            default_branch=None,
            baseline=self.baseline,
        )

    def item(self) -> dict[str, Any]:
        """The DynamoDB item: no None values (sparse GSIs stay sparse)."""
        return self.model_dump(mode="json", exclude_none=True)

    @property
    def duration_seconds(self) -> float | None:
        """Compute time over every attempt (a reclaimed Spot attempt was paid for too)."""
        finished = [(a.started_at, a.stopped_at) for a in self.attempts or [] if a.started_at and a.stopped_at]
        if finished:
            total = sum(seconds_between(start, stop) for start, stop in finished)
            last = finished[-1][0]
            if self.started_at and self.stopped_at and self.started_at > last:
                total += seconds_between(self.started_at, self.stopped_at)  # the last attempt, not yet listed
            return total
        if not self.started_at or not self.stopped_at:
            return None
        return seconds_between(self.started_at, self.stopped_at)

    @property
    def lost_attempts(self) -> list[Attempt]:
        """Earlier attempts that ended without the run ending (Batch retried them)."""
        attempts = self.attempts or []
        return attempts if not self.status.terminal else attempts[:-1]


def seconds_between(start: str, stop: str) -> float:
    begin = datetime.fromisoformat(start.replace("Z", "+00:00"))
    end = datetime.fromisoformat(stop.replace("Z", "+00:00"))
    return max(0.0, (end - begin).total_seconds())
