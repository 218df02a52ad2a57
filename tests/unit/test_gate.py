"""Reading the merge gate (modelrun.gate) and keeping it on the record (pull_request.judge): from
the PR's base commit, never its head; once per repository and commit; a file that can't be used
is an invalid gate with its reason, never an error; unreadable credentials are not kept."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from modelrun import gate, pull_request
from modelrun.domain.policy import POLICY_PATH
from modelrun.domain.run import RunRecord
from modelrun.domain.status import RunStatus
from modelrun.errors import GitHubForbidden, GitHubInvalid, GitHubUnavailable
from tests.records import stored_record
from tests.unit.fakes import FakeGitHub, FakeRuns

BASE, HEAD = "b" * 40, "e" * 40
RESULTS = {"status": "SUCCEEDED", "metrics": {"rmse": 1.0}}


@pytest.fixture(autouse=True)
def fresh_cache() -> Iterator[None]:
    gate._read.clear()
    yield
    gate._read.clear()


def succeeded(**fields: Any) -> RunRecord:
    return stored_record(RunStatus.SUCCEEDED, base_sha=BASE, head_sha=HEAD, report=RESULTS, **fields)


def test_read_from_the_base_commit_not_the_head_and_kept_per_commit() -> None:
    github = FakeGitHub()
    github.files[(BASE, POLICY_PATH)] = b"must_pass: [cod]\n"
    github.files[(HEAD, POLICY_PATH)] = b"{}\n"  # the PR's own, looser: never read
    record = succeeded()
    found = gate.read(github, record)
    assert (found.kind, found.ref, found.policy.must_pass) == ("file", BASE, ("cod",))
    assert gate.read(github, record) == found
    assert github.calls == ["file_at"]  # once for the commit


def test_no_file_is_the_default_and_a_branch_is_read_again() -> None:
    github = FakeGitHub()
    record = stored_record(RunStatus.SUCCEEDED, base_sha=None, base_ref="main", report=RESULTS)
    assert gate.read(github, record).kind == "default"
    assert gate.read(github, record).ref == "main"
    assert github.calls == ["file_at", "file_at"]  # a branch moves: not kept


@pytest.mark.parametrize(
    ("data", "error"),
    [
        (b"must_pass: [cod\n", "not YAML"),
        (b"\xff\xfe", "not YAML"),
        (b"- cod\n", "must be a mapping"),
        (b"must_pass: [rmse]\n", "unknown IAAO standard 'rmse'"),
    ],
)
def test_a_file_that_cant_be_used_is_an_invalid_gate(data: bytes, error: str) -> None:
    found = gate.parse(data, BASE)
    assert found.kind == "invalid" and found.error is not None and error in found.error


def test_a_directory_or_a_missing_permission_is_an_invalid_gate_not_an_error() -> None:
    github = FakeGitHub()
    github.fail("file_at", GitHubInvalid(".github/modelrun.yaml is not a file"))
    assert gate.read(github, succeeded()).kind == "invalid"
    gate._read.clear()
    github.fail("file_at", GitHubForbidden("403"))
    found = gate.read(github, succeeded())
    assert found.kind == "invalid" and "Contents: read" in str(found.error)
    assert gate.read(github, succeeded()).kind == "default"  # not kept: read again


def test_github_unavailable_propagates_for_the_state_machine_to_retry() -> None:
    github = FakeGitHub()
    github.fail("file_at", GitHubUnavailable("502"))
    with pytest.raises(GitHubUnavailable):
        gate.read(github, succeeded())


def test_judge_keeps_the_gate_on_the_record_once_and_only_for_runs_with_results() -> None:
    github = FakeGitHub()
    github.files[(BASE, POLICY_PATH)] = b"newly_failing: failure\n"
    record = succeeded()
    runs = FakeRuns(record)
    judged = pull_request.judge(runs, github, record)
    assert judged.gate is not None and judged.gate["policy"]["newly_failing"] == "failure"
    assert pull_request.judge(runs, github, judged).gate == judged.gate
    failed = stored_record(RunStatus.FAILED, run_id="other")
    assert pull_request.judge(FakeRuns(failed), github, failed).gate is None
    assert github.calls == ["file_at"]
