"""Time XGBoost training on CPU vs CUDA on the same data in one run and print the ratio.

    model_container/.venv/bin/python model_container/bench_device.py [--threads N] [--rounds N]

Uses params.yaml's XGBoost parameters, features and time split on the full King County data
(or --sample). CUDA is skipped, with a line saying why, when no GPU is present or the installed
XGBoost has no CUDA (the local env has xgboost-cpu; for the GPU run, set up the GPU flavour:
`uv sync --project model_container --frozen --no-group cpu --group gpu`).
The last line is one JSON object with the timings.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "src"))  # also works without the project installed

from avm.config import load_params  # noqa: E402
from avm.data import load_sales, subsample, time_split  # noqa: E402
from avm.model import gpu_present, xgboost_has_cuda  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--threads", type=int, default=int(os.environ.get("MODELRUN_THREADS") or os.cpu_count() or 1)
    )
    ap.add_argument("--rounds", type=int, default=None, help="boosting rounds (default: params.yaml)")
    ap.add_argument(
        "--repeat", type=int, default=1, help="time each device this many times, keep the fastest"
    )
    ap.add_argument("--sample", type=float, default=None, help="fraction of the data (default: all)")
    ap.add_argument("--params", type=Path, default=HERE / "params.yaml")
    args = ap.parse_args()

    import numpy as np
    import xgboost as xgb

    params = load_params(args.params, base_dir=HERE)
    raw = params.raw["xgboost"]
    rounds = args.rounds or int(raw["num_boost_round"])
    df = subsample(load_sales(params), args.sample, params.seed)
    split = time_split(df, params.holdout_months)
    x_tr, x_te = split.train[params.features], split.test[params.features]
    y_tr = np.log(split.train["sale_price"].to_numpy(dtype=float))
    y_te = split.test["sale_price"].to_numpy(dtype=float)
    print(
        f"data: {len(x_tr)} train / {len(x_te)} holdout sales, {len(params.features)} features; "
        f"xgboost {xgb.__version__}, {rounds} rounds, {args.threads} threads, "
        f"{platform.processor() or platform.machine()}",
        flush=True,
    )

    devices = ["cpu"]
    gpu, cuda_build = gpu_present(), xgboost_has_cuda()
    if gpu and cuda_build:
        devices.append("cuda")
    else:
        why = "no GPU found" if not gpu else "this XGBoost build has no CUDA (xgboost-cpu installed)"
        print(f"cuda: skipped ({why})", flush=True)

    result: dict[str, object] = {
        "rows_train": len(x_tr),
        "rows_test": len(x_te),
        "rounds": rounds,
        "threads": args.threads,
        "xgboost": xgb.__version__,
    }
    for device in devices:
        p = {**raw["params"], "device": device, "nthread": args.threads, "seed": params.seed}
        dtrain = xgb.QuantileDMatrix(x_tr, label=y_tr, enable_categorical=True, nthread=args.threads)
        if device == "cuda":  # CUDA context creation and kernel loading: not training time
            xgb.train(p, dtrain, num_boost_round=5)
        best = float("inf")
        for _ in range(max(1, args.repeat)):
            t0 = time.perf_counter()
            booster = xgb.train(p, dtrain, num_boost_round=rounds)
            best = min(best, time.perf_counter() - t0)
        cfg = json.loads(booster.save_config())
        used = cfg["learner"]["generic_param"].get("device", device)
        pred = np.exp(booster.predict(xgb.DMatrix(x_te, enable_categorical=True)))
        mdape = float(np.median(np.abs(pred - y_te) / y_te) * 100)
        print(f"{device}: train {best:.2f}s (device used: {used}), holdout MdAPE {mdape:.2f}%", flush=True)
        result[f"{device}_seconds"] = round(best, 3)
        result[f"{device}_mdape"] = round(mdape, 3)
    if "cuda_seconds" in result:
        ratio = float(result["cpu_seconds"]) / float(result["cuda_seconds"])  # type: ignore[arg-type]
        result["cpu_over_cuda"] = round(ratio, 2)
        print(f"ratio: cuda is {ratio:.1f}x faster than cpu ({args.threads} threads)", flush=True)
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
