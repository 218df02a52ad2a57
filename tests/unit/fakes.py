"""In-memory fakes of modelrun.ports, for the paths' unit tests: each keeps what it was asked
to do and fails where a test tells it to. They follow the adapters' documented behaviour
(conditional writes raise StaleWrite, a create whose answer was lost may have landed, a deleted
comment answers False on update), not their internals."""

from __future__ import annotations

import datetime
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyItemAlreadyExistsError,
    IdempotencyItemNotFoundError,
)
from aws_lambda_powertools.utilities.idempotency.persistence.base import BasePersistenceLayer
from aws_lambda_powertools.utilities.idempotency.persistence.datarecord import DataRecord
from pydantic_core import to_jsonable_python

from modelrun import pull_request, reporting, submission, tracking
from modelrun.config import CollectResultsSettings, SubmitSettings, TrackSettings, UpdatePullRequestSettings
from modelrun.contracts import RunRequest
from modelrun.domain.evidence import Claims, WorkflowRunFacts
from modelrun.domain.registration import JobGrant, Registration
from modelrun.domain.run import RunRecord, utcnow
from modelrun.errors import Rejected, StaleWrite, TooLarge, Unreadable
from modelrun.ports import JobSpec
from tests.unit.builders import AUDIENCE, ISSUER, MODEL_REPOSITORY_URI

# What template.yaml gives the functions, with values of the right shape (a stack in us-east-1),
# and Lambda's own region variables (boto3 reads AWS_DEFAULT_REGION).
ENVIRONMENT = {
    "AWS_REGION": "us-east-1",
    "AWS_DEFAULT_REGION": "us-east-1",
    "RUNS_TABLE": "modelrun-runs",
    "RESULTS_BUCKET": "results",
    "GITHUB_SECRET_ARN": "arn:aws:secretsmanager:us-east-1:111122223333:secret:github",
    "GITHUB_API_URL": "https://api.github.com/",
    "GITHUB_SERVER_URL": "https://github.com",
    "IDEMPOTENCY_TABLE": "modelrun-idempotency",
    "REJECTED_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/111122223333/modelrun-run-requests-dlq",
    "CPU_JOB_QUEUE": "modelrun-cpu",
    "GPU_JOB_QUEUE": "modelrun-gpu",
    "JOB_TIMEOUT_SECONDS": "14400",
    "DEFAULT_VCPUS": "2",
    "DEFAULT_MEMORY_MIB": "8192",
    "DEFAULT_GPUS": "1",
    "GPU_INSTANCE_TYPES": "g4dn.xlarge,g4dn.2xlarge,g5.xlarge,g5.2xlarge",
    "GPU_MAX_VCPUS": "32",
    "SUPERSEDE_OLDER_RUNS": "true",
    "REGISTRATIONS_PATH": "/modelrun/modelrun/repositories/",
    "ALLOWED_REPOSITORIES": "county-assessor/avm",
    "OIDC_ISSUER": ISSUER,
    "OIDC_AUDIENCE": AUDIENCE,
    "OIDC_MAX_AGE_SECONDS": "900",
    "APPROVAL_ENVIRONMENT": "staging",
    "BASELINE_ENVIRONMENT": "modelrun-main",
    "OPERATOR_QUEUE_ARN": "arn:aws:sqs:us-east-1:111122223333:modelrun-operator-requests",
    "OPERATOR_REJECTED_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/111122223333/modelrun-operator-dlq",
    "MAX_REQUESTS_PER_REPOSITORY_HOUR": "600",
    "WORKFLOW_PATHS": ".github/workflows/modelrun.yaml,.github/workflows/run-model.yaml",
    "PINNED_WORKFLOW": "",
    "MAX_REQUEST_VCPUS": "8",
    "MAX_REQUEST_MEMORY_MIB": "32768",
    "OPERATOR_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/111122223333/modelrun-operator-requests",
    "RUN_REQUESTS_QUEUE_ARN": "arn:aws:sqs:us-east-1:111122223333:modelrun-run-requests",
    "RUN_REQUESTS_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/111122223333/modelrun-run-requests",
    "MAX_RECEIVE_COUNT": "18",  # the submit function's (the track function's is 5)
    "REDELIVERY_MAX_WAIT_SECONDS": "900",
    "REPORT_STATE_MACHINE_ARN": "arn:aws:states:us-east-1:111122223333:stateMachine:modelrun-report",
    "REJECTED_EVENTS_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/111122223333/modelrun-job-events-dlq",
}


