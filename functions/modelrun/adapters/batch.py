"""AWS Batch: job definitions per image digest, job submission, lookups and termination."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from modelrun.adapters.aws import client
from modelrun.domain import naming
from modelrun.domain.registration import JobGrant
from modelrun.domain.report import RUNS_AHEAD_CAP
from modelrun.ports import JobSpec

ACTIVE_BATCH_STATUSES = ("SUBMITTED", "PENDING", "RUNNABLE", "STARTING", "RUNNING")

# First match wins and an unmatched failure is retried, so the list ends with EXIT on "*".
RETRY_STRATEGY = {
    "attempts": 3,
    "evaluateOnExit": [
        {"onStatusReason": "Host EC2*", "action": "RETRY"},
        {"onReason": "*", "action": "EXIT"},
    ],
}


class BatchJobs:
    def __init__(self, timeout_seconds: int) -> None:
        self.timeout_seconds = timeout_seconds

    @property
    def batch(self) -> Any:
        return client("batch")  # made on first use (adapters/aws.py)

    def job_definition(self, image: str, compute: str, tags: dict[str, str], grant: JobGrant) -> str:
        """The ACTIVE job definition for this image, compute kind and grant (the repository's
        roles and secrets, a PR's or the default branch's), registered on first use."""
        name = naming.job_definition_name(image, compute, grant.key)
        found = self.batch.describe_job_definitions(jobDefinitionName=name, status="ACTIVE")["jobDefinitions"]
        if found:
            return str(max(found, key=lambda d: d["revision"])["jobDefinitionArn"])
        container: dict[str, Any] = {
            "image": image,
            "jobRoleArn": grant.job_role_arn,
            "executionRoleArn": grant.execution_role_arn,
            # Sizes are set per run by containerOverrides; these are the floor Batch requires.
            "resourceRequirements": [{"type": "VCPU", "value": "1"}, {"type": "MEMORY", "value": "2048"}],
            "logConfiguration": {"logDriver": "awslogs"},
        }
        if grant.secrets:
            container["secrets"] = [{"name": name, "valueFrom": arn} for name, arn in grant.secrets]
        if grant.user:
            container["user"] = grant.user
        if compute == "cpu":
            container["networkConfiguration"] = {"assignPublicIp": "DISABLED"}
            container["fargatePlatformConfiguration"] = {"platformVersion": "LATEST"}
            platform = "FARGATE"
        else:
            platform = "EC2"
        arn: str = self.batch.register_job_definition(
            jobDefinitionName=name,
            type="container",
            platformCapabilities=[platform],
            containerProperties=container,
            retryStrategy=RETRY_STRATEGY,
            timeout={"attemptDurationSeconds": self.timeout_seconds},
            propagateTags=True,
            tags=tags,
        )["jobDefinitionArn"]
        return arn

    def find_job(self, job_queue: str, job_name: str) -> str | None:
        """The id of a job of this name in the queue, whatever its status."""
        jobs = self.batch.list_jobs(jobQueue=job_queue, filters=[{"name": "JOB_NAME", "values": [job_name]}])
        matches = [j for j in jobs.get("jobSummaryList", []) if j["jobName"] == job_name]
        return str(matches[0]["jobId"]) if matches else None

    def submit(self, job: JobSpec) -> str:
        requirements = [
            {"type": "VCPU", "value": f"{job.vcpus:g}"},
            {"type": "MEMORY", "value": str(job.memory_mib)},
        ]
        if job.gpus:
            requirements.append({"type": "GPU", "value": str(job.gpus)})
        overrides: dict[str, Any] = {
            "environment": [{"name": k, "value": v} for k, v in sorted(job.environment.items())],
            "resourceRequirements": requirements,
        }
        if job.command:
            overrides["command"] = job.command
        # A queue with a fair-share scheduling policy refuses a job without its share.
        share = {"shareIdentifier": job.share} if job.share else {}
        job_id: str = self.batch.submit_job(
            jobName=job.name,
            jobQueue=job.queue,
            jobDefinition=job.definition,
            containerOverrides=overrides,
            tags=job.tags,
            propagateTags=True,
            **share,
        )["jobId"]
        return job_id

    def terminate(self, job_id: str, reason: str) -> None:
        try:
            self.batch.terminate_job(jobId=job_id, reason=reason)
        except ClientError as error:  # already gone: nothing to stop
            if error.response["Error"]["Code"] != "ClientException":
                raise

    def runnable_ahead(self, job_queue: str, own_job_id: str) -> int:
        """Jobs waiting for capacity before ours: one page of RUNNABLE jobs, at most RUNS_AHEAD_CAP.

        SUBMITTED and PENDING last seconds (no dependencies here), so RUNNABLE is the wait that
        matters; one bounded call keeps a long queue from making every submission slower.
        """
        page = self.batch.list_jobs(jobQueue=job_queue, jobStatus="RUNNABLE", maxResults=RUNS_AHEAD_CAP)
        ahead = sum(1 for job in page.get("jobSummaryList", []) if job["jobId"] != own_job_id)
        return RUNS_AHEAD_CAP if page.get("nextToken") else ahead

    def deregister(self, job_definitions: set[str]) -> int:
        """Deregister these job definitions (ARNs), those still ACTIVE."""
        count = 0
        for arn in sorted(job_definitions):
            found = self.batch.describe_job_definitions(jobDefinitions=[arn], status="ACTIVE")["jobDefinitions"]
            if found:
                self.batch.deregister_job_definition(jobDefinition=arn)
                count += 1
        return count
