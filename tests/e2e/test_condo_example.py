"""The condo team's R model (examples/condo-model, laid out as its own repository,
county-assessor/condo) honours the container contract, with its data read from S3 as the team's
is: the URI in its config.json, downloaded with the AWS CLI.

- On a local S3 (a moto server), its output passes `modelrun check`, the collect step's own
  reading and evaluation; a data object that is not there ends the run with status 2 and one
  line naming the URI and AWS's words.
- On the local stack (IAM enforced), from its Dockerfile (CMD, WORKDIR, its COPY'd files, the
  context its own root) as Batch would run its image: a config pointing at data the repository
  was not granted is refused, and says so; and, once a repository's jobs can be granted read
  access to named S3 locations, the run with its own data succeeds and reports on the PR.

`make e2e` installs Debian's R with ranger and jsonlite, and awscli, where they are missing
(`make r-setup`). The job's PATH is the image's (modelrun_local.aws_process), so `aws` is
/usr/bin/aws here, never a pyenv shim of that name.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml
from moto.server import ThreadedMotoServer

from modelrun.contracts import RunRequest
from modelrun.domain.naming import LOG_GROUP
from modelrun.domain.policy import POLICY_PATH, policy_from
from modelrun_cli.enqueue import send, with_identity
from modelrun_local.aws_process import IMAGE_DEFAULT_PATH
from modelrun_local.runtime import LocalRuntime
from modelrun_local.stack import ROOT
from modelrun_local.workflow_job import retarget
from tests.integration.flow import Flow, pull_request_event

CONDO = ROOT / "examples" / "condo-model"
REPOSITORY = "county-assessor/condo"
DATA_BUCKET = "modelrun-local-data"
DATA_KEY = "county-assessor/condo/sales.csv.gz"
DATA_URI = f"s3://{DATA_BUCKET}/{DATA_KEY}"
HOLDOUT = 1093  # the sales of the last 12 months of data/sales.csv.gz
TEST_KEYS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}


def test_the_config_names_the_local_data_and_the_policy_is_valid() -> None:
    assert json.loads((CONDO / "config.json").read_text())["data_uri"] == DATA_URI
    policy = policy_from(yaml.safe_load((CONDO / POLICY_PATH).read_text()))
    assert set(policy.must_pass) == {"cod", "prd"}


# --- on a local S3 ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def bucket(endpoint: str, name: str) -> Any:
    s3 = boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    with contextlib.suppress(s3.exceptions.BucketAlreadyOwnedByYou):
        s3.create_bucket(Bucket=name)
    return s3


def run_model(directory: Path, endpoint: str, out: Path, run_id: str) -> subprocess.CompletedProcess[str]:
    """model.R as the image runs it (in its WORKDIR, with the image's PATH), on one thread."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")} | TEST_KEYS
    env |= {
        "PATH": IMAGE_DEFAULT_PATH,
        "AWS_ENDPOINT_URL": endpoint,
        "MODELRUN_RUN_ID": run_id,
        "MODELRUN_RESULTS_URI": f"file://{out}/",
        "MODELRUN_THREADS": "1",
        "MODELRUN_DEVICE": "cpu",
        "MODELRUN_DATA_LOCATIONS": f"s3://{DATA_BUCKET}/county-assessor/condo/",
    }
    return subprocess.run(
        ["Rscript", "model.R"], cwd=directory, env=env, capture_output=True, text=True, timeout=300, check=False
    )


def test_the_condo_model_reads_its_data_from_s3_and_passes_modelrun_check(s3_endpoint: str, tmp_path: Path) -> None:
    bucket(s3_endpoint, DATA_BUCKET).upload_file(str(CONDO / "data" / "sales.csv.gz"), DATA_BUCKET, DATA_KEY)
    out = tmp_path / "results"
    run = run_model(CONDO, s3_endpoint, out, "condo-1")
    assert run.returncode == 0, run.stderr
    assert f"data locations granted: s3://{DATA_BUCKET}/county-assessor/condo/" in run.stdout
    assert run.stdout.strip().endswith(f"run condo-1 ok: {HOLDOUT} holdout predictions -> file://{out}/metrics.json")
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["data"]["source"] == DATA_URI and metrics["model"]["threads"] == 1
    assert (out / metrics["params"]).read_text() == (CONDO / "config.json").read_text()  # the PR shows its diff
    checked = subprocess.run(
        [str(ROOT / ".venv" / "bin" / "modelrun"), "check", str(out), "--json", "--resamples", "100"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    found = json.loads(checked.stdout)
    assert found["ok"] and found["n"] == HOLDOUT
    assert {g["column"] for g in found["groups"]} == {"market_area", "size_band"}
    assert 0.9 < found["statistics"]["median_ratio"]["value"] < 1.1
    assert found["statistics"]["cod"]["value"] < 15  # within the IAAO's range for condos


@pytest.mark.parametrize(
    "uri", [f"s3://{DATA_BUCKET}/county-assessor/condo/missing.csv.gz", "s3://no-such-bucket/x.gz"]
)
def test_data_it_cannot_read_ends_the_run_with_one_line_naming_it(s3_endpoint: str, tmp_path: Path, uri: str) -> None:
    bucket(s3_endpoint, DATA_BUCKET)
    repository = tmp_path / "condo"
    shutil.copytree(CONDO, repository, ignore=shutil.ignore_patterns("data"))
    config = json.loads((repository / "config.json").read_text()) | {"data_uri": uri}
    (repository / "config.json").write_text(json.dumps(config))
    out = tmp_path / "results"
    run = run_model(repository, s3_endpoint, out, "condo-2")
    assert run.returncode == 2, run.stdout + run.stderr
    [line] = run.stderr.strip().splitlines()
    assert line.startswith(f"modelrun-condo: cannot read {uri}: ") and "An error occurred (404)" in line, line
    assert not (out / "metrics.json").exists()


# --- on the local stack -----------------------------------------------------------------------


class CondoFlow(Flow):
    """The flow of the condo repository's pull requests."""

    def event(self, pr: int, sha: str) -> dict[str, Any]:
        return retarget(pull_request_event(pr, sha), REPOSITORY)

    def comments(self, pr: int) -> list[dict[str, Any]]:
        return self.runtime.github.comments(REPOSITORY, pr)


@pytest.fixture(scope="module")
def condo_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CondoFlow]:
    """The local stack serving county-assessor/condo, its image pushed from its own root, and
    the data in the bucket as the operator puts it there (the test process holds the operator's
    credentials), beside another team's data."""
    grant = {REPOSITORY: {"DataReadLocations": f"{DATA_BUCKET}/{REPOSITORY}/"}}  # its repository stack's
    with LocalRuntime(
        repository=REPOSITORY, parameters={"LogLevel": "WARNING"}, repository_parameters=grant
    ) as runtime:
        s3 = boto3.client("s3")
        with contextlib.suppress(s3.exceptions.BucketAlreadyOwnedByYou):
            s3.create_bucket(Bucket=DATA_BUCKET)
        for key in (DATA_KEY, "county-assessor/residential/sales.csv.gz"):
            s3.upload_file(str(CONDO / "data" / "sales.csv.gz"), DATA_BUCKET, key)
        image = runtime.push_image(CONDO, tag="condo")  # as `docker build .` in its repository
        yield CondoFlow(runtime, image, tmp_path_factory.mktemp("condo"))


def run_on_the_stack(flow: CondoFlow, image: str, pr: int) -> dict[str, Any]:
    job = flow.job(pr=pr, run_id=7_022_000 + pr)
    request = with_identity(job.request(image), job.token(flow.queue_url))
    assert isinstance(request, RunRequest) and request.command is None  # the image's CMD runs
    send(request, flow.queue_url)
    flow.wait(timeout=300)
    return flow.record(flow.run_id_of(request))


def job_log() -> list[str]:
    """Every job's log lines (the module's stack runs only the condo model's jobs)."""
    pages = boto3.client("logs").get_paginator("filter_log_events").paginate(logGroupName=LOG_GROUP)
    return [e["message"] for page in pages for e in page["events"]]


def test_a_config_pointing_at_data_not_granted_is_refused_and_says_so(condo_stack: CondoFlow, tmp_path: Path) -> None:
    """A PR pointing config.json at another team's data: the job role may not read it."""
    repository = tmp_path / "condo"
    shutil.copytree(CONDO, repository, ignore=shutil.ignore_patterns("data"))
    other = f"s3://{DATA_BUCKET}/county-assessor/residential/sales.csv.gz"
    config = json.loads((repository / "config.json").read_text()) | {"data_uri": other}
    (repository / "config.json").write_text(json.dumps(config, indent=2))
    image = condo_stack.runtime.push_image(repository, tag="condo-other-data")
    record = run_on_the_stack(condo_stack, image, 221)
    assert record["status"] == "FAILED", record
    refused = [m for m in job_log() if m.startswith(f"modelrun-condo: cannot read {other}: ")]
    assert refused and "(403)" in refused[0], job_log()


def test_the_condo_model_runs_on_the_local_stack_with_its_data_from_s3(condo_stack: CondoFlow) -> None:
    # The merge gate of the PR's base commit: the repository's own .github/modelrun.yaml.
    event = condo_stack.event(222, "0" * 40)
    base_sha = event["pull_request"]["base"]["sha"]
    condo_stack.runtime.github.put_file(REPOSITORY, base_sha, POLICY_PATH, (CONDO / POLICY_PATH).read_bytes())
    record = run_on_the_stack(condo_stack, condo_stack.image, 222)
    assert record["status"] == "SUCCEEDED", record
    [comment] = condo_stack.comments(222)
    body = comment["body"]
    assert "**SUCCEEDED**" in body and "| COD |" in body and "COD by market area" in body, body
    # No main run yet: the gate's rules can't be checked, and the comment names them (its own).
    assert "Merge gate: ⚪ neutral. MAE, MdAPE, COD and PRD can't be checked against main" in body, body
    # Its own words in the job's log: Rscript ran model.R from WORKDIR, its data read from S3.
    assert any(f"modelrun-condo: run {record['run_id']} ok: {HOLDOUT} holdout predictions" in m for m in job_log())
