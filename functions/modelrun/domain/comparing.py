"""A run's report from its evaluation: the statistics modelrun computed from the predictions
(modelrun.domain.evaluation), the paired comparison with main, the decile view and the ratio
distribution, what the model reported itself beside them (what reporting.collect stores once
it has read the inputs, and what ``modelrun check`` prints)."""

from __future__ import annotations

import time

import numpy as np

from modelrun.domain import evaluation, formatting
from modelrun.domain.documents import (
    AreaStats,
    Baseline,
    Change,
    Comparison,
    DataInfo,
    Decile,
    Disagreement,
    Metrics,
    MetricsDocument,
    RatioStat,
    RatioStudy,
    Report,
    ReportedMetric,
)
from modelrun.domain.evaluation import Evaluation, Sales, Stat
from modelrun.domain.html_report import Distribution

MAX_AREAS = 60  # groups a record keeps (the comment's table and chart)
RATIO_BINS = (0.5, 1.5, 20)  # the distribution's range and bins (ratios outside: the end bins)


def histogram(values: np.ndarray, low: float, high: float, bins: int) -> list[int]:
    """Counts of ``values`` in ``bins`` equal bins over [low, high); values outside go to the end bins."""
    # the nudge keeps a value on an edge (1.0 with bins of 0.1) in the bin it starts
    index = np.clip(np.floor((values - low) * (bins / (high - low)) + 1e-9), 0, bins - 1).astype(np.intp)
    return [int(c) for c in np.bincount(index, minlength=bins)]


def _ratios(sales: Sales) -> list[int]:
    low, high, bins = RATIO_BINS
    return histogram(sales.estimate / sales.price, low, high, bins)


def _metrics(stats: dict[str, Stat]) -> Metrics:
    return Metrics.model_validate({k: stats[k].value for k in evaluation.ACCURACY})


def _ratio_study(stats: dict[str, Stat]) -> RatioStudy:
    found: dict[str, RatioStat] = {}
    for key in evaluation.RATIO_STUDY:
        s = stats[key]
        ci = (s.low, s.high) if s.low is not None and s.high is not None else None
        low, high = s.range or (None, None)
        found[key] = RatioStat.model_validate(
            {"value": s.value, "ci": ci, "standard": f"{low}-{high}", "range": s.range, "pass": s.passed}
        )
    return RatioStudy.model_validate(found)


def disagreements(reported: list[ReportedMetric], stats: dict[str, Stat]) -> list[Disagreement]:
    """The model's own numbers for modelrun's statistics where they differ from the computed ones
    at the precision the report shows them (a name is matched case-insensitively)."""
    found: list[Disagreement] = []
    for metric in reported:
        key = metric.name.lower()
        if key not in stats:
            continue
        computed = stats[key].value
        if formatting.value(key, metric.value) != formatting.value(key, computed):
            found.append(Disagreement(key=key, reported=metric.value, computed=computed))
    return found


def _deciles(sales: Sales, base: Sales | None) -> list[Decile]:
    price = np.asarray(sales.price)
    keep = ~evaluation.trimmed(price, sales.estimate)
    other = None
    if base is not None:
        # main's estimates for the same sales in this run's order (pairing checked the ids and prices)
        where = {sid: i for i, sid in enumerate(base.sale_id)}
        index = np.fromiter((where[s] for s in sales.sale_id), dtype=np.intp, count=len(sales))
        b_keep = ~evaluation.trimmed(base.price, base.estimate)
        other = (base.estimate[index], b_keep[index])
    return [
        Decile(low=lo, high=hi, n=n, this=a, base=b)
        for lo, hi, n, a, b in evaluation.deciles(price, (sales.estimate, keep), other)
    ]


def _groups(found: Evaluation) -> list[AreaStats]:
    return [
        AreaStats(
            area=g.label,
            column=g.column,
            n=g.n,
            n_ratio_study=g.n_ratio_study,
            metrics=_metrics(g.stats),
            ratio_study=_ratio_study(g.stats).compact(),
        )
        for g in found.groups[:MAX_AREAS]
    ]


def results_report(
    status: str,
    doc: MetricsDocument,
    baseline: Baseline | None,
    this: Sales | str,
    base: Sales | str | None,
    params_diff: list[str],
    resamples: int = evaluation.RESAMPLES,
) -> tuple[Report, Distribution | None]:
    """The report of a run whose metrics.json was accepted: ``this``, its predictions or why they
    can't be read (then there are no results: ``contract_error``); ``base``: main's predictions,
    why there are none, or None when there is no baseline at all (the caller read nothing of
    main's, and ``params_diff`` is empty)."""
    info = {
        "status": status,
        "model": doc.model,
        "predictions": doc.predictions,
        "params": doc.params,
        "reported": doc.metrics,
    }
    if isinstance(this, str):
        return Report.model_validate(info | {"contract_error": this, "baseline": baseline}), None
    started = time.perf_counter()
    found = evaluation.evaluate(this, base if isinstance(base, Sales) else None, resamples=resamples)
    seconds = round(time.perf_counter() - started, 3)
    paired = found.paired
    comparison: Comparison | None = None
    if isinstance(paired, evaluation.Paired):
        comparison = Comparison(
            status="paired",
            n_sales=paired.n,
            resamples=found.resamples,
            confidence=found.confidence,
            seed=found.seed,
            seconds=seconds,
            changes={
                k: Change(delta=c.delta, low=c.low, high=c.high, verdict=c.verdict)  # type: ignore[arg-type]
                for k, c in paired.changes.items()
            },
        )
        if baseline is not None:  # main's numbers as modelrun computes them from its predictions
            baseline = baseline.model_copy(
                update={"metrics": _metrics(paired.base), "ratio_study": _ratio_study(paired.base).compact()}
            )
    elif isinstance(paired, str):
        comparison = Comparison(status="differ", reason=paired, n_sales=len(this))
    elif isinstance(base, str):
        comparison = Comparison(status="unavailable", reason=base)
    data = (doc.data or DataInfo()).model_copy(
        update={"n_test": found.n, "n_ratio_study": found.n_ratio_study, "trimming": found.trimming}
    )
    low, high, _ = RATIO_BINS
    distribution = Distribution(low, high, _ratios(this), _ratios(base) if isinstance(base, Sales) else None)
    report = Report.model_validate(
        info
        | {
            "metrics": _metrics(found.stats),
            "ratio_study": _ratio_study(found.stats),
            "data": data,
            "baseline": baseline,
            "by_area": _groups(found),
            "comparison": comparison,
            "deciles": _deciles(
                this, base if isinstance(paired, evaluation.Paired) and isinstance(base, Sales) else None
            ),
            "params_diff": params_diff,
            "disagreements": disagreements(doc.metrics, found.stats),
        }
    )
    return report, distribution
