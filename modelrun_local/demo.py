"""The main job: full model runs for simulated PRs of two model repositories, on the embedded default.

1. starts the local stack (moto's server with template.yaml's resources and one repository.yaml
   stack per model repository - the Python sample and the condo team's R model - and the local
   GitHub);
2. runs each repository's main once (a push to main), so each PR has a baseline to compare with;
3. builds each run request from a real ``pull_request`` payload exactly as the workflow's
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
from dataclasses import dataclass
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
SAMPLE = "county-assessor/avm"
PR_NOTE = "num_leaves 63 -> 127: try a deeper tree"
# The second model repository: the condo team's, in R (examples/condo-model, its own repository
# as it would be), reading its sales from its data grant on S3.
CONDO = "county-assessor/condo"
CONDO_DIR = ROOT / "examples" / "condo-model"
DATA_BUCKET = "modelrun-local-data"
CONDO_NOTE = "min_node_size 5 -> 10: smoother leaves"


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


@dataclass
class Repository:
    """One model repository of the demo: its main image, its PR's image, the PR's note."""

    name: str
    image: str
    pr_image: str
    note: str
    run_ids: tuple[int, int]  # the main run's and the PR run's workflow run ids


def condo_checkout(workdir: Path) -> Path:
    """The condo PR's version of its repository: the experiment is a change to config.json."""
    checkout = workdir / "pr-condo-model"
    if checkout.exists():
        shutil.rmtree(checkout)
    shutil.copytree(CONDO_DIR, checkout, ignore=shutil.ignore_patterns("data"))
    config = json.loads((checkout / "config.json").read_text())
    assert config["min_node_size"] == 5, "the demo's condo experiment edits min_node_size in config.json"
    (checkout / "config.json").write_text(json.dumps(config | {"min_node_size": 10}, indent=2) + "\n")
    return checkout


def run_flows(
    runtime: LocalRuntime, repositories: list[Repository], timeout: float, out: Any = None
) -> list[dict[str, Any]]:
    """Each repository's main run (its baseline), then each one's PR run, side by side: one
    stack serves them all, each on its own hardware."""
    out = out or sys.stdout  # looked up per call: a caller may have redirected it
    queue_url = runtime.outputs["RunRequestsQueueUrl"]
    events = {r.name: retarget(pull_request_event(), r.name) for r in repositories}

    # main first: a merge to main ran the model (a push in main's environment): the baseline.
    for repository in repositories:
        pr = events[repository.name]["pull_request"]
        main_job = branch_job(
            runtime.github,
            events[repository.name]["repository"],
            "push",
            branch=pr["base"]["ref"],
            sha=pr["base"]["sha"],
            run_id=repository.run_ids[0],
            actor="modelrun-maintainer",
        )
        base = main_job.request(repository.image)
        out.write(
            f"→ {repository.name}: main baseline run queued ({base.head_ref} @ {base.head_sha[:8]}, push to main)\n"
        )
        main_job.send(base, queue_url)
    runtime.wait_until_idle(timeout=timeout)

    started = time.monotonic()
    github_before = len(runtime.github.requests)
    requests = []
    for repository in repositories:
        job = pull_request_job(runtime.github, events[repository.name], run_id=repository.run_ids[1])
        request = job.request(repository.pr_image, note=repository.note)
        out.write(
            f"→ {repository.name}: PR #{request.pr_number} run queued ({request.head_ref} @ {request.head_sha[:8]}), "
            "with the job's OIDC token\n"
        )
        job.send(request, queue_url)
        requests.append(request)
    runtime.wait_until_idle(timeout=timeout)
    elapsed = time.monotonic() - started
    verified = RunsTable(runtime.outputs["RunsTableName"]).scan()
    since = runtime.github.requests_since(github_before)
    results = []
    for repository, request in zip(repositories, requests, strict=True):
        for record in verified:
            if record.repository == repository.name and record.head_sha == request.head_sha:
                out.write(
                    f"  verified: {record.repository} {record.event} in environment {record.environment}, "
                    f"PR #{record.pr_number} head {record.head_sha[:8]} (from the token and GitHub's API)\n"
                )
        own = f"/repos/{repository.name}/"
        results.append(
            {
                "request": request,
                "elapsed": elapsed,
                "repository": repository.name,
                "pr": request.pr_number,
                "pr_requests": [
                    r.operation or r.path
                    for r in since
                    if own in r.path or r.path == own.rstrip("/") or r.operation == EXCHANGE_OPERATION
                ],
            }
        )
    return results