class FakeRuns:
    """The runs table: records (conditional updates on status and attempt, as RunsTable's) and
    publication items with their lease."""

    def __init__(self, *records: RunRecord) -> None:
        self.records = {r.run_id: r for r in records}
        self.items: dict[str, dict[str, Any]] = {}
        self.stale_updates = 0  # the next updates that find the record moved on (StaleWrite)

    def add(self, *records: RunRecord) -> None:
        self.records |= {r.run_id: r for r in records}

    def create(self, record: RunRecord) -> bool:
        if record.run_id in self.records:
            return False
        self.records[record.run_id] = record
        return True

    def get(self, run_id: str) -> RunRecord | None:
        return self.records.get(run_id)

    def update(self, before: RunRecord, **changes: Any) -> RunRecord:
        stored = self.records.get(before.run_id)
        if self.stale_updates:
            self.stale_updates -= 1
            raise StaleWrite(before.run_id)
        if stored is None or (stored.status, stored.batch_attempt) != (before.status, before.batch_attempt):
            raise StaleWrite(before.run_id)
        after = _round_trip(before, {**changes, "updated_at": _later(stored.updated_at)})
        self.records[before.run_id] = after
        return after

    def set_fields(self, run_id: str, **fields: Any) -> None:
        if run_id in self.records:
            record = self.records[run_id]
            self.records[run_id] = _round_trip(record, {**fields, "updated_at": _later(record.updated_at)})
        else:
            self.items[run_id].update(fields)  # a publication item: it exists (RunsTable's condition)

    def runs_of_pr(self, pr_key: str) -> list[RunRecord]:
        return sorted((r for r in self.records.values() if r.pr_key == pr_key), key=lambda r: r.created_at)[::-1]

    def baselines(self, branch_key: str) -> list[RunRecord]:
        found = [r for r in self.records.values() if r.branch_key == branch_key and r.summary and r.baseline]
        return sorted(found, key=lambda r: r.created_at, reverse=True)

    def publication(self, key: str) -> dict[str, Any]:
        return dict(self.items.get(key, {}))

    def acquire(self, key: str, owner: str, lease_seconds: float) -> bool:
        item = self.items.setdefault(key, {})
        if item.get("lease_owner") not in (None, owner):
            return False
        item["lease_owner"] = owner
        return True

    def want(self, key: str, version: str) -> bool:
        item = self.items.get(key, {})
        if item.get("lease_owner") is None:
            return False
        item["wanted"] = max(version, str(item.get("wanted", "")))
        return True

    def publish(self, key: str, owner: str, version: str, **fields: Any) -> bool:
        item = self.items[key]
        if item.get("lease_owner") != owner or str(item.get("wanted", "")) > version:
            return False
        item.update(fields, version=version)
        for k in ("lease_owner", "wanted"):
            item.pop(k, None)
        return True

    def release(self, key: str, owner: str) -> None:
        if self.items.get(key, {}).get("lease_owner") == owner:
            self.items[key].pop("lease_owner")


def _later(stamp: str) -> str:
    """A write's updated_at: now, and always after the one it replaces (as a real write's is)."""
    now = utcnow()
    if now > stamp:
        return now
    moment = datetime.datetime.fromisoformat(stamp.replace("Z", "+00:00")) + datetime.timedelta(milliseconds=1)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _round_trip(record: RunRecord, changes: dict[str, Any]) -> RunRecord:
    """The record as the table would read it back: documents and enums as stored."""
    plain = record.model_dump(mode="json") | to_jsonable_python(changes, exclude_none=False)
    return RunRecord.model_validate({k: v for k, v in plain.items() if v is not None})


class FakeJobs:
    """AWS Batch: registered definitions per image, submitted jobs, terminations."""

    def __init__(self, ahead: int = 0) -> None:
        self.definitions: dict[tuple[str, str, str], str] = {}
        self.grants: dict[str, JobGrant] = {}
        self.jobs: dict[str, JobSpec] = {}
        self.terminated: dict[str, str] = {}
        self.ahead = ahead
        # Called after each TerminateJob: what the track step does meanwhile (a race).
        self.on_terminate: Callable[[str, str], None] | None = None

    def job_definition(self, image: str, compute: str, tags: dict[str, str], grant: JobGrant) -> str:
        arn = f"arn:aws:batch:us-east-1:111122223333:job-definition/{compute}-{len(self.definitions)}:1"
        self.grants[arn] = grant
        return self.definitions.setdefault((image, compute, grant.key), arn)

    def find_job(self, job_queue: str, job_name: str) -> str | None:
        return next((i for i, j in self.jobs.items() if j.queue == job_queue and j.name == job_name), None)

    def submit(self, job: JobSpec) -> str:
        job_id = f"job-{len(self.jobs) + 1}"
        self.jobs[job_id] = job
        return job_id

    def terminate(self, job_id: str, reason: str) -> None:
        self.terminated[job_id] = reason
        if self.on_terminate is not None:
            self.on_terminate(job_id, reason)

    def runnable_ahead(self, job_queue: str, own_job_id: str) -> int:
        return self.ahead

    def deregister(self, job_definitions: set[str]) -> int:
        gone = [k for k, arn in self.definitions.items() if arn in job_definitions]
        for k in gone:
            del self.definitions[k]
        return len(gone)


