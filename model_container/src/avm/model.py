"""Train LightGBM (default) or XGBoost on log(sale price); pick the device."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .config import ConfigError, Params


def gpu_present(env: dict[str, str] | None = None) -> bool:
    """Cheap check for a usable NVIDIA GPU: CUDA_VISIBLE_DEVICES, then `nvidia-smi -L`."""
    env = dict(os.environ) if env is None else env
    visible = env.get("CUDA_VISIBLE_DEVICES")
    if visible is not None and visible.strip() in ("", "-1", "none", "void", "NoDevFiles"):
        return False
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return False
    try:
        out = subprocess.run([smi, "-L"], capture_output=True, text=True, timeout=15, check=False)
    except (OSError, subprocess.SubprocessError):
        return False
    return out.returncode == 0 and "GPU" in out.stdout


def xgboost_has_cuda() -> bool:
    import xgboost as xgb

    return bool(xgb.build_info().get("USE_CUDA", False))


@dataclass(frozen=True)
class DeviceChoice:
    requested: str  # params.device: auto | cpu | cuda
    use: str  # cpu | cuda: what training is configured with
    reason: str


def choose_device(
    library: str, requested: str, queue_device: str, *, gpu: bool | None = None
) -> DeviceChoice:
    """Resolve params.device against the hardware and the library build.

    `auto` uses CUDA when a GPU is present and the library can use it (XGBoost built with
    CUDA, i.e. the `xgboost` package of the GPU image; the LightGBM wheel has no CUDA).
    `cuda` on a machine or build without CUDA is a configuration error (exit 2).
    """
    if requested == "cpu":
        return DeviceChoice(requested, "cpu", "params.device=cpu")
    has_gpu = gpu_present() if gpu is None else gpu
    if library == "lightgbm":
        if requested == "cuda":
            raise ConfigError("params: device=cuda needs library=xgboost (the LightGBM wheel is CPU-only)")
        return DeviceChoice(requested, "cpu", "LightGBM wheel is CPU-only")
    cuda_build = xgboost_has_cuda()
    if has_gpu and cuda_build:
        return DeviceChoice(requested, "cuda", "GPU present and XGBoost built with CUDA")
    why = "no GPU found" if not has_gpu else "this XGBoost build (xgboost-cpu) has no CUDA"
    if requested == "cuda":
        raise ConfigError(f"params: device=cuda but {why} (MODELRUN_DEVICE={queue_device})")
    return DeviceChoice(requested, "cpu", why)


@dataclass
class Trained:
    library: str
    device_used: str
    train_seconds: float
    booster: Any
    model_file: str  # file name under artifacts/
    effective_params: dict[str, Any]

    def predict_log(self, x: pd.DataFrame) -> np.ndarray:
        if self.library == "lightgbm":
            return np.asarray(self.booster.predict(x, num_threads=self.effective_params["num_threads"]))
        import xgboost as xgb

        dm = xgb.DMatrix(x, enable_categorical=True, nthread=self.effective_params["nthread"])
        return np.asarray(self.booster.predict(dm))

    def feature_importance(self) -> pd.Series:
        """Total gain per feature, sorted descending."""
        if self.library == "lightgbm":
            gains = self.booster.feature_importance(importance_type="gain")
            s = pd.Series(gains, index=self.booster.feature_name(), dtype=float)
        else:
            s = pd.Series(self.booster.get_score(importance_type="total_gain"), dtype=float)
        return s.sort_values(ascending=False)

    def save(self, path: Path) -> None:
        self.booster.save_model(str(path))


def train(params: Params, device: DeviceChoice, threads: int, x: pd.DataFrame, y: np.ndarray) -> Trained:
    if params.library == "lightgbm":
        return _train_lightgbm(params, threads, x, y)
    return _train_xgboost(params, device, threads, x, y)


def _train_lightgbm(params: Params, threads: int, x: pd.DataFrame, y: np.ndarray) -> Trained:
    import lightgbm as lgb

    p: dict[str, Any] = {
        **params.model_params,
        "num_threads": threads,
        "seed": params.seed,
        "device_type": "cpu",
        "deterministic": True,
        "force_row_wise": True,
    }
    p.setdefault("verbosity", -1)
    ds = lgb.Dataset(x, label=y, categorical_feature=params.categorical, free_raw_data=False)
    t0 = time.perf_counter()
    booster = lgb.train(p, ds, num_boost_round=params.num_boost_round)
    seconds = time.perf_counter() - t0
    return Trained("lightgbm", "cpu", seconds, booster, "model.txt", p)


def _train_xgboost(
    params: Params, device: DeviceChoice, threads: int, x: pd.DataFrame, y: np.ndarray
) -> Trained:
    import xgboost as xgb

    p: dict[str, Any] = {**params.model_params, "device": device.use, "nthread": threads, "seed": params.seed}
    dtrain = xgb.QuantileDMatrix(x, label=y, enable_categorical=True, nthread=threads)
    t0 = time.perf_counter()
    booster = xgb.train(p, dtrain, num_boost_round=params.num_boost_round)
    seconds = time.perf_counter() - t0
    # What XGBoost actually trained on, from the booster's own configuration.
    config = json.loads(booster.save_config())
    used = str(config["learner"]["generic_param"].get("device", device.use))
    device_used = "cuda" if used.startswith("cuda") or used.startswith("gpu") else "cpu"
    return Trained("xgboost", device_used, seconds, booster, "model.json", p)
