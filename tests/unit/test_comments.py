"""The sticky comment's writes (modelrun.comments) on in-memory fakes: a PR's first comment is
created without listing the PR's comments; only after a create whose answer was lost is the
PR searched for it (so it is never posted twice); a create GitHub refused leaves no such mark."""

from __future__ import annotations

from typing import Any

import pytest

from modelrun import comments, publishing
from modelrun.adapters.github import GitHubRateLimited, GitHubUnavailable
from modelrun.domain.run import RunRecord
from modelrun.domain.status import RunStatus
from tests.records import stored_record
from tests.unit.test_checks import FakeTable


class PrTable(FakeTable):
    def runs_of_pr(self, pr_key: str) -> list[RunRecord]:
        return [r for r in self.records.values() if r.pr_key == pr_key]


class FakeComments:
    """GitHub's comments on one PR, and the calls made."""

    def __init__(self) -> None:
        self.gh = self
        self.calls: list[str] = []
        self.bodies: dict[int, str] = {}
        self.fail_create: Exception | None = None
        self.lands_anyway = False

    def create(self, body: str) -> int:
        self.calls.append("create")
        failure, self.fail_create = self.fail_create, None
        if failure is not None and not self.lands_anyway:
            raise failure
        comment_id = 500 + len(self.bodies)
        self.bodies[comment_id] = body
        if failure is not None:
            raise failure
        return comment_id

    def upsert_comment(self, repository: str, number: int, body: str, comment_id: int | None) -> int:
        if comment_id is None:  # as the adapter does: look for ours first
            self.calls.append("list")
            comment_id = next(iter(self.bodies), None)
        if comment_id is None:
            return self.create(body)
        self.calls.append("update")
        self.bodies[comment_id] = body
        return comment_id


@pytest.fixture
def github(monkeypatch: pytest.MonkeyPatch) -> FakeComments:
    fake = FakeComments()
    monkeypatch.setattr(comments, "settings", lambda: type("S", (), {"github_secret_arn": "", "github_api_url": ""}))
    monkeypatch.setattr(comments, "PullRequests", lambda *_: fake)

    def create_comment(client: FakeComments, repository: str, number: int, body: str) -> int:
        return client.create(body)

    monkeypatch.setattr(comments.check_lookup, "create_comment", create_comment)
    return fake


def run(status: RunStatus, stamp: str) -> RunRecord:
    return stored_record(status, updated_at=stamp, report={"status": status.value} if status.terminal else None)


def item(table: FakeTable, record: RunRecord) -> dict[str, Any]:
    assert record.pr_key is not None
    return table.items[comments.comment_key(record.pr_key)]


def test_the_first_comment_is_created_without_a_lookup_then_edited(github: FakeComments) -> None:
    done = run(RunStatus.SUCCEEDED, "2026-01-02T03:09:00.000Z")
    table = PrTable(done)
    assert comments.refresh(table, done)  # type: ignore[arg-type]
    rerun = done.model_copy(update={"note": "again", "updated_at": "2026-01-02T03:10:00.000Z"})
    table.records[done.run_id] = rerun
    assert comments.refresh(table, rerun)  # type: ignore[arg-type]
    assert github.calls == ["create", "update"]
    assert item(table, done)["comment_id"] == 500 and item(table, done)[publishing.CREATE_PENDING] is False


@pytest.mark.parametrize("landed", [True, False])
def test_after_a_lost_answer_the_pr_is_searched_before_creating(github: FakeComments, landed: bool) -> None:
    done = run(RunStatus.SUCCEEDED, "2026-01-02T03:09:00.000Z")
    table = PrTable(done)
    github.fail_create, github.lands_anyway = GitHubUnavailable("GitHub answered 502"), landed
    with pytest.raises(GitHubUnavailable):
        comments.refresh(table, done)  # type: ignore[arg-type]
    assert item(table, done)[publishing.CREATE_PENDING] is True and "lease_owner" not in item(table, done)
    assert comments.refresh(table, done)  # type: ignore[arg-type]  # the state machine's retry
    assert github.calls == ["create", "list", "update" if landed else "create"]
    assert len(github.bodies) == 1  # one comment either way
    assert item(table, done)[publishing.CREATE_PENDING] is False


def test_a_refused_create_is_retried_without_a_lookup(github: FakeComments) -> None:
    done = run(RunStatus.SUCCEEDED, "2026-01-02T03:09:00.000Z")
    table = PrTable(done)
    github.fail_create = GitHubRateLimited("secondary rate limit (403) without Retry-After")
    with pytest.raises(GitHubRateLimited):
        comments.refresh(table, done)  # type: ignore[arg-type]
    assert comments.refresh(table, done)  # type: ignore[arg-type]
    assert github.calls == ["create", "create"]
