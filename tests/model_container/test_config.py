"""Container contract inputs: environment variables and params.yaml validation (exit 2 cases)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from avm.config import ConfigError, load_params, parse_results_uri, parse_sample, read_env

GOOD = {
    "MODELRUN_RUN_ID": "r-1",
    "MODELRUN_RESULTS_URI": "s3://my-results/runs/r-1/",
    "MODELRUN_THREADS": "4",
    "MODELRUN_DEVICE": "gpu",
}


def test_read_env_defaults() -> None:
    env = read_env(GOOD)
    assert env.run_id == "r-1"
    assert (
        env.results.scheme == "s3"
        and env.results.bucket == "my-results"
        and env.results.prefix == "runs/r-1/"
    )
    assert env.threads == 4 and env.queue_device == "gpu"
    assert env.params_path == Path("params.yaml") and env.sample is None


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"MODELRUN_RUN_ID": ""}, "missing required environment variable MODELRUN_RUN_ID"),
        ({"MODELRUN_RUN_ID": "a b"}, "MODELRUN_RUN_ID"),
        ({"MODELRUN_RESULTS_URI": ""}, "missing required environment variable MODELRUN_RESULTS_URI"),
        ({"MODELRUN_RESULTS_URI": "https://example.com/x"}, "must start with s3:// or file:///"),
        ({"MODELRUN_RESULTS_URI": "s3://Bad_Bucket/x/"}, "invalid S3 bucket name"),
        ({"MODELRUN_RESULTS_URI": "file://relative/dir"}, "file:///absolute/path/"),
        ({"MODELRUN_THREADS": "four"}, "MODELRUN_THREADS must be an integer"),
        ({"MODELRUN_THREADS": "0"}, "MODELRUN_THREADS must be >= 1"),
        ({"MODELRUN_DEVICE": "tpu"}, "MODELRUN_DEVICE must be one of cpu, gpu"),
        ({"MODELRUN_SAMPLE": "0"}, "MODELRUN_SAMPLE"),
        ({"MODELRUN_SAMPLE": "1.5"}, "fraction must be in (0, 1]"),
        ({"MODELRUN_SAMPLE": "lots"}, "neither an integer nor a number"),
    ],
)
def test_read_env_rejects(override: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=None) as err:
        read_env({**GOOD, **override})
    assert message in str(err.value)


def test_results_uri_forms() -> None:
    s3 = parse_results_uri("s3://bucket-1/runs/abc")
    assert (
        s3.uri == "s3://bucket-1/runs/abc/"
        and s3.join("metrics.json") == "s3://bucket-1/runs/abc/metrics.json"
    )
    bare = parse_results_uri("s3://bucket-1")
    assert bare.prefix == "" and bare.join("metrics.json") == "s3://bucket-1/metrics.json"
    f = parse_results_uri("file:///tmp/some%20dir/")
    assert f.scheme == "file" and f.path == Path("/tmp/some dir")  # noqa: S108


def test_sample_forms() -> None:
    assert parse_sample("500") == 500
    assert parse_sample("0.25") == 0.25
    assert parse_sample("1.0") == 1.0


def _write(tmp_path: Path, params: dict[str, Any]) -> Path:
    p = tmp_path / "p.yaml"
    p.write_text(yaml.safe_dump(params))
    return p


def test_default_params_load(mc_dir: Path) -> None:
    params = load_params(mc_dir / "params.yaml", base_dir=mc_dir)
    assert params.library == "lightgbm" and params.device == "auto"
    assert params.data_path == mc_dir / "data" / "seattle_sales.csv.xz"
    assert "area" in params.categorical and "sale_time" in params.features


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda p: p.update(library="catboost"), "'library' must be one of"),
        (lambda p: p.update(device="gpu"), "'device' must be one of"),
        (lambda p: p.update(extra=1), "unknown top-level key"),
        (lambda p: p["split"].update(holdout_months="six"), "'split.holdout_months' must be int"),
        (lambda p: p["split"].update(holdout_months=True), "'split.holdout_months' must be int"),
        (lambda p: p.update(trimming={"method": "iqr"}), "unknown top-level key"),  # modelrun's now
        (lambda p: p.update(bootstrap={"n": 1000}), "unknown top-level key"),
        (lambda p: p["lightgbm"]["params"].update(num_threads=8), "threads come from MODELRUN_THREADS"),
        (lambda p: p["data"].update(path="nope.csv"), "data file not found"),
        (lambda p: p.pop("features"), "missing 'features'"),
    ],
)
def test_params_rejects(
    tmp_path: Path,
    mc_dir: Path,
    default_params: dict[str, Any],
    mutate: Callable[[dict[str, Any]], object],
    message: str,
) -> None:
    import copy

    p = copy.deepcopy(default_params)
    mutate(p)
    with pytest.raises(ConfigError) as err:
        load_params(_write(tmp_path, p), base_dir=mc_dir)
    assert message in str(err.value)


def test_params_not_yaml(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("library: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_params(bad)
    with pytest.raises(ConfigError, match="params file not found"):
        load_params(tmp_path / "missing.yaml")
