"""The submit path (modelrun.submission, modelrun.verification) on in-memory fakes: one job per
request however often it comes, an earlier attempt's job adopted, foreign images and sizes no
compute environment can run refused, older runs of the PR superseded, operator reruns, a closed
PR's runs stopped, and the evidence checked before anything is written."""

from __future__ import annotations

import re
from typing import Any

import pytest

from modelrun import submission, tracking, verification
from modelrun.config import SubmitSettings
from modelrun.contracts import CleanupRequest, Identity, RerunRequest, RunRequest
from modelrun.domain import naming
from modelrun.domain.run import RunRecord, run_id_for
from modelrun.domain.status import RunStatus
from modelrun.errors import Duplicate, Rejected, Unverified
from modelrun.events import JobDetail
from modelrun.ports import JobSpec
from tests.records import new_record, verified_from
from tests.unit.builders import HEAD, MAIN, MODEL_REPOSITORY_URI, REPO, claims, workflow_run
from tests.unit.builders import run_request as request
from tests.unit.fakes import ENVIRONMENT, FakeGitHub, FakeReports, SubmitWorld, registration, track_deps

pytestmark = pytest.mark.filterwarnings("ignore:Couldn.t determine the remaining time")  # no Lambda context here

TOKEN = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJyZXBvIn0.c2lnbmF0dXJl"


def submit(world: SubmitWorld, message: RunRequest) -> Any:
    world.images.built(message)  # as the reusable workflow pushed it
    return submission.submit(world.deps, message, verified_from(message))


def test_a_request_becomes_one_job_with_the_container_contracts_inputs() -> None:
    world = SubmitWorld()
    record = submit(world, request())
    (job_id,) = world.jobs.jobs
    job = world.jobs.jobs[job_id]
    assert job.name == record.run_id == run_id_for(request()) and job.queue == "modelrun-cpu"
    assert (job.vcpus, job.memory_mib, job.gpus) == (2, 8192, 0)  # the stack's defaults
    assert job.environment == {
        "MODELRUN_RUN_ID": record.run_id,
        "MODELRUN_RESULTS_URI": record.results_uri,
        "MODELRUN_THREADS": "2",
        "MODELRUN_DEVICE": "cpu",
    }
    stored = world.runs.get(record.run_id)
    assert stored is not None and stored.status is RunStatus.SUBMITTED and stored.job_id == job_id
    assert record.results_uri.startswith("s3://results/")
    # On App credentials the queued state goes to the check run alone (one request).
    assert world.github.calls == ["create_check_run"]


def test_a_gpu_request_gets_the_gpu_queue_and_its_gpus() -> None:
    world = SubmitWorld()
    submit(world, request(compute="gpu", resources={"vcpus": 4, "memory_mib": 16384}))
    (job,) = world.jobs.jobs.values()
    assert (job.queue, job.vcpus, job.memory_mib, job.gpus) == ("modelrun-gpu", 4, 16384, 1)
    assert job.environment["MODELRUN_DEVICE"] == "gpu"


def test_a_duplicate_delivery_submits_nothing_more() -> None:
    world = SubmitWorld()
    first = submit(world, request())
    again = submit(world, request())  # answered from the idempotency record
    world.idempotency.records.clear()  # and after that record expired: the run record decides
    third = submit(world, request())
    assert first.run_id == again.run_id == third.run_id and len(world.jobs.jobs) == 1


def test_an_earlier_attempts_job_is_adopted_not_submitted_again() -> None:
    world = SubmitWorld()
    message = request()
    # An attempt died between SubmitJob and recording the job id: the record has no job id.
    record = submission.new_record(world.settings, message, verified_from(message))
    world.runs.create(record)
    earlier = world.jobs.submit(JobSpec(record.run_id, record.job_queue, "d", {}, vcpus=2, memory_mib=8192, gpus=0))
    submitted = submit(world, message)
    assert submitted.job_id == earlier and len(world.jobs.jobs) == 1


def test_a_batch_event_that_got_there_first_keeps_its_status() -> None:
    world = SubmitWorld()
    world.runs.stale_updates = 1  # RUNNABLE was recorded between the create and the update
    record = submit(world, request())
    stored = world.runs.get(record.run_id)
    assert stored is not None and stored.job_id == next(iter(world.jobs.jobs)) and stored.status is RunStatus.QUEUED


