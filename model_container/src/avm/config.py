"""The container contract's input side: environment variables and params.yaml.

Everything here is cheap (no numpy/pandas/lightgbm imports) so that bad input is reported
with exit code 2 in well under a second.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import yaml

DEFAULT_PARAMS = "params.yaml"
LIBRARIES = ("lightgbm", "xgboost")
DEVICES = ("auto", "cpu", "cuda")
QUEUE_DEVICES = ("cpu", "gpu")
# S3 bucket names: 3-63 chars of lowercase letters, digits, dots and hyphens.
_BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


class ConfigError(Exception):
    """Bad input or configuration: the container exits with code 2."""


@dataclass(frozen=True)
class ResultsLocation:
    """Where the results go: an S3 prefix or a local directory."""

    uri: str
    scheme: str  # "s3" | "file"
    bucket: str = ""  # s3 only
    prefix: str = ""  # s3 only: key prefix, "" or ending in "/"
    path: Path | None = None  # file only: absolute directory

    def join(self, relative: str) -> str:
        """The URI of a file under the results location."""
        return self.uri.rstrip("/") + "/" + relative


@dataclass(frozen=True)
class Env:
    run_id: str
    results: ResultsLocation
    threads: int
    queue_device: str  # what the job queue gives: "cpu" | "gpu"
    params_path: Path
    sample: float | int | None  # fraction (float in (0, 1]) or number of rows (int)


@dataclass(frozen=True)
class Params:
    library: str
    device: str
    seed: int
    data_path: Path
    features: list[str]
    categorical: list[str]
    holdout_months: int
    area_column: str  # the predictions' grouping column: modelrun computes every statistic by it
    num_boost_round: int
    model_params: dict[str, Any] = field(default_factory=dict)
    raw: dict[str, Any] = field(default_factory=dict)


def _require(env: Mapping[str, str], name: str) -> str:
    value = env.get(name, "").strip()
    if not value:
        raise ConfigError(f"missing required environment variable {name}")
    return value


def parse_results_uri(uri: str) -> ResultsLocation:
    """Accept `s3://bucket/prefix/` or `file:///absolute/dir/`."""
    parsed = urlparse(uri)
    if parsed.scheme == "s3":
        bucket = parsed.netloc
        if not _BUCKET_RE.match(bucket):
            raise ConfigError(f"MODELRUN_RESULTS_URI has an invalid S3 bucket name: {uri!r}")
        if parsed.query or parsed.fragment:
            raise ConfigError(f"MODELRUN_RESULTS_URI must not have a query or fragment: {uri!r}")
        prefix = parsed.path.lstrip("/")
        if prefix and not prefix.endswith("/"):
            prefix += "/"
        return ResultsLocation(uri=f"s3://{bucket}/{prefix}", scheme="s3", bucket=bucket, prefix=prefix)
    if parsed.scheme == "file":
        if parsed.netloc not in ("", "localhost"):
            raise ConfigError(f"MODELRUN_RESULTS_URI file URI must be file:///absolute/path/: {uri!r}")
        path = Path(unquote(parsed.path))
        if not path.is_absolute() or not parsed.path:
            raise ConfigError(f"MODELRUN_RESULTS_URI file URI must hold an absolute path: {uri!r}")
        return ResultsLocation(uri=path.as_uri().rstrip("/") + "/", scheme="file", path=path)
    raise ConfigError(f"MODELRUN_RESULTS_URI must start with s3:// or file:///, got {uri!r}")


def parse_sample(value: str) -> float | int:
    """An integer is a number of rows; anything else a fraction in (0, 1]."""
    text = value.strip()
    try:
        rows = int(text)
    except ValueError:
        pass
    else:
        if rows < 1:
            raise ConfigError(
                f"MODELRUN_SAMPLE must be a positive row count or a fraction in (0, 1]: {value!r}"
            )
        return rows
    try:
        frac = float(text)
    except ValueError:
        raise ConfigError(f"MODELRUN_SAMPLE is neither an integer nor a number: {value!r}") from None
    if not 0.0 < frac <= 1.0:
        raise ConfigError(f"MODELRUN_SAMPLE fraction must be in (0, 1]: {value!r}")
    return frac


def read_env(env: Mapping[str, str] | None = None) -> Env:
    env = os.environ if env is None else env
    run_id = _require(env, "MODELRUN_RUN_ID")
    if any(c.isspace() for c in run_id) or "/" in run_id or len(run_id) > 256:
        raise ConfigError(f"MODELRUN_RUN_ID must be a single token without '/' or spaces: {run_id!r}")
    results = parse_results_uri(_require(env, "MODELRUN_RESULTS_URI"))
    threads_text = _require(env, "MODELRUN_THREADS")
    try:
        threads = int(threads_text)
    except ValueError:
        raise ConfigError(f"MODELRUN_THREADS must be an integer, got {threads_text!r}") from None
    if threads < 1:
        raise ConfigError(f"MODELRUN_THREADS must be >= 1, got {threads}")
    queue_device = _require(env, "MODELRUN_DEVICE").lower()
    if queue_device not in QUEUE_DEVICES:
        raise ConfigError(f"MODELRUN_DEVICE must be one of {', '.join(QUEUE_DEVICES)}, got {queue_device!r}")
    params_path = Path(env.get("MODELRUN_PARAMS", "").strip() or DEFAULT_PARAMS)
    sample_text = env.get("MODELRUN_SAMPLE", "").strip()
    sample = parse_sample(sample_text) if sample_text else None
    return Env(
        run_id=run_id,
        results=results,
        threads=threads,
        queue_device=queue_device,
        params_path=params_path,
        sample=sample,
    )


# --- params.yaml -------------------------------------------------------------------------------

_RESERVED_MODEL_PARAMS = {"device", "device_type", "nthread", "num_threads", "n_jobs", "seed", "random_state"}
_TOP_KEYS = {
    "library",
    "device",
    "seed",
    "data",
    "features",
    "split",
    "by_area",
    "lightgbm",
    "xgboost",
}


def _get(d: Mapping[str, Any], key: str, kind: type | tuple[type, ...], where: str) -> Any:
    if key not in d:
        raise ConfigError(f"params: missing '{where}{key}'")
    value = d[key]
    # bool is an int subclass: never accept it where a number is meant.
    if isinstance(value, bool) and bool not in (kind if isinstance(kind, tuple) else (kind,)):
        raise ConfigError(f"params: '{where}{key}' must be {_kind_name(kind)}, got {value!r}")
    if not isinstance(value, kind):
        raise ConfigError(f"params: '{where}{key}' must be {_kind_name(kind)}, got {value!r}")
    return value


def _kind_name(kind: type | tuple[type, ...]) -> str:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return " or ".join(k.__name__ for k in kinds)


def _section(d: Mapping[str, Any], key: str) -> dict[str, Any]:
    value = _get(d, key, dict, "")
    return dict(value)


def load_params(path: Path, base_dir: Path | None = None) -> Params:
    """Read and validate params.yaml. Relative data paths resolve against `base_dir` (cwd)."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise ConfigError(f"params file not found: {path}") from None
    except OSError as exc:
        raise ConfigError(f"cannot read params file {path}: {exc}") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"params file {path} is not valid YAML: {exc}".replace("\n", " ")) from None
    if not isinstance(raw, dict):
        raise ConfigError(f"params file {path} must hold a mapping at the top level")
    unknown = sorted(set(raw) - _TOP_KEYS)
    if unknown:
        raise ConfigError(f"params: unknown top-level key(s) {unknown}; allowed: {sorted(_TOP_KEYS)}")

    library = _get(raw, "library", str, "")
    if library not in LIBRARIES:
        raise ConfigError(f"params: 'library' must be one of {LIBRARIES}, got {library!r}")
    device = _get(raw, "device", str, "")
    if device not in DEVICES:
        raise ConfigError(f"params: 'device' must be one of {DEVICES}, got {device!r}")
    seed = _get(raw, "seed", int, "")

    data = _section(raw, "data")
    data_path = Path(_get(data, "path", str, "data."))
    if not data_path.is_absolute():
        data_path = (base_dir or Path.cwd()) / data_path
    if not data_path.is_file():
        raise ConfigError(
            f"params: data file not found: {data_path} (relative paths resolve against the cwd)"
        )

    feats = _section(raw, "features")
    numeric = _get(feats, "numeric", list, "features.")
    categorical = _get(feats, "categorical", list, "features.")
    features = [*numeric, *categorical]
    if not features or not all(isinstance(f, str) and f for f in features):
        raise ConfigError("params: 'features.numeric' and 'features.categorical' must list column names")
    if len(set(features)) != len(features):
        raise ConfigError("params: a feature is listed twice in 'features'")

    split = _section(raw, "split")
    holdout_months = _get(split, "holdout_months", int, "split.")
    if not 1 <= holdout_months <= 60:
        raise ConfigError(f"params: 'split.holdout_months' must be in 1..60, got {holdout_months}")

    by_area = _section(raw, "by_area")
    area_column = _get(by_area, "column", str, "by_area.")

    lib = _section(raw, library)
    num_boost_round = _get(lib, "num_boost_round", int, f"{library}.")
    if num_boost_round < 1:
        raise ConfigError(f"params: '{library}.num_boost_round' must be >= 1, got {num_boost_round}")
    model_params = _get(lib, "params", dict, f"{library}.")
    reserved = _RESERVED_MODEL_PARAMS & set(model_params)
    if reserved:
        raise ConfigError(
            f"params: '{library}.params' must not set {sorted(reserved)}: use the top-level 'device' and "
            "'seed', and threads come from MODELRUN_THREADS"
        )

    return Params(
        library=library,
        device=device,
        seed=seed,
        data_path=data_path,
        features=features,
        categorical=list(categorical),
        holdout_months=holdout_months,
        area_column=area_column,
        num_boost_round=num_boost_round,
        model_params=dict(model_params),
        raw=raw,
    )
