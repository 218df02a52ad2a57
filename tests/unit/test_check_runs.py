"""The check run's writes (modelrun.checks) on in-memory fakes of the runs table and GitHub:
created once and then updated in place, no call for an unchanged state, never back to an older
state, a new one when GitHub lost it, one check run even when a create's answer was lost (looked
up only then), nothing at all on token credentials, and the states on the way where they cost
one request."""

from __future__ import annotations

from typing import Any

import pytest

from modelrun import checks, comments, publishing
from modelrun.domain.run import RunRecord
from modelrun.domain.status import RunStatus
from modelrun.errors import GitHubRateLimited, GitHubUnavailable, PublishBusy
from tests.records import stored_record
from tests.unit.fakes import FakeGitHub, FakeRuns


def at(status: RunStatus, stamp: str, **fields: Any) -> RunRecord:
    return stored_record(status, updated_at=stamp, **fields)


QUEUED = at(RunStatus.SUBMITTED, "2026-01-02T03:04:05.000Z")
RUNNING = at(RunStatus.RUNNING, "2026-01-02T03:05:00.000Z")


def statuses(github: FakeGitHub) -> list[str]:
    return [str(r["status"]) for r in github.check_runs.values()]


def test_created_once_then_updated_in_place() -> None:
    table, github = FakeRuns(QUEUED), FakeGitHub()
    assert checks.publish(table, github, QUEUED, runs_ahead=2, wait=True)
    assert not checks.publish(table, github, QUEUED, runs_ahead=2, wait=True)  # unchanged
    table.add(RUNNING)
    assert checks.publish(table, github, RUNNING, wait=True)
    assert github.calls == ["create_check_run", "update_check_run"]
    (check_run_id,) = github.check_runs
    assert table.items[checks.check_key(RUNNING.run_id)]["check_run_id"] == check_run_id
    assert statuses(github) == ["in_progress"]


def test_an_older_state_never_replaces_a_newer_one() -> None:
    done = at(RunStatus.SUCCEEDED, "2026-01-02T03:09:00.000Z", report={"status": "SUCCEEDED"})
    table, github = FakeRuns(done), FakeGitHub()
    checks.publish(table, github, done, wait=True)
    checks.publish(table, github, RUNNING, wait=True)  # a writer with an old view renders the fresh record
    assert github.calls == ["create_check_run"] and statuses(github) == ["completed"]


def test_a_check_run_github_lost_is_created_again() -> None:
    table, github = FakeRuns(QUEUED), FakeGitHub()
    checks.publish(table, github, QUEUED, wait=True)
    github.check_runs.clear()
    table.add(RUNNING)
    checks.publish(table, github, RUNNING, wait=True)
    assert github.calls == ["create_check_run", "update_check_run", "create_check_run"]
    (check_run_id,) = github.check_runs
    assert table.items[checks.check_key(RUNNING.run_id)]["check_run_id"] == check_run_id  # the new one's id


def test_token_credentials_write_no_check_run() -> None:
    github = FakeGitHub(uses_app=False)
    checks.publish_quietly(FakeRuns(QUEUED), github, QUEUED)
    assert github.calls == []


def test_an_interim_failure_does_not_fail_the_caller() -> None:
    github = FakeGitHub()
    github.fail("create_check_run", RuntimeError("GitHub is down"))
    checks.publish_quietly(FakeRuns(QUEUED), github, QUEUED)  # logged, not raised
    assert github.check_runs == {}


@pytest.mark.parametrize("landed", [True, False])
def test_a_create_whose_answer_was_lost_is_looked_up_before_creating_again(landed: bool) -> None:
    table, github = FakeRuns(QUEUED), FakeGitHub()
    github.fail("create_check_run", GitHubUnavailable("GitHub answered 502"), landed=landed)
    with pytest.raises(GitHubUnavailable):
        checks.publish(table, github, QUEUED, wait=True)
    item = table.items[checks.check_key(QUEUED.run_id)]
    assert item[publishing.CREATE_PENDING] is True and "lease_owner" not in item  # marked; the lease let go
    checks.publish(table, github, QUEUED, wait=True)  # the retry
    second = "update_check_run" if landed else "create_check_run"  # found by the run id: not created twice
    assert github.calls == ["create_check_run", "find_check_run", second]
    assert len(github.check_runs) == 1 and item[publishing.CREATE_PENDING] is False
    assert item["check_run_id"] in github.check_runs


def test_a_create_github_refused_is_retried_without_a_lookup() -> None:
    table, github = FakeRuns(QUEUED), FakeGitHub()
    github.fail("create_check_run", GitHubRateLimited("secondary rate limit (403) without Retry-After"))
    with pytest.raises(GitHubRateLimited):
        checks.publish(table, github, QUEUED, wait=True)
    assert table.items[checks.check_key(QUEUED.run_id)][publishing.CREATE_PENDING] is False
    checks.publish(table, github, QUEUED, wait=True)
    assert github.calls == ["create_check_run", "create_check_run"]  # nothing landed: no lookup


def test_a_busy_check_run_raises_for_the_report_only() -> None:
    table, github = FakeRuns(QUEUED), FakeGitHub()
    table.acquire(checks.check_key(QUEUED.run_id), "another-writer", 45)
    checks.publish_quietly(table, github, QUEUED)
    with pytest.raises(PublishBusy):
        checks.publish(table, github, QUEUED, wait=True)
    assert github.calls == []


@pytest.mark.parametrize(("uses_app", "ended_here", "expected"), [
    (True, False, ["check run"]),  # the check run carries the live state; the comment waits for the end
    (True, True, ["comment", "check run"]),  # runs of the PR ended here (superseded): no report writes them
    (False, False, ["comment"]),  # a token: no check run, the comment carries it
])  # fmt: skip
def test_states_on_the_way_go_to_the_check_run_on_app_credentials(
    uses_app: bool, ended_here: bool, expected: list[str]
) -> None:
    table, github = FakeRuns(QUEUED), FakeGitHub(uses_app)
    checks.publish_interim(table, github, QUEUED, runs_ahead=3, comment=ended_here)
    written = (["comment"] if github.comments else []) + (["check run"] if github.check_runs else [])
    assert written == expected
    assert QUEUED.pr_key is not None
    assert (comments.comment_key(QUEUED.pr_key) in table.items) == ("comment" in expected)


def test_broken_credentials_do_not_fail_an_interim_state() -> None:
    def broken() -> FakeGitHub:
        raise RuntimeError("the GitHub credentials secret is not JSON")

    checks.publish_interim(FakeRuns(QUEUED), broken, QUEUED)  # logged: the report will retry
