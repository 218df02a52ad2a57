"""The report path's first task: collect the results, compare them with main, write report.html
(the PR's update is the second: modelrun.pull_request)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import quote

from aws_lambda_powertools import Logger

from modelrun import collected as kept_files
from modelrun.adapters.aws import BatchLogs, Results, RunsTable
from modelrun.config import CollectResultsSettings
from modelrun.domain import naming, report
from modelrun.domain import results as results_contract
from modelrun.domain.comparing import results_report
from modelrun.domain.documents import Baseline, Report, Summary, report_of, summary_of
from modelrun.domain.evaluation import Sales
from modelrun.domain.html_report import Distribution, render_html
from modelrun.domain.run import RunRecord
from modelrun.domain.status import RunStatus
from modelrun.errors import ContractError, RunNotFound, TooLarge, Unreadable
from modelrun.outputs import Output, Reader, read_output
from modelrun.ports import JobLogs, ResultsStore, Runs

logger = Logger(child=True)
LOG_TAIL_LINES = 30


@dataclass(frozen=True)
class CollectDeps:
    """What CollectResults works with (it never calls GitHub), made at its cold start."""

    settings: CollectResultsSettings
    runs: Runs
    results: ResultsStore
    logs: JobLogs

    @classmethod
    def of(cls, s: CollectResultsSettings) -> CollectDeps:
        return cls(settings=s, runs=RunsTable(s.runs_table), results=Results(s.results_bucket), logs=BatchLogs())


def console_url(bucket: str, key: str, region: str, folder: bool = False) -> str:
    """Stable links for the team (AWS sign-in required): the bucket stays private."""
    query = f"region={quote(region)}&prefix={quote(key, safe='/')}"
    if folder:
        return f"https://s3.console.aws.amazon.com/s3/buckets/{quote(bucket)}?{query}"
    return f"https://s3.console.aws.amazon.com/s3/object/{quote(bucket)}?{query}"


def _record(runs: Runs, run_id: str) -> RunRecord:
    record = runs.get(run_id)
    if record is None:
        raise RunNotFound(run_id)
    return record


def baseline_for(runs: Runs, record: RunRecord) -> tuple[RunRecord, Literal["base_commit", "latest"]] | None:
    """The verified main run to compare with: the run of the PR's base commit when there is one,
    else the latest (a main run compares with the main run before it); None when there is none.
    Only verified runs of the default branch are in the baseline index, so nothing else can
    become a baseline."""
    baselines = [
        r
        for r in runs.baselines(naming.branch_key(record.repository, record.base_ref))
        if r.run_id != record.run_id and r.created_at < record.created_at
    ]
    if record.base_sha:
        of_base = next((r for r in baselines if r.head_sha == record.base_sha), None)
        if of_base is not None:
            return of_base, "base_commit"
    return (baselines[0], "latest") if baselines else None


def run_reader(results: ResultsStore, results_uri: str, left_out: dict[str, str] | None = None) -> Reader:
    """A run's output folder at ``results_uri`` (its collected copy); a file the copy left out,
    or one that cannot be read as stored, is a contract problem that says why."""

    def read(name: str, limit: int) -> bytes | None:
        try:
            raw = results.read_capped(f"{results_uri}{name}", limit)
        except Unreadable as error:
            raise ContractError(f"{name} is unavailable: {error}") from error
        if raw is None and left_out and name in left_out:
            raise ContractError(left_out[name])
        return raw

    return read


def _baseline(runs: Runs, record: RunRecord) -> tuple[RunRecord, Baseline] | None:
    """The baseline run and what this run's report keeps of it; None without one that reported results."""
    found = baseline_for(runs, record)
    if found is None or not found[0].summary:
        return None
    main, which = found
    summary = summary_of(main.summary)
    baseline = Baseline(
        run_id=main.run_id,
        head_sha=main.head_sha,
        which=which,
        metrics=summary.metrics,
        ratio_study=summary.ratio_study,
        by_area=report_of(main.report).by_area,
    )
    return main, baseline


def predictions_of(run: RunRecord) -> str:
    """Where a collected run's predictions are (relative to its results): what its report
    recorded, else where contract version 1 kept them."""
    return report_of(run.report).predictions or results_contract.V1_HOLDOUT_PATH


def read_predictions(results: ResultsStore, results_uri: str, name: str, groups: list[str], whose: str) -> Sales | str:
    """A run's holdout predictions, or why there are none (said for the PR: ``whose`` run)."""
    try:
        raw = results.read_capped(f"{results_uri}{name}", results_contract.MAX_HOLDOUT_BYTES)
        if raw is None:
            return f"{whose} wrote no {name}"
        return results_contract.parse_predictions(raw, name, groups)
    except Unreadable as error:
        return f"the predictions of {whose} are unavailable: {error}"
    except (ContractError, TooLarge) as error:
        logger.warning("holdout predictions refused", extra={"whose": whose, "reason": str(error)})
        return f"the predictions of {whose} do not follow the container contract: {error}"


