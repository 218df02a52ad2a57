"""The report path's documents, typed: what a model's metrics.json holds (contract v2: where its
predictions are, its own extra metrics), what a run record keeps of a run (its ``summary`` and
``report``: the evaluation modelrun computed), the baseline a PR is compared with, and the paired
comparison with it.

One set of models for everyone who reads them: the report Lambda validates metrics.json into a
:class:`MetricsDocument`, computes the evaluation (modelrun.domain.evaluation) and stores a
:class:`Report`; the domain renders the comment, the check run and report.html from them; the CLI
shows them. Every field has a default and unknown fields
are ignored, so a record written before a field existed still reads, and a newer writer never
breaks an older reader. ``pass`` (a Python keyword) is ``passed`` in code and ``pass`` on disk.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue

METRIC_KEYS = ("rmse", "mae", "mape", "mdape", "r2", "median_ratio")
RATIO_KEYS = ("cod", "prd", "prb", "mki")


class Document(BaseModel):
    model_config = ConfigDict(
        extra="ignore", frozen=True, validate_by_name=True, validate_by_alias=True, serialize_by_alias=True
    )

    def stored(self) -> dict[str, Any]:
        """As the run record stores it (JSON types, no empty fields)."""
        return self.model_dump(mode="json", exclude_none=True)


class Metrics(Document):
    """Accuracy on the holdout: RMSE and MAE in dollars, MAPE and MdAPE in percent."""

    rmse: float | None = None
    mae: float | None = None
    mape: float | None = None
    mdape: float | None = None
    r2: float | None = None
    median_ratio: float | None = None

    def value(self, key: str) -> float | None:
        found: float | None = getattr(self, key, None) if key in METRIC_KEYS else None
        return found

    def present(self) -> list[str]:
        return [k for k in METRIC_KEYS if self.value(k) is not None]


class RatioStat(Document):
    """One IAAO statistic: value, bootstrap interval, the standard's range and whether it passes."""

    value: float | None = None
    ci: tuple[float, float] | None = None
    standard: str | None = None  # the range in words, as the model wrote it ("0.98-1.03")
    range: tuple[float, float] | None = None
    passed: bool | None = Field(default=None, alias="pass")

    def compact(self) -> RatioStat:
        return RatioStat.model_validate({"value": self.value, "pass": self.passed})


class RatioStudy(Document):
    cod: RatioStat | None = None
    prd: RatioStat | None = None
    prb: RatioStat | None = None
    mki: RatioStat | None = None

    def stat(self, key: str) -> RatioStat | None:
        found: RatioStat | None = getattr(self, key, None) if key in RATIO_KEYS else None
        return found

    def value(self, key: str) -> float | None:
        stat = self.stat(key)
        return stat.value if stat else None

    def items(self) -> Iterator[tuple[str, RatioStat]]:
        for key in RATIO_KEYS:
            stat = self.stat(key)
            if stat is not None:
                yield key, stat

    def compact(self) -> RatioStudy:
        """Values and verdicts only: what a summary keeps."""
        return RatioStudy.model_validate({k: s.compact() for k, s in self.items()})


class ModelInfo(Document):
    library: str | None = None
    device_requested: str | None = None
    device_used: str | None = None
    queue_device: str | None = None
    threads: int | None = None
    train_seconds: float | None = None
    params: dict[str, JsonValue] = {}


class HoldoutWindow(Document):
    start: str = Field(alias="from")
    end: str = Field(alias="to")


class DataInfo(Document):
    source: str | None = None
    rows: int | None = None
    n_train: int | None = None
    n_test: int | None = None
    n_ratio_study: int | None = None
    holdout: HoldoutWindow | None = None
    trimming: str | None = None
    target: str | None = None


class AreaStats(Document):
    """The statistics of one group of sales (``area``: its label in the grouping ``column``)."""

    area: str
    column: str | None = None
    n: int | None = None
    n_ratio_study: int | None = None
    metrics: Metrics = Metrics()
    ratio_study: RatioStudy = RatioStudy()

    def compact(self) -> AreaStats:
        return self.model_copy(update={"ratio_study": self.ratio_study.compact()})


