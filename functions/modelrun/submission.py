"""The submit path: a validated run request becomes exactly one Batch job.

Exactly once in effect, although SQS delivers at least once and a Lambda may die half-way:

1. The run id is derived from the request (repository, PR, SHA, workflow run id and attempt),
   so every copy of one request has the same id; it is also the Batch job name.
2. Powertools idempotency, keyed on that id, lets one copy work at a time and answers later
   copies from the stored result.
3. The run record is written first, conditionally (``attribute_not_exists``): one record.
4. Before ``SubmitJob``, the queue is searched for a job of that name. If a previous attempt
   died between ``SubmitJob`` and recording the job id (its idempotency lock expires with the
   Lambda's timeout, and SQS redelivers after the visibility timeout), the job is found and
   adopted instead of submitted again: one job.
"""

from __future__ import annotations

import copy
import dataclasses
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property, partial
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.idempotency.persistence.base import BasePersistenceLayer

from modelrun import checks, comments, publishing
from modelrun.adapters.aws import RequestGate
from modelrun.adapters.batch import BatchJobs
from modelrun.adapters.ecr import EcrImages
from modelrun.adapters.github import Repositories
from modelrun.adapters.oidc import TokenVerifier
from modelrun.adapters.registrations import Registrations
from modelrun.config import SubmitSettings
from modelrun.contracts import CleanupRequest, RerunRequest, RunRequest
from modelrun.domain import naming, sizes
from modelrun.domain.evidence import Verified
from modelrun.domain.registration import Registration, data_environment, job_grant, secret_variable
from modelrun.domain.run import RunRecord, run_id_for, utcnow
from modelrun.domain.status import PR_CLOSED_REASON, SUPERSEDED_REASON_PREFIX, RunStatus
from modelrun.errors import Rejected, StaleWrite
from modelrun.ports import ClaimsVerifier, Gate, Images, Jobs, JobSpec, RepositoryRegistrations, WorkflowRecords
from modelrun.wiring import RecordsAndGitHub, records_and_github

logger = Logger(child=True)

IDEMPOTENCY = IdempotencyConfig(event_key_jmespath="run_id", expires_after_seconds=7 * 24 * 3600)


@dataclass(frozen=True)
class SubmitDeps(RecordsAndGitHub[SubmitSettings]):
    """What the submit path works with, made once per execution environment (the handler's cold
    start); tests make it of in-memory fakes."""

    jobs: Jobs
    # Powertools' store makes its DynamoDB client when made: made at the first submission.
    idempotency: Callable[[], BasePersistenceLayer]
    # The evidence (modelrun.verification): the OIDC token's verifier, GitHub's record.
    verifier: ClaimsVerifier
    repositories: Callable[[], WorkflowRecords]
    # Before any GitHub call: one message per token's claims, a rate per repository (issue 21).
    gate: Gate
    # Each repository's image repository, job roles and grants (repository.yaml; issues 21, 22).
    registrations: RepositoryRegistrations
    # The image's tags: it must be the one the verified workflow run built (issue 21).
    images: Images

    @cached_property
    def submit_once(self) -> Callable[..., dict[str, Any]]:
        """_submit_once behind Powertools idempotency, on the store (made once)."""
        wrapped: Callable[..., dict[str, Any]] = idempotent_function(
            data_keyword_argument="payload", persistence_store=self.idempotency(), config=IDEMPOTENCY
        )(_submit_once)
        return wrapped

    @classmethod
    def of(cls, s: SubmitSettings) -> SubmitDeps:
        """The AWS and GitHub adapters, as the function's settings name them."""
        runs, github = records_and_github(s)
        return cls(
            settings=s,
            runs=runs,
            jobs=BatchJobs(s.job_timeout_seconds),
            github=github,
            idempotency=lambda: DynamoDBPersistenceLayer(table_name=s.idempotency_table),
            verifier=TokenVerifier(s.oidc_issuer, s.oidc_audience),
            repositories=lambda: Repositories(s.github_secret_arn, s.github_api_url),
            gate=RequestGate(s.idempotency_table),
            registrations=Registrations(s.registrations_path),
            images=EcrImages(),
        )


def new_record(s: SubmitSettings, request: RunRequest, verified: Verified) -> RunRecord:
    gpu = request.compute == "gpu"
    return RunRecord.new(
        request,
        verified,
        job_queue=s.gpu_job_queue if gpu else s.cpu_job_queue,
        bucket=s.results_bucket,
        results_key=secrets.token_hex(16),
        server_url=s.github_server_url,
        vcpus=request.resources.vcpus or s.default_vcpus,
        memory_mib=request.resources.memory_mib or s.default_memory_mib,
        gpus=(request.resources.gpus if request.resources.gpus is not None else s.default_gpus) if gpu else 0,
    )


def check_image(registration: Registration, request: RunRequest) -> None:
    """The image comes from the requesting repository's own image repository: no other
    repository's images, and nothing from outside the stack, run with its roles."""
    repository = registration.image_repository
    if not request.image.startswith(f"{repository}@sha256:") and not request.image.startswith(f"{repository}:"):
        raise Rejected(
            f"image: must come from {request.repository}'s image repository {repository}, not {request.image}"
        )


