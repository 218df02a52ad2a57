"""This run against main, as the report keeps it: the paired comparison, the decile view and the
ratio distribution (the arithmetic is in :mod:`modelrun.domain.comparison`), and the report
built from them (what reporting.collect stores once it has read the inputs)."""

from __future__ import annotations

import time
from dataclasses import dataclass

from modelrun.domain import comparison
from modelrun.domain.comparison import Holdout
from modelrun.domain.documents import Baseline, Change, Comparison, Decile, MetricsDocument, Report
from modelrun.domain.html_report import Distribution

MAX_AREAS = 60  # areas a record keeps (the comment's table and chart)
RATIO_BINS = (0.5, 1.5, 20)  # the distribution's range and bins (ratios outside: the end bins)


@dataclass(frozen=True)
class Compared:
    comparison: Comparison | None  # None: there is no baseline to compare with
    deciles: list[Decile]
    distribution: Distribution | None


def _deciles(found: list[comparison.Decile]) -> list[Decile]:
    return [Decile(low=d.low, high=d.high, n=d.n, this=d.this, base=d.base) for d in found]


def _ratios(holdout: Holdout) -> list[int]:
    low, high, bins = RATIO_BINS
    return comparison.histogram([e / p for e, p in zip(holdout.estimate, holdout.price, strict=True)], low, high, bins)


def compare(this: Holdout | str, base: Holdout | str | None) -> Compared:
    """``this``: the run's holdout, or why there is none; ``base``: main's, why there is none,
    or None when there is no baseline at all."""
    if isinstance(this, str):
        return Compared(None if base is None else Comparison(status="unavailable", reason=this), [], None)
    low, high, _ = RATIO_BINS
    base_ratios = _ratios(base) if isinstance(base, Holdout) else None
    distribution = Distribution(low, high, _ratios(this), base_ratios)

    def alone() -> list[Decile]:  # only where returned: a paired comparison has deciles of its own
        return _deciles(comparison.deciles(this.price, (this.estimate, this.trimmed)))

    if base is None:
        return Compared(None, alone(), distribution)
    if isinstance(base, str):
        return Compared(Comparison(status="unavailable", reason=base), alone(), distribution)
    paired = comparison.pair(this, base)
    if isinstance(paired, str):
        return Compared(Comparison(status="differ", reason=paired, n_sales=len(this)), alone(), distribution)
    resamples = comparison.resamples_for(len(paired.price))
    started = time.perf_counter()
    changes = comparison.paired_bootstrap(paired, resamples)
    seconds = time.perf_counter() - started
    found = Comparison(
        status="paired",
        n_sales=len(paired.price),
        resamples=resamples,
        confidence=comparison.CONFIDENCE,
        seed=comparison.SEED,
        seconds=round(seconds, 3),
        changes={k: Change(delta=c.delta, low=c.low, high=c.high, verdict=c.verdict) for k, c in changes.items()},  # type: ignore[arg-type]
    )
    return Compared(found, _deciles(comparison.deciles(paired.price, paired.this, paired.base)), distribution)


def results_report(
    status: str,
    doc: MetricsDocument,
    baseline: Baseline | None,
    this: Holdout | str,
    base: Holdout | str | None,
    params_diff: list[str],
) -> tuple[Report, Distribution | None]:
    """The report of a run whose metrics.json was accepted, against ``baseline`` (``this`` and
    ``base``: the holdouts or why there are none, as for :func:`compare`). Without a baseline
    the caller reads nothing of main's: ``base`` is None and ``params_diff`` empty."""
    compared = compare(this, base)
    report = Report(
        status=status,
        metrics=doc.metrics,
        ratio_study=doc.ratio_study,
        model=doc.model,
        data=doc.data,
        baseline=baseline,
        by_area=[a.compact() for a in doc.by_area[:MAX_AREAS]],
        comparison=compared.comparison,
        deciles=compared.deciles,
        params_diff=params_diff,
    )
    return report, compared.distribution
