"""Attacks on what a PR shows, as an approved PR author holding the workflow's role would try
them: raw run requests sent to the queue with their own job's evidence (or none). Each must end
in the DLQ with its reason, with no GitHub write, no baseline and no cancelled run, while honest
runs still flow. One LocalRuntime for the module; jobs run the tiny placeholder model."""

from __future__ import annotations

import gzip
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import jwt
import pytest
from botocore.exceptions import ClientError
from cryptography.hazmat.primitives.asymmetric import rsa

from modelrun.adapters.aws import RunsTable
from modelrun.contracts import CleanupRequest, RunRequest
from modelrun.domain import naming
from modelrun.domain.documents import report_of
from modelrun.domain.run import RunRecord
from modelrun_cli.enqueue import oidc_token, with_identity
from modelrun_local.runtime import NOOP_MODEL_DIR, LocalRuntime
from modelrun_local.workflow_job import Job, branch_job, pull_request_job
from tests.helpers import wait_for, wait_until_quiet
from tests.integration.flow import REPOSITORY, dead_letter_reason, job_role_s3, pull_request_event, with_command

OTHER_REPOSITORY = "county-assessor/condo"  # reachable with the stack's GitHub credential, not served


class TrustFlow:
    def __init__(self, runtime: LocalRuntime, image: str, scratch: Path) -> None:
        self.runtime = runtime
        self.github = runtime.github
        self.image = image
        self.scratch = scratch
        self.queue_url = runtime.outputs["RunRequestsQueueUrl"]
        self.dlq_url = runtime.outputs["RunRequestsDLQUrl"]
        self.sqs = boto3.client("sqs")
        self.table = RunsTable(runtime.outputs["RunsTableName"])
        self.main_sha = "c" * 40
        self.repo_payload = pull_request_event(0, self.main_sha)["repository"]

    def pr_job(self, pr: int, run_id: int, sha: str, **kwargs: Any) -> Job:
        event = pull_request_event(pr, sha)
        event["pull_request"]["head"]["ref"] = f"feature-{pr}"
        event["pull_request"]["base"]["sha"] = self.main_sha
        return pull_request_job(self.github, event, run_id=run_id, **kwargs)

    def honest_pr_run(self, pr: int, run_id: int, sha: str, *mode: str) -> RunRequest:
        job = self.pr_job(pr, run_id, sha)
        request = with_command(job.request(self.image), *(mode or ("ok",)))
        job.send(request, self.queue_url)
        return request

    def record_of(self, sha: str) -> RunRecord | None:
        found = [r for r in self.table.scan() if r.head_sha == sha]
        assert len(found) <= 1, found
        return found[0] if found else None

    def goes_on(self, victim: RunRequest, flag: Path) -> None:
        """The victim's run, untouched by the attack, is still RUNNING and succeeds once released."""
        assert self.record_of(victim.head_sha).status.value == "RUNNING"  # type: ignore[union-attr]
        flag.write_text("go")
        self.wait()
        assert self.record_of(victim.head_sha).status.value == "SUCCEEDED"  # type: ignore[union-attr]

    def wait(self, timeout: float = 60) -> None:
        self.runtime.wait_until_idle(timeout=timeout)

    def wait_status(self, sha: str, status: str, timeout: float = 60) -> RunRecord:
        def reached() -> RunRecord | None:
            record = self.record_of(sha)
            return record if record is not None and record.status.value == status else None

        return wait_for(reached, timeout, f"{sha[:8]} to reach {status}")

    def quiet_github(self) -> int:
        """GitHub writes so far, once none has come for a second (runs may still be running)."""
        return wait_until_quiet(lambda: self.github.api_calls(writes_only=True), 1.0, what="GitHub writes")

    def refused(self, body: str | dict[str, Any]) -> str:
        """Send a raw message and return the reason it was dead-lettered with. Fails if anything
        was written to GitHub meanwhile."""
        writes = self.quiet_github()
        text = body if isinstance(body, str) else json.dumps(body)
        message_id = self.sqs.send_message(QueueUrl=self.queue_url, MessageBody=text)["MessageId"]

        reason = dead_letter_reason(self.sqs, self.dlq_url, message_id)
        assert self.quiet_github() == writes, "a refused request wrote to GitHub"
        return reason


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TrustFlow]:
    with LocalRuntime(parameters={"LogLevel": "WARNING"}) as runtime:
        image = runtime.push_image(NOOP_MODEL_DIR, tag="noop")
        s = TrustFlow(runtime, image, tmp_path_factory.mktemp("flags"))
        # main's baseline: a merge to main ran the model (push, main's environment).
        job = branch_job(
            runtime.github, s.repo_payload, "push", branch="main", sha=s.main_sha, run_id=5_000_001, actor="maintainer"
        )
        job.send(with_command(job.request(image), "ok"), s.queue_url)
        s.wait()
        record = s.record_of(s.main_sha)
        assert record is not None and record.status.value == "SUCCEEDED" and record.baseline
        yield s