def run_flow(
    runtime: LocalRuntime, image: str, timeout: float, out: Any = None, pr_image: str | None = None
) -> dict[str, Any]:
    """The runtime's own repository's flow alone (`modelrun local up --with-runs`)."""
    sample = Repository(runtime.repository, image, pr_image or image, PR_NOTE, (9_000_001, 9_000_002))
    return run_flows(runtime, [sample], timeout, out)[0]


def show_repository(runtime: LocalRuntime, result: dict[str, Any]) -> tuple[bool, list[str]]:
    """Print one repository's PR comment, check run, report and logs; whether it succeeded, and
    its run's GitHub requests (besides the token exchanges and default-branch lookups)."""
    request = result["request"]
    repository = result["repository"]
    runs = RunsTable(runtime.outputs["RunsTableName"]).scan()
    pr_run = next(r for r in runs if r.repository == repository and r.pr_number == request.pr_number)
    comments = runtime.github.comments(repository, result["pr"])
    print("\n" + "=" * 100)
    print(f"{repository} PR #{result['pr']} comment, as GitHub received it ({len(comments)} comment(s) on the PR):")
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
    print(
        f"Run {pr_run.run_id}: {pr_run.status.value}; the PRs' runs took {result['elapsed']:.1f} s "
        "from enqueue to comment"
    )
    print(f"Artifacts: s3://{bucket}/{results} ({len(keys)} objects, as collected; no job can write there)")
    try:
        html = s3.get_object(Bucket=bucket, Key=report_key)["Body"].read()
    except s3.exceptions.NoSuchKey:
        html = b""
    if html:
        local = ROOT / ".modelrun" / f"report-{repository.split('/')[1]}.html"
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
    statuses = runtime.github.statuses(repository, request.head_sha)
    if statuses:
        print(f"Commit status: {statuses[-1]['state']} — {statuses[-1].get('description')}")
    checks = runtime.github.check_runs(repository, request.head_sha)
    for check in checks:
        output = check["output"]
        print("\n" + "=" * 100)
        print(
            f"Check run {check['name']!r} on {repository} {request.head_sha[:8]}, as GitHub received it: "
            f"{check['status']}, conclusion {check['conclusion']} · details {check['details_url']}"
        )
        print("=" * 100)
        print(f"title: {output['title']}\n\n--- summary ---\n{output['summary']}")
        if output.get("text"):
            print(f"--- text ---\n{output['text']}")
        print("=" * 100)
    # The installation token's exchange is made once an hour per function environment: it is
    # counted beside the run's requests, not in them. So is the repository's default branch (a
    # PR's base must be it), cached an hour.
    besides = (EXCHANGE_OPERATION, "repos/get")
    per_run = [op for op in result["pr_requests"] if op not in besides]
    counted = Counter(per_run)
    print(
        f"  GitHub API requests of {repository}'s PR run, from its request to its report: {len(per_run)} "
        "(goal ≤ 6, the merge gate's policy read included: "
        f"{', '.join(f'{op} x{n}' for op, n in sorted(counted.items()))})"
    )
    ok = pr_run.status.value == "SUCCEEDED" and len(comments) == 1
    return ok and [c["conclusion"] for c in checks] == ["success"], per_run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sample", help="MODELRUN_SAMPLE for the model (fraction or rows): a quicker run")
    parser.add_argument("--timeout", type=float, default=900)
    args = parser.parse_args(argv)

    job_env = {"MODELRUN_SAMPLE": args.sample} if args.sample else {}
    print(f"Starting the local stack (moto + template.yaml + a repository stack each for {SAMPLE} and {CONDO}) …")
    t0 = time.monotonic()
    # GitHub App credentials in the secret, as the README recommends (the runtime's default).
    # Two model repositories on one stack: the condo team's jobs may read its data, and only its.
    with LocalRuntime(
        repository=SAMPLE,
        job_environment=job_env,
        parameters={"LogLevel": "WARNING", "GitHubRepositories": f"{SAMPLE},{CONDO}"},
        repository_parameters={CONDO: {"DataReadLocations": f"{DATA_BUCKET}/{CONDO}/"}},
        github_credentials="app",
    ) as runtime:
        print(
            f"  ready in {time.monotonic() - t0:.1f} s · AWS endpoint {runtime.endpoint} · GitHub {runtime.github.url}"
        )
        s3 = boto3.client("s3")  # the condo team's data, where its grant points (its DVC remote)
        s3.create_bucket(Bucket=DATA_BUCKET)
        s3.upload_file(str(CONDO_DIR / "data" / "sales.csv.gz"), DATA_BUCKET, f"{CONDO}/sales.csv.gz")
        image = runtime.push_image(MODEL_DIR, tag="main")
        print(f"  {SAMPLE}: main's model image pushed: {image}")
        pr_dir = pr_checkout(ROOT / ".modelrun")
        pr_image = runtime.push_image(pr_dir, tag="pr", python=MODEL_DIR / ".venv" / "bin" / "python")
        print(f"  {SAMPLE}: the PR's image pushed (params.yaml: num_leaves 63 -> 127): {pr_image}")
        condo_image = runtime.push_image(CONDO_DIR, tag="main", repository=CONDO)
        condo_pr_image = runtime.push_image(condo_checkout(ROOT / ".modelrun"), tag="pr", repository=CONDO)
        print(f"  {CONDO}: main's and the PR's images pushed (R; config.json: min_node_size 5 -> 10)")
        repositories = [
            Repository(SAMPLE, image, pr_image, PR_NOTE, (9_000_001, 9_000_002)),
            Repository(CONDO, condo_image, condo_pr_image, CONDO_NOTE, (9_000_011, 9_000_012)),
        ]
        results = run_flows(runtime, repositories, args.timeout)
        ok = True
        for result in results:
            shown, per_run = show_repository(runtime, result)
            ok = ok and shown and len(per_run) <= 6

        requests = list(runtime.github.requests)
        exchanges = sum(1 for r in requests if r.auth == "app")
        refused = [r for r in requests if r.rejected]
        print(
            f"GitHub API requests: {len(requests)} in all, as GitHub App {runtime.github.app_id} "
            f"({exchanges} installation token(s) from its signed JWTs); {len(refused)} refused"
        )
        for r in refused:
            print(f"  refused: {r.method} {r.path} -> {r.status} ({r.reason})")
        # IAM is enforced: a happy run must not have been refused anything (nor a refusal swallowed).
        decisions = runtime.iam_decisions()
        denied = [d for d in decisions if not d.allowed]
        roles = sorted({d.principal for d in decisions if not d.principal.startswith(("service:", "web-identity:"))})
        print(
            f"IAM: {len(decisions)} calls checked against {len(roles)} roles' policies from template.yaml and "
            f"repository.yaml; {len(denied)} denied"
        )
        for d in denied:
            print(f"  denied: {d.principal} {d.action} on {d.resource} ({d.reason})")
        print(f"Both repositories' main and PR runs: {time.monotonic() - t0:.1f} s from start")
        ok = ok and not refused and not denied
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
