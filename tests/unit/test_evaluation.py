"""The evaluation (modelrun.domain.evaluation) against the formulas written plainly on the
expanded sample (each sale repeated as often as a resample drew it): point values, every
resample's values (the median windows and their fallback, PRB's series and its fallback, MKI's
ranks), the hard inputs, the paired comparison. Against assesspy itself, on the real holdout:
tests/model_container/test_evaluation.py."""

from __future__ import annotations

import math

import numpy as np
import pytest

from modelrun.domain import evaluation
from modelrun.domain.evaluation import STATISTICS, Sales, _Side

# -- the formulas, plainly (assesspy's definitions, without pandas) ----------------------------


def plain(price: np.ndarray, estimate: np.ndarray, keep: np.ndarray) -> dict[str, float]:
    err = estimate - price
    ape = np.abs(err) / price * 100
    sst = np.sum((price - price.mean()) ** 2)
    out = {
        "rmse": math.sqrt(np.mean(err**2)),
        "mae": float(np.mean(np.abs(err))),
        "mape": float(np.mean(ape)),
        "mdape": float(np.median(ape)),
        "r2": 1 - np.sum(err**2) / sst if sst > 0 else math.nan,
        "median_ratio": float(np.median(estimate / price)),
    }
    e, s = estimate[keep], price[keep]
    if np.unique(np.flatnonzero(keep)).size < 2 or e.size < 2:
        return out | dict.fromkeys(("cod", "prd", "prb", "mki"), math.nan)
    r = e / s
    med = np.median(r)
    out["cod"] = 100 / med * np.mean(np.abs(r - med))
    out["prd"] = r.mean() / np.sum(r * s / s.sum())
    x = np.log2((e / med + s) / 2)
    out["prb"] = np.polyfit(x, (r - med) / med, 1)[0] if np.var(x) > 0 else math.nan
    order = np.argsort(s, kind="stable")

    def gini(v: np.ndarray) -> float:
        n = v.size
        return float((2 * np.sum(v * np.arange(1, n + 1)) / v.sum() - (n + 1)) / n)

    out["mki"] = gini(e[order]) / gini(s[order])
    return out


def close(ours: np.ndarray | dict[str, float | None], theirs: dict[str, float], rel: float = 1e-9) -> None:
    values = ours if isinstance(ours, dict) else dict(zip(STATISTICS, ours, strict=True))
    for key in STATISTICS:
        a, b = values[key], theirs[key]
        if b is None or (isinstance(b, float) and math.isnan(b)):
            assert a is None or math.isnan(a), key
        else:
            assert a is not None and a == pytest.approx(b, rel=rel, abs=1e-9), key


def holdout(n: int, seed: int = 1, spread: float = 0.15) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    price = np.round(np.exp(rng.normal(13.0, 0.5, n)))
    estimate = price * np.exp(rng.normal(-0.03, spread, n))
    return price, estimate


def sales(price: np.ndarray, estimate: np.ndarray, **groups: list[str]) -> Sales:
    return Sales([f"s{i}" for i in range(price.size)], price, estimate, groups)


def expanded(side: _Side, counts: np.ndarray) -> dict[str, float]:
    index = np.repeat(np.arange(side.n), counts.astype(int))
    return plain(side.price[index], side.estimate[index], side.keep[index] > 0)


# -- points and resamples --------------------------------------------------------------------


def test_point_values_are_the_formulas() -> None:
    price, estimate = holdout(3000)
    keep = ~evaluation.trimmed(price, estimate)
    assert 0 < (~keep).sum() < 100  # some sales are trimmed, few
    found = evaluation.evaluate(sales(price, estimate), resamples=0)
    close({k: s.value for k, s in found.stats.items()}, plain(price, estimate, keep))
    assert found.n == 3000 and found.n_ratio_study == keep.sum()


def test_every_resample_is_the_formulas_on_the_expanded_sample() -> None:
    price, estimate = holdout(2000, seed=2)
    order = np.argsort(price, kind="stable")
    side = _Side(price[order], estimate[order], ~evaluation.trimmed(price, estimate)[order])
    counts = evaluation._count_rows(np.random.default_rng(5), 6, side.n)
    values = side.values(counts)
    for row in range(6):
        close(values[row], expanded(side, counts[row]))


