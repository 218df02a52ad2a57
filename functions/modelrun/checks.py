"""Keeping a run's ``modelrun`` check run in step with its record (GitHub App credentials only).

One check run per run, on its head commit: created ``queued`` when the run is submitted, moved
to ``in_progress`` (details: the logs) when Batch runs it, ``completed`` with the whole report
when the report path has collected the results (or when a run is superseded or cancelled).
Like the comment, the check run is a pure function of the record (domain.report.check_run) and
its writes are ordered (modelrun.publishing): an older state never replaces a newer one, so the
final state is the last one GitHub holds. The check run's id is kept beside the version and the
digest of what was last written: an unchanged state costs no call. A create whose answer was
lost is looked up among the commit's check runs (by the run id, its external id) before the
next writer creates one: a run never gets two.

With token credentials GitHub refuses check runs; the commit status carries the result instead
(modelrun.statuses), and the comment shows the states on the way.

GitHub requests per run, verification included: on App credentials 5 (the workflow-run lookup;
the check run's create, its update at RUNNING and at the end; the comment's one write at the
end), on a token 5 (the lookup; the comment at submission, at RUNNING and at the end; the
commit status); and for a run with results, the merge gate's policy file read from the base
commit (modelrun.gate), once per repository and commit in a function environment: 6 at most.
The installation token's exchange (an App's) is made once an hour per function environment,
not per run.
"""

from __future__ import annotations

import json
from functools import partial
from typing import Any

from aws_lambda_powertools import Logger

from modelrun import comments, publishing
from modelrun.adapters.github import body_sha
from modelrun.domain.report import check_run
from modelrun.domain.run import RunRecord
from modelrun.ports import GitHub, Runs

logger = Logger(child=True)


def enabled(github: GitHub) -> bool:
    """Whether the stack's credentials can write check runs (a GitHub App's can, a token's can't)."""
    return github().uses_app


def check_key(run_id: str) -> str:
    return f"check#{run_id}"


def publish(table: Runs, github: GitHub, record: RunRecord, runs_ahead: int | None = None, *, wait: bool) -> bool:
    """Write the run's check run as its freshest record shows it, in order; True if GitHub was
    written to. ``runs_ahead``: the caller's queue position, shown while the run waits.
    ``wait``: raise ``PublishBusy`` while another writer holds it (the report retries)."""
    key = check_key(record.run_id)

    def render() -> publishing.Rendered:
        fresh = table.get(record.run_id)
        current = fresh if fresh is not None and fresh.updated_at >= record.updated_at else record
        ahead = runs_ahead if current.status.queued and current.updated_at == record.updated_at else None
        body = check_run(current, ahead).body()
        return publishing.Rendered(current.updated_at, body_sha(json.dumps(body, sort_keys=True)), body)

    def write(rendered: publishing.Rendered, state: dict[str, Any]) -> dict[str, Any]:
        body: dict[str, object] = rendered.payload
        prs = github()
        # Looked up only after a create whose answer was lost (by the run id, its external id),
        # so a run never gets two.
        fields = publishing.write_target(
            table,
            key,
            state,
            "check_run_id",
            update=lambda check_run_id: prs.update_check_run(record.repository, check_run_id, body),
            find=lambda: prs.find_check_run(record.repository, record.head_sha, record.run_id),
            create=lambda: prs.create_check_run(record.repository, record.head_sha, record.run_id, body),
        )
        logger.info("check run written", extra={"run_id": record.run_id, "check_run_id": fields["check_run_id"]})
        return fields

    return publishing.publish(table, key, record.run_id, record.updated_at, render, write, wait=wait)


def publish_quietly(table: Runs, github: GitHub, record: RunRecord, runs_ahead: int | None = None) -> None:
    """publish, never raising (publishing.quietly)."""
    publishing.quietly(
        "check run", record.run_id, lambda: enabled(github) and publish(table, github, record, runs_ahead, wait=False)
    )


def publish_interim(
    table: Runs,
    github: GitHub,
    record: RunRecord,
    runs_ahead: int | None = None,
    pr_runs: list[RunRecord] | None = None,
    *,
    comment: bool = False,
) -> None:
    """A state on the way (queued with its place in the queue, in progress with the log link,
    waiting for a new instance), shown where it costs one GitHub request: on App credentials in
    the check run alone, the sticky comment being written once per run, when the run ends (the
    report); on a token, which has no check run, in the comment. ``comment``: refresh the
    comment all the same, because runs of the PR ended here (superseded or cancelled: no report
    writes it for them). Never raises: the report writes the final state all the same."""
    try:
        app = enabled(github)
    except Exception:
        logger.exception("GitHub credentials unusable; the report will retry", extra={"run_id": record.run_id})
        return
    if comment or not app:
        refresh = partial(comments.refresh, table, github, record, runs_ahead, pr_runs, wait=False)
        publishing.quietly("PR comment", record.run_id, refresh)
    if app:
        publish_quietly(table, github, record, runs_ahead)
