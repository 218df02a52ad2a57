"""The local runtime itself: runtimes one after another in one process, and what stop() leaves."""

from __future__ import annotations

import os
from pathlib import Path

from modelrun_local.runtime import LocalRuntime
from tests.integration.flow import REPOSITORY, Flow


def one_run(pr: int) -> tuple[str, int]:
    with LocalRuntime(parameters={"LogLevel": "ERROR"}) as runtime:
        flow = Flow.placeholder(runtime, Path("/nonexistent"))
        _, record = flow.run(pr=pr, run_id=9_100 + pr, mode=["ok"])
        return record["status"], len(runtime.github.comments(REPOSITORY, pr))


def test_a_second_runtime_in_the_same_process_starts_clean_and_cold() -> None:
    before = dict(os.environ)
    assert one_run(1) == ("SUCCEEDED", 1)
    # The handlers' cached clients (boto3, Powertools' secret provider, GitHub) must not point
    # at the first runtime's stopped endpoints.
    assert one_run(2) == ("SUCCEEDED", 1)
    assert dict(os.environ) == before
