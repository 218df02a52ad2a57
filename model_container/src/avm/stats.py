"""Accuracy metrics and the IAAO ratio study (COD, PRD, PRB, MKI) with bootstrap intervals.

Point values and pass/fail come from `assesspy` (the Cook County Assessor's Office's own
package). The bootstrap intervals use vectorised re-implementations of the same formulas
(`cod_matrix` & co., cross-checked against assesspy in the tests): assesspy's `boot_ci` is
unseeded and loops in Python, so 1,000 resamples of MKI would take minutes; these take well
under a second and are reproducible from params.seed.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from typing import Any

import assesspy as ap
import numpy as np
import pandas as pd

# Ranges as assesspy's *_met functions apply them: lower bound exclusive, upper inclusive.
# COD/PRD/PRB: IAAO Standard on Ratio Studies (2013) 9.1 and 9.2.7; MKI: Quintos (2020).
STANDARDS: dict[str, tuple[float, float, Callable[[float], bool]]] = {
    "cod": (5.0, 15.0, ap.cod_met),
    "prd": (0.98, 1.03, ap.prd_met),
    "prb": (-0.05, 0.05, ap.prb_met),
    "mki": (0.95, 1.05, ap.mki_met),
}
POINT: dict[str, Callable[[pd.Series, pd.Series], float]] = {
    "cod": ap.cod,
    "prd": ap.prd,
    "prb": ap.prb,
    "mki": ap.mki,
}


def _finite_or_none(x: float) -> float | None:
    return float(x) if x is not None and math.isfinite(x) else None


# --- accuracy ---------------------------------------------------------------------------------


def accuracy(sale_price: np.ndarray, estimate: np.ndarray) -> dict[str, float | None]:
    """RMSE and MAE in dollars; MAPE and MdAPE in percent; R² on dollars; median ratio."""
    y = np.asarray(sale_price, dtype=float)
    p = np.asarray(estimate, dtype=float)
    err = p - y
    ape = np.abs(err) / y * 100.0
    ss_tot = float(np.sum((y - y.mean()) ** 2))
    r2 = 1.0 - float(np.sum(err**2)) / ss_tot if ss_tot > 0 else float("nan")
    return {
        "rmse": _finite_or_none(float(np.sqrt(np.mean(err**2)))),
        "mae": _finite_or_none(float(np.mean(np.abs(err)))),
        "mape": _finite_or_none(float(np.mean(ape))),
        "mdape": _finite_or_none(float(np.median(ape))),
        "r2": _finite_or_none(r2),
        "median_ratio": _finite_or_none(float(np.median(p / y))),
    }


# --- trimming ---------------------------------------------------------------------------------


def outlier_mask(ratio: np.ndarray, method: str, iqr_mult: float, probs: tuple[float, float]) -> np.ndarray:
    """True where a ratio is an outlier (assesspy.is_outlier); `none` flags nothing."""
    r = np.asarray(ratio, dtype=float)
    if method == "none" or r.size < 3:
        return np.zeros(r.size, dtype=bool)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # its narrow-IQR / small-sample warnings go to the log otherwise
        out = ap.is_outlier(pd.Series(r), method=method, mult=iqr_mult, probs=probs)
    return np.asarray(out, dtype=bool)


def describe_trimming(method: str, iqr_mult: float, probs: tuple[float, float]) -> str:
    if method == "iqr":
        rule = (
            f"ratio outliers (ratio below Q1 - {iqr_mult:g} x IQR or above Q3 + {iqr_mult:g} x IQR of the "
            "holdout's ratios) removed"
        )
    elif method == "quantile":
        rule = f"ratios outside the {probs[0]:g}-{probs[1]:g} quantiles of the holdout's ratios removed"
    else:
        rule = "no trimming"
    return (
        f"ratio study (COD, PRD, PRB, MKI, overall and by area): {rule}, once over the whole holdout "
        "(assesspy.is_outlier; IAAO Standard on Ratio Studies, Appendix B.1); "
        "accuracy metrics (RMSE, MAE, MAPE, MdAPE, R2, median ratio) use all holdout sales"
    )


# --- vectorised statistics: each row of E and S is one sample -----------------------------------


def cod_matrix(e: np.ndarray, s: np.ndarray) -> np.ndarray:
    r = e / s
    med = np.median(r, axis=1)
    return np.asarray(100.0 * np.mean(np.abs(r - med[:, None]), axis=1) / med)


def prd_matrix(e: np.ndarray, s: np.ndarray) -> np.ndarray:
    r = e / s
    return np.mean(r, axis=1) / (np.sum(e, axis=1) / np.sum(s, axis=1))


def prb_matrix(e: np.ndarray, s: np.ndarray) -> np.ndarray:
    r = e / s
    med = np.median(r, axis=1)[:, None]
    lhs = (r - med) / med
    rhs = np.log2((e / med + s) / 2.0)
    rc = rhs - rhs.mean(axis=1, keepdims=True)
    lc = lhs - lhs.mean(axis=1, keepdims=True)
    return np.sum(rc * lc, axis=1) / np.sum(rc * rc, axis=1)


def _gini_rows(x: np.ndarray) -> np.ndarray:
    n = x.shape[1]
    rank = np.arange(1, n + 1, dtype=float)
    return np.asarray((2.0 * (x @ rank) / x.sum(axis=1) - (n + 1)) / n)


def mki_matrix(e: np.ndarray, s: np.ndarray) -> np.ndarray:
    order = np.argsort(s, axis=1, kind="stable")
    gini_e = _gini_rows(np.take_along_axis(e, order, axis=1))
    return np.asarray(gini_e / _gini_rows(np.take_along_axis(s, order, axis=1)))


MATRIX: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    "cod": cod_matrix,
    "prd": prd_matrix,
    "prb": prb_matrix,
    "mki": mki_matrix,
}


def bootstrap_ci(
    estimate: np.ndarray, sale_price: np.ndarray, nboot: int, alpha: float, seed: int
) -> dict[str, tuple[float, float] | None]:
    """Percentile bootstrap (resample sales with replacement, as assesspy.boot_ci does)."""
    e = np.asarray(estimate, dtype=float)
    s = np.asarray(sale_price, dtype=float)
    n = e.size
    if nboot <= 0 or n < 2:
        return dict.fromkeys(MATRIX)
    rng = np.random.default_rng(seed)
    chunk = max(1, 2_000_000 // n)  # bound memory: ~16 MB per matrix
    draws: dict[str, list[np.ndarray]] = {k: [] for k in MATRIX}
    done = 0
    while done < nboot:
        b = min(chunk, nboot - done)
        idx = rng.integers(0, n, size=(b, n))
        eb, sb = e[idx], s[idx]
        with np.errstate(divide="ignore", invalid="ignore"):
            for k, fn in MATRIX.items():
                draws[k].append(fn(eb, sb))
        done += b
    out: dict[str, tuple[float, float] | None] = {}
    for k, parts in draws.items():
        v = np.concatenate(parts)
        v = v[np.isfinite(v)]
        if v.size == 0:
            out[k] = None
        else:
            lo, hi = np.quantile(v, [alpha / 2, 1 - alpha / 2])
            out[k] = (float(lo), float(hi))
    return out


def ratio_study(
    estimate: np.ndarray, sale_price: np.ndarray, nboot: int, alpha: float, seed: int
) -> dict[str, dict[str, Any]]:
    """COD, PRD, PRB, MKI: value (assesspy), bootstrap CI, the standard's range and pass/fail."""
    e = pd.Series(np.asarray(estimate, dtype=float))
    s = pd.Series(np.asarray(sale_price, dtype=float))
    cis = bootstrap_ci(e.to_numpy(), s.to_numpy(), nboot, alpha, seed)
    out: dict[str, dict[str, Any]] = {}
    for k, fn in POINT.items():
        lo, hi, met = STANDARDS[k]
        value: float | None
        try:
            with warnings.catch_warnings(), np.errstate(all="ignore"):
                warnings.simplefilter("ignore")
                value = _finite_or_none(fn(e, s)) if len(e) >= 2 else None
        except Exception:  # assesspy raises bare Exception on degenerate input
            value = None
        ci = cis[k]
        out[k] = {
            "value": value,
            "ci": [ci[0], ci[1]] if ci is not None else None,
            "standard": f"{lo}-{hi}",
            "range": [lo, hi],
            "pass": bool(met(value)) if value is not None else False,
        }
    return out
