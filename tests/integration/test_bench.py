"""Smoke run of the benchmark (python -m modelrun_bench --quick): every phase runs and the checks hold."""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import pytest

from modelrun_bench.main import main
from modelrun_bench.polling import expected_polling_delay
from modelrun_bench.probes import bench_stack
from modelrun_bench.throughput import throughput_phase


@pytest.mark.timeout(400)  # about 120 s on an idle 2-core machine; far more when it is shared
def test_quick_bench_writes_figures_and_finds_no_lost_or_duplicated_runs(tmp_path: Path) -> None:
    code = main(["--quick", "--runs", "2", "--requests", "6", "--prs", "3", "--out", str(tmp_path)])

    results = json.loads((tmp_path / "results.json").read_text())
    assert code == 0, results["problems"]
    assert results["machine"]["cpu_count"]
    assert results["command"].startswith("python -m modelrun_bench --quick")
    overhead = results["overhead"]
    assert overhead["enqueue_to_submitjob_s"]["n"] == 2
    assert overhead["terminal_to_comment_s"]["n"] == 2
    assert overhead["poller"]["detection_delay_s"]["n"] == 2
    # the requests timed are the runs' own: 5, and the merge gate's policy read once per base commit
    assert 0 < overhead["github"]["per_run"]["total"] <= 6
    throughput = results["throughput"]
    assert throughput["batch_jobs_created"] == throughput["requests_unique"] == throughput["run_records"] == 6
    assert throughput["duplicates_sent"] >= 1
    assert throughput["iam"]["decisions"] > 0 and throughput["iam"]["denied"] == 0
    reported = sum(n for status, n in throughput["run_statuses"].items() if status in ("SUCCEEDED", "FAILED"))
    assert throughput["report_executions"] == reported > 0  # one per reported run (superseded ones have none)
    assert throughput["report_execution_statuses"] == {"SUCCEEDED": reported}
    assert results["submit_latency"]["batch_of_10_requests_per_s"]["overall"] > 0
    assert results["cold_start"]["boto3_import_s"] > 0
    assert results["cold_path"]["terminal_to_comment_s"]["n"] == 1  # the quick bench's one cold run
    assert results["soak"]["lost"] == results["soak"]["duplicated"] == 0
    evaluation = results["evaluation"]  # the collect step's statistics at scale, --quick: small holdouts
    assert [s["n"] for s in evaluation["sizes"]] == [5_000, 20_000]
    assert all(0 < s["point_s"] < s["collect_s"] and s["peak_mb"] > 0 for s in evaluation["sizes"])
    text = (tmp_path / "RESULTS.md").read_text()
    assert "| what | figure |" in text and "| 20,000 |" in text and "collect step: all together" in text


def test_polling_delay_model() -> None:
    # A long model: half the running interval on average; a short one is often caught while starting.
    assert expected_polling_delay(10_000, 60, 300) == pytest.approx(150, abs=1)
    assert expected_polling_delay(18, 60, 300) == pytest.approx(0.3 * 291 + 0.7 * 21, abs=1)


@pytest.mark.timeout(400)  # about 120 s on an idle 2-core machine; far more when it is shared
def test_a_lost_run_request_is_reported_as_a_problem(monkeypatch: pytest.MonkeyPatch) -> None:
    """The throughput check counts what reached Batch: a request that never arrives is caught."""
    real_client = boto3.client
    dropped: list[str] = []

    class LosingSqs:
        def __init__(self, client: object) -> None:
            self.client = client

        def send_message_batch(self, QueueUrl: str, Entries: list[dict[str, str]]) -> object:
            if not dropped:
                dropped.append(Entries[0]["MessageBody"])
                Entries = Entries[1:]  # the first message is lost on the way
            return self.client.send_message_batch(QueueUrl=QueueUrl, Entries=Entries)  # type: ignore[attr-defined]

        def __getattr__(self, name: str) -> object:
            return getattr(self.client, name)

    def client(service: str, *args: object, **kwargs: object) -> object:
        made = real_client(service, *args, **kwargs)  # type: ignore[call-overload]
        return LosingSqs(made) if service == "sqs" else made

    with bench_stack() as (probe, runtime, image):
        monkeypatch.setattr(boto3, "client", client)
        results = throughput_phase(runtime, probe, image, requests=4, prs=2, dup=0.0)

    assert dropped
    assert any("(lost)" in problem for problem in results["problems"]), results["problems"]
    assert results["batch_jobs_created"] == 3
