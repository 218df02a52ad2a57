"""``modelrun check PATH``: a model's output folder (or an S3 prefix) against the container
contract, read and evaluated by the collect step's own code (modelrun.outputs, the evaluation),
and the statistics modelrun would show for it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modelrun.domain import evaluation, sections
from modelrun.domain import formatting as fmt
from modelrun.domain.comparing import results_report
from modelrun.domain.documents import Report
from modelrun.errors import TooLarge
from modelrun.outputs import Output, Reader, read_output


def folder_reader(folder: Path) -> Reader:
    root = folder.resolve()

    def read(name: str, limit: int) -> bytes | None:
        path = (root / name).resolve()
        if not path.is_relative_to(root) or not path.is_file():  # the schema already refuses ".."
            return None
        if path.stat().st_size > limit:
            raise TooLarge(f"{name} is {path.stat().st_size:,} bytes (at most {limit:,})")
        return path.read_bytes()

    return read


def s3_reader(uri: str) -> Reader:
    from modelrun.adapters.aws import Results  # boto3: only for an S3 prefix

    prefix = uri if uri.endswith("/") else f"{uri}/"
    results = Results(prefix.removeprefix("s3://").split("/", 1)[0])
    return lambda name, limit: results.read_capped(f"{prefix}{name}", limit)


@dataclass(frozen=True)
class Checked:
    output: Output
    report: Report | None  # None: no predictions to evaluate

    @property
    def ok(self) -> bool:
        return not self.output.problems


def check(path: str, resamples: int = evaluation.RESAMPLES) -> Checked:
    """The folder (or ``s3://`` prefix) read as the collect step reads a run's, and evaluated."""
    read = s3_reader(path) if path.startswith("s3://") else folder_reader(Path(path))
    out = read_output(read, run_id=None)
    if out.document is None or out.sales is None:
        return Checked(out, None)
    report, _ = results_report("SUCCEEDED", out.document, None, out.sales, None, [], resamples)
    return Checked(out, report)


def markdown(checked: Checked) -> list[str]:
    """What the PR's comment and check run would show of these statistics."""
    report = checked.report
    if report is None:
        return []
    lines = [*sections.metrics_table(report), "", *sections.ratio_table(report)]
    for part in (sections.disagreement_note(report), sections.area_table(report), sections.reported_table(report)):
        if part:
            lines += ["", *part]
    return lines


def as_json(checked: Checked) -> dict[str, Any]:
    """The problems and the statistics, each with its value as the report shows it."""
    report = checked.report
    found: dict[str, Any] = {"ok": checked.ok, "problems": checked.output.problems}
    if report is None or report.metrics is None or report.ratio_study is None:
        return found
    stats: dict[str, Any] = {}
    for key in evaluation.ACCURACY:
        value = report.metrics.value(key)
        stats[key] = {"value": value, "shown": fmt.value(key, value)}
    for key, stat in report.ratio_study.items():
        stats[key] = {
            "value": stat.value,
            "shown": fmt.value(key, stat.value),
            "ci": list(stat.ci) if stat.ci else None,
            "pass": stat.passed,
        }
    data = report.data
    return found | {
        "n": data.n_test if data else None,
        "n_ratio_study": data.n_ratio_study if data else None,
        "statistics": stats,
        "groups": [g.stored() for g in report.by_area],
        "disagreements": [d.stored() for d in report.disagreements],
        "markdown": "\n".join(markdown(checked)),
    }