def check_variables(registration: Registration, request: RunRequest) -> None:
    """A caller's variable never stands in for one of the repository's secrets."""
    clash = sorted(set(request.variables) & {secret_variable(arn) for arn in registration.secrets})
    if clash:
        raise Rejected(f"variables: {', '.join(clash)} would replace the repository's secrets of that name")


def check_size(s: SubmitSettings, request: RunRequest) -> None:
    """The job's size (the request's, else the stack's defaults) must fit a compute environment:
    Fargate's combinations for cpu, an instance of the GPU environment's types for gpu."""
    vcpus = request.resources.vcpus or s.default_vcpus
    memory = request.resources.memory_mib or s.default_memory_mib
    if request.compute == "cpu":
        problem = sizes.fargate_problem(vcpus, memory)
    else:
        gpus = request.resources.gpus if request.resources.gpus is not None else s.default_gpus
        problem = sizes.ec2_gpu_problem(vcpus, memory, gpus, s.gpu_instance_types, s.gpu_max_vcpus)
    if problem:
        raise Rejected(f"no compute environment can run this size: {problem}")
    # Per-request ceilings (issue 21): one PR's run cannot take the whole compute environment.
    if vcpus > s.max_request_vcpus or memory > s.max_request_memory_mib:
        raise Rejected(
            f"resources: at most {s.max_request_vcpus:g} vCPUs and {s.max_request_memory_mib} MiB per run "
            f"(MaxRequestVcpus, MaxRequestMemoryMiB), not {vcpus:g} and {memory}"
        )


def check_built_by_run(deps: SubmitDeps, request: RunRequest, verified: Verified) -> None:
    """The image is the one the verified workflow run built for the verified commit: the
    reusable workflow tags what it pushes ``<sha>[-gpu]-<run id>-<attempt>-<random>``, tags are
    immutable, and only the repository's own roles push to its ECR repository."""
    run = request.workflow
    tags = deps.images.tags(request.image)
    if not any(naming.built_by_run(tag, verified.head_sha, run.run_id, run.run_attempt) for tag in tags):
        raise Rejected(
            f"image: {request.image} was not built by workflow run {run.run_id} attempt {run.run_attempt} for "
            f"{verified.head_sha[:12]} (its tags: {', '.join(sorted(tags)[:5]) or 'none'})"
        )


def submit(deps: SubmitDeps, request: RunRequest, verified: Verified, *, rerun: bool = False) -> RunRecord:
    """Submit a verified request (see :mod:`modelrun.verification`) exactly once in effect. A
    rerun's image was checked when its run was first submitted."""
    registration = deps.registrations.get(verified.repository)
    check_image(registration, request)
    if not rerun:
        check_built_by_run(deps, request, verified)
    check_variables(registration, request)
    check_size(deps.settings, request)
    run_id = run_id_for(request)
    # The idempotency layer persists by a JSON payload, keyed on the derived run id. The token
    # is not part of it: it proved the request and is not stored anywhere.
    result = deps.submit_once(
        deps,
        payload={
            "run_id": run_id,
            "request": request.model_dump(mode="json", exclude={"identity"}),
            "verified": dataclasses.asdict(verified),
        },
    )
    return RunRecord.model_validate(result)


def _submit_once(deps: SubmitDeps, payload: dict[str, Any]) -> dict[str, Any]:
    request = RunRequest.model_validate(payload["request"])
    record = new_record(deps.settings, request, Verified(**payload["verified"]))
    runs = deps.runs
    created = runs.create(record)
    if not created:
        existing = runs.get(record.run_id)
        assert existing is not None
        if existing.job_id:
            logger.info("duplicate run request: already submitted", extra={"run_id": record.run_id})
            return existing.item()
        record = existing
    tags = {
        "modelrun:repository": request.repository,
        "modelrun:pr": str(request.pr_number or "none"),
        "modelrun:sha": request.head_sha,
        "modelrun:run-id": record.run_id,
    }
    jobs = deps.jobs
    registration = deps.registrations.get(record.repository)
    grant = job_grant(registration, baseline=record.baseline, compute=record.compute)
    job_definition = jobs.job_definition(request.image, request.compute, tags, grant)
    # A fresh record means no attempt got as far as SubmitJob: only a redelivery needs the lookup.
    job_id = None if created else jobs.find_job(record.job_queue, record.run_id)
    if job_id:
        logger.warning("adopting a job submitted by an earlier attempt", extra={"run_id": record.run_id})
    else:
        job_id = jobs.submit(
            JobSpec(
                name=record.run_id,
                queue=record.job_queue,
                definition=job_definition,
                environment=request.variables | container_environment(record) | data_environment(registration),
                vcpus=record.vcpus,
                memory_mib=record.memory_mib,
                gpus=record.gpus,
                command=request.command,
                tags=tags,
                share=naming.share_identifier(request.repository),
            )
        )
    try:
        record = runs.update(record, job_id=job_id, job_definition=job_definition, status=RunStatus.SUBMITTED)
    except StaleWrite:
        # A Batch event got here first and moved the status on; only the job id is missing.
        runs.set_fields(record.run_id, job_id=job_id, job_definition=job_definition)
        record = runs.get(record.run_id) or record
    logger.info("run submitted", extra={"run_id": record.run_id, "job_id": job_id, "queue": record.job_queue})

    # One read of the PR's runs serves both superseding and the comment.
    pr_runs = runs.runs_of_pr(record.pr_key) if record.pr_key else None
    superseded: list[str] = []
    if pr_runs is not None and deps.settings.supersede_older_runs:
        pr_runs, superseded = supersede_older(deps, record, pr_runs)
    ahead = jobs.runnable_ahead(record.job_queue, job_id)
    # Queued, with its place in the queue; the comment also when older runs ended here.
    checks.publish_interim(runs, deps.github, record, runs_ahead=ahead, pr_runs=pr_runs, comment=bool(superseded))
    return record.item()


