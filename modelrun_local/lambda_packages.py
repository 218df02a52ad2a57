"""The functions' deployment packages as `sam build` leaves them (issue 16), and a fresh interpreter
that sees what a Lambda execution environment sees: the function's own package, its layers'
python/ folders and the runtime's boto3 - nothing of this venv. The package check
(tests/packages/test_packages.py) and the benchmark's import timing (modelrun_bench/cold_start.py) use it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import package_probe
from samtranslator.yaml_helper import yaml_parse

from modelrun_local.stack import ROOT

BUILD_DIR = ROOT / ".aws-sam" / "build"
MAX_PACKAGE_BYTES = 15 * 2**20
# CollectResults ships numpy (the evaluation, issue 23): ~45 MiB of it, its tests left out. Lambda
# allows 250 MB unzipped; this bound keeps it well within that.
MAX_PACKAGE_BYTES_OF = {"CollectResultsFunction": 64 * 2**20}


def max_package_bytes(logical_id: str) -> int:
    return MAX_PACKAGE_BYTES_OF.get(logical_id, MAX_PACKAGE_BYTES)


# What Lambda's python3.12 runtime puts on sys.path: boto3 and what it requires.
RUNTIME_DISTRIBUTIONS = ("boto3", "botocore", "s3transfer", "jmespath", "python-dateutil", "six", "urllib3")


@dataclass(frozen=True)
class Built:
    logical_id: str
    kind: str  # "function" or "layer"
    directory: Path  # what the function's zip (or the layer's, under python/) holds
    handler_module: str | None = None
    layers: tuple[Path, ...] = ()  # each layer's python/ folder


def built(build_dir: Path = BUILD_DIR) -> dict[str, Built]:
    """The functions and layers of the built template (empty when there is no build)."""
    stamp = build_dir / "template.yaml"
    if not stamp.exists():
        return {}
    resources: dict[str, Any] = yaml_parse(stamp.read_text())["Resources"]
    layers = {
        k: build_dir / r["Properties"]["ContentUri"] / "python"
        for k, r in resources.items()
        if r["Type"] == "AWS::Serverless::LayerVersion"
    }
    out = {k: Built(k, "layer", path) for k, path in layers.items()}
    for k, r in resources.items():
        if r["Type"] == "AWS::Serverless::Function":
            props = r["Properties"]
            out[k] = Built(
                k,
                "function",
                build_dir / props["CodeUri"],
                str(props["Handler"]).rsplit(".", 1)[0],
                tuple(layers[layer["Ref"]] for layer in props.get("Layers", [])),
            )
    return out


def tree_bytes(directory: Path) -> int:
    return sum(p.stat().st_size for p in directory.rglob("*") if p.is_file())


def runtime_dir(directory: Path) -> Path:
    """``directory`` filled with links to this venv's boto3 and its dependencies, nothing else."""
    directory.mkdir(parents=True, exist_ok=True)
    for name in RUNTIME_DISTRIBUTIONS:
        dist = metadata.distribution(name)
        tops = {f.parts[0] for f in dist.files or [] if not f.parts[0].endswith(".dist-info") and f.parts[0] != ".."}
        for top in sorted(tops - {"__pycache__", "bin"}):
            link = directory / top
            if not link.exists():
                link.symlink_to(Path(str(dist.locate_file(top))))
    return directory


def isolated(path: list[Path]) -> tuple[list[str], dict[str, str]]:
    """The interpreter's leading arguments and environment: -S (no site-packages), -P (not the
    script's folder), only ``path`` on sys.path, and no byte code written (the code directory is
    read-only on Lambda: what the package does not ship is compiled at every cold start)."""
    env = {
        # the handlers check their settings at import: values of the right types, as Lambda has
        **package_probe.placeholders(),
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PYTHONPATH": os.pathsep.join(map(str, path)),
        "PYTHONDONTWRITEBYTECODE": "1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
    }
    return [sys.executable, "-S", "-P"], env


def import_seconds(module: str, path: list[Path]) -> float:
    """How long ``import module`` takes in a fresh, isolated interpreter (its start not counted)."""
    args, env = isolated(path)
    code = f"import time\nstarted = time.perf_counter()\nimport {module}\nprint(time.perf_counter() - started)"
    done = subprocess.run([*args, "-c", code], env=env, capture_output=True, text=True, check=True)
    return float(done.stdout)


def import_samples(cases: dict[str, tuple[str, list[Path]]], repeats: int) -> dict[str, list[float]]:
    """Each case's import times; the cases take turns, so a slow moment of the machine falls on all."""
    samples: dict[str, list[float]] = {k: [] for k in cases}
    for _ in range(repeats):
        for key, (module, path) in cases.items():
            samples[key].append(import_seconds(module, path))
    return samples