def dispatch(stack: TrustFlow, repository: str, sha: str, run_id: int, actor: str, ref: str) -> dict[str, Any]:
    """The fields a genuine dispatch job of ``repository`` on ``ref`` would send, with its token."""
    env = stack.github.actions_job(
        repository, "workflow_dispatch", sha=sha, run_id=run_id, actor=actor, environment="modelrun-main", ref=ref
    )
    return {
        "head_sha": sha,
        "head_ref": "main",
        "triggered_by": actor,
        "workflow": {"run_id": run_id, "run_attempt": 1},
        "identity": {"oidc_token": oidc_token(env, stack.queue_url)},
    }


def body_of(request: RunRequest | CleanupRequest, **changes: Any) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(request.model_dump_json())
    for key, value in changes.items():
        doc[key] = value
    return doc


def test_an_honest_pr_run_is_verified_and_compared_with_its_base_commits_main_run(stack: TrustFlow) -> None:
    request = stack.honest_pr_run(300, 5_000_300, "3" * 40)
    stack.wait()
    record = stack.record_of(request.head_sha)
    assert record is not None and record.status.value == "SUCCEEDED"
    assert (record.event, record.environment, record.base_sha, record.baseline) == (
        "pull_request",
        "staging",
        stack.main_sha,
        False,
    )
    [comment] = stack.github.comments(REPOSITORY, 300)
    assert "main's run of this PR's base commit" in comment["body"] and stack.main_sha[:8] in comment["body"]
    # The only workflow link is the one the backend built from the verified run id.
    assert f"(https://github.com/{REPOSITORY}/actions/runs/5000300/attempts/1)" in comment["body"]


def test_a_request_for_another_prs_commit_is_refused_and_that_run_goes_on(stack: TrustFlow) -> None:
    flag = stack.scratch / "victim"
    victim = stack.honest_pr_run(301, 5_000_301, "4" * 40, "wait-for", str(flag))
    stack.wait_status(victim.head_sha, "RUNNING")
    # The attacker's own approved job (PR 302) sends a request for PR 301's head commit.
    attacker = stack.pr_job(302, 5_000_302, "5" * 40)
    forged = with_identity(
        with_command(attacker.request(stack.image), "ok"), attacker.token(stack.queue_url)
    ).model_copy(update={"pr_number": 301, "head_sha": victim.head_sha})
    reason = stack.refused(forged.model_dump_json())
    assert reason.startswith("unverified: head_sha: ")
    # The attacker's own commit, claimed for the other PR.
    reason = stack.refused(forged.model_copy(update={"head_sha": "5" * 40}).model_dump_json())
    assert reason.startswith("unverified: pr_number: ")
    assert not stack.github.statuses(REPOSITORY, "5" * 40) and not stack.github.check_runs(REPOSITORY, "5" * 40)
    stack.goes_on(victim, flag)


def test_a_request_for_another_repository_is_refused(stack: TrustFlow) -> None:
    job = stack.pr_job(303, 5_000_303, "6" * 40)
    request = with_identity(job.request(stack.image), job.token(stack.queue_url))
    reason = stack.refused(body_of(request, repository=OTHER_REPOSITORY))
    assert "repository" in reason
    assert not stack.github.comments(OTHER_REPOSITORY, 303)
    # A job of a repository the stack does not serve, with its own genuine token.
    doc = body_of(request, repository=OTHER_REPOSITORY, pr_number=None, event="workflow_dispatch")
    doc |= dispatch(stack, OTHER_REPOSITORY, "7" * 40, 5_000_304, "mallory", "refs/heads/main")
    assert "not served by this stack" in stack.refused(doc)


