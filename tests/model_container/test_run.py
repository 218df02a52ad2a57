"""End to end: `python -m avm` on a small subsample, results to file:// and to S3 (moto)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema  # type: ignore[import-untyped]  # ships no type hints (types-jsonschema is not a dependency)
import pandas as pd
import pytest

from avm.cli import main

ARTIFACTS = [
    "metrics.json",
    "artifacts/predictions.parquet",
    "artifacts/predictions.csv.gz",
    "artifacts/params.yaml",
    "artifacts/plots/ratio_vs_price.png",
    "artifacts/plots/feature_importance.png",
]


@pytest.fixture(scope="module")
def validator(mc_dir: Path) -> jsonschema.Draft202012Validator:
    schema = json.loads((mc_dir / "metrics.schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())


Check = Callable[..., subprocess.CompletedProcess[str]]  # conftest's modelrun_check


def _check_results(
    out: Path, validator: jsonschema.Draft202012Validator, model_file: str, modelrun_check: Check
) -> dict[str, Any]:
    for rel in [*ARTIFACTS, f"artifacts/{model_file}"]:
        assert (out / rel).is_file() and (out / rel).stat().st_size > 0, rel
    doc: dict[str, Any] = json.loads((out / "metrics.json").read_text())
    validator.validate(doc)
    assert doc["schema_version"] == "2" and doc["predictions"] == "artifacts/predictions.csv.gz"
    assert doc["groups"] == ["area"] and doc["params"] == "artifacts/params.yaml"
    preds = pd.read_parquet(out / "artifacts" / "predictions.parquet")
    assert len(preds) == doc["data"]["n_test"]
    assert (out / "artifacts/plots/ratio_vs_price.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    holdout = pd.read_csv(out / "artifacts" / "predictions.csv.gz", dtype={"sale_id": str, "area": str})
    assert list(holdout.columns) == ["sale_id", "sale_price", "estimate", "area"]
    assert holdout.sale_id.tolist() == preds.sale_id.astype(str).tolist()
    # The sample passes the contract's own check, and modelrun computes its statistics.
    checked = modelrun_check(out, "--json", "--resamples", "100")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    found = json.loads(checked.stdout)
    assert found["ok"] and found["problems"] == [] and found["n"] == doc["data"]["n_test"]
    assert 0.7 < found["statistics"]["median_ratio"]["value"] < 1.3
    assert {g["column"] for g in found["groups"]} == {"area"}
    return doc


def test_file_uri_lightgbm(
    contract_env: dict[str, str],
    validator: jsonschema.Draft202012Validator,
    capsys: pytest.CaptureFixture[str],
    modelrun_check: Check,
) -> None:
    assert main() == 0
    out = Path(contract_env["MODELRUN_RESULTS_URI"].removeprefix("file://"))
    doc = _check_results(out, validator, "model.txt", modelrun_check)
    assert doc["run_id"] == "test-run-1"
    assert doc["model"]["library"] == "lightgbm" and doc["model"]["device_used"] == "cpu"
    assert doc["model"]["device_requested"] == "auto" and doc["model"]["threads"] == 1
    assert doc["model"]["params"]["num_threads"] == 1  # MODELRUN_THREADS, not os.cpu_count()
    assert doc["data"]["rows"] == 4000 and doc["data"]["n_train"] + doc["data"]["n_test"] == 4000
    assert doc["data"]["holdout"]["to"] > doc["data"]["holdout"]["from"]
    assert [m["name"] for m in doc["metrics"]] == ["train_seconds"]  # no statistic of modelrun's
    stdout = capsys.readouterr().out
    assert "[avm" in stdout and "training lightgbm" in stdout
    assert stdout.strip().splitlines()[-1].startswith("avm: run test-run-1 ok: lightgbm on cpu")


def test_xgboost_cpu(
    contract_env: dict[str, str],
    validator: jsonschema.Draft202012Validator,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    fast_params: Path,
    modelrun_check: Check,
) -> None:
    import yaml

    p = yaml.safe_load(fast_params.read_text())
    p["library"] = "xgboost"
    fast_params.write_text(yaml.safe_dump(p))
    monkeypatch.setenv("MODELRUN_DEVICE", "gpu")  # a GPU queue, but no GPU here: auto falls back to cpu
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "-1")
    assert main() == 0
    out = Path(contract_env["MODELRUN_RESULTS_URI"].removeprefix("file://"))
    doc = _check_results(out, validator, "model.json", modelrun_check)
    assert doc["model"]["library"] == "xgboost"
    assert doc["model"]["device_used"] == "cpu" and doc["model"]["queue_device"] == "gpu"
    assert doc["model"]["params"]["nthread"] == 1


def test_s3_results_with_moto(
    contract_env: dict[str, str],
    validator: jsonschema.Draft202012Validator,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    modelrun_check: Check,
) -> None:
    import boto3
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        for k, v in {
            "AWS_ENDPOINT_URL": f"http://{host}:{port}",
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
        }.items():
            monkeypatch.setenv(k, v)
        for k in ("AWS_PROFILE", "AWS_SESSION_TOKEN"):
            monkeypatch.delenv(k, raising=False)
        s3 = boto3.client("s3")
        s3.create_bucket(Bucket="results")
        monkeypatch.setenv("MODELRUN_RESULTS_URI", "s3://results/runs/test-run-1/")
        monkeypatch.setenv("MODELRUN_SAMPLE", "2500")
        assert main() == 0
        keys = {o["Key"] for o in s3.list_objects_v2(Bucket="results")["Contents"]}
        expected = {f"runs/test-run-1/{rel}" for rel in [*ARTIFACTS, "artifacts/model.txt"]}
        assert keys == expected
        head = s3.head_object(Bucket="results", Key="runs/test-run-1/metrics.json")
        assert head["ContentType"] == "application/json"
        doc = json.loads(s3.get_object(Bucket="results", Key="runs/test-run-1/metrics.json")["Body"].read())
        validator.validate(doc)
        # `modelrun check` reads an S3 prefix as the collect step reads a run's.
        checked = modelrun_check("s3://results/runs/test-run-1/", "--json", "--resamples", "50")
        assert checked.returncode == 0 and json.loads(checked.stdout)["ok"], checked.stdout + checked.stderr
        # A bucket that does not exist: a runtime failure, exit 1 with a one-line reason.
        monkeypatch.setenv("MODELRUN_RESULTS_URI", "s3://no-such-bucket/runs/x/")
        assert main() == 1
    finally:
        server.stop()


def _run_module(env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("MODELRUN_")}
    return subprocess.run(
        [sys.executable, "-m", "avm"],
        env={**base, **env},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_python_m_avm_subprocess(
    contract_env: dict[str, str],
    validator: jsonschema.Draft202012Validator,
    mc_dir: Path,
    modelrun_check: Check,
) -> None:
    """The real entry point, run as the local Batch executor runs it: cwd = model_container/."""
    env = {**contract_env, "MODELRUN_SAMPLE": "0.05", "MODELRUN_RUN_ID": "sub-1"}
    proc = _run_module(env, mc_dir)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1].startswith("avm: run sub-1 ok:")
    out = Path(env["MODELRUN_RESULTS_URI"].removeprefix("file://"))
    _check_results(out, validator, "model.txt", modelrun_check)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"MODELRUN_RUN_ID": None}, "avm: bad input: missing required environment variable MODELRUN_RUN_ID"),
        (
            {"MODELRUN_RESULTS_URI": "ftp://x/y"},
            "avm: bad input: MODELRUN_RESULTS_URI must start with s3:// or file:///",
        ),
        ({"MODELRUN_THREADS": "many"}, "avm: bad input: MODELRUN_THREADS must be an integer"),
        ({"MODELRUN_PARAMS": "/nonexistent/params.yaml"}, "avm: bad input: params file not found"),
        ({"MODELRUN_SAMPLE": "-3"}, "avm: bad input: MODELRUN_SAMPLE"),
    ],
)
def test_bad_input_exits_2(
    contract_env: dict[str, str], mc_dir: Path, change: dict[str, str | None], message: str
) -> None:
    env = {k: v for k, v in {**contract_env, **change}.items() if v is not None}
    proc = _run_module(env, mc_dir)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(message), proc.stderr


def test_bad_params_exit_2_in_process(
    contract_env: dict[str, str], fast_params: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fast_params.write_text(fast_params.read_text().replace("library: lightgbm", "library: sklearn"))
    assert main() == 2
    assert "avm: bad input: params: 'library' must be one of" in capsys.readouterr().err


def test_cuda_requested_without_gpu_exits_2(
    contract_env: dict[str, str],
    fast_params: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    text = (
        fast_params.read_text()
        .replace("library: lightgbm", "library: xgboost")
        .replace("device: auto", "device: cuda")
    )
    fast_params.write_text(text)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "-1")
    assert main() == 2
    assert "device=cuda but no GPU found" in capsys.readouterr().err


def test_subsample_too_small_exits_2(
    contract_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("MODELRUN_SAMPLE", "12")
    assert main() == 2
    assert "time split leaves" in capsys.readouterr().err
