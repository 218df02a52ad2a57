"""The cold path: the overhead's two paths with the functions cold (a fresh worker process for
each first invocation, as a Lambda cold start)."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

import boto3

from modelrun.adapters.aws import RunsTable
from modelrun_bench.probes import Probe, github_write_times, wait_for
from modelrun_bench.stats import summary
from modelrun_bench.workload import NOOP_SCRIPT, plan
from modelrun_local.runtime import REGION, LocalRuntime

# The functions a terminal Batch event goes through, in order, to the PR comment.
TERMINAL_PATH = ("TrackFunction", "CollectResultsFunction", "UpdatePullRequestFunction")


def gated_script(gates: Path) -> str:
    """The no-op model, held once it runs until the bench opens its gate (a file named by the run
    id; two minutes at most): meanwhile the terminal path's functions are made cold."""
    return (
        "import os,time;"
        f"g=os.path.join({str(gates)!r},os.environ['MODELRUN_RUN_ID']);"
        "any(os.path.exists(g) or time.sleep(0.005) for _ in range(24000));" + NOOP_SCRIPT
    )


def _status(table: RunsTable, run_id: str) -> str | None:
    record = table.get(run_id)
    return record.status.value if record else None


def cold_path_phase(runtime: LocalRuntime, probe: Probe, image: str, runs: int) -> dict[str, Any]:
    """Each run with its functions started cold: a fresh interpreter per first invocation, as a
    Lambda cold start (lambdas.FunctionPool.recycle stops a function's environments).

    The submit function is recycled before each run request is sent. The model is held once it
    runs (``gated_script``) until the track function has taken the RUNNING event; then the
    terminal path's three functions are recycled and the model let go, so the terminal event
    meets each of them cold. Measured as the warm overhead phase measures the same paths."""
    repository = runtime.repository
    queue_url = runtime.outputs["RunRequestsQueueUrl"]
    sqs = boto3.client("sqs", region_name=REGION)
    table = RunsTable(runtime.outputs["RunsTableName"])
    pools = runtime.lambdas.pools
    inits_before = {k: len(v) for k, v in runtime.lambdas.cold_starts().items()}
    enqueue_to_submit: list[float] = []
    terminal_to_comment: list[float] = []
    problems: list[str] = []
    with tempfile.TemporaryDirectory(prefix="modelrun-bench-gates-") as tmp:
        gates = Path(tmp)
        command = ["python", "-c", gated_script(gates)]
        for i in range(runs):
            p = plan(runtime, image, 3000 + i, 0, 9_000_000 + i, command)
            pools["SubmitFunction"].recycle()
            sent = time.monotonic()
            sqs.send_message(QueueUrl=queue_url, MessageBody=p.request.model_dump_json())
            run_id = p.run_id
            wait_for(lambda: run_id in probe.submit_returned, 60, f"SubmitJob of {run_id}")  # noqa: B023
            enqueue_to_submit.append(probe.submit_returned[run_id][0] - sent)
            # The track function has taken the RUNNING event (and written what it writes for it).
            wait_for(lambda: _status(table, run_id) == "RUNNING", 60, f"{run_id} RUNNING")  # noqa: B023
            runtime.wait_until_idle(timeout=60, settle=0.3, functions=("TrackFunction",))
            for logical_id in TERMINAL_PATH:
                pools[logical_id].recycle()
            before = len(runtime.github.requests)
            (gates / run_id).touch()

            def comment_delays() -> list[float]:
                """From the terminal event to each comment write on the PR after it (empty until then)."""
                terminal = probe.terminal_at(run_id)  # noqa: B023
                if terminal is None:
                    return []
                since = runtime.github.requests_since(before)  # noqa: B023
                comments, _ = github_write_times(runtime, since, repository, {p.pr}, set())  # noqa: B023
                return [t - terminal[1] for t in comments.get(p.pr, []) if t >= terminal[1]]  # noqa: B023

            terminal_to_comment.append(wait_for(comment_delays, 120, f"the comment of {run_id}")[0])
            runtime.wait_until_idle(settle=0.3)  # the report's execution done: the next run starts clean
            if (status := _status(table, run_id)) != "SUCCEEDED":
                problems.append(f"cold run {run_id}: {status}")
    inits = {
        k: v[inits_before.get(k, 0) :]
        for k, v in runtime.lambdas.cold_starts().items()
        if k in ("SubmitFunction", *TERMINAL_PATH)
    }
    return {
        "runs": runs,
        "method": "as the overhead phase measures the same paths, with the functions cold: Submit's environments "
        "stopped before each run request is sent; the model held once running until Track has taken the "
        "RUNNING event, then Track's, CollectResults' and UpdatePullRequest's environments stopped, so the "
        "terminal event starts each in a fresh worker process (lambdas.FunctionPool.recycle)",
        "enqueue_to_submitjob_s": summary(enqueue_to_submit),
        "terminal_to_comment_s": summary(terminal_to_comment),
        "init_s": {k: {**summary(v), "samples": v} for k, v in inits.items()},
        "init_method": "lambdas.Lambdas.cold_starts(): from starting an environment's worker process to its "
        "first request for work (interpreter start, the handler's import, the Runtime API's first call)",
        "problems": problems,
    }
