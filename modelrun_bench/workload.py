"""What the bench sends: the no-op model (the container contract's minimum) and verifiable run
requests for it, as the approved workflow job sends them."""

from __future__ import annotations

import contextlib
import hashlib
import json
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aws_lambda_powertools.utilities.validation import validate

from modelrun.contracts import SCHEMA_VERSION, RunRequest
from modelrun.domain.run import run_id_for
from modelrun_cli.enqueue import oidc_token, with_identity
from modelrun_local.runtime import LocalRuntime
from modelrun_local.stack import ROOT
from modelrun_local.workflow_job import APPROVAL_ENVIRONMENT, tag_as_built

METRICS_SCHEMA = ROOT / "model_container" / "metrics.schema.json"


# The no-op model: the container contract's minimum. Two PutObjects, its holdout predictions
# and metrics.json (read from the image directory, run id filled in), to the results prefix,
# signed with the job role's credentials (IAM is enforced locally too).
# One line: the contract refuses control characters (newlines too) in a command's arguments.
NOOP_SCRIPT = (
    "import json,os,boto3;"
    "b,k=os.environ['MODELRUN_RESULTS_URI'][5:].split('/',1);"
    "s=boto3.client('s3');"
    "s.put_object(Bucket=b,Key=k+'predictions.csv',Body=open('predictions.csv','rb').read(),ContentType='text/csv');"
    "m=json.load(open('metrics.json'));"
    "m['run_id']=os.environ['MODELRUN_RUN_ID'];"
    "s.put_object(Bucket=b,Key=k+'metrics.json',Body=json.dumps(m).encode(),ContentType='application/json')"
)
# Its holdout: ten sales, estimates a few percent off.
NOOP_PREDICTIONS = "sale_id,sale_price,estimate\n" + "".join(
    f"s{i},{300_000 + 10_000 * i},{(300_000 + 10_000 * i) * (0.96 + 0.01 * (i % 5))}\n" for i in range(10)
)


# The bench's PRs are all against main at this commit (GitHub's record of each PR names it).
BASE_SHA = hashlib.sha1(b"bench-main").hexdigest()  # noqa: S324 - a fake commit SHA


def noop_metrics() -> dict[str, Any]:
    """A minimal metrics.json that follows model_container/metrics.schema.json (contract v2)."""
    doc = {
        "schema_version": "2",
        "run_id": "noop",
        "predictions": "predictions.csv",
        "model": {"library": "none", "device_used": "cpu", "threads": 1, "train_seconds": 0.0},
        "data": {"source": "none: the benchmark's no-op model"},
    }
    validate(event=doc, schema=json.loads(METRICS_SCHEMA.read_text()))
    return doc


@contextlib.contextmanager
def noop_image_dir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="modelrun-bench-image-") as tmp:
        directory = Path(tmp)
        (directory / "metrics.json").write_text(json.dumps(noop_metrics()))
        (directory / "predictions.csv").write_text(NOOP_PREDICTIONS)
        # What the local executor runs (push_image reads it): the two files in the working directory.
        (directory / "Dockerfile").write_text(
            "FROM python:3.12.11-slim-bookworm\nWORKDIR /job\nCOPY metrics.json predictions.csv ./\n"
            f"CMD {json.dumps(['python', '-c', NOOP_SCRIPT])}\n"
        )
        yield directory


@dataclass(frozen=True)
class Planned:
    """One run request the bench sends, and the run id the pipeline will derive from it."""

    request: RunRequest
    run_id: str
    pr: int


def plan(
    runtime: LocalRuntime, image: str, pr: int, commit: int, workflow_run_id: int, command: list[str] | None = None
) -> Planned:
    """A verifiable run request, as the approved workflow job sends it: GitHub records the
    workflow run, with its PR (the evidence the submit function checks), and the job gets its OIDC
    token for the stack's audience (the run-requests queue's URL) from the local issuer: an RSA signature
    and one loopback HTTP call, about a millisecond or two."""
    repository = runtime.repository
    sha = hashlib.sha1(f"bench-{pr}-{commit}".encode()).hexdigest()  # noqa: S324 - a fake commit SHA
    head_ref = f"bench/pr-{pr}"
    env = runtime.github.actions_job(
        repository,
        "pull_request",
        sha=sha,
        run_id=workflow_run_id,
        actor="bench",
        environment=APPROVAL_ENVIRONMENT,
        pull_request=(pr, head_ref, "main", BASE_SHA),
    )
    request = RunRequest.model_validate(
        {
            "schema_version": SCHEMA_VERSION,
            "kind": "run",
            "repository": repository,
            "pr_number": pr,
            "head_sha": sha,
            "head_ref": head_ref,
            "base_ref": "main",
            "image": image,
            "compute": "cpu",
            "command": command or ["python", "-c", NOOP_SCRIPT],
            "triggered_by": "bench",
            "event": "pull_request",
            "workflow": {"run_id": workflow_run_id, "run_attempt": 1},
        }
    )
    tag_as_built(request)  # as its build pushed the image
    signed = with_identity(request, oidc_token(env, runtime.outputs["RunRequestsQueueUrl"]))
    assert isinstance(signed, RunRequest)
    return Planned(signed, run_id_for(signed), pr)
