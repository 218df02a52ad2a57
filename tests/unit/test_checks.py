"""The check run's writes (modelrun.checks) on in-memory fakes of the runs table and GitHub:
created once and then updated in place, no call for an unchanged state, never back to an older
state, a new one when GitHub lost it, one check run even when a create's answer was lost (looked
up only then), and nothing at all on token credentials."""

from __future__ import annotations

from typing import Any

import pytest

from modelrun import checks, publishing
from modelrun.adapters.github import GitHubRateLimited, GitHubUnavailable
from modelrun.domain.run import RunRecord
from modelrun.domain.status import RunStatus
from tests.records import stored_record


class FakeTable:
    """The runs table's records and publication items, with the lease as RunsTable keeps it."""

    def __init__(self, record: RunRecord) -> None:
        self.records = {record.run_id: record}
        self.items: dict[str, dict[str, Any]] = {}

    def get(self, run_id: str) -> RunRecord | None:
        return self.records.get(run_id)

    def publication(self, key: str) -> dict[str, Any]:
        return dict(self.items.get(key, {}))

    def acquire(self, key: str, owner: str, lease_seconds: float) -> bool:
        item = self.items.setdefault(key, {})
        if item.get("lease_owner") not in (None, owner):
            return False
        item["lease_owner"] = owner
        return True

    def want(self, key: str, version: str) -> bool:
        self.items[key]["wanted"] = version
        return True

    def publish(self, key: str, owner: str, version: str, **fields: Any) -> bool:
        item = self.items[key]
        if item.get("lease_owner") != owner or str(item.get("wanted", "")) > version:
            return False
        item.update(fields, version=version)
        for k in ("lease_owner", "wanted"):
            item.pop(k, None)
        return True

    def release(self, key: str, owner: str) -> None:
        self.items[key].pop("lease_owner", None)

    def set_fields(self, run_id: str, **fields: Any) -> None:
        self.items[run_id].update(fields)


class FakeGitHub:
    def __init__(self, uses_app: bool = True) -> None:
        self.uses_app = uses_app
        self.gh = self  # the client check_lookup is handed
        self.calls: list[tuple[str, Any]] = []
        self.runs: dict[int, dict[str, Any]] = {}
        self.external_ids: dict[int, str] = {}
        self.fail_create: Exception | None = None
        self.lands_anyway = False  # the failed create landed all the same (its answer was lost)

    def create_check_run(self, repository: str, head_sha: str, external_id: str, body: dict[str, Any]) -> int:
        self.calls.append(("create", body["status"]))
        failure, self.fail_create = self.fail_create, None
        if failure is not None and not self.lands_anyway:
            raise failure
        run_id = 1000 + len(self.runs)
        self.runs[run_id] = dict(body)
        self.external_ids[run_id] = external_id
        if failure is not None:
            raise failure
        return run_id

    def update_check_run(self, repository: str, check_run_id: int, body: dict[str, Any]) -> bool:
        self.calls.append(("update", body["status"]))
        if check_run_id not in self.runs:
            return False
        self.runs[check_run_id] = dict(body)
        return True


@pytest.fixture
def github(monkeypatch: pytest.MonkeyPatch) -> FakeGitHub:
    fake = FakeGitHub()
    monkeypatch.setattr(checks, "github", lambda: fake)

    def find_check_run(client: FakeGitHub, repository: str, head_sha: str, external_id: str) -> int | None:
        client.calls.append(("list", external_id))
        found = [i for i, e in client.external_ids.items() if e == external_id]
        return max(found) if found else None

    monkeypatch.setattr(checks.check_lookup, "find_check_run", find_check_run)
    return fake


def at(status: RunStatus, stamp: str, **fields: Any) -> RunRecord:
    return stored_record(status, updated_at=stamp, **fields)


def test_created_once_then_updated_in_place(github: FakeGitHub) -> None:
    queued = at(RunStatus.SUBMITTED, "2026-01-02T03:04:05.000Z")
    table = FakeTable(queued)
    assert checks.publish(table, queued, runs_ahead=2, wait=True)  # type: ignore[arg-type]
    assert not checks.publish(table, queued, runs_ahead=2, wait=True)  # type: ignore[arg-type]  # unchanged
    running = at(RunStatus.RUNNING, "2026-01-02T03:05:00.000Z")
    table.records[running.run_id] = running
    assert checks.publish(table, running, wait=True)  # type: ignore[arg-type]
    assert github.calls == [("create", "queued"), ("update", "in_progress")]
    assert table.items[checks.check_key(running.run_id)]["check_run_id"] == 1000


def test_an_older_state_never_replaces_a_newer_one(github: FakeGitHub) -> None:
    done = at(RunStatus.SUCCEEDED, "2026-01-02T03:09:00.000Z", report={"status": "SUCCEEDED"})
    table = FakeTable(done)
    checks.publish(table, done, wait=True)  # type: ignore[arg-type]
    late = at(RunStatus.RUNNING, "2026-01-02T03:05:00.000Z")  # a writer with an old view
    checks.publish(table, late, wait=True)  # type: ignore[arg-type]
    assert github.calls == [("create", "completed")]  # it rendered the fresh record: nothing new


