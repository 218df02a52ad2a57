"""The stack the `modelrun` CLI's integration tests run against, and how they call the CLI.

A World is one LocalRuntime (its jobs run a tiny placeholder instead of the model) and what the
tests put in it: runs made as the workflow makes them, through the local GitHub and its OIDC
tokens, and QUEUED records written directly. `cli` invokes the CLI in-process against it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import boto3
from typer.testing import CliRunner, Result

from modelrun.adapters.aws import RunsTable
from modelrun.contracts import RunRequest
from modelrun.domain.run import RunRecord, run_id_for
from modelrun.domain.status import RunStatus
from modelrun_cli.app import app
from modelrun_cli.enqueue import send, with_identity
from modelrun_local.runtime import NOOP_MODEL_DIR, LocalRuntime
from modelrun_local.workflow_job import Job, pull_request_job
from tests.helpers import wait_for
from tests.integration.flow import REPOSITORY as REPOSITORY  # re-exported: the CLI tests take it from here
from tests.integration.flow import pull_request_event, with_command
from tests.records import new_record

STACK = "modelrun-local"


@dataclass
class World:
    """A local stack and the runs the tests made in it (``ids``: run ids by the tests' names)."""

    runtime: LocalRuntime
    image: str
    table: RunsTable
    ids: dict[str, str] = field(default_factory=dict)

    @property
    def queue_url(self) -> str:
        return self.runtime.outputs["RunRequestsQueueUrl"]

    def job(self, pr: int, workflow_run: int, actor: str, sha: str | None = None, attempt: int = 1) -> Job:
        """An approved pull_request job of the PR, started by ``actor`` (GitHub records its run)."""
        event = pull_request_event(pr, sha or f"{pr:08x}{workflow_run:032x}"[-40:])
        return pull_request_job(self.runtime.github, event, run_id=workflow_run, run_attempt=attempt, actor=actor)

    def unsigned(self, job: Job, mode: list[str]) -> RunRequest:
        """The job's run request, its placeholder command set, without its token."""
        return with_command(job.request(self.image), *mode)

    def request(
        self, pr: int, workflow_run: int, mode: list[str], actor: str, sha: str | None = None, attempt: int = 1
    ) -> RunRequest:
        """The job's run request with its OIDC token attached (audience: the queue), ready to send."""
        job = self.job(pr, workflow_run, actor, sha, attempt)
        return with_identity(self.unsigned(job, mode), job.token(self.queue_url))  # type: ignore[return-value]

    def submit(self, name: str, request: RunRequest) -> str:
        send(request, self.queue_url)
        run_id = run_id_for(request)
        self.ids[name] = run_id
        return run_id

    def record(self, name_or_id: str) -> RunRecord | None:
        return self.table.get(self.ids.get(name_or_id, name_or_id))

    def status(self, name_or_id: str) -> RunStatus | None:
        record = self.record(name_or_id)
        return record.status if record else None

    def wait_status(self, name: str, *statuses: RunStatus, timeout: float = 30) -> RunRecord:
        def reached() -> RunRecord | None:
            record = self.record(name)
            return record if record and record.status in statuses else None

        return wait_for(reached, timeout, f"{name} to reach {'/'.join(statuses)}")

    def queued(self, name: str, pr: int, workflow_run: int, compute: str, created_at: str) -> str:
        """A QUEUED record, as the submit function writes it before SubmitJob."""
        request = self.request(pr, workflow_run, ["ok"], actor="erin")
        request = request.model_copy(update={"compute": compute})
        outputs = self.runtime.outputs
        queue = outputs["GpuJobQueueArn" if compute == "gpu" else "CpuJobQueueArn"]
        record = new_record(
            request, job_queue=queue, bucket=outputs["ResultsBucketName"], vcpus=2, memory_mib=4096, gpus=0
        )
        record = record.model_copy(update={"created_at": created_at, "updated_at": created_at})
        assert self.table.create(record)
        self.ids[name] = record.run_id
        return record.run_id

    def ended(self, run_id: str, what: str, *, reported: bool = False, timeout: float = 30) -> RunRecord:
        """The run's record once it is terminal (and, with ``reported``, once its report is stored)."""

        def check() -> RunRecord | None:
            record = self.record(run_id)
            return record if record and record.status.terminal and (record.report or not reported) else None

        return wait_for(check, timeout, what)

    def stop_jobs(self, reason: str) -> None:
        """Terminate every job still active and wait until none runs."""
        batch = boto3.client("batch")
        for record in self.table.scan():
            if record.job_id and not record.status.terminal:
                batch.terminate_job(jobId=record.job_id, reason=reason)
        wait_for(lambda: self.runtime.executor.active == 0, 60, "the jobs to stop")


@contextmanager
def started() -> Iterator[World]:
    """A fresh local stack with the placeholder image pushed and no runs; its jobs stop at the end."""
    with LocalRuntime(stack_name=STACK, parameters={"LogLevel": "WARNING"}) as runtime:
        os.environ["POWERTOOLS_METRICS_DISABLED"] = "true"  # the in-process Lambdas print no EMF lines
        world = World(
            runtime, runtime.push_image(NOOP_MODEL_DIR, tag="placeholder"), RunsTable(runtime.outputs["RunsTableName"])
        )
        yield world
        world.stop_jobs("cancelled: end of the test module")  # the sleepers (and anything else still active)


runner = CliRunner()
WIDE = {"COLUMNS": "220", "NO_COLOR": "1"}


def cli(*args: str, env: dict[str, str | None] | None = None, input: str | None = None, stack: bool = True) -> Result:
    """``modelrun ARGS`` (then ``--stack`` the test stack's name, unless ``stack`` is False)."""
    argv = [*args, "--stack", STACK] if stack else list(args)
    return runner.invoke(app, argv, env={**WIDE, **(env or {})}, input=input)
