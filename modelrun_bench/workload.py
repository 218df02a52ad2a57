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
from modelrun_local.workflow_job import APPROVAL_ENVIRONMENT

METRICS_SCHEMA = ROOT / "model_container" / "metrics.schema.json"


# The no-op model: the container contract's minimum. One PutObject of metrics.json (read from
# the image directory, run id filled in) to the results prefix, signed with the job role's
# credentials (IAM is enforced locally too).
# One line: the contract refuses control characters (newlines too) in a command's arguments.
NOOP_SCRIPT = (
    "import json,os,boto3;"
    "b,k=os.environ['MODELRUN_RESULTS_URI'][5:].split('/',1);"
    "m=json.load(open('metrics.json'));"
    "m['run_id']=os.environ['MODELRUN_RUN_ID'];"
    "boto3.client('s3').put_object(Bucket=b,Key=k+'metrics.json',Body=json.dumps(m).encode(),"
    "ContentType='application/json')"
)


# The bench's PRs are all against main at this commit (GitHub's record of each PR names it).
BASE_SHA = hashlib.sha1(b"bench-main").hexdigest()  # noqa: S324 - a fake commit SHA


def noop_metrics() -> dict[str, Any]:
    """A minimal metrics.json that follows model_container/metrics.schema.json."""
    stat = {"value": 10.0, "ci": None, "standard": "5.0-15.0", "range": [5.0, 15.0], "pass": True}
    metrics = {"rmse": 1.0, "mae": 1.0, "mape": 1.0, "mdape": 1.0, "r2": 0.9, "median_ratio": 1.0}
    doc = {
        "schema_version": "1",
        "run_id": "noop",
        "model": {
            "library": "lightgbm",
            "device_requested": "cpu",
            "device_used": "cpu",
            "threads": 1,
            "train_seconds": 0.0,
            "params": {},
        },
        "data": {
            "source": "none: the benchmark's no-op model",
            "rows": 0,
            "n_train": 0,
            "n_test": 0,
            "holdout": {"from": "2016-07-01", "to": "2016-12-31"},
            "trimming": "none",
        },
        "metrics": metrics,
        "ratio_study": {name: dict(stat) for name in ("cod", "prd", "prb", "mki")},
        "by_area": [],
        "artifacts": {
            "predictions": "artifacts/predictions.parquet",
            "model": "artifacts/model.txt",
            "plots": ["artifacts/plots/ratio.png"],
        },
    }
    validate(event=doc, schema=json.loads(METRICS_SCHEMA.read_text()))
    return doc


@contextlib.contextmanager
def noop_image_dir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="modelrun-bench-image-") as tmp:
        directory = Path(tmp)
        (directory / "metrics.json").write_text(json.dumps(noop_metrics()))
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
    signed = with_identity(request, oidc_token(env, runtime.outputs["RunRequestsQueueUrl"]))
    assert isinstance(signed, RunRequest)
    return Planned(signed, run_id_for(signed), pr)
