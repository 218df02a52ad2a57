"""Overhead per run: runs one after another (enqueue -> SubmitJob returned; terminal state -> PR
comment written), with the describe-jobs poller beside them; and the CI step of our design."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import boto3

from modelrun_bench.probes import (
    DescribeJobsPoller,
    Probe,
    final_result,
    github_breakdown,
    github_write_times,
    wait_for,
)
from modelrun_bench.stats import summary
from modelrun_bench.workload import Planned, plan
from modelrun_local.runtime import REGION, LocalRuntime
from modelrun_local.stack import ROOT
from modelrun_local.workflow_job import pull_request_job


def overhead_phase(runtime: LocalRuntime, probe: Probe, image: str, runs: int, poll_interval: float) -> dict[str, Any]:
    """``runs`` runs one after another, two per PR (so half find their comment id known)."""
    repository = runtime.repository
    queue_url = runtime.outputs["RunRequestsQueueUrl"]
    sqs = boto3.client("sqs", region_name=REGION)
    poller = DescribeJobsPoller(probe, poll_interval)
    poller.start()
    planned: list[Planned] = []
    sent: dict[str, float] = {}
    per_run_github: list[dict[str, Any]] = []
    problems: list[str] = []
    gh = runtime.github
    first_request = len(gh.requests)
    for i in range(runs):
        pr = 1000 + i // 2
        p = plan(runtime, image, pr, i % 2, 5_000_000 + i)
        planned.append(p)
        head = p.request
        before = len(gh.requests)
        sent[p.run_id] = time.monotonic()
        sqs.send_message(QueueUrl=queue_url, MessageBody=head.model_dump_json())
        sha, run_id = head.head_sha, p.run_id
        wait_for(lambda: final_result(runtime, repository, sha) is not None, 120, f"run {run_id}")  # noqa: B023
        # The run's last GitHub call completes its check run (sets its commit status, on a
        # token); wait until the poller has seen it too.
        wait_for(lambda: run_id in poller.noticed, 10, f"the poller to notice {run_id}")  # noqa: B023
        per_run_github.append({"first_on_pr": i % 2 == 0, **github_breakdown(gh.requests_since(before))})
        state = final_result(runtime, repository, head.head_sha)
        if state != "success":
            problems.append(f"overhead run {p.run_id}: the commit shows {state}")
    poller.stop()

    prs, shas = {p.pr for p in planned}, {p.request.head_sha for p in planned}
    comment_times, status_times = github_write_times(runtime, gh.requests_since(first_request), repository, prs, shas)
    # Where the log link shows while the job runs: the check run (App), the comment (a token).
    app = runtime.github_credentials == "app"
    enqueue_to_submit: list[float] = []
    terminal_to_comment: list[float] = []
    terminal_to_status: list[float] = []
    running_to_comment: list[float] = []
    poller_delay: list[float] = []
    enqueue_to_comment: list[float] = []
    for p in planned:
        returned = probe.submit_returned.get(p.run_id, [])
        if len(returned) != 1:
            problems.append(f"overhead run {p.run_id}: {len(returned)} SubmitJob calls")
            continue
        enqueue_to_submit.append(returned[0] - sent[p.run_id])
        terminal = probe.terminal_at(p.run_id)
        if terminal is None:
            problems.append(f"overhead run {p.run_id}: no terminal state")
            continue
        t_end = terminal[1]
        after = [t for t in comment_times.get(p.pr, []) if t >= t_end]
        if after:
            terminal_to_comment.append(after[0] - t_end)
            enqueue_to_comment.append(after[0] - sent[p.run_id])
        else:
            problems.append(f"overhead run {p.run_id}: no comment after the terminal event")
        statuses = [t for t in status_times.get(p.request.head_sha, []) if t >= t_end]
        if statuses:  # the last: the final state is the last one written (a late RUNNING write may precede it)
            terminal_to_status.append(statuses[-1] - t_end)
        t_running = probe.states.get((p.run_id, "RUNNING"))
        if t_running is not None:
            live = status_times.get(p.request.head_sha, []) if app else comment_times.get(p.pr, [])
            later = [t for t in live if t_running <= t < t_end]
            if later:
                running_to_comment.append(later[0] - t_running)
        if p.run_id in poller.noticed:
            poller_delay.append(poller.noticed[p.run_id][1] - t_end)

    first = [g for g in per_run_github if g["first_on_pr"]]
    later_runs = [g for g in per_run_github if not g["first_on_pr"]]

    def mean_of(rows: list[dict[str, Any]], key: str) -> float:
        return statistics.fmean(r[key] for r in rows) if rows else 0.0

    keys = ("total", "writes", "reads", "list_comments", "check_runs")
    github = {
        "credentials": runtime.github_credentials,
        "per_run": {key: mean_of(per_run_github, key) for key in keys},
        "first_run_on_pr": {key: mean_of(first, key) for key in keys},
        "later_run_on_pr": {key: mean_of(later_runs, key) for key in keys},
        "max_per_run": max((g["total"] for g in per_run_github), default=0),
        "token_exchanges": sum(g["token_exchanges"] for g in per_run_github),
        "default_branch_lookups": sum(g.get("default_branch_lookups", 0) for g in per_run_github),
        "operations_per_run": {
            op: count / len(per_run_github)
            for op, count in sum((Counter(g["by_operation"]) for g in per_run_github), Counter()).items()
        },
    }
    ours = summary(terminal_to_comment)
    polled = summary(poller_delay)
    return {
        "runs": runs,
        "method": {
            "enqueue_to_submit": "monotonic clock before sqs.send_message -> the local AWS's SubmitJob "
            "accepting the job (the executor reports SUBMITTED with its time)",
            "terminal_to_comment": "executor sets the terminal status and emits the Batch event "
            "-> the local GitHub has applied the comment edit (first comment write after it)",
            "poller": f"describe_jobs every {poll_interval} s for all submitted, unfinished jobs; "
            "delay from the same terminal instant to the first answer showing it",
        },
        "enqueue_to_submitjob_s": summary(enqueue_to_submit),
        "terminal_to_comment_s": ours,
        "terminal_to_result_s": summary(terminal_to_status),
        "running_to_log_link_s": summary(running_to_comment),
        "enqueue_to_final_comment_s": summary(enqueue_to_comment),
        "github": github,
        "poller": {
            "interval_s": poll_interval,
            "detection_delay_s": polled,
            "describe_jobs_calls": poller.calls,
            "ratio_to_ours_median": (polled["median"] / ours["median"]) if polled.get("n") and ours.get("n") else None,
        },
        "problems": problems,
    }


def enqueue_step_seconds(runtime: LocalRuntime, image: str, repeats: int) -> dict[str, float]:
    """The CI step of our design after the image push: ``modelrun enqueue`` as a process."""
    fixture = ROOT / "tests" / "fixtures" / "webhooks" / "pull_request.opened.json"
    event = json.loads(fixture.read_text())
    times = []
    for i in range(repeats):
        # The job's variables as GitHub sets them, its token endpoint included (the step fetches
        # its OIDC token, then sends). The sample's repository is not the stack's: the backend
        # refuses these requests unrun, as it would any repository outside its allow-list.
        job = pull_request_job(runtime.github, event, run_id=7_000_000 + i, actor="bench")
        env = {
            **os.environ,
            **job.env,
            "GITHUB_EVENT_PATH": str(fixture),
            "GITHUB_EVENT_NAME": "pull_request",
            "MODELRUN_QUEUE_URL": runtime.outputs["RunRequestsQueueUrl"],
        }
        started = time.monotonic()
        subprocess.run(
            [str(Path(sys.executable).parent / "modelrun"), "enqueue", "--image", image],
            env=env,
            check=True,
            capture_output=True,
        )
        times.append(time.monotonic() - started)
    return summary(times)