def container_environment(record: RunRecord) -> dict[str, str]:
    """The container contract's inputs (model_container/README.md)."""
    return {
        "MODELRUN_RUN_ID": record.run_id,
        "MODELRUN_RESULTS_URI": record.results_uri,
        "MODELRUN_THREADS": str(max(1, int(record.vcpus))),
        "MODELRUN_DEVICE": record.compute,
    }


def supersede_older(deps: SubmitDeps, record: RunRecord, pr_runs: list[RunRecord]) -> tuple[list[RunRecord], list[str]]:
    """Older active runs of the same PR are superseded: their jobs stop, their records say why.

    Returns the PR's runs as they are now, and the ids of those superseded here."""
    superseded: list[str] = []
    now: list[RunRecord] = []
    reason = f"{SUPERSEDED_REASON_PREFIX} {record.head_sha[:8]}"
    for older in pr_runs:
        if older.run_id == record.run_id or older.status.terminal or older.created_at > record.created_at:
            now.append(older)
            continue
        stopped = stop(deps, older, RunStatus.SUPERSEDED, reason)
        if stopped.status is RunStatus.SUPERSEDED:
            superseded.append(stopped.run_id)
            checks.publish_quietly(deps.runs, deps.github, stopped)  # no report runs for it: its check run ends here
        now.append(stopped)
    if superseded:
        logger.info("superseded older runs", extra={"run_id": record.run_id, "superseded": superseded})
    return now, superseded


def stop(deps: SubmitDeps, run: RunRecord, status: RunStatus, reason: str) -> RunRecord:
    """Stop an active run on purpose: terminate its job (the reason travels with Batch's FAILED
    event, which the track step reads back as ``status``), then end its record as ``status``.

    The record may move meanwhile (a RUNNING event, or the job's own end reaching the track step
    first): decide again on fresh data until it is ended, by this write or by the track step's.
    Returns the record as it is now; a run that ended on its own first keeps its own end."""
    if run.job_id:
        deps.jobs.terminate(run.job_id, reason)
    current = run
    for _ in range(5):
        if current.status.terminal:
            return current
        try:
            return deps.runs.update(current, status=status, status_reason=reason, stopped_at=utcnow())
        except StaleWrite:
            current = deps.runs.get(run.run_id) or current
    return current


def rerun(deps: SubmitDeps, message: RerunRequest, operator_id: str) -> RunRecord:
    """An operator's rerun: the stored, verified run again as a new attempt (same commit, image
    and command). Its identity is the original's evidence; who asked is logged."""
    original = deps.runs.get(message.run_id)
    if original is None or not original.request:
        raise Rejected(f"rerun: run {message.run_id} is unknown or has no stored request")
    data = copy.deepcopy(original.request)
    data["workflow"]["run_attempt"] = message.attempt
    request = RunRequest.model_validate(data)
    verified = dataclasses.replace(original.evidence(), actor=message.requested_by)
    logger.info(
        "operator rerun",
        extra={"run_id": message.run_id, "attempt": message.attempt, "sender_id": operator_id},
    )
    return submit(deps, request, verified, rerun=True)


def cleanup(deps: SubmitDeps, request: CleanupRequest) -> list[str]:
    """The PR was closed: stop its active runs and deregister its job definitions."""
    key = naming.pr_key(request.repository, request.pr_number)
    runs = deps.runs.runs_of_pr(key)
    cancelled = []
    for run in runs:
        if run.status.terminal:
            continue
        stopped = stop(deps, run, RunStatus.CANCELLED, PR_CLOSED_REASON)
        if stopped.status is RunStatus.CANCELLED:
            cancelled.append(run.run_id)
            checks.publish_quietly(deps.runs, deps.github, stopped)  # no report runs for it: its check run ends here
    deregistered = deps.jobs.deregister({r.job_definition for r in runs if r.job_definition})
    logger.info("PR cleaned up", extra={"pr": key, "cancelled": cancelled, "job_definitions": deregistered})
    if runs and cancelled:
        latest = deps.runs.get(runs[0].run_id)
        if latest:
            refresh = partial(comments.refresh, deps.runs, deps.github, latest, wait=False)
            publishing.quietly("PR comment", latest.run_id, refresh)
    return cancelled
