"""Benchmarks of the pipeline on the embedded local stack: ``python -m modelrun_local.bench``.

What it measures, and how (all times are ``time.monotonic()``, one clock for the machine: this
process hosts the pollers, the handlers and the local GitHub; the AWS process moto's server and
the Batch executor, which reports each status it sets with its time):

- **Overhead per run** (runs one after another, a no-op model: ``python -c`` writes a valid
  ``metrics.json`` by one HTTP PUT, no imports beyond the standard library):
  (a) *enqueue -> SubmitJob returned*: from just before ``sqs.send_message`` to botocore's
  ``after-call.batch.SubmitJob`` event in the submit handler's own client (registered on boto3's
  default session before the handler's clients exist: no patching of the handler);
  (b) *terminal state -> PR comment written*: from the moment the executor sets the job's
  terminal status and emits the Batch event (the executor's report of that instant) to
  the moment the local GitHub has applied the comment write (its request log is timed here), and
  to the check run's completion (the commit status, on a token: the report's last GitHub call).
- **Polling baseline, side by side**: a thread calls ``batch.describe_jobs`` for every submitted
  job at a scaled-down interval and notes when it first sees the terminal status; its detection
  delay is measured from the same terminal instant as ours. Extrapolated to the old design's
  intervals (60 s while starting, 5 min while running) and turned into CI runner time per run.
- **Throughput**: N run requests over M PRs (a fraction re-sent, to exercise dedupe), sent with
  ``send_message_batch``; wall time, Batch jobs (``list_jobs`` over both queues, every status),
  run records, GitHub requests per run. Exits non-zero when a run is lost or duplicated.
- **Submit handler latency** (issue 3): the real handler invoked directly with SQS events shaped
  as ``sam local generate-event sqs receive-message`` makes them, batches of 1 and of 10; Batch
  jobs are finished quietly meanwhile (moto's own behaviour) so nothing else competes for the CPU.
- **Cold start**: each handler module's import from its own built package (``sam build``: the
  package, its layers and the runtime's boto3 alone on sys.path, a fresh interpreter each time)
  against a bare ``import boto3``, and each package's and layer's size.
- **Cold path**: the overhead's two paths again with the functions cold (each function's
  environments stopped first, so its next invocation starts a fresh worker process, as a Lambda
  cold start): terminal state -> PR comment with Track, CollectResults and UpdatePullRequest cold,
  and enqueue -> SubmitJob returned with Submit cold; each cold environment's init seconds.

Figures go to ``bench/results.json`` and the table to ``bench/RESULTS.md`` (``--out`` elsewhere).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import json
import os
import platform
import random
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
import zipfile
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import boto3
from aws_lambda_powertools.utilities.validation import validate

from modelrun.adapters.aws import RunsTable
from modelrun.contracts import SCHEMA_VERSION, RunRequest
from modelrun.domain.run import run_id_for
from modelrun_cli.enqueue import oidc_token, with_identity
from modelrun_local import lambda_packages
from modelrun_local.runtime import REGION, LocalRuntime
from modelrun_local.stack import ROOT, load_template
from modelrun_local.workflow_job import APPROVAL_ENVIRONMENT

OUT_DIR = ROOT / "bench"
METRICS_SCHEMA = ROOT / "model_container" / "metrics.schema.json"
BUILD_DIR = lambda_packages.BUILD_DIR
IMPORT_RATIO_GOAL = 1.5  # issue 16: each handler's import at most 1.5x a bare `import boto3`
SAM_BUILD = [
    str(ROOT / ".tools" / "bin" / "uv"),
    "tool",
    "run",
    "--from",
    "aws-sam-cli==1.170.0",
    "sam",
    "build",
    "--template-file",
    "template.yaml",
    "--build-dir",
    ".aws-sam/build",
    "--region",
    REGION,
]
TERMINAL = ("SUCCEEDED", "FAILED")
TERMINAL_RUN_STATUSES = {"SUCCEEDED", "FAILED", "CANCELLED", "SUPERSEDED"}
# The old design's describe-jobs intervals: 60 s while the job starts, 5 min while it runs.
OLD_START_INTERVAL_S = 60.0
OLD_RUN_INTERVAL_S = 300.0
# The full AVM's whole container run (imports, data, training, ratio study, artifacts) on this
# machine, 2 threads: "≈18 s whole container run incl. imports" (README.md, "Measured").
AVM_RUN_SECONDS = 18.0
LONG_MODEL_SECONDS = 3600.0  # an illustration: a one-hour model

# The no-op model: the container contract's minimum. One PutObject of metrics.json (read from
# the image directory, run id filled in) to the results prefix, signed with the job role's
# credentials (IAM is enforced locally too).
# One line: the contract refuses control characters (newlines too) in a command's arguments.
NOOP_SCRIPT = (
    "import json,os,boto3;"
    "b,k=os.environ['MODELRUN_RESULTS_URI'][5:].split('/',1);"
    "m=json.load(open('metrics.json'));"
    "m['run_id']=os.environ['MODELRUN_RUN_ID'];"
    "boto3.client('s3').put_object(Bucket=b,Key=k+'metrics.json',Body=json.dumps(m).encode(),"
    "ContentType='application/json')"
)
# The bench's PRs are all against main at this commit (GitHub's record of each PR names it).
BASE_SHA = hashlib.sha1(b"bench-main").hexdigest()  # noqa: S324 - a fake commit SHA


# -- small helpers -------------------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    """Linear-interpolated percentile (q in 0..100) of a non-empty list."""
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    position = (len(ordered) - 1) * q / 100
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def summary(values: list[float]) -> dict[str, float]:
    if not values:
        return {"n": 0}
    return {
        "n": len(values),
        "median": statistics.median(values),
        "p95": percentile(values, 95),
        "mean": statistics.fmean(values),
        "min": min(values),
        "max": max(values),
    }


def ms(stats: dict[str, float], key: str = "median") -> str:
    return f"{stats[key] * 1000:.0f} ms" if key in stats else "n/a"


def noop_metrics() -> dict[str, Any]:
    """A minimal metrics.json that follows model_container/metrics.schema.json."""
    stat = {"value": 10.0, "ci": None, "standard": "5.0-15.0", "range": [5.0, 15.0], "pass": True}
    metrics = {"rmse": 1.0, "mae": 1.0, "mape": 1.0, "mdape": 1.0, "r2": 0.9, "median_ratio": 1.0}
    doc = {
        "schema_version": "1",
        "run_id": "noop",
        "model": {
            "library": "lightgbm",
            "device_requested": "cpu",
            "device_used": "cpu",
            "threads": 1,
            "train_seconds": 0.0,
            "params": {},
        },
        "data": {
            "source": "none: the benchmark's no-op model",
            "rows": 0,
            "n_train": 0,
            "n_test": 0,
            "holdout": {"from": "2016-07-01", "to": "2016-12-31"},
            "trimming": "none",
        },
        "metrics": metrics,
        "ratio_study": {name: dict(stat) for name in ("cod", "prd", "prb", "mki")},
        "by_area": [],
        "artifacts": {
            "predictions": "artifacts/predictions.parquet",
            "model": "artifacts/model.txt",
            "plots": ["artifacts/plots/ratio.png"],
        },
    }
    validate(event=doc, schema=json.loads(METRICS_SCHEMA.read_text()))
    return doc


@contextlib.contextmanager
def noop_image_dir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="modelrun-bench-image-") as tmp:
        directory = Path(tmp)
        (directory / "metrics.json").write_text(json.dumps(noop_metrics()))
        yield directory


@dataclass(frozen=True)
class Planned:
    """One run request the bench sends, and the run id the pipeline will derive from it."""

    request: RunRequest
    run_id: str
    pr: int


def plan(
    runtime: LocalRuntime, image: str, pr: int, commit: int, workflow_run_id: int, command: list[str] | None = None
) -> Planned:
    """A verifiable run request, as the approved workflow job sends it: GitHub records the PR and
    the workflow run (the evidence the submit function checks) and the job gets its OIDC token for
    the stack's audience (the run-requests queue's URL) from the local issuer: an RSA signature
    and one loopback HTTP call, about a millisecond or two."""
    repository = runtime.repository
    sha = hashlib.sha1(f"bench-{pr}-{commit}".encode()).hexdigest()  # noqa: S324 - a fake commit SHA
    head_ref = f"bench/pr-{pr}"
    runtime.github.add_pull(repository, pr, sha, head_ref, "main", "bench")
    env = runtime.github.actions_job(
        repository,
        "pull_request",
        sha=sha,
        run_id=workflow_run_id,
        actor="bench",
        environment=APPROVAL_ENVIRONMENT,
        pull_request=(pr, head_ref, "main", BASE_SHA),
    )
    request = RunRequest.model_validate(
        {
            "schema_version": SCHEMA_VERSION,
            "kind": "run",
            "repository": repository,
            "pr_number": pr,
            "head_sha": sha,
            "head_ref": head_ref,
            "base_ref": "main",
            "image": image,
            "compute": "cpu",
            "command": command or ["python", "-c", NOOP_SCRIPT],
            "triggered_by": "bench",
            "event": "pull_request",
            "workflow": {"run_id": workflow_run_id, "run_attempt": 1},
        }
    )
    signed = with_identity(request, oidc_token(env, runtime.outputs["RunRequestsQueueUrl"]))
    assert isinstance(signed, RunRequest)
    return Planned(signed, run_id_for(signed), pr)


class TimedRequests(list[Any]):
    """LocalGitHub's request log, with the instant each request was answered (its append)."""

    def __init__(self, existing: list[Any]) -> None:
        super().__init__(existing)
        self.times: list[float] = [0.0] * len(existing)

    def append(self, item: Any) -> None:
        self.times.append(time.monotonic())
        super().append(item)