def test_an_image_from_another_repository_is_rejected_before_anything_is_written() -> None:
    world = SubmitWorld()
    foreign = "222233334444.dkr.ecr.us-east-1.amazonaws.com/elsewhere@sha256:" + "cd" * 32
    with pytest.raises(Rejected, match="must come from county-assessor/avm's image repository"):
        submit(world, request(image=foreign))
    # A repository whose name starts like ours is another repository.
    lookalike = f"{MODEL_REPOSITORY_URI}-evil@sha256:" + "cd" * 32
    with pytest.raises(Rejected, match="must come from county-assessor/avm's image repository"):
        submit(world, request(image=lookalike))
    # Another model repository's image on the same stack (its own ECR repository): refused too.
    condo = f"{MODEL_REPOSITORY_URI.rsplit('/', 1)[0]}/modelrun-models/county-assessor/condo@sha256:" + "cd" * 32
    with pytest.raises(Rejected, match="must come from county-assessor/avm's image repository"):
        submit(world, request(image=condo))
    assert world.runs.records == {} and world.jobs.jobs == {} and world.github.calls == []


def test_a_repository_without_a_registration_is_rejected_with_the_fix() -> None:
    world = SubmitWorld()
    world.registrations.by_repository.clear()
    with pytest.raises(Rejected, match="has no registration"):
        submit(world, request())
    assert world.runs.records == {} and world.jobs.jobs == {}


def test_the_job_runs_with_its_repositorys_grant_pr_or_default_branch() -> None:
    world = SubmitWorld()
    secret = "arn:aws:secretsmanager:us-east-1:111122223333:secret:avm/db-password-AbCdEf"
    world.registrations.by_repository["county-assessor/avm"] = registration(
        data_read=["assessor-data/avm/"], secrets=[secret], athena_workgroup="avm"
    )
    record = submit(world, request())
    [job] = world.jobs.jobs.values()
    grant = world.jobs.grants[job.definition]
    assert grant.job_role_arn.endswith("PullRequestJobRole-1") and grant.user is None
    assert grant.secrets == (("AVM_DB_PASSWORD", secret),)
    assert job.environment["MODELRUN_DATA_LOCATIONS"] == "s3://assessor-data/avm/"
    assert job.environment["MODELRUN_ATHENA_WORKGROUP"] == "avm"
    assert record.results_uri.startswith("s3://results/runs/county-assessor/avm/")
    # A verified default-branch run: the baseline job role; a GPU job: a non-root user.
    main = submit(world, request(pr_number=None, head_ref="main", event="push", compute="gpu"))
    assert main.baseline
    main_job = world.jobs.jobs[main.job_id or ""]
    main_grant = world.jobs.grants[main_job.definition]
    assert main_grant.job_role_arn.endswith("BaselineJobRole-1") and main_grant.user == "10001:10001"
    assert main_job.definition != job.definition


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"resources": {"vcpus": 0.25, "memory_mib": 8192}}, "Fargate"),
        ({"compute": "gpu", "resources": {"vcpus": 64}}, "no compute environment"),
        # Fargate runs these; the per-request ceilings (issue 21) do not.
        ({"resources": {"vcpus": 16, "memory_mib": 32768}}, "at most 8 vCPUs and 32768 MiB per run"),
        ({"resources": {"vcpus": 8, "memory_mib": 61440}}, "MaxRequestMemoryMiB"),
    ],
)
def test_a_size_no_compute_environment_can_run_is_rejected(changes: dict[str, Any], reason: str) -> None:
    world = SubmitWorld()
    with pytest.raises(Rejected, match=reason):
        submit(world, request(**changes))
    assert world.runs.records == {}


def test_each_job_carries_its_repositorys_fair_share_identifier() -> None:
    world = SubmitWorld()
    submit(world, request())
    (job,) = world.jobs.jobs.values()
    assert job.share == naming.share_identifier(REPO) and re.fullmatch(r"[A-Za-z0-9_]{1,255}", job.share)
    assert naming.share_identifier("county-assessor/avm") != naming.share_identifier("county_assessor/avm")


def test_a_new_commit_supersedes_the_prs_older_active_runs() -> None:
    world = SubmitWorld()
    older_request = request(head_sha="b" * 40, workflow={"run_id": 800, "run_attempt": 1})
    older = new_record(older_request, job_queue="modelrun-cpu", bucket="results", vcpus=2, memory_mib=8192, gpus=0)
    older = older.model_copy(
        update={"job_id": "job-old", "status": RunStatus.RUNNING, "created_at": "2026-01-01T00:00:00.000Z"}
    )
    world.runs.add(older)
    submit(world, request())
    superseded = world.runs.get(older.run_id)
    assert superseded is not None and superseded.status is RunStatus.SUPERSEDED
    assert superseded.status_reason == f"superseded by {HEAD[:8]}"
    assert world.jobs.terminated == {"job-old": f"superseded by {HEAD[:8]}"}  # as the track step reads it back
    # Its check run ends here, and the comment shows it (no report runs for a superseded run).
    assert len(world.github.comments) == 1 and len(world.github.check_runs) == 2


