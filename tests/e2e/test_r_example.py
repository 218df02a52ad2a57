"""The R example (examples/r-model: a model in another language, with Debian's R alone) honours
the container contract: its output passes `modelrun check`, the collect step's own reading and
evaluation. `make e2e` installs Debian's R where it is missing (`make r-setup`)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from modelrun_local.stack import ROOT


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