class Probe:
    """Timestamps taken in this process, without touching the handlers' code: the local AWS
    reports each job's states, SUBMITTED as its SubmitJob accepts it."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.submit_returned: dict[str, list[float]] = {}  # job name -> each SubmitJob's return
        self.job_ids: dict[str, str] = {}  # job id -> job name
        self.states: dict[tuple[str, str], float] = {}  # (job name, status) -> first time set

    def __enter__(self) -> Probe:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def attach(self, runtime: LocalRuntime) -> TimedRequests:
        def state_set(job_name: str, status: str, at: float, job_id: str) -> None:
            with self.lock:
                if status == "SUBMITTED":
                    self.submit_returned.setdefault(job_name, []).append(at)
                    self.job_ids[job_id] = job_name
                self.states.setdefault((job_name, status), at)

        runtime.batch_state_listeners.append(state_set)
        timed = TimedRequests(runtime.github.requests)
        runtime.github.requests = timed
        return timed

    def terminal_at(self, job_name: str) -> tuple[str, float] | None:
        with self.lock:
            found = [(t, s) for (name, s), t in self.states.items() if name == job_name and s in TERMINAL]
        if not found:
            return None
        t, status = min(found)
        return status, t


class DescribeJobsPoller(threading.Thread):
    """The old design's watcher: describe-jobs on a timer until each job is terminal."""

    def __init__(self, probe: Probe, interval: float) -> None:
        super().__init__(daemon=True, name="bench-describe-jobs")
        self.probe = probe
        self.interval = interval
        self.batch = boto3.client("batch", region_name=REGION)
        self.noticed: dict[str, tuple[str, float]] = {}  # job name -> (status, time seen)
        self.polls = 0
        self.calls = 0
        self.stop_event = threading.Event()

    def run(self) -> None:
        due = time.monotonic()
        while not self.stop_event.is_set():
            with self.probe.lock:
                watching = [j for j, name in self.probe.job_ids.items() if name not in self.noticed]
            for start in range(0, len(watching), 100):
                jobs = self.batch.describe_jobs(jobs=watching[start : start + 100])["jobs"]
                seen = time.monotonic()
                self.calls += 1
                for job in jobs:
                    if job["status"] in TERMINAL:
                        self.noticed.setdefault(job["jobName"], (job["status"], seen))
            self.polls += 1
            due += self.interval
            self.stop_event.wait(max(0.0, due - time.monotonic()))

    def stop(self) -> None:
        self.stop_event.set()
        self.join(timeout=5)


def expected_polling_delay(model_seconds: float, start_interval: float, run_interval: float) -> float:
    """Mean delay from a job's end to a poller noticing it, polling every ``start_interval``
    until it has seen the job RUNNING and every ``run_interval`` after that.

    The first poll after the job starts comes at a uniformly random phase within
    ``start_interval``: if the job has already ended it is seen then, otherwise the poller sees
    RUNNING and next looks ``run_interval`` later (and so on). For a model much longer than both
    intervals this tends to ``run_interval / 2``.
    """
    steps = 6000
    total = 0.0
    for i in range(steps):
        t = (i + 0.5) / steps * start_interval
        if t >= model_seconds:  # ended before the first look
            total += t - model_seconds
        elif model_seconds - t < run_interval:  # ended before the second look
            total += t + run_interval - model_seconds
        else:  # a later interval: run times aren't whole multiples of it, so a uniform phase
            total += run_interval / 2
    return total / steps


