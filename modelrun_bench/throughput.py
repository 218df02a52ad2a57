"""Throughput: N run requests over M PRs (some re-sent), and whether every run reached Batch,
its record and its PR exactly once; what enforcing IAM cost meanwhile."""

from __future__ import annotations

import random
import time
from collections import Counter
from typing import Any

import boto3

from modelrun.adapters.aws import RunsTable
from modelrun_bench.probes import Probe, batch_jobs, github_breakdown, report_executions
from modelrun_bench.stats import summary
from modelrun_bench.workload import Planned, plan
from modelrun_local.runtime import REGION, LocalRuntime


def iam_figures(runtime: LocalRuntime, wall: float, runs: int) -> dict[str, Any]:
    """What enforcing IAM cost: each check's time in the local AWS, whose server answers one
    request at a time (so the checks' sum is time added to its busy time)."""
    decisions = runtime.iam_decisions()
    costs = [d.check_ms / 1000 for d in decisions if d.check_ms]
    return {
        "decisions": len(decisions),
        "per_run": len(decisions) / runs if runs else 0.0,
        "denied": sum(not d.allowed for d in decisions),
        "denials": [f"{d.principal} {d.action} {d.resource}" for d in decisions if not d.allowed],
        "check_s": summary(costs),
        "checks_total_s": sum(costs),
        "share_of_wall": sum(costs) / wall if wall > 0 else 0.0,
    }


def throughput_phase(
    runtime: LocalRuntime, probe: Probe, image: str, requests: int, prs: int, dup: float
) -> dict[str, Any]:
    repository = runtime.repository
    queue_url = runtime.outputs["RunRequestsQueueUrl"]
    sqs = boto3.client("sqs", region_name=REGION)
    planned: list[Planned] = []
    for i in range(requests):  # in order: GitHub's record of each PR ends at its latest commit
        pr = 1 + i % prs
        planned.append(plan(runtime, image, pr, i // prs, 1_000_000 + i))
    rng = random.Random(8)  # noqa: S311 - a reproducible order, not a secret
    duplicates = rng.sample(range(requests), round(requests * dup))
    # Each duplicate re-sent a little later (up to 50 messages on), as SQS redelivers.
    order: list[tuple[float, int]] = [(float(i), i) for i in range(requests)]
    order += [(i + rng.uniform(1, 50), i) for i in duplicates]
    order.sort()
    bodies = [planned[i].request.model_dump_json() for _, i in order]
    expected = {p.run_id for p in planned}

    github_before = len(runtime.github.requests)
    started = time.monotonic()
    for start in range(0, len(bodies), 10):
        entries = [{"Id": str(j), "MessageBody": b} for j, b in enumerate(bodies[start : start + 10])]
        response = sqs.send_message_batch(QueueUrl=queue_url, Entries=entries)  # type: ignore[arg-type]
        if response.get("Failed"):
            raise RuntimeError(f"send_message_batch failed: {response['Failed']}")
    sent_in = time.monotonic() - started
    table = RunsTable(runtime.outputs["RunsTableName"])
    # Idle = queues drained, no job running, no report running. (Scanning the runs table to
    # watch progress would cost the serialised local stack more than the runs themselves.)
    deadline = started + max(300.0, requests * 1.0)
    problems = []
    try:
        runtime.wait_until_idle(timeout=max(10.0, deadline - time.monotonic()), settle=1.0)
    except TimeoutError as error:
        problems.append(f"the stack did not settle: {error}")
    idle_at = time.monotonic()
    github_requests = runtime.github.requests_since(github_before)
    github_times = [r.answered_at for r in github_requests]
    last_github = max(github_times) if github_times else idle_at
    wall = last_github - started

    # Batch jobs: every status of both queues.
    queues = [runtime.outputs[k] for k in runtime.outputs if k.endswith("JobQueueArn")]
    jobs = batch_jobs(queues)
    per_name = Counter(jobs.values())
    records = {r.run_id: r for r in table.scan()}
    statuses = Counter(r.status.value for r in records.values() if r.run_id in expected)
    lost_jobs = sorted(expected - set(per_name))
    duplicated_jobs = sorted(name for name, n in per_name.items() if n > 1)
    lost_records = sorted(expected - set(records))
    not_terminal = sorted(r for r in expected & set(records) if not records[r].status.terminal)
    unexpected = sorted(set(per_name) - expected)
    submit_calls = sum(len(v) for k, v in probe.submit_returned.items() if k in expected)
    job_id_mismatch = sorted(
        r for r in expected & set(records) if records[r].job_id and jobs.get(str(records[r].job_id)) != r
    )
    comments_per_pr = Counter(len(runtime.github.comments(repository, pr)) for pr in range(1, prs + 1))
    found = report_executions(runtime, keep_failed=50)
    executions, execution_statuses = found.total, found.statuses
    failure_causes: Counter[str] = Counter()
    for _name, status, failures in found.failed:
        detail = failures[0] if failures else {}
        failure_causes[f"{status}: {detail.get('error')} {str(detail.get('cause', ''))[:160]}"] += 1
    reported = statuses.get("SUCCEEDED", 0) + statuses.get("FAILED", 0)

    for label, items in (
        ("runs with no Batch job (lost)", lost_jobs),
        ("runs with more than one Batch job (duplicated)", duplicated_jobs),
        ("runs with no run record (lost)", lost_records),
        ("runs not terminal at the end", not_terminal),
        ("Batch jobs for no request", unexpected),
        ("run records whose job id is another job's", job_id_mismatch),
    ):
        if items:
            problems.append(f"{len(items)} {label}: {items[:5]}")
    if set(comments_per_pr) != {1}:
        problems.append(f"PRs by number of modelrun comments (must all be 1): {dict(comments_per_pr)}")
    if execution_statuses.get("SUCCEEDED", 0) != executions:
        problems.append(f"report executions not SUCCEEDED: {dict(execution_statuses)}")
    if executions != reported:
        problems.append(f"{executions} report executions for {reported} reported (SUCCEEDED/FAILED) runs")

    received_again: Counter[str] = Counter()
    for poller in runtime.pollers:
        received_again[poller.mapping.function] += poller.redelivered
    unique = len(expected)
    gh = github_breakdown(github_requests)
    iam = iam_figures(runtime, wall, unique)
    if iam["denied"]:
        problems.append(f"{iam['denied']} IAM denials on the happy path: {iam['denials'][:5]}")
    return {
        "iam": iam,
        "requests_unique": unique,
        "messages_sent": len(bodies),
        "duplicates_sent": len(duplicates),
        "prs": prs,
        "send_seconds": sent_in,
        "wall_seconds_first_send_to_last_github_call": wall,
        "runs_per_second": unique / wall if wall > 0 else 0.0,
        "batch_jobs_created": len(jobs),
        "batch_jobs_unique_names": len(per_name),
        "submitjob_calls": submit_calls,
        "run_records": len(expected & set(records)),
        "run_statuses": dict(sorted(statuses.items())),
        "report_executions": executions,
        "report_execution_statuses": dict(execution_statuses),
        "report_failure_causes": dict(failure_causes),
        "github": {
            **gh,
            "per_run": gh["total"] / unique,
            "writes_per_run": gh["writes"] / unique,
            "token_exchanges": gh["token_exchanges"],
            "list_calls_per_run": gh["list_comments"] / unique,
            "comments_per_pr": dict(comments_per_pr),
        },
        "submit_failures_redelivered": sum(
            p.failures for p in runtime.pollers if p.mapping.function == "SubmitFunction"
        ),
        "messages_received_again": received_again,
        "problems": problems,
    }
