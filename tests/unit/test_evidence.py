"""Comparing a run request with its evidence (modelrun.domain.evidence): pure, no AWS, no GitHub."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import pytest

from modelrun.contracts import RunRequest
from modelrun.domain.evidence import (
    Claims,
    Policy,
    Unverified,
    WorkflowRunFacts,
    check_token_time,
    verify_cleanup,
    verify_run,
)
from tests.unit.builders import HEAD, MAIN, REPO, claims, workflow_run
from tests.unit.builders import cleanup_request as cleanup
from tests.unit.builders import run_request as request

POLICY = Policy(repositories=frozenset({REPO}), approval_environment="staging", baseline_environment="modelrun-main")


def test_an_honest_pull_request_run_is_verified_with_its_base_commit() -> None:
    verified = verify_run(request(), claims(), workflow_run(), POLICY, "main")
    assert (verified.pr_number, verified.head_sha, verified.base_sha, verified.baseline) == (42, HEAD, MAIN, False)
    assert verified.environment == "staging"


@pytest.mark.parametrize(
    ("body", "evidence", "run_changes", "expected"),
    [
        ({"pr_number": 7}, {}, {}, "pr_number"),
        ({"head_sha": "d" * 40}, {}, {}, "head_sha"),
        ({"repository": "county-assessor/condo"}, {}, {}, "repository"),
        ({}, {"repository": "evil/avm"}, {"repository": {"full_name": "evil/avm"}}, "not served"),
        ({"workflow": {"run_id": 901, "run_attempt": 1}}, {}, {}, "workflow.run_id"),
        ({"workflow": {"run_id": 900, "run_attempt": 2}}, {}, {}, "workflow.run_attempt"),
        ({"event": "workflow_dispatch", "pr_number": None}, {}, {}, "event"),
        ({"base_ref": "release"}, {}, {}, "base_ref"),
        ({"head_ref": "other"}, {}, {}, "head_ref"),
        ({"triggered_by": "mallory"}, {}, {}, "triggered_by"),
        ({}, {"environment": None}, {}, "no approval gate"),
        ({}, {"environment": "modelrun-main"}, {}, "approved in 'staging'"),
        ({}, {}, {"pull_requests": []}, "does not list pull request #42"),
        ({}, {}, {"id": 901}, "workflow run's id"),
        ({}, {}, {"event": "push"}, "workflow run's event"),
        ({}, {"ref": "refs/heads/main"}, {}, "refs/pull/<n>/merge"),
    ],
)
def test_a_run_request_that_disagrees_with_the_evidence_is_unverified(
    body: dict[str, Any], evidence: dict[str, Any], run_changes: dict[str, Any], expected: str
) -> None:
    with pytest.raises(Unverified, match=expected):
        verify_run(request(**body), claims(**evidence), workflow_run(**run_changes), POLICY, "main")


def branch(
    event: str, ref: str = "refs/heads/main", environment: str = "modelrun-main", **more: Any
) -> tuple[RunRequest, Claims, WorkflowRunFacts]:
    token = claims(
        event_name=event,
        ref=ref,
        sha=MAIN,
        environment=environment,
        workflow_ref=f"{REPO}/.github/workflows/run-model.yaml@{ref}",
        head_ref="",
        base_ref="",
        **more,
    )
    facts = workflow_run(event=event, head_sha=MAIN, pull_requests=[])
    body = request(event=event, pr_number=None, head_sha=MAIN, head_ref=ref.rsplit("/", 1)[-1], base_ref="main")
    return body, token, facts


def test_a_push_to_main_in_mains_environment_is_a_baseline() -> None:
    verified = verify_run(*branch("push"), POLICY, "main")
    assert verified.baseline and verified.head_ref == "main" and verified.base_sha is None


@pytest.mark.parametrize(
    ("build", "default", "expected"),
    [
        (lambda: branch("workflow_dispatch", environment="staging"), "main", None),  # runs, not a baseline
        (lambda: branch("push", ref="refs/heads/feature"), "main", "serves only the default branch"),
        (lambda: branch("workflow_dispatch", ref="refs/tags/main"), "main", "must be on a branch"),
        (lambda: branch("push"), "trunk", "base_ref"),
        (lambda: branch("push"), None, "default"),
    ],
)
def test_branch_runs_become_baselines_only_on_the_default_branch_in_its_environment(
    build: Callable[[], tuple[RunRequest, Claims, WorkflowRunFacts]], default: str | None, expected: str | None
) -> None:
    body, token, facts = build()
    if expected is None:
        assert not verify_run(body, token, facts, POLICY, default).baseline
    else:
        with pytest.raises(Unverified, match=expected):
            verify_run(body, token, facts, POLICY, default)


def test_a_pr_workflow_file_on_main_is_no_baseline() -> None:
    body, token, facts = branch("workflow_dispatch")
    token = token.model_copy(update={"workflow_ref": f"{REPO}/.github/workflows/run-model.yaml@refs/pull/9/merge"})
    assert not verify_run(body, token, facts, POLICY, "main").baseline


PINNED = "octo-platform/modelrun/.github/workflows/model-run.yaml@refs/tags/v1"


@pytest.mark.parametrize(
    "job_workflow_ref",
    [
        None,  # a token without the claim (a job of no reusable workflow)
        f"{REPO}/.github/workflows/run-model.yaml@refs/pull/42/merge",  # the caller's own file
        PINNED.replace("v1", "v2"),
        PINNED.replace("octo-platform", "evil"),
        PINNED.upper(),
    ],
)
def test_with_a_pinned_workflow_a_job_of_any_other_is_unverified(job_workflow_ref: str | None) -> None:
    pinned = dataclasses.replace(POLICY, pinned_workflow=PINNED)
    token = claims(job_workflow_ref=job_workflow_ref)
    with pytest.raises(Unverified, match=r"not the pinned .*\(PinnedWorkflow\)"):
        verify_run(request(), token, workflow_run(), pinned, "main")
    with pytest.raises(Unverified, match="PinnedWorkflow"):
        verify_cleanup(cleanup(), token, workflow_run(), pinned)
    verify_run(request(), token, workflow_run(), POLICY, "main")  # not pinned: any workflow


def test_with_a_pinned_workflow_its_own_jobs_are_verified() -> None:
    pinned = dataclasses.replace(POLICY, pinned_workflow=PINNED)
    verify_run(request(), claims(job_workflow_ref=PINNED), workflow_run(), pinned, "main")
    verify_cleanup(cleanup(), claims(job_workflow_ref=PINNED), workflow_run(), pinned)


def test_a_cleanup_may_only_clean_up_its_own_pull_request() -> None:
    verify_cleanup(cleanup(), claims(), workflow_run(), POLICY)
    with pytest.raises(Unverified, match="pr_number"):
        verify_cleanup(cleanup(pr_number=41), claims(), workflow_run(), POLICY)


@pytest.mark.parametrize(
    ("sent_at", "expected"),
    [
        (1_000, None),
        (1_300, None),  # at expiry
        (1_350, None),  # within the clock skew
        (940, None),
        (900, "issued after"),
        (1_400, "expired"),
    ],
)
def test_the_token_must_be_valid_when_the_message_was_sent(sent_at: float, expected: str | None) -> None:
    if expected is None:
        check_token_time(claims(), sent_at, max_age_seconds=900)
    else:
        with pytest.raises(Unverified, match=expected):
            check_token_time(claims(), sent_at, max_age_seconds=900)


def test_a_long_lived_token_cannot_be_reused_long_after_it_was_issued() -> None:
    with pytest.raises(Unverified, match="more than 900 s"):
        check_token_time(claims(exp=100_000), 1_000 + 901, max_age_seconds=900)


def test_an_unreadable_workflow_run_record_is_unverified() -> None:
    with pytest.raises(Unverified, match="not readable"):
        WorkflowRunFacts.from_api({"id": 1})


@pytest.mark.parametrize(
    ("url", "ok"),
    [
        ("https://token.actions.githubusercontent.com/.well-known/openid-configuration", True),
        ("http://127.0.0.1:8123/_services/token/request?api-version=2.0", True),
        ("http://127.0.0.1:1@evil.example/_services/token", False),
        ("http://token.actions.githubusercontent.com/", False),
        ("http://127.0.0.1/_services/token", False),
        ("https://user:pw@example.org/", False),
        ("file:///etc/passwd", False),
        ("http://127.0.0.1:99999/", False),
    ],
)
def test_tokens_and_keys_come_only_over_https_or_the_local_loopback(url: str, ok: bool) -> None:
    from modelrun.domain.naming import https_or_loopback

    assert https_or_loopback(url) is ok


# --- a PR run is what it claims (issue 21) ------------------------------------------------------


def _pull(**base: Any) -> WorkflowRunFacts:
    base = {"ref": "main", "sha": MAIN, "repo": {"url": f"https://api.github.com/repos/{REPO}"}} | base
    return workflow_run(pull_requests=[{"number": 42, "head": {"sha": HEAD, "ref": "feature/x"}, "base": base}])


def test_a_pull_requests_base_must_be_this_repositorys_default_branch() -> None:
    verify_run(request(), claims(), _pull(), POLICY, "main")
    # Another author's head commit in a PR into the attacker's branch (with the attacker's workflow).
    with pytest.raises(Unverified, match="default branch"):
        verify_run(request(base_ref="mallory"), claims(base_ref="mallory"), _pull(ref="mallory"), POLICY, "main")
    with pytest.raises(Unverified, match="default branch"):
        verify_run(request(), claims(), _pull(), POLICY, "trunk")
    with pytest.raises(Unverified, match="default"):
        verify_run(request(), claims(), _pull(), POLICY, None)
    # GitHub lists a PR of another repository (a fork's, into its own main) for the run.
    with pytest.raises(Unverified, match="base repository"):
        verify_run(request(), claims(), _pull(repo={"url": "https://api.github.com/repos/mallory/avm"}), POLICY, "main")


@pytest.mark.parametrize(
    "workflow_ref",
    [
        f"{REPO}/.github/workflows/other.yaml@refs/pull/42/merge",
        f"{REPO}/.github/workflows/run-model.yaml.bak@refs/pull/42/merge",
        "mallory/avm/.github/workflows/run-model.yaml@refs/pull/42/merge",
    ],
)
def test_only_the_pinned_workflow_file_requests_runs(workflow_ref: str) -> None:
    with pytest.raises(Unverified, match="workflow file"):
        verify_run(request(), claims(workflow_ref=workflow_ref), workflow_run(), POLICY, "main")
    body, token, facts = branch("push")
    with pytest.raises(Unverified, match="workflow file"):
        verify_run(body, token.model_copy(update={"workflow_ref": workflow_ref}), facts, POLICY, "main")


def test_the_credited_person_is_githubs_triggering_actor_not_the_requests_choice() -> None:
    facts = workflow_run(actor={"login": "mallory"}, triggering_actor={"login": "octocat"})
    verified = verify_run(request(triggered_by="mallory"), claims(actor="mallory"), facts, POLICY, "main")
    assert verified.actor == "octocat"


def test_adopt_mds_caller_and_modelruns_own_workflow_are_both_pinned() -> None:
    for path in (".github/workflows/modelrun.yaml", ".github/workflows/run-model.yaml"):
        ref = f"{REPO}/{path}@refs/pull/42/merge"
        verify_run(request(), claims(workflow_ref=ref), workflow_run(), POLICY, "main")
    narrow = Policy(**{**POLICY.__dict__, "workflow_paths": (".github/workflows/modelrun.yaml",)})
    with pytest.raises(Unverified, match="workflow file"):
        verify_run(request(), claims(), workflow_run(), narrow, "main")
