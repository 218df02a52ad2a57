"""Cold start: each handler's import from its own built package against a bare ``import boto3``,
and each package's and layer's size."""

from __future__ import annotations

import io
import statistics
import subprocess
import tempfile
import zipfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from modelrun_local import lambda_packages
from modelrun_local.stack import ROOT, load_template

BUILD_DIR = lambda_packages.BUILD_DIR


IMPORT_RATIO_GOAL = 1.5  # issue 16: each handler's import at most 1.5x a bare `import boto3`


# The Makefile's sam build (its aws-sam-cli pin, uv and Python 3.12), the log in .aws-sam-build.log.
SAM_BUILD = ["make", "-s", "sam-build"]


def functions_of_template() -> dict[str, str]:
    """logical id -> handler module, for each function in template.yaml."""
    resources = load_template()["Resources"]
    return {
        logical_id: str(r["Properties"]["Handler"]).rsplit(".", 1)[0]
        for logical_id, r in resources.items()
        if r["Type"] == "AWS::Serverless::Function"
    }


def package_size(directory: Path, zipped: bool) -> dict[str, Any]:
    files = [p for p in directory.rglob("*") if p.is_file()]
    out: dict[str, Any] = {"files": len(files), "unzipped_bytes": lambda_packages.tree_bytes(directory)}
    if zipped:
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=6) as archive:
            for p in files:
                archive.write(p, p.relative_to(directory))
        out["zipped_bytes"] = buffer.tell()
    return out


def cold_start_phase(repeats: int, build: bool, zipped: bool) -> dict[str, Any]:
    """Each handler imported as on Lambda, from its built package (lambda_packages.isolated),
    against a bare ``import boto3`` from the runtime's boto3 alone; each package's size."""
    functions = functions_of_template()
    build_note = None
    built_now = False
    found = lambda_packages.built()
    if not all(f in found for f in functions) and build:
        log = subprocess.run(SAM_BUILD, cwd=ROOT, capture_output=True, text=True, check=False)
        built_now = log.returncode == 0
        if not built_now:
            build_note = f"sam build failed: {log.stdout[-500:]}{log.stderr[-500:]}"
        found = lambda_packages.built()  # what the build left
    if any(f not in found for f in functions):
        build_note = build_note or "no .aws-sam/build (run `make template-checks` or the full bench to build)"
        functions = {}  # boto3 alone, then
    with tempfile.TemporaryDirectory() as tmp:
        runtime = lambda_packages.runtime_dir(Path(tmp) / "runtime")
        cases = {"boto3": ("boto3", [runtime])}
        for logical_id in functions:
            b = found[logical_id]
            assert b.handler_module is not None
            cases[logical_id] = (b.handler_module, [b.directory, *b.layers, runtime])
        samples = lambda_packages.import_samples(cases, repeats)
    imports = {k: statistics.median(v) for k, v in samples.items()}
    boto3_s = imports["boto3"]
    layers = {k: b for k, b in found.items() if b.kind == "layer"}
    stamp = BUILD_DIR / "template.yaml"
    return {
        "method": "a fresh interpreter per import (python -S -P, no byte code written), nothing on sys.path "
        "but the function's built package, its layers and boto3 with its dependencies (as Lambda's runtime "
        "has them); time.perf_counter() around the import statement; the cases take turns; median of "
        f"{repeats}",
        "boto3_import_s": boto3_s,
        "boto3_samples_s": samples["boto3"],
        "ratio_goal": IMPORT_RATIO_GOAL,
        "package_goal_bytes": lambda_packages.MAX_PACKAGE_BYTES,
        "handlers": {
            logical_id: {
                "module": module,
                "import_s": imports[logical_id],
                "samples_s": samples[logical_id],
                "ratio_to_boto3": imports[logical_id] / boto3_s,
                "package": package_size(found[logical_id].directory, zipped),
                "layers": [str(p.parent.name) for p in found[logical_id].layers],
            }
            for logical_id, module in functions.items()
        },
        "layers": {k: package_size(b.directory.parent, zipped) for k, b in layers.items()},
        "sam_build": {
            "dir": str(BUILD_DIR.relative_to(ROOT)),
            "built_by_this_run": built_now,
            "built_at": datetime.fromtimestamp(stamp.stat().st_mtime, UTC).isoformat(timespec="seconds")
            if stamp.exists()
            else None,
            "note": build_note,
        },
    }