# -- the phases -----------------------------------------------------------------------------------


def _comment_prs(runtime: LocalRuntime, repository: str, prs: set[int]) -> dict[int, int]:
    """comment id -> PR number, for the PRs given."""
    ids: dict[int, int] = {}
    for pr in prs:
        for comment in runtime.github.comments(repository, pr):
            ids[int(comment["id"])] = pr
    return ids


def _github_write_times(
    runtime: LocalRuntime, timed: TimedRequests, repository: str, prs: set[int], shas: set[str]
) -> tuple[dict[int, list[float]], dict[str, list[float]]]:
    """Per PR, when each comment write was applied; per SHA, when each write of the commit's
    result was: its check run's (App credentials; the create at submission excepted, its path
    names no commit) or its commit status's (a token)."""
    owners = _comment_prs(runtime, repository, prs)
    check_shas = {int(c["id"]): sha for sha in shas for c in runtime.github.check_runs(repository, sha)}
    comments: dict[int, list[float]] = {}
    results: dict[str, list[float]] = {}
    created = re.compile(r"^/repos/[^/]+/[^/]+/issues/(\d+)/comments$")
    edited = re.compile(r"^/repos/[^/]+/[^/]+/issues/comments/(\d+)$")
    status = re.compile(r"^/repos/[^/]+/[^/]+/statuses/([0-9a-f]{40})$")
    check = re.compile(r"^/repos/[^/]+/[^/]+/check-runs/(\d+)$")
    for request, t in zip(list(timed), list(timed.times), strict=True):
        if not request.write or request.status >= 300:
            continue
        if m := created.match(request.path):
            comments.setdefault(int(m.group(1)), []).append(t)
        elif (m := edited.match(request.path)) and int(m.group(1)) in owners:
            comments.setdefault(owners[int(m.group(1))], []).append(t)
        elif m := status.match(request.path):
            results.setdefault(m.group(1), []).append(t)
        elif (m := check.match(request.path)) and int(m.group(1)) in check_shas:
            results.setdefault(check_shas[int(m.group(1))], []).append(t)
    return comments, results


def final_result(runtime: LocalRuntime, repository: str, sha: str) -> str | None:
    """What the commit shows once its run is reported, None before: its completed check run's
    conclusion (App credentials), else its last commit status that is not pending (a token)."""
    done = [c["conclusion"] for c in runtime.github.check_runs(repository, sha) if c["status"] == "completed"]
    if done:
        return str(done[-1])
    states = [s["state"] for s in runtime.github.statuses(repository, sha) if s["state"] != "pending"]
    return str(states[-1]) if states else None


# Exchanging the App's JWT for an installation token: once an hour per function environment,
# so counted beside the requests per run, not in them.
EXCHANGE_OPERATION = "apps/create-installation-access-token"


def github_breakdown(requests: list[Any]) -> dict[str, Any]:
    exchanges = sum(1 for r in requests if r.operation == EXCHANGE_OPERATION)
    requests = [r for r in requests if r.operation != EXCHANGE_OPERATION]
    operations = Counter(str(r.operation) for r in requests)
    return {
        "total": len(requests),
        "writes": sum(1 for r in requests if r.write),
        "reads": sum(1 for r in requests if not r.write),
        "list_comments": operations.get("issues/list-comments", 0),
        "check_runs": sum(n for op, n in operations.items() if op.startswith("checks/")),
        "token_exchanges": exchanges,
        "rejected": sum(1 for r in requests if r.rejected),
        "by_operation": dict(sorted(operations.items())),
    }


def _wait_for(condition: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.005)


