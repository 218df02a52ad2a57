"""The workflow's enqueue command builds run and cleanup requests from real webhook payloads
(tests/fixtures/webhooks, see PROVENANCE.md), skips what must not run, and says what it queued.

What it produces must be accepted, unchanged, by the submit handler's parser (``MESSAGE``).
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
from pydantic import ValidationError

from modelrun.contracts import MESSAGE, CleanupRequest, RunRequest
from modelrun_cli.enqueue import (
    MissingEnvironment,
    Skip,
    build_cleanup,
    build_request,
    summary_markdown,
)
from tests.unit.enqueue_helpers import (
    DISPATCH_ENV,
    DISPATCH_SHA,
    IMAGE,
    PR_ENV,
    PR_HEAD_SHA,
    PUSH_ENV,
    payload,
    push_payload,
)

# --- build_request: pull_request -------------------------------------------------------------


@pytest.mark.parametrize("name", ["pull_request.opened.json", "pull_request.synchronize.json"])
def test_pull_request_builds_the_run_request(name: str) -> None:
    request = build_request("pull_request", payload(name), PR_ENV, image=IMAGE)

    assert request.schema_version == "1"
    assert request.kind == "run"
    assert request.event == "pull_request"
    assert request.repository == "Codertocat/Hello-World"
    assert request.pr_number == 2
    assert request.head_sha == PR_HEAD_SHA  # the PR head, not GITHUB_SHA (the merge commit)
    assert request.head_ref == "changes"
    assert request.base_ref == "master"
    assert request.image == IMAGE
    assert request.compute == "cpu"
    assert request.note is None
    assert request.command is None
    assert request.triggered_by == "Codertocat"
    assert request.workflow.run_id == 16011227436
    assert request.workflow.run_attempt == 2
    # no URL in the request: the backend builds every link from verified ids
    assert "url" not in request.workflow.model_dump()
    assert request.identity is None  # attached at send time (with_identity)


@pytest.mark.parametrize("name", ["pull_request.opened.json", "pull_request.synchronize.json"])
def test_the_message_json_is_accepted_unchanged_by_the_submit_parser(name: str) -> None:
    request = build_request("pull_request", payload(name), PR_ENV, image=IMAGE, compute="gpu", note="deeper")
    body = request.model_dump_json()

    parsed = MESSAGE.validate_json(body)

    assert isinstance(parsed, RunRequest)
    assert parsed == request
    assert parsed.compute == "gpu"
    assert parsed.note == "deeper"


def test_a_rerun_is_triggered_by_whoever_reran_it() -> None:
    env = {**PR_ENV, "GITHUB_TRIGGERING_ACTOR": "maintainer-1"}
    request = build_request("pull_request", payload("pull_request.synchronize.json"), env, image=IMAGE)
    assert request.triggered_by == "maintainer-1"


def test_a_fork_pull_request_is_skipped_with_the_reason() -> None:
    with pytest.raises(Skip, match=r"#2 comes from a fork \(octocat/Hello-World\).*no OIDC token"):
        build_request("pull_request", payload("pull_request.synchronize.from_fork.json"), PR_ENV, image=IMAGE)


def test_a_pull_request_from_a_deleted_fork_is_skipped() -> None:
    event = payload("pull_request.synchronize.from_fork.json")
    event["pull_request"]["head"]["repo"] = None
    with pytest.raises(Skip, match="deleted fork"):
        build_request("pull_request", event, PR_ENV, image=IMAGE)


def test_a_draft_pull_request_is_skipped_with_the_reason() -> None:
    event = payload("pull_request.converted_to_draft.json")
    assert event["pull_request"]["draft"] is True
    with pytest.raises(Skip, match=r"#2 is a draft\. Mark it ready for review"):
        build_request("pull_request", event, PR_ENV, image=IMAGE)


def test_a_closed_pull_request_does_not_start_a_run() -> None:
    with pytest.raises(Skip, match="closed"):
        build_request("pull_request", payload("pull_request.closed.json"), PR_ENV, image=IMAGE)


@pytest.mark.parametrize("event_name", ["pull_request_target", "release", "schedule", "workflow_run"])
def test_other_events_do_not_start_runs(event_name: str) -> None:
    with pytest.raises(Skip, match=rf"'{event_name}' events do not start model runs"):
        build_request(event_name, payload("workflow_dispatch.json"), DISPATCH_ENV, image=IMAGE)


# --- build_request: push ----------------------------------------------------------------------


def test_a_push_to_a_branch_runs_the_pushed_commit() -> None:
    event = push_payload()
    event["inputs"] = {"compute": "gpu", "note": "not a dispatch"}  # a push has no inputs: ignored
    request = build_request("push", event, PUSH_ENV, image=IMAGE)

    assert request.event == "push"
    assert request.repository == "octo-org/octo-repo"
    assert request.pr_number is None
    assert request.head_sha == DISPATCH_SHA
    assert (request.head_ref, request.base_ref) == ("main", "main")  # GITHUB_REF; repository.default_branch
    assert (request.compute, request.note) == ("cpu", None)
    assert request.triggered_by == "octocat"
    assert MESSAGE.validate_json(request.model_dump_json()) == request
    # explicit arguments still apply
    assert build_request("push", event, PUSH_ENV, image=IMAGE, compute="gpu").compute == "gpu"


def test_a_push_of_a_tag_does_not_start_a_run() -> None:
    env = PUSH_ENV | {"GITHUB_REF": "refs/tags/main", "GITHUB_REF_NAME": "main"}
    with pytest.raises(Skip, match=r"push runs start only on branches .*not refs/tags/main"):
        build_request("push", push_payload() | {"ref": "refs/tags/main"}, env, image=IMAGE)


# --- build_request: workflow_dispatch ---------------------------------------------------------


def test_workflow_dispatch_runs_the_dispatched_commit() -> None:
    request = build_request("workflow_dispatch", payload("workflow_dispatch.json"), DISPATCH_ENV, image=IMAGE)

    assert request.event == "workflow_dispatch"
    assert request.repository == "octo-org/octo-repo"
    assert request.pr_number is None
    assert request.head_sha == DISPATCH_SHA
    assert request.head_ref == "feature/bigger-trees"
    assert request.base_ref == "main"  # repository.default_branch
    assert request.compute == "cpu"
    assert request.note is None
    assert request.triggered_by == "octocat"  # sender.login
    assert MESSAGE.validate_json(request.model_dump_json()) == request


def test_workflow_dispatch_takes_compute_and_note_from_its_inputs() -> None:
    event = copy.deepcopy(payload("workflow_dispatch.json"))
    event["inputs"] = {"compute": "gpu", "note": "  try max_depth=8  "}

    request = build_request("workflow_dispatch", event, DISPATCH_ENV, image=IMAGE)
    assert (request.compute, request.note) == ("gpu", "try max_depth=8")

    # explicit arguments win over the inputs; a blank note is no note
    request = build_request("workflow_dispatch", event, DISPATCH_ENV, image=IMAGE, compute="cpu", note="")
    assert (request.compute, request.note) == ("cpu", None)


def test_workflow_dispatch_takes_the_branch_from_github_ref_only() -> None:
    # Neither GITHUB_REF_NAME nor the payload's ref decide: a tag's ref name can be "main" too.
    env = DISPATCH_ENV | {"GITHUB_REF_NAME": "main"}
    request = build_request("workflow_dispatch", payload("workflow_dispatch.json"), env, image=IMAGE)
    assert request.head_ref == "feature/bigger-trees"
    without = {k: v for k, v in DISPATCH_ENV.items() if k != "GITHUB_REF"}
    with pytest.raises(MissingEnvironment, match="GITHUB_REF is not set"):
        build_request("workflow_dispatch", payload("workflow_dispatch.json"), without, image=IMAGE)


@pytest.mark.parametrize("ref", ["refs/tags/main", "refs/tags/v1.0", "refs/pull/2/merge", "main"])
def test_a_dispatch_on_a_tag_or_any_non_branch_ref_is_skipped(ref: str) -> None:
    env = DISPATCH_ENV | {"GITHUB_REF": ref, "GITHUB_REF_NAME": ref.rsplit("/", 1)[-1]}
    event = payload("workflow_dispatch.json") | {"ref": ref}
    with pytest.raises(Skip, match=rf"workflow_dispatch runs start only on branches \(refs/heads/…\), not {ref}\."):
        build_request("workflow_dispatch", event, env, image=IMAGE)


@pytest.mark.parametrize(
    "variables",
    [
        {"GITHUB_RUN_ID": "abc"},
        {"GITHUB_RUN_ID": "-5"},
        {"GITHUB_RUN_ID": "1.5"},
        {"GITHUB_RUN_ATTEMPT": "first"},
        {"GITHUB_RUN_ATTEMPT": " 2x"},
    ],
)
def test_run_id_and_attempt_must_be_digits(variables: dict[str, str]) -> None:
    with pytest.raises(MissingEnvironment, match="must be numbers"):
        build_request("pull_request", payload("pull_request.opened.json"), PR_ENV | variables, image=IMAGE)
    with pytest.raises(MissingEnvironment, match="must be numbers"):
        build_cleanup(payload("pull_request.closed.json"), PR_ENV | variables)


def test_a_missing_run_attempt_is_the_first() -> None:
    env = {k: v for k, v in PR_ENV.items() if k != "GITHUB_RUN_ATTEMPT"}
    assert (
        build_request("pull_request", payload("pull_request.opened.json"), env, image=IMAGE).workflow.run_attempt == 1
    )


# --- invalid input ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"image": "modelrun-models:latest"}, "image"),
        ({"image": IMAGE, "compute": "tpu"}, "compute"),
        ({"image": IMAGE, "note": "x" * 1001}, "note"),
    ],
)
def test_invalid_values_raise_validation_errors(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as error:
        build_request("pull_request", payload("pull_request.opened.json"), PR_ENV, **kwargs)
    assert error.value.errors()[0]["loc"] == (field,)


def test_a_missing_actions_environment_is_reported_by_name() -> None:
    env = {k: v for k, v in PR_ENV.items() if k != "GITHUB_RUN_ID"}
    with pytest.raises(MissingEnvironment, match="GITHUB_RUN_ID is not set"):
        build_request("pull_request", payload("pull_request.opened.json"), env, image=IMAGE)


# --- build_cleanup ----------------------------------------------------------------------------


def test_a_closed_pull_request_builds_the_cleanup_request() -> None:
    cleanup = build_cleanup(payload("pull_request.closed.json"), PR_ENV)

    assert cleanup.kind == "cleanup"
    assert cleanup.schema_version == "1"
    assert (cleanup.repository, cleanup.pr_number, cleanup.triggered_by) == (
        "Codertocat/Hello-World",
        2,
        "Codertocat",
    )
    assert isinstance(MESSAGE.validate_json(cleanup.model_dump_json()), CleanupRequest)


def test_cleanup_skips_forks_and_events_without_a_pull_request() -> None:
    with pytest.raises(Skip, match="fork"):
        build_cleanup(payload("pull_request.synchronize.from_fork.json"), PR_ENV)
    with pytest.raises(Skip, match="no pull request"):
        build_cleanup(payload("workflow_dispatch.json"), DISPATCH_ENV)


# --- summary ----------------------------------------------------------------------------------


def test_the_summary_says_what_was_queued_and_where_results_appear() -> None:
    request = build_request("pull_request", payload("pull_request.opened.json"), PR_ENV, image=IMAGE, note="a | b\n<c>")
    summary = summary_markdown(request, "msg-1")

    assert "model run queued" in summary
    assert "`ec26c3e`" in summary
    assert "comment on pull request #2" in summary
    assert "`msg-1`" in summary
    assert "| Note | a \\| b &lt;c&gt; |" in summary  # user text cannot break the table
    dispatch = build_request("workflow_dispatch", payload("workflow_dispatch.json"), DISPATCH_ENV, image=IMAGE)
    assert "No pull request" in summary_markdown(dispatch, "msg-2")


def test_variables_are_name_value_lines() -> None:
    from modelrun_cli.enqueue import parse_variables

    assert parse_variables("RUN_TYPE=full\n\n  SAMPLE = 0.1 \nEMPTY=\n") == {
        "RUN_TYPE": "full",
        "SAMPLE": "0.1",
        "EMPTY": "",
    }
    assert parse_variables("RUN_TYPE=full; SAMPLE=0.1") == {
        "RUN_TYPE": "full",
        "SAMPLE": "0.1",
    }  # a dispatch's one line
    with pytest.raises(ValueError, match="item 1: expected NAME=value"):
        parse_variables("just words")
    with pytest.raises(ValueError, match="item 2: A is given twice"):
        parse_variables("A=1\nA=2")
