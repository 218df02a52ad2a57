"""The report Lambda's pure-Python statistics (functions/modelrun/domain/comparison.py) against
the model container's own: assesspy's point values and the vectorised numpy bootstrap.

The Lambda has no numpy (its package stays small), so it re-implements the statistics over
resample weights; here, where numpy and assesspy are installed, both must agree on the real
holdout predictions the sample model writes and on resamples drawn the numpy way. The module is
loaded by its path: it needs the standard library only, not the backend's environment.
"""

from __future__ import annotations

import gzip
import importlib.util
import io
import sys
from pathlib import Path
from types import ModuleType

import assesspy as ap
import numpy as np
import pandas as pd
import pytest

from avm import stats
from avm.run import HOLDOUT_COLUMNS, write_holdout

SOURCE = Path(__file__).resolve().parents[2] / "functions" / "modelrun" / "domain" / "comparison.py"


@pytest.fixture(scope="module")
def comparison() -> ModuleType:
    spec = importlib.util.spec_from_file_location("lambda_comparison", SOURCE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


def _holdout(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    # distinct prices: numpy's stable argsort and the Lambda's (price, position) order agree
    price = np.round(np.exp(rng.normal(13.0, 0.5, n))) + np.arange(n) * 1e-3
    estimate = price * np.exp(rng.normal(-0.03, 0.15, n))
    ratio = estimate / price
    return pd.DataFrame(
        {
            "sale_id": [f"s{i}" for i in range(n)],
            "sale_price": price,
            "estimate": estimate,
            "area": [str(i % 5) for i in range(n)],
            "ratio_outlier": stats.outlier_mask(ratio, "iqr", 1.5, (0.05, 0.95)),
        }
    )


def test_point_values_match_assesspy_and_the_container(comparison: ModuleType) -> None:
    df = _holdout(800, 1)
    keep = ~df["ratio_outlier"].to_numpy()
    ours = comparison.statistics(list(df.sale_price), list(df.estimate), list(df.ratio_outlier))
    accuracy = stats.accuracy(df.sale_price.to_numpy(), df.estimate.to_numpy())
    for key, value in accuracy.items():
        assert ours[key] == pytest.approx(value, rel=1e-9), key
    e, s = df.estimate[keep].reset_index(drop=True), df.sale_price[keep].reset_index(drop=True)
    for key, fn in (("cod", ap.cod), ("prd", ap.prd), ("prb", ap.prb), ("mki", ap.mki)):
        assert ours[key] == pytest.approx(fn(e, s), rel=1e-9), key


def test_resample_weights_match_the_numpy_bootstrap(comparison: ModuleType) -> None:
    df = _holdout(300, 2).assign(ratio_outlier=False)
    e, s = df.estimate.to_numpy(), df.sale_price.to_numpy()
    rng = np.random.default_rng(3)
    idx = rng.integers(0, len(df), size=(25, len(df)))
    weighted = comparison._Statistics(list(s), list(e), [False] * len(df))
    matrices = {k: fn(e[idx], s[idx]) for k, fn in stats.MATRIX.items()}
    for row in range(idx.shape[0]):
        values = dict(
            zip(
                comparison.STATISTICS,
                weighted.values(list(np.bincount(idx[row], minlength=len(df)))),
                strict=True,
            )
        )
        for key, column in matrices.items():
            assert values[key] == pytest.approx(column[row], rel=1e-9), (key, row)


def test_the_holdout_file_the_container_writes_is_the_one_the_lambda_reads(
    comparison: ModuleType, tmp_path: Path
) -> None:
    df = _holdout(50, 4)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    write_holdout(df, tmp_path / "a" / "predictions.csv.gz")
    write_holdout(df, tmp_path / "b" / "predictions.csv.gz")
    data = (tmp_path / "a" / "predictions.csv.gz").read_bytes()
    assert data == (tmp_path / "b" / "predictions.csv.gz").read_bytes()  # no timestamp in it
    text = gzip.decompress(data).decode("utf-8")
    assert text.splitlines()[0] == ",".join(HOLDOUT_COLUMNS)
    table = pd.read_csv(io.StringIO(text), dtype={"sale_id": str, "area": str}, float_precision="round_trip")
    assert table.estimate.tolist() == df.estimate.tolist()  # exact: floats round-trip
    assert set(table.ratio_outlier) <= {0, 1}
    again = comparison.Holdout(
        list(table.sale_id),
        list(table.sale_price),
        list(table.estimate),
        list(table.area),
        list(table.ratio_outlier),
    )
    assert comparison.statistics(again.price, again.estimate, again.trimmed)["rmse"] == pytest.approx(
        stats.accuracy(df.sale_price.to_numpy(), df.estimate.to_numpy())["rmse"], rel=1e-12
    )