def overhead_phase(
    runtime: LocalRuntime, probe: Probe, timed: TimedRequests, image: str, runs: int, poll_interval: float
) -> dict[str, Any]:
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
    for i in range(runs):
        pr = 1000 + i // 2
        p = plan(runtime, image, pr, i % 2, 5_000_000 + i)
        planned.append(p)
        head = p.request
        before = len(timed)
        sent[p.run_id] = time.monotonic()
        sqs.send_message(QueueUrl=queue_url, MessageBody=head.model_dump_json())
        sha, run_id = head.head_sha, p.run_id
        _wait_for(lambda: final_result(runtime, repository, sha) is not None, 120, f"run {run_id}")  # noqa: B023
        # The run's last GitHub call completes its check run (sets its commit status, on a
        # token); wait until the poller has seen it too.
        _wait_for(lambda: run_id in poller.noticed, 10, f"the poller to notice {run_id}")  # noqa: B023
        per_run_github.append({"first_on_pr": i % 2 == 0, **github_breakdown(list(timed)[before:])})
        state = final_result(runtime, repository, head.head_sha)
        if state != "success":
            problems.append(f"overhead run {p.run_id}: the commit shows {state}")
    poller.stop()

    comment_times, status_times = _github_write_times(
        runtime, timed, repository, {p.pr for p in planned}, {p.request.head_sha for p in planned}
    )
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
            "enqueue_to_submit": "monotonic clock before sqs.send_message -> botocore after-call "
            "event of the submit handler's batch.SubmitJob (the response parsed)",
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
    pull = event["pull_request"]
    times = []
    for i in range(repeats):
        # The job's variables as GitHub sets them, its token endpoint included (the step fetches
        # its OIDC token, then sends). The sample's repository is not the stack's: the backend
        # refuses these requests unrun, as it would any repository outside its allow-list.
        job = runtime.github.actions_job(
            event["repository"]["full_name"],
            "pull_request",
            sha=pull["head"]["sha"],
            run_id=7_000_000 + i,
            actor="bench",
            environment=APPROVAL_ENVIRONMENT,
            pull_request=(pull["number"], pull["head"]["ref"], pull["base"]["ref"], pull["base"]["sha"]),
        )
        env = {
            **os.environ,
            **job,
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


def sqs_event(bodies: list[str], queue_arn: str) -> dict[str, Any]:
    """Shaped as ``sam local generate-event sqs receive-message`` makes it."""
    now_ms = str(int(time.time() * 1000))
    return {
        "Records": [
            {
                "messageId": str(uuid.uuid4()),
                "receiptHandle": f"bench-{uuid.uuid4().hex}",
                "body": body,
                "attributes": {
                    "ApproximateReceiveCount": "1",
                    "SentTimestamp": now_ms,
                    "SenderId": "123456789012",
                    "ApproximateFirstReceiveTimestamp": now_ms,
                },
                "messageAttributes": {},
                "md5OfBody": hashlib.md5(body.encode()).hexdigest(),  # noqa: S324 - SQS's own checksum
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": REGION,
            }
            for body in bodies
        ]
    }


def submit_latency_phase(runtime: LocalRuntime, image: str, singles: int, batches: int) -> dict[str, Any]:
    """The submit handler alone: invoked directly; jobs finish quietly, so no events follow."""
    # The run-requests queue's mapping (the submit function also reads the operator queue, where
    # messages are believed to come from operators).
    queue_arn = boto3.client("sqs", region_name=REGION).get_queue_attributes(
        QueueUrl=runtime.outputs["RunRequestsQueueUrl"], AttributeNames=["QueueArn"]
    )["Attributes"]["QueueArn"]
    mapping = next(
        m for m in runtime.stack.event_sources if m.function == "SubmitFunction" and m.queue_arn == queue_arn
    )
    counter = iter(range(10**6))

    def bodies(n: int) -> list[str]:
        out = []
        for _ in range(n):
            i = next(counter)
            out.append(plan(runtime, image, 20_000 + i, 0, 6_000_000 + i).request.model_dump_json())
        return out

    def invoke(n: int) -> float:
        event = sqs_event(bodies(n), mapping.queue_arn)
        started = time.perf_counter()
        result, error = runtime.lambdas.invoke("SubmitFunction", event)
        elapsed = time.perf_counter() - started
        if error or (isinstance(result, dict) and result.get("batchItemFailures")):
            raise RuntimeError(f"submit handler failed in the latency bench: {result}")
        return elapsed

    before = runtime.executor.jobs_run
    with runtime.executor.quietly():
        invoke(1)  # warm: the first invocation in this phase is not counted
        one = [invoke(1) for _ in range(singles)]
        ten = [invoke(10) for _ in range(batches)]
    quiet = runtime.executor.jobs_run - before
    per_message_ten = [t / 10 for t in ten]
    return {
        "method": "Lambdas.invoke('SubmitFunction', event) in-process against moto's server, warm; "
        "each message a new PR (record, job definition reuse, SubmitJob, supersede check, 'queued' comment)",
        "batch_of_1_s": summary(one),
        "batch_of_10_invocation_s": summary(ten),
        "batch_of_10_per_message_s": summary(per_message_ten),
        "batch_of_10_requests_per_s": {
            "median": 10 / statistics.median(ten) if ten else 0.0,
            "overall": 10 * len(ten) / sum(ten) if ten else 0.0,
        },
        "jobs_submitted": quiet,
    }


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
    runtime: LocalRuntime, probe: Probe, timed: TimedRequests, image: str, requests: int, prs: int, dup: float
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

    github_before = len(timed)
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
    github_requests = list(timed)[github_before:]
    github_times = list(timed.times)[github_before:]
    last_github = max(github_times) if github_times else idle_at
    wall = last_github - started

    # Batch jobs: every status of both queues.
    batch = boto3.client("batch", region_name=REGION)
    queues = [runtime.outputs[k] for k in runtime.outputs if k.endswith("JobQueueArn")] or [
        q["jobQueueArn"] for q in batch.describe_job_queues()["jobQueues"]
    ]
    jobs: dict[str, str] = {}
    for queue in queues:
        for status in ("SUBMITTED", "PENDING", "RUNNABLE", "STARTING", "RUNNING", "SUCCEEDED", "FAILED"):
            for jobs_page in batch.get_paginator("list_jobs").paginate(jobQueue=queue, jobStatus=status):  # type: ignore[arg-type]
                for job in jobs_page["jobSummaryList"]:
                    jobs[job["jobId"]] = job["jobName"]
    per_name = Counter(jobs.values())
    records = {r.run_id: r for r in table.scan()}
    statuses = Counter(r.status.value for r in records.values() if r.run_id in expected)
    lost_jobs = sorted(expected - set(per_name))
    duplicated_jobs = sorted(name for name, n in per_name.items() if n > 1)
    lost_records = sorted(expected - set(records))
    not_terminal = sorted(r for r in expected & set(records) if records[r].status.value not in TERMINAL_RUN_STATUSES)
    unexpected = sorted(set(per_name) - expected)
    submit_calls = sum(len(v) for k, v in probe.submit_returned.items() if k in expected)
    job_id_mismatch = sorted(
        r for r in expected & set(records) if records[r].job_id and jobs.get(str(records[r].job_id)) != r
    )
    comments_per_pr = Counter(len(runtime.github.comments(repository, pr)) for pr in range(1, prs + 1))
    sfn = boto3.client("stepfunctions", region_name=REGION)
    executions = 0
    execution_statuses: Counter[str] = Counter()
    failure_causes: Counter[str] = Counter()
    for page in sfn.get_paginator("list_executions").paginate(stateMachineArn=runtime.state_machine_arn):
        executions += len(page["executions"])
        for execution in page["executions"]:
            execution_statuses[execution["status"]] += 1
            if execution["status"] != "SUCCEEDED" and sum(failure_causes.values()) < 50:
                history = sfn.get_execution_history(executionArn=execution["executionArn"])["events"]
                failed = [e for e in history if e["type"] == "TaskFailed"]
                detail = failed[0].get("taskFailedEventDetails", {}) if failed else {}
                cause = str(detail.get("cause", ""))
                failure_causes[f"{execution['status']}: {detail.get('error')} {cause[:160]}"] += 1
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


# -- soak: what the PR shows converges (issue 17) ------------------------------------------------

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
    runtime.github.add_latency(lambda _op: 0.0)
    wall = time.monotonic() - started

    table = RunsTable(runtime.outputs["RunsTableName"])
    records = {r.run_id: r for r in table.scan() if r.run_id in expected}
    batch = boto3.client("batch", region_name=REGION)
    names: Counter[str] = Counter()
    for status in ("SUBMITTED", "PENDING", "RUNNABLE", "STARTING", "RUNNING", "SUCCEEDED", "FAILED"):
        for page in batch.get_paginator("list_jobs").paginate(
            jobQueue=runtime.outputs["CpuJobQueueArn"],
            jobStatus=status,  # type: ignore[arg-type]
        ):
            names.update(j["jobName"] for j in page["jobSummaryList"] if j["jobName"] in expected)
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
    executions = Counter[str]()
    sfn = boto3.client("stepfunctions", region_name=REGION)
    causes: list[str] = []
    for listed in sfn.get_paginator("list_executions").paginate(stateMachineArn=runtime.state_machine_arn):
        executions.update(e["status"] for e in listed["executions"])
        for execution in listed["executions"]:
            if execution["status"] != "SUCCEEDED" and len(causes) < 20:
                history = sfn.get_execution_history(executionArn=execution["executionArn"])["events"]
                failed = [e.get("taskFailedEventDetails", {}) for e in history if e["type"] == "TaskFailed"]
                causes += [f"{execution['name']}: {f.get('error')} {str(f.get('cause', ''))[:400]}" for f in failed]
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


# -- cold start -----------------------------------------------------------------------------------


def functions_of_template() -> dict[str, str]:
    """logical id -> handler module, for each function in template.yaml."""
    resources = load_template()["Resources"]
    return {
        logical_id: str(r["Properties"]["Handler"]).rsplit(".", 1)[0]
        for logical_id, r in resources.items()
        if r["Type"] == "AWS::Serverless::Function"
    }


def package_size(directory: Path, zipped: bool) -> dict[str, Any]:
    files = [p for p in directory.rglob("*") if p.is_file()]
    size = sum(p.stat().st_size for p in files)
    out: dict[str, Any] = {"files": len(files), "unzipped_bytes": size}
    if zipped:
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=6) as archive:
            for p in files:
                archive.write(p, p.relative_to(directory))
        out["zipped_bytes"] = buffer.tell()
    return out