def test_a_median_outside_its_window_and_a_far_median_for_prb_are_computed_in_full() -> None:
    price, estimate = holdout(5000, seed=3)
    order = np.argsort(price, kind="stable")
    side = _Side(price[order], estimate[order], np.ones(5000, dtype=bool))
    # Draws from the cheapest and most under-assessed sales only: every median leaves its window
    # and the ratio median moves far from the original's (PRB's series would not hold).
    counts = np.zeros((2, 5000))
    by_ratio = np.argsort(side.estimate / side.price)
    counts[0, by_ratio[:500]] = 10
    counts[1, :1000] = 5
    values = side.values(counts)
    assert abs(side.med0 / values[0, 5] - 1) > evaluation._TAYLOR_LIMIT
    for row in range(2):
        close(values[row], expanded(side, counts[row]))


def test_ties_in_prices_and_ratios() -> None:
    price = np.repeat([200_000.0, 300_000.0, 450_000.0, 600_000.0], 50)
    estimate = price * np.tile([0.9, 1.0, 1.0, 1.1, 1.2], 40)
    found = evaluation.evaluate(sales(price, estimate), resamples=200)
    close({k: s.value for k, s in found.stats.items()}, plain(price, estimate, ~evaluation.trimmed(price, estimate)))
    assert all(found.stats[k].low is not None for k in STATISTICS)
    order = np.argsort(price, kind="stable")
    side = _Side(price[order], estimate[order], np.ones(200, dtype=bool))
    counts = evaluation._count_rows(np.random.default_rng(1), 4, 200)
    for row, values in enumerate(side.values(counts)):
        close(values, expanded(side, counts[row]))


def test_constant_estimates() -> None:
    price, _ = holdout(500, seed=4)
    estimate = np.full(500, 400_000.0)
    found = evaluation.evaluate(sales(price, estimate), resamples=100)
    close({k: s.value for k, s in found.stats.items()}, plain(price, estimate, ~evaluation.trimmed(price, estimate)))
    assert found.stats["mki"].value == pytest.approx(0.0, abs=1e-12)  # no spread in estimates: Gini 0
    assert found.stats["mki"].passed is False and found.stats["prd"].value is not None


def test_a_group_of_one_sale_and_a_holdout_of_two() -> None:
    price, estimate = holdout(300, seed=5)
    labels = ["big"] * 299 + ["alone"]
    found = evaluation.evaluate(sales(price, estimate, area=labels), resamples=100)
    alone = next(g for g in found.groups if g.label == "alone")
    assert alone.n == 1 and alone.stats["rmse"].value == pytest.approx(abs(estimate[-1] - price[-1]))
    assert alone.stats["r2"].value is None and alone.stats["cod"].value is None
    assert alone.stats["cod"].passed is False and alone.stats["rmse"].low is None  # no interval from one sale
    two = evaluation.evaluate(sales(price[:2], estimate[:2]), resamples=100)
    cod = two.stats["cod"]  # the resamples holding both sales have its one value; the rest, none
    assert cod.value is not None and cod.low in (None, pytest.approx(cod.value))
    one = evaluation.evaluate(sales(price[:1], estimate[:1]), resamples=100)
    assert one.resamples == 0 and one.stats["median_ratio"].value == pytest.approx(estimate[0] / price[0])


def test_groups_are_each_grouping_columns_values_in_order() -> None:
    price, estimate = holdout(900, seed=6)
    areas = [str(i % 12) for i in range(900)]
    towns = ["north" if i % 2 else "south" for i in range(900)]
    found = evaluation.evaluate(sales(price, estimate, area=areas, township=towns), resamples=50)
    assert [(g.column, g.label) for g in found.groups] == [("area", str(i)) for i in range(12)] + [
        ("township", "north"),
        ("township", "south"),
    ]
    keep = ~evaluation.trimmed(price, estimate)
    mask = np.array(towns) == "north"
    north = found.groups[12]
    expected = plain(price[mask], estimate[mask], keep[mask])  # trimmed once, over the whole holdout
    close({k: s.value for k, s in north.stats.items()}, expected)
    assert north.n == mask.sum() and north.n_ratio_study == (keep & mask).sum()


def test_intervals_hold_the_point_and_passes_use_the_fixed_ranges() -> None:
    price, estimate = holdout(4000, seed=7)
    found = evaluation.evaluate(sales(price, estimate))
    assert found.resamples == evaluation.RESAMPLES >= 1000
    for key, stat in found.stats.items():
        assert stat.low is not None and stat.high is not None and stat.value is not None
        assert stat.low <= stat.value <= stat.high, key
    cod = found.stats["cod"]
    assert cod.range == (5.0, 15.0) and cod.passed == (5.0 < cod.value <= 15.0)  # type: ignore[operator]
    assert found.stats["rmse"].passed is None and found.stats["rmse"].range is None