def test_without_superseding_older_runs_go_on() -> None:
    world = SubmitWorld()
    world.settings = world.settings.model_copy(update={"supersede_older_runs": False})
    older = new_record(
        request(workflow={"run_id": 800, "run_attempt": 1}),
        job_queue="modelrun-cpu",
        bucket="results",
        vcpus=2,
        memory_mib=8192,
        gpus=0,
    )
    world.runs.add(older.model_copy(update={"created_at": "2026-01-01T00:00:00.000Z"}))
    submit(world, request())
    assert world.jobs.terminated == {} and world.runs.records[older.run_id].status is RunStatus.QUEUED


def test_an_operator_rerun_is_the_stored_request_again_as_a_new_attempt() -> None:
    world = SubmitWorld()
    original = submit(world, request())
    stored = world.runs.records[original.run_id]
    world.runs.add(stored.model_copy(update={"status": RunStatus.FAILED}))
    message = RerunRequest(schema_version="1", kind="rerun", run_id=original.run_id, attempt=2, requested_by="ops")
    rerun = submission.rerun(world.deps, message, operator_id="AROAEXAMPLE")
    assert rerun.run_id != original.run_id and rerun.workflow_attempt == 2 and rerun.head_sha == HEAD
    assert len(world.jobs.jobs) == 2
    unknown = message.model_copy(update={"run_id": "no-such-run"})
    with pytest.raises(Rejected, match="unknown"):
        submission.rerun(world.deps, unknown, operator_id="AROAEXAMPLE")


def pr_closed() -> CleanupRequest:
    """PR #42's cleanup request, as its workflow sends it when the PR closes."""
    return CleanupRequest(
        schema_version="1",
        kind="cleanup",
        repository=REPO,
        pr_number=42,
        triggered_by="octocat",
        workflow={"run_id": 901, "run_attempt": 1},  # type: ignore[arg-type]
    )


def test_closing_the_pr_stops_its_active_runs() -> None:
    world = SubmitWorld()
    record = submit(world, request())
    assert submission.cleanup(world.deps, pr_closed()) == [record.run_id]
    stopped = world.runs.records[record.run_id]
    assert stopped.status is RunStatus.CANCELLED and stopped.status_reason == "pull request closed"
    assert world.jobs.terminated == {record.job_id: "pull request closed"} and world.jobs.definitions == {}
    assert len(world.github.comments) == 1  # the comment says so: no report runs for it
    assert submission.cleanup(world.deps, pr_closed()) == []  # nothing active is left


def _older_running(world: SubmitWorld) -> RunRecord:
    older_request = request(head_sha="b" * 40, workflow={"run_id": 800, "run_attempt": 1})
    older = new_record(older_request, job_queue="modelrun-cpu", bucket="results", vcpus=2, memory_mib=8192, gpus=0)
    older = older.model_copy(
        update={"job_id": "job-old", "status": RunStatus.STARTING, "created_at": "2026-01-01T00:00:00.000Z"}
    )
    world.runs.add(older)
    return older


def _track_meanwhile(world: SubmitWorld, status: str, reason: str | None = None) -> FakeReports:
    """Between TerminateJob and the stopping step's write, the track step applies an event."""

    def move(job_id: str, terminate_reason: str) -> None:
        older = next(r for r in world.runs.records.values() if r.job_id == job_id)
        event: dict[str, Any] = {
            "jobName": older.run_id,
            "jobId": job_id,
            "jobQueue": older.job_queue,
            "status": status,
        }
        if status == "FAILED":
            event |= {"statusReason": reason or terminate_reason, "attempts": [{"container": {"exitCode": 137}}]}
        assert (
            tracking.track(track_deps(world.runs, world.github, reports), JobDetail.model_validate(event)) == "advanced"
        )

    reports = FakeReports()
    world.jobs.on_terminate = move
    return reports


