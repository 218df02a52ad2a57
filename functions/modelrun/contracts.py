"""The versioned messages that cross modelrun's boundaries.

One pydantic model per message, used on both sides: the workflow's enqueue command builds a
``RunRequest`` and the submit Lambda parses the very same model, so the two cannot drift. The
JSON Schema in ``contracts/run-request.v1.schema.json`` is generated from these models
(``python -m modelrun.contracts``) and a test keeps it in sync.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, TypeAdapter, field_validator

SCHEMA_VERSION = "1"

# ECR (or any OCI registry) reference pinned by digest: registry/repo[:tag]@sha256:<64 hex>.
# \Z, not $: "$" also matches before a trailing newline.
IMAGE_BY_DIGEST = re.compile(
    r"^[a-z0-9][a-z0-9.\-:]*(?:/[a-z0-9._\-]+)+(?::[A-Za-z0-9_.\-]{1,128})?@sha256:[0-9a-f]{64}\Z"
)
# owner/name as GitHub allows them (owners: letters, digits, hyphens); "." and ".." are not
# repository names (they would walk GitHub's API paths: "../etc").
REPOSITORY = (
    r"^[A-Za-z0-9][A-Za-z0-9-]{0,38}/"
    r"(?:[A-Za-z0-9_-][A-Za-z0-9_.-]{0,99}|\.[A-Za-z0-9_-][A-Za-z0-9_.-]{0,98}|\.\.[A-Za-z0-9_.-]{1,98})$"
)
# A compact JWS (header.payload.signature, base64url): what GitHub's token endpoint returns.
JWT = r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$"
# Control characters (C0, DEL, C1) and the invisible formatting characters that reorder or hide
# text (bidi embeddings, overrides and isolates; zero-width marks): none belongs in a name or note.
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff]")


def printable(value: str) -> str:
    if _UNPRINTABLE.search(value):
        raise ValueError("must not contain control characters or invisible formatting characters")
    return value


def printable_note(value: str) -> str:
    # A note may span lines; nothing else invisible.
    return printable(value.replace("\n", " ").replace("\t", " ")) and value


Printable = Annotated[str, AfterValidator(printable)]


class _Strict(BaseModel):
    # strict: JSON numbers only where numbers are asked for ("42", 3.0 and true are refused).
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, str_strip_whitespace=False)


class WorkflowRun(_Strict):
    """The GitHub Actions run that sent the message: the idempotency key is (id, attempt).

    No URL: every link modelrun shows is built by the backend from verified ids."""

    run_id: Annotated[int, Field(gt=0, lt=2**53, description="GITHUB_RUN_ID")]
    run_attempt: Annotated[int, Field(ge=1, le=100, description="GITHUB_RUN_ATTEMPT")]


class Resources(_Strict):
    """Optional overrides of the stack's default job size."""

    # Quarter vCPUs at least (Fargate's smallest; EC2 takes whole ones): also keeps the number
    # within what DynamoDB can store (1e-200 would pass "> 0" and fail every write).
    vcpus: Annotated[float | None, Field(ge=0.25, le=192, multiple_of=0.25, allow_inf_nan=False)] = None
    memory_mib: Annotated[int | None, Field(ge=512, le=786432)] = None
    gpus: Annotated[int | None, Field(ge=0, le=8)] = None


# Run variables (issue 22): non-secret settings a caller passes to the model's container, as
# assessor teams pass run-type toggles to their pipelines. Upper-case names; MODELRUN_ and AWS_
# are modelrun's and AWS's own; a few, short, printable values.
VARIABLE_NAME = r"^[A-Z][A-Z0-9_]{0,63}$"
RESERVED_PREFIXES = ("MODELRUN_", "AWS_")
MAX_VARIABLES = 20
MAX_VARIABLES_BYTES = 4096


def _variables_fit(value: dict[str, str]) -> dict[str, str]:
    reserved = sorted(name for name in value if name.startswith(RESERVED_PREFIXES))
    if reserved:
        raise ValueError(f"{', '.join(reserved)}: names starting with {' or '.join(RESERVED_PREFIXES)} are reserved")
    if len(value) > MAX_VARIABLES:
        raise ValueError(f"at most {MAX_VARIABLES} variables, not {len(value)}")
    size = sum(len(k.encode()) + len(v.encode()) for k, v in value.items())
    if size > MAX_VARIABLES_BYTES:
        raise ValueError(f"at most {MAX_VARIABLES_BYTES} bytes of names and values, not {size}")
    return value


