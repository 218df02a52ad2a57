"""What the CLI's run commands do, apart from drawing: find runs, place them in the queue,
cancel, rerun, read logs and move dead letters back. Rendering lives in ``modelrun_cli.views``.

The run records are the functions' own (``modelrun.adapters.aws.RunsTable``, ``RunRecord``):
the CLI reads them exactly as the submit and track functions write them.
"""

from __future__ import annotations

import getpass
import json
import os
import re
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError
from pydantic import ValidationError

from modelrun.adapters.aws import RunsTable
from modelrun.contracts import RerunRequest
from modelrun.domain.documents import Report, Summary, report_of, summary_of
from modelrun.domain.run import RunRecord, utcnow
from modelrun.domain.status import CANCEL_REASON_PREFIX, RunStatus
from modelrun.errors import StaleWrite, describe
from modelrun_cli.connect import Stack, fail

CANCEL_REASON = CANCEL_REASON_PREFIX + " by {user} via modelrun CLI"  # the track function maps it to CANCELLED
DLQS = {
    "run-requests": "RunRequestsDLQUrl",
    "operator-requests": "OperatorRequestsDLQUrl",
    "job-events": "JobEventsDLQUrl",
}
_HASH_SUFFIX = re.compile(r"-[0-9a-f]{6}$")
_NOT_LOGIN = re.compile(r"[^A-Za-z0-9-]+")


# --- reading runs -----------------------------------------------------------------------------


def short_id(run_id: str) -> str:
    """The run id without its trailing hash: still a prefix of the id, so `show` accepts it."""
    return _HASH_SUFFIX.sub("", run_id)


def parse_time(stamp: str | None) -> datetime | None:
    if not stamp:
        return None
    return datetime.fromisoformat(stamp.replace("Z", "+00:00"))


def elapsed_seconds(record: RunRecord, now: datetime | None = None) -> float | None:
    """How long it ran: to its stop, or until now while it runs."""
    if record.duration_seconds is not None:
        return record.duration_seconds
    started = parse_time(record.started_at)
    if started is None:
        return None
    # a superseded (or cancelled) run stopped when its record last changed
    end = parse_time(record.updated_at) if record.status.terminal else now or datetime.now(UTC)
    return max(0.0, ((end or started) - started).total_seconds())


def queue_positions(records: Iterable[RunRecord]) -> dict[str, int]:
    """Waiting runs (QUEUED, SUBMITTED, RUNNABLE) by job queue, oldest first: 1 is next."""
    waiting: dict[str, list[RunRecord]] = defaultdict(list)
    for record in records:
        if record.status.queued:
            waiting[record.job_queue].append(record)
    positions: dict[str, int] = {}
    for queue in waiting.values():
        for position, record in enumerate(sorted(queue, key=lambda r: (r.created_at, r.run_id)), start=1):
            positions[record.run_id] = position
    return positions


def readable_summary(record: RunRecord) -> Summary:
    """The record's summary; an empty one if it can't be read (a record from another version)."""
    try:
        return summary_of(record.summary)
    except ValidationError:
        return Summary()


def readable_report(record: RunRecord) -> Report:
    """The record's report; an empty one if it can't be read (a record from another version)."""
    try:
        return report_of(record.report)
    except ValidationError:
        return Report()


def headline(record: RunRecord) -> dict[str, float]:
    """The run's headline metrics: RMSE and COD, when it reported them."""
    summary = readable_summary(record)
    found: dict[str, float] = {}
    if summary.metrics.rmse is not None:
        found["rmse"] = summary.metrics.rmse
    cod = summary.ratio_study.value("cod")
    if cod is not None:
        found["cod"] = cod
    return found