def registration(repository: str = "county-assessor/avm", **fields: Any) -> Registration:
    """A repository stack's registration, as repository.yaml writes it."""
    role = "arn:aws:iam::111122223333:role/modelrun/modelrun/"
    return Registration.model_validate(
        {
            "schema_version": "1",
            "repository": repository,
            "image_repository": MODEL_REPOSITORY_URI,
            "job_role_arn": f"{role}avm-PullRequestJobRole-1",
            "baseline_job_role_arn": f"{role}avm-BaselineJobRole-1",
            "execution_role_arn": f"{role}avm-JobExecutionRole-1",
            "github_role_arn": f"{role}avm-PullRequestRole-1",
            "github_baseline_role_arn": f"{role}avm-BaselineRole-1",
            "data_read": [""],
            "secrets": [""],
            "athena_workgroup": "",
        }
        | fields
    )


class FakeImages:
    """ECR's tags per image; ``built`` tags an image as the reusable workflow's run does."""

    def __init__(self) -> None:
        self.by_image: dict[str, list[str]] = {}

    def built(self, request: RunRequest) -> None:
        gpu = "-gpu" if request.compute == "gpu" else ""
        tag = f"{request.head_sha}{gpu}-{request.workflow.run_id}-{request.workflow.run_attempt}-{'ab' * 6}"
        self.by_image.setdefault(request.image, []).append(tag)

    def tags(self, image: str) -> list[str]:
        return list(self.by_image.get(image, []))


class FakeRegistrations:
    """The repositories' registrations (SSM): Rejected for a repository without one."""

    def __init__(self) -> None:
        self.by_repository: dict[str, Registration] = {"county-assessor/avm": registration()}

    def get(self, repository: str) -> Registration:
        found = self.by_repository.get(repository)
        if found is None:
            raise Rejected(f"repository {repository} has no registration")
        return found


class FakeResults:
    """The results bucket: objects by s3:// URI."""

    def __init__(self, bucket: str = "results") -> None:
        self.bucket = bucket
        self.objects: dict[str, bytes] = {}
        self.archived: set[str] = set()  # written with StorageClass GLACIER: there, unreadable

    def read_capped(self, uri: str, limit: int) -> bytes | None:
        if uri in self.archived:
            raise Unreadable(f"{uri} cannot be read as stored (InvalidObjectState)")
        data = self.objects.get(uri)
        if data is not None and len(data) > limit:
            raise TooLarge(f"{uri} is {len(data)} bytes (at most {limit})")
        return data

    def sizes(self, prefix_uri: str) -> dict[str, int]:
        bucket_prefix = f"s3://{self.bucket}/"
        return {
            uri.removeprefix(bucket_prefix): len(data)
            for uri, data in self.objects.items()
            if uri.startswith(prefix_uri)
        }

    def put(self, key: str, body: bytes, content_type: str) -> str:
        uri = f"s3://{self.bucket}/{key}"
        self.objects[uri] = body
        return uri

    def copy(self, source_uri: str, key: str) -> None:
        if source_uri in self.archived:
            raise Unreadable(f"{source_uri} cannot be read as stored (InvalidObjectState)")
        self.objects[f"s3://{self.bucket}/{key}"] = self.objects[source_uri]


class FakeLogs:
    def __init__(self, streams: dict[str, list[str]] | None = None) -> None:
        self.streams = streams or {}

    def tail(self, log_stream: str, lines: int) -> list[str]:
        return self.streams.get(log_stream, [])[-lines:]


class FakeDelays:
    """The queue's ChangeMessageVisibility: each message held back, and for how long."""

    def __init__(self) -> None:
        self.delays: list[tuple[str, int]] = []

    def delay(self, record: SQSRecord, seconds: int) -> None:
        self.delays.append((record.message_id, seconds))