def cold_start_phase(repeats: int, build: bool, zipped: bool) -> dict[str, Any]:
    """Each handler imported as on Lambda, from its built package (lambda_packages.isolated),
    against a bare ``import boto3`` from the runtime's boto3 alone; each package's size."""
    functions = functions_of_template()
    build_note = None
    built_now = False
    if not all(f in lambda_packages.built() for f in functions) and build:
        # functions/Makefile builds with this uv and this interpreter (Python 3.12).
        env = {**os.environ, "UV": SAM_BUILD[0], "PYTHON": sys.executable, "UV_LINK_MODE": "copy"}
        log = subprocess.run(SAM_BUILD, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
        built_now = log.returncode == 0
        if not built_now:
            build_note = f"sam build failed: {log.stdout[-500:]}{log.stderr[-500:]}"
    found = lambda_packages.built()
    if any(f not in found for f in functions):
        build_note = build_note or "no .aws-sam/build (run `make template-checks` or the full bench to build)"
        functions = {}  # boto3 alone, then
    with tempfile.TemporaryDirectory() as tmp:
        runtime = lambda_packages.runtime_dir(Path(tmp) / "runtime")
        cases = {"boto3": ("boto3", [runtime])}
        for logical_id in functions:
            b = found[logical_id]
            assert b.handler_module is not None
            cases[logical_id] = (b.handler_module, [b.directory, *b.layers, runtime])
        samples = lambda_packages.median_import_seconds(cases, repeats)
    imports = {k: statistics.median(v) for k, v in samples.items()}
    boto3_s = imports["boto3"]
    layers = {k: b for k, b in found.items() if b.kind == "layer"}
    stamp = BUILD_DIR / "template.yaml"
    return {
        "method": "a fresh interpreter per import (python -S -P, no byte code written), nothing on sys.path "
        "but the function's built package, its layers and boto3 with its dependencies (as Lambda's runtime "
        "has them); time.perf_counter() around the import statement; the cases take turns; median of "
        f"{repeats}",
        "boto3_import_s": boto3_s,
        "boto3_samples_s": samples["boto3"],
        "ratio_goal": IMPORT_RATIO_GOAL,
        "package_goal_bytes": lambda_packages.MAX_PACKAGE_BYTES,
        "handlers": {
            logical_id: {
                "module": module,
                "import_s": imports[logical_id],
                "samples_s": samples[logical_id],
                "ratio_to_boto3": imports[logical_id] / boto3_s,
                "package": package_size(found[logical_id].directory, zipped),
                "layers": [str(p.parent.name) for p in found[logical_id].layers],
            }
            for logical_id, module in functions.items()
        },
        "layers": {k: package_size(b.directory.parent, zipped) for k, b in layers.items()},
        "sam_build": {
            "dir": str(BUILD_DIR.relative_to(ROOT)),
            "built_by_this_run": built_now,
            "built_at": datetime.fromtimestamp(stamp.stat().st_mtime, UTC).isoformat(timespec="seconds")
            if stamp.exists()
            else None,
            "note": build_note,
        },
    }


# -- the cold path --------------------------------------------------------------------------------

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


def _settled(runtime: LocalRuntime, functions: tuple[str, ...], settle: float = 0.3, timeout: float = 60) -> None:
    """Until the queues of ``functions`` are drained and their pollers idle for ``settle`` s."""
    sqs = boto3.client("sqs", region_name=REGION)
    pollers = [p for p in runtime.pollers if p.mapping.function in functions]
    deadline = time.monotonic() + timeout
    quiet_since: float | None = None
    while time.monotonic() < deadline:
        busy = any(p.busy for p in pollers)
        for poller in pollers if not busy else []:
            attrs = sqs.get_queue_attributes(
                QueueUrl=poller.queue_url,
                AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
            )["Attributes"]
            busy = busy or any(int(v) for v in attrs.values())
        if busy:
            quiet_since = None
        elif quiet_since is None:
            quiet_since = time.monotonic()
        elif time.monotonic() - quiet_since >= settle:
            return
        time.sleep(0.05)
    raise TimeoutError(f"{', '.join(functions)} still busy after {timeout:.0f} s")


def _status(table: RunsTable, run_id: str) -> str | None:
    record = table.get(run_id)
    return record.status.value if record else None


def cold_path_phase(runtime: LocalRuntime, probe: Probe, timed: TimedRequests, image: str, runs: int) -> dict[str, Any]:
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
    comment = re.compile(r"^/repos/[^/]+/[^/]+/issues/(?:(\d+)/comments|comments/(\d+))$")
    with tempfile.TemporaryDirectory(prefix="modelrun-bench-gates-") as tmp:
        gates = Path(tmp)
        command = ["python", "-c", gated_script(gates)]
        for i in range(runs):
            p = plan(runtime, image, 3000 + i, 0, 9_000_000 + i, command)
            pools["SubmitFunction"].recycle()
            sent = time.monotonic()
            sqs.send_message(QueueUrl=queue_url, MessageBody=p.request.model_dump_json())
            run_id = p.run_id
            _wait_for(lambda: run_id in probe.submit_returned, 60, f"SubmitJob of {run_id}")  # noqa: B023
            enqueue_to_submit.append(probe.submit_returned[run_id][0] - sent)
            # The track function has taken the RUNNING event (and written what it writes for it).
            _wait_for(lambda: _status(table, run_id) == "RUNNING", 60, f"{run_id} RUNNING")  # noqa: B023
            _settled(runtime, ("TrackFunction",))
            for logical_id in TERMINAL_PATH:
                pools[logical_id].recycle()
            before = len(timed)
            (gates / run_id).touch()

            def comment_after_terminal() -> float | None:
                terminal = probe.terminal_at(run_id)  # noqa: B023
                if terminal is None:
                    return None
                ours = {str(c["id"]) for c in runtime.github.comments(repository, p.pr)}  # noqa: B023
                requests, times = list(timed)[before:], list(timed.times)[before:]  # noqa: B023
                for request, t in zip(requests, times, strict=True):
                    m = comment.match(request.path)
                    if not m or not request.write or request.status >= 300 or t < terminal[1]:
                        continue
                    if m.group(1) == str(p.pr) or m.group(2) in ours:  # noqa: B023
                        return t - terminal[1]
                return None

            _wait_for(lambda: comment_after_terminal() is not None, 120, f"the comment of {run_id}")
            terminal_to_comment.append(comment_after_terminal() or 0.0)
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


# -- the polling comparison -----------------------------------------------------------------------


def polling_comparison(overhead: dict[str, Any], enqueue: dict[str, float], model_seconds: float) -> dict[str, Any]:
    ours = overhead["terminal_to_comment_s"]
    polled = overhead["poller"]["detection_delay_s"]
    interval = overhead["poller"]["interval_s"]
    # Measured delay per unit of interval (0.5 for an ideal poller; more with describe-jobs' cost).
    factor = polled["mean"] / interval if polled.get("n") else 0.5
    naive_running = factor * OLD_RUN_INTERVAL_S
    naive_starting = factor * OLD_START_INTERVAL_S
    rows = {}
    for label, duration in (("avm", model_seconds), ("one_hour_model", LONG_MODEL_SECONDS)):
        delay = expected_polling_delay(duration, OLD_START_INTERVAL_S, OLD_RUN_INTERVAL_S)
        rows[label] = {
            "model_seconds": duration,
            "expected_detection_delay_s": delay,
            "ratio_to_ours": delay / ours["median"] if ours.get("n") else None,
            # Both designs build and push the image first (same time, not measured here: no
            # Docker); the runner time below is what each holds the runner for after that.
            "ci_runner_s_ours": enqueue["median"],
            "ci_runner_s_polling": enqueue["median"] + duration + delay,
        }
    return {
        "old_intervals_s": {"starting": OLD_START_INTERVAL_S, "running": OLD_RUN_INTERVAL_S},
        "measured_delay_per_interval": factor,
        "naive_expected_delay_s": {"while_starting": naive_starting, "while_running": naive_running},
        "naive_ratio_to_ours_running": naive_running / ours["median"] if ours.get("n") else None,
        "model_duration_source": f"README.md 'Measured': full AVM, ≈{AVM_RUN_SECONDS:g} s whole container run",
        "queue_and_start_time": "not included (0 here; Fargate adds 30-90 s, held on the runner by polling only)",
        "by_model": rows,
    }


# -- output ---------------------------------------------------------------------------------------


class _Discard(io.TextIOBase):
    """stdout while the stack runs: the handlers' EMF metric lines (CloudWatch's, in AWS)."""

    def write(self, text: str) -> int:
        return len(text)


@contextlib.contextmanager
def local_stack(probe: Probe) -> Iterator[tuple[LocalRuntime, TimedRequests]]:
    with contextlib.redirect_stdout(_Discard()), LocalRuntime(parameters={"LogLevel": "ERROR"}) as rt:
        timed = probe.attach(rt)
        try:
            yield rt, timed
        finally:
            # Pollers first, so that nothing reaches for the account while it is reset.
            rt.stopping.set()
            for poller in rt.pollers:
                poller.join(timeout=5)


def machine() -> dict[str, Any]:
    return {
        "platform": platform.platform(),
        "machine": platform.machine(),
        "processor": platform.processor() or None,
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "moto": metadata.version("moto"),
    }


def render_markdown(results: dict[str, Any]) -> str:
    o = results.get("overhead") or {}
    p = results.get("polling") or {}
    t = results.get("throughput") or {}
    s = results.get("submit_latency") or {}
    c = results.get("cold_start") or {}
    k = results.get("soak") or {}
    m = results["machine"]
    lines = [
        f"Measured {results['date']} on {m['platform']} ({m['cpu_count']} CPUs), Python {m['python']}, "
        f"moto {m['moto']}, by `{results['command']}` in {results['wall_seconds']:.0f} s.",
        "",
        "| what | figure |",
        "|---|---|",
    ]
    if o:
        e2s, t2c = o["enqueue_to_submitjob_s"], o["terminal_to_comment_s"]
        t2s, r2c = o["terminal_to_result_s"], o["running_to_log_link_s"]
        lines += [
            f"| run request on SQS → `SubmitJob` returned ({o['runs']} runs, median / p95) "
            f"| {ms(e2s)} / {ms(e2s, 'p95')} |",
            f"| terminal Batch event → PR comment written (median / p95) | {ms(t2c)} / {ms(t2c, 'p95')} |",
            f"| terminal Batch event → check run completed (commit status, on a token) (median / p95) "
            f"| {ms(t2s)} / {ms(t2s, 'p95')} |",
            f"| RUNNING event → the log link shown (check run; comment, on a token) (median / p95) "
            f"| {ms(r2c)} / {ms(r2c, 'p95')} |",
        ]
        g = o["github"]
        lines.append(
            f"| GitHub API requests per run on {g.get('credentials', 'app')} credentials, submission → final "
            f"report (goal ≤ 5) | {g['per_run']['total']:.2f}, at most {g.get('max_per_run', 0)} "
            f"({g['per_run']['writes']:.2f} writes; {g['per_run']['check_runs']:.2f} to the check run; "
            f"{g['first_run_on_pr']['total']:.2f} on a PR's first run, {g['later_run_on_pr']['total']:.2f} later; "
            f"list calls {g['per_run']['list_comments']:.2f}); installation-token exchanges besides: "
            f"{g.get('token_exchanges', 0)} in {o['runs']} runs (one per function environment and hour) |"
        )
    cp = results.get("cold_path") or {}
    if cp:

        def warm(key: str) -> str:
            return f" (warm: {ms(o[key])} / {ms(o[key], 'p95')})" if o.get(key, {}).get("n") else ""

        c2c, c2s = cp["terminal_to_comment_s"], cp["enqueue_to_submitjob_s"]
        inits = "; ".join(
            f"{k.removesuffix('Function')} {ms(v)} / {ms(v, 'p95')}" for k, v in cp["init_s"].items() if v.get("n")
        )
        lines += [
            f"| cold: terminal Batch event → PR comment written, Track, CollectResults and UpdatePullRequest each "
            f"started cold ({cp['runs']} runs, median / p95; goal p95 ≤ 2 s) | {ms(c2c)} / {ms(c2c, 'p95')}"
            f"{warm('terminal_to_comment_s')} |",
            f"| cold: run request on SQS → `SubmitJob` returned, Submit started cold (median / p95) | "
            f"{ms(c2s)} / {ms(c2s, 'p95')}{warm('enqueue_to_submitjob_s')} |",
            f"| cold starts: init, worker process start → handler loaded (median / p95) | {inits} |",
        ]
    if p and o:
        pd = o["poller"]["detection_delay_s"]
        avm = p["by_model"]["avm"]
        hour = p["by_model"]["one_hour_model"]
        ratio = o["poller"]["ratio_to_ours_median"]
        lines += [
            f"| polling baseline: describe-jobs every {o['poller']['interval_s']:g} s, detection delay "
            f"(median / p95) | {ms(pd)} / {ms(pd, 'p95')} ({ratio:.1f}× ours, to detection only) |",
            f"| old design's intervals (60 s starting, 5 min running): expected detection delay | "
            f"{p['naive_expected_delay_s']['while_running']:.0f} s for a long model "
            f"({p['naive_ratio_to_ours_running']:.0f}× ours); {avm['expected_detection_delay_s']:.0f} s for the "
            f"{avm['model_seconds']:g} s AVM ({avm['ratio_to_ours']:.0f}× ours) |",
            f"| CI runner time per run after the image push: ours (enqueue step) vs polling | "
            f"{avm['ci_runner_s_ours']:.1f} s vs {avm['ci_runner_s_polling']:.0f} s for the AVM; "
            f"vs {hour['ci_runner_s_polling'] / 60:.0f} min for a 1 h model |",
        ]
    if t:
        g = t["github"]
        lines += [
            f"| throughput: {t['requests_unique']} run requests over {t['prs']} PRs "
            f"(+{t['duplicates_sent']} duplicates) | {t['wall_seconds_first_send_to_last_github_call']:.0f} s "
            f"({t['runs_per_second']:.1f} runs/s) |",
            f"| Batch jobs created / run records (must equal the unique requests) | "
            f"{t['batch_jobs_created']} / {t['run_records']} of {t['requests_unique']} |",
            f"| terminal records | {', '.join(f'{k} {v}' for k, v in t['run_statuses'].items())} |",
            f"| GitHub API requests per run under load | {g['per_run']:.2f} ({g['writes_per_run']:.2f} writes, "
            f"{g['list_calls_per_run']:.2f} list calls; {g.get('token_exchanges', 0)} token exchanges besides) |",
        ]
        if t.get("iam"):
            i = t["iam"]
            lines.append(
                f"| IAM enforced: calls checked per run, denied; each check (median / p95); all checks' share "
                f"of the throughput wall time | {i['per_run']:.0f}, {i['denied']} denied; "
                f"{i['check_s'].get('median', 0) * 1000:.2f} ms / {i['check_s'].get('p95', 0) * 1000:.2f} ms; "
                f"{i['share_of_wall']:.0%} |"
            )
    if k:
        lines += [
            f"| soak: {k['runs']} runs over {k['prs']} PRs, {k['faulted_github_answers']} faulted GitHub answers, "
            f"random latency in every function | {k['wall_seconds']:.0f} s; "
            f"{', '.join(f'{n} {v}' for n, v in sorted(k['run_statuses'].items()))} |",
            f"| soak: lost / duplicated / stale comments / stale check runs (commit statuses, on a token) | "
            f"{k['lost']} / {k['duplicated']} / {k['stale_comments']} of {k['prs']} / "
            f"{k['stale_results']} of {k['results_checked']} ({k.get('duplicated_check_runs', 0)} doubled) |",
        ]
    if s:
        b1, b10 = s["batch_of_1_s"], s["batch_of_10_per_message_s"]
        lines += [
            f"| submit handler latency per message, batch of 1 (median / p95) | {ms(b1)} / {ms(b1, 'p95')} |",
            f"| submit handler latency per message, batches of 10 (median / p95) | {ms(b10)} / {ms(b10, 'p95')} |",
            f"| submit handler requests/s, batches of 10 | {s['batch_of_10_requests_per_s']['overall']:.1f} |",
        ]
    if c and c.get("handlers"):

        def size(pkg: dict[str, Any]) -> str:
            text = f"{pkg['unzipped_bytes'] / 2**20:.1f} MiB unzipped"
            return text + (f", {pkg['zipped_bytes'] / 2**20:.1f} MiB zipped" if "zipped_bytes" in pkg else "")

        lines.append(
            f"| `import boto3` (the runtime's boto3 alone, fresh interpreter) | {c['boto3_import_s'] * 1000:.0f} ms |"
        )
        for logical_id, h in c["handlers"].items():
            with_layers = f" + {', '.join(h['layers'])}" if h["layers"] else ""
            lines.append(
                f"| {logical_id} (`{h['module']}`): import, ratio to boto3 (goal ≤ {c['ratio_goal']}×); package | "
                f"{h['import_s'] * 1000:.0f} ms, {h['ratio_to_boto3']:.2f}×; {size(h['package'])}{with_layers} |"
            )
        for logical_id, pkg in c["layers"].items():
            lines.append(f"| {logical_id} (a layer) | {size(pkg)} |")
    elif c:
        lines.append(f"| handler imports | {c['sam_build']['note']} |")
    lines.append("")
    return "\n".join(lines)


def print_table(markdown: str) -> None:
    rows = [line for line in markdown.splitlines() if line.startswith("| ") and not line.startswith("| what")]
    width = max((len(r.split(" | ")[0]) for r in rows), default=40)
    print(markdown.splitlines()[0])
    for row in rows:
        cells = [c.strip() for c in row.strip("|").split(" | ")]
        print(f"  {cells[0].strip():<{width}}  {cells[1] if len(cells) > 1 else ''}")


# -- main -----------------------------------------------------------------------------------------


@dataclass
class Options:
    runs: int
    requests: int
    prs: int
    duplicates: float
    poll_interval: float
    singles: int
    batches: int
    import_repeats: int
    build: bool
    zipped: bool
    enqueue_repeats: int
    out: Path
    model_seconds: float
    soak_runs: int = 200
    soak_prs: int = 20
    only_soak: bool = False
    cold_runs: int = 10
    only_cold: bool = False
    argv: list[str] = field(default_factory=list)


def parse(argv: list[str] | None) -> Options:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=None, help="overhead runs (default 50; --quick 6)")
    parser.add_argument("--requests", type=int, default=None, help="throughput requests (default 1000)")
    parser.add_argument("--prs", type=int, default=None, help="PRs the requests spread over (default 200)")
    parser.add_argument("--duplicates", type=float, default=0.2, help="fraction of requests sent twice")
    parser.add_argument("--poll-interval", type=float, default=0.5, help="the baseline poller's interval (s)")
    parser.add_argument("--quick", action="store_true", help="small counts, no sam build, no zipping")
    parser.add_argument("--out", type=Path, default=OUT_DIR, help="where results.json and RESULTS.md go")
    parser.add_argument(
        "--model-seconds", type=float, default=AVM_RUN_SECONDS, help="the model duration for CI runner time"
    )
    parser.add_argument("--soak-runs", type=int, default=None, help="soak runs with GitHub faults (default 200)")
    parser.add_argument("--soak-prs", type=int, default=None, help="PRs the soak's runs spread over (default 20)")
    parser.add_argument("--only-soak", action="store_true", help="run the soak alone")
    parser.add_argument("--cold-runs", type=int, default=None, help="runs with every function cold (default 10)")
    parser.add_argument(
        "--only-cold", action="store_true", help="the cold start and the cold path (with the warm overhead) alone"
    )
    args = parser.parse_args(argv)
    quick = bool(args.quick)
    return Options(
        runs=args.runs or (6 if quick else 50),
        requests=args.requests or (40 if quick else 1000),
        prs=args.prs or (8 if quick else 200),
        duplicates=args.duplicates,
        poll_interval=args.poll_interval,
        singles=5 if quick else 30,
        batches=2 if quick else 10,
        import_repeats=1 if quick else 7,
        build=not quick,
        zipped=not quick,
        enqueue_repeats=1 if quick else 5,
        out=args.out,
        model_seconds=args.model_seconds,
        soak_runs=args.soak_runs or (40 if quick else 200),
        soak_prs=args.soak_prs or (8 if quick else 20),
        only_soak=bool(args.only_soak),
        cold_runs=args.cold_runs or (1 if quick else 10),
        only_cold=bool(args.only_cold),
        argv=list(argv if argv is not None else sys.argv[1:]),
    )