def _params(results: ResultsStore, results_uri: str, name: str | None) -> bytes | None:
    if name is None:
        return None
    try:
        return results.read_capped(f"{results_uri}{name}", results_contract.MAX_PARAMS_BYTES)
    except (TooLarge, Unreadable):
        return None


def _kept_baseline(deps: CollectDeps, main: RunRecord) -> RunRecord | str:
    """Main's run as comparisons read it: its collected copy only, never its write prefix (a job
    may write there); why not, for a run collected before copies were kept."""
    if not report_of(main.report).kept:
        return "main's run was collected before its files were kept out of the jobs' reach: run main again"
    return kept_files.as_collected(main, deps.settings.results_bucket)


def _results_report(deps: CollectDeps, record: RunRecord, out: Output) -> tuple[Report, Distribution | None]:
    """This run's evaluation against the baseline: the typed report and the ratio distribution."""
    results, doc = deps.results, out.document
    assert doc is not None
    main, baseline = _baseline(deps.runs, record) or (None, None)
    this: Sales | str = out.sales if out.sales is not None else out.problems[0]
    base: Sales | str | None = None
    diff: list[str] = []
    if main is not None and out.sales is not None:  # main's files: only to compare with
        kept = _kept_baseline(deps, main)
        if isinstance(kept, str):
            base = kept
        else:
            base = read_predictions(results, kept.results_uri, predictions_of(kept), [], "main's run")
            if doc.params is not None:
                main_params = report_of(kept.report).params or results_contract.V1_PARAMS_PATH
                diff = results_contract.params_diff(
                    _params(results, kept.results_uri, main_params), out.params, names=(main_params, doc.params)
                )
    report, distribution = results_report(record.status.value, doc, baseline, this, base, diff)
    if report.comparison is not None:
        comparison = report.comparison
        logger.info(
            "compared with main",
            extra={
                "run_id": record.run_id,
                "comparison": comparison.status,
                "sales": comparison.n_sales,
                "resamples": comparison.resamples,
                "seconds": comparison.seconds,
            },
        )
    return report, distribution


def collect(deps: CollectDeps, run_id: str) -> dict[str, Any]:
    """Read metrics.json and the predictions it names, compute the evaluation and the comparison
    with main, write report.html; store the summary."""
    record = _record(deps.runs, run_id)
    s, results = deps.settings, deps.results
    if record.report and report_of(record.report).status == record.status.value:
        # Collected already (a retried task or a second execution): results, once collected,
        # do not change, whatever is in the bucket now.
        return {"run_id": run_id, "status": record.status.value, "notification": report.notification(record)}
    prefix = naming.report_prefix(run_id)
    collected = Report(status=record.status.value)
    fields: dict[str, Any] = {}
    if record.status is RunStatus.SUCCEEDED:
        # From here on the run's files are read from the copy no job can write (and linked there).
        left_out = kept_files.keep(results, record, s.results_bucket)
        record = kept_files.as_collected(record, s.results_bucket)
        out = read_output(run_reader(results, record.results_uri, left_out), record.run_id)
        for problem in out.problems[1:] if out.sales is None else out.problems:
            logger.warning(problem, extra={"run_id": run_id})
        if out.document is None:
            collected = collected.model_copy(update={"contract_error": out.problems[0]})
            logger.warning(out.problems[0], extra={"run_id": run_id})
        else:
            collected, distribution = _results_report(deps, record, out)
        if collected.has_results:
            fields["summary"] = Summary.of(collected).stored()
            html = render_html(record, collected, out.images, distribution)
            results.put(f"{prefix}report.html", html.encode(), "text/html; charset=utf-8")
            collected = collected.model_copy(
                update={
                    "report_key": f"{prefix}report.html",
                    "report_url": console_url(s.results_bucket, f"{prefix}report.html", s.region),
                    # The collected copy: the run's write prefix is never shown.
                    "artifacts_url": console_url(
                        s.results_bucket, naming.collected_prefix(run_id), s.region, folder=True
                    ),
                    "kept": True,
                }
            )
    elif record.log_stream:
        collected = collected.model_copy(update={"log_tail": deps.logs.tail(record.log_stream, LOG_TAIL_LINES)})
    fields["report"] = collected.stored()
    deps.runs.set_fields(run_id, **fields)
    record = record.model_copy(update=fields)
    return {"run_id": run_id, "status": record.status.value, "notification": report.notification(record)}
