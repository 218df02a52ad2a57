"""Settings from the function's environment (template.yaml sets them; the local runtime too)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cache


def _get(name: str, default: str | None = None) -> str:
    value = os.environ.get(name, default)
    if value is None:
        raise RuntimeError(f"environment variable {name} is not set (template.yaml sets it)")
    return value


@dataclass(frozen=True)
class Settings:
    runs_table: str
    results_bucket: str
    github_secret_arn: str
    github_api_url: str
    region: str

    # submit only
    cpu_job_queue: str = ""
    gpu_job_queue: str = ""
    job_role_arn: str = ""
    job_execution_role_arn: str = ""
    rejected_queue_url: str = ""
    idempotency_table: str = ""
    job_timeout_seconds: int = 14400
    default_vcpus: float = 2
    default_memory_mib: int = 8192
    default_gpus: int = 1
    supersede_older_runs: bool = True
    gpu_instance_types: tuple[str, ...] = ()
    gpu_max_vcpus: int | None = None
    model_repository_uri: str = ""
    allowed_repositories: frozenset[str] = frozenset()
    oidc_issuer: str = ""
    oidc_audience: str = ""
    oidc_max_age_seconds: int = 900
    approval_environment: str = ""
    baseline_environment: str = ""
    operator_queue_arn: str = ""
    github_server_url: str = "https://github.com"

    # track only
    report_state_machine_arn: str = ""
    rejected_events_queue_url: str = ""


@cache
def settings() -> Settings:
    return Settings(
        runs_table=_get("RUNS_TABLE"),
        results_bucket=_get("RESULTS_BUCKET"),
        github_secret_arn=_get("GITHUB_SECRET_ARN"),
        github_api_url=_get("GITHUB_API_URL", "https://api.github.com").rstrip("/"),
        region=_get("AWS_REGION", os.environ.get("AWS_DEFAULT_REGION", "us-east-1")),
        cpu_job_queue=_get("CPU_JOB_QUEUE", ""),
        gpu_job_queue=_get("GPU_JOB_QUEUE", ""),
        job_role_arn=_get("JOB_ROLE_ARN", ""),
        job_execution_role_arn=_get("JOB_EXECUTION_ROLE_ARN", ""),
        rejected_queue_url=_get("REJECTED_QUEUE_URL", ""),
        idempotency_table=_get("IDEMPOTENCY_TABLE", ""),
        job_timeout_seconds=int(_get("JOB_TIMEOUT_SECONDS", "14400")),
        default_vcpus=float(_get("DEFAULT_VCPUS", "2")),
        default_memory_mib=int(_get("DEFAULT_MEMORY_MIB", "8192")),
        default_gpus=int(_get("DEFAULT_GPUS", "1")),
        supersede_older_runs=_get("SUPERSEDE_OLDER_RUNS", "true").lower() == "true",
        report_state_machine_arn=_get("REPORT_STATE_MACHINE_ARN", ""),
        rejected_events_queue_url=_get("REJECTED_EVENTS_QUEUE_URL", ""),
        gpu_instance_types=tuple(t.strip() for t in _get("GPU_INSTANCE_TYPES", "").split(",") if t.strip()),
        gpu_max_vcpus=int(_get("GPU_MAX_VCPUS")) if _get("GPU_MAX_VCPUS", "") else None,
        model_repository_uri=_get("MODEL_REPOSITORY_URI", ""),
        allowed_repositories=frozenset(
            r.strip().lower() for r in _get("ALLOWED_REPOSITORIES", "").split(",") if r.strip()
        ),
        oidc_issuer=_get("OIDC_ISSUER", ""),
        oidc_audience=_get("OIDC_AUDIENCE", ""),
        oidc_max_age_seconds=int(_get("OIDC_MAX_AGE_SECONDS", "900")),
        approval_environment=_get("APPROVAL_ENVIRONMENT", ""),
        baseline_environment=_get("BASELINE_ENVIRONMENT", ""),
        operator_queue_arn=_get("OPERATOR_QUEUE_ARN", ""),
        github_server_url=_get("GITHUB_SERVER_URL", "https://github.com").rstrip("/"),
    )
