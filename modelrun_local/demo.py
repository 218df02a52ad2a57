"""The main job: a full model run for a simulated PR, on the embedded default.

1. starts the local stack (moto's server with template.yaml's resources, the local GitHub);
2. runs main once (a workflow_dispatch on main), so the PR has a baseline to compare with;
3. builds the run request from a real ``pull_request`` payload exactly as the workflow's
   enqueue step does, and puts it on the run-requests queue;
4. waits while it flows: SQS -> submit -> Batch -> EventBridge -> track -> state machine ->
   GitHub; then prints the PR comment and the ``modelrun`` check run as GitHub received them,
   and where the report and logs are.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import boto3

from modelrun.adapters.aws import RunsTable
from modelrun.domain import naming
from modelrun.domain.naming import LOG_GROUP
from modelrun_local.github_auth import EXCHANGE_OPERATION
from modelrun_local.runtime import LocalRuntime
from modelrun_local.stack import ROOT
from modelrun_local.workflow_job import branch_job, pull_request_job, retarget

FIXTURES = ROOT / "tests" / "fixtures" / "webhooks"
MODEL_DIR = ROOT / "model_container"


def pull_request_event() -> dict[str, Any]:
    event: dict[str, Any] = json.loads((FIXTURES / "pull_request.opened.json").read_text())
    return event


def pr_checkout(workdir: Path) -> Path:
    """The PR's version of model_container: the experiment is a change to params.yaml."""
    checkout = workdir / "pr-model_container"
    if checkout.exists():
        shutil.rmtree(checkout)
    shutil.copytree(MODEL_DIR, checkout, ignore=shutil.ignore_patterns(".venv", ".results", "__pycache__"))
    params = checkout / "params.yaml"
    text = params.read_text()
    assert "    num_leaves: 63\n" in text, "the demo's experiment edits num_leaves in params.yaml"
    params.write_text(text.replace("    num_leaves: 63\n", "    num_leaves: 127\n"))
    return checkout