def test_a_forged_dispatch_on_main_never_becomes_the_baseline(stack: TrustFlow) -> None:
    # The PR's job claims to be a dispatch on main.
    job = stack.pr_job(305, 5_000_305, "8" * 40)
    request = with_identity(job.request(stack.image), job.token(stack.queue_url))
    doc = body_of(request, event="workflow_dispatch", pr_number=None, head_ref="main")
    assert "event" in stack.refused(doc)
    # A dispatch on a tag named main is not main.
    doc = body_of(request, event="workflow_dispatch", pr_number=None)
    doc |= dispatch(stack, REPOSITORY, "9" * 40, 5_000_306, "Codertocat", "refs/tags/main")
    assert "branch" in stack.refused(doc)
    # A dispatch on main from the approval environment runs, but is no baseline.
    branch = branch_job(
        stack.github,
        stack.repo_payload,
        "workflow_dispatch",
        branch="main",
        sha="a" * 40,
        run_id=5_000_307,
        actor="Codertocat",
        environment="staging",
    )
    branch.send(with_command(branch.request(stack.image), "ok"), stack.queue_url)
    stack.wait()
    record = stack.record_of("a" * 40)
    assert record is not None and record.status.value == "SUCCEEDED" and not record.baseline
    assert [r.run_id for r in stack.table.baselines(f"{REPOSITORY}@main")] == [
        stack.record_of(stack.main_sha).run_id  # type: ignore[union-attr]
    ]


def test_a_forged_cleanup_cannot_cancel_another_prs_run(stack: TrustFlow) -> None:
    flag = stack.scratch / "cleanup"
    victim = stack.honest_pr_run(308, 5_000_308, "b" * 40, "wait-for", str(flag))
    stack.wait_status(victim.head_sha, "RUNNING")
    attacker = stack.pr_job(309, 5_000_309, "d" * 40)
    cleanup = with_identity(attacker.cleanup(), attacker.token(stack.queue_url)).model_copy(update={"pr_number": 308})
    assert "pr_number" in stack.refused(cleanup.model_dump_json())
    stack.goes_on(victim, flag)


def test_no_evidence_or_forged_evidence_is_refused(stack: TrustFlow) -> None:
    job = stack.pr_job(310, 5_000_310, "e" * 40)
    request = job.request(stack.image)
    assert "no OIDC token" in stack.refused(request.model_dump_json())
    token = job.token(stack.queue_url)
    claims = jwt.decode(token, options={"verify_signature": False})
    kid = jwt.get_unverified_header(token)["kid"]
    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    forged_signature = jwt.encode(claims, other_key, algorithm="RS256", headers={"kid": kid})
    assert "Signature" in stack.refused(body_of(request, identity={"oidc_token": forged_signature}))
    wrong_audience = job.token("https://sqs.us-east-1.amazonaws.com/123456789012/someone-elses-queue")
    assert "audience" in stack.refused(body_of(request, identity={"oidc_token": wrong_audience})).lower()
    stale = stack.github.issuer.mint_like(token, issued_at=time.time() - 3600)
    assert "expired" in stack.refused(body_of(request, identity={"oidc_token": stale}))


def test_a_request_url_cannot_reach_the_comment(stack: TrustFlow) -> None:
    job = stack.pr_job(311, 5_000_311, "f" * 40)
    request = with_identity(job.request(stack.image), job.token(stack.queue_url))
    doc = body_of(request)
    doc["workflow"]["url"] = "https://github.com/x/y/actions/runs/1) [click here](https://evil.example"
    reason = stack.refused(doc)
    assert reason.startswith("invalid run request: ") and "workflow.url" in reason
    assert not stack.github.comments(REPOSITORY, 311)


def test_a_runs_container_cannot_change_another_runs_results(stack: TrustFlow) -> None:
    flag = stack.scratch / "tamper"
    victim = stack.honest_pr_run(313, 5_000_313, "2" * 40, "wait-for", str(flag))
    record = stack.wait_status(victim.head_sha, "RUNNING")
    # Another approved PR's model writes forged metrics where it can guess the victim's go,
    # and its own metrics.json claiming to be the victim's run.
    attacker = stack.honest_pr_run(314, 5_000_314, "0" * 40, "tamper", record.run_id)
    stack.wait_status(attacker.head_sha, "SUCCEEDED")
    flag.write_text("go")
    stack.wait()
    [victim_comment] = stack.github.comments(REPOSITORY, 313)
    assert "| RMSE | 16,100 |" in victim_comment["body"], victim_comment["body"][:600]
    [attacker_comment] = stack.github.comments(REPOSITORY, 314)
    assert "**No results:**" in attacker_comment["body"] and "is for run" in attacker_comment["body"]
    assert "| RMSE | 0 |" not in victim_comment["body"]  # the forged predictions were exact
    [check] = stack.github.check_runs(REPOSITORY, attacker.head_sha)
    assert (check["status"], check["conclusion"]) == ("completed", "failure")


