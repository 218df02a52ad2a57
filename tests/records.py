"""Run records for tests that write them directly (no submit function, so no verification),
and a real run's report (the sample model's, against its baseline)."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

from modelrun.contracts import RunRequest
from modelrun.domain.comparing import results_report
from modelrun.domain.documents import Baseline, MetricsDocument, Report, Summary
from modelrun.domain.evaluation import Sales
from modelrun.domain.evidence import Verified
from modelrun.domain.html_report import Distribution
from modelrun.domain.results import params_diff, parse_metrics, parse_predictions
from modelrun.domain.run import RunRecord
from modelrun.domain.status import RunStatus

SHA = "1a2b3c4d" + "e" * 32
WORKFLOW_URL = "https://github.com/county-assessor/avm/actions/runs/9000002/attempts/1"
LOG_URL = "https://console.aws.amazon.com/cloudwatch/home?region=us-east-1#logsV2:log-groups"


def verified_from(request: RunRequest, **overrides: Any) -> Verified:
    """What verification would establish for an honest request."""
    fields: dict[str, Any] = {
        "repository": request.repository,
        "event": request.event,
        "environment": "modelrun-main" if request.event != "pull_request" else "staging",
        "actor": request.triggered_by,
        "pr_number": request.pr_number,
        "head_sha": request.head_sha,
        "head_ref": request.head_ref,
        "base_ref": request.base_ref,
        "base_sha": None,
        "default_branch": request.base_ref if request.pr_number is None else None,
        "baseline": request.pr_number is None and request.head_ref == request.base_ref,
    }
    return Verified(**(fields | overrides))


def new_record(request: RunRequest, **kwargs: Any) -> RunRecord:
    """RunRecord.new with the verified facts of an honest request and test defaults."""
    verified = kwargs.pop("verified", None) or verified_from(request)
    defaults: dict[str, Any] = {"results_key": "k" * 32, "server_url": "https://github.com"}
    return RunRecord.new(request, verified, **(defaults | kwargs))


def stored_record(status: RunStatus, **fields: Any) -> RunRecord:
    """A run record as the runs table holds it (no run request needed)."""
    base: dict[str, Any] = {
        "run_id": "avm-pr42-feature-deeper-trees-1a2b3c4d-9000002-1",
        "repository": "county-assessor/avm",
        "pr_number": 42,
        "pr_key": "county-assessor/avm#42",
        "head_sha": SHA,
        "head_ref": "feature/deeper-trees",
        "base_ref": "main",
        "image": "111122223333.dkr.ecr.us-east-1.amazonaws.com/modelrun-model@sha256:" + "ab" * 32,
        "compute": "cpu",
        "job_queue": "modelrun-cpu",
        "status": status,
        "created_at": "2026-01-02T03:04:05.000Z",
        "updated_at": "2026-01-02T03:04:05.000Z",
        "started_at": "2026-01-02T03:05:00.000Z",
        "stopped_at": "2026-01-02T03:09:00.000Z",
        "results_uri": "s3://results/runs/avm-pr42/",
        "triggered_by": "octocat",
        "workflow_url": WORKFLOW_URL,
        "workflow_run_id": 9_000_002,
        "workflow_attempt": 1,
        "vcpus": 2,
        "memory_mib": 8192,
        "log_url": LOG_URL,
    }
    return RunRecord.model_validate(base | fields)


# -- a real run's report: two sample-model runs, a PR's and its baseline (tests/fixtures/report) ---
REPORT_FIXTURES = Path(__file__).resolve().parent / "fixtures" / "report"


def sample_run(name: str) -> tuple[MetricsDocument, Sales, bytes]:
    """A real run's metrics.json, holdout predictions and params file (``main`` or ``pr``)."""
    folder = REPORT_FIXTURES / name
    doc = parse_metrics((folder / "metrics.json").read_bytes(), f"{name}-1")
    sales = parse_predictions((folder / doc.predictions).read_bytes(), doc.predictions, doc.groups)
    return doc, sales, (folder / "params.yaml").read_bytes()


# The resamples of the report tests: fewer than the collect step's 1,000 (the evaluation's own
# tests hold the full count), enough to pair the two runs as 1,000 would.
TEST_RESAMPLES = 200


@cache
def real_report(paired: bool = True) -> tuple[RunRecord, Report, Distribution | None]:
    """The PR run's record as the report path leaves it, against the main run as its baseline.
    ``paired=False``: main's holdout is another set of sales (the data changed)."""
    main_doc, main_sales, main_params = sample_run("main")
    pr_doc, pr_sales, pr_params = sample_run("pr")
    main_report, _ = results_report("SUCCEEDED", main_doc, None, main_sales, None, [], resamples=TEST_RESAMPLES)
    summary = Summary.of(main_report)
    baseline = Baseline(
        run_id="main-1",
        head_sha="0" * 39 + "1",
        which="base_commit",
        metrics=summary.metrics,
        ratio_study=summary.ratio_study,
        by_area=main_report.by_area,
    )
    if not paired:
        main_sales = Sales(main_sales.sale_id[1:], main_sales.price[1:], main_sales.estimate[1:])
    report, distribution = results_report(
        "SUCCEEDED", pr_doc, baseline, pr_sales, main_sales, params_diff(main_params, pr_params), TEST_RESAMPLES
    )
    report = report.model_copy(update={"report_url": REPORT_URL})
    record = stored_record(
        RunStatus.SUCCEEDED,
        run_id="pr-1",
        note="num_leaves 63 -> 127: try a deeper tree",
        summary=Summary.of(report).stored(),
        report=report.stored(),
    )
    return record, report, distribution


REPORT_URL = "https://s3.console.aws.amazon.com/s3/object/results?region=us-east-1&prefix=reports/pr-1/report.html"
