"""The reviewer's answer in one line: is this run better, worse or no different from main?

Computed from the typed report alone (pure: no I/O, no clock); its words are in
``modelrun.domain.sections`` (the comment's line) and ``modelrun.domain.report`` (the check
run's title). A statistic counts as moved only where the paired bootstrap interval of its
change excludes 0 (``Change.verdict``); an IAAO standard newly fails where this run fails it
and main passed it, newly passes the other way round, and a failure main shares is said as such.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from modelrun.domain.documents import METRIC_KEYS, RATIO_KEYS, Report

STATISTICS = (*METRIC_KEYS, *RATIO_KEYS)

Kind = Literal["better", "worse", "mixed", "same", "no_baseline", "not_compared", "no_results"]


@dataclass(frozen=True)
class Verdict:
    """What moved against main, and the IAAO standards against main's.

    ``kind``: better (some better, none worse), worse (some worse, none better), mixed (both),
    same (a paired comparison found no change), no_baseline (no main run to compare with),
    not_compared (a main run, but no paired comparison: the holdouts differ or are missing),
    no_results (nothing to judge: the run wrote no results it could be judged by)."""

    kind: Kind
    better: tuple[str, ...] = ()
    worse: tuple[str, ...] = ()
    newly_failing: tuple[str, ...] = ()  # IAAO standards this run fails and main passed
    newly_passing: tuple[str, ...] = ()  # IAAO standards this run passes and main failed
    failing_as_on_main: tuple[str, ...] = ()  # failed by both
    failing: tuple[str, ...] = ()  # every standard this run fails (with or without main)
    reason: str | None = None  # not_compared: why (the comparison's words, user text)

    @property
    def compared(self) -> bool:
        return self.kind in ("better", "worse", "mixed", "same")


def verdict_of(report: Report) -> Verdict:
    """The verdict of a run's report (``no_results`` when it has none to judge)."""
    if not report.has_results:
        return Verdict("no_results")
    study = report.ratio_study
    failing = tuple(k for k, s in (study.items() if study else []) if s.passed is False)
    passing = {k for k, s in (study.items() if study else []) if s.passed is True}
    baseline = report.baseline
    if baseline is None:
        return Verdict("no_baseline", failing=failing)
    main_failing = {k for k, s in baseline.ratio_study.items() if s.passed is False}
    main_passing = {k for k, s in baseline.ratio_study.items() if s.passed is True}
    newly_failing = tuple(k for k in failing if k in main_passing)
    newly_passing = tuple(k for k in RATIO_KEYS if k in passing and k in main_failing)
    as_on_main = tuple(k for k in failing if k in main_failing)
    comparison = report.comparison
    better: tuple[str, ...] = ()
    worse: tuple[str, ...] = ()
    reason = None
    if comparison is None or comparison.status != "paired":
        kind: Kind = "not_compared"
        reason = comparison.reason if comparison is not None else None
    else:
        changes = comparison.changes
        better = tuple(k for k in STATISTICS if k in changes and changes[k].verdict == "better")
        worse = tuple(k for k in STATISTICS if k in changes and changes[k].verdict == "worse")
        kind = "mixed" if better and worse else "better" if better else "worse" if worse else "same"
    return Verdict(kind, better, worse, newly_failing, newly_passing, as_on_main, failing, reason)
