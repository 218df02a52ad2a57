"""The evaluation modelrun computes from a model's holdout predictions: one implementation for
every model, used by the collect step, ``modelrun check`` and the bench.

Accuracy over every holdout sale: RMSE and MAE (dollars), MAPE and MdAPE (percent), R², the
median ratio. The IAAO ratio study over the sales the trimming keeps: COD, PRD, PRB and MKI
(formulas as assesspy 2.0.2 computes them, checked against it in tests/model_container), each
with a percentile bootstrap interval and pass/fail against fixed ranges. Overall, by each
grouping column, and paired with main's run on the same sales.

Pure: numpy and the standard library, no I/O (tests/model_container loads it by path).

How the bootstrap stays fast at a million sales: a resample is a row of counts (how often each
sale was drawn), and every statistic is a weighted one over sales sorted once up front, so no
resample is ever materialised or sorted. Sums are matrix products of a chunk of count rows
(float32, exact) with per-sale feature columns built a block of sales at a time; a median reads
only a window of ranks around the original median (a resample's median lies within a few √n
ranks of it; a row where it does not is recomputed in full); PRB's regressor log2(e/med + y)
depends on each resample's median only through a short power series in med0/med - 1, whose
terms are more feature columns; MKI's ranks are one cumulative sum per row, carried from block
to block. Chunks of rows and blocks of sales bound the memory (docs/evaluation.md: the figures).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

Floats = NDArray[np.float64]
Counts = NDArray[np.floating[Any]]  # rows of counts per sale: float32 (exact) or float64

ACCURACY = ("rmse", "mae", "mape", "mdape", "r2", "median_ratio")
RATIO_STUDY = ("cod", "prd", "prb", "mki")
STATISTICS = ACCURACY + RATIO_STUDY
# Ranges as assesspy's *_met apply them (lower bound exclusive, upper inclusive): COD, PRD, PRB
# from the IAAO Standard on Ratio Studies (2013) 9.1 and 9.2.7 (COD: residential), MKI Quintos (2020).
STANDARDS: dict[str, tuple[float, float]] = {
    "cod": (5.0, 15.0),
    "prd": (0.98, 1.03),
    "prb": (-0.05, 0.05),
    "mki": (0.95, 1.05),
}
# What "better" means for a change: the distance from the ideal shrinks.
IDEAL: dict[str, float] = {
    "rmse": 0.0,
    "mae": 0.0,
    "mape": 0.0,
    "mdape": 0.0,
    "r2": 1.0,
    "median_ratio": 1.0,
    "cod": 0.0,
    "prd": 1.0,
    "prb": 0.0,
    "mki": 1.0,
}
# Ratio outliers: beyond TRIM_IQR_MULT x IQR outside the quartiles of the holdout's ratios
# (IAAO Standard on Ratio Studies, Appendix B.1, "extreme" outliers: assesspy.is_outlier's default).
TRIM_IQR_MULT = 3.0
TRIMMING = (
    f"ratio study (COD, PRD, PRB, MKI): sales whose ratio lies beyond {TRIM_IQR_MULT:g} x IQR outside the "
    "quartiles of the holdout's ratios are left out, once over the whole holdout (IAAO Standard on Ratio "
    "Studies, Appendix B.1); accuracy uses every holdout sale"
)
RESAMPLES = 1000
SEED = 20_260_101  # fixed: the same predictions always get the same resamples and intervals
CONFIDENCE = 0.95
CHUNK_CELLS = 64_000_000  # counts per chunk (resamples x sales): 256 MB of float32 at most
MAX_CHUNK_ROWS = 256
_TAYLOR_TERMS = 4  # PRB's series: error below |s|^5/5 in log2 units
_TAYLOR_LIMIT = 0.05  # rows whose median moved more (tiny samples) are computed directly
_COLUMNS = 17 + 4 * _TAYLOR_TERMS  # a sale's feature columns (_Side._features)
_BLOCK_CELLS = 1_000_000  # counts x sales in one block of a sweep: 8 MB, cache-friendly
_NAN = math.nan


def trimmed(price: Floats, estimate: Floats, mult: float = TRIM_IQR_MULT) -> NDArray[np.bool_]:
    """True where a sale's ratio is an outlier (linear quartiles, as pandas and assesspy take
    them); nothing is trimmed from fewer than 3 sales."""
    ratio = estimate / price
    if ratio.size < 3:
        return np.zeros(ratio.size, dtype=bool)
    q1, q3 = np.quantile(ratio, [0.25, 0.75])
    spread = mult * (q3 - q1)
    return np.asarray((ratio < q1 - spread) | (ratio > q3 + spread))


@dataclass(frozen=True)
class _Median:
    """A weighted median over the sales of ``mask``, read from a window of ranks."""

    order: NDArray[np.intp]  # sale positions of the masked sales, by value
    values: Floats  # their values, sorted
    lo: int  # the window of ranks [lo, hi) read per resample
    hi: int

    @classmethod
    def of(cls, values: Floats, mask: NDArray[np.bool_]) -> _Median:
        positions = np.flatnonzero(mask)
        order = positions[np.argsort(values[positions], kind="stable")]
        ordered = values[order]
        n = order.size
        half = int(3 * math.sqrt(n)) + 8  # about 4 standard deviations of the resampled median's rank
        lo, hi = max(0, n // 2 - half), min(n, n // 2 + half)
        # Ties never straddle an edge: every sale at or below the median is below hi or inside.
        while lo > 0 and ordered[lo - 1] == ordered[lo]:
            lo -= 1
        while 0 < hi < n and ordered[hi] == ordered[hi - 1]:
            hi += 1
        return cls(order, ordered, lo, hi)

    def below(self, n: int) -> Floats:
        """The feature column: 1 for the sales ranked below the window."""
        column = np.zeros(n)
        column[self.order[: self.lo]] = 1.0
        return column

    def below_values(self, n: int) -> Floats:
        column = np.zeros(n)
        column[self.order[: self.lo]] = self.values[: self.lo]
        return column

    def rows(
        self, w: Counts, total: Floats, below: Floats, below_sum: Floats | None = None
    ) -> tuple[Floats, Floats, Floats]:
        """Per row of counts ``w``: the median of the expanded sample (numpy's), and the count
        and sum of the values at or below it. ``total``: each row's count over the mask;
        ``below``/``below_sum``: its count and sum below the window (from the product)."""
        rows = w.shape[0]
        med, le_w, le_s = np.full(rows, _NAN), np.zeros(rows), np.zeros(rows)
        if self.order.size == 0:
            return med, le_w, le_s
        win = np.take(w, self.order[self.lo : self.hi], axis=1).astype(np.float64)  # take: faster than w[:, i]
        cum = np.cumsum(win, axis=1) + below[:, None]
        k1, k2 = np.floor((total - 1) / 2), np.floor(total / 2)
        ok = (below <= k1) & (cum[:, -1] > k2) & (total > 0)
        vals = self.values[self.lo : self.hi]
        if ok.any():
            c = cum[ok]
            i1 = np.argmax(c > k1[ok, None], axis=1)
            i2 = np.argmax(c > k2[ok, None], axis=1)
            m = (vals[i1] + vals[i2]) / 2
            med[ok] = m
            at_or_below = vals[None, :] <= m[:, None]
            inside = win[ok] * at_or_below
            le_w[ok] = below[ok] + inside.sum(axis=1)
            if below_sum is not None:
                le_s[ok] = below_sum[ok] + inside @ vals
        for r in np.flatnonzero(~ok & (total > 0)):  # outside the window: the whole row
            full = w[r, self.order].astype(np.float64)
            cum_r = np.cumsum(full)
            t = total[r]
            m = (self.values[np.argmax(cum_r > (t - 1) // 2)] + self.values[np.argmax(cum_r > t // 2)]) / 2
            med[r] = m
            at = self.values <= m
            le_w[r] = full[at].sum()
            le_s[r] = full[at] @ self.values[at]
        return med, le_w, le_s


class _Side:
    """One run's statistics under any rows of counts over its sales (all ones: as it is).

    ``price`` and ``estimate`` are in price order (ties as given), ``keep``: the ratio study's
    sales. ``values(w)`` returns one row of STATISTICS per row of ``w``; NaN where a statistic
    can't be computed (R² without spread, a ratio study of fewer than two distinct sales).

    The per-sale feature columns are built a block of sales at a time, never all at once: a
    million sales would need some 300 MB of them per run and group."""

    def __init__(self, price: Floats, estimate: Floats, keep: NDArray[np.bool_]) -> None:
        n = price.size
        self.n = n
        self.keep = keep.astype(np.float64)
        self.all_kept = bool(keep.all())
        self.n_kept = int(keep.sum())
        self.price, self.estimate = price, estimate
        self.by_price = np.column_stack([estimate, price])
        self.err = estimate - price
        self.ape = np.abs(self.err) / price * 100.0
        self.ratio = estimate / price
        everyone = np.ones(n, dtype=bool)
        self.ape_median = _Median.of(self.ape, everyone)
        self.ratio_median = _Median.of(self.ratio, everyone)
        self.kept_median = _Median.of(self.ratio, keep)
        self.below = np.column_stack(
            [m.below(n) for m in (self.ape_median, self.ratio_median, self.kept_median)]
            + [self.kept_median.below_values(n)]
        )
        self.yc = price - (float(price.mean()) if n else 0.0)  # centred: R²'s sums keep their precision
        # PRB: x = log2(e/med + y) = a + Σ_j c_j s^j v^j, s = med0/med - 1 (see the module's note).
        med0 = float(np.median(self.ratio[keep])) if keep.any() else 1.0
        self.med0 = med0
        u = self.ratio / med0
        self.v = u / (1.0 + u)
        a = np.log2(price + estimate / med0)
        self.ka = self.keep * (a - (float(a[keep].mean()) if keep.any() else 0.0))  # a shift: the same slope
        self.coef = np.array([(-1.0) ** (j + 1) / (j * math.log(2)) for j in range(1, _TAYLOR_TERMS + 1)])

    def _features(self, s0: int, s1: int) -> Floats:
        """The feature columns of sales s0..s1 (column-major: each column is written whole)."""
        terms = _TAYLOR_TERMS
        out = np.empty((s1 - s0, _COLUMNS), order="F")
        k, err, ratio = self.keep[s0:s1], self.err[s0:s1], self.ratio[s0:s1]
        yc, ka, v = self.yc[s0:s1], self.ka[s0:s1], self.v[s0:s1]
        out[:, 0] = 1.0
        np.multiply(err, err, out=out[:, 1])
        np.abs(err, out=out[:, 2])
        out[:, 3] = self.ape[s0:s1]
        out[:, 4] = yc
        np.multiply(yc, yc, out=out[:, 5])
        out[:, 6] = k
        np.multiply(k, ratio, out=out[:, 7])
        np.multiply(k, self.estimate[s0:s1], out=out[:, 8])
        np.multiply(k, self.price[s0:s1], out=out[:, 9])
        out[:, 10:14] = self.below[s0:s1]
        out[:, 14] = ka
        np.multiply(ka, ka, out=out[:, 15])
        np.multiply(ka, ratio, out=out[:, 16])
        power = k.copy()  # k v^p, p = 1..2J
        for p in range(2 * terms):
            power *= v
            out[:, 17 + p] = power
            if p < terms:
                np.multiply(ka, power, out=out[:, 17 + 2 * terms + p])  # (k v^p) a: k² = k
                np.multiply(ratio, power, out=out[:, 17 + 3 * terms + p])
        return out

    def _sweep(self, w: NDArray[np.float32]) -> tuple[Floats, Floats]:
        """Per row of counts: every feature's weighted sum, and Σ c(C - (c-1)/2) v over the
        ratio study in price order, for v the estimates and the prices (MKI's ranks: a sale
        drawn c times whose cumulative count ends at C holds ranks C-c+1..C)."""
        rows = w.shape[0]
        sums = np.zeros((rows, _COLUMNS))
        ranked = np.zeros((rows, 2))
        carry = np.zeros((rows, 1))
        step = max(1024, _BLOCK_CELLS // max(rows, 1))
        for s0 in range(0, self.n, step):
            s1 = min(self.n, s0 + step)
            block = w[:, s0:s1].astype(np.float64)
            part = block @ self._features(s0, s1)
            sums += part
            if not self.all_kept:
                block *= self.keep[s0:s1]
            # Σ c (carry + C - c/2 + 1/2) v: the carry and the 1/2 from the block's own sums.
            q = np.cumsum(block, axis=1)
            half = block * 0.5
            q -= half
            q *= block
            ranked += q @ self.by_price[s0:s1] + (carry + 0.5) * part[:, 8:10]
            carry = carry + part[:, 6:7]
        return sums, ranked

    def values(self, w: Counts) -> Floats:
        rows = w.shape[0]
        out = np.full((rows, len(STATISTICS)), _NAN)
        if self.n == 0:
            return out
        s, ranked = self._sweep(np.asarray(w, dtype=np.float32))
        (total, sse, sae, sape, sy, syy, nk, sr, se, sp, ape_lo, ratio_lo, kept_lo, kept_lo_sum) = s[:, :14].T
        with np.errstate(divide="ignore", invalid="ignore"):
            out[:, 0] = np.sqrt(sse / total)
            out[:, 1] = sae / total
            out[:, 2] = sape / total
            out[:, 3] = self.ape_median.rows(w, total, ape_lo)[0]
            sst = syy - sy * sy / total
            out[:, 4] = np.where(sst > 1e-12 * syy, 1.0 - sse / np.where(sst > 0, sst, 1.0), _NAN)
            out[:, 5] = self.ratio_median.rows(w, total, ratio_lo)[0]
            med, le_w, le_s = self.kept_median.rows(w, nk, kept_lo, kept_lo_sum)
            # Σ w|r - med| from the sums at or below the median: no per-sale pass.
            deviation = (sr - 2 * le_s) - med * (nk - 2 * le_w)
            out[:, 6] = 100.0 * deviation / nk / med
            out[:, 7] = (sr / nk) / (se / sp)
            out[:, 8] = self._prb(w, s[:, 14:], nk, sr, med)
            gini_e = (2.0 * ranked[:, 0] / se - (nk + 1)) / nk
            gini_p = (2.0 * ranked[:, 1] / sp - (nk + 1)) / nk
            out[:, 9] = np.where(gini_p != 0, gini_e / np.where(gini_p != 0, gini_p, 1.0), _NAN)
        # A ratio study needs two distinct sales at least (a resample may draw one sale only).
        if self.n_kept < 64:  # more sales can't all draw one (its chance: n^(1-n))
            distinct = ((w * self.keep) > 0).sum(axis=1)
            out[distinct < 2, 6:] = _NAN
        return out

    def _prb(self, w: Counts, sums: Floats, nk: Floats, sr: Floats, med: Floats) -> Floats:
        terms = _TAYLOR_TERMS
        sa, saa, sar = sums[:, 0], sums[:, 1], sums[:, 2]
        sv = sums[:, 3 : 3 + 2 * terms]  # Σ w v^p, p = 1..2J
        sav = sums[:, 3 + 2 * terms : 3 + 3 * terms]
        srv = sums[:, 3 + 3 * terms : 3 + 4 * terms]
        s = self.med0 / med - 1.0
        cs = self.coef[None, :] * s[:, None] ** np.arange(1, terms + 1)[None, :]  # c_j s^j
        sx = sa + (cs * sv[:, :terms]).sum(axis=1)
        sxx = saa + 2 * (cs * sav).sum(axis=1)
        for j in range(terms):
            for l in range(terms):  # noqa: E741 - the series' second index
                sxx = sxx + cs[:, j] * cs[:, l] * sv[:, j + l + 1]
        sxr = sar + (cs * srv).sum(axis=1)
        mean_x = sx / nk
        var_x = sxx / nk - mean_x * mean_x
        cov = sxr / nk - mean_x * sr / nk
        prb = cov / (med * var_x)
        direct = np.flatnonzero(np.abs(s) > _TAYLOR_LIMIT)
        for r in direct:  # a median far from the original's: the regressor itself
            wk = w[r].astype(np.float64) * self.keep
            x = np.log2(self.estimate / med[r] + self.price)
            tot = wk.sum()
            mx = (wk @ x) / tot
            vx = (wk @ (x * x)) / tot - mx * mx
            ratio = self.estimate / self.price
            prb[r] = ((wk @ (x * ratio)) / tot - mx * (wk @ ratio) / tot) / (med[r] * vx)
        spread = var_x > 1e-12 * np.maximum(1.0, mean_x * mean_x)
        prb[~spread] = _NAN
        return prb


def _count_rows(rng: np.random.Generator, rows: int, n: int) -> NDArray[np.float32]:
    """``rows`` resamples of ``n`` sales drawn with replacement, as counts per sale (float32 holds
    them exactly). Rows are counted a few at a time, as many as keep one count array within
    about 8 MB (in cache while it is converted)."""
    out = np.empty((rows, n), dtype=np.float32)
    batch = max(1, min(16, 1_000_000 // max(n, 1)))
    for r0 in range(0, rows, batch):
        k = min(batch, rows - r0)
        draws = rng.integers(0, n, size=(k, n))
        draws += (np.arange(k) * n)[:, None]  # row r's sales as bins r*n..r*n+n-1
        out[r0 : r0 + k] = np.bincount(draws.ravel(), minlength=k * n).reshape(k, n)
    return out


def _chunks(total: int, n: int) -> Iterator[int]:
    size = max(1, min(total, MAX_CHUNK_ROWS, CHUNK_CELLS // max(n, 1)))
    done = 0
    while done < total:
        step = min(size, total - done)
        yield step
        done += step


def _interval(draws: Floats, confidence: float) -> tuple[float, float] | None:
    """The percentile interval (numpy's linear quantiles, as assesspy's boot_ci through pandas);
    None where fewer than half the resamples have the statistic."""
    finite = draws[np.isfinite(draws)]
    if finite.size < max(2, draws.size // 2):
        return None
    tail = (1.0 - confidence) / 2
    low, high = np.quantile(finite, [tail, 1.0 - tail])
    return float(low), float(high)


def _finite(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


@dataclass(frozen=True)
class Stat:
    """One statistic: its value, interval, and for the ratio study the range and the verdict."""

    value: float | None
    low: float | None = None
    high: float | None = None
    range: tuple[float, float] | None = None
    passed: bool | None = None


def _stats(point: Floats, draws: Floats | None, confidence: float) -> dict[str, Stat]:
    out: dict[str, Stat] = {}
    for i, key in enumerate(STATISTICS):
        value = _finite(float(point[i]))
        ci = _interval(draws[:, i], confidence) if draws is not None and value is not None else None
        bounds = STANDARDS.get(key)
        passed = None
        if bounds is not None:
            passed = value is not None and bounds[0] < value <= bounds[1]
        out[key] = Stat(value, ci[0] if ci else None, ci[1] if ci else None, bounds, passed)
    return out


@dataclass(frozen=True)
class Sales:
    """A run's holdout predictions, validated (modelrun.domain.results reads them)."""

    sale_id: Sequence[str]
    price: Floats
    estimate: Floats
    groups: Mapping[str, Sequence[str]] = field(default_factory=dict)  # grouping column -> label per sale

    def __len__(self) -> int:
        return len(self.sale_id)


@dataclass(frozen=True)
class Group:
    column: str
    label: str
    n: int
    n_ratio_study: int
    stats: dict[str, Stat]


@dataclass(frozen=True)
class Change:
    """One statistic's change, this run minus main, with its paired interval and the verdict
    from the interval of the change in distance to the ideal."""

    delta: float
    low: float
    high: float
    verdict: str  # "better", "worse" or "same"


@dataclass(frozen=True)
class Paired:
    """The paired comparison with main's run over the same sales."""

    n: int
    changes: dict[str, Change]
    base: dict[str, Stat]  # main's statistics, computed from its predictions like this run's


@dataclass(frozen=True)
class Evaluation:
    n: int
    n_ratio_study: int
    stats: dict[str, Stat]
    groups: list[Group]
    resamples: int
    confidence: float
    seed: int
    paired: Paired | str | None = None  # None: nothing to compare with; str: why not compared
    trimming: str = TRIMMING


def pair(this: Sales, base: Sales) -> tuple[NDArray[np.intp], NDArray[np.intp]] | str:
    """The positions of the same sales in both holdouts, in one order (by price, then sale id,
    so row order never matters), or why they can't be paired (in words for the PR)."""
    mine, theirs = np.asarray(this.sale_id, dtype=str), np.asarray(base.sale_id, dtype=str)
    a, b = np.argsort(mine, kind="stable"), np.argsort(theirs, kind="stable")
    mine_sorted, theirs_sorted = mine[a], theirs[b]
    if (mine_sorted[1:] == mine_sorted[:-1]).any() or (theirs_sorted[1:] == theirs_sorted[:-1]).any():
        return "a sale id appears twice in a holdout"
    if mine.size != theirs.size or not np.array_equal(mine_sorted, theirs_sorted):
        shared = np.intersect1d(mine_sorted, theirs_sorted, assume_unique=True).size
        return (
            f"the holdouts are different sales ({mine.size:,} in this run's, {theirs.size:,} in main's, "
            f"{shared:,} in both)"
        )
    if not np.array_equal(this.price[a], base.price[b]):
        return "the holdouts have the same sales at different prices"
    if mine.size < 2:
        return "the holdout has fewer than 2 sales"
    order = np.argsort(this.price[a], kind="stable")  # a: by sale id, so ties by sale id
    return a[order], b[order]


def _labels(values: Sequence[str]) -> list[str]:
    # Numbers in their order ("2" before "10"), then names.
    return sorted(set(values), key=lambda a: (0, int(a), a) if a.isdigit() else (1, 0, a))


def _changes(
    this: Floats, base: Floats, d_this: Floats, d_base: Floats, confidence: float, resamples: int
) -> dict[str, Change]:
    ideal = np.array([IDEAL[k] for k in STATISTICS])
    deltas = d_this - d_base
    closer = np.abs(d_this - ideal) - np.abs(d_base - ideal)
    tail = (1.0 - confidence) / 2
    changes: dict[str, Change] = {}
    for i, key in enumerate(STATISTICS):
        point = this[i] - base[i]
        ok = np.isfinite(deltas[:, i])
        # An interval needs most resamples to have the statistic (a tiny ratio study may not).
        if not math.isfinite(point) or ok.sum() < max(2, resamples // 2):
            continue
        low, high = np.quantile(deltas[ok, i], [tail, 1.0 - tail])
        c_low, c_high = np.quantile(closer[ok, i], [tail, 1.0 - tail])
        verdict = "better" if c_high < 0 else "worse" if c_low > 0 else "same"
        changes[key] = Change(float(point), float(low), float(high), verdict)
    return changes


def evaluate(
    sales: Sales,
    base: Sales | None = None,
    resamples: int = RESAMPLES,
    seed: int = SEED,
    confidence: float = CONFIDENCE,
    groups: bool = True,
) -> Evaluation:
    """Every statistic of one run's holdout with its interval, overall and by each grouping
    column, and (``base``: main's holdout) the paired comparison with main.

    One set of resamples serves them all: each draws the holdout's sales with replacement once;
    this run's, main's and each group's statistics are computed on that same draw (a group's are
    its sales as drawn). Each run's trimming is its own, over its whole holdout."""
    price, estimate = np.asarray(sales.price, dtype=float), np.asarray(sales.estimate, dtype=float)
    paired = pair(sales, base) if base is not None else None
    if isinstance(paired, tuple):
        order, theirs = paired
    else:
        order, theirs = np.argsort(price, kind="stable"), None  # ties in the order given, as assesspy's
    keep = ~trimmed(price, estimate)
    sides = [_Side(price[order], estimate[order], keep[order])]
    if theirs is not None and base is not None:
        b_price, b_estimate = np.asarray(base.price, dtype=float), np.asarray(base.estimate, dtype=float)
        sides.append(_Side(b_price[theirs], b_estimate[theirs], ~trimmed(b_price, b_estimate)[theirs]))
    members: list[tuple[str, str, NDArray[np.intp]]] = []
    for column, labels in sales.groups.items() if groups else ():
        values, codes = np.unique(np.asarray(labels, dtype=str)[order], return_inverse=True)
        by_code = np.argsort(codes, kind="stable")  # each group's sales, still in price order
        bounds = np.searchsorted(codes[by_code], np.arange(values.size + 1))
        index = {str(label): by_code[bounds[i] : bounds[i + 1]] for i, label in enumerate(values)}
        members += [(column, label, index[label]) for label in _labels(list(index))]
    group_sides = [_Side(sides[0].price[m], sides[0].estimate[m], sides[0].keep[m] > 0) for _, _, m in members]
    n = len(order)
    ones = np.ones((1, n))
    points = [side.values(ones)[0] for side in sides]
    group_points = [g.values(np.ones((1, g.n)))[0] for g in group_sides]
    draws: list[list[Floats]] = [[] for _ in sides]
    group_draws: list[list[Floats]] = [[] for _ in group_sides]
    if resamples > 0 and n >= 2:
        rng = np.random.default_rng(seed)
        for rows in _chunks(resamples, n):
            w = _count_rows(rng, rows, n)
            for side, part in zip(sides, draws, strict=True):
                part.append(side.values(w))
            for (_, _, m), g, part in zip(members, group_sides, group_draws, strict=True):
                part.append(g.values(np.take(w, m, axis=1)))  # take: several times faster than w[:, m]

    def joined(parts: list[Floats]) -> Floats | None:
        return np.concatenate(parts) if parts else None

    found = [
        # One sale has no interval: its resamples only ever hold that sale.
        Group(column, label, int(m.size), int(g.keep.sum()), _stats(p, joined(d) if m.size >= 2 else None, confidence))
        for (column, label, m), g, p, d in zip(members, group_sides, group_points, group_draws, strict=True)
    ]
    compared: Paired | str | None = paired if isinstance(paired, str) else None
    if len(sides) == 2:
        d_this, d_base = joined(draws[0]), joined(draws[1])
        changes = (
            _changes(points[0], points[1], d_this, d_base, confidence, resamples)
            if d_this is not None and d_base is not None
            else {}
        )
        compared = Paired(n, changes, _stats(points[1], d_base, confidence))
    return Evaluation(
        n=n,
        n_ratio_study=int(keep.sum()),
        stats=_stats(points[0], joined(draws[0]), confidence),
        groups=found,
        resamples=resamples if n >= 2 else 0,
        confidence=confidence,
        seed=seed,
        paired=compared,
    )


def deciles(
    price: Floats,
    this: tuple[Floats, NDArray[np.bool_]],
    base: tuple[Floats, NDArray[np.bool_]] | None = None,
    groups: int = 10,
) -> list[tuple[float, float, int, float | None, float | None]]:
    """Median ratio over the ratio-study sales by sale-price decile (low, high, n, this run,
    main): what PRD, PRB and MKI summarise. Fewer groups than ten when there are fewer sales."""
    n = price.size
    order = np.argsort(price, kind="stable")
    k = min(groups, n)

    def median(side: tuple[Floats, NDArray[np.bool_]] | None, members: NDArray[np.intp]) -> float | None:
        if side is None:
            return None
        estimate, keep = side
        chosen = members[keep[members]]
        return float(np.median(estimate[chosen] / price[chosen])) if chosen.size else None

    out: list[tuple[float, float, int, float | None, float | None]] = []
    for g in range(k):
        members = order[g * n // k : (g + 1) * n // k]
        out.append(
            (
                float(price[members[0]]),
                float(price[members[-1]]),
                int(members.size),
                median(this, members),
                median(base, members),
            )
        )
    return out