def run_flow(
    runtime: LocalRuntime, image: str, timeout: float, out: Any = None, pr_image: str | None = None
) -> dict[str, Any]:
    out = out or sys.stdout  # looked up per call: a caller may have redirected it
    queue_url = runtime.outputs["RunRequestsQueueUrl"]
    event = retarget(pull_request_event(), runtime.repository)
    repository = runtime.repository
    pr = event["pull_request"]

    # main first: a merge to main ran the model (a push in main's environment): the baseline.
    main_sha = pr["base"]["sha"]
    main_job = branch_job(
        runtime.github,
        event["repository"],
        "push",
        branch=pr["base"]["ref"],
        sha=main_sha,
        run_id=9_000_001,
        actor="modelrun-maintainer",
    )
    base = main_job.request(image)
    out.write(f"→ main baseline run queued ({base.head_ref} @ {base.head_sha[:8]}, push to main)\n")
    main_job.send(base, queue_url)
    runtime.wait_until_idle(timeout=timeout)

    job = pull_request_job(runtime.github, event, run_id=9_000_002)
    request = job.request(pr_image or image, note="num_leaves 63 -> 127: try a deeper tree")
    out.write(
        f"→ PR #{request.pr_number} run queued ({request.head_ref} @ {request.head_sha[:8]}), "
        "with the job's OIDC token\n"
    )
    started = time.monotonic()
    github_before = len(runtime.github.requests)
    job.send(request, queue_url)
    runtime.wait_until_idle(timeout=timeout)
    verified = RunsTable(runtime.outputs["RunsTableName"]).scan()
    for record in verified:
        if record.head_sha == request.head_sha:
            out.write(
                f"  verified: {record.repository} {record.event} in environment {record.environment}, "
                f"PR #{record.pr_number} head {record.head_sha[:8]} (from the token and GitHub's API)\n"
            )
    elapsed = time.monotonic() - started
    pr_requests = [r.operation or r.path for r in runtime.github.requests_since(github_before)]
    return {
        "request": request,
        "elapsed": elapsed,
        "repository": repository,
        "pr": pr["number"],
        "pr_requests": pr_requests,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sample", help="MODELRUN_SAMPLE for the model (fraction or rows): a quicker run")
    parser.add_argument("--timeout", type=float, default=900)
    args = parser.parse_args(argv)

    job_env = {"MODELRUN_SAMPLE": args.sample} if args.sample else {}
    print("Starting the local stack (moto + template.yaml + local GitHub) …")
    t0 = time.monotonic()
    # GitHub App credentials in the secret, as the README recommends (the runtime's default).
    with LocalRuntime(job_environment=job_env, parameters={"LogLevel": "WARNING"}, github_credentials="app") as runtime:
        print(
            f"  ready in {time.monotonic() - t0:.1f} s · AWS endpoint {runtime.endpoint} · GitHub {runtime.github.url}"
        )
        image = runtime.push_image(MODEL_DIR, tag="main")
        print(f"  main's model image pushed: {image}")
        pr_dir = pr_checkout(ROOT / ".modelrun")
        pr_image = runtime.push_image(pr_dir, tag="pr", python=MODEL_DIR / ".venv" / "bin" / "python")
        print(f"  the PR's model image pushed (params.yaml: num_leaves 63 -> 127): {pr_image}")
        result = run_flow(runtime, image, args.timeout, pr_image=pr_image)
        request = result["request"]

        runs = RunsTable(runtime.outputs["RunsTableName"]).scan()
        pr_run = next(r for r in runs if r.pr_number == request.pr_number)
        comments = runtime.github.comments(result["repository"], result["pr"])
        print("\n" + "=" * 100)
        print(f"PR #{result['pr']} comment, as GitHub received it ({len(comments)} comment(s) on the PR):")
        print("=" * 100)
        for comment in comments:
            print(comment["body"])
        print("=" * 100)
        s3 = boto3.client("s3")
        bucket = runtime.outputs["ResultsBucketName"]
        # What the PR links: the copy CollectResults kept where no job can write (issue 21).
        results = naming.collected_prefix(pr_run.run_id)
        keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix=results).get("Contents", [])]
        report_key = f"reports/{pr_run.run_id}/report.html"
        print(f"Run {pr_run.run_id}: {pr_run.status.value} in {result['elapsed']:.1f} s from enqueue to comment")
        print(f"Artifacts: s3://{bucket}/{results} ({len(keys)} objects, as collected; no job can write there)")
        try:
            html = s3.get_object(Bucket=bucket, Key=report_key)["Body"].read()
        except s3.exceptions.NoSuchKey:
            html = b""
        if html:
            local = ROOT / ".modelrun" / "report.html"
            local.parent.mkdir(exist_ok=True)
            local.write_bytes(html)
            print(f"Report: s3://{bucket}/{report_key}, copied to {local}")
        stream = pr_run.log_stream
        print(f"Logs: CloudWatch Logs {LOG_GROUP} / {stream}")
        if stream:
            events = boto3.client("logs").get_log_events(logGroupName=LOG_GROUP, logStreamName=stream)["events"]
            print(f"  {len(events)} log lines; the last ones:")
            for e in events[-5:]:
                print(f"  | {e['message']}")
        statuses = runtime.github.statuses(result["repository"], request.head_sha)
        if statuses:
            print(f"Commit status: {statuses[-1]['state']} — {statuses[-1].get('description')}")
        checks = runtime.github.check_runs(result["repository"], request.head_sha)
        for check in checks:
            output = check["output"]
            print("\n" + "=" * 100)
            print(
                f"Check run {check['name']!r} on {request.head_sha[:8]}, as GitHub received it: "
                f"{check['status']}, conclusion {check['conclusion']} · details {check['details_url']}"
            )
            print("=" * 100)
            print(f"title: {output['title']}\n\n--- summary ---\n{output['summary']}")
            if output.get("text"):
                print(f"--- text ---\n{output['text']}")
            print("=" * 100)
        requests = list(runtime.github.requests)
        exchanges = sum(1 for r in requests if r.auth == "app")
        refused = [r for r in requests if r.rejected]
        print(
            f"GitHub API requests: {len(requests)} in all, as GitHub App {runtime.github.app_id} "
            f"({exchanges} installation token(s) from its signed JWTs); {len(refused)} refused"
        )
        for r in refused:
            print(f"  refused: {r.method} {r.path} -> {r.status} ({r.reason})")
        # The installation token's exchange is made once an hour per function environment: it
        # is counted beside the run's requests, not in them.
        # So is the repository's default branch (a PR's base must be it), cached an hour.
        besides = (EXCHANGE_OPERATION, "repos/get")
        per_run = [op for op in result["pr_requests"] if op not in besides]
        exchanged = sum(1 for op in result["pr_requests"] if op == EXCHANGE_OPERATION)
        defaults = sum(1 for op in result["pr_requests"] if op == "repos/get")
        counted = Counter(per_run)
        print(
            f"  GitHub API requests of the PR's run, from its request to its report: {len(per_run)} "
            "(goal ≤ 6, the merge gate's policy read included: "
            f"{', '.join(f'{op} x{n}' for op, n in sorted(counted.items()))}); "
            f"installation-token exchanges besides: {exchanged} (each cached about an hour per function environment)"
            f", default-branch lookups: {defaults} (the same)"
        )
        # IAM is enforced: a happy run must not have been refused anything (nor a refusal swallowed).
        decisions = runtime.iam_decisions()
        denied = [d for d in decisions if not d.allowed]
        roles = sorted({d.principal for d in decisions if not d.principal.startswith(("service:", "web-identity:"))})
        print(
            f"IAM: {len(decisions)} calls checked against {len(roles)} roles' policies from template.yaml; "
            f"{len(denied)} denied"
        )
        for d in denied:
            print(f"  denied: {d.principal} {d.action} on {d.resource} ({d.reason})")
        ok = pr_run.status.value == "SUCCEEDED" and len(comments) == 1 and not refused and not denied
        ok = ok and [c["conclusion"] for c in checks] == ["success"] and len(per_run) <= 6
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
