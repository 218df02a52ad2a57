"""The soak (issue 17): runs in waves with GitHub faults and latency injected; what each PR shows
must converge to what its final records render."""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from typing import Any

import boto3

from modelrun.adapters.aws import RunsTable
from modelrun_bench.probes import TERMINAL, batch_jobs, report_executions
from modelrun_bench.workload import Planned, plan
from modelrun_local.runtime import REGION, LocalRuntime

# GitHub faults that a retry outlasts, each as GitHub answers it: 5xx, 429 with Retry-After, a
# secondary limit as a 403 without Retry-After, and the same aimed at each write (the first
# comment create, a comment edit, the check run's create and updates, a commit status: the last
# two are a token's, they wait unused on App credentials).
SOAK_FAULTS: list[tuple[str | None, int, int | None]] = [
    (None, 502, None),
    (None, 503, None),
    (None, 429, 1),
    (None, 403, None),
    ("issues/create-comment", 502, None),
    ("issues/update-comment", 403, None),
    ("issues/update-comment", 500, None),
    ("checks/create", 502, None),
    ("checks/update", 403, None),
    ("checks/update", 502, None),
    ("repos/create-commit-status", 403, None),
    ("repos/create-commit-status", 502, None),
]


FAIL_SCRIPT = "import sys;print('soak: failing on purpose',flush=True);sys.exit(3)"


