"""What the phases measure with: timestamps of Batch states and GitHub writes taken in this
process, the old design's describe-jobs poller, and the local stack they run on."""

from __future__ import annotations

import contextlib
import io
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3

from modelrun_bench.workload import noop_image_dir
from modelrun_local.github_auth import EXCHANGE_OPERATION
from modelrun_local.github_server import RecordedRequest
from modelrun_local.runtime import REGION, LocalRuntime

TERMINAL = ("SUCCEEDED", "FAILED")
DEFAULT_BRANCH_OPERATION = "repos/get"  # GET /repos/{owner}/{repo}: the default branch


class Probe:
    """Timestamps taken in this process, without touching the handlers' code: the local AWS
    reports each job's states, SUBMITTED as its SubmitJob accepts it."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.submit_returned: dict[str, list[float]] = {}  # job name -> each SubmitJob's return
        self.job_ids: dict[str, str] = {}  # job id -> job name
        self.states: dict[tuple[str, str], float] = {}  # (job name, status) -> first time set

    def attach(self, runtime: LocalRuntime) -> None:
        def state_set(job_name: str, status: str, at: float, job_id: str) -> None:
            with self.lock:
                if status == "SUBMITTED":
                    self.submit_returned.setdefault(job_name, []).append(at)
                    self.job_ids[job_id] = job_name
                self.states.setdefault((job_name, status), at)

        runtime.batch_state_listeners.append(state_set)

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


def wait_for[T](condition: Callable[[], T], timeout: float, what: str) -> T:
    """``condition()``'s value once it holds (is truthy), checked every 5 ms (the figures are in
    milliseconds)."""
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.005)
    return value


def comment_prs(runtime: LocalRuntime, repository: str, prs: set[int]) -> dict[int, int]:
    """comment id -> PR number, for the PRs given."""
    ids: dict[int, int] = {}
    for pr in prs:
        for comment in runtime.github.comments(repository, pr):
            ids[int(comment["id"])] = pr
    return ids


def github_write_times(
    runtime: LocalRuntime, requests: list[RecordedRequest], repository: str, prs: set[int], shas: set[str]
) -> tuple[dict[int, list[float]], dict[str, list[float]]]:
    """Per PR, when each comment write among ``requests`` was applied; per SHA, when each write
    of the commit's result was: its check run's (App credentials; the create at submission
    excepted, its path names no commit) or its commit status's (a token)."""
    owners = comment_prs(runtime, repository, prs)
    check_shas = {int(c["id"]): sha for sha in shas for c in runtime.github.check_runs(repository, sha)}
    comments: dict[int, list[float]] = {}
    results: dict[str, list[float]] = {}
    created = re.compile(r"^/repos/[^/]+/[^/]+/issues/(\d+)/comments$")
    edited = re.compile(r"^/repos/[^/]+/[^/]+/issues/comments/(\d+)$")
    status = re.compile(r"^/repos/[^/]+/[^/]+/statuses/([0-9a-f]{40})$")
    check = re.compile(r"^/repos/[^/]+/[^/]+/check-runs/(\d+)$")
    for request in requests:
        if not request.write or request.status >= 300:
            continue
        t = request.answered_at
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


def github_breakdown(requests: list[RecordedRequest]) -> dict[str, Any]:
    # Exchanging the App's JWT for an installation token: once an hour per function environment,
    # so counted beside the requests per run, not in them.
    exchanges = sum(1 for r in requests if r.operation == EXCHANGE_OPERATION)
    # The repository's default branch (issue 21: a PR's base must be it): cached an hour per
    # function environment, so counted beside the requests per run too.
    defaults = sum(1 for r in requests if r.operation == DEFAULT_BRANCH_OPERATION)
    requests = [r for r in requests if r.operation not in (EXCHANGE_OPERATION, DEFAULT_BRANCH_OPERATION)]
    operations = Counter(str(r.operation) for r in requests)
    return {
        "total": len(requests),
        "writes": sum(1 for r in requests if r.write),
        "reads": sum(1 for r in requests if not r.write),
        "list_comments": operations.get("issues/list-comments", 0),
        "check_runs": sum(n for op, n in operations.items() if op.startswith("checks/")),
        "token_exchanges": exchanges,
        "default_branch_lookups": defaults,
        "rejected": sum(1 for r in requests if r.rejected),
        "by_operation": dict(sorted(operations.items())),
    }


class _Discard(io.TextIOBase):
    """stdout while the stack runs: the handlers' EMF metric lines (CloudWatch's, in AWS)."""

    def write(self, text: str) -> int:
        return len(text)


@contextlib.contextmanager
def local_stack(probe: Probe) -> Iterator[LocalRuntime]:
    """A local stack whose Batch states ``probe`` times, its handlers' stdout discarded."""
    # The benchmark's 1,000 distinct requests of one repository are its load, not an attack.
    parameters = {"LogLevel": "ERROR", "MaxRequestsPerRepositoryHour": "100000"}
    with contextlib.redirect_stdout(_Discard()), LocalRuntime(parameters=parameters) as rt:
        probe.attach(rt)
        yield rt


@contextlib.contextmanager
def bench_stack() -> Iterator[tuple[Probe, LocalRuntime, str]]:
    """A fresh probe, a local stack it times (``local_stack``) and the no-op model's image there."""
    probe = Probe()
    with noop_image_dir() as image_dir, local_stack(probe) as runtime:
        yield probe, runtime, runtime.push_image(image_dir, tag="bench-noop")


BATCH_STATUSES = ("SUBMITTED", "PENDING", "RUNNABLE", "STARTING", "RUNNING", "SUCCEEDED", "FAILED")


def batch_jobs(queues: list[str]) -> dict[str, str]:
    """job id -> job name, for every job of the queues in every status."""
    batch = boto3.client("batch", region_name=REGION)
    jobs: dict[str, str] = {}
    for queue in queues:
        for status in BATCH_STATUSES:
            pages = batch.get_paginator("list_jobs").paginate(jobQueue=queue, jobStatus=status)  # type: ignore[arg-type]
            for page in pages:
                jobs.update((job["jobId"], job["jobName"]) for job in page["jobSummaryList"])
    return jobs


@dataclass
class Executions:
    """The report state machine's executions: how many in each status, and why some failed."""

    statuses: Counter[str] = field(default_factory=Counter)
    # (execution name, status, its TaskFailed events' details), for the first ones not SUCCEEDED
    failed: list[tuple[str, str, list[dict[str, Any]]]] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(self.statuses.values())


def report_executions(runtime: LocalRuntime, keep_failed: int) -> Executions:
    """Every report execution's status, and the task failures of the first ``keep_failed`` that
    did not succeed (each history read costs the local AWS, so not of them all)."""
    sfn = boto3.client("stepfunctions", region_name=REGION)
    found = Executions()
    for page in sfn.get_paginator("list_executions").paginate(stateMachineArn=runtime.state_machine_arn):
        for execution in page["executions"]:
            found.statuses[execution["status"]] += 1
            if execution["status"] != "SUCCEEDED" and len(found.failed) < keep_failed:
                history = sfn.get_execution_history(executionArn=execution["executionArn"])["events"]
                details = [dict(e.get("taskFailedEventDetails", {})) for e in history if e["type"] == "TaskFailed"]
                found.failed.append((execution["name"], execution["status"], details))
    return found