@pytest.mark.parametrize("racing", ["RUNNING", "FAILED"])
def test_a_superseded_run_that_moves_meanwhile_still_ends_superseded(racing: str) -> None:
    world = SubmitWorld()
    older = _older_running(world)
    reports = _track_meanwhile(world, racing)
    submit(world, request())
    assert reports.starts == 0  # no report, so no "modelrun failed" alert, for a run stopped on purpose
    ended = world.runs.records[older.run_id]
    assert (ended.status, ended.status_reason) == (RunStatus.SUPERSEDED, f"superseded by {HEAD[:8]}")
    # Its check run ends as superseded (neutral), whichever step wrote first.
    assert [c["conclusion"] for c in world.github.check_runs.values() if c.get("conclusion")] == ["neutral"]


def test_a_run_that_ended_on_its_own_first_keeps_its_end() -> None:
    world = SubmitWorld()
    older = _older_running(world)
    reports = _track_meanwhile(world, "FAILED", reason="Essential container in task exited")
    submit(world, request())
    assert world.runs.records[older.run_id].status is RunStatus.FAILED  # it failed before it was stopped
    assert reports.starts == 1  # and is reported (and alerted) as a failure


@pytest.mark.parametrize("racing", ["RUNNING", "FAILED"])
def test_a_run_caught_moving_when_its_pr_closes_ends_cancelled(racing: str) -> None:
    world = SubmitWorld()
    record = submit(world, request())
    reports = _track_meanwhile(world, racing)
    assert submission.cleanup(world.deps, pr_closed()) == [record.run_id]
    stopped = world.runs.records[record.run_id]
    assert (stopped.status, stopped.status_reason) == (RunStatus.CANCELLED, "pull request closed")
    assert reports.starts == 0


def test_on_a_token_the_queued_state_goes_to_the_comment() -> None:
    world = SubmitWorld(github=FakeGitHub(uses_app=False))
    world.jobs.ahead = 3
    submit(world, request())
    assert world.github.calls == ["create_comment"] and "3" in world.github.comment_bodies()[0]


# --- the evidence ---------------------------------------------------------------------------


def with_token(message: RunRequest) -> RunRequest:
    return message.model_copy(update={"identity": Identity(oidc_token=TOKEN)})


def test_a_request_with_evidence_is_verified_from_the_token_and_githubs_record() -> None:
    world = SubmitWorld()
    world.verifier.tokens[TOKEN] = claims()
    world.repositories.runs[(REPO, 900, 1)] = workflow_run()
    verified = verification.verify_run(world.deps, with_token(request()), sent_at=1_100)
    assert (verified.pr_number, verified.base_sha, verified.environment) == (42, MAIN, "staging")
    assert world.repositories.calls == [(REPO, 900, 1)]


def test_a_request_without_a_token_is_unverified() -> None:
    with pytest.raises(Unverified, match="no OIDC token"):
        verification.verify_run(SubmitWorld().deps, request(), sent_at=1_100)


def test_a_repository_this_stack_does_not_serve_is_not_even_looked_up() -> None:
    world = SubmitWorld()
    world.verifier.tokens[TOKEN] = claims(repository="someone/else")
    with pytest.raises(Unverified, match="not served by this stack"):
        verification.verify_run(world.deps, with_token(request()), sent_at=1_100)
    assert world.repositories.calls == []


def test_a_token_sent_after_it_expired_is_unverified() -> None:
    world = SubmitWorld()
    world.verifier.tokens[TOKEN] = claims()
    # Past exp (1,300) and its 60 s of skew, yet within the 900 s max age: only expiry refuses it.
    with pytest.raises(Unverified, match="had expired when the message was sent"):
        verification.verify_run(world.deps, with_token(request()), sent_at=1_400)


# --- the gate before GitHub (issue 21) -----------------------------------------------------------


def test_a_tokens_claims_count_once_and_duplicates_cost_no_github_call() -> None:
    world = SubmitWorld()
    world.verifier.tokens[TOKEN] = claims()
    world.repositories.runs[(REPO, 900, 1)] = workflow_run()
    verification.verify_run(world.deps, with_token(request()), 1_100, verification.Receipt("m-1", "d-1"))
    for n in range(2, 121):  # 119 more copies, each its own SQS message (and perhaps a fresh token)
        with pytest.raises(Duplicate):
            verification.verify_run(world.deps, with_token(request()), 1_100, verification.Receipt(f"m-{n}", "d"))
    assert world.repositories.calls == [(REPO, 900, 1)]
    # A redelivery of the message that counts is not a duplicate; once it failed, another may count.
    verification.verify_run(world.deps, with_token(request()), 1_100, verification.Receipt("m-1", "d-1"))
    world.gate.release("m-1")
    verification.verify_run(world.deps, with_token(request()), 1_100, verification.Receipt("m-7", "d-7"))


