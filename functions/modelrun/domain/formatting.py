"""Numbers as reviewers read them: each statistic in its own unit and precision, everywhere.

RMSE and MAE are whole dollars with thousands separators (no sign: the metric says it); MAPE
and MdAPE percent (their changes percentage points); R², the median ratio and the IAAO
statistics a fixed number of decimals. A value, its interval and its change share one
precision, so ``14.03 (13.03 to 15.37)`` never sits beside ``12.629``. Ranges read
``0.98 to 1.03``: a hyphen between numbers that may be negative (``-0.05-0.05``) reads as
arithmetic.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

METRIC_LABELS = {
    "rmse": "RMSE",
    "mae": "MAE",
    "mape": "MAPE",
    "mdape": "MdAPE",
    "r2": "R²",
    "median_ratio": "Median ratio",
}
RATIO_LABELS = {"cod": "COD", "prd": "PRD", "prb": "PRB", "mki": "MKI"}
LABELS = METRIC_LABELS | RATIO_LABELS
DASH = "—"
_STANDARD = re.compile(r"^\s*(-?\d+(?:\.\d+)?)\s*-\s*(-?\d+(?:\.\d+)?)\s*$")


@dataclass(frozen=True)
class Unit:
    decimals: int
    percent: bool = False


UNITS = {
    "rmse": Unit(0),
    "mae": Unit(0),
    "mape": Unit(2, percent=True),
    "mdape": Unit(2, percent=True),
    "r2": Unit(3),
    "median_ratio": Unit(3),
    "cod": Unit(2),
    "prd": Unit(3),
    "prb": Unit(3),
    "mki": Unit(3),
}
_GENERIC = Unit(3)


def _finite(value: float | None) -> bool:
    return value is not None and math.isfinite(value)


def _plain(value: float, unit: Unit, signed: bool, keep_sign: bool = False) -> str:
    text = f"{abs(value):,.{unit.decimals}f}"
    # A value that rounds to zero has no sign ("-0.000"), except an interval's bound: "+0.000"
    # says the interval stays above 0 where "0.000" would read as touching it.
    shown = keep_sign or text.strip("0.,") != ""
    sign = "-" if value < 0 and shown else "+" if signed and value > 0 and shown else ""
    return sign + text


def _number(key: str, number: float | None, *, signed: bool) -> str:
    if number is None or not math.isfinite(number):
        return DASH
    unit = UNITS.get(key, _GENERIC)
    suffix = (" pp" if signed else "%") if unit.percent else ""  # a percentage's change is in points
    return _plain(number, unit, signed=signed) + suffix


def value(key: str, number: float | None) -> str:
    """A statistic's value in its unit: ``244,811``, ``16.05%``, ``0.917``."""
    return _number(key, number, signed=False)


def delta(key: str, number: float | None) -> str:
    """A change of a statistic, signed, at the value's precision (percentages: in points)."""
    return _number(key, number, signed=True)


def interval(key: str, low: float | None, high: float | None, *, change: bool = False) -> str:
    """An interval at the value's precision: ``13.03 to 15.37``, ``-2,050 to -512``."""
    if not _finite(low) or not _finite(high):
        return DASH
    assert low is not None and high is not None
    unit = UNITS.get(key, _GENERIC)
    if change:
        # A bound that rounds to zero gets more digits (up to three), both bounds alike, so
        # "+0.000 to +0.002" reads "+0.0002 to +0.0020": the interval visibly excludes 0.
        for extra in range(4):
            shown = Unit(unit.decimals + extra, unit.percent)
            if all(b == 0 or f"{abs(b):.{shown.decimals}f}".strip("0.,") for b in (low, high)):
                break
        bounds = f"{_plain(low, shown, True, keep_sign=True)} to {_plain(high, shown, True, keep_sign=True)}"
        return bounds + (" pp" if unit.percent else "")
    suffix = "%" if unit.percent else ""
    return f"{_plain(low, unit, False)}{suffix} to {_plain(high, unit, False)}{suffix}"


def _shortest(number: float) -> str:
    # The fewest decimals (at least one) that write the number exactly as the standard gives it.
    for decimals in range(1, 7):
        text = f"{number:.{decimals}f}"
        if float(text) == number:
            return text
    return f"{number:g}"


def standard_range(low: float | None, high: float | None) -> str:
    """An IAAO range as the standard writes it: ``5.0 to 15.0``, ``-0.05 to 0.05``."""
    if not _finite(low) or not _finite(high):
        return DASH
    assert low is not None and high is not None
    return f"{_shortest(low)} to {_shortest(high)}"


def stated_range(bounds: tuple[float, float] | None, standard: str | None) -> str | None:
    """An IAAO range from its bounds, else from the model's words when they read "low-high"
    ("0.98-1.03" reads "0.98 to 1.03"); None when neither gives one (the caller shows the words)."""
    if bounds is not None:
        return standard_range(*bounds)
    found = _STANDARD.match(standard or "")
    return standard_range(float(found.group(1)), float(found.group(2))) if found else None


def reported(number: float) -> str:
    """A number the model reported itself (no unit modelrun knows): up to 4 significant decimals."""
    if not math.isfinite(number):
        return DASH
    return f"{number:,.0f}" if abs(number) >= 1000 else f"{number:.4g}"


def percent_change(number: float | None, base: float | None) -> str:
    """The relative change, one decimal: ``-0.5%`` (``±0%`` when it rounds to nothing)."""
    if not _finite(number) or not _finite(base) or not base:
        return DASH
    assert number is not None and base is not None
    pct = (number - base) / abs(base) * 100
    return "±0%" if abs(pct) < 0.05 else f"{pct:+.1f}%"


def count(number: int | float | None) -> str:
    if not _finite(None if number is None else float(number)):
        return DASH
    assert number is not None
    return f"{round(number):,}"


def duration(seconds: float | None) -> str:
    if seconds is None:
        return DASH
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes}m" if hours else f"{minutes}m {secs}s" if minutes else f"{secs}s"


def dollars_short(amount: float, digits: int = 3) -> str:
    """A sale price for a chart axis: ``$420k``, ``$1.25M`` (``digits=2``: ``$1.3M``)."""
    if amount >= 1_000_000:
        decimals = 2 if digits >= 3 else 1
        return f"${amount / 1_000_000:.{decimals}f}M".replace(f".{'0' * decimals}M", "M")
    if amount >= 1_000:
        return f"${amount / 1_000:.0f}k"
    return f"${amount:.0f}"
