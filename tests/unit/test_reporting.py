"""The report path (modelrun.reporting, then modelrun.pull_request) on in-memory fakes, with the
sample model's real output (tests/fixtures/report): results compared with main's run and
report.html written; results outside the container contract said as such; a failed run's log
tail; results collected once; then the PR updated on App credentials (comment and check run) or
a token (comment and status)."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import pytest

from modelrun import collected as kept_files
from modelrun import pull_request, reporting
from modelrun.domain import naming
from modelrun.domain.comparing import results_report
from modelrun.domain.documents import Summary, report_of
from modelrun.domain.report import check_run, render_comment
from modelrun.domain.results import MAX_METRICS_BYTES
from modelrun.domain.run import RunRecord
from modelrun.domain.status import RunStatus
from modelrun.errors import GitHubRateLimited, PublishBusy, RunNotFound
from tests.records import REPORT_FIXTURES, sample_run, stored_record
from tests.unit.fakes import FakeGitHub, FakeLogs, FakeResults, FakeRuns, collect_deps, update_deps

MAIN_SHA = "c" * 40
PR = stored_record(
    RunStatus.SUCCEEDED, run_id="pr-1", results_uri="s3://results/runs/pr-1/", base_sha=MAIN_SHA, report=None
)


def main_run() -> RunRecord:
    doc, sales, _ = sample_run("main")
    main_report, _ = results_report("SUCCEEDED", doc, None, sales, None, [], resamples=50)
    return stored_record(
        RunStatus.SUCCEEDED,
        run_id="main-1",
        pr_number=None,
        pr_key=None,
        head_sha=MAIN_SHA,
        head_ref="main",
        branch_key=naming.branch_key(PR.repository, "main"),
        baseline=True,
        created_at="2026-01-01T00:00:00.000Z",
        results_uri="s3://results/runs/main-1/",
        summary=Summary.of(main_report).stored(),
        report={"status": "SUCCEEDED", "kept": True, "predictions": "predictions.csv.gz", "params": "params.yaml"},
    )


MAIN_KEPT = f"s3://results/{naming.collected_prefix('main-1')}"


def bucket(pr_metrics: bytes | None = None) -> FakeResults:
    """The bucket as the two sample runs left it: main's files as its collection kept them, and
    a job's forgery in main's write prefix (which must never be read)."""
    results = FakeResults()
    for name, prefix in (("main", MAIN_KEPT), ("pr", PR.results_uri)):
        folder: Path = REPORT_FIXTURES / name
        results.objects[f"{prefix}predictions.csv.gz"] = (folder / "predictions.csv.gz").read_bytes()
        results.objects[f"{prefix}params.yaml"] = (folder / "params.yaml").read_bytes()
    results.objects[f"{main_run().results_uri}predictions.csv.gz"] = b"forged"
    results.objects[f"{main_run().results_uri}params.yaml"] = b"forged: true"
    results.objects[f"{PR.results_uri}metrics.json"] = (
        (REPORT_FIXTURES / "pr" / "metrics.json").read_bytes() if pr_metrics is None else pr_metrics
    )
    results.objects[f"{PR.results_uri}feature_importance.png"] = (
        REPORT_FIXTURES / "pr" / "feature_importance.png"
    ).read_bytes()
    return results


@pytest.fixture(scope="module")
def collected_once() -> tuple[FakeRuns, FakeResults, dict[str, Any]]:
    """One collection, shared: tests copy what it left (the collect step's own 1,000 resamples)."""
    runs, results = FakeRuns(PR, main_run()), bucket()
    answer = reporting.collect(collect_deps(runs, results), "pr-1")
    return runs, results, answer


def collected(collected_once: tuple[FakeRuns, FakeResults, dict[str, Any]]) -> FakeRuns:
    return FakeRuns(*collected_once[0].records.values())


def test_results_are_compared_with_mains_run_and_the_report_written(
    collected_once: tuple[FakeRuns, FakeResults, dict[str, Any]],
) -> None:
    runs, results, answer = collected_once
    stored = runs.records["pr-1"]
    report = report_of(stored.report)
    assert answer["status"] == "SUCCEEDED" and answer["notification"]["subject"]
    assert report.contract_error is None and report.has_results and stored.summary
    assert report.baseline is not None and report.baseline.run_id == "main-1" and report.baseline.which == "base_commit"
    compared = report.comparison  # paired on the shared holdout; params changed
    assert compared is not None and compared.status == "paired" and compared.changes and report.params_diff
    assert report.report_key == "reports/pr-1/report.html"
    assert report.report_url is not None and "prefix=reports/pr-1/report.html" in report.report_url
    html = results.objects["s3://results/reports/pr-1/report.html"].decode()
    assert "data:image/png;base64," in html  # the plot, inlined


def test_the_run_is_read_and_linked_only_at_its_kept_copy(
    collected_once: tuple[FakeRuns, FakeResults, dict[str, Any]],
) -> None:
    """Issue 21: main's write prefix holds a forgery, which no comparison reads; the PR's files
    are copied under reports/ (no job may write there) and its write prefix is never linked."""
    runs, results, _ = collected_once
    report = report_of(runs.records["pr-1"].report)
    assert report.kept and report.params_diff and b"forged" not in "".join(report.params_diff).encode()
    kept = f"s3://results/{naming.collected_prefix('pr-1')}"
    for path in ("metrics.json", "predictions.csv.gz", "params.yaml"):
        assert results.objects[f"{kept}{path}"] == results.objects[f"{PR.results_uri}{path}"]
    assert report.artifacts_url is not None and "prefix=reports/pr-1/artifacts/" in report.artifacts_url
    assert "runs/" not in report.model_dump_json()
    assert runs.records["pr-1"].results_uri == PR.results_uri  # the record keeps where the job wrote


def _compared_with_main(results: FakeResults, main: RunRecord | None = None) -> Any:
    runs = FakeRuns(PR, main or main_run())
    reporting.collect(collect_deps(runs, results), "pr-1")
    return report_of(runs.records["pr-1"].report)


def test_mains_unreadable_files_make_the_comparison_unavailable_not_the_report() -> None:
    results = bucket()
    results.archived.add(f"{MAIN_KEPT}predictions.csv.gz")  # as S3 answers a GLACIER object: InvalidObjectState
    results.archived.add(f"{MAIN_KEPT}params.yaml")
    report = _compared_with_main(results)
    assert report.has_results and report.report_key and report.comparison is not None
    assert report.comparison.status == "unavailable" and "InvalidObjectState" in (report.comparison.reason or "")


def test_a_main_run_collected_before_copies_were_kept_is_not_compared() -> None:
    main = main_run().model_copy(update={"report": {"status": "SUCCEEDED"}})
    report = _compared_with_main(bucket(), main)
    assert report.comparison is not None and report.comparison.status == "unavailable"
    assert "run main again" in (report.comparison.reason or "") and not report.params_diff


def test_an_archived_file_of_the_run_itself_is_left_out_and_said() -> None:
    results = bucket()
    results.archived.add(f"{PR.results_uri}predictions.csv.gz")  # its predictions are its results
    report = _compared_with_main(results)
    assert not report.has_results and "InvalidObjectState" in (report.contract_error or "")
    results = bucket()
    results.archived.add(f"{PR.results_uri}metrics.json")
    report = _compared_with_main(results)
    assert report.contract_error is not None and "InvalidObjectState" in report.contract_error


@pytest.mark.parametrize(
    ("metrics", "reason"),
    [
        (b"{not json", "metrics.json is not JSON"),
        (b'{"run_id": "pr-1"}', "does not follow the container contract"),
        (b" " * (MAX_METRICS_BYTES + 1), "does not follow the container contract"),  # too large: unread
    ],
)
def test_results_outside_the_contract_are_said_as_such(metrics: bytes, reason: str) -> None:
    runs, results = FakeRuns(PR, main_run()), bucket(metrics)
    reporting.collect(collect_deps(runs, results), "pr-1")
    report = report_of(runs.records["pr-1"].report)
    assert report.contract_error is not None and reason in report.contract_error
    assert not report.has_results and runs.records["pr-1"].summary is None
    assert "s3://results/reports/pr-1/report.html" not in results.objects


def test_numbers_the_model_reports_itself_are_never_the_result() -> None:
    """A metrics.json that claims RMSE 1 and COD 31: the report holds what modelrun computed from
    the predictions, and says where the model's numbers disagree."""
    document = json.loads((REPORT_FIXTURES / "pr" / "metrics.json").read_text())
    document["metrics"] = [
        {"name": "rmse", "value": 1.0},
        {"name": "COD", "value": 31.0},
        {"name": "train_rows", "value": 39000, "better": "higher"},
    ]
    runs, results = FakeRuns(PR, main_run()), bucket(json.dumps(document).encode())
    reporting.collect(collect_deps(runs, results), "pr-1")
    record = runs.records["pr-1"]
    report = report_of(record.report)
    assert report.metrics is not None and report.metrics.rmse is not None and report.metrics.rmse > 10_000
    assert report.ratio_study is not None and report.ratio_study.cod is not None
    assert report.ratio_study.cod.value is not None and report.ratio_study.cod.value < 20
    assert [(d.key, d.reported) for d in report.disagreements] == [("rmse", 1.0), ("cod", 31.0)]
    assert Summary.model_validate(record.summary).metrics.rmse == report.metrics.rmse
    comment = render_comment([record])
    assert "it reported RMSE 1 (modelrun: " in comment and "COD 31.00 (modelrun: " in comment
    assert "| RMSE | 1 |" not in comment and "train_rows" not in comment  # own metrics: the check run's text
    text = check_run(record.model_copy(update={"gate": {"kind": "default"}})).text or ""  # once judged
    assert "| train\\_rows | 39,000 | — | higher |" in text  # inert: Markdown escaped


def test_predictions_outside_the_contract_leave_no_results() -> None:
    runs, results = FakeRuns(PR, main_run()), bucket()
    results.objects[f"{PR.results_uri}predictions.csv.gz"] = gzip.compress(
        b"sale_id,sale_price,estimate,area\ns1,0,1,a\n", mtime=0
    )
    reporting.collect(collect_deps(runs, results), "pr-1")
    report = report_of(runs.records["pr-1"].report)
    assert report.contract_error == (
        "the predictions do not follow the container contract: predictions.csv.gz row 2: "
        "sale_price '0' must be a positive number"
    )
    assert not report.has_results and runs.records["pr-1"].summary is None


def test_a_succeeded_run_without_metrics_is_a_contract_error() -> None:
    runs, results = FakeRuns(PR), FakeResults()
    reporting.collect(collect_deps(runs, results), "pr-1")
    assert report_of(runs.records["pr-1"].report).contract_error == "the run wrote no metrics.json"


def test_a_failed_run_gets_its_log_tail() -> None:
    failed = PR.model_copy(update={"status": RunStatus.FAILED, "log_stream": "modelrun/default/abc"})
    logs = FakeLogs({"modelrun/default/abc": [f"line {i}" for i in range(100)]})
    runs = FakeRuns(failed)
    reporting.collect(collect_deps(runs, FakeResults(), logs), "pr-1")
    tail = report_of(runs.records["pr-1"].report).log_tail
    assert tail == [f"line {i}" for i in range(100 - reporting.LOG_TAIL_LINES, 100)]


def test_results_once_collected_do_not_change(collected_once: tuple[FakeRuns, FakeResults, dict[str, Any]]) -> None:
    runs, results = collected(collected_once), bucket()
    first = runs.records["pr-1"]
    results.objects[f"{PR.results_uri}metrics.json"] = b"{}"  # the bucket changed meanwhile
    reporting.collect(collect_deps(runs, results), "pr-1")  # a retried task, or a second execution
    assert runs.records["pr-1"] == first


def test_an_unknown_run_is_an_error() -> None:
    with pytest.raises(RunNotFound):
        reporting.collect(collect_deps(FakeRuns(), FakeResults()), "no-such-run")
    with pytest.raises(RunNotFound):
        pull_request.update_pull_request(update_deps(FakeRuns(), FakeGitHub()), "no-such-run")


def test_on_app_credentials_the_pr_gets_the_comment_and_the_completed_check_run(
    collected_once: tuple[FakeRuns, FakeResults, dict[str, Any]],
) -> None:
    runs, github = collected(collected_once), FakeGitHub()
    answer = pull_request.update_pull_request(update_deps(runs, github), "pr-1")
    assert answer == {"run_id": "pr-1", "comment_written": True, "check_run": "success"}
    # the merge gate's policy read first (none there: the default), then the comment and the check run
    assert github.calls == ["file_at", "create_comment", "create_check_run"] and github.statuses == []
    (check,) = github.check_runs.values()
    assert check["status"] == "completed" and check["conclusion"] == "success"


def test_on_a_token_the_pr_gets_the_comment_and_the_commit_status(
    collected_once: tuple[FakeRuns, FakeResults, dict[str, Any]],
) -> None:
    runs, github = collected(collected_once), FakeGitHub(uses_app=False)
    answer = pull_request.update_pull_request(update_deps(runs, github), "pr-1")
    assert answer == {"run_id": "pr-1", "comment_written": True, "commit_status": "success"}
    ((sha, state, _, target),) = github.statuses
    assert (sha, state) == (PR.head_sha, "success") and target is not None and "report.html" in target
    pull_request.update_pull_request(update_deps(runs, github), "pr-1")  # retried: nothing changed, nothing sent
    assert github.calls == ["create_comment", "set_status"]


def test_a_comment_another_writer_holds_is_retried_by_the_state_machine(
    collected_once: tuple[FakeRuns, FakeResults, dict[str, Any]],
) -> None:
    runs, github = collected(collected_once), FakeGitHub()
    assert PR.pr_key is not None
    runs.acquire(f"comment#{PR.pr_key}", "an-interim-writer", 45)
    with pytest.raises(PublishBusy):
        pull_request.update_pull_request(update_deps(runs, github), "pr-1")
    assert github.calls == []


def test_a_runs_files_beyond_the_cap_are_left_out_of_its_kept_copy_and_logged(monkeypatch: pytest.MonkeyPatch) -> None:
    results = FakeResults()
    for i in range(5):
        results.objects[f"{PR.results_uri}artifacts/f{i}.txt"] = b"x"
    monkeypatch.setattr(kept_files, "MAX_FILES", 3)
    left_out = kept_files.keep(results, PR, "results")
    kept = sorted(k for k in results.objects if k.startswith("s3://results/reports/"))
    assert kept == [f"s3://results/reports/pr-1/artifacts/artifacts/f{i}.txt" for i in range(3)]
    assert sorted(left_out) == ["artifacts/f3.txt", "artifacts/f4.txt"]


def test_a_short_retry_after_is_waited_out_here_not_a_minute_in_the_state_machine(
    collected_once: tuple[FakeRuns, FakeResults, dict[str, Any]],
) -> None:
    """Retry-After: 1 shows the final state a second later, not the state machine's minute (issue 25)."""
    runs, github = collected(collected_once), FakeGitHub()
    github.fail("create_check_run", GitHubRateLimited("secondary rate limit (429), retry after 1 s", 1.0))
    slept: list[float] = []
    answer = pull_request.update_pull_request(update_deps(runs, github), "pr-1", sleep=slept.append)
    assert answer["check_run"] == "success" and slept == [1.0]
    assert github.calls == ["create_comment", "create_check_run", "create_check_run"]


def test_a_long_or_unstated_wait_is_left_to_the_state_machine(
    collected_once: tuple[FakeRuns, FakeResults, dict[str, Any]],
) -> None:
    runs, github = collected(collected_once), FakeGitHub()
    github.fail("create_comment", GitHubRateLimited("secondary rate limit (403) without Retry-After", 60.0))
    slept: list[float] = []
    with pytest.raises(GitHubRateLimited):
        pull_request.update_pull_request(update_deps(runs, github), "pr-1", sleep=slept.append)
    assert slept == []