class FakeDeadLetters:
    def __init__(self) -> None:
        self.reasons: list[tuple[str, str]] = []

    def dead_letter(self, record: SQSRecord, reason: str, extra: Mapping[str, Mapping[str, str]] | None = None) -> None:
        self.reasons.append((record.message_id, reason))


class FakeReports:
    """The report state machine: one execution per name, as Step Functions keeps them."""

    def __init__(self) -> None:
        self.executions: dict[str, dict[str, Any]] = {}
        self.starts = 0

    def start(self, name: str, payload: dict[str, Any]) -> bool:
        self.starts += 1
        if name in self.executions:
            return False
        self.executions[name] = payload
        return True


class FakeGitHub:
    """GitHub's comments, check runs and commit statuses for the paths' repositories, and every
    call made. ``fail(operation, error, landed)``: the next such call raises ``error``, having
    written all the same when ``landed`` (its answer was lost)."""

    def __init__(self, uses_app: bool = True) -> None:
        self._uses_app = uses_app
        self.calls: list[str] = []
        self.comments: dict[int, tuple[int, str]] = {}  # id -> (PR number, body)
        self.check_runs: dict[int, dict[str, Any]] = {}
        self.statuses: list[tuple[str, str, str, str | None]] = []
        self.failures: dict[str, tuple[Exception, bool]] = {}
        self.files: dict[tuple[str, str], bytes] = {}  # (ref, path) -> bytes: the repository's files
        self._ids = 500

    @property
    def uses_app(self) -> bool:
        return self._uses_app

    def __call__(self) -> FakeGitHub:  # the ports.GitHub factory: a client per use, here the same one
        return self

    def fail(self, operation: str, error: Exception, landed: bool = False) -> None:
        self.failures[operation] = (error, landed)

    def _call(self, operation: str) -> tuple[Exception, bool] | None:
        self.calls.append(operation)
        return self.failures.pop(operation, None)

    def _new_id(self) -> int:
        self._ids += 1
        return self._ids

    def create_comment(self, repository: str, number: int, body: str) -> int:
        failure = self._call("create_comment")
        if failure and not failure[1]:
            raise failure[0]
        comment_id = self._new_id()
        self.comments[comment_id] = (number, body)
        if failure:
            raise failure[0]
        return comment_id

    def update_comment(self, repository: str, comment_id: int, body: str) -> bool:
        if failure := self._call("update_comment"):
            raise failure[0]
        if comment_id not in self.comments:
            return False  # deleted on GitHub: 404
        self.comments[comment_id] = (self.comments[comment_id][0], body)
        return True

    def find_comment(self, repository: str, number: int) -> tuple[int, str] | None:
        if failure := self._call("find_comment"):
            raise failure[0]
        return next(((i, b) for i, (n, b) in self.comments.items() if n == number), None)

    def set_status(self, repository: str, sha: str, state: str, description: str, target_url: str | None) -> None:
        if failure := self._call("set_status"):
            raise failure[0]
        self.statuses.append((sha, state, description, target_url))

    def create_check_run(self, repository: str, head_sha: str, external_id: str, body: Mapping[str, Any]) -> int:
        failure = self._call("create_check_run")
        if failure and not failure[1]:
            raise failure[0]
        check_run_id = self._new_id()
        self.check_runs[check_run_id] = {"head_sha": head_sha, "external_id": external_id, **body}
        if failure:
            raise failure[0]
        return check_run_id

    def update_check_run(self, repository: str, check_run_id: int, body: Mapping[str, Any]) -> bool:
        if failure := self._call("update_check_run"):
            raise failure[0]
        if check_run_id not in self.check_runs:
            return False
        self.check_runs[check_run_id].update(body)
        return True

    def find_check_run(self, repository: str, head_sha: str, external_id: str) -> int | None:
        if failure := self._call("find_check_run"):
            raise failure[0]
        found = [i for i, r in self.check_runs.items() if r["head_sha"] == head_sha and r["external_id"] == external_id]
        return max(found) if found else None

    def file_at(self, repository: str, path: str, ref: str, limit: int) -> bytes | None:
        if failure := self._call("file_at"):
            raise failure[0]
        return self.files.get((ref, path))

    def comment_bodies(self) -> list[str]:
        return [body for _, body in self.comments.values()]


