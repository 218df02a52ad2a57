"""Keeping one PR's sticky comment in step with its runs.

The comment is a pure function of the PR's run records (domain.report.render_comment), so any
path (submit, track, report) can refresh it and they all agree. Writes are ordered
(modelrun.publishing): a body rendered from older records never replaces a newer one, and the
body is always rendered from records read while the writer holds the PR's lease. The digest of
the last body written is kept beside the comment id: an unchanged body costs no GitHub call,
and a known id costs no list call. Nor does the PR's first comment: it is listed for only when
an earlier create's answer was lost (modelrun.publishing.create_recorded).

When it is written: on App credentials once per run, by the report (and where runs end without
one: superseded, cancelled), the check run showing the states on the way; on a token also at
submission and at RUNNING (modelrun.checks.publish_interim).
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger

from modelrun import publishing
from modelrun.adapters.github import body_sha
from modelrun.domain.report import render_comment
from modelrun.domain.run import RunRecord
from modelrun.ports import GitHub, Runs

logger = Logger(child=True)


def runs_for_comment(record: RunRecord, listed: list[RunRecord]) -> list[RunRecord]:
    """The PR's runs, newest first, with this run's entry as fresh as either source has it:
    the caller's record, unless the listing holds a later write (another event moved the run
    on meanwhile). The index may also lag and miss the run altogether."""
    newer = [r for r in listed if r.run_id == record.run_id and r.updated_at > record.updated_at]
    runs = [newer[0] if newer else record, *(r for r in listed if r.run_id != record.run_id)]
    return sorted(runs, key=lambda r: r.created_at, reverse=True)


def version_of(runs: list[RunRecord]) -> str:
    """The newest write a body of these runs reflects."""
    return max(r.updated_at for r in runs)


def comment_key(pr_key: str) -> str:
    return f"comment#{pr_key}"


def _body(runs: list[RunRecord], record: RunRecord, runs_ahead: int | None) -> str:
    # The queue position is the caller's, and only while its run is the newest and still waits.
    latest = runs[0]
    ahead = runs_ahead if latest.run_id == record.run_id and latest.status.queued else None
    return render_comment(runs, ahead)


def refresh(
    table: Runs,
    github: GitHub,
    record: RunRecord,
    runs_ahead: int | None = None,
    pr_runs: list[RunRecord] | None = None,
    *,
    wait: bool = True,
) -> bool:
    """Re-render and write the PR's comment, in order; True if GitHub was written to.

    ``pr_runs``: the PR's runs when the caller has just read them; they decide only whether
    anything changed (the body written is rendered from a fresh read). ``wait``: raise
    ``PublishBusy`` while another writer holds the comment (the report retries), instead of
    leaving this state to that writer."""
    if record.pr_number is None or record.pr_key is None:
        return False  # a dispatch on a branch has no PR: the commit status carries the result
    pr_key, number = record.pr_key, record.pr_number
    key = comment_key(pr_key)
    seen = runs_for_comment(record, table.runs_of_pr(pr_key) if pr_runs is None else pr_runs)
    state = table.publication(key)
    if state.get("digest") == body_sha(_body(seen, record, runs_ahead)) and str(state.get("version", "")) >= version_of(
        seen
    ):
        return False

    def render() -> publishing.Rendered:
        runs = runs_for_comment(record, table.runs_of_pr(pr_key))
        body = _body(runs, record, runs_ahead)
        return publishing.Rendered(version_of(runs), body_sha(body), body)

    def write(rendered: publishing.Rendered, current: dict[str, Any]) -> dict[str, Any]:
        prs = github()
        body: str = rendered.payload

        def find() -> int | None:  # an earlier create may have landed unseen: look for it by its marker
            found = prs.find_comment(record.repository, number)
            return found[0] if found else None

        fields = publishing.write_target(
            table,
            key,
            current,
            "comment_id",
            update=lambda comment_id: prs.update_comment(record.repository, comment_id, body),
            find=find,
            create=lambda: prs.create_comment(record.repository, number, body),
        )
        logger.info("PR comment updated", extra={"run_id": record.run_id, "comment_id": fields["comment_id"]})
        return fields

    return publishing.publish(table, key, record.run_id, version_of(seen), render, write, wait=wait)
