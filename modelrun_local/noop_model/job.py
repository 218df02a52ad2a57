"""A no-op model that honours the container contract, for tests and benchmarks.

Pushed as a local image (``LocalRuntime.push_image(NOOP_MODEL_DIR, ...)``) and run by the
request's command override: ``python job.py MODE [ARG]`` where MODE is
- ``ok``: write its holdout predictions (predictions.csv.gz: 20 fixed sales, so every run's
  holdout is the same and the report pairs them) and a metrics.json of contract v2
  (functions/modelrun/schemas/metrics.v2.schema.json) naming them, and exit 0;
- ``false-metrics``: as ``ok``, but metrics.json also claims RMSE 1 and COD 31 (modelrun computes
  them from the predictions: the report shows its own and says the model's disagree);
- ``fail``: print a few log lines (one of them hostile Markdown/HTML) and exit 3;
- ``sleep SECONDS``: sleep, then as ``ok``;
- ``wait-for PATH``: wait (up to 60 s) until PATH exists, then as ``ok``;
- ``worse``: as ``ok``, but its estimates stray four times as far from the prices (the paired
  comparison with an ``ok`` run finds the errors and COD worse);
- ``tamper RUN_ID``: a hostile model: writes forged results (predictions all exact, RMSE 0) for
  another run where it can guess that run's results live, and its own metrics.json claiming to
  be that run;
- ``read S3_URI``: read an object (as the job's role: its repository's data grant), say how
  many bytes, then as ``ok``; exit 4 with AWS's error code if refused;
- ``secret NAME``: say how long the environment variable NAME is (never its value), then as
  ``ok``; exit 5 if it is not set.
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
own_metrics: list[dict[str, object]] = [{"name": "train_seconds", "value": 0.1, "unit": "s", "better": "lower"}]
if mode == "read":
    source_bucket, key = sys.argv[2].removeprefix("s3://").split("/", 1)
    try:
        body = boto3.client("s3").get_object(Bucket=source_bucket, Key=key)["Body"].read()
    except Exception as error:  # the job's answer is the error's code
        print(f"cannot read {sys.argv[2]}: {getattr(error, 'response', {}).get('Error', {}).get('Code', error)}")
        sys.exit(4)
    print(f"read {len(body)} bytes from {sys.argv[2]}", flush=True)
if mode == "secret":
    if sys.argv[2] not in os.environ:
        print(f"secret {sys.argv[2]}: not set", flush=True)
        sys.exit(5)
    print(f"secret {sys.argv[2]}: {len(os.environ[sys.argv[2]])} characters", flush=True)
if mode == "false-metrics":
    own_metrics += [{"name": "rmse", "value": 1.0}, {"name": "cod", "value": 31.0}]
doc: dict[str, object] = {
    "schema_version": "2",
    "run_id": os.environ["MODELRUN_RUN_ID"],
    "predictions": "predictions.csv.gz",  # its area column is not named a group: no by-area tables
    "metrics": own_metrics,
    "model": {
        "library": "placeholder",
        "device_requested": "auto",
        "device_used": "cpu",
        "threads": int(os.environ["MODELRUN_THREADS"]),
        "train_seconds": 0.1,
    },
    "data": {
        "source": "placeholder",
        "rows": 100,
        "n_train": 80,
        "holdout": {"from": "2016-01-01", "to": "2016-12-31"},
    },
}


def predictions(exact: bool = False) -> bytes:
    """20 sales, prices 300k to 680k, estimates within a few percent of them: the same every run."""
    rows = ["sale_id,sale_price,estimate,area"]
    for i in range(20):
        price = 300_000 + 20_000 * i
        ratio = 0.95 + (i * 7 % 11) / 100
        if mode == "worse":
            ratio = 1 + 4 * (ratio - 1)
        estimate = price if exact else price * ratio
        rows.append(f"s{i + 1},{price},{estimate},{1 + i % 2}")
    return gzip.compress(("\n".join(rows) + "\n").encode(), mtime=0)


bucket, prefix = os.environ["MODELRUN_RESULTS_URI"].removeprefix("s3://").split("/", 1)
s3 = boto3.client("s3")
if mode == "tamper":
    victim = sys.argv[2]
    doc = doc | {"run_id": victim}
    runs, owner, name, _, key = prefix.split("/")[:5]
    for guess in (f"runs/{victim}/", f"{runs}/{owner}/{name}/{victim}/", f"{runs}/{owner}/{name}/{victim}/{key}/"):
        try:
            s3.put_object(Bucket=bucket, Key=guess + "predictions.csv.gz", Body=predictions(exact=True))
            s3.put_object(Bucket=bucket, Key=guess + "metrics.json", Body=json.dumps(doc).encode())
        except Exception as error:  # refused: try the next guess
            print(f"refused s3://{bucket}/{guess}: {error}", flush=True)
            continue
        print(f"tampered with s3://{bucket}/{guess}", flush=True)
s3.put_object(Bucket=bucket, Key=prefix + "predictions.csv.gz", Body=predictions())
s3.put_object(Bucket=bucket, Key=prefix + "metrics.json", Body=json.dumps(doc).encode())
print("wrote metrics.json", flush=True)