def test_a_check_run_github_lost_is_created_again(github: FakeGitHub) -> None:
    queued = at(RunStatus.SUBMITTED, "2026-01-02T03:04:05.000Z")
    table = FakeTable(queued)
    checks.publish(table, queued, wait=True)  # type: ignore[arg-type]
    github.runs.clear()
    running = at(RunStatus.RUNNING, "2026-01-02T03:05:00.000Z")
    table.records[running.run_id] = running
    checks.publish(table, running, wait=True)  # type: ignore[arg-type]
    assert github.calls == [("create", "queued"), ("update", "in_progress"), ("create", "in_progress")]
    assert table.items[checks.check_key(running.run_id)]["check_run_id"] == 1000  # the new one's id


def test_token_credentials_write_no_check_run(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeGitHub(uses_app=False)
    monkeypatch.setattr(checks, "github", lambda: fake)
    queued = at(RunStatus.SUBMITTED, "2026-01-02T03:04:05.000Z")
    checks.publish_quietly(FakeTable(queued), queued)  # type: ignore[arg-type]
    assert fake.calls == []


def test_an_interim_failure_does_not_fail_the_caller(github: FakeGitHub) -> None:
    def broken(*args: Any) -> int:
        raise RuntimeError("GitHub is down")

    github.create_check_run = broken  # type: ignore[method-assign]
    queued = at(RunStatus.SUBMITTED, "2026-01-02T03:04:05.000Z")
    checks.publish_quietly(FakeTable(queued), queued)  # type: ignore[arg-type]  # logged, not raised


@pytest.mark.parametrize("landed", [True, False])
def test_a_create_whose_answer_was_lost_is_looked_up_before_creating_again(github: FakeGitHub, landed: bool) -> None:
    queued = at(RunStatus.SUBMITTED, "2026-01-02T03:04:05.000Z")
    table = FakeTable(queued)
    github.fail_create, github.lands_anyway = GitHubUnavailable("GitHub answered 502"), landed
    with pytest.raises(GitHubUnavailable):
        checks.publish(table, queued, wait=True)  # type: ignore[arg-type]
    item = table.items[checks.check_key(queued.run_id)]
    assert item[publishing.CREATE_PENDING] is True and "lease_owner" not in item  # marked; the lease let go
    checks.publish(table, queued, wait=True)  # type: ignore[arg-type]  # the retry
    if landed:  # found by the run id: updated, not created twice
        assert github.calls == [("create", "queued"), ("list", queued.run_id), ("update", "queued")]
    else:
        assert github.calls == [("create", "queued"), ("list", queued.run_id), ("create", "queued")]
    assert len(github.runs) == 1 and item[publishing.CREATE_PENDING] is False
    assert item["check_run_id"] == 1000


def test_a_create_github_refused_is_retried_without_a_lookup(github: FakeGitHub) -> None:
    queued = at(RunStatus.SUBMITTED, "2026-01-02T03:04:05.000Z")
    table = FakeTable(queued)
    github.fail_create = GitHubRateLimited("secondary rate limit (403) without Retry-After")
    with pytest.raises(GitHubRateLimited):
        checks.publish(table, queued, wait=True)  # type: ignore[arg-type]
    assert table.items[checks.check_key(queued.run_id)][publishing.CREATE_PENDING] is False
    checks.publish(table, queued, wait=True)  # type: ignore[arg-type]
    assert github.calls == [("create", "queued"), ("create", "queued")]  # nothing landed: no lookup


@pytest.mark.parametrize(("uses_app", "ended_here", "expected"), [
    (True, False, ["check run"]),  # the check run carries the live state; the comment waits for the end
    (True, True, ["comment", "check run"]),  # runs of the PR ended here (superseded): no report writes them
    (False, False, ["comment"]),  # a token: no check run, the comment carries it
])  # fmt: skip
def test_states_on_the_way_go_to_the_check_run_on_app_credentials(
    monkeypatch: pytest.MonkeyPatch, uses_app: bool, ended_here: bool, expected: list[str]
) -> None:
    written: list[str] = []
    monkeypatch.setattr(checks, "github", lambda: FakeGitHub(uses_app))
    monkeypatch.setattr(checks.comments, "refresh_quietly", lambda *a, **k: written.append("comment"))
    monkeypatch.setattr(checks, "publish", lambda *a, **k: written.append("check run"))
    queued = at(RunStatus.SUBMITTED, "2026-01-02T03:04:05.000Z")
    checks.publish_interim(FakeTable(queued), queued, runs_ahead=3, comment=ended_here)  # type: ignore[arg-type]
    assert written == expected
