"""The report path's second task: the merge gate's policy, the PR's sticky comment, then the
check run or the commit status.

Apart from modelrun.reporting (collecting the results), so that UpdatePullRequest's cold start
loads none of what collecting needs (the metrics schema, the comparison, report.html).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from modelrun import checks, comments, gate, statuses
from modelrun.config import UpdatePullRequestSettings
from modelrun.domain import report
from modelrun.domain.documents import report_of
from modelrun.domain.run import RunRecord
from modelrun.domain.status import RunStatus
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
    record = judge(runs, github, record)
    written = comments.refresh(runs, github, record, wait=True)
    if checks.enabled(github):
        checks.publish(runs, github, record, wait=True)
        # The record in hand decides it: a terminal status and its report do not change.
        shown = report.conclusion(record) or report.check_status(record.status)
        return {"run_id": run_id, "comment_written": written, "check_run": shown}
    state = statuses.publish(runs, github, record)
    return {"run_id": run_id, "comment_written": written, "commit_status": state}


def judge(runs: Runs, github: GitHub, record: RunRecord) -> RunRecord:
    """The record with the merge gate it is judged by (read once, from the PR's base: modelrun.gate);
    only a run with results is judged (the others' status decides their conclusion)."""
    if record.gate is not None or record.status is not RunStatus.SUCCEEDED or not report_of(record.report).has_results:
        return record
    found = gate.read(github(), record).model_dump(mode="json", exclude_none=True)
    runs.set_fields(record.run_id, gate=found)
    return runs.get(record.run_id) or record.model_copy(update={"gate": found})
