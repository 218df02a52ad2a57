"""Smoke run of the benchmark (modelrun_local.bench --quick): every phase runs and the checks hold."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from modelrun_local import bench


@pytest.mark.timeout(120)
def test_quick_bench_writes_figures_and_finds_no_lost_or_duplicated_runs(tmp_path: Path) -> None:
    code = bench.main(["--quick", "--runs", "2", "--requests", "6", "--prs", "3", "--out", str(tmp_path)])

    results = json.loads((tmp_path / "results.json").read_text())
    assert code == 0, results["problems"]
    assert results["machine"]["cpu_count"]
    overhead = results["overhead"]
    assert overhead["enqueue_to_submitjob_s"]["n"] == 2
    assert overhead["terminal_to_comment_s"]["n"] == 2
    assert overhead["poller"]["detection_delay_s"]["n"] == 2
    throughput = results["throughput"]
    assert throughput["batch_jobs_created"] == throughput["requests_unique"] == throughput["run_records"] == 6
    assert throughput["duplicates_sent"] >= 1
    assert results["submit_latency"]["batch_of_10_requests_per_s"]["overall"] > 0
    assert results["cold_start"]["boto3_import_s"] > 0
    assert "| what | figure |" in (tmp_path / "RESULTS.md").read_text()


def test_polling_delay_model() -> None:
    # A long model: half the running interval on average; a short one is often caught while starting.
    assert bench.expected_polling_delay(10_000, 60, 300) == pytest.approx(150, abs=1)
    assert bench.expected_polling_delay(18, 60, 300) == pytest.approx(0.3 * 291 + 0.7 * 21, abs=1)
