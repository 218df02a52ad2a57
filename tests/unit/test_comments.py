"""The sticky comment's writes (modelrun.comments) on in-memory fakes: a PR's first comment is
created without listing the PR's comments; only after a create whose answer was lost is the
PR searched for it (so it is never posted twice); a create GitHub refused leaves no such mark;
a comment someone deleted is created again; a writer that finds the comment busy leaves its
state to the holder, or (the report) raises PublishBusy to be retried."""

from __future__ import annotations

from typing import Any

import pytest

from modelrun import comments, publishing
from modelrun.domain.run import RunRecord
from modelrun.domain.status import RunStatus
from modelrun.errors import GitHubRateLimited, GitHubUnavailable, PublishBusy
from tests.records import stored_record
from tests.unit.fakes import FakeGitHub, FakeRuns


def run(status: RunStatus, stamp: str, **fields: Any) -> RunRecord:
    return stored_record(
        status, updated_at=stamp, report={"status": status.value} if status.terminal else None, **fields
    )


def item(table: FakeRuns, record: RunRecord) -> dict[str, Any]:
    assert record.pr_key is not None
    return table.items[comments.comment_key(record.pr_key)]


DONE = run(RunStatus.SUCCEEDED, "2026-01-02T03:09:00.000Z")


def test_the_first_comment_is_created_without_a_lookup_then_edited() -> None:
    table, github = FakeRuns(DONE), FakeGitHub()
    assert comments.refresh(table, github, DONE)
    rerun = DONE.model_copy(update={"note": "again", "updated_at": "2026-01-02T03:10:00.000Z"})
    table.add(rerun)
    assert comments.refresh(table, github, rerun)
    assert github.calls == ["create_comment", "update_comment"]
    (comment_id,) = github.comments
    assert item(table, DONE)["comment_id"] == comment_id and item(table, DONE)[publishing.CREATE_PENDING] is False
    assert "again" in github.comment_bodies()[0]


def test_an_unchanged_body_costs_no_call() -> None:
    table, github = FakeRuns(DONE), FakeGitHub()
    assert comments.refresh(table, github, DONE)
    assert not comments.refresh(table, github, DONE)
    assert github.calls == ["create_comment"]


@pytest.mark.parametrize("landed", [True, False])
def test_after_a_lost_answer_the_pr_is_searched_before_creating(landed: bool) -> None:
    table, github = FakeRuns(DONE), FakeGitHub()
    github.fail("create_comment", GitHubUnavailable("GitHub answered 502"), landed=landed)
    with pytest.raises(GitHubUnavailable):
        comments.refresh(table, github, DONE)
    assert item(table, DONE)[publishing.CREATE_PENDING] is True and "lease_owner" not in item(table, DONE)
    assert comments.refresh(table, github, DONE)  # the state machine's retry
    assert github.calls == ["create_comment", "find_comment", "update_comment" if landed else "create_comment"]
    assert len(github.comments) == 1  # one comment either way
    assert item(table, DONE)[publishing.CREATE_PENDING] is False


def test_a_refused_create_is_retried_without_a_lookup() -> None:
    table, github = FakeRuns(DONE), FakeGitHub()
    github.fail("create_comment", GitHubRateLimited("secondary rate limit (403) without Retry-After"))
    with pytest.raises(GitHubRateLimited):
        comments.refresh(table, github, DONE)
    assert comments.refresh(table, github, DONE)
    assert github.calls == ["create_comment", "create_comment"]


def test_a_deleted_comment_is_created_again() -> None:
    table, github = FakeRuns(DONE), FakeGitHub()
    comments.refresh(table, github, DONE)
    github.comments.clear()  # someone deleted it: GitHub answers 404 to the edit
    rerun = DONE.model_copy(update={"note": "again", "updated_at": "2026-01-02T03:10:00.000Z"})
    table.add(rerun)
    assert comments.refresh(table, github, rerun)
    assert github.calls == ["create_comment", "update_comment", "create_comment"]
    (comment_id,) = github.comments
    assert item(table, DONE)["comment_id"] == comment_id


def quietly(table: FakeRuns, github: FakeGitHub) -> None:
    """The interim refresh, as the submit and track paths make it."""
    publishing.quietly("PR comment", DONE.run_id, lambda: comments.refresh(table, github, DONE, wait=False))


def test_a_busy_comment_is_left_to_its_holder_or_raises_for_the_report() -> None:
    table, github = FakeRuns(DONE), FakeGitHub()
    assert DONE.pr_key is not None
    key = comments.comment_key(DONE.pr_key)
    table.acquire(key, "another-writer", 45)
    assert not comments.refresh(table, github, DONE, wait=False)  # an interim writer leaves it
    assert table.items[key]["wanted"] == DONE.updated_at  # ... asking the holder to show it
    with pytest.raises(PublishBusy):
        comments.refresh(table, github, DONE, wait=True)  # the report is retried instead
    quietly(table, github)  # never raises
    assert github.calls == []


def test_an_interim_failure_is_logged_not_raised() -> None:
    table, github = FakeRuns(DONE), FakeGitHub()
    github.fail("create_comment", GitHubUnavailable("GitHub answered 502"))
    quietly(table, github)
    assert github.calls == ["create_comment"] and github.comments == {}


def test_a_run_without_a_pr_writes_no_comment() -> None:
    branch_run = run(RunStatus.SUCCEEDED, "2026-01-02T03:09:00.000Z", pr_number=None, pr_key=None)
    github = FakeGitHub()
    assert not comments.refresh(FakeRuns(branch_run), github, branch_run)
    assert github.calls == []
