"""``modelrun check PATH``: an output folder read and evaluated by the collect step's own code
(modelrun.outputs, the evaluation): one line per problem, exit 1; the statistics as the PR shows
them. The sample's real output is tests/fixtures/report/pr; the sample model's own tests run the
check on every output it writes (tests/model_container/test_run.py), an S3 prefix included."""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from modelrun_cli.app import app
from tests.records import REPORT_FIXTURES

runner = CliRunner()


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    out = tmp_path / "results"
    shutil.copytree(REPORT_FIXTURES / "pr", out)
    return out


def check(folder: Path, *args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["check", str(folder), "--resamples", "100", *args])
    return result.exit_code, result.output


def test_the_samples_output_passes_and_its_statistics_are_printed(folder: Path) -> None:
    code, out = check(folder)
    assert code == 0, out
    assert out.startswith(f"✓ {folder} follows the container contract")
    assert "4,387 holdout sales, 4,328 in the ratio study" in out
    assert "| RMSE | 167,169 |" in out and "| COD | 11.95 |" in out and "| area | sales |" in out
    code, out = check(folder, "--json")
    found = json.loads(out)
    assert found["ok"] and found["problems"] == [] and found["statistics"]["cod"]["shown"] == "11.95"
    assert found["statistics"]["mki"]["pass"] is False and len(found["statistics"]["mki"]["ci"]) == 2


def test_each_problem_is_one_line_and_the_check_fails(folder: Path) -> None:
    document = json.loads((folder / "metrics.json").read_text())
    document["plots"] = ["feature_importance.png", "missing.png", "fake.svg"]
    document["params"] = "nowhere.yaml"
    (folder / "metrics.json").write_text(json.dumps(document))
    (folder / "fake.svg").write_text("<html><script>alert(1)</script></html>")
    code, out = check(folder)
    problems = [line for line in out.splitlines() if line.startswith("✗ ")]
    assert code == 1 and problems[:3] == [
        "✗ plot missing.png is missing (left out of the report)",
        "✗ plot 'fake.svg' is not an SVG (left out of the report)",
        "✗ metrics.json names the params file nowhere.yaml, which the run did not write",
    ]
    assert "| RMSE | 167,169 |" in out  # the predictions are fine: their statistics all the same


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (lambda f: (f / "metrics.json").unlink(), "✗ the run wrote no metrics.json"),
        (
            lambda f: (f / "metrics.json").write_text('{"schema_version": "1", "run_id": "x"}'),
            "✗ metrics.json does not follow the container contract: metrics.json is contract version 1",
        ),
        (
            lambda f: (f / "predictions.csv.gz").unlink(),
            "✗ metrics.json names the predictions predictions.csv.gz, which the run did not write",
        ),
        (
            lambda f: (f / "predictions.csv.gz").write_bytes(
                gzip.compress(b"sale_id,sale_price,estimate,area\ns1,-3,1,a\n", mtime=0)
            ),
            "✗ the predictions do not follow the container contract: predictions.csv.gz row 2: "
            "sale_price '-3' must be a positive number",
        ),
    ],
)
def test_output_that_cant_be_evaluated_says_why(folder: Path, change: object, problem: str) -> None:
    change(folder)  # type: ignore[operator]
    code, out = check(folder)
    assert code == 1 and out.splitlines()[0].startswith(problem), out
    assert "| RMSE |" not in out
