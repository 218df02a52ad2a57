"""What of a function's log reaches the local stack's terminal: trouble only."""

from __future__ import annotations

import json

import pytest

from modelrun_local.lambdas import _is_trouble


@pytest.mark.parametrize(
    ("line", "shown"),
    [
        (json.dumps({"level": "ERROR", "message": "boom"}), True),
        (json.dumps({"level": "CRITICAL", "message": "boom"}), True),
        (json.dumps({"level": "INFO", "message": "ERROR in the text is no error"}), False),
        (json.dumps({"level": "WARNING", "message": "slow"}), False),
        (json.dumps({"_aws": {"CloudWatchMetrics": []}, "Submitted": 1}), False),  # an EMF metric line
        ("Traceback (most recent call last):", True),
        ('{"level": "ERROR", "message": "cut', True),  # not JSON: shown
    ],
)
def test_only_error_records_and_non_json_lines_are_shown(line: str, shown: bool) -> None:
    assert _is_trouble(line) is shown
