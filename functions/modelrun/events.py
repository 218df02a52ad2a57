"""The Batch "Job State Change" event, as AWS documents it; unknown fields are tolerated.

Only what modelrun reads is declared. ``detail`` mirrors DescribeJobs' JobDetail and gains
fields over time, so every model ignores extras; ``account`` is optional because some emitters
(moto among them) leave it out of the envelope.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.parser.models import SqsRecordModel
from pydantic import BaseModel, ConfigDict, Field, Json, field_validator

from modelrun.domain.status import BATCH_STATUSES


class _Tolerant(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)


class ContainerDetail(_Tolerant):
    exit_code: int | None = Field(default=None, alias="exitCode")
    reason: str | None = None
    log_stream_name: str | None = Field(default=None, alias="logStreamName")


class AttemptDetail(_Tolerant):
    started_at: int | None = Field(default=None, alias="startedAt")
    stopped_at: int | None = Field(default=None, alias="stoppedAt")
    status_reason: str | None = Field(default=None, alias="statusReason")
    container: ContainerDetail | None = None


class JobDetail(_Tolerant):
    job_name: str = Field(alias="jobName")
    job_id: str = Field(alias="jobId")
    job_queue: str = Field(alias="jobQueue")
    status: str
    status_reason: str | None = Field(default=None, alias="statusReason")
    attempts: list[AttemptDetail] = Field(default_factory=list)
    created_at: int | None = Field(default=None, alias="createdAt")
    started_at: int | None = Field(default=None, alias="startedAt")
    stopped_at: int | None = Field(default=None, alias="stoppedAt")
    container: ContainerDetail | None = None
    tags: dict[str, Any] | None = None

    @field_validator("status")
    @classmethod
    def _known(cls, status: str) -> str:
        # A status this code cannot place in the run's order could never be applied: refused
        # here, so the event is dead-lettered once with this reason instead of failing five times.
        if status not in BATCH_STATUSES:
            raise ValueError(f"{status!r} is not a Batch job status ({', '.join(sorted(BATCH_STATUSES))})")
        return status

    @property
    def attempt(self) -> int:
        """0-based index of the attempt this event is about."""
        finished = len(self.attempts)
        return max(0, finished - 1) if self.status in ("SUCCEEDED", "FAILED") else finished


class BatchJobStateChange(_Tolerant):
    version: str | None = None
    id: str
    detail_type: str = Field(alias="detail-type")
    source: str
    account: str | None = None
    time: str | None = None
    region: str | None = None
    resources: list[str] = Field(default_factory=list)
    detail: JobDetail


class JobEventRecord(SqsRecordModel):
    body: Json[BatchJobStateChange]
