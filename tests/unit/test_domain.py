"""The pure domain: status order, naming, report rendering and escaping, the Batch event model.

No AWS here: everything under test is a pure function of its arguments.
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from modelrun.contracts import RunRequest
from modelrun.domain import naming
from modelrun.domain.report import MARKER, notification, render_comment
from modelrun.domain.run import Attempt, RunRecord
from modelrun.domain.status import TERMINAL, RunStatus, from_batch, moves_forward
from modelrun.events import BatchJobStateChange
from tests.records import new_record, verified_from

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
SHA = "1a2b3c4d" + "e" * 32
IMAGE = "111122223333.dkr.ecr.us-east-1.amazonaws.com/modelrun-model@sha256:" + "ab" * 32


# -- helpers ----------------------------------------------------------------------------------
def request(**overrides: Any) -> RunRequest:
    fields: dict[str, Any] = {
        "schema_version": "1",
        "kind": "run",
        "repository": "county-assessor/avm",
        "pr_number": 42,
        "head_sha": SHA,
        "head_ref": "feature/deeper-trees",
        "base_ref": "main",
        "image": IMAGE,
        "compute": "cpu",
        "triggered_by": "octocat",
        "event": "pull_request",
        "workflow": {"run_id": 9_000_002, "run_attempt": 1},
    }
    fields.update(overrides)
    return RunRequest.model_validate(fields)


def record(status: RunStatus = RunStatus.QUEUED, req: RunRequest | None = None, **fields: Any) -> RunRecord:
    base = new_record(req or request(), job_queue="modelrun-cpu", bucket="results", vcpus=2, memory_mib=8192, gpus=0)
    return base.model_copy(update={"status": status, **fields})


def metrics_report(**extra: Any) -> dict[str, Any]:
    report: dict[str, Any] = {
        "metrics": {"rmse": 81234.5, "mae": 50321.0, "mape": 9.8, "mdape": 7.1, "r2": 0.87, "median_ratio": 0.99},
        "ratio_study": {
            "cod": {"value": 9.1, "ci": [8.7, 9.6], "standard": "5.0-15.0", "pass": True},
            "prd": {"value": 1.04, "ci": [1.03, 1.05], "standard": "0.98-1.03", "pass": False},
        },
        "baseline": {
            "run_id": "avm-main-0000",
            "head_sha": "0" * 39 + "1",
            "metrics": {"rmse": 90000.0, "mae": 52000.0, "r2": 0.85, "median_ratio": 0.97},
            "ratio_study": {"cod": {"value": 10.2, "pass": True}},
        },
        "model": {"library": "lightgbm", "device_used": "cpu"},
        "data": {"n_train": 31000, "n_test": 8000},
        "report_url": "https://console.aws.amazon.com/s3/object/results?prefix=runs/x/report.html",
    }
    report.update(extra)
    return report


def outside_code(body: str) -> str:
    """The comment with fenced blocks and <code> elements removed: what GitHub parses as prose."""
    without_fences = re.sub(r"(?ms)^(`{3,})text\n.*?\n\1$", "", body)
    return re.sub(r"(?s)<code>.*?</code>", "", without_fences)


def table_rows(body: str) -> list[list[str]]:
    """Each Markdown table as its rows; a row's cells are split on unescaped pipes."""
    tables: list[list[str]] = []
    current: list[str] = []
    for line in body.splitlines():
        if line.startswith("|"):
            current.append(line)
        elif current:
            tables.append(current)
            current = []
    if current:
        tables.append(current)
    return tables


def cells(row: str) -> int:
    return len(re.findall(r"(?<!\\)\|", row)) - 1


def assert_tables_intact(body: str) -> None:
    tables = table_rows(body)
    assert tables, body
    for rows in tables:
        header = cells(rows[0])
        for row in rows:
            assert cells(row) == header, f"table row has {cells(row)} cells, header {header}: {row!r}"


def fenced_blocks(body: str) -> list[tuple[str, str]]:
    return re.findall(r"(?ms)^(`{3,})text\n(.*?)\n\1$", body)


# -- status order -------------------------------------------------------------------------------
ORDER = [RunStatus.QUEUED, RunStatus.SUBMITTED, RunStatus.RUNNABLE, RunStatus.STARTING, RunStatus.RUNNING]


@pytest.mark.parametrize("i", range(len(ORDER) - 1))
def test_status_moves_forward_in_order(i: int) -> None:
    assert moves_forward(ORDER[i], 0, ORDER[i + 1], 0)
    assert not moves_forward(ORDER[i + 1], 0, ORDER[i], 0)


@pytest.mark.parametrize("status", ORDER)
def test_same_status_is_not_progress(status: RunStatus) -> None:
    assert not moves_forward(status, 0, status, 0)


