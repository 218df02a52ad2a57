"""Helpers of the domain tests: a run request and its record (a PR of the sample repository),
a results report as the report path stores it, and readers of a comment's Markdown (its prose
outside code, its tables, its fenced blocks)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from modelrun.contracts import RunRequest
from modelrun.domain.run import RunRecord
from modelrun.domain.status import RunStatus
from tests.records import SHA, new_record
from tests.unit.builders import IMAGE

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def request(**overrides: Any) -> RunRequest:
    fields: dict[str, Any] = {
        "schema_version": "1",
        "kind": "run",
        "repository": "county-assessor/avm",
        "pr_number": 42,
        "head_sha": SHA,
        "head_ref": "feature/deeper-trees",
        "base_ref": "main",
        "image": IMAGE,
        "compute": "cpu",
        "triggered_by": "octocat",
        "event": "pull_request",
        "workflow": {"run_id": 9_000_002, "run_attempt": 1},
    }
    fields.update(overrides)
    return RunRequest.model_validate(fields)


def record(status: RunStatus = RunStatus.QUEUED, req: RunRequest | None = None, **fields: Any) -> RunRecord:
    base = new_record(req or request(), job_queue="modelrun-cpu", bucket="results", vcpus=2, memory_mib=8192, gpus=0)
    return base.model_copy(update={"status": status, **fields})


def metrics_report(**extra: Any) -> dict[str, Any]:
    report: dict[str, Any] = {
        "metrics": {"rmse": 81234.5, "mae": 50321.0, "mape": 9.8, "mdape": 7.1, "r2": 0.87, "median_ratio": 0.99},
        "ratio_study": {
            "cod": {"value": 9.1, "ci": [8.7, 9.6], "standard": "5.0-15.0", "pass": True},
            "prd": {"value": 1.04, "ci": [1.03, 1.05], "standard": "0.98-1.03", "pass": False},
        },
        "baseline": {
            "run_id": "avm-main-0000",
            "head_sha": "0" * 39 + "1",
            "metrics": {"rmse": 90000.0, "mae": 52000.0, "r2": 0.85, "median_ratio": 0.97},
            "ratio_study": {"cod": {"value": 10.2, "pass": True}},
        },
        "model": {"library": "lightgbm", "device_used": "cpu"},
        "data": {"n_train": 31000, "n_test": 8000},
        "report_url": "https://console.aws.amazon.com/s3/object/results?prefix=runs/x/report.html",
    }
    report.update(extra)
    return report


def outside_code(body: str) -> str:
    """The comment with fenced blocks and <code> elements removed: what GitHub parses as prose."""
    without_fences = re.sub(r"(?ms)^(`{3,})text\n.*?\n\1$", "", body)
    return re.sub(r"(?s)<code>.*?</code>", "", without_fences)


def table_rows(body: str) -> list[list[str]]:
    """Each Markdown table as its rows; a row's cells are split on unescaped pipes."""
    tables: list[list[str]] = []
    current: list[str] = []
    for line in body.splitlines():
        if line.startswith("|"):
            current.append(line)
        elif current:
            tables.append(current)
            current = []
    if current:
        tables.append(current)
    return tables


def cells(row: str) -> int:
    return len(re.findall(r"(?<!\\)\|", row)) - 1


def assert_tables_intact(body: str) -> None:
    tables = table_rows(body)
    assert tables, body
    for rows in tables:
        header = cells(rows[0])
        for row in rows:
            assert cells(row) == header, f"table row has {cells(row)} cells, header {header}: {row!r}"


def fenced_blocks(body: str) -> list[tuple[str, str]]:
    return re.findall(r"(?ms)^(`{3,})text\n(.*?)\n\1$", body)
