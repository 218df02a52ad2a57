"""The collect step's computation at county and state scale: reading the predictions, the point
statistics, their bootstrap intervals, the statistics by group, and the paired comparison with a
baseline, for synthetic holdouts of 5,000, 100,000 and 1,000,000 sales. Each size runs in a
process of its own on one core (BLAS threads 1, as a 1,769 MB Lambda has one vCPU): CPU seconds
per part and the process's peak memory (reading both runs' predictions included), against the
CollectResults function's MemorySize."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

SIZES = (5_000, 100_000, 1_000_000)
QUICK_SIZES = (5_000, 20_000)
GROUPS = 40  # market areas
# The report's pure-Python paired bootstrap that this replaced, as measured here (issue 23):
# CPU seconds, sales, resamples.
PURE_PYTHON = ((2.8, 4_387, 400), (8.2, 20_000, 200), (51.5, 100_000, 200))
MEMORY_MB = 1769  # template.yaml: CollectResultsFunction's MemorySize

# The collect step's work, in a process of its own: read both runs' predictions (gzip'd CSV, as a
# model writes them), then each part of the evaluation in turn; its peak memory is the step's.
_CHILD = r"""
import json, resource, sys, time
from pathlib import Path
from modelrun.domain import evaluation, results
from modelrun.domain.evaluation import Sales

folder = Path(sys.argv[1])
out = {"resamples": evaluation.RESAMPLES}
def cpu(f):
    t = time.process_time(); r = f(); return time.process_time() - t, r
this_raw, base_raw = (folder / "this.csv.gz").read_bytes(), (folder / "main.csv.gz").read_bytes()
out["csv_gz_mb"] = len(this_raw) / 2**20
out["read_s"], this = cpu(lambda: results.parse_predictions(this_raw, "predictions.csv.gz", ["area"]))
base_s, base = cpu(lambda: results.parse_predictions(base_raw, "predictions.csv.gz", []))
out["read_s"] += base_s
del this_raw, base_raw
plain = Sales(this.sale_id, this.price, this.estimate)
out["point_s"], _ = cpu(lambda: evaluation.evaluate(plain, resamples=0))
out["intervals_s"], _ = cpu(lambda: evaluation.evaluate(plain))
out["with_groups_s"], _ = cpu(lambda: evaluation.evaluate(this))
out["collect_s"], found = cpu(lambda: evaluation.evaluate(this, base))
out["by_group_s"] = out["with_groups_s"] - out["intervals_s"]
out["paired_s"] = out["collect_s"] - out["with_groups_s"]
assert isinstance(found.paired, evaluation.Paired) and found.n == len(this)
out["n"], out["groups"] = found.n, len({g.label for g in found.groups})
out["peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps(out))
"""


def _holdouts(n: int, folder: Path) -> None:
    """This run's and main's predictions of the same ``n`` sales, as gzip'd CSV."""
    import numpy as np

    rng = np.random.default_rng(n)
    price = np.round(np.exp(rng.normal(12.9, 0.55, n)))
    estimate = price * np.exp(rng.normal(-0.02, 0.14, n))
    main = estimate * np.exp(rng.normal(0.0, 0.03, n))
    for name, values, group in (("this", estimate, True), ("main", main, False)):
        rows = zip(range(n), price.tolist(), values.tolist(), strict=True)
        head = "sale_id,sale_price,estimate" + (",area\n" if group else "\n")
        body = "".join(f"s{i:07d},{p!r},{e!r}" + (f",{i % GROUPS}\n" if group else "\n") for i, p, e in rows)
        (folder / f"{name}.csv.gz").write_bytes(gzip.compress((head + body).encode(), 6))


def _one(n: int) -> dict[str, Any]:
    env = os.environ | {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    with tempfile.TemporaryDirectory(prefix="modelrun-bench-evaluation-") as tmp:
        _holdouts(n, Path(tmp))
        proc = subprocess.run(
            [sys.executable, "-c", _CHILD, tmp], capture_output=True, text=True, env=env, timeout=1800, check=False
        )
    if proc.returncode != 0:
        raise RuntimeError(f"the evaluation bench of {n:,} sales failed: {proc.stderr[-2000:]}")
    found: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return found


def evaluation_phase(quick: bool = False) -> dict[str, Any]:
    """Figures per holdout size, and the goals: 100,000 sales within 5 s, 1,000,000 within 60 s,
    each within the function's memory."""
    sizes = [_one(n) for n in (QUICK_SIZES if quick else SIZES)]
    return {
        "sizes": sizes,
        "memory_mb": MEMORY_MB,
        "pure_python": [{"cpu_s": s, "n": n, "resamples": r} for s, n, r in PURE_PYTHON],
    }


def collect_cold_start() -> dict[str, Any] | None:
    """CollectResults' package and handler import with numpy in it, beside a bare boto3 import
    (cold_start's method), from the last `sam build`; None without one."""
    from modelrun_bench.cold_start import cold_start_phase
    from modelrun_local import lambda_packages

    if "CollectResultsFunction" not in lambda_packages.built():
        return None
    found = cold_start_phase(5, build=False, zipped=True)
    handler = found["handlers"]["CollectResultsFunction"]
    return {
        "boto3_import_s": found["boto3_import_s"],
        "import_s": handler["import_s"],
        "ratio_to_boto3": handler["ratio_to_boto3"],
        "package": handler["package"],
        "others": {k: h["ratio_to_boto3"] for k, h in found["handlers"].items() if k != "CollectResultsFunction"},
    }


def markdown(e: dict[str, Any]) -> list[str]:
    """The section of RESULTS.md (and docs/evaluation.md's figures)."""
    lines = [
        "",
        f"The collect step's evaluation, one core (BLAS threads 1), {e['sizes'][0]['resamples']:,} bootstrap "
        f"resamples, {e['sizes'][0]['groups']} groups; CPU seconds per part and the process's peak memory "
        f"(CollectResults has {e['memory_mb']:,} MB):",
        "",
        "| sales | read both CSVs (gzip) | point statistics | + intervals | + by group | + paired with main "
        "| collect step: all together | peak memory |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for s in e["sizes"]:
        lines.append(
            f"| {s['n']:,} | {s['read_s']:.2f} s ({s['csv_gz_mb']:.1f} MB) | {s['point_s']:.2f} s "
            f"| {s['intervals_s']:.2f} s | {s['by_group_s']:.2f} s | {s['paired_s']:.2f} s "
            f"| {s['collect_s'] + s['read_s']:.2f} s | {s['peak_mb']:.0f} MB |"
        )
    before = "; ".join(f"{p['cpu_s']} s for {p['n']:,} sales ({p['resamples']} resamples)" for p in e["pure_python"])
    lines += ["", f"Before (the pure-Python paired bootstrap alone, no intervals nor groups): {before}."]
    c = e.get("cold_start")
    if c:
        p = c["package"]
        others = ", ".join(f"{k.removesuffix('Function')} {r:.2f}×" for k, r in sorted(c["others"].items()))
        lines += [
            "",
            f"CollectResults with numpy (measured with these figures; the cold-start rows above predate it): "
            f"package {p['unzipped_bytes'] / 2**20:.1f} MiB unzipped, {p.get('zipped_bytes', 0) / 2**20:.1f} MiB "
            f"zipped; handler import {c['import_s'] * 1000:.0f} ms, {c['ratio_to_boto3']:.2f}× a bare boto3 import "
            f"({c['boto3_import_s'] * 1000:.0f} ms; the others now: {others}).",
        ]
    return lines
