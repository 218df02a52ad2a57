"""Ratio-study statistics: hand computation from the formulas, assesspy, and our vectorised bootstrap.

Formulas (IAAO Standard on Ratio Studies 2013; Quintos 2020), ratio r_i = estimate_i / sale_i:
  COD = 100 / median(r) * mean(|r_i - median(r)|)
  PRD = mean(r) / (sum(estimate) / sum(sale))            (mean ratio / sale-weighted mean ratio)
  PRB = OLS slope of (r_i - med)/med on log2((estimate_i/med + sale_i) / 2)
  MKI = Gini(estimates ordered by sale) / Gini(sales ordered by sale),
        Gini(x) = (2 * sum(i * x_(i)) / sum(x) - (n + 1)) / n, i = 1..n
"""

from __future__ import annotations

import math
import statistics

import assesspy as ap
import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from avm import stats

# A fixed sample small enough to do on paper.
EST = [90.0, 100.0, 120.0, 200.0]
SALE = [100.0, 100.0, 100.0, 200.0]
# ratios 0.9, 1.0, 1.2, 1.0; median 1.0
# COD = 100/1.0 * mean(0.1, 0, 0.2, 0) = 7.5
# PRD = mean(0.9, 1.0, 1.2, 1.0) / (510 / 500) = 1.025 / 1.02
# MKI: sales already sorted (stable order keeps the estimates' order)
#   Gini(sale) = (2 * (1*100 + 2*100 + 3*100 + 4*200) / 500 - 5) / 4 = (2*1400/500 - 5)/4 = 0.15
#   Gini(est)  = (2 * (1*90 + 2*100 + 3*120 + 4*200) / 510 - 5) / 4 = (2*1450/510 - 5)/4
HAND = {
    "cod": 7.5,
    "prd": 1.025 / 1.02,
    "mki": ((2 * 1450 / 510 - 5) / 4) / 0.15,
}


def _hand_prb(est: list[float], sale: list[float]) -> float:
    ratios = [e / s for e, s in zip(est, sale, strict=True)]
    med = statistics.median(ratios)
    y = [(r - med) / med for r in ratios]
    x = [math.log2((e / med + s) / 2) for e, s in zip(est, sale, strict=True)]
    mx, my = sum(x) / len(x), sum(y) / len(y)
    return sum((xi - mx) * (yi - my) for xi, yi in zip(x, y, strict=True)) / sum((xi - mx) ** 2 for xi in x)


def _hand_all(est: list[float], sale: list[float]) -> dict[str, float]:
    """The four statistics straight from the formulas, in plain Python."""
    n = len(est)
    ratios = [e / s for e, s in zip(est, sale, strict=True)]
    med = statistics.median(ratios)
    cod = 100 / med * sum(abs(r - med) for r in ratios) / n
    prd = (sum(ratios) / n) / (sum(est) / sum(sale))
    order = sorted(range(n), key=lambda i: sale[i])  # Python's sort is stable, like mergesort

    def gini(xs: list[float]) -> float:
        return (2 * sum((i + 1) * x for i, x in enumerate(xs)) / sum(xs) - (n + 1)) / n

    mki = gini([est[i] for i in order]) / gini([sale[i] for i in order])
    return {"cod": cod, "prd": prd, "prb": _hand_prb(est, sale), "mki": mki}


def test_hand_values_on_fixed_sample() -> None:
    hand = _hand_all(EST, SALE)
    for k, v in HAND.items():
        assert hand[k] == pytest.approx(v, rel=1e-12)
    assert HAND["cod"] == pytest.approx(7.5)
    assert HAND["prd"] == pytest.approx(1.004902, rel=1e-6)
    assert HAND["mki"] == pytest.approx(1.143791, rel=1e-6)


@pytest.mark.parametrize("name", ["cod", "prd", "prb", "mki"])
def test_fixed_sample_matches_assesspy_and_matrix(name: str) -> None:
    hand = _hand_all(EST, SALE)[name]
    assert stats.POINT[name](pd.Series(EST), pd.Series(SALE)) == pytest.approx(hand, rel=1e-9)
    matrix = stats.MATRIX[name](np.array([EST]), np.array([SALE]))[0]
    assert matrix == pytest.approx(hand, rel=1e-9)