def parse_statuses(values: list[str] | None) -> set[RunStatus] | None:
    """``--status running --status failed`` or ``--status running,failed``; ``active`` = not ended."""
    if not values:
        return None
    chosen: set[RunStatus] = set()
    for value in values:
        for name in filter(None, (v.strip().upper() for v in value.split(","))):
            if name == "ACTIVE":
                chosen |= {s for s in RunStatus if s.active}
            elif name in RunStatus.__members__:
                chosen.add(RunStatus[name])
            else:
                names = ", ".join(s.value.lower() for s in RunStatus)
                fail(f"unknown status {name.lower()!r}: one of {names}, or active")
    return chosen


def select(
    records: Iterable[RunRecord],
    *,
    pr: int | None = None,
    author: str | None = None,
    statuses: set[RunStatus] | None = None,
    repository: str | None = None,
    limit: int | None = None,
) -> list[RunRecord]:
    """Newest first, filtered."""
    chosen = [
        r
        for r in records
        if (pr is None or r.pr_number == pr)
        and (author is None or r.triggered_by.lower() == author.lower())
        and (statuses is None or r.status in statuses)
        and (repository is None or r.repository.lower() == repository.lower())
    ]
    chosen.sort(key=lambda r: (r.created_at, r.run_id), reverse=True)
    return chosen[:limit] if limit else chosen


def resolve(table: RunsTable, ref: str, records: list[RunRecord] | None = None) -> RunRecord:
    """The run whose id is ``ref`` or starts with it (a unique prefix)."""
    ref = ref.strip()
    if not ref:
        fail("give a run id (or a unique prefix of one)")
    exact = table.get(ref)
    if exact is not None:
        return exact
    matches = [r for r in (records if records is not None else table.scan()) if r.run_id.startswith(ref)]
    if not matches:
        fail(f"no run {ref!r}: `modelrun runs` lists them", exit_code=1)
    if len(matches) > 1:
        names = ", ".join(sorted(r.run_id for r in matches)[:5])
        more = f" and {len(matches) - 5} more" if len(matches) > 5 else ""
        fail(f"{ref!r} matches {len(matches)} runs ({names}{more}): give more of the id", exit_code=1)
    return matches[0]


def as_json(record: RunRecord, position: int | None) -> dict[str, Any]:
    """A run for scripts: the stored record plus what the CLI derives from it."""
    document = record.item()
    document["short_id"] = short_id(record.run_id)
    document["queue_position"] = position
    document["duration_seconds"] = elapsed_seconds(record)
    document["report_url"] = report_links(record).get("report")
    return document


def report_links(record: RunRecord) -> dict[str, str]:
    """The run's links, in the order people want them."""
    report = readable_report(record)
    links = {
        "report": report.report_url,
        "artifacts": report.artifacts_url,
        "log": record.log_url,
        "workflow": record.workflow_url,
        "results": record.results_uri,
    }
    return {name: str(url) for name, url in links.items() if url}


# --- who is asking ----------------------------------------------------------------------------


def login_from(text: str) -> str:
    """Something GitHub-login shaped (the run request's ``triggered_by``): at most 39 characters."""
    cleaned = _NOT_LOGIN.sub("-", text).strip("-")[:39].strip("-")
    return cleaned or "modelrun-cli"


def whoami(stack: Stack) -> str:
    """The AWS caller's name (user or role session), else the local user."""
    if not stack.local:
        try:
            arn = str(stack.client("sts").get_caller_identity()["Arn"])
            return login_from(arn.rsplit("/", 1)[-1])
        except ClientError:
            pass
    try:
        return login_from(os.environ.get("USER") or getpass.getuser())
    except OSError:
        return "modelrun-cli"


# --- cancel -----------------------------------------------------------------------------------