class ReportedMetric(Document):
    """One of the model's own metrics, as it reported it."""

    name: str
    value: float
    unit: str | None = None
    better: Literal["lower", "higher"] | None = None


class Disagreement(Document):
    """A statistic the model reported itself that modelrun computed otherwise (at the precision
    the report shows): the report shows modelrun's and says this."""

    key: str
    reported: float
    computed: float | None


class MetricsDocument(Document):
    """metrics.json (contract v2), once the published schema has accepted it (modelrun.domain.results)."""

    schema_version: str
    run_id: str
    predictions: str
    groups: list[str] = []
    metrics: list[ReportedMetric] = []
    plots: list[str] = []
    params: str | None = None
    model: ModelInfo | None = None
    data: DataInfo | None = None


class Summary(Document):
    """The compact part of a run's results that the record keeps (history rows, baselines)."""

    metrics: Metrics = Metrics()
    ratio_study: RatioStudy = RatioStudy()

    @classmethod
    def of(cls, report: Report) -> Summary:
        return cls(metrics=report.metrics or Metrics(), ratio_study=(report.ratio_study or RatioStudy()).compact())


class Baseline(Document):
    """The verified main run a PR is compared with, and which one it is."""

    run_id: str
    head_sha: str
    which: Literal["base_commit", "latest"] | None = None
    metrics: Metrics = Metrics()
    ratio_study: RatioStudy = RatioStudy()
    by_area: list[AreaStats] = []


class Change(Document):
    """One statistic's change against main (this run minus main) from the paired bootstrap."""

    delta: float
    low: float
    high: float
    verdict: Literal["better", "worse", "same"]


class Comparison(Document):
    """The paired comparison with main over the holdout sales both runs scored.

    ``paired``: the same sales in both holdouts, ``changes`` holds the intervals;
    ``differ``: the holdouts are not the same sales (the data changed), nothing is claimed;
    ``unavailable``: there was nothing to compare (``reason`` says why)."""

    status: Literal["paired", "differ", "unavailable"]
    reason: str | None = None
    n_sales: int = 0
    resamples: int = 0
    confidence: float = 0.95
    seed: int = 0
    seconds: float | None = None
    changes: dict[str, Change] = {}


class Decile(Document):
    """Holdout sales in one sale-price decile and each run's median ratio there."""

    low: float
    high: float
    n: int
    this: float | None = None
    base: float | None = None


class Report(Document):
    """What the report path collected for one run, as its record keeps it."""

    status: str | None = None
    contract_error: str | None = None
    metrics: Metrics | None = None
    ratio_study: RatioStudy | None = None
    model: ModelInfo | None = None
    data: DataInfo | None = None
    baseline: Baseline | None = None
    by_area: list[AreaStats] = []
    comparison: Comparison | None = None
    deciles: list[Decile] = []
    params_diff: list[str] = []  # unified diff of the params file against the baseline run's
    predictions: str | None = None  # where the run's predictions are (relative to its results)
    params: str | None = None  # where its params file is
    reported: list[ReportedMetric] = []  # the model's own extra metrics
    disagreements: list[Disagreement] = []  # statistics the model reported otherwise
    report_key: str | None = None
    report_url: str | None = None
    artifacts_url: str | None = None
    # The run's files were copied where no job can write (modelrun.collected): only then may a
    # later report compare with them.
    kept: bool = False
    log_tail: list[str] = []

    @property
    def has_results(self) -> bool:
        return self.metrics is not None

    def paired_change(self, key: str) -> Change | None:
        """The statistic's change from a paired comparison; None without one (nothing is claimed)."""
        comparison = self.comparison
        if comparison is None or comparison.status != "paired":
            return None
        return comparison.changes.get(key)


def report_of(document: dict[str, Any] | Report | None) -> Report:
    """A record's ``report`` as a Report (an empty one when there is none yet)."""
    return Report.model_validate(document or {})


def summary_of(document: dict[str, Any] | Summary | None) -> Summary:
    """A record's ``summary`` as a Summary (empty when the run reported nothing)."""
    return Summary.model_validate(document or {})
