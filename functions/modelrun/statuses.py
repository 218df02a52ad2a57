"""Keeping a commit's ``modelrun`` commit status in step with its newest run (token credentials:
GitHub refuses them check runs). Beside modelrun.comments and modelrun.checks, the third target
the PR shows; rendered by domain.report.commit_status (the merge gate decides its state), written
in order by modelrun.publishing: never an older state after a newer one.
"""

from __future__ import annotations

from typing import Any

from modelrun import comments, publishing
from modelrun.adapters.github import body_sha
from modelrun.domain import report
from modelrun.domain.documents import report_of
from modelrun.domain.run import RunRecord
from modelrun.ports import GitHub, Runs


def runs_of_commit(runs: Runs, record: RunRecord) -> list[RunRecord]:
    """Every run of the record's head commit (a rerun is another run of the same commit), newest first."""
    listed = runs.runs_of_pr(record.pr_key) if record.pr_key else [runs.get(record.run_id) or record]
    same = [r for r in comments.runs_for_comment(record, listed) if r.head_sha == record.head_sha]
    return same or [record]


def publish(runs: Runs, github: GitHub, record: RunRecord) -> str:
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