def cancel(stack: Stack, table: RunsTable, record: RunRecord, user: str) -> str:
    """Stop the run's job; the track function records CANCELLED when Batch reports the stop.
    A run with no job yet is marked CANCELLED here. Returns the reason given."""
    if record.status.terminal:
        fail(f"run {record.run_id} has already ended ({record.status.value}): nothing to cancel", exit_code=1)
    reason = CANCEL_REASON.format(user=user)
    if record.job_id:
        stack.client("batch").terminate_job(jobId=record.job_id, reason=reason)
        return reason
    for _ in range(5):
        try:
            table.update(record, status=RunStatus.CANCELLED, status_reason=reason, stopped_at=utcnow())
            return reason
        except StaleWrite:
            fresh = table.get(record.run_id)
            if fresh is None or fresh.status.terminal:
                fail(f"run {record.run_id} ended meanwhile: nothing to cancel", exit_code=1)
            if fresh.job_id:
                return cancel(stack, table, fresh, user)
            record = fresh
    fail(f"run {record.run_id} keeps changing: try again", exit_code=1)


def wait_until_ended(
    table: RunsTable,
    run_id: str,
    timeout: float,
    interval: float = 1.0,
    on_poll: Callable[[RunRecord], None] | None = None,
) -> RunRecord | None:
    """The record once it has ended, or None after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        record = table.get(run_id)
        if record is not None and on_poll:
            on_poll(record)
        if record is not None and record.status.terminal:
            return record
        if time.monotonic() >= deadline:
            return None
        time.sleep(interval)


# --- rerun ------------------------------------------------------------------------------------


def rerun_request(record: RunRecord, records: Iterable[RunRecord], requested_by: str) -> RerunRequest:
    """The operator's rerun of a stored run, as the next attempt of its workflow run. It goes to
    the operator queue: IAM decides who may send there, and the backend reruns the run's own
    verified request (same commit, image and command), never a request from here."""
    if not record.request:
        fail(
            f"run {record.run_id} has no stored request (it predates reruns): push a commit or re-run the workflow",
            exit_code=1,
        )
    attempts = [
        r.workflow_attempt
        for r in records
        if r.workflow_run_id == record.workflow_run_id and r.repository == record.repository
    ]
    attempt = max([record.workflow_attempt, *attempts]) + 1
    try:
        return RerunRequest(
            schema_version="1",
            kind="rerun",
            run_id=record.run_id,
            attempt=attempt,
            requested_by=login_from(requested_by),
        )
    except ValidationError as error:
        fail(f"cannot rerun {record.run_id}: {describe(error)}", exit_code=1)


# --- dead letters -----------------------------------------------------------------------------


@dataclass
class DeadLetter:
    message_id: str
    body: str
    attributes: dict[str, Any]
    receive_count: int
    receipt_handle: str
    sent_at: str | None
    sent_ms: str | None = None  # SQS's SentTimestamp, as sent

    @property
    def reason(self) -> str:
        reason = (self.attributes.get("reason") or {}).get("StringValue")
        if reason:
            return str(reason)
        failed = max(1, self.receive_count - 1)  # less the receive that listed it
        return f"failed after {failed} receive{'s' if failed != 1 else ''}"

    @property
    def subject(self) -> str:
        """What the message is about, in a few words."""
        try:
            body = json.loads(self.body)
        except ValueError:
            body = None
        if isinstance(body, dict) and isinstance(body.get("detail"), dict):
            detail = body["detail"]
            return f"job {detail.get('jobName', '?')} {detail.get('status', '?')}"
        if isinstance(body, dict) and ("repository" in body or "head_sha" in body):
            where = f"PR #{body['pr_number']}" if body.get("pr_number") else str(body.get("head_ref", "?"))
            return (
                f"{body.get('kind', 'run')} {body.get('repository', '?')} {where} {str(body.get('head_sha', ''))[:8]}"
            )
        text = " ".join(self.body.split())
        return text if len(text) <= 60 else text[:57] + "..."


def dead_letter_queues(stack: Stack, which: str) -> tuple[str, str]:
    """(DLQ url, queue to redrive to) for ``run-requests``, ``operator-requests`` or ``job-events``.

    Each DLQ goes back to the one queue it serves (issue 21): a message that entered through the
    run-requests queue never reaches the operator queue, where it would gain operator meaning.
    A redriven request's token is judged by when the submit function first received that body
    (it remembers), never by a time the message carries."""
    if which not in DLQS:
        fail(f"unknown queue {which!r}: {', '.join(DLQS)}")
    dlq = stack.output(DLQS[which])
    sources = stack.client("sqs").list_dead_letter_source_queues(QueueUrl=dlq).get("queueUrls", [])
    if len(sources) == 1:
        return dlq, str(sources[0])
    fail(f"cannot tell which queue feeds {dlq} ({len(sources)} source queues)")


def receive_dead_letters(sqs: Any, dlq_url: str, hold_seconds: int = 300, limit: int = 1000) -> list[DeadLetter]:
    """Every message in the DLQ, held invisible for ``hold_seconds`` while the user decides."""
    letters: dict[str, DeadLetter] = {}
    while len(letters) < limit:
        messages = sqs.receive_message(
            QueueUrl=dlq_url,
            MaxNumberOfMessages=10,
            VisibilityTimeout=hold_seconds,
            WaitTimeSeconds=0,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        ).get("Messages", [])
        if not messages:
            break
        for m in messages:
            attrs = m.get("Attributes", {})
            sent = attrs.get("SentTimestamp")
            letters.setdefault(
                m["MessageId"],
                DeadLetter(
                    message_id=m["MessageId"],
                    body=m["Body"],
                    attributes=m.get("MessageAttributes", {}),
                    receive_count=int(attrs.get("ApproximateReceiveCount", "1")),
                    receipt_handle=m["ReceiptHandle"],
                    sent_at=datetime.fromtimestamp(int(sent) / 1000, UTC).isoformat(timespec="seconds")
                    if sent
                    else None,
                    sent_ms=sent,
                ),
            )
    return list(letters.values())


def release(sqs: Any, dlq_url: str, letters: list[DeadLetter]) -> None:
    """Make held messages visible again (nothing moved)."""
    for start in range(0, len(letters), 10):
        sqs.change_message_visibility_batch(
            QueueUrl=dlq_url,
            Entries=[
                {"Id": str(i), "ReceiptHandle": m.receipt_handle, "VisibilityTimeout": 0}
                for i, m in enumerate(letters[start : start + 10])
            ],
        )


def _attributes_to_send(attributes: dict[str, Any]) -> dict[str, Any]:
    kept: dict[str, Any] = {}
    for name, value in attributes.items():
        entry = {"DataType": value["DataType"]}
        for key in ("StringValue", "BinaryValue"):
            if key in value:
                entry[key] = value[key]
        kept[name] = entry
    return kept


def move(sqs: Any, letters: list[DeadLetter], dlq_url: str, source_url: str) -> int:
    """Send each message back to its source queue (with its attributes), then delete it from the
    DLQ: at worst a message is sent twice, never lost. (SQS's StartMessageMoveTask does the same
    server-side, but not every endpoint has it.)"""
    moved = 0
    for letter in letters:
        params: dict[str, Any] = {"QueueUrl": source_url, "MessageBody": letter.body}
        # A send time the message carries is never believed (the submit function remembers its own).
        attributes = {k: v for k, v in _attributes_to_send(letter.attributes).items() if k != "sent_at"}
        if attributes:
            params["MessageAttributes"] = attributes
        if source_url.endswith(".fifo"):
            params["MessageGroupId"] = "redrive"
            params["MessageDeduplicationId"] = letter.message_id
        sqs.send_message(**params)
        sqs.delete_message(QueueUrl=dlq_url, ReceiptHandle=letter.receipt_handle)
        moved += 1
    return moved


def dlq_depths(stack: Stack) -> dict[str, int]:
    """Messages waiting in each DLQ (approximate, as SQS counts)."""
    depths = {}
    for which, key in DLQS.items():
        url = stack.outputs.get(key)
        if not url:
            continue
        attrs = stack.client("sqs").get_queue_attributes(
            QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
        )["Attributes"]
        depths[which] = int(attrs.get("ApproximateNumberOfMessages", 0)) + int(
            attrs.get("ApproximateNumberOfMessagesNotVisible", 0)
        )
    return depths
