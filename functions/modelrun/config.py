"""Each function's settings: the variables its template.yaml entry sets (Globals and its own),
nothing else, validated at cold start.

A handler module builds its model from ``os.environ`` when Lambda imports it, so a variable the
template stopped setting (or a value of the wrong type) fails the function's init with the
variable's name, not its first request with a KeyError or a wrong default. A field reads the
variable of its name in capitals (``region``: Lambda's AWS_REGION); tests/unit/test_config.py
holds every field to the template.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Annotated, Self

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from modelrun.errors import SettingsInvalid, describe


def _url(value: object) -> object:
    return value.rstrip("/") if isinstance(value, str) else value


def _items(value: object) -> object:
    """A comma-joined list (CloudFormation's ``!Join [",", ...]``) as its non-empty items."""
    return tuple(v.strip() for v in value.split(",") if v.strip()) if isinstance(value, str) else value


def _repositories(value: object) -> object:
    items = _items(value)
    return frozenset(r.lower() for r in items) if isinstance(items, tuple) else items


NonEmpty = Annotated[str, Field(min_length=1)]  # a name, an ARN, a URL: never ""
Url = Annotated[str, BeforeValidator(_url), Field(min_length=1)]


class _FromEnvironment(BaseModel):
    # A field reads the variable of its name in capitals (an alias names the exceptions).
    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True, alias_generator=str.upper)

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> Self:
        """The settings from ``environ`` (the process's environment); SettingsInvalid names
        every variable that is missing or malformed."""
        try:
            return cls.model_validate(dict(os.environ if environ is None else environ))
        except ValidationError as error:
            raise SettingsInvalid(f"{cls.__name__}: {describe(error)} (template.yaml sets these)") from None


class _RunsTable(_FromEnvironment):
    runs_table: NonEmpty


class _GitHub(_FromEnvironment):
    github_secret_arn: NonEmpty
    github_api_url: Url


class _Queue(_FromEnvironment):
    """The SQS queue(s) the function is fed by: their ``maxReceiveCount`` (one value, set beside
    the queues' in template.yaml), so a message's last delivery is dead-lettered with its reason."""

    max_receive_count: int = Field(gt=0)


class RecordsAndGitHubSettings(_RunsTable, _GitHub):
    """What every function that writes run records and to GitHub is given."""


class SubmitSettings(RecordsAndGitHubSettings, _Queue):
    results_bucket: NonEmpty
    github_server_url: Url
    idempotency_table: NonEmpty
    rejected_queue_url: NonEmpty
    cpu_job_queue: NonEmpty
    gpu_job_queue: NonEmpty
    job_timeout_seconds: int = Field(gt=0)
    default_vcpus: float = Field(gt=0)
    default_memory_mib: int = Field(gt=0)
    default_gpus: int = Field(ge=0)
    max_request_vcpus: float = Field(gt=0)
    max_request_memory_mib: int = Field(gt=0)
    gpu_instance_types: Annotated[tuple[str, ...], BeforeValidator(_items)]
    gpu_max_vcpus: int = Field(gt=0)
    supersede_older_runs: bool
    # Each repository's registration (repository.yaml) is read from under this SSM path.
    registrations_path: NonEmpty
    allowed_repositories: Annotated[frozenset[str], BeforeValidator(_repositories)]
    oidc_issuer: NonEmpty
    oidc_audience: NonEmpty
    oidc_max_age_seconds: int = Field(gt=0)
    approval_environment: str
    baseline_environment: str
    operator_queue_arn: NonEmpty
    # The workflow files that may request runs (issue 21).
    workflow_paths: Annotated[tuple[str, ...], BeforeValidator(_items)]
    # The reusable workflow every token must name (job_workflow_ref); empty: any (issue 22).
    pinned_workflow: str
    # Each queue's own DLQ: a dead letter goes back only to the queue it came from (issue 21).
    operator_rejected_queue_url: NonEmpty
    # Distinct tokens' requests per repository and hour; more are dead-lettered (issue 21).
    max_requests_per_repository_hour: int = Field(gt=0)
    # The queues' own URLs by ARN, for ChangeMessageVisibility (a transient failure's wait).
    run_requests_queue_arn: NonEmpty
    run_requests_queue_url: NonEmpty
    operator_queue_url: NonEmpty
    redelivery_max_wait_seconds: int = Field(gt=0, le=43_200)


class TrackSettings(RecordsAndGitHubSettings, _Queue):
    region: str = Field(alias="AWS_REGION", min_length=1)  # Lambda's own variable
    report_state_machine_arn: NonEmpty
    rejected_events_queue_url: NonEmpty


class CollectResultsSettings(_RunsTable):
    region: str = Field(alias="AWS_REGION", min_length=1)
    results_bucket: NonEmpty


class UpdatePullRequestSettings(RecordsAndGitHubSettings):
    pass
