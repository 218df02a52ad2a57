"""What a run's report keeps of its files, out of every job's reach (issue 21).

Every job holds the job role, which may write anywhere under ``runs/``: a run's write prefix is
only as private as its random key. So once a run finishes, CollectResults copies its files to
``reports/<run>/artifacts/`` (``naming.collected_prefix``), which no job role may write, and reads
them back only from there: this run's report, every later report that compares with it and the
PR's Artifacts link all see that copy, whatever any job writes afterwards.

Copy rather than checksums: a checksum recorded at collection would detect a later overwrite, but
the comparison would then be lost; the copy keeps it, and also keeps a GLACIER or SSE-C
overwrite from making the file unreadable. The copy is server-side (no bytes through the
function), so its cost is one request per file.
"""

from __future__ import annotations

from aws_lambda_powertools import Logger

from modelrun.domain import naming
from modelrun.domain.run import RunRecord
from modelrun.errors import Unreadable
from modelrun.ports import ResultsStore

logger = Logger(child=True)

MAX_FILES = 200  # a run's files copied at most; more are left out (and logged)
MAX_FILE_BYTES = 5 * 1024**3  # S3's limit for one CopyObject


def collected_uri(bucket: str, run_id: str) -> str:
    return f"s3://{bucket}/{naming.collected_prefix(run_id)}"


def as_collected(record: RunRecord, bucket: str) -> RunRecord:
    """The run as its reports read it: its files at the collected copy, not its write prefix."""
    return record.model_copy(update={"results_uri": collected_uri(bucket, record.run_id)})


def keep(results: ResultsStore, record: RunRecord, bucket: str) -> dict[str, str]:
    """Copy the run's files from its write prefix to its collected prefix; returns the files
    left out, by their path in the run's prefix, with why (the report says so where it matters)."""
    source_prefix = record.results_uri.removeprefix(f"s3://{bucket}/")
    target_prefix = naming.collected_prefix(record.run_id)
    left_out: dict[str, str] = {}
    for n, (key, size) in enumerate(sorted(results.sizes(record.results_uri).items())):
        path = key.removeprefix(source_prefix)
        if n >= MAX_FILES or size > MAX_FILE_BYTES:
            left_out[path] = f"{path} was not kept ({size} bytes; at most {MAX_FILES} files of {MAX_FILE_BYTES})"
            continue
        try:
            results.copy(f"s3://{bucket}/{key}", f"{target_prefix}{path}")
        except Unreadable as error:
            left_out[path] = str(error).replace(key, path)
    if left_out:
        logger.warning("run files not kept", extra={"run_id": record.run_id, "left_out": left_out})
    return left_out
