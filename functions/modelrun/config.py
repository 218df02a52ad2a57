"""Each function's settings: the variables its template.yaml entry sets (Globals and its own),
nothing else, validated at cold start.

A handler module builds its model from ``os.environ`` when Lambda imports it, so a variable the
template stopped setting (or a value of the wrong type) fails the function's init with the
variable's name, not its first request with a KeyError or a wrong default. Names are the
variables' own (the aliases); tests/unit/test_config.py holds every field to the template.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Annotated, Self

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from modelrun.errors import SettingsInvalid, validation_problems


def _url(value: object) -> object:
    return value.rstrip("/") if isinstance(value, str) else value


def _items(value: object) -> object:
    """A comma-joined list (CloudFormation's ``!Join [",", ...]``) as its non-empty items."""
    return tuple(v.strip() for v in value.split(",") if v.strip()) if isinstance(value, str) else value


def _repositories(value: object) -> object:
    items = _items(value)
    return frozenset(r.lower() for r in items) if isinstance(items, tuple) else items


Url = Annotated[str, BeforeValidator(_url)]


class _FromEnvironment(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> Self:
        """The settings from ``environ`` (the process's environment); SettingsInvalid names
        every variable that is missing or malformed."""
        try:
            return cls.model_validate(dict(os.environ if environ is None else environ))
        except ValidationError as error:
            problems = "; ".join(validation_problems(error))
            raise SettingsInvalid(f"{cls.__name__}: {problems} (template.yaml sets these)") from None


class _RunsTable(_FromEnvironment):
    runs_table: str = Field(alias="RUNS_TABLE", min_length=1)


class _GitHub(_FromEnvironment):
    github_secret_arn: str = Field(alias="GITHUB_SECRET_ARN", min_length=1)
    github_api_url: Url = Field(alias="GITHUB_API_URL", min_length=1)


class SubmitSettings(_RunsTable, _GitHub):
    results_bucket: str = Field(alias="RESULTS_BUCKET", min_length=1)
    github_server_url: Url = Field(alias="GITHUB_SERVER_URL", min_length=1)
    idempotency_table: str = Field(alias="IDEMPOTENCY_TABLE", min_length=1)
    rejected_queue_url: str = Field(alias="REJECTED_QUEUE_URL", min_length=1)
    cpu_job_queue: str = Field(alias="CPU_JOB_QUEUE", min_length=1)
    gpu_job_queue: str = Field(alias="GPU_JOB_QUEUE", min_length=1)
    job_role_arn: str = Field(alias="JOB_ROLE_ARN", min_length=1)
    job_execution_role_arn: str = Field(alias="JOB_EXECUTION_ROLE_ARN", min_length=1)
    job_timeout_seconds: int = Field(alias="JOB_TIMEOUT_SECONDS", gt=0)
    default_vcpus: float = Field(alias="DEFAULT_VCPUS", gt=0)
    default_memory_mib: int = Field(alias="DEFAULT_MEMORY_MIB", gt=0)
    default_gpus: int = Field(alias="DEFAULT_GPUS", ge=0)
    gpu_instance_types: Annotated[tuple[str, ...], BeforeValidator(_items)] = Field(alias="GPU_INSTANCE_TYPES")
    gpu_max_vcpus: int = Field(alias="GPU_MAX_VCPUS", gt=0)
    supersede_older_runs: bool = Field(alias="SUPERSEDE_OLDER_RUNS")
    model_repository_uri: str = Field(alias="MODEL_REPOSITORY_URI", min_length=1)
    allowed_repositories: Annotated[frozenset[str], BeforeValidator(_repositories)] = Field(
        alias="ALLOWED_REPOSITORIES"
    )
    oidc_issuer: str = Field(alias="OIDC_ISSUER", min_length=1)
    oidc_audience: str = Field(alias="OIDC_AUDIENCE", min_length=1)
    oidc_max_age_seconds: int = Field(alias="OIDC_MAX_AGE_SECONDS", gt=0)
    approval_environment: str = Field(alias="APPROVAL_ENVIRONMENT")
    baseline_environment: str = Field(alias="BASELINE_ENVIRONMENT")
    operator_queue_arn: str = Field(alias="OPERATOR_QUEUE_ARN", min_length=1)


class TrackSettings(_RunsTable, _GitHub):
    region: str = Field(alias="AWS_REGION", min_length=1)  # Lambda's own variable
    report_state_machine_arn: str = Field(alias="REPORT_STATE_MACHINE_ARN", min_length=1)
    rejected_events_queue_url: str = Field(alias="REJECTED_EVENTS_QUEUE_URL", min_length=1)


class CollectResultsSettings(_RunsTable):
    region: str = Field(alias="AWS_REGION", min_length=1)
    results_bucket: str = Field(alias="RESULTS_BUCKET", min_length=1)


class UpdatePullRequestSettings(_RunsTable, _GitHub):
    pass
