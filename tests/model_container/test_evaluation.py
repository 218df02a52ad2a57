"""modelrun's evaluation (functions/modelrun/domain/evaluation.py) against assesspy, the
assessor office's own package: on the demo's real holdout (tests/fixtures/report: 4,387 sales of
the sample model) and on hard inputs; and the statistics the PR's comment shows, through
`modelrun check`, equal assesspy's at the precision shown.

The evaluation needs numpy alone: it is loaded by its path (this environment has no modelrun).
"""

from __future__ import annotations

import gzip
import importlib.util
import io
import json
import subprocess
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import assesspy as ap
import numpy as np
import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[2]
DOMAIN = ROOT / "functions" / "modelrun" / "domain"
DEMO = ROOT / "tests" / "fixtures" / "report" / "pr"  # the demo's PR run (PROVENANCE.md there)
POINTS = {"cod": ap.cod, "prd": ap.prd, "prb": ap.prb, "mki": ap.mki}


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"modelrun_{name}", DOMAIN / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def ev() -> ModuleType:
    return _load("evaluation")


@pytest.fixture(scope="module")
def fmt() -> ModuleType:
    return _load("formatting")


@pytest.fixture(scope="module")
def demo() -> pd.DataFrame:
    return pd.read_csv(
        io.BytesIO(gzip.decompress((DEMO / "predictions.csv.gz").read_bytes())), dtype={"sale_id": str}
    )


def assesspy_study(estimate: np.ndarray, price: np.ndarray) -> dict[str, float]:
    keep = ~np.asarray(_outliers(estimate / price))
    e, s = pd.Series(estimate[keep]), pd.Series(price[keep])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return {k: float(f(e, s)) for k, f in POINTS.items()}


def _outliers(ratio: np.ndarray) -> pd.Series:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # its narrow-IQR and small-sample warnings
        flags: pd.Series = ap.is_outlier(pd.Series(ratio))  # IAAO's 3 x IQR, assesspy's default
        return flags


def test_trimming_is_assesspys_is_outlier(ev: ModuleType, demo: pd.DataFrame) -> None:
    price, estimate = demo.sale_price.to_numpy(), demo.estimate.to_numpy()
    ours = ev.trimmed(price, estimate)
    assert list(ours) == list(_outliers(estimate / price)) and 0 < ours.sum() < 200
    assert list(ours) == list(demo.ratio_outlier.astype(bool))  # what the sample flagged with assesspy


def test_points_on_the_demo_holdout_are_assesspys(ev: ModuleType, demo: pd.DataFrame) -> None:
    price, estimate = demo.sale_price.to_numpy(), demo.estimate.to_numpy()
    found = ev.evaluate(ev.Sales(list(demo.sale_id), price, estimate), resamples=0)
    for key, value in assesspy_study(estimate, price).items():
        assert found.stats[key].value == pytest.approx(value, rel=1e-10), key
    cod = found.stats["cod"].value
    assert found.stats["cod"].passed == ap.cod_met(cod)
    for key, met in (("prd", ap.prd_met), ("prb", ap.prb_met), ("mki", ap.mki_met)):
        assert found.stats[key].passed == met(found.stats[key].value), key


def test_every_resample_is_assesspy_on_the_resampled_sales(ev: ModuleType, demo: pd.DataFrame) -> None:
    """The bootstrap's formulas: each resample's statistics are assesspy's on the sales it drew
    (boot_ci's df.sample(replace=True)); the interval is pandas' quantiles of them, as boot_ci's."""
    price, estimate = demo.sale_price.to_numpy(), demo.estimate.to_numpy()
    keep = ~ev.trimmed(price, estimate)
    order = np.argsort(price, kind="stable")
    side = ev._Side(price[order], estimate[order], keep[order])
    counts = ev._count_rows(np.random.default_rng(7), 5, price.size)
    values = side.values(counts)
    for row in range(5):
        index = np.repeat(np.arange(price.size), counts[row].astype(int))
        kept = index[side.keep[index] > 0]
        e, s = pd.Series(side.estimate[kept]), pd.Series(side.price[kept])
        for i, key in enumerate(ev.STATISTICS[6:], start=6):
            assert values[row, i] == pytest.approx(POINTS[key](e, s), rel=1e-9), (row, key)
    draws = np.random.default_rng(3).normal(12, 1, 1000)
    low, high = ev._interval(draws, 0.95)
    series = pd.Series(draws)
    assert (low, high) == pytest.approx((series.quantile(0.025), series.quantile(0.975)), rel=1e-12)


@pytest.mark.parametrize(
    "case",
    ["ties", "constant estimates", "two sales", "three sales"],
)
def test_hard_inputs_agree_with_assesspy(ev: ModuleType, case: str) -> None:
    rng = np.random.default_rng(4)
    if case == "ties":
        price = np.repeat([250_000.0, 400_000.0, 650_000.0], 40)
        estimate = price * np.tile([0.9, 1.0, 1.0, 1.05], 30)
    elif case == "constant estimates":
        price = np.round(np.exp(rng.normal(13, 0.4, 300)))
        estimate = np.full(300, 420_000.0)
    else:
        n = 2 if case == "two sales" else 3
        price = np.array([300_000.0, 500_000.0, 410_000.0][:n])
        estimate = np.array([310_000.0, 450_000.0, 430_000.0][:n])
    found = ev.evaluate(ev.Sales([f"s{i}" for i in range(price.size)], price, estimate), resamples=0)
    for key, value in assesspy_study(estimate, price).items():
        assert found.stats[key].value == pytest.approx(value, rel=1e-9, abs=1e-12), (case, key)


def test_zero_and_negative_prices_are_refused_by_both() -> None:
    for price in (0.0, -250_000.0):
        with pytest.raises(Exception, match="greater than 0"):
            ap.cod(pd.Series([1.0, 2.0]), pd.Series([price, 2.0]))
    # modelrun refuses them at the contract, with the row: tests/unit/test_results.py.


def test_the_comments_statistics_are_assesspys_at_the_precision_shown(
    fmt: ModuleType, demo: pd.DataFrame, modelrun_check: Callable[..., subprocess.CompletedProcess[str]]
) -> None:
    """`modelrun check` prints the tables the PR's comment shows (the same sections, from the
    same evaluation): every statistic there is assesspy's (or, for accuracy, numpy's) rounded."""
    checked = modelrun_check(DEMO, "--json", "--resamples", "200")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    found = json.loads(checked.stdout)
    price, estimate = demo.sale_price.to_numpy(), demo.estimate.to_numpy()
    err = estimate - price
    expected = assesspy_study(estimate, price) | {
        "rmse": float(np.sqrt(np.mean(err**2))),
        "mae": float(np.mean(np.abs(err))),
        "mape": float(np.mean(np.abs(err) / price) * 100),
        "mdape": float(np.median(np.abs(err) / price) * 100),
        "r2": float(1 - np.sum(err**2) / np.sum((price - price.mean()) ** 2)),
        "median_ratio": float(np.median(estimate / price)),
    }
    table = found["markdown"]
    for key, value in expected.items():
        shown = fmt.value(key, value)
        assert found["statistics"][key]["shown"] == shown, key
        assert f"| {fmt.LABELS[key]} | {shown} |" in table, key
    assert found["n"] == len(demo) and found["n_ratio_study"] == int((~demo.ratio_outlier.astype(bool)).sum())
