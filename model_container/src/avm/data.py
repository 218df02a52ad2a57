"""Load the sales, derive features, subsample and split by time."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .config import ConfigError, Params

REQUIRED_COLUMNS = ("sale_id", "sale_price", "sale_date")
DERIVED = ("sale_time",)


@dataclass(frozen=True)
class Split:
    train: pd.DataFrame
    test: pd.DataFrame
    holdout_from: pd.Timestamp  # first day of the holdout window (inclusive)
    holdout_to: pd.Timestamp  # last sale date in the data (inclusive)


def load_sales(params: Params) -> pd.DataFrame:
    path = params.data_path
    if not path.is_file():
        raise ConfigError(f"data file not found: {path}")
    df = pd.read_csv(path, parse_dates=["sale_date"], dtype={"pinx": str, "sale_id": str, "use_type": str})
    missing = [c for c in REQUIRED_COLUMNS if c not in df.columns]
    wanted = [f for f in params.features if f not in DERIVED and f not in df.columns]
    if params.area_column not in df.columns:
        wanted.append(params.area_column)
    if missing or wanted:
        raise ConfigError(f"data file {path.name} lacks column(s) {sorted(set(missing + wanted))}")
    df = df[df["sale_price"] > 0].copy()
    # Decimal year of the sale: lets the trees learn the market's movement over time.
    df["sale_time"] = df["sale_date"].dt.year + (df["sale_date"].dt.dayofyear - 1) / 365.25
    for col in params.categorical:
        df[col] = df[col].astype(str).astype("category")
    return df.sort_values(["sale_date", "sale_id"], kind="mergesort").reset_index(drop=True)


def subsample(df: pd.DataFrame, sample: float | int | None, seed: int) -> pd.DataFrame:
    """MODELRUN_SAMPLE: an int is a row count, a float a fraction; the time order is kept."""
    if sample is None:
        return df
    n = min(len(df), sample) if isinstance(sample, int) else max(1, round(len(df) * sample))
    if n >= len(df):
        return df
    rng = np.random.default_rng(seed)
    keep = np.sort(rng.choice(len(df), size=n, replace=False))
    return df.iloc[keep].reset_index(drop=True)


def time_split(df: pd.DataFrame, holdout_months: int) -> Split:
    """Holdout = sales after (latest sale date - holdout_months); train = everything before."""
    last = pd.Timestamp(df["sale_date"].max()).normalize()
    # (pd.DateOffset, not pd.Timedelta: Timestamp + Timedelta warns under numpy 2.5)
    start = last - pd.DateOffset(months=holdout_months) + pd.DateOffset(days=1)
    is_test = df["sale_date"] >= start
    train, test = df[~is_test], df[is_test]
    if len(train) < 10 or len(test) < 10:
        raise ConfigError(
            f"time split leaves {len(train)} training and {len(test)} holdout sales: "
            "need at least 10 of each (raise MODELRUN_SAMPLE or change split.holdout_months)"
        )
    return Split(
        train=train.reset_index(drop=True),
        test=test.reset_index(drop=True),
        holdout_from=start.normalize(),
        holdout_to=last.normalize(),
    )