def _compared(stack: TrustFlow, sha: str) -> tuple[Any, ...]:
    """What a PR's report shows of its comparison with main (the statistics, the params diff)."""
    record = stack.record_of(sha)
    assert record is not None and record.status.value == "SUCCEEDED"
    report = report_of(record.report)
    assert report.comparison is not None and report.baseline is not None
    changes = {k: v.model_dump(exclude={"seconds"}) for k, v in report.comparison.changes.items()}
    return report.baseline.run_id, report.comparison.status, changes, report.params_diff


def test_forging_or_archiving_mains_files_after_its_collection_changes_no_later_report(stack: TrustFlow) -> None:
    """Issue 21, attacks 1 and 2: main's write prefix is known (the worst case: it was once
    linked); a job rewrites main's holdout and params, archives them to GLACIER, and replaces
    an earlier PR's model file after its report. Later reports read only collected copies."""
    before = stack.honest_pr_run(320, 5_000_320, "ab" * 20)
    stack.wait()
    [comment] = stack.github.comments(REPOSITORY, 320)
    main = stack.record_of(stack.main_sha)
    pr = stack.record_of(before.head_sha)
    assert main is not None and pr is not None
    # No write prefix is linked, nor its random key shown: the Artifacts link is the collected copy.
    for record in (main, pr):
        assert record.results_uri.rstrip("/").rsplit("/", 1)[-1] not in comment["body"]
    assert f"prefix={naming.collected_prefix(pr.run_id)}" in comment["body"]
    s3 = job_role_s3(stack.runtime, "attacker")
    bucket, main_prefix = main.results_uri.removeprefix("s3://").split("/", 1)
    rows = ["sale_id,sale_price,estimate,area"] + [f"s{i + 1},1000,1,1" for i in range(20)]
    forged = gzip.compress(("\n".join(rows) + "\n").encode())
    s3.put_object(Bucket=bucket, Key=f"{main_prefix}predictions.csv.gz", Body=forged)
    archived = {"StorageClass": "GLACIER"}
    s3.put_object(Bucket=bucket, Key=f"{main_prefix}params.yaml", Body=b"attacker: was here\n", **archived)
    s3.put_object(Bucket=bucket, Key=f"{main_prefix}metrics.json", Body=b"{}", StorageClass="GLACIER")
    pr_prefix = pr.results_uri.removeprefix(f"s3://{bucket}/")
    s3.put_object(Bucket=bucket, Key=f"{pr_prefix}artifacts/model.txt", Body=b"attacker's model")
    # The collected copies are out of the job role's reach.
    with pytest.raises(ClientError):
        s3.put_object(Bucket=bucket, Key=f"{naming.collected_prefix(main.run_id)}predictions.csv.gz", Body=forged)
    after = stack.honest_pr_run(321, 5_000_321, "cd" * 20)
    stack.wait()
    assert _compared(stack, after.head_sha) == _compared(stack, before.head_sha)
    assert _compared(stack, after.head_sha)[1] == "paired"
    [later] = stack.github.comments(REPOSITORY, 321)
    assert "was here" not in later["body"] and "No detectable change against main" in later["body"]
    # What the earlier PR's Artifacts link shows is its collected copy: the later write is not there.
    kept = boto3.client("s3").list_objects_v2(Bucket=bucket, Prefix=naming.collected_prefix(pr.run_id))
    assert kept.get("Contents") and not any(o["Key"].endswith("model.txt") for o in kept["Contents"])


