"""A model repository's registration: what its repository stack (repository.yaml) made for it.

The submit path reads it for each request: which image repository the request's image must come
from, and what its job runs with - the job role (a PR's, or the default branch's, which may also
write shared data), the execution role (pulls only this repository's images), the secrets and
the data locations. One repository's registration names nothing of another's (issues 21, 22).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field, field_validator

SECRET_ARN = re.compile(r"^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:[0-9]{12}:secret:(?P<name>[A-Za-z0-9/_+=.@-]+)\Z")
ROLE_ARN = r"^arn:aws[a-z-]*:iam::[0-9]{12}:role/.+$"
# Secrets Manager appends "-" and six random characters to a secret's name in its ARN.
_ARN_SUFFIX = re.compile(r"-[A-Za-z0-9]{6}\Z")

# The user GPU jobs run as: Batch runs them with host networking, and the hosts' iptables rule
# keeps every user but root (the ECS agent) from the instance metadata service.
GPU_JOB_USER = "10001:10001"


def registrations_path(stack: str) -> str:
    """Where a stack's repository stacks register: ``<path><owner>/<name>`` (repository.yaml
    writes the same, template.yaml gives the submit function the same)."""
    return f"/modelrun/{stack}/repositories/"


class Registration(BaseModel):
    """The SSM parameter /modelrun/<stack>/repositories/<owner>/<name> (JSON, schema 1)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: str = Field(pattern=r"^1$")
    repository: str
    image_repository: str = Field(pattern=r"^[a-z0-9][a-z0-9.\-:]*(?:/[a-z0-9._\-]+)+$")
    job_role_arn: str = Field(pattern=ROLE_ARN)
    baseline_job_role_arn: str = Field(pattern=ROLE_ARN)
    execution_role_arn: str = Field(pattern=ROLE_ARN)
    # The repository's GitHub roles: what its variables must name (`modelrun doctor`).
    github_role_arn: str = Field(pattern=ROLE_ARN)
    github_baseline_role_arn: str = Field(pattern=ROLE_ARN)
    data_read: tuple[str, ...] = ()
    secrets: tuple[str, ...] = ()
    athena_workgroup: str = ""

    @property
    def image_repository_name(self) -> str:
        """The ECR repository's name (MODELRUN_ECR_REPOSITORY): the URI without its registry."""
        return self.image_repository.split("/", 1)[1]

    @field_validator("data_read", "secrets", mode="before")
    @classmethod
    def _no_empty_items(cls, value: object) -> object:
        # CloudFormation joins an empty list parameter to [""].
        return tuple(v for v in value if v) if isinstance(value, list | tuple) else value

    @field_validator("secrets")
    @classmethod
    def _secret_arns(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        names = [secret_variable(arn) for arn in value]  # each must be an ARN with a usable name
        if len(set(names)) != len(names):
            raise ValueError(f"two secrets would set the same variable: {sorted(names)}")
        return value


def secret_variable(arn: str) -> str:
    """The environment variable a secret reaches the container as: its name in upper case,
    other characters as "_" (condo/db-password -> CONDO_DB_PASSWORD)."""
    match = SECRET_ARN.match(arn)
    if not match:
        raise ValueError(f"not a Secrets Manager secret ARN: {arn}")
    name = _ARN_SUFFIX.sub("", match["name"])
    variable = re.sub(r"[^A-Za-z0-9]+", "_", name).strip("_").upper()
    if not variable or variable[0].isdigit() or variable.startswith(("MODELRUN_", "AWS_")):
        raise ValueError(f"secret {name!r} cannot name an environment variable ({variable or 'empty'})")
    return variable


@dataclass(frozen=True)
class JobGrant:
    """What one job runs with: the job definition is registered per image and grant."""

    job_role_arn: str
    execution_role_arn: str
    secrets: tuple[tuple[str, str], ...]  # (variable, secret ARN)
    user: str | None  # None: the image's own USER

    @property
    def key(self) -> str:
        """A short digest of the grant: a changed grant registers a new job definition."""
        text = "\n".join([self.job_role_arn, self.execution_role_arn, self.user or "", *map(repr, self.secrets)])
        return hashlib.sha256(text.encode()).hexdigest()[:8]


def job_grant(registration: Registration, *, baseline: bool, compute: str) -> JobGrant:
    """A verified default-branch run gets the baseline job role (it may write shared data); every
    other run the PR job role. GPU jobs run as a non-root user (see GPU_JOB_USER)."""
    return JobGrant(
        job_role_arn=registration.baseline_job_role_arn if baseline else registration.job_role_arn,
        execution_role_arn=registration.execution_role_arn,
        secrets=tuple(sorted((secret_variable(arn), arn) for arn in registration.secrets)),
        user=GPU_JOB_USER if compute == "gpu" else None,
    )


def data_environment(registration: Registration) -> dict[str, str]:
    """Where the job may read, for the model's information (its own config names its data)."""
    locations = ",".join(f"s3://{location}" for location in registration.data_read)
    variables = {"MODELRUN_DATA_LOCATIONS": locations} if locations else {}
    if registration.athena_workgroup:
        variables["MODELRUN_ATHENA_WORKGROUP"] = registration.athena_workgroup
    return variables