@pytest.mark.parametrize("terminal", sorted(TERMINAL))
@pytest.mark.parametrize("new", list(RunStatus))
def test_terminal_is_final(terminal: RunStatus, new: RunStatus) -> None:
    assert terminal.terminal and not terminal.active
    for attempt in (0, 1, 5):
        assert not moves_forward(terminal, 0, new, attempt)


@pytest.mark.parametrize("active", ORDER)
@pytest.mark.parametrize("terminal", sorted(TERMINAL))
def test_any_active_status_can_end(active: RunStatus, terminal: RunStatus) -> None:
    assert moves_forward(active, 3, terminal, 0)


def test_retried_attempt_moves_forward() -> None:
    # A Spot reclaim: attempt 0 was RUNNING, Batch retries and attempt 1 goes back to RUNNABLE.
    assert moves_forward(RunStatus.RUNNING, 0, RunStatus.RUNNABLE, 1)
    assert moves_forward(RunStatus.RUNNABLE, 1, RunStatus.RUNNING, 1)
    # ... but a late event from the earlier attempt does not pull it back.
    assert not moves_forward(RunStatus.RUNNABLE, 1, RunStatus.RUNNING, 0)


def test_late_running_after_succeeded_is_stale() -> None:
    assert not moves_forward(RunStatus.SUCCEEDED, 0, RunStatus.RUNNING, 0)
    assert not moves_forward(RunStatus.SUCCEEDED, 0, RunStatus.RUNNING, 1)
    assert not moves_forward(RunStatus.FAILED, 0, RunStatus.SUCCEEDED, 0)


def test_from_batch_maps_every_batch_status() -> None:
    assert from_batch("PENDING") is RunStatus.SUBMITTED
    for status in ("SUBMITTED", "RUNNABLE", "STARTING", "RUNNING", "SUCCEEDED", "FAILED"):
        assert from_batch(status).value == status
    with pytest.raises(ValueError, match="unknown Batch job status"):
        from_batch("EXPLODED")


# -- naming -------------------------------------------------------------------------------------
AWKWARD_REFS = [
    "feature/deeper trees",
    "feature/a/b/c",
    "ünïcødé/ブランチ/🚀",
    "x" * 300,
    "---",
    "@org/team](javascript:alert(1))",
    "💥",
]


@pytest.mark.parametrize("ref", AWKWARD_REFS)
@pytest.mark.parametrize("pr", [None, 7])
def test_run_id_is_a_valid_job_name(ref: str, pr: int | None) -> None:
    name = naming.run_id("county-assessor/" + "r" * 100, pr, ref, SHA, 123456789012, 100)
    assert re.fullmatch(r"[A-Za-z0-9_-]{1,128}", name), name
    assert naming.run_id("county-assessor/" + "r" * 100, pr, ref, SHA, 123456789012, 100) == name


def test_run_id_of_refs_that_sanitise_alike_differ() -> None:
    ids = {naming.run_id("o/r", None, ref, SHA, 1, 1) for ref in ("a b", "a/b", "a-b", "a_b", "a--b", "à b")}
    assert len(ids) == 6


run_inputs = st.tuples(
    st.sampled_from(["county-assessor/avm", "o/r", "Org.Name/repo_name-2"]),
    st.one_of(st.none(), st.integers(min_value=1, max_value=10**6)),
    st.text(min_size=1, max_size=300),
    st.from_regex(r"[0-9a-f]{40}", fullmatch=True),
    st.integers(min_value=1, max_value=10**11),
    st.integers(min_value=1, max_value=100),
)


@settings(max_examples=300, deadline=None)
@given(run_inputs, run_inputs)
def test_run_id_property(a: tuple[Any, ...], b: tuple[Any, ...]) -> None:
    ida, idb = naming.run_id(*a), naming.run_id(*b)
    for name in (ida, idb):
        assert re.fullmatch(r"[A-Za-z0-9_-]{1,128}", name), name
    if a != b:
        # What makes a request distinct: the repository, where (PR or branch), the commit and
        # the workflow run and attempt. For a PR the branch name is not part of the identity.
        key_a = (a[0], a[1], a[2] if a[1] is None else None, a[3][:8], a[4], a[5])
        key_b = (b[0], b[1], b[2] if b[1] is None else None, b[3][:8], b[4], b[5])
        if key_a != key_b:
            assert ida != idb, (a, b)


@settings(max_examples=200, deadline=None)
@given(
    st.text(
        alphabet=st.characters(codec="ascii", categories=["L", "N"]) | st.sampled_from("-_"), min_size=1, max_size=200
    )
)
def test_execution_name_fits_and_is_deterministic(run: str) -> None:
    name = naming.execution_name(run)
    assert 1 <= len(name) <= 80
    assert naming.execution_name(run) == name
    if len(run) <= 80:
        assert name == run