def soak_phase(runtime: LocalRuntime, image: str, runs: int, prs: int, seed: int = 17) -> dict[str, Any]:
    """``runs`` run requests over ``prs`` PRs, sent in waves, with GitHub faults of every kind
    injected at random moments and random extra latency in every function and GitHub call. At
    the end, each PR's comment must be exactly what its final run records render, each reported
    run's one check run (its commit status, on a token) its final state, and no run lost or doubled."""
    from modelrun.domain import report as report_text
    from modelrun.domain.naming import pr_key

    rng = random.Random(seed)  # noqa: S311 - reproducible chaos, not a secret
    repository = runtime.repository
    queue_url = runtime.outputs["RunRequestsQueueUrl"]
    sqs = boto3.client("sqs", region_name=REGION)
    planned: list[Planned] = []
    for i in range(runs):
        command = ["python", "-c", FAIL_SCRIPT] if rng.random() < 0.2 else None
        planned.append(plan(runtime, image, 1 + i % prs, i // prs, 2_000_000 + i, command))
    expected = {p.run_id for p in planned}

    lambda_latency = {"SubmitFunction": 1.5, "TrackFunction": 1.0, "CollectResultsFunction": 1.0}
    runtime.lambdas.latency = lambda fn: rng.uniform(0, lambda_latency.get(fn, 1.0))
    runtime.github.add_latency(lambda _op: rng.uniform(0, 0.25))
    injected: Counter[str] = Counter()
    stop = threading.Event()
    chaos_until = 0.0

    def chaos() -> None:
        # Faults while runs arrive and for a while after; not for ever: locally every Retry
        # delay is capped at 2 s, so an endless stream aimed at the last report left standing
        # would exhaust in seconds the retry budget that on AWS lasts hours.
        while not stop.wait(rng.uniform(0.3, 1.5)):
            if chaos_until and time.monotonic() > chaos_until:
                return
            operation, status, retry_after = rng.choice(SOAK_FAULTS)
            if operation is None:
                runtime.github.fail_next(1, status=status, retry_after=retry_after)
            else:
                runtime.github.fail_next_of(operation, 1, status=status, retry_after=retry_after)
            injected[f"{operation or 'any request'} {status}{' Retry-After' if retry_after else ''}"] += 1

    chaos_thread = threading.Thread(target=chaos, daemon=True, name="soak-chaos")
    started = time.monotonic()
    chaos_thread.start()
    order = list(range(runs))
    for wave in range(0, runs, 10):  # waves of ten, a random pause between: runs overlap
        entries = [
            {"Id": str(j), "MessageBody": planned[i].request.model_dump_json()}
            for j, i in enumerate(order[wave : wave + 10])
        ]
        sqs.send_message_batch(QueueUrl=queue_url, Entries=entries)  # type: ignore[arg-type]
        time.sleep(rng.uniform(0.2, 2.0))
    chaos_until = time.monotonic() + 30.0
    problems: list[str] = []
    try:
        runtime.wait_until_idle(timeout=max(300.0, runs * 3.0), settle=3.0)
    except TimeoutError as error:
        problems.append(f"the stack did not settle: {error}")
    stop.set()
    chaos_thread.join()
    runtime.lambdas.latency = None
    runtime.github.add_latency(None)
    wall = time.monotonic() - started

    table = RunsTable(runtime.outputs["RunsTableName"])
    records = {r.run_id: r for r in table.scan() if r.run_id in expected}
    names = Counter(n for n in batch_jobs([runtime.outputs["CpuJobQueueArn"]]).values() if n in expected)
    lost = sorted(expected - set(records)) + sorted(expected - set(names))
    doubled = sorted(n for n, c in names.items() if c > 1)
    not_final = sorted(r.run_id for r in records.values() if not r.status.terminal)
    stale_comments: list[int] = []
    comment_counts: Counter[int] = Counter()
    for pr in range(1, prs + 1):
        comments = runtime.github.comments(repository, pr)
        comment_counts[len(comments)] += 1
        truth = report_text.render_comment(table.runs_of_pr(pr_key(repository, pr)))
        if len(comments) != 1 or comments[0]["body"] != truth:
            stale_comments.append(pr)
    stale_statuses: list[str] = []
    doubled_checks: list[str] = []
    app = runtime.github_credentials == "app"
    reported = [r for r in records.values() if r.status.value in TERMINAL]
    for record in reported:
        if app:  # the run's own check run (its external id), completed as the final record renders it
            shown_checks = runtime.github.check_runs(repository, record.head_sha)
            own = [c for c in shown_checks if c["external_id"] == record.run_id]
            doubled_checks += [record.run_id] if len(own) > 1 else []
            want = report_text.check_run(record)
            if not own or (own[-1]["status"], own[-1]["conclusion"]) != (want.status, want.conclusion):
                stale_statuses.append(record.run_id)
            continue
        shown = runtime.github.statuses(repository, record.head_sha)
        if not shown or shown[-1]["state"] != report_text.commit_status(record)[0]:
            stale_statuses.append(record.run_id)
    check_runs = sum(len(runtime.github.check_runs(repository, r.head_sha)) for r in records.values())
    for label, items in (
        ("runs lost (no record or no Batch job)", lost),
        ("runs with more than one Batch job", doubled),
        ("runs not in a final state", not_final),
        ("PRs whose comment is not what their final records render (or not exactly one)", stale_comments),
        ("reported runs whose check run (commit status, on a token) is not their final state", stale_statuses),
        ("runs with more than one check run", doubled_checks),
    ):
        if items:
            problems.append(f"{len(items)} {label}: {items[:5]}")
    found = report_executions(runtime, keep_failed=20)
    executions = found.statuses
    causes = [
        f"{name}: {f.get('error')} {str(f.get('cause', ''))[:400]}"
        for name, _status, failed in found.failed
        for f in failed
    ]
    if executions.get("SUCCEEDED", 0) != sum(executions.values()):
        problems.append(f"report executions not SUCCEEDED: {dict(executions)}; causes: {causes[:3]}")
    injected_answers = sum(1 for r in runtime.github.requests if r.injected)
    return {
        "runs": runs,
        "prs": prs,
        "wall_seconds": wall,
        "run_statuses": dict(Counter(r.status.value for r in records.values())),
        "faults_queued": dict(injected),
        "faulted_github_answers": injected_answers,
        "report_executions": dict(executions),
        "report_failure_causes": causes,
        "lost": len(lost),
        "duplicated": len(doubled),
        "stale_comments": len(stale_comments),
        "credentials": runtime.github_credentials,
        # the reported runs' check runs (App credentials) or commit statuses (a token)
        "stale_results": len(stale_statuses),
        "results_checked": len(reported),
        "duplicated_check_runs": len(doubled_checks),
        "comments_per_pr": dict(comment_counts),
        "check_runs": check_runs,
        "submit_redeliveries": sum(p.redelivered for p in runtime.pollers if p.mapping.function == "SubmitFunction"),
        "problems": problems,
    }
