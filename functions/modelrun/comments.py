"""Keeping one PR's sticky comment in step with its runs.

The comment is a pure function of the PR's run records (domain.report.render_comment), so any
path (submit, track, report) can refresh it and they all agree. A hash of the last body written
is kept beside the comment id: an unchanged body costs no GitHub call, and a known id costs no
list call.
"""

from __future__ import annotations

import uuid

from aws_lambda_powertools import Logger

from modelrun.adapters.aws import RunsTable
from modelrun.adapters.github import PullRequests, body_sha
from modelrun.config import settings
from modelrun.domain.report import render_comment
from modelrun.domain.run import RunRecord

logger = Logger(child=True)


class CommentBusy(Exception):
    """Another writer holds the claim to create this PR's comment: try again shortly."""


def runs_for_comment(record: RunRecord, listed: list[RunRecord]) -> list[RunRecord]:
    """The PR's runs, newest first, with this run's entry as fresh as either source has it:
    the caller's record, unless the listing holds a later write (another event moved the run
    on meanwhile). The index may also lag and miss the run altogether."""
    newer = [r for r in listed if r.run_id == record.run_id and r.updated_at > record.updated_at]
    runs = [newer[0] if newer else record, *(r for r in listed if r.run_id != record.run_id)]
    return sorted(runs, key=lambda r: r.created_at, reverse=True)


def refresh(
    table: RunsTable, record: RunRecord, runs_ahead: int | None = None, pr_runs: list[RunRecord] | None = None
) -> bool:
    """Re-render and write the PR's comment; True if GitHub was written to.

    ``pr_runs``: the PR's runs when the caller has just read them (saves a query)."""
    if record.pr_number is None or record.pr_key is None:
        return False  # a dispatch on a branch has no PR: the commit status carries the result
    runs = runs_for_comment(record, table.runs_of_pr(record.pr_key) if pr_runs is None else pr_runs)
    body = render_comment(runs, runs_ahead if runs[0].run_id == record.run_id else None)
    state = table.comment_state(record.pr_key)
    sha = body_sha(body)
    if state.get("body_sha") == sha:
        return False
    known_id = state.get("comment_id")
    if known_id is None and not table.claim_comment(record.pr_key, owner=f"{record.run_id}:{uuid.uuid4()}"):
        raise CommentBusy(f"another writer is creating the comment of {record.pr_key}")
    s = settings()
    prs = PullRequests(s.github_secret_arn, s.github_api_url)
    comment_id = prs.upsert_comment(record.repository, record.pr_number, body, known_id)
    table.save_comment_state(record.pr_key, comment_id, sha)
    logger.info("PR comment updated", extra={"run_id": record.run_id, "comment_id": comment_id})
    return True


def refresh_quietly(
    table: RunsTable, record: RunRecord, runs_ahead: int | None = None, pr_runs: list[RunRecord] | None = None
) -> None:
    """Interim updates (queued, running) must not fail the message: the report refreshes it again."""
    try:
        refresh(table, record, runs_ahead, pr_runs)
    except CommentBusy:
        logger.info(
            "PR comment being created by another writer; it will show this run", extra={"run_id": record.run_id}
        )
    except Exception:
        logger.exception("PR comment update failed; the next update will catch up", extra={"run_id": record.run_id})
