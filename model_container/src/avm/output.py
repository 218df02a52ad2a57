"""The container contract's output side: write results under MODELRUN_RESULTS_URI.

Results are staged in a local directory first, then published: artifacts first and
metrics.json last, so a reader that sees metrics.json sees a complete run.
The S3 endpoint comes from boto3's own configuration (AWS_ENDPOINT_URL and friends).
"""

from __future__ import annotations

import mimetypes
import shutil
from collections.abc import Callable
from pathlib import Path

from .config import ResultsLocation

CONTENT_TYPES = {
    ".json": "application/json",
    ".parquet": "application/vnd.apache.parquet",
    ".txt": "text/plain",
    ".png": "image/png",
    ".ubj": "application/ubjson",
    ".gz": "application/gzip",
    ".yaml": "application/yaml",
}


def _files_in_publish_order(staging: Path) -> list[Path]:
    files = sorted(p for p in staging.rglob("*") if p.is_file())
    return [p for p in files if p.name != "metrics.json"] + [p for p in files if p.name == "metrics.json"]


def publish(staging: Path, results: ResultsLocation, log: Callable[[str], None]) -> list[str]:
    """Copy or upload everything under `staging`; return the URIs written."""
    written: list[str] = []
    if results.scheme == "file":
        assert results.path is not None
        for src in _files_in_publish_order(staging):
            rel = src.relative_to(staging).as_posix()
            dest = results.path / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, dest)
            written.append(results.join(rel))
        return written

    import boto3

    s3 = boto3.client("s3")
    for src in _files_in_publish_order(staging):
        rel = src.relative_to(staging).as_posix()
        key = results.prefix + rel
        ctype = (
            CONTENT_TYPES.get(src.suffix) or mimetypes.guess_type(src.name)[0] or "application/octet-stream"
        )
        s3.upload_file(str(src), results.bucket, key, ExtraArgs={"ContentType": ctype})
        written.append(f"s3://{results.bucket}/{key}")
        log(f"uploaded s3://{results.bucket}/{key} ({src.stat().st_size} bytes)")
    return written
