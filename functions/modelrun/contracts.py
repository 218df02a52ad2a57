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

from pydantic import BaseModel, ConfigDict, Field, HttpUrl, TypeAdapter, field_validator

SCHEMA_VERSION = "1"

# ECR (or any OCI registry) reference pinned by digest: registry/repo[:tag]@sha256:<64 hex>.
IMAGE_BY_DIGEST = re.compile(
    r"^[a-z0-9][a-z0-9.\-:]*(?:/[a-z0-9._\-]+)+(?::[A-Za-z0-9_.\-]{1,128})?@sha256:[0-9a-f]{64}$"
)
REPOSITORY = r"^[A-Za-z0-9_.\-]{1,39}/[A-Za-z0-9_.\-]{1,100}$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=False)


class WorkflowRun(_Strict):
    """The GitHub Actions run that sent the message: the idempotency key is (id, attempt)."""

    run_id: Annotated[int, Field(gt=0, description="GITHUB_RUN_ID")]
    run_attempt: Annotated[int, Field(ge=1, le=100, description="GITHUB_RUN_ATTEMPT")]
    url: HttpUrl


class Resources(_Strict):
    """Optional overrides of the stack's default job size."""

    vcpus: Annotated[float | None, Field(gt=0, le=96)] = None
    memory_mib: Annotated[int | None, Field(ge=512, le=786432)] = None
    gpus: Annotated[int | None, Field(ge=0, le=8)] = None


class RunRequest(_Strict):
    """Run request v1: one model run of one commit."""

    schema_version: Literal["1"]
    kind: Literal["run"]
    repository: Annotated[str, Field(pattern=REPOSITORY, description="owner/name")]
    pr_number: Annotated[int | None, Field(gt=0, description="None for a dispatch on a branch")] = None
    head_sha: Annotated[str, Field(pattern=r"^[0-9a-f]{40}$")]
    head_ref: Annotated[str, Field(min_length=1, max_length=255)]
    base_ref: Annotated[str, Field(min_length=1, max_length=255)]
    image: Annotated[str, Field(description="image URI pinned by digest (…@sha256:…)")]
    compute: Literal["cpu", "gpu"] = "cpu"
    resources: Resources = Resources()
    command: Annotated[list[Annotated[str, Field(max_length=1024)]] | None, Field(max_length=64)] = None
    note: Annotated[str | None, Field(max_length=1000)] = None
    triggered_by: Annotated[str, Field(min_length=1, max_length=39)]
    event: Literal["pull_request", "workflow_dispatch"]
    workflow: WorkflowRun

    @field_validator("image")
    @classmethod
    def _pinned_by_digest(cls, value: str) -> str:
        if not IMAGE_BY_DIGEST.match(value):
            raise ValueError("must be an image URI pinned by digest, like repo@sha256:<64 hex>")
        return value

    @field_validator("head_ref", "base_ref")
    @classmethod
    def _no_control_characters(cls, value: str) -> str:
        if any(ord(c) < 32 or ord(c) == 127 for c in value):
            raise ValueError("must not contain control characters")
        return value


class CleanupRequest(_Strict):
    """Cleanup request v1: the PR was closed; stop and forget its runs."""

    schema_version: Literal["1"]
    kind: Literal["cleanup"]
    repository: Annotated[str, Field(pattern=REPOSITORY)]
    pr_number: Annotated[int, Field(gt=0)]
    triggered_by: Annotated[str, Field(min_length=1, max_length=39)]
    workflow: WorkflowRun


Message = Annotated[RunRequest | CleanupRequest, Field(discriminator="kind")]
MESSAGE: TypeAdapter[RunRequest | CleanupRequest] = TypeAdapter(Message)

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
