"""What the paths need from AWS and GitHub, as Protocols: the adapters (modelrun.adapters) are
one implementation, tests/unit/fakes.py the in-memory other. Each handler builds its paths'
dependencies at cold start from its settings (submission.SubmitDeps, tracking.TrackDeps,
reporting.CollectDeps, pull_request.UpdateDeps); nothing below reaches for a client of its own.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from modelrun.domain.evidence import Claims, WorkflowRunFacts
from modelrun.domain.registration import JobGrant, Registration
from modelrun.domain.run import RunRecord


class Runs(Protocol):
    """The runs table: run records, and one publication item per GitHub target (a PR's
    comment, a run's check run, a commit's status) with its lease (modelrun.publishing)."""

    def create(self, record: RunRecord) -> bool: ...
    def get(self, run_id: str) -> RunRecord | None: ...
    def update(self, before: RunRecord, **changes: Any) -> RunRecord: ...
    def set_fields(self, run_id: str, **fields: Any) -> None: ...
    def runs_of_pr(self, pr_key: str) -> list[RunRecord]: ...
    def baselines(self, branch_key: str) -> list[RunRecord]: ...
    def publication(self, key: str) -> dict[str, Any]: ...
    def acquire(self, key: str, owner: str, lease_seconds: float) -> bool: ...
    def want(self, key: str, version: str) -> bool: ...
    def publish(self, key: str, owner: str, version: str, **fields: Any) -> bool: ...
    def release(self, key: str, owner: str) -> None: ...


@dataclass(frozen=True)
class JobSpec:
    """One Batch job as the submit path asks for it: named after its run, in its compute's queue."""

    name: str
    queue: str
    definition: str
    environment: dict[str, str]
    vcpus: float
    memory_mib: int
    gpus: int
    command: list[str] | None = None
    tags: dict[str, str] = field(default_factory=dict)
    # The Batch fair-share identifier: one per repository, so one cannot starve another (issue 21).
    share: str | None = None


class Jobs(Protocol):
    """AWS Batch, as the submit path uses it."""

    def job_definition(self, image: str, compute: str, tags: dict[str, str], grant: JobGrant) -> str: ...
    def find_job(self, job_queue: str, job_name: str) -> str | None: ...
    def submit(self, job: JobSpec) -> str: ...
    def terminate(self, job_id: str, reason: str) -> None: ...
    def runnable_ahead(self, job_queue: str, own_job_id: str) -> int: ...
    def deregister(self, job_definitions: set[str]) -> int: ...


class Images(Protocol):
    """ECR, as the submit path asks it: the tags an image (by digest) carries."""

    def tags(self, image: str) -> list[str]: ...


class RepositoryRegistrations(Protocol):
    """The repositories' registrations (repository.yaml): Rejected for a repository without one."""

    def get(self, repository: str) -> Registration: ...


class ResultsStore(Protocol):
    """The results bucket: what the model wrote, and the report modelrun writes."""

    def read_capped(self, uri: str, limit: int) -> bytes | None: ...
    def sizes(self, prefix_uri: str) -> dict[str, int]: ...
    def put(self, key: str, body: bytes, content_type: str) -> str: ...
    def copy(self, source_uri: str, key: str) -> None: ...


class Gate(Protocol):
    """Before any GitHub call (issue 21): one message counts per token's claims, a repository's
    requests are counted per window, and the first receipt of a body is remembered."""

    def claim(self, key: str, owner: str) -> bool: ...
    def release(self, owner: str) -> None: ...
    def count(self, key: str, window_seconds: int) -> int: ...
    def remember_sent(self, digest: str, sent_at: float) -> None: ...
    def first_sent(self, digest: str) -> float | None: ...


class JobLogs(Protocol):
    def tail(self, log_stream: str, lines: int) -> list[str]: ...


class DeadLetters(Protocol):
    """A DLQ that takes a message which can never succeed, with its reason."""

    def dead_letter(
        self, record: SQSRecord, reason: str, extra: Mapping[str, Mapping[str, str]] | None = None
    ) -> None: ...


class MessageDelays(Protocol):
    """The queue a message came from: hold it back before SQS delivers it again."""

    def delay(self, record: SQSRecord, seconds: int) -> None: ...


class ReportStarter(Protocol):
    def start(self, name: str, payload: dict[str, Any]) -> bool:
        """Start the report state machine's execution ``name``; False if it exists already."""
        ...


class PullRequestWrites(Protocol):
    """GitHub's side of a run: the PR's sticky comment, the run's check run, the commit status."""

    @property
    def uses_app(self) -> bool: ...
    def create_comment(self, repository: str, number: int, body: str) -> int: ...
    def update_comment(self, repository: str, comment_id: int, body: str) -> bool: ...
    def find_comment(self, repository: str, number: int) -> tuple[int, str] | None: ...
    def set_status(self, repository: str, sha: str, state: str, description: str, target_url: str | None) -> None: ...
    def create_check_run(self, repository: str, head_sha: str, external_id: str, body: Mapping[str, Any]) -> int: ...
    def update_check_run(self, repository: str, check_run_id: int, body: Mapping[str, Any]) -> bool: ...
    def find_check_run(self, repository: str, head_sha: str, external_id: str) -> int | None: ...
    def file_at(self, repository: str, path: str, ref: str, limit: int) -> bytes | None: ...


# GitHub's clients are made per use, not at cold start: the credentials secret is read (and
# cached for five minutes) when a call is made, so a rotated or fixed secret is taken up warm
# and a broken one fails the message, not the function's init.
GitHub = Callable[[], PullRequestWrites]


class WorkflowRecords(Protocol):
    """What GitHub says about a repository and its workflow runs: the evidence for a request."""

    def workflow_run(self, repository: str, run_id: int, attempt: int) -> WorkflowRunFacts: ...
    def default_branch(self, repository: str) -> str: ...


class ClaimsVerifier(Protocol):
    def claims(self, token: str) -> Claims:
        """The token's verified claims (signature, issuer, audience); Unverified if they are not."""
        ...
