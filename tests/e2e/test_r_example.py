"""The R example (examples/r-model: a model in another language, with Debian's R alone) honours
the container contract: its output passes `modelrun check`, the collect step's own reading and
evaluation; and on the local stack it runs from its Dockerfile (CMD, WORKDIR, its COPY'd files)
as Batch would run its image. `make e2e` installs Debian's R and awscli where they are missing
(`make r-setup`)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import boto3

from modelrun.contracts import RunRequest
from modelrun.domain.naming import LOG_GROUP
from modelrun_cli.enqueue import send, with_identity
from modelrun_local.runtime import LocalRuntime
from modelrun_local.stack import ROOT
from tests.integration.flow import Flow


def test_the_r_example_passes_modelrun_check(tmp_path: Path) -> None:
    out = tmp_path / "results"
    env = os.environ | {
        "MODELRUN_RUN_ID": "r-example-1",
        "MODELRUN_RESULTS_URI": f"file://{out}/",
        "MODELRUN_THREADS": "1",
        "MODELRUN_DEVICE": "cpu",
        "DATA_PATH": str(ROOT / "model_container" / "data" / "seattle_sales.csv.xz"),
    }
    model = ROOT / "examples" / "r-model" / "model.R"
    run = subprocess.run(["Rscript", str(model)], env=env, capture_output=True, text=True, timeout=300, check=False)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip().endswith(f"file://{out}/metrics.json")
    checked = subprocess.run(
        [str(ROOT / ".venv" / "bin" / "modelrun"), "check", str(out), "--json", "--resamples", "100"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    found = json.loads(checked.stdout)
    assert found["ok"] and found["n"] == 4387 and {g["column"] for g in found["groups"]} == {"area"}
    assert 0.8 < found["statistics"]["median_ratio"]["value"] < 1.2


def test_the_r_example_runs_on_the_local_stack_from_its_dockerfile(tmp_path: Path) -> None:
    with LocalRuntime(parameters={"LogLevel": "WARNING"}) as runtime:
        # As `docker build -f examples/r-model/Dockerfile .`: the context is the repository root.
        image = runtime.push_image(ROOT, tag="r-model", dockerfile="examples/r-model/Dockerfile")
        flow = Flow(runtime, image, tmp_path)
        job = flow.job(pr=301, run_id=7_000_301)
        request = with_identity(job.request(image), job.token(flow.queue_url))
        assert isinstance(request, RunRequest) and request.command is None  # the image's CMD runs
        send(request, flow.queue_url)
        flow.wait(timeout=300)
        record = flow.record(flow.run_id_of(request))
        assert record["status"] == "SUCCEEDED", record
        [comment] = flow.comments(301)
        body = comment["body"]
        assert "**SUCCEEDED**" in body and "| COD |" in body, body
        # Its own words in the job's log: Rscript ran model.R from WORKDIR, with the staged data.
        events = boto3.client("logs").filter_log_events(logGroupName=LOG_GROUP)["events"]
        assert any(f"modelrun-r: run {record['run_id']} ok: 4387 holdout predictions" in e["message"] for e in events)
