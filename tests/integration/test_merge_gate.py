"""The merge gate end to end on the local stack: the policy file read from the PR's base commit
through GitHub's contents API decides the check run's conclusion (success, neutral, failure),
its summary says why, its title is the verdict; an invalid policy is neutral with its message.

One stack for the module. Main's run (the baseline) first; then each PR, with a base commit of
its own (a policy read at a commit is kept per function environment, so each case gets a fresh
commit), runs the placeholder's ``worse`` mode: errors, COD and PRD significantly worse than
main's (modelrun computes them from its predictions), PRB failing where main passes.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from modelrun.domain.policy import POLICY_PATH
from modelrun_cli.enqueue import send, with_identity
from modelrun_local.github_auth import EXCHANGE_OPERATION as EXCHANGE
from modelrun_local.runtime import LocalRuntime
from modelrun_local.workflow_job import branch_job, pull_request_job
from tests.integration.flow import REPOSITORY, Flow, with_command


@pytest.fixture(scope="module")
def gated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Flow]:
    with LocalRuntime(parameters={"LogLevel": "WARNING"}) as runtime:
        flow = Flow.placeholder(runtime, tmp_path_factory.mktemp("flags"))
        repository = flow.event(400, "a" * 40)["repository"]
        main = branch_job(runtime.github, repository, "push", branch="main", sha="d" * 40, run_id=7_400_000, actor="m")
        send(with_identity(with_command(main.request(flow.image), "ok"), main.token(flow.queue_url)), flow.queue_url)
        flow.wait()
        yield flow


def pr_run(flow: Flow, pr: int, policy: bytes | None, *, head_policy: bytes | None = None) -> dict[str, Any]:
    """PR ``pr`` on a base commit of its own holding ``policy`` (None: no file), its run in the
    ``worse`` mode; the check run GitHub holds, and the GitHub requests the run made."""
    base_sha, head_sha = f"{pr:040x}", f"{pr:08x}".ljust(40, "e")
    if policy is not None:
        flow.runtime.github.put_file(REPOSITORY, base_sha, POLICY_PATH, policy)
    if head_policy is not None:  # the PR's own file: must not count
        flow.runtime.github.put_file(REPOSITORY, head_sha, POLICY_PATH, head_policy)
    event = flow.event(pr, head_sha)
    event["pull_request"]["base"]["sha"] = base_sha
    job = pull_request_job(flow.runtime.github, event, run_id=7_400_000 + pr)
    before = len(flow.runtime.github.requests)
    send(with_identity(with_command(job.request(flow.image), "worse"), job.token(flow.queue_url)), flow.queue_url)
    flow.wait()
    requests = flow.runtime.github.requests[before:]
    assert not [r for r in requests if r.rejected], [r for r in requests if r.rejected]
    [check] = flow.runtime.github.check_runs(REPOSITORY, head_sha)
    assert check["status"] == "completed", check
    assert not flow.runtime.github.statuses(REPOSITORY, head_sha)  # App credentials: the check run carries it
    [comment] = flow.comments(pr)
    return {
        "check": check,
        "comment": comment["body"],
        # beside the run's requests, once an hour per environment: token exchanges and the
        # default branch's lookup (a PR's base must be it)
        "operations": [r.operation for r in requests if r.operation not in (EXCHANGE, "repos/get")],
    }


WORSE_TITLE = "Worse than main: RMSE, MAE, MAPE, MdAPE, R², COD, PRD, MKI; IAAO PRB newly fails, COD newly passes"


def test_without_a_policy_nothing_blocks(gated: Flow) -> None:
    found = pr_run(gated, 401, None)
    check = found["check"]
    assert (check["conclusion"], check["output"]["title"]) == ("success", WORSE_TITLE)
    assert "**Merge gate: ✅ success**" in check["output"]["summary"]
    assert "the default policy (nothing blocks)" in check["output"]["summary"]
    # The verdict opens the comment, before the run's line and any table.
    body = found["comment"]
    assert body.index("🔴 **Worse than main:**") < body.index("SUCCEEDED") < body.index("| metric |")
    assert "IAAO: PRB newly fails" in body
    # The policy's read is one request more than a run made before gates: 6 at most on App
    # credentials (test_flow's bound), the read once, from the base commit.
    operations = found["operations"]
    assert operations.count("repos/get-content") == 1 and len(operations) <= 6, operations


def test_a_statistic_that_must_not_get_worse_fails_the_check_and_the_pr_cannot_loosen_it(gated: Flow) -> None:
    policy = b"# the team's gate\nmust_not_get_worse: [cod, rmse]\nmust_pass: [cod]\n"
    found = pr_run(gated, 402, policy, head_policy=b"must_not_get_worse: []\n")
    check = found["check"]
    assert (check["conclusion"], check["output"]["title"]) == ("failure", WORSE_TITLE)
    summary = check["output"]["summary"]
    assert "**Merge gate: ❌ failure**" in summary
    assert "- RMSE and COD got significantly worse than main (the policy: must not get worse)." in summary


def test_a_newly_failing_standard_can_make_the_check_neutral(gated: Flow) -> None:
    found = pr_run(gated, 403, b"newly_failing: neutral\n")
    check = found["check"]
    assert check["conclusion"] == "neutral"
    assert "- IAAO PRB newly fails (main passes)." in check["output"]["summary"]


def test_an_invalid_policy_is_neutral_and_says_what_to_fix(gated: Flow) -> None:
    found = pr_run(gated, 404, b"must_not_get_worse: [speed]\nblock: yes\n")
    check = found["check"]
    assert check["conclusion"] == "neutral"
    summary = check["output"]["summary"]
    assert f"The merge gate `{POLICY_PATH}` is invalid:" in summary, summary[:800]
    assert "unknown statistic 'speed'" in summary and "block: unknown key" in summary
    assert check["output"]["title"] == WORSE_TITLE  # the verdict all the same

    broken = pr_run(gated, 405, b"must_pass: [cod\n")  # not YAML
    assert broken["check"]["conclusion"] == "neutral" and "not YAML" in broken["check"]["output"]["summary"]


def test_the_record_keeps_the_gate_it_was_judged_by(gated: Flow) -> None:
    found = [i for i in gated.table.scan()["Items"] if i.get("pr_number") == 402 and "job_queue" in i]
    [record] = found
    gate = record["gate"]
    assert isinstance(gate, dict), gate
    assert gate["kind"] == "file" and gate["ref"] == f"{402:040x}"
    assert list(gate["policy"]["must_not_get_worse"]) == ["cod", "rmse"]
