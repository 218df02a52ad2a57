"""Attacks on what a PR shows, as an approved PR author holding the workflow's role would try
them: raw run requests sent to the queue with their own job's evidence (or none). Each must end
in the DLQ with its reason, with no GitHub write, no baseline and no cancelled run, while honest
runs still flow. One LocalRuntime for the module; jobs run the tiny placeholder model."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import boto3
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from modelrun.adapters.aws import RunsTable
from modelrun.contracts import CleanupRequest, RunRequest
from modelrun.domain.run import RunRecord
from modelrun_cli.enqueue import oidc_token, with_identity
from modelrun_local.runtime import NOOP_MODEL_DIR, LocalRuntime
from modelrun_local.workflow_job import Job, branch_job, pull_request_job
from tests.helpers import wait_for, wait_until_quiet
from tests.integration.flow import REPOSITORY, pull_request_event, with_command

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

        def dead_lettered() -> str | None:
            for m in self.sqs.receive_message(
                QueueUrl=self.dlq_url, MaxNumberOfMessages=10, MessageAttributeNames=["All"], WaitTimeSeconds=1
            ).get("Messages", []):
                attributes: Mapping[str, Mapping[str, Any]] = m.get("MessageAttributes", {})
                if attributes.get("source_message_id", {}).get("StringValue") == message_id:
                    self.sqs.delete_message(QueueUrl=self.dlq_url, ReceiptHandle=m["ReceiptHandle"])
                    return str(attributes["reason"]["StringValue"])
            return None

        reason = wait_for(dead_lettered, 60, f"message {message_id} in the DLQ")
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


def test_the_honest_request_still_flows_after_the_attacks(stack: TrustFlow) -> None:
    job = stack.pr_job(312, 5_000_312, "1" * 40)
    request = with_command(job.request(stack.image), "ok")
    job.send(request, stack.queue_url)
    job.send(request, stack.queue_url)  # a duplicate delivery, with a fresh token: one run
    stack.wait()
    assert stack.record_of(request.head_sha).status.value == "SUCCEEDED"  # type: ignore[union-attr]
    assert len(stack.github.comments(REPOSITORY, 312)) == 1