def test_larger_fixed_sample_against_assesspy() -> None:
    sample = ap.ccao_sample()  # the CCAO's own sample data shipped with assesspy
    est, sale = sample["estimate"].astype(float), sample["sale_price"].astype(float)
    hand = _hand_all(est.tolist(), sale.tolist())
    for name in ("cod", "prd", "prb", "mki"):
        ref = stats.POINT[name](est, sale)
        assert hand[name] == pytest.approx(ref, rel=1e-9), name
        assert stats.MATRIX[name](est.to_numpy()[None, :], sale.to_numpy()[None, :])[0] == pytest.approx(
            ref, rel=1e-9
        )


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(st.tuples(st.floats(50_000, 2_000_000), st.floats(0.5, 1.8)), min_size=3, max_size=40).filter(
        lambda rows: len({round(s, 6) for s, _ in rows}) > 1
    )
)
def test_matrix_versions_equal_assesspy(rows: list[tuple[float, float]]) -> None:
    sale = np.array([s for s, _ in rows])
    est = sale * np.array([r for _, r in rows])
    for name in ("cod", "prd", "prb", "mki"):
        ref = stats.POINT[name](pd.Series(est), pd.Series(sale))
        got = stats.MATRIX[name](est[None, :], sale[None, :])[0]
        assert got == pytest.approx(ref, rel=1e-7, abs=1e-9), name


def test_bootstrap_ci_is_percentile_of_assesspy_on_same_resamples() -> None:
    rng = np.random.default_rng(7)
    sale = rng.uniform(100_000, 900_000, size=60)
    est = sale * rng.lognormal(0, 0.15, size=60)
    nboot, alpha, seed = 40, 0.1, 123
    ci = stats.bootstrap_ci(est, sale, nboot, alpha, seed)
    idx = np.random.default_rng(seed).integers(0, 60, size=(nboot, 60))  # the same draws
    for name in ("cod", "prd", "prb", "mki"):
        draws = [stats.POINT[name](pd.Series(est[i]), pd.Series(sale[i])) for i in idx]
        lo, hi = np.quantile(draws, [alpha / 2, 1 - alpha / 2])
        assert ci[name] == pytest.approx((lo, hi), rel=1e-9), name
    assert stats.bootstrap_ci(est, sale, nboot, alpha, seed) == ci  # reproducible


def test_ratio_study_shape_and_pass() -> None:
    sample = ap.ccao_sample()
    out = stats.ratio_study(sample["estimate"].to_numpy(), sample["sale_price"].to_numpy(), 100, 0.05, 1)
    assert set(out) == {"cod", "prd", "prb", "mki"}
    for name, block in out.items():
        lo, hi, met = stats.STANDARDS[name]
        assert block["standard"] == f"{lo}-{hi}" and block["range"] == [lo, hi]
        assert block["pass"] is met(block["value"])
        assert block["ci"][0] <= block["value"] <= block["ci"][1] or name == "prb"
    assert out["cod"]["standard"] == "5.0-15.0"
    assert stats.ratio_study(np.array([1.0]), np.array([1.0]), 10, 0.05, 1)["cod"]["value"] is None


def test_accuracy_by_hand() -> None:
    sale = np.array([100.0, 200.0, 400.0])
    est = np.array([110.0, 180.0, 400.0])
    m = stats.accuracy(sale, est)
    assert m["rmse"] == pytest.approx(math.sqrt((100 + 400 + 0) / 3))
    assert m["mae"] == pytest.approx(10.0)
    assert m["mape"] == pytest.approx((10 + 10 + 0) / 3)  # percent
    assert m["mdape"] == pytest.approx(10.0)
    ss_tot = sum((y - 700 / 3) ** 2 for y in sale)
    assert m["r2"] == pytest.approx(1 - 500 / ss_tot)
    assert m["median_ratio"] == pytest.approx(1.0)


def test_outlier_mask() -> None:
    ratio = np.r_[np.linspace(0.9, 1.1, 50), 5.0]
    mask = stats.outlier_mask(ratio, "iqr", 3.0, (0.05, 0.95))
    assert mask.sum() == 1 and mask[-1]
    assert not stats.outlier_mask(ratio, "none", 3.0, (0.05, 0.95)).any()
    assert stats.outlier_mask(ratio, "quantile", 3.0, (0.05, 0.95)).sum() == 6