def test_execution_names_of_long_runs_differ() -> None:
    a, b = "r" * 100 + "-1", "r" * 100 + "-2"
    assert naming.execution_name(a) != naming.execution_name(b)
    assert len(naming.execution_name(a)) <= 80


def test_execution_name_of_real_run_ids() -> None:
    for ref in AWKWARD_REFS:
        run = naming.run_id("county-assessor/" + "r" * 100, None, ref, SHA, 123456789012, 100)
        assert len(naming.execution_name(run)) <= 80


# -- a run record from a verified request -------------------------------------------------------
def test_a_record_takes_identity_from_the_evidence_and_builds_its_own_links() -> None:
    token = "eyJhbGciOiJSUzI1NiJ9.eyJhdWQiOiJ4In0.c2lnbmF0dXJl"
    req = request(identity={"oidc_token": token})
    verified = verified_from(req, actor="hubot", base_sha="b" * 40)
    rec = new_record(
        req,
        verified=verified,
        job_queue="q",
        bucket="results",
        results_key="0123456789abcdef" * 2,
        server_url="https://ghe.example/",
        vcpus=2,
        memory_mib=8192,
        gpus=0,
    )
    assert rec.triggered_by == "hubot" and rec.environment == "staging" and rec.event == "pull_request"
    assert rec.base_sha == "b" * 40 and rec.pr_key == "county-assessor/avm#42"
    assert rec.workflow_url == "https://ghe.example/county-assessor/avm/actions/runs/9000002/attempts/1"
    # results under the run's own random key; the report elsewhere (no job may write there)
    assert rec.results_uri == f"s3://results/runs/{rec.run_id}/{'0123456789abcdef' * 2}/"
    assert naming.report_prefix(rec.run_id) == f"reports/{rec.run_id}/"
    # the token proved this submission only: it is never stored
    assert rec.request and "identity" not in rec.request and token not in json.dumps(rec.item(), default=str)
    # a PR's run is never a baseline: no branch key
    assert rec.branch_key is None and not rec.baseline


def test_only_a_baseline_run_has_a_branch_key() -> None:
    main = request(pr_number=None, head_ref="main", base_ref="main", event="push")
    rec = new_record(main, job_queue="q", bucket="b", vcpus=2, memory_mib=8192, gpus=0)
    assert rec.baseline and rec.branch_key == naming.branch_key("county-assessor/avm", "main")
    unverified_main = new_record(
        main,
        verified=verified_from(main, baseline=False),
        job_queue="q",
        bucket="b",
        vcpus=2,
        memory_mib=8192,
        gpus=0,
    )
    assert unverified_main.branch_key is None and not unverified_main.baseline
    feature = request(pr_number=None, head_ref="feature", base_ref="main", event="workflow_dispatch")
    assert new_record(feature, job_queue="q", bucket="b", vcpus=2, memory_mib=8192, gpus=0).branch_key is None


def test_workflow_run_url_is_built_from_ids_only() -> None:
    assert (
        naming.workflow_run_url("https://github.com", "o/r", 5, 2) == "https://github.com/o/r/actions/runs/5/attempts/2"
    )
    assert "%20" in naming.workflow_run_url("https://github.com", "o/r x", 5, 2)


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


# -- the Batch event, as AWS documents it ---------------------------------------------------------
def batch_event() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / "batch" / "job-state-change.json").read_text())
    return data


def test_documented_batch_event_parses() -> None:
    event = BatchJobStateChange.model_validate(batch_event())
    assert event.detail_type == "Batch Job State Change"
    assert event.source == "aws.batch"
    assert event.detail.status == "RUNNABLE"
    assert event.detail.job_name == "avm-pr42-1a2b3c4d-9000002-1-abc123"
    assert event.detail.job_queue.endswith(":job-queue/modelrun-cpu")
    assert event.detail.attempts == []
    assert event.detail.attempt == 0


def test_batch_event_attempt_counts_finished_attempts() -> None:
    running = copy.deepcopy(batch_event())
    running["detail"] |= {
        "status": "RUNNING",
        "startedAt": 1741101700000,
        "container": {"logStreamName": "modelrun/default/abc", "futureField": {"x": 1}},
    }
    event = BatchJobStateChange.model_validate(running)
    assert event.detail.attempt == 0
    assert event.detail.container is not None and event.detail.container.log_stream_name == "modelrun/default/abc"

    attempt = {
        "container": {"exitCode": 137, "reason": "Host EC2 (instance i-0) terminated."},
        "startedAt": 1741101700000,
        "stoppedAt": 1741101800000,
        "statusReason": "Host EC2 terminated",
        "taskProperties": [],
    }
    retried = copy.deepcopy(batch_event())
    retried["detail"] |= {"status": "RUNNABLE", "attempts": [attempt]}
    assert BatchJobStateChange.model_validate(retried).detail.attempt == 1

    succeeded = copy.deepcopy(batch_event())
    second = attempt | {"container": {"exitCode": 0}}
    succeeded["detail"] |= {"status": "SUCCEEDED", "attempts": [attempt, second], "stoppedAt": 1741101900000}
    event = BatchJobStateChange.model_validate(succeeded)
    assert event.detail.attempt == 1
    assert event.detail.attempts[-1].container is not None and event.detail.attempts[-1].container.exit_code == 0


