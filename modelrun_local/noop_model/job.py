"""A no-op model that honours the container contract, for tests and benchmarks.

Pushed as a local image (``LocalRuntime.push_image(NOOP_MODEL_DIR, ...)``) and run by the
request's command override: ``python job.py MODE [ARG]`` where MODE is
- ``ok``: write a minimal metrics.json (model_container/metrics.schema.json) and the holdout
  predictions (artifacts/predictions.csv.gz: 20 fixed sales, so every run's holdout is the same
  and the report pairs them) and exit 0;
- ``fail``: print a few log lines (one of them hostile Markdown/HTML) and exit 3;
- ``sleep SECONDS``: sleep, then as ``ok``;
- ``wait-for PATH``: wait (up to 60 s) until PATH exists, then as ``ok``;
- ``worse``: as ``ok``, but its estimates stray four times as far from the prices (the paired
  comparison with an ``ok`` run finds the errors and COD worse) and it reports PRD failing;
- ``tamper RUN_ID``: a hostile model: writes forged metrics (RMSE 1) for another run where it
  can guess that run's results live, and its own metrics.json claiming to be that run.
"""

import gzip
import json
import os
import sys
import time

import boto3

mode = sys.argv[1] if len(sys.argv) > 1 else "ok"
print(f"placeholder model starting ({mode})", flush=True)
if mode == "fail":
    print("loading data", flush=True)
    print("<script>alert(1)</script> ping @someone ``` </details>", flush=True)
    sys.exit(3)
if mode == "sleep":
    time.sleep(float(sys.argv[2]))
if mode == "wait-for":
    deadline = time.time() + 60
    while not os.path.exists(sys.argv[2]) and time.time() < deadline:
        time.sleep(0.05)
stat = {"value": 9.5, "ci": [9.0, 10.0], "standard": "5.0-15.0", "pass": True}
doc = {
    "schema_version": "1",
    "run_id": os.environ["MODELRUN_RUN_ID"],
    "model": {
        "library": "lightgbm",
        "device_requested": "auto",
        "device_used": "cpu",
        "threads": int(os.environ["MODELRUN_THREADS"]),
        "train_seconds": 0.1,
        "params": {},
    },
    "data": {
        "source": "placeholder",
        "rows": 100,
        "n_train": 80,
        "n_test": 20,
        "holdout": {"from": "2016-01-01", "to": "2016-12-31"},
        "trimming": "none",
    },
    "metrics": {"rmse": 81234.5, "mae": 50321.0, "mape": 9.8, "mdape": 7.1, "r2": 0.87, "median_ratio": 0.99},
    "ratio_study": {
        "cod": stat,
        "prd": stat
        | {"value": 1.01, "standard": "0.98-1.03"}
        | ({"value": 1.04, "pass": False} if mode == "worse" else {}),
        "prb": stat | {"value": 0.01, "standard": "-0.05-0.05"},
        "mki": stat | {"value": 1.0, "standard": "0.95-1.05"},
    },
    "by_area": [],
    "artifacts": {
        "predictions": "artifacts/predictions.parquet",
        "model": "artifacts/model.txt",
        "plots": ["artifacts/plots/ratio.png"],
        "holdout": "artifacts/predictions.csv.gz",
        "params": "artifacts/params.yaml",
    },
}
# 20 sales, prices 300k to 680k, estimates within a few percent of them: the same every run.
rows = ["sale_id,sale_price,estimate,area,ratio_outlier"]
for i in range(20):
    price = 300_000 + 20_000 * i
    ratio = 0.95 + (i * 7 % 11) / 100
    if mode == "worse":
        ratio = 1 + 4 * (ratio - 1)
    rows.append(f"s{i + 1},{price},{price * ratio},{1 + i % 2},0")
holdout = gzip.compress(("\n".join(rows) + "\n").encode(), mtime=0)
bucket, prefix = os.environ["MODELRUN_RESULTS_URI"].removeprefix("s3://").split("/", 1)
s3 = boto3.client("s3")
if mode == "tamper":
    victim = sys.argv[2]
    forged_metrics = {"rmse": 1.0, "mae": 1.0, "mape": 0.1, "mdape": 0.1, "r2": 0.99, "median_ratio": 1.0}
    doc = doc | {"run_id": victim, "metrics": forged_metrics}
    for guess in (f"runs/{victim}/metrics.json", f"runs/{victim}/{prefix.split('/')[2]}/metrics.json"):
        s3.put_object(Bucket=bucket, Key=guess, Body=json.dumps(doc).encode())
        print(f"tampered with s3://{bucket}/{guess}", flush=True)
s3.put_object(Bucket=bucket, Key=prefix + "artifacts/predictions.csv.gz", Body=holdout)
s3.put_object(Bucket=bucket, Key=prefix + "artifacts/params.yaml", Body=b"num_leaves: 31\n")
s3.put_object(Bucket=bucket, Key=prefix + "metrics.json", Body=json.dumps(doc).encode())
print("wrote metrics.json", flush=True)
