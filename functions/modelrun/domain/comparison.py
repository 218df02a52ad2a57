"""Is a change against main real, or noise? A paired bootstrap over the sales both runs scored.

Both runs' holdout predictions are joined on the sale id. Each resample draws the shared sales
with replacement, once, and both runs' statistics are computed on that same draw, so what the
two runs have in common (which sales happen to be hard) cancels out of the difference. A change
is called better or worse only when its percentile interval excludes zero; otherwise it is
``same`` (shown as ≈). If the holdouts are not the same sales at the same prices, nothing is
paired and nothing is claimed.

Pure Python, standard library only: it runs in the CollectResults Lambda, whose package stays
free of numpy (the cold-start goal), and the model container's tests import it to check it
against their numpy and assesspy versions of the same formulas. A resample is a vector of
counts (how often each sale was drawn), so every statistic is a weighted one over the sales
sorted once up front: no resample is ever materialised or sorted.
"""

from __future__ import annotations

import math
import random
from bisect import bisect_right
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import accumulate, repeat
from operator import add, itemgetter, mul

STATISTICS = ("rmse", "mae", "mape", "mdape", "r2", "median_ratio", "cod", "prd", "prb", "mki")
# What "better" means for each statistic: the distance from its ideal shrinks. RMSE and the
# other errors: lower; R²: higher; the ratios: nearer 1 (PRB: nearer 0). COD: lower.
_IDEAL: dict[str, float] = {
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
SEED = 20_260_101  # fixed: the same two runs always get the same resamples and the same answer
CONFIDENCE = 0.95
DECILES = 10


@dataclass(frozen=True)
class Holdout:
    """One run's holdout predictions (``predictions.csv.gz``), column by column."""

    sale_id: Sequence[str]
    price: Sequence[float]
    estimate: Sequence[float]
    area: Sequence[str]
    trimmed: Sequence[bool]  # left out of the ratio study as an outlier

    def __len__(self) -> int:
        return len(self.sale_id)


@dataclass(frozen=True)
class Paired:
    """Two holdouts of the same sales, aligned (sorted by sale id, so row order never matters)."""

    price: list[float]
    this: tuple[list[float], list[bool]]  # estimate, trimmed
    base: tuple[list[float], list[bool]]


@dataclass(frozen=True)
class Change:
    """One statistic's change, this run minus main: the point value on the shared sales, its
    percentile interval, and the verdict from the interval of the change in distance to the ideal."""

    delta: float
    low: float
    high: float
    verdict: str  # "better", "worse" or "same"


def pair(this: Holdout, base: Holdout) -> Paired | str:
    """The two holdouts aligned, or why they can't be (said in words for the PR)."""
    mine = {sid: i for i, sid in enumerate(this.sale_id)}
    theirs = {sid: i for i, sid in enumerate(base.sale_id)}
    if len(mine) != len(this) or len(theirs) != len(base):
        return "a sale id appears twice in a holdout"
    shared = mine.keys() & theirs.keys()
    if len(shared) != len(mine) or len(shared) != len(theirs):
        return (
            f"the holdouts are different sales ({len(this):,} in this run's, {len(base):,} in main's, "
            f"{len(shared):,} in both)"
        )
    ids = sorted(shared)
    price = [this.price[mine[s]] for s in ids]
    if any(base.price[theirs[s]] != p for s, p in zip(ids, price, strict=True)):
        return "the holdouts have the same sales at different prices"
    if len(ids) < 2:
        return "the holdout has fewer than 2 sales"

    def side(h: Holdout, index: dict[str, int]) -> tuple[list[float], list[bool]]:
        return [float(h.estimate[index[s]]) for s in ids], [bool(h.trimmed[index[s]]) for s in ids]

    return Paired([float(p) for p in price], side(this, mine), side(base, theirs))


def _gather(order: Sequence[int]) -> Callable[[Sequence[int]], Sequence[int]]:
    """A C-speed ``lambda w: [w[i] for i in order]`` (itemgetter of one index returns a scalar)."""
    if len(order) == 1:
        only = order[0]
        return lambda w: (w[only],)
    if not order:
        return lambda w: ()
    get: Callable[[Sequence[int]], Sequence[int]] = itemgetter(*order)
    return get


def _median(values: Sequence[float], cumulative: Sequence[int], total: int) -> float:
    """Median of the expanded sample (each value repeated its count), as numpy.median takes it."""
    return (values[bisect_right(cumulative, (total - 1) // 2)] + values[bisect_right(cumulative, total // 2)]) / 2


class _Statistics:
    """One run's statistics under any weighting of its holdout sales (counts; all ones = as is).

    Accuracy over all sales: RMSE, MAE, MAPE and MdAPE (percent), R², median ratio. The ratio
    study over the sales its trimming kept: COD, PRD, PRB (the OLS slope of (r - med) / med on
    log2(estimate / med + price)), MKI (Gini of estimates ordered by price over Gini of prices)."""

    def __init__(self, price: Sequence[float], estimate: Sequence[float], trimmed: Sequence[bool]) -> None:
        n = len(price)
        self.n = n
        self.price = list(price)
        self.price2 = [y * y for y in price]
        err = [e - y for e, y in zip(estimate, price, strict=True)]
        self.err2 = [d * d for d in err]
        self.abs_err = [abs(d) for d in err]
        self.ape = [abs(d) / y * 100.0 for d, y in zip(err, price, strict=True)]
        ratio = [e / y for e, y in zip(estimate, price, strict=True)]
        ape_order = sorted(range(n), key=self.ape.__getitem__)
        self.ape_sorted = [self.ape[i] for i in ape_order]
        self.by_ape = _gather(ape_order)
        ratio_order = sorted(range(n), key=ratio.__getitem__)
        self.ratio_sorted = [ratio[i] for i in ratio_order]
        self.by_ratio = _gather(ratio_order)
        kept = [i for i in ratio_order if not trimmed[i]]
        self.kept_ratio = [ratio[i] for i in kept]
        self.kept_estimate = [estimate[i] for i in kept]
        self.kept_price = [price[i] for i in kept]
        self.by_kept = _gather(kept)
        # Ties in price are ordered by position (the sale id), so every resample ranks alike.
        by_price = [i for i in sorted(range(n), key=lambda i: (price[i], i)) if not trimmed[i]]
        self.price_order_estimate = [estimate[i] for i in by_price]
        self.price_order_price = [price[i] for i in by_price]
        self.by_kept_price = _gather(by_price)

    def values(self, w: Sequence[int]) -> list[float]:
        """Every statistic of STATISTICS, in that order (NaN where one can't be computed)."""
        nan = math.nan
        total = sum(w)
        sse = math.sumprod(w, self.err2)
        sy = math.sumprod(w, self.price)
        sst = math.sumprod(w, self.price2) - sy * sy / total
        out = [
            math.sqrt(sse / total),
            math.sumprod(w, self.abs_err) / total,
            math.sumprod(w, self.ape) / total,
            _median(self.ape_sorted, list(accumulate(self.by_ape(w))), total),
            1.0 - sse / sst if sst > 0 else nan,
            _median(self.ratio_sorted, list(accumulate(self.by_ratio(w))), total),
        ]
        wk = self.by_kept(w)
        cw = list(accumulate(wk))
        kept = cw[-1] if cw else 0
        # A ratio study needs two different sales at least (a resample may draw one sale only).
        if len(wk) - wk.count(0) < 2:
            return [*out, nan, nan, nan, nan]
        ratio = self.kept_ratio
        med = _median(ratio, cw, kept)
        sr = math.sumprod(wk, ratio)
        # Σ w|r - med| from the sums below the median (the ratios are sorted): no per-sale pass.
        split = bisect_right(ratio, med)
        w_lo = cw[split - 1] if split else 0
        s_lo = math.sumprod(wk[:split], ratio[:split])
        deviation = (sr - 2 * s_lo) - med * (kept - 2 * w_lo)
        cod = 100.0 * deviation / kept / med
        prd = (sr / kept) / (math.sumprod(wk, self.kept_estimate) / math.sumprod(wk, self.kept_price))
        # log2((e / med + y) / 2) less its constant 1: a shift leaves the slope as it is.
        x = list(map(math.log2, map(add, map(mul, self.kept_estimate, repeat(1.0 / med)), self.kept_price)))
        wx = list(map(mul, wk, x))
        mean_x = sum(wx) / kept
        var_x = math.sumprod(wx, x) / kept - mean_x * mean_x
        cov = math.sumprod(wx, ratio) / kept - mean_x * sr / kept
        prb = cov / (med * var_x) if var_x > 1e-12 * mean_x * mean_x else nan
        wp = self.by_kept_price(w)
        # Ranks 1..N of the expanded sample sorted by price: a sale drawn c times, ending at C,
        # holds ranks C-c+1..C, which sum to c*C - c(c-1)/2 (all C-speed maps, no Python loop).
        c_end = list(map(mul, wp, accumulate(wp)))
        c_sq = list(map(mul, wp, wp))

        def gini(values: list[float]) -> float:
            weighted = math.sumprod(wp, values)
            ranked = math.sumprod(c_end, values) - 0.5 * (math.sumprod(c_sq, values) - weighted)
            return (2.0 * ranked / weighted - (kept + 1)) / kept

        gini_price = gini(self.price_order_price)
        mki = gini(self.price_order_estimate) / gini_price if gini_price else nan
        return [*out, cod, prd, prb, mki]


def statistics(price: Sequence[float], estimate: Sequence[float], trimmed: Sequence[bool]) -> dict[str, float]:
    """The statistics of one holdout as it is (every sale once)."""
    return dict(zip(STATISTICS, _Statistics(price, estimate, trimmed).values([1] * len(price)), strict=True))


def _quantile(sorted_values: Sequence[float], q: float) -> float:
    """Linear interpolation between order statistics (numpy's default)."""
    position = q * (len(sorted_values) - 1)
    low = math.floor(position)
    high = min(low + 1, len(sorted_values) - 1)
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (position - low)


def _counts(rng: random.Random, n: int) -> list[int]:
    """How often each of ``n`` sales is drawn in ``n`` draws with replacement."""
    counts = [0] * n
    for i in rng.choices(range(n), k=n):
        counts[i] += 1
    return counts


def paired_bootstrap(
    paired: Paired, resamples: int, seed: int = SEED, confidence: float = CONFIDENCE
) -> dict[str, Change]:
    """Each statistic's change (this run minus main) with its percentile interval over
    ``resamples`` paired resamples; statistics that can't be computed are left out."""
    this = _Statistics(paired.price, *paired.this)
    base = _Statistics(paired.price, *paired.base)
    ones = [1] * len(paired.price)
    point = [a - b for a, b in zip(this.values(ones), base.values(ones), strict=True)]
    rng = random.Random(seed)  # noqa: S311 - resampling, not a secret
    deltas: list[list[float]] = [[] for _ in STATISTICS]
    closer: list[list[float]] = [[] for _ in STATISTICS]
    ideals = [_IDEAL[k] for k in STATISTICS]
    for _ in range(resamples):
        w = _counts(rng, len(ones))
        for k, (a, b, ideal) in enumerate(zip(this.values(w), base.values(w), ideals, strict=True)):
            if math.isfinite(a) and math.isfinite(b):
                deltas[k].append(a - b)
                closer[k].append(abs(a - ideal) - abs(b - ideal))
    tail = (1.0 - confidence) / 2
    changes: dict[str, Change] = {}
    for k, name in enumerate(STATISTICS):
        # An interval needs most resamples to have the statistic (a tiny ratio study may not).
        if not math.isfinite(point[k]) or len(deltas[k]) < max(2, resamples // 2):
            continue
        ordered, distance = sorted(deltas[k]), sorted(closer[k])
        low, high = _quantile(distance, tail), _quantile(distance, 1.0 - tail)
        verdict = "better" if high < 0 else "worse" if low > 0 else "same"
        changes[name] = Change(point[k], _quantile(ordered, tail), _quantile(ordered, 1.0 - tail), verdict)
    return changes


# Work per resample grows with the holdout: resamples are chosen so that the bootstrap stays
# within a few seconds of one vCPU at any holdout size the contract admits (README, "The
# comparison with main": the measured cost).
MAX_RESAMPLES = 1000
MIN_RESAMPLES = 200
WORK_BUDGET = 2_000_000  # resamples x sales


def resamples_for(n: int) -> int:
    """How many resamples a holdout of ``n`` sales gets: MAX_RESAMPLES while that fits the work
    budget, fewer (in hundreds) for larger holdouts, never fewer than MIN_RESAMPLES."""
    return max(MIN_RESAMPLES, min(MAX_RESAMPLES, WORK_BUDGET // max(n, 1) // 100 * 100))


@dataclass(frozen=True)
class Decile:
    """Sales in one sale-price decile and each run's median ratio over its ratio-study sales."""

    low: float
    high: float
    n: int
    this: float | None
    base: float | None


def _plain_median(values: list[float]) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def deciles(
    price: Sequence[float],
    this: tuple[Sequence[float], Sequence[bool]],
    base: tuple[Sequence[float], Sequence[bool]] | None = None,
) -> list[Decile]:
    """Median ratio by sale-price decile (vertical equity: what PRD, PRB and MKI summarise),
    for this run and, on the same sales, main. Sales split by price rank into ten near-equal
    groups; fewer groups when there are fewer than ten sales."""
    n = len(price)
    order = sorted(range(n), key=lambda i: (price[i], i))
    groups = min(DECILES, n)
    out: list[Decile] = []
    for g in range(groups):
        members = order[g * n // groups : (g + 1) * n // groups]

        def median_ratio(
            side: tuple[Sequence[float], Sequence[bool]] | None, members: list[int] = members
        ) -> float | None:
            if side is None:
                return None
            estimate, trimmed = side
            return _plain_median([estimate[i] / price[i] for i in members if not trimmed[i]])

        out.append(Decile(price[members[0]], price[members[-1]], len(members), median_ratio(this), median_ratio(base)))
    return out


def histogram(values: Sequence[float], low: float, high: float, bins: int) -> list[int]:
    """Counts of ``values`` in ``bins`` equal bins over [low, high); values outside go to the end bins."""
    counts = [0] * bins
    scale = bins / (high - low)
    for v in values:
        # the nudge keeps a value on an edge (1.0 with bins of 0.1) in the bin it starts
        counts[min(bins - 1, max(0, math.floor((v - low) * scale + 1e-9)))] += 1
    return counts