def test_the_same_predictions_give_the_same_answer_whatever_the_chunks_and_row_order() -> None:
    price, estimate = holdout(3000, seed=8)
    first = evaluation.evaluate(sales(price, estimate), resamples=100)
    shuffled = np.random.default_rng(1).permutation(3000)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(evaluation, "CHUNK_CELLS", 7 * 3000)
        again = evaluation.evaluate(sales(price, estimate), resamples=100)
    for key in STATISTICS:  # the same resamples; sums may round apart in the last bit
        a, b = again.stats[key], first.stats[key]
        assert (a.value, a.low, a.high) == pytest.approx((b.value, b.low, b.high), rel=1e-12), key
    ids = [f"s{i}" for i in range(3000)]
    this, base = Sales(ids, price, estimate), Sales(ids, price, estimate * 1.01)
    moved = Sales([ids[i] for i in shuffled], price[shuffled], (estimate * 1.01)[shuffled])
    in_order = evaluation.evaluate(this, base, resamples=100).paired
    reordered = evaluation.evaluate(this, moved, resamples=100).paired
    assert isinstance(in_order, evaluation.Paired) and in_order == reordered


# -- the paired comparison --------------------------------------------------------------------


def test_a_run_against_itself_changes_nothing() -> None:
    price, estimate = holdout(2000, seed=9)
    paired = evaluation.evaluate(sales(price, estimate), sales(price, estimate), resamples=200).paired
    assert isinstance(paired, evaluation.Paired)
    assert {c.verdict for c in paired.changes.values()} == {"same"}
    assert all(c.delta == 0 and c.low == 0 and c.high == 0 for c in paired.changes.values())


def test_a_better_model_is_called_better_and_mains_numbers_are_computed() -> None:
    price, estimate = holdout(3000, seed=10, spread=0.25)
    better = price * np.exp(np.random.default_rng(11).normal(0, 0.08, 3000))
    found = evaluation.evaluate(sales(price, better), sales(price, estimate), resamples=300)
    paired = found.paired
    assert isinstance(paired, evaluation.Paired) and paired.n == 3000
    for key in ("rmse", "mae", "mape", "mdape", "r2", "cod"):
        assert paired.changes[key].verdict == "better", key
        assert paired.changes[key].low <= paired.changes[key].delta <= paired.changes[key].high
    alone = evaluation.evaluate(sales(price, estimate), resamples=0)
    assert paired.base["cod"].value == pytest.approx(alone.stats["cod"].value)
    this_rmse, main_rmse = found.stats["rmse"].value, alone.stats["rmse"].value
    assert this_rmse is not None and main_rmse is not None
    assert paired.changes["rmse"].delta == pytest.approx(this_rmse - main_rmse)


@pytest.mark.parametrize(
    ("base", "reason"),
    [
        (Sales(["a", "b", "c"], np.array([1.0, 2, 3]), np.array([1.0, 2, 3])), "different sales"),
        (Sales(["a", "b"], np.array([1.0, 5]), np.array([1.0, 2])), "different prices"),
        (Sales(["a", "a"], np.array([1.0, 2]), np.array([1.0, 2])), "twice"),
    ],
)
def test_holdouts_that_cant_be_paired_say_why(base: Sales, reason: str) -> None:
    this = Sales(["a", "b"], np.array([1.0, 2.0]), np.array([1.1, 2.1]))
    found = evaluation.evaluate(this, base, resamples=10).paired
    assert isinstance(found, str) and reason in found


def test_a_million_sales_are_counted_in_bounded_chunks() -> None:
    chunks = list(evaluation._chunks(1000, 1_000_000))
    assert sum(chunks) == 1000 and max(chunks) * 1_000_000 * 4 <= 256 * 2**20  # float32 counts
    assert list(evaluation._chunks(1000, 5000)) == [256, 256, 256, 232]


def test_trimming_is_iaaos_three_iqr_on_linear_quartiles() -> None:
    ratio = np.array([0.8, 0.85, 0.9, 0.95, 1.0, 1.0, 1.05, 1.1, 1.15, 1.2, 1.75, 0.1, 1.95])
    flags = evaluation.trimmed(np.ones(ratio.size), ratio)
    q1, q3 = np.quantile(ratio, [0.25, 0.75])
    assert list(flags) == list((ratio < q1 - 3 * (q3 - q1)) | (ratio > q3 + 3 * (q3 - q1)))
    assert list(np.flatnonzero(flags)) == [11, 12]  # 1.75 stays: within 3 x IQR (1.5 x would trim it)
    assert not evaluation.trimmed(np.ones(2), np.array([1.0, 9.0])).any()  # fewer than 3 sales