def main(argv: list[str] | None = None) -> int:
    options = parse(argv)
    if options.requests < options.prs:
        raise SystemExit("--requests must be at least --prs")
    started = time.monotonic()
    results: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": " ".join(["python -m modelrun_local.bench", *options.argv]).strip(),
        "machine": machine(),
    }
    problems: list[str] = []

    def step(text: str) -> None:
        print(f"[{time.monotonic() - started:6.1f} s] {text}", file=sys.stderr, flush=True)

    if not options.only_soak:
        step("cold start: handler imports and deployment packages")
        results["cold_start"] = cold_start_phase(options.import_repeats, options.build, options.zipped)

        with Probe() as probe, noop_image_dir() as image_dir:
            step(f"overhead: {options.runs} runs one after another, with a describe-jobs poller")
            with local_stack(probe) as (runtime, timed):
                image = runtime.push_image(image_dir, tag="bench-noop")
                results["overhead"] = overhead_phase(runtime, probe, timed, image, options.runs, options.poll_interval)
                problems += results["overhead"]["problems"]
                step(f"cold path: {options.cold_runs} runs, each function started cold")
                results["cold_path"] = cold_path_phase(runtime, probe, timed, image, options.cold_runs)
                problems += results["cold_path"]["problems"]
                if not options.only_cold:
                    step("CI step of our design: `modelrun enqueue` as a process")
                    results["enqueue_step_s"] = enqueue_step_seconds(runtime, image, options.enqueue_repeats)
                    step(f"submit handler latency: {options.singles} batches of 1, {options.batches} of 10")
                    results["submit_latency"] = submit_latency_phase(runtime, image, options.singles, options.batches)
            if not options.only_cold:
                results["polling"] = polling_comparison(
                    results["overhead"], results["enqueue_step_s"], options.model_seconds
                )

    if not options.only_soak and not options.only_cold:
        with Probe() as probe, noop_image_dir() as image_dir:
            step(f"throughput: {options.requests} run requests over {options.prs} PRs")
            with local_stack(probe) as (runtime, timed):
                image = runtime.push_image(image_dir, tag="bench-noop")
                results["throughput"] = throughput_phase(
                    runtime, probe, timed, image, options.requests, options.prs, options.duplicates
                )
                problems += results["throughput"]["problems"]

    if not options.only_cold:
        with Probe() as probe, noop_image_dir() as image_dir:
            step(f"soak: {options.soak_runs} runs over {options.soak_prs} PRs, GitHub faults and latency injected")
            with local_stack(probe) as (runtime, _timed):
                image = runtime.push_image(image_dir, tag="bench-noop")
                results["soak"] = soak_phase(runtime, image, options.soak_runs, options.soak_prs)
                problems += results["soak"]["problems"]

    results["wall_seconds"] = time.monotonic() - started
    results["problems"] = problems
    results["ok"] = not problems
    options.out.mkdir(parents=True, exist_ok=True)
    (options.out / "results.json").write_text(json.dumps(results, indent=2, default=str) + "\n")
    markdown = render_markdown(results)
    (options.out / "RESULTS.md").write_text("# Benchmarks\n\n" + markdown)
    print()
    print_table(markdown)
    print(f"\nfigures in {options.out / 'results.json'}, table in {options.out / 'RESULTS.md'}")
    if problems:
        print("\nFAILED: runs lost or duplicated, or a run went wrong:", file=sys.stderr)
        for problem in problems:
            print(f"  - {problem}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