def test_batch_event_without_account_parses() -> None:
    # moto's emitter leaves out the envelope's account
    event = batch_event()
    del event["account"]
    assert BatchJobStateChange.model_validate(event).account is None


def test_sqs_records_from_the_local_poller_have_lambdas_shape() -> None:
    from modelrun_local.runtime import SqsPoller

    documented = json.loads((FIXTURES / "sqs" / "receive-message.json").read_text())["Records"][0]
    poller = SimpleNamespace(mapping=SimpleNamespace(queue_arn=documented["eventSourceARN"]))
    message = {
        "MessageId": documented["messageId"],
        "ReceiptHandle": documented["receiptHandle"],
        "Body": documented["body"],
        "MD5OfBody": documented["md5OfBody"],
        "Attributes": documented["attributes"],
    }
    produced = SqsPoller.record(poller, message)  # type: ignore[arg-type]
    assert set(produced) == set(documented)
    assert produced == documented


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
    reclaimed = {"started_at": "2025-03-04T15:20:00.000Z", "stopped_at": "2025-03-04T15:22:00.000Z"}
    attempts = [
        reclaimed | {"reason": "Host EC2 (instance i-1) terminated."},
        {"started_at": "2025-03-04T15:25:00.000Z", "stopped_at": "2025-03-04T15:30:00.000Z"},
    ]
    rec = record(RunStatus.SUCCEEDED, attempts=[Attempt(**a) for a in attempts], report=metrics_report())
    body = render_comment([rec])
    assert "over 2 attempts on CPU" in body and "attempt 1 lost to a Spot reclaim; retried" in body
    running = record(
        RunStatus.RUNNING, attempts=[Attempt(**attempts[0])], batch_attempt=1, started_at="2025-03-04T15:25:00.000Z"
    )
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
    from modelrun.domain.report import check_run

    log = "https://us-east-1.console.aws.amazon.com/cloudwatch/home#logs"
    fields: dict[str, Any] = {"log_url": log, "started_at": "2025-03-04T15:20:00.123Z"}
    if status.terminal:
        fields["stopped_at"] = "2025-03-04T15:24:30.456Z"
    if status is RunStatus.SUCCEEDED:
        fields["report"] = paired_report()
    view = check_run(record(status, **fields), runs_ahead=3)
    assert (view.status, view.conclusion) == expected
    body = view.body()
    assert body["status"] == expected[0] and ("conclusion" in body) == (expected[1] is not None)
    if status is RunStatus.RUNNING:
        assert view.details_url == log and view.started_at == "2025-03-04T15:20:00Z"
    elif status is RunStatus.QUEUED:
        assert view.details_url.startswith("https://github.com/") and "3 runs ahead" in view.title
    elif status is RunStatus.SUCCEEDED:
        assert view.details_url == metrics_report()["report_url"] and view.completed_at == "2025-03-04T15:24:30Z"
        assert view.title.startswith("RMSE 81,234, COD 9.10; IAAO fails PRD")
        assert "| RMSE | 81,234 | 90,000 |" in view.summary and "🟢 better" in view.summary
        assert view.text is not None and "### Model and data" in view.text


def test_refused_results_fail_the_check_run() -> None:
    from modelrun.domain.report import check_run

    refused = record(RunStatus.SUCCEEDED, report={"status": "SUCCEEDED", "contract_error": "metrics.json is bad"})
    view = check_run(refused)
    assert view.conclusion == "failure" and "No results" in view.summary


def test_the_check_runs_output_stays_within_githubs_limit() -> None:
    from modelrun.domain.report import MAX_CHECK_OUTPUT, check_run

    areas = [{"area": f"a{i}" * 20, "n": 40, "ratio_study": {"cod": {"value": 9.0}}} for i in range(60)]
    diff = ["+" + "x" * 290] * 400
    view = check_run(record(RunStatus.SUCCEEDED, report=paired_report(by_area=areas, params_diff=diff)))
    assert len(view.summary) <= MAX_CHECK_OUTPUT and view.text is not None and len(view.text) <= MAX_CHECK_OUTPUT
    assert view.text.count("```") % 2 == 0  # no fence cut open