def test_120_copies_of_one_request_make_one_workflow_run_lookup_and_one_run(stack: TrustFlow) -> None:
    """Issue 21, attack 6: each copy is its own SQS message with the same token; the claims
    count once, before any GitHub call, so the installation's hourly limit is not drained."""
    job = stack.pr_job(323, 5_000_323, "12" * 20)
    request = with_command(job.request(stack.image), "ok")
    start = len(stack.github.requests)
    body = with_identity(request, job.token(stack.queue_url)).model_dump_json()
    for first in range(0, 120, 10):
        stack.sqs.send_message_batch(
            QueueUrl=stack.queue_url, Entries=[{"Id": str(n), "MessageBody": body} for n in range(first, first + 10)]
        )
    stack.wait(timeout=120)
    lookups = [r for r in stack.github.requests_since(start) if r.path.endswith("/actions/runs/5000323/attempts/1")]
    assert len(lookups) == 1, lookups
    record = stack.record_of(request.head_sha)
    assert record is not None and record.status.value == "SUCCEEDED"
    assert len(stack.github.comments(REPOSITORY, 323)) == 1


def test_a_pr_into_the_attackers_branch_cannot_report_on_another_authors_commit(stack: TrustFlow) -> None:
    """Issue 21, attack 5: a PR whose head is another author's commit and whose base is the
    attacker's branch (carrying the attacker's workflow) is refused: a PR run's base must be the
    repository's default branch, by GitHub's record; and only the pinned workflow file counts."""
    victim_sha = "34" * 20
    event = pull_request_event(324, victim_sha)
    event["pull_request"]["head"]["ref"] = "victims-feature"
    event["pull_request"]["base"] |= {"ref": "mallory", "sha": "56" * 20}
    job = pull_request_job(stack.github, event, run_id=5_000_324, actor="mallory")
    request = with_identity(with_command(job.request(stack.image), "ok"), job.token(stack.queue_url))
    reason = stack.refused(request.model_dump_json())
    assert "default branch" in reason, reason
    assert not stack.github.check_runs(REPOSITORY, victim_sha) and not stack.github.statuses(REPOSITORY, victim_sha)
    # Another workflow file of the repository, in the approval environment, requests nothing.
    env = stack.github.actions_job(
        REPOSITORY,
        "pull_request",
        sha="78" * 20,
        run_id=5_000_325,
        actor="mallory",
        environment="staging",
        pull_request=(325, "feature-325", "main", stack.main_sha),
        workflow_ref=f"{REPOSITORY}/.github/workflows/other.yaml@refs/pull/325/merge",
    )
    other = Job(stack.github, "pull_request", pull_request_event(325, "78" * 20), env, "staging")
    request = with_identity(with_command(other.request(stack.image), "ok"), other.token(stack.queue_url))
    assert "workflow file" in stack.refused(request.model_dump_json())


def test_the_credited_person_is_githubs_triggering_actor_not_the_requests_choice(stack: TrustFlow) -> None:
    """Issue 21, attack 7: mallory's PR, its attempt re-run by a maintainer; the request names
    mallory (the token's actor) but GitHub's record says who started this attempt."""
    sha = "9a" * 20
    event = pull_request_event(326, sha)
    event["pull_request"]["head"]["ref"] = "feature-326"
    event["pull_request"]["base"]["sha"] = stack.main_sha
    env = stack.github.actions_job(
        REPOSITORY,
        "pull_request",
        sha=sha,
        run_id=5_000_326,
        run_attempt=2,
        actor="mallory",
        triggering_actor="maintainer",
        environment="staging",
        pull_request=(326, "feature-326", "main", stack.main_sha),
    )
    job = Job(stack.github, "pull_request", event, env, "staging")
    request = with_command(job.request(stack.image), "ok").model_copy(update={"triggered_by": "mallory"})
    job.send(request, stack.queue_url)
    stack.wait()
    record = stack.record_of(sha)
    assert record is not None and record.status.value == "SUCCEEDED"
    assert record.triggered_by == "maintainer"


def test_the_honest_request_still_flows_after_the_attacks(stack: TrustFlow) -> None:
    job = stack.pr_job(312, 5_000_312, "1" * 40)
    request = with_command(job.request(stack.image), "ok")
    job.send(request, stack.queue_url)
    job.send(request, stack.queue_url)  # a duplicate delivery, with a fresh token: one run
    stack.wait()
    assert stack.record_of(request.head_sha).status.value == "SUCCEEDED"  # type: ignore[union-attr]
    assert len(stack.github.comments(REPOSITORY, 312)) == 1
