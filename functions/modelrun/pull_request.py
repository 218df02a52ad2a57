"""The report path's second task: the PR's sticky comment, then the check run or the commit status.

Apart from modelrun.reporting (collecting the results), so that UpdatePullRequest's cold start
loads none of what collecting needs (the metrics schema, the comparison, report.html).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from modelrun import checks, comments, publishing
from modelrun.adapters.github import body_sha
from modelrun.config import UpdatePullRequestSettings
from modelrun.domain import report
from modelrun.domain.documents import report_of
from modelrun.domain.run import RunRecord
from modelrun.errors import GitHubRateLimited, RunNotFound
from modelrun.ports import GitHub, Runs
from modelrun.wiring import RecordsAndGitHub, records_and_github


@dataclass(frozen=True)
class UpdateDeps(RecordsAndGitHub[UpdatePullRequestSettings]):
    """What UpdatePullRequest works with, made at its cold start."""

    @classmethod
    def of(cls, s: UpdatePullRequestSettings) -> UpdateDeps:
        return cls(s, *records_and_github(s))


# A rate limit whose Retry-After is this short is waited out here, and the writes made again: a
# refused request landed nothing, and the state machine's retrier waits at least a minute (what
# GitHub asks when it gives no Retry-After). Within the function's 60 s timeout, twice at most.
SHORT_RETRY_AFTER_S = 10.0
SHORT_WAITS = 2


def update_pull_request(deps: UpdateDeps, run_id: str, sleep: Callable[[float], None] = time.sleep) -> dict[str, Any]:
    """The sticky comment, then the check run (GitHub App credentials) or else the commit
    status, each written in order (modelrun.publishing). GitHub errors propagate for the state
    machine to retry, but for a rate limit whose Retry-After is short: waited out here."""
    for _ in range(SHORT_WAITS):
        try:
            return _update(deps, run_id)
        except GitHubRateLimited as error:
            if error.retry_after > SHORT_RETRY_AFTER_S:
                raise
            sleep(max(error.retry_after, 1.0))
    return _update(deps, run_id)


def _update(deps: UpdateDeps, run_id: str) -> dict[str, Any]:
    runs, github = deps.runs, deps.github
    record = runs.get(run_id)
    if record is None:
        raise RunNotFound(run_id)
    written = comments.refresh(runs, github, record, wait=True)
    if checks.enabled(github):
        checks.publish(runs, github, record, wait=True)
        # The record in hand decides it: a terminal status and its report do not change.
        shown = report.conclusion(record) or report.check_status(record.status)
        return {"run_id": run_id, "comment_written": written, "check_run": shown}
    state = publish_commit_status(runs, github, record)
    return {"run_id": run_id, "comment_written": written, "commit_status": state}


def runs_of_commit(runs: Runs, record: RunRecord) -> list[RunRecord]:
    """Every run of the record's head commit (a rerun is another run of the same commit), newest first."""
    listed = runs.runs_of_pr(record.pr_key) if record.pr_key else [runs.get(record.run_id) or record]
    same = [r for r in comments.runs_for_comment(record, listed) if r.head_sha == record.head_sha]
    return same or [record]


def publish_commit_status(runs: Runs, github: GitHub, record: RunRecord) -> str:
    """The commit status of the commit's newest run, never an older state after a newer one."""
    key = f"status#{record.repository.lower()}#{record.head_sha}"
    shown: dict[str, str] = {}

    def render() -> publishing.Rendered:
        newest = runs_of_commit(runs, record)[0]
        state, description = report.commit_status(newest)
        target = report_of(newest.report).report_url or newest.workflow_url
        shown["state"] = state
        digest = body_sha(f"{state}\n{description}\n{target}")
        return publishing.Rendered(newest.updated_at, digest, (state, description, target))

    def write(rendered: publishing.Rendered, _: dict[str, Any]) -> dict[str, Any]:
        state, description, target = rendered.payload
        github().set_status(record.repository, record.head_sha, state, description, target)
        return {}

    publishing.publish(runs, key, record.run_id, record.updated_at, render, write, wait=True)
    return shown.get("state") or report.commit_status(record)[0]