Variables = Annotated[
    dict[
        Annotated[str, Field(pattern=VARIABLE_NAME)],
        Annotated[Printable, Field(max_length=1024)],
    ],
    AfterValidator(_variables_fit),
]


class Identity(_Strict):
    """The evidence: the job's GitHub OIDC token, requested with the stack's audience."""

    oidc_token: Annotated[str, Field(min_length=20, max_length=8192, pattern=JWT, repr=False)]


class RunRequest(_Strict):
    """Run request v1: one model run of one commit."""

    schema_version: Literal["1"]
    kind: Literal["run"]
    repository: Annotated[str, Field(pattern=REPOSITORY, description="owner/name")]
    pr_number: Annotated[int | None, Field(gt=0, lt=2**31, description="None for a push or a dispatch on a branch")] = (
        None
    )
    head_sha: Annotated[str, Field(pattern=r"^[0-9a-f]{40}$")]
    head_ref: Annotated[Printable, Field(min_length=1, max_length=255)]
    base_ref: Annotated[Printable, Field(min_length=1, max_length=255)]
    image: Annotated[str, Field(max_length=512, description="image URI pinned by digest (…@sha256:…)")]
    compute: Literal["cpu", "gpu"] = "cpu"
    resources: Resources = Resources()
    command: Annotated[list[Annotated[Printable, Field(max_length=1024)]] | None, Field(max_length=64)] = None
    note: Annotated[str | None, Field(max_length=1000), AfterValidator(lambda v: v and printable_note(v))] = None
    variables: Variables = Field(
        default_factory=dict, description="Non-secret variables for the model's container (NAME: value)"
    )
    triggered_by: Annotated[str, Field(pattern=r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,37}[A-Za-z0-9])?(?:\[bot\])?$")]
    event: Literal["pull_request", "push", "workflow_dispatch"]
    workflow: WorkflowRun
    identity: Identity | None = Field(
        default=None, description="Required by the backend: a request without evidence is refused."
    )

    @field_validator("image")
    @classmethod
    def _pinned_by_digest(cls, value: str) -> str:
        if not IMAGE_BY_DIGEST.match(value):
            raise ValueError("must be an image URI pinned by digest, like repo@sha256:<64 hex>")
        return value


class CleanupRequest(_Strict):
    """Cleanup request v1: the PR was closed; stop and forget its runs."""

    schema_version: Literal["1"]
    kind: Literal["cleanup"]
    repository: Annotated[str, Field(pattern=REPOSITORY)]
    pr_number: Annotated[int, Field(gt=0, lt=2**31)]
    triggered_by: Annotated[str, Field(pattern=r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,37}[A-Za-z0-9])?(?:\[bot\])?$")]
    workflow: WorkflowRun
    identity: Identity | None = None


class RerunRequest(_Strict):
    """An operator's rerun (``modelrun rerun``), accepted only from the operator queue: who may
    send there is decided by IAM, and the sender is read from SQS's SenderId, not from here."""

    schema_version: Literal["1"]
    kind: Literal["rerun"]
    run_id: Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{1,128}$")]
    attempt: Annotated[int, Field(ge=2, le=100, description="the workflow attempt the rerun counts as")]
    requested_by: Annotated[Printable, Field(min_length=1, max_length=64)]


Message = Annotated[RunRequest | CleanupRequest, Field(discriminator="kind")]
MESSAGE: TypeAdapter[RunRequest | CleanupRequest] = TypeAdapter(Message)
OperatorMessage = Annotated[RerunRequest | RunRequest | CleanupRequest, Field(discriminator="kind")]
OPERATOR_MESSAGE: TypeAdapter[RerunRequest | RunRequest | CleanupRequest] = TypeAdapter(OperatorMessage)

SCHEMA_PATH = Path(__file__).parent / "schemas" / "run-request.v1.schema.json"


def json_schema() -> dict[str, object]:
    schema = MESSAGE.json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "modelrun run request v1 (run or cleanup)"
    return schema


def render_schema() -> str:
    return json.dumps(json_schema(), indent=2, sort_keys=True) + "\n"


if __name__ == "__main__":  # regenerate the committed schema
    SCHEMA_PATH.parent.mkdir(exist_ok=True)
    SCHEMA_PATH.write_text(render_schema())
    sys.stdout.write(f"wrote {SCHEMA_PATH}\n")
