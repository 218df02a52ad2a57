"""The pull request comment, the notification and the check run rendered from run records: their
content, their history, and user text kept inert. Pure, no AWS, no GitHub."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from pydantic import ValidationError

from modelrun.domain.report import MARKER, notification, render_comment
from modelrun.domain.run import Attempt
from modelrun.domain.status import RunStatus
from tests.unit.domain_helpers import assert_tables_intact, fenced_blocks, metrics_report, outside_code, record, request


# -- report rendering ----------------------------------------------------------------------------
def test_comment_succeeded_with_metrics_and_baseline() -> None:
    rec = record(
        RunStatus.SUCCEEDED,
        started_at="2025-03-04T15:20:00.000Z",
        stopped_at="2025-03-04T15:24:30.000Z",
        report=metrics_report(),
        note="try a deeper tree",
    )
    body = render_comment([rec])
    assert body.startswith(MARKER)
    assert "**SUCCEEDED**" in body and "4m 30s" in body
    # Without a paired comparison the changes are shown, never marked.
    assert "| RMSE | 81,234 | 90,000 | -8,766 (-9.7%) | — |  |" in body
    assert "| R² | 0.870 | 0.850 | +0.020 | — |  |" in body
    assert "No paired comparison was made" in body and "🟢" not in body
    assert "main <code>00000000</code>" in body
    assert "| COD | 9.10 | 8.70 to 9.60 | 5.0 to 15.0 | ✅ pass | 10.20 | -1.10 | — |  |" in body
    assert "| PRD | 1.040 | 1.030 to 1.050 | 0.98 to 1.03 | ❌ fail |" in body
    assert "baseline: main run <code>00000000</code>" in body
    assert "[Full report](https://console.aws.amazon.com/" in body
    assert "try a deeper tree" in body
    assert_tables_intact(body)


def test_comment_failed_with_reason_and_log_tail() -> None:
    rec = record(
        RunStatus.FAILED,
        status_reason="Essential container in task exited",
        exit_code=3,
        report={
            "status": "FAILED",
            "log_tail": ["loading data", "Traceback (most recent call last):", "ValueError: boom"],
        },
    )
    body = render_comment([rec])
    assert "**FAILED**" in body
    assert "**Reason:** Essential container in task exited · exit code 3" in body
    blocks = fenced_blocks(body)
    assert len(blocks) == 1 and "ValueError: boom" in blocks[0][1]


def test_comment_queued_with_runs_ahead() -> None:
    assert "on the CPU queue, 2 runs ahead" in render_comment([record()], runs_ahead=2)
    assert "on the CPU queue, 1 run ahead" in render_comment([record()], runs_ahead=1)
    assert "on the CPU queue, 100+ runs ahead" in render_comment([record()], runs_ahead=100)
    gpu = record(req=request(compute="gpu"), compute="gpu")
    assert "on the GPU queue, 0 runs ahead" in render_comment([gpu], runs_ahead=0)


def test_comment_keeps_history_of_earlier_runs() -> None:
    older = record(
        RunStatus.SUPERSEDED,
        req=request(workflow={"run_id": 1, "run_attempt": 1}),
    )
    body = render_comment([record(RunStatus.RUNNING), older])
    assert "Earlier runs of this PR (1)" in body
    assert_tables_intact(body)


# -- escaping -----------------------------------------------------------------------------------
EVIL = [
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    "@org/team please look",
    "hi @someone",
    "[click](javascript:alert(1))",
    "](javascript:alert(document.cookie))",
    "a | b | c",
    "line one\nline two\r\n| injected | row |",
    "```\n# heading\n```",
    "<!-- modelrun:sticky-comment v1 -->",
]


def assert_inert(body: str) -> None:
    prose = outside_code(body)
    assert "<script" not in body.lower()
    assert "<img" not in body.lower()
    assert not re.search(r"@[A-Za-z]", prose), [m for m in re.findall(r".{0,20}@[A-Za-z].{0,20}", prose)]
    # no Markdown link can form: a link needs an unescaped "](" after an unescaped "["
    assert not re.search(r"(?<!\\)\]\((?:javascript|data):", prose), prose
    assert body.count(MARKER) == 1


@pytest.mark.parametrize("evil", EVIL)
def test_malicious_note_renders_inert(evil: str) -> None:
    rec = record(RunStatus.SUCCEEDED, note=evil, report=metrics_report())
    body = render_comment([rec])
    assert_inert(body)
    assert_tables_intact(body)
    # the note is one quoted line whatever it contains
    assert len([line for line in body.splitlines() if line.startswith("> ")]) == 1


@pytest.mark.parametrize("evil", EVIL)
def test_malicious_status_reason_and_log_tail_render_inert(evil: str) -> None:
    tail = ["starting", evil, "``` still inside", "`````", f"@someone {evil}", "<script>x</script> done"]
    rec = record(RunStatus.FAILED, status_reason=evil, exit_code=3, report={"status": "FAILED", "log_tail": tail})
    body = render_comment([rec])
    prose = outside_code(body)
    assert "<script" not in prose.lower() and "<img" not in prose.lower()
    assert not re.search(r"@[A-Za-z]", prose)
    assert not re.search(r"(?<!\\)\]\((?:javascript|data):", prose)
    # the log tail stays inside one fence: the fence is longer than any backtick run in it
    blocks = fenced_blocks(body)
    assert len(blocks) == 1
    fence, inside = blocks[0]
    assert inside.splitlines()[-1] == "<script>x</script> done"
    assert all(len(run) < len(fence) for run in re.findall(r"`+", inside))
    reason_lines = [line for line in body.splitlines() if line.startswith("**Reason:**")]
    assert len(reason_lines) == 1 and "exit code 3" in reason_lines[0]


@pytest.mark.parametrize("evil", EVIL)
def test_malicious_branch_and_author_render_inert(evil: str) -> None:
    # head_ref rejects control characters at the contract; a branch name is otherwise free text
    ref = " ".join(evil.split())
    # triggered_by must be a GitHub login at the contract; a stored record is rendered inert anyway
    with pytest.raises(ValidationError, match="triggered_by"):
        request(triggered_by="x@evil")
    req = request(head_ref=ref, base_ref=ref)
    body = render_comment([record(RunStatus.SUCCEEDED, req=req, report=metrics_report(), triggered_by="x@evil")])
    assert "<script" not in body.lower() and "<img" not in body.lower()
    assert not re.search(r"@[A-Za-z]", outside_code(body))
    assert body.count(MARKER) == 1
    assert_tables_intact(body)


@pytest.mark.parametrize("evil", EVIL)
def test_malicious_metric_names_keep_the_table(evil: str) -> None:
    report = metrics_report()
    report["metrics"][evil] = 1.5
    report["ratio_study"]["cod"]["standard"] = evil
    body = render_comment([record(RunStatus.SUCCEEDED, report=report)])
    assert_inert(body)
    assert_tables_intact(body)


# -- notification ---------------------------------------------------------------------------------
@pytest.mark.parametrize("status", [RunStatus.SUCCEEDED, RunStatus.FAILED])
def test_notification_is_chatbot_custom_and_email(status: RunStatus) -> None:
    rec = record(status, status_reason="boom", report=metrics_report() if status is RunStatus.SUCCEEDED else None)
    note = notification(rec)
    assert 0 < len(note["subject"]) < 100 and note["subject"].isascii()
    assert "\n" not in note["subject"]
    message = json.loads(note["message"])
    chatbot = json.loads(message["default"])
    assert chatbot["version"] == "1.0"
    assert chatbot["source"] == "custom"
    assert chatbot["content"]["description"]
    assert rec.run_id in chatbot["content"]["description"]
    assert len(chatbot["content"]["title"]) <= 250
    assert rec.run_id in message["email"] and rec.head_sha in message["email"]
    assert note["state"] == ("success" if status is RunStatus.SUCCEEDED else "failure")


def test_the_comment_shows_each_run_as_fresh_as_it_was_last_written() -> None:
    from modelrun.comments import runs_for_comment

    older = record(RunStatus.SUCCEEDED, req=request(head_sha="0" * 40), created_at="2026-01-01T00:00:00.000Z")
    submitted = record(RunStatus.SUBMITTED, updated_at="2026-01-02T00:00:01.000Z")
    running = submitted.model_copy(update={"status": RunStatus.RUNNING, "updated_at": "2026-01-02T00:00:02.000Z"})
    # The submit handler still holds SUBMITTED while the listing already says RUNNING: RUNNING wins.
    assert [r.status for r in runs_for_comment(submitted, [running, older])] == [RunStatus.RUNNING, RunStatus.SUCCEEDED]
    # The listing lags behind the caller's write, or misses the run: the caller's record wins.
    assert [r.status for r in runs_for_comment(running, [submitted, older])] == [RunStatus.RUNNING, RunStatus.SUCCEEDED]
    assert [r.run_id for r in runs_for_comment(running, [older])] == [running.run_id, older.run_id]


def test_a_succeeded_run_whose_metrics_were_refused_shows_no_numbers_and_fails_its_status() -> None:
    from modelrun.domain.report import commit_status

    refused = record(
        RunStatus.SUCCEEDED,
        report={"status": "SUCCEEDED", "contract_error": "metrics.json is for run 'other', not this run"},
    )
    body = render_comment([refused])
    assert "**No results:**" in body and "is for run" in body and "| RMSE |" not in body
    assert commit_status(refused)[0] == "failure"
    assert commit_status(record(RunStatus.SUCCEEDED, report=metrics_report()))[0] == "success"


# -- the comparison with main, the charts, the check run ------------------------------------------
def paired_report(**extra: Any) -> dict[str, Any]:
    change = {"delta": -8765.5, "low": -9100.0, "high": -8400.0, "verdict": "better"}
    same = {"delta": 0.01, "low": -0.02, "high": 0.03, "verdict": "same"}
    comparison = {
        "status": "paired",
        "n_sales": 4387,
        "resamples": 400,
        "changes": {"rmse": change, "r2": same, "cod": change | {"delta": -1.1, "low": -1.5, "high": -0.7}},
    }
    return metrics_report(comparison=comparison, **extra)


def test_changes_are_marked_only_where_the_paired_interval_excludes_zero() -> None:
    body = render_comment([record(RunStatus.SUCCEEDED, report=paired_report())])
    assert "| RMSE | 81,234 | 90,000 | -8,766 (-9.7%) | -9,100 to -8,400 | 🟢 better |" in body
    assert "| R² | 0.870 | 0.850 | +0.020 | -0.020 to +0.030 | ≈ |" in body
    assert "| MAE | 50,321 | 52,000 | -1,679 (-3.2%) | — |  |" in body  # no interval: no mark
    assert "| COD | 9.10 | 8.70 to 9.60 | 5.0 to 15.0 | ✅ pass | 10.20 | -1.10 | -1.50 to -0.70 | 🟢 better |" in body
    assert "400 resamples of the 4,387 holdout sales both runs scored" in body
    assert_tables_intact(body)


def test_different_holdouts_claim_nothing() -> None:
    comparison = {"status": "differ", "reason": "the holdouts are different sales (10 in this run's, 12 in main's)"}
    body = render_comment([record(RunStatus.SUCCEEDED, report=metrics_report(comparison=comparison))])
    assert "Not compared: the holdouts are different sales" in body and "The data changed" in body
    assert "🟢" not in body and "🔴" not in body and "| ≈ |" not in body


def test_the_comment_carries_the_charts_and_folds_a_long_one() -> None:
    deciles = [{"low": 1e5 * i, "high": 1e5 * i + 9e4, "n": 20, "this": 0.95, "base": 0.97} for i in range(1, 11)]
    areas = [{"area": str(i), "n": 40, "ratio_study": {"cod": {"value": 9.0 + i / 10}}} for i in range(20)]
    report = paired_report(deciles=deciles, by_area=areas)
    report["baseline"]["by_area"] = areas
    body = render_comment([record(RunStatus.SUCCEEDED, report=report)])
    assert body.count("```mermaid") == 2
    assert "**Median ratio by sale-price decile**" in body
    assert "<details><summary>COD by market area (20 areas)</summary>" in body
    assert_tables_intact(body)


def test_a_spot_reclaim_reads_as_such_when_the_run_ends() -> None:
    reclaimed = Attempt(
        started_at="2025-03-04T15:20:00.000Z",
        stopped_at="2025-03-04T15:22:00.000Z",
        reason="Host EC2 (instance i-1) terminated.",
    )
    retried = Attempt(started_at="2025-03-04T15:25:00.000Z", stopped_at="2025-03-04T15:30:00.000Z")
    rec = record(RunStatus.SUCCEEDED, attempts=[reclaimed, retried], report=metrics_report())
    body = render_comment([rec])
    assert "over 2 attempts on CPU" in body and "attempt 1 lost to a Spot reclaim; retried" in body
    running = record(RunStatus.RUNNING, attempts=[reclaimed], batch_attempt=1, started_at="2025-03-04T15:25:00.000Z")
    assert "(attempt 2: attempt 1 lost to a Spot reclaim; retried)" in render_comment([running])


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (RunStatus.QUEUED, ("queued", None)),
        (RunStatus.RUNNABLE, ("queued", None)),
        (RunStatus.RUNNING, ("in_progress", None)),
        (RunStatus.SUCCEEDED, ("completed", "success")),
        (RunStatus.FAILED, ("completed", "failure")),
        (RunStatus.CANCELLED, ("completed", "cancelled")),
        (RunStatus.SUPERSEDED, ("completed", "neutral")),
    ],
)
def test_the_check_run_follows_the_run(status: RunStatus, expected: tuple[str, str | None]) -> None:
    from modelrun.domain.report import check_run, check_status, conclusion

    log = "https://us-east-1.console.aws.amazon.com/cloudwatch/home#logs"
    fields: dict[str, Any] = {"log_url": log, "started_at": "2025-03-04T15:20:00.123Z"}
    if status.terminal:
        fields["stopped_at"] = "2025-03-04T15:24:30.456Z"
    if status is RunStatus.SUCCEEDED:
        fields["report"], fields["gate"] = paired_report(), {"kind": "default"}  # judged by the default gate
    rec = record(status, **fields)
    view = check_run(rec, runs_ahead=3)
    assert (view.status, view.conclusion) == expected == (check_status(status), conclusion(rec))
    body = view.body()
    assert body["status"] == expected[0] and ("conclusion" in body) == (expected[1] is not None)
    if status is RunStatus.RUNNING:
        assert view.details_url == log and view.started_at == "2025-03-04T15:20:00Z"
    elif status is RunStatus.QUEUED:
        assert view.details_url.startswith("https://github.com/") and "3 runs ahead" in view.title
    elif status is RunStatus.SUCCEEDED:
        assert view.details_url == metrics_report()["report_url"] and view.completed_at == "2025-03-04T15:24:30Z"
        assert view.title == "Better than main: RMSE, COD; IAAO fails PRD"  # the verdict (main reports no PRD)
        assert "| RMSE | 81,234 | 90,000 |" in view.summary and "🟢 better" in view.summary
        assert view.text is not None and "### Model and data" in view.text


def test_refused_results_fail_the_check_run() -> None:
    from modelrun.domain.report import check_run, conclusion

    refused = record(RunStatus.SUCCEEDED, report={"status": "SUCCEEDED", "contract_error": "metrics.json is bad"})
    view = check_run(refused)
    assert view.conclusion == "failure" == conclusion(refused) and "No results" in view.summary


def test_the_check_runs_output_stays_within_githubs_limit() -> None:
    from modelrun.domain.report import MAX_CHECK_OUTPUT, check_run

    areas = [{"area": f"a{i}" * 20, "n": 40, "ratio_study": {"cod": {"value": 9.0}}} for i in range(60)]
    diff = ["+" + "x" * 290] * 400
    rec = record(RunStatus.SUCCEEDED, report=paired_report(by_area=areas, params_diff=diff), gate={"kind": "default"})
    view = check_run(rec)
    assert len(view.summary) <= MAX_CHECK_OUTPUT and view.text is not None and len(view.text) <= MAX_CHECK_OUTPUT
    assert view.text.count("```") % 2 == 0  # no fence cut open


def test_run_variables_are_shown_each_as_inert_code() -> None:
    """A reviewer sees what the run was told (issue 22); a value cannot render or link."""
    rec = record(RunStatus.SUCCEEDED, report=metrics_report())
    rec = rec.model_copy(update={"request": {**(rec.request or {}), "variables": {"RUN_TYPE": "full", "X": EVIL[0]}}})
    body = render_comment([rec])
    [line] = [line for line in body.splitlines() if line.startswith("Variables: ")]
    assert line.startswith("Variables: <code>RUN&#95;TYPE&#61;full</code> · <code>X&#61;")
    assert_inert(body)
    plain = record(RunStatus.SUCCEEDED, report=metrics_report())
    assert "Variables:" not in render_comment([plain])
