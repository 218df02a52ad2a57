"""Issues 21 and 22: two model repositories on one stack, each with its repository stack
(repository.yaml). Each is compared with its own main run; a job of one reaches neither the
other's results, nor its data, nor its images; its GitHub roles reach neither the other's images
nor its build cache; a job reads its own data grant and gets its own secrets; and even a job of
the same repository that rewrites its main run's files changes nothing a report compares with
(reports read collected copies). One LocalRuntime for the module."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from modelrun.adapters.aws import RunsTable
from modelrun.domain.documents import report_of
from modelrun.domain.naming import LOG_GROUP
from modelrun.domain.run import RunRecord
from modelrun_cli.enqueue import build_request, parse_variables
from modelrun_local.runtime import NOOP_MODEL_DIR, LocalRuntime
from modelrun_local.workflow_job import Job, branch_job, pull_request_job, retarget
from tests.integration.flow import dead_letter_reason, job_role_client, job_role_s3, with_command

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
AVM, CONDO = "county-assessor/avm", "county-assessor/condo"
MAIN = {AVM: "a1" * 20, CONDO: "c1" * 20}
DATA = "modelrun-local-data"
GRANTS = {
    AVM: {"DataReadLocations": f"{DATA}/county-assessor/avm/"},
    CONDO: {
        "DataReadLocations": f"{DATA}/county-assessor/condo/",
        "MainDataWriteLocations": f"{DATA}/county-assessor/condo/dvc/",
        "AthenaWorkgroup": "condo",
        "AthenaResultsLocation": f"{DATA}/athena/condo/",
        "GlueDatabase": "condo_sales",
    },
}
SECRETS = {CONDO: {"condo/db-password": "hunter2-condo"}}


class TwoRepositories:
    def __init__(self, runtime: LocalRuntime, images: dict[str, str]) -> None:
        self.runtime = runtime
        self.images = images
        self.queue_url = runtime.outputs["RunRequestsQueueUrl"]
        self.table = RunsTable(runtime.outputs["RunsTableName"])

    def event(self, repository: str, pr: int, sha: str) -> dict[str, Any]:
        sample = json.loads((FIXTURES / "webhooks" / "pull_request.opened.json").read_text())
        event = retarget(sample, repository)
        event["number"] = event["pull_request"]["number"] = pr
        event["pull_request"]["head"] |= {"sha": sha, "ref": f"feature-{pr}"}
        event["pull_request"]["base"]["sha"] = MAIN[repository]
        return event

    def main_job(self, repository: str, run_id: int) -> Job:
        payload = self.event(repository, 0, MAIN[repository])["repository"]
        return branch_job(
            self.runtime.github, payload, "push", branch="main", sha=MAIN[repository], run_id=run_id, actor="maintainer"
        )

    def pr_job(self, repository: str, pr: int, run_id: int, sha: str) -> Job:
        return pull_request_job(self.runtime.github, self.event(repository, pr, sha), run_id=run_id)

    def run(self, job: Job, repository: str, *command: str, image: str | None = None, variables: str = "") -> str:
        built = job.request(image or self.images[repository], variables=parse_variables(variables))
        return job.send(with_command(built, *(command or ("ok",))), self.queue_url)

    def record_of(self, sha: str) -> RunRecord:
        (record,) = [r for r in self.table.scan() if r.head_sha == sha]
        return record

    def log_of(self, sha: str) -> str:
        record = self.record_of(sha)
        events = boto3.client("logs").filter_log_events(logGroupName=LOG_GROUP)["events"]
        stream = record.log_stream or ""
        return "\n".join(e["message"] for e in events if stream and e.get("logStreamName") == stream)

    def compared(self, sha: str) -> tuple[Any, ...]:
        record = self.record_of(sha)
        report = report_of(record.report)
        assert record.status.value == "SUCCEEDED" and report.baseline is not None and report.comparison is not None
        changes = {k: v.model_dump(exclude={"seconds"}) for k, v in report.comparison.changes.items()}
        return report.baseline.run_id, report.comparison.status, changes, report.params_diff

    def wait(self) -> None:
        self.runtime.wait_until_idle(timeout=90)


@pytest.fixture(scope="module")
def stack() -> Iterator[TwoRepositories]:
    with LocalRuntime(
        parameters={"LogLevel": "WARNING", "GitHubRepositories": f"{AVM},{CONDO}"},
        repository_parameters=GRANTS,
        secrets=SECRETS,
    ) as runtime:
        s3 = boto3.client("s3")  # the operator puts each team's data where its grant points
        s3.create_bucket(Bucket=DATA)
        for repository in (AVM, CONDO):
            s3.put_object(
                Bucket=DATA, Key=f"{repository}/sales.csv", Body=f"sale_id,sale_price\n{repository},1\n".encode()
            )
        images = {r: runtime.push_image(NOOP_MODEL_DIR, tag="noop", repository=r) for r in (AVM, CONDO)}
        s = TwoRepositories(runtime, images)
        s.run(s.main_job(AVM, 6_000_001), AVM)
        s.run(s.main_job(CONDO, 6_000_002), CONDO)
        s.wait()
        assert s.record_of(MAIN[AVM]).baseline and s.record_of(MAIN[CONDO]).baseline
        yield s


def refused(call: Any) -> str:
    with pytest.raises(ClientError) as error:
        call()
    return str(error.value.response["Error"]["Code"])


def test_each_repository_is_compared_with_its_own_main_run_which_no_job_can_change(stack: TwoRepositories) -> None:
    stack.run(stack.pr_job(AVM, 401, 6_000_401, "a2" * 20), AVM)
    stack.run(stack.pr_job(CONDO, 402, 6_000_402, "c2" * 20), CONDO)
    stack.wait()
    before = stack.compared("a2" * 20)
    assert before[0] == stack.record_of(MAIN[AVM]).run_id and before[1] == "paired"
    assert stack.compared("c2" * 20)[0] == stack.record_of(MAIN[CONDO]).run_id

    main = stack.record_of(MAIN[AVM])
    assert main.results_uri.startswith(f"s3://{stack.runtime.outputs['ResultsBucketName']}/runs/{AVM}/")
    bucket, prefix = main.results_uri.removeprefix("s3://").split("/", 1)
    rows = ["sale_id,sale_price,estimate,area"] + [f"s{i + 1},1000,1,1" for i in range(20)]
    forged = gzip.compress(("\n".join(rows) + "\n").encode())
    # A condo PR's container cannot write anywhere under avm's results, even knowing the key.
    condo = job_role_s3(stack.runtime, "condo-attacker", CONDO)
    assert refused(lambda: condo.put_object(Bucket=bucket, Key=f"{prefix}predictions.csv.gz", Body=forged)) == (
        "AccessDenied"
    )
    # The worst case within one repository: avm's own PR job rewrites its main run's files and
    # archives its metrics (the key leaked). Reports compare with the collected copies only.
    avm = job_role_s3(stack.runtime, "avm-attacker", AVM)
    avm.put_object(Bucket=bucket, Key=f"{prefix}predictions.csv.gz", Body=forged)
    avm.put_object(Bucket=bucket, Key=f"{prefix}params.yaml", Body=b"someone: was here\n")
    avm.put_object(Bucket=bucket, Key=f"{prefix}metrics.json", Body=b"{}", StorageClass="GLACIER")

    stack.run(stack.pr_job(AVM, 403, 6_000_403, "a3" * 20), AVM)
    stack.wait()
    assert stack.compared("a3" * 20) == before
    [comment] = stack.runtime.github.comments(AVM, 403)
    assert "was here" not in comment["body"] and "No detectable change against main" in comment["body"]


def test_a_job_reads_its_repositorys_data_and_is_refused_the_others(stack: TwoRepositories) -> None:
    own, other = f"s3://{DATA}/{CONDO}/sales.csv", f"s3://{DATA}/{AVM}/sales.csv"
    stack.run(stack.pr_job(CONDO, 410, 6_000_410, "c4" * 20), CONDO, "read", own)
    stack.run(stack.pr_job(CONDO, 411, 6_000_411, "c5" * 20), CONDO, "read", other)
    stack.wait()
    assert stack.record_of("c4" * 20).status.value == "SUCCEEDED"
    size = len(f"sale_id,sale_price\n{CONDO},1\n")
    assert f"read {size} bytes from {own}" in stack.log_of("c4" * 20)
    assert stack.record_of("c5" * 20).status.value == "FAILED"
    assert f"cannot read {other}: AccessDenied" in stack.log_of("c5" * 20)

    # Shared data (the DVC remote): the default branch's job role may write it, a PR's never.
    pr = job_role_s3(stack.runtime, "condo-pr", CONDO)
    baseline = job_role_s3(stack.runtime, "condo-main", CONDO, output="BaselineJobRoleArn")
    key = f"{CONDO}/dvc/files/md5/ab/cdef"
    assert refused(lambda: pr.put_object(Bucket=DATA, Key=key, Body=b"pr")) == "AccessDenied"
    baseline.put_object(Bucket=DATA, Key=key, Body=b"main")
    assert refused(lambda: baseline.put_object(Bucket=DATA, Key=f"{AVM}/dvc/x", Body=b"main")) == "AccessDenied"
    assert refused(lambda: pr.get_object(Bucket=DATA, Key=f"{AVM}/sales.csv")) == "AccessDenied"

    # Athena: queries in its own workgroup only.
    athena = boto3.client("athena")
    for workgroup in ("condo", "avm"):
        athena.create_work_group(Name=workgroup)
    condo_athena = job_role_client(stack.runtime, "athena", "condo-query", CONDO)
    query = {"QueryString": "SELECT 1", "QueryExecutionContext": {"Database": "condo_sales"}}
    assert condo_athena.start_query_execution(**query, WorkGroup="condo")["QueryExecutionId"]
    assert refused(lambda: condo_athena.start_query_execution(**query, WorkGroup="avm")) == "AccessDeniedException"
    avm_athena = job_role_client(stack.runtime, "athena", "avm-query", AVM)
    assert refused(lambda: avm_athena.start_query_execution(**query, WorkGroup="condo")) == "AccessDeniedException"


def test_a_job_gets_its_repositorys_secrets_and_runs_only_its_repositorys_images(stack: TwoRepositories) -> None:
    stack.run(stack.pr_job(CONDO, 420, 6_000_420, "c6" * 20), CONDO, "secret", "CONDO_DB_PASSWORD")
    stack.run(stack.pr_job(AVM, 421, 6_000_421, "a6" * 20), AVM, "secret", "CONDO_DB_PASSWORD")
    # The caller's run variables (the dispatch form's one line) reach the container, and the PR shows them.
    stack.run(stack.pr_job(AVM, 424, 6_000_424, "a7" * 20), AVM, "secret", "RUN_TYPE", variables="RUN_TYPE=full; N=3")
    stack.wait()
    assert "secret RUN_TYPE: 4 characters" in stack.log_of("a7" * 20)
    [comment] = stack.runtime.github.comments(AVM, 424)
    assert "Variables: <code>N&#61;3</code> · <code>RUN&#95;TYPE&#61;full</code>" in comment["body"], comment["body"]
    assert stack.record_of("c6" * 20).status.value == "SUCCEEDED"
    assert "secret CONDO_DB_PASSWORD: 13 characters" in stack.log_of("c6" * 20)
    assert "hunter2" not in stack.log_of("c6" * 20)
    assert "secret CONDO_DB_PASSWORD: not set" in stack.log_of("a6" * 20)

    # A condo request naming avm's image: refused before any job, with the reason.
    message_id = stack.run(stack.pr_job(CONDO, 422, 6_000_422, "c7" * 20), CONDO, image=stack.images[AVM])
    reason = dead_letter_reason(boto3.client("sqs"), stack.runtime.outputs["RunRequestsDLQUrl"], message_id)
    assert f"must come from {CONDO}'s image repository" in reason, reason

    # An image of condo's own repository that this run did not build (no tag naming its run):
    # refused too, before any job.
    unbuilt = stack.runtime.push_image(NOOP_MODEL_DIR, tag="unbuilt", python=Path("/usr/bin/python3"), repository=CONDO)
    job = stack.pr_job(CONDO, 423, 6_000_423, "c9" * 20)
    request = with_command(build_request(job.event_name, job.event, job.env, image=unbuilt), "ok")
    message_id = job.send(request, stack.queue_url)
    reason = dead_letter_reason(boto3.client("sqs"), stack.runtime.outputs["RunRequestsDLQUrl"], message_id)
    assert "was not built by workflow run 6000423 attempt 1" in reason, reason

    # Even a job definition made by hand with condo's roles and avm's image does not start:
    # condo's execution role cannot pull avm's images.
    condo = stack.runtime.repository_stack(CONDO)
    batch = boto3.client("batch")
    definition = batch.register_job_definition(
        jobDefinitionName="by-hand",
        type="container",
        containerProperties={
            "image": stack.images[AVM],
            "jobRoleArn": condo["PullRequestJobRoleArn"],
            "executionRoleArn": condo["JobExecutionRoleArn"],
            "command": ["python", "job.py", "ok"],
            "resourceRequirements": [{"type": "VCPU", "value": "1"}, {"type": "MEMORY", "value": "2048"}],
        },
    )["jobDefinitionArn"]
    queue = stack.runtime.outputs["CpuJobQueueArn"]
    job_id = batch.submit_job(jobName="by-hand", jobQueue=queue, jobDefinition=definition, shareIdentifier="x")["jobId"]
    stack.wait()
    [detail] = batch.describe_jobs(jobs=[job_id])["jobs"]
    assert detail["status"] == "FAILED" and detail["statusReason"].startswith("CannotPullContainerError"), detail


def test_github_roles_reach_only_their_repositorys_images_and_build_cache(stack: TwoRepositories) -> None:
    pr_ecr = stack.pr_job(CONDO, 430, 6_000_430, "c8" * 20).aws_session().client("ecr")
    main_ecr = stack.main_job(CONDO, 6_000_431).aws_session().client("ecr")
    avm_images = stack.runtime.repository_stack(AVM)["ImageRepositoryName"]
    condo_images = stack.runtime.repository_stack(CONDO)["ImageRepositoryName"]
    digest: Any = {"imageDigest": stack.images[AVM].rsplit("@", 1)[1]}
    assert refused(lambda: pr_ecr.batch_get_image(repositoryName=avm_images, imageIds=[digest])) == (
        "AccessDeniedException"
    )
    own: Any = {"imageDigest": stack.images[CONDO].rsplit("@", 1)[1]}
    assert pr_ecr.batch_get_image(repositoryName=condo_images, imageIds=[own])["images"]
    manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json"})
    for ecr, repository in ((pr_ecr, f"{condo_images}/cache"), (main_ecr, f"{avm_images}/cache")):
        code = refused(
            lambda: ecr.put_image(repositoryName=repository, imageManifest=manifest, imageTag="buildcache-cpu")
        )
        assert code == "AccessDeniedException", repository
    main_ecr.put_image(repositoryName=f"{condo_images}/cache", imageManifest=manifest, imageTag="buildcache-cpu")