class FakeRepositories:
    """GitHub's record of workflow runs, by (repository, run id, attempt)."""

    def __init__(self, runs: dict[tuple[str, int, int], WorkflowRunFacts] | None = None) -> None:
        self.runs = runs or {}
        self.calls: list[tuple[str, int, int]] = []

    def __call__(self) -> FakeRepositories:
        return self

    def workflow_run(self, repository: str, run_id: int, attempt: int) -> WorkflowRunFacts:
        self.calls.append((repository, run_id, attempt))
        return self.runs[(repository, run_id, attempt)]

    def default_branch(self, repository: str) -> str:
        return "main"


class FakeVerifier:
    """The OIDC token's verifier: each token's claims, as the issuer signed them."""

    def __init__(self, claims: dict[str, Claims] | None = None) -> None:
        self.tokens = claims or {}

    def claims(self, token: str) -> Claims:
        return self.tokens[token]


class FakeGate:
    """The submit path's gate (adapters.aws.RequestGate), in memory."""

    def __init__(self) -> None:
        self.owners: dict[str, str] = {}
        self.counts: dict[str, int] = {}
        self.sent: dict[str, float] = {}

    def claim(self, key: str, owner: str) -> bool:
        return self.owners.setdefault(key, owner) == owner

    def release(self, owner: str) -> None:
        self.owners = {k: o for k, o in self.owners.items() if o != owner}

    def count(self, key: str, window_seconds: int) -> int:
        self.counts[key] = self.counts.get(key, 0) + 1
        return self.counts[key]

    def remember_sent(self, digest: str, sent_at: float) -> None:
        self.sent[digest] = min(sent_at, self.sent.get(digest, sent_at))

    def first_sent(self, digest: str) -> float | None:
        return self.sent.get(digest)


class FakeIdempotency(BasePersistenceLayer):
    """Powertools' idempotency records, in memory (its DynamoDB layer's conditional put)."""

    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]  # Powertools' __init__ is unannotated
        self.records: dict[str, DataRecord] = {}

    def _get_record(self, idempotency_key: str) -> DataRecord:
        try:
            return self.records[idempotency_key]
        except KeyError:
            raise IdempotencyItemNotFoundError from None

    def _put_record(self, data_record: DataRecord) -> None:
        existing = self.records.get(data_record.idempotency_key)
        if existing is not None and not existing.is_expired:
            raise IdempotencyItemAlreadyExistsError(old_data_record=existing)
        self.records[data_record.idempotency_key] = data_record

    def _update_record(self, data_record: DataRecord) -> None:
        self.records[data_record.idempotency_key] = data_record

    def _delete_record(self, data_record: DataRecord) -> None:
        self.records.pop(data_record.idempotency_key, None)


def environment(**overrides: str) -> dict[str, str]:
    return ENVIRONMENT | overrides


@dataclass
class SubmitWorld:
    """The submit path's dependencies, all fakes, and the SubmitDeps made of them."""

    runs: FakeRuns = field(default_factory=FakeRuns)
    jobs: FakeJobs = field(default_factory=FakeJobs)
    github: FakeGitHub = field(default_factory=FakeGitHub)
    repositories: FakeRepositories = field(default_factory=FakeRepositories)
    verifier: FakeVerifier = field(default_factory=FakeVerifier)
    idempotency: FakeIdempotency = field(default_factory=FakeIdempotency)
    gate: FakeGate = field(default_factory=FakeGate)
    registrations: FakeRegistrations = field(default_factory=FakeRegistrations)
    images: FakeImages = field(default_factory=FakeImages)
    settings: SubmitSettings = field(default_factory=lambda: SubmitSettings.from_environ(ENVIRONMENT))

    @property
    def deps(self) -> submission.SubmitDeps:
        return submission.SubmitDeps(
            settings=self.settings,
            runs=self.runs,
            jobs=self.jobs,
            github=self.github,
            idempotency=lambda: self.idempotency,
            verifier=self.verifier,
            repositories=self.repositories,
            gate=self.gate,
            registrations=self.registrations,
            images=self.images,
        )


def track_deps(runs: FakeRuns, github: FakeGitHub, reports: FakeReports) -> tracking.TrackDeps:
    return tracking.TrackDeps(TrackSettings.from_environ(ENVIRONMENT), runs, github, reports)


def collect_deps(runs: FakeRuns, results: FakeResults, logs: FakeLogs | None = None) -> reporting.CollectDeps:
    return reporting.CollectDeps(CollectResultsSettings.from_environ(ENVIRONMENT), runs, results, logs or FakeLogs())


def update_deps(runs: FakeRuns, github: FakeGitHub) -> pull_request.UpdateDeps:
    return pull_request.UpdateDeps(UpdatePullRequestSettings.from_environ(ENVIRONMENT), runs, github)