def test_a_repositorys_distinct_requests_are_rate_limited_with_a_clear_reason() -> None:
    world = SubmitWorld(settings=SubmitSettings.from_environ(ENVIRONMENT | {"MAX_REQUESTS_PER_REPOSITORY_HOUR": "2"}))
    for run in (900, 901, 902):
        world.verifier.tokens[f"{TOKEN}{run}"] = claims(run_id=run)
        world.repositories.runs[(REPO, run, 1)] = workflow_run(id=run)
    verify = verification.verify_run
    for run in (900, 901):
        message = request().model_copy(update={"identity": Identity(oidc_token=f"{TOKEN}{run}")})
        message = message.model_copy(update={"workflow": message.workflow.model_copy(update={"run_id": run})})
        verify(world.deps, message, 1_100, verification.Receipt(f"m-{run}", "d"))
    message = request().model_copy(update={"identity": Identity(oidc_token=f"{TOKEN}902")})
    message = message.model_copy(update={"workflow": message.workflow.model_copy(update={"run_id": 902})})
    with pytest.raises(Rejected, match=r"rate limit: .* more than 2 run requests this hour"):
        verify(world.deps, message, 1_100, verification.Receipt("m-902", "d"))
    assert [c[1] for c in world.repositories.calls] == [900, 901]


def test_a_redriven_token_is_judged_by_when_this_function_first_received_its_body() -> None:
    world = SubmitWorld()
    world.verifier.tokens[TOKEN] = claims()
    world.repositories.runs[(REPO, 900, 1)] = workflow_run()
    # Redriven long after: without a remembered first receipt, expired (whatever the message says).
    with pytest.raises(Unverified, match="had expired"):
        verification.verify_run(world.deps, with_token(request()), 5_000, verification.Receipt("m-1", "body"))
    world.gate.release("m-1")
    world.gate.remember_sent("body", 1_100)  # the submit function received this body at 1,100
    verification.verify_run(world.deps, with_token(request()), 5_000, verification.Receipt("m-2", "body"))
    # Another body (another token) gains nothing from it.
    with pytest.raises(Unverified, match="had expired"):
        verification.verify_run(world.deps, with_token(request()), 5_000, verification.Receipt("m-3", "other"))


def test_run_variables_reach_the_container_and_never_replace_a_secret() -> None:
    world = SubmitWorld()
    submit(world, request(variables={"RUN_TYPE": "full", "SAMPLE": "0.1"}))
    [job] = world.jobs.jobs.values()
    assert job.environment["RUN_TYPE"] == "full" and job.environment["SAMPLE"] == "0.1"
    secret = "arn:aws:secretsmanager:us-east-1:111122223333:secret:db-password-AbCdEf"
    world.registrations.by_repository["county-assessor/avm"] = registration(secrets=[secret])
    with pytest.raises(Rejected, match="DB_PASSWORD would replace the repository's secrets"):
        submit(world, request(variables={"DB_PASSWORD": "x"}, workflow={"run_id": 9000009, "run_attempt": 1}))


@pytest.mark.parametrize(
    ("variables", "problem"),
    [
        ({"MODELRUN_RUN_ID": "x"}, "reserved"),
        ({"AWS_REGION": "x"}, "reserved"),
        ({"lower": "x"}, "pattern"),
        ({"A": "x" * 1025}, "1024"),
        ({f"V{i}": "x" for i in range(21)}, "at most 20"),
        ({f"V{i}": "x" * 1000 for i in range(5)}, "at most 4096 bytes"),
        ({"A": "line\x00"}, "control characters"),
    ],
)
def test_run_variables_are_checked(variables: dict[str, str], problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        request(variables=variables)


def test_the_image_must_be_the_one_the_verified_run_built() -> None:
    """Issue 21: an image another run (or nobody) tagged is refused before anything is written."""
    world = SubmitWorld()
    message = request()
    untagged = r"was not built by workflow run 900 attempt 1 for aaaaaaaaaaaa \(its tags: none\)"
    with pytest.raises(Rejected, match=untagged):
        submission.submit(world.deps, message, verified_from(message))
    other_run = request(workflow={"run_id": 901, "run_attempt": 1})
    world.images.built(other_run)  # the same digest, pushed by another run
    with pytest.raises(Rejected, match="was not built by workflow run 900 attempt 1"):
        submission.submit(world.deps, message, verified_from(message))
    assert world.runs.records == {} and world.jobs.jobs == {}
    world.images.built(message)
    assert submission.submit(world.deps, message, verified_from(message)).status.value == "SUBMITTED"
