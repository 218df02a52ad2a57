"""Tests of the sample AVM image (model_container/). They need model_container's own
environment (LightGBM, assesspy, xgboost-cpu...):

    uv sync --project model_container --frozen
    model_container/.venv/bin/python -m pytest tests/model_container

The repo root's environment lacks those packages: under it this folder is not collected
(the root `make test` runs it separately with the model_container env).
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

_NEEDED = ("lightgbm", "assesspy", "xgboost", "avm", "jsonschema")
if any(importlib.util.find_spec(m) is None for m in _NEEDED):
    collect_ignore_glob = ["*"]
else:
    import copy
    import subprocess
    from collections.abc import Callable, Iterator
    from typing import Any

    import pytest
    import yaml

    MC = Path(__file__).resolve().parents[2] / "model_container"
    MODELRUN = MC.parent / ".venv" / "bin" / "modelrun"  # the repository's own environment (make setup)

    def check_output(folder: Path | str, *args: str) -> subprocess.CompletedProcess[str]:
        """`modelrun check` on an output folder (or S3 prefix): the collect step's own reading
        and evaluation, from the repository's environment."""
        assert MODELRUN.is_file(), "run `make setup` at the repository root first"
        return subprocess.run(
            [str(MODELRUN), "check", str(folder), *args],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )

    @pytest.fixture(scope="session")
    def modelrun_check() -> Callable[..., subprocess.CompletedProcess[str]]:
        return check_output

    PYTHON = Path(sys.executable)

    @pytest.fixture(scope="session")
    def mc_dir() -> Path:
        return MC

    @pytest.fixture(scope="session")
    def default_params() -> dict[str, Any]:
        params: dict[str, Any] = yaml.safe_load((MC / "params.yaml").read_text())
        return params

    @pytest.fixture
    def fast_params(tmp_path: Path, default_params: dict[str, Any]) -> Path:
        """params.yaml made fast for tests: few boosting rounds, absolute data path."""
        p = copy.deepcopy(default_params)
        p["data"]["path"] = str(MC / "data" / "seattle_sales.csv.xz")
        p["lightgbm"]["num_boost_round"] = 40
        p["xgboost"]["num_boost_round"] = 40
        path = tmp_path / "params.yaml"
        path.write_text(yaml.safe_dump(p))
        return path

    @pytest.fixture
    def contract_env(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path, fast_params: Path
    ) -> Iterator[dict[str, str]]:
        """A clean container-contract environment writing to a file:// results URI."""
        for k in list(__import__("os").environ):
            if k.startswith("MODELRUN_"):
                monkeypatch.delenv(k)
        out = tmp_path / "results"
        env = {
            "MODELRUN_RUN_ID": "test-run-1",
            "MODELRUN_RESULTS_URI": out.as_uri() + "/",
            "MODELRUN_THREADS": "1",
            "MODELRUN_DEVICE": "cpu",
            "MODELRUN_PARAMS": str(fast_params),
            "MODELRUN_SAMPLE": "4000",
        }
        for k, v in env.items():
            monkeypatch.setenv(k, v)
        yield env
