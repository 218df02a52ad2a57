"""What reviewers read: the sticky PR comment, the check run, the commit status and the alert.

Pure functions of run records (their typed report: ``modelrun.domain.documents``). The tables
and charts both the comment and the check run show are in ``modelrun.domain.sections`` and
``modelrun.domain.charts``; report.html is ``modelrun.domain.html_report``. Everything
user-written goes through ``modelrun.domain.text`` before it reaches Markdown.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass

from modelrun.domain import formatting as fmt
from modelrun.domain import policy, sections
from modelrun.domain.documents import Report, report_of, summary_of
from modelrun.domain.policy import Gate
from modelrun.domain.run import RunRecord, seconds_between
from modelrun.domain.status import RunStatus
from modelrun.domain.text import (
    code,
    code_block,
    inert,
    link,
    one_line,
    slack_escape,
    slack_link,
    slack_text,
    visible,
)
from modelrun.domain.verdict import verdict_of

MARKER = "<!-- modelrun:sticky-comment v1 -->"
RUNS_AHEAD_CAP = 100  # a queue longer than this reads "100+ runs ahead"
MAX_COMMENT = 60_000  # GitHub's limit is 65,536 characters
MAX_CHECK_OUTPUT = 65_000  # GitHub's limit for a check run's summary and text: 65,535 each
CHECK_NAME = "modelrun"
ICONS = {
    RunStatus.QUEUED: "⏳",
    RunStatus.SUBMITTED: "⏳",
    RunStatus.RUNNABLE: "⏳",
    RunStatus.STARTING: "🚀",
    RunStatus.RUNNING: "🏃",
    RunStatus.SUCCEEDED: "✅",
    RunStatus.FAILED: "❌",
    RunStatus.CANCELLED: "🚫",
    RunStatus.SUPERSEDED: "⏭️",
}
_WAITING = (RunStatus.QUEUED, RunStatus.SUBMITTED, RunStatus.RUNNABLE, RunStatus.STARTING)

# On-demand list prices in us-east-1 (USD per hour), for an order-of-magnitude estimate only.
PRICE_VCPU_HOUR = {"cpu": 0.04048 * 0.3, "gpu": 0.0}  # Fargate Spot runs ~70% below on-demand
PRICE_GB_HOUR = {"cpu": 0.004445 * 0.3, "gpu": 0.0}
PRICE_GPU_HOUR = 0.526 * 0.4  # g4dn.xlarge on Spot, about 60% below on-demand


def estimated_cost(record: RunRecord) -> float | None:
    seconds = record.duration_seconds
    if seconds is None:
        return None
    hours = seconds / 3600
    if record.compute == "gpu":
        return round(hours * PRICE_GPU_HOUR * max(record.gpus, 1), 4)
    vcpu = PRICE_VCPU_HOUR["cpu"] * record.vcpus
    memory = PRICE_GB_HOUR["cpu"] * record.memory_mib / 1024
    return round(hours * (vcpu + memory), 4)


def is_spot_reclaim(reason: str | None) -> bool:
    # Batch's reason when EC2 takes a Spot instance back ("Host EC2 (instance i-…) terminated.").
    return bool(reason) and str(reason).startswith("Host EC2")


def _links(record: RunRecord, report: Report) -> str:
    waiting = record.lost_attempts and record.status.active and record.status is not RunStatus.RUNNING
    links = [
        "" if waiting else link("Logs", record.log_url),  # the lost attempt's: listed with it
        link("Full report", report.report_url),
        link("Artifacts", report.artifacts_url),
        link("Workflow run", record.workflow_url),
    ]
    return " · ".join(x for x in links if x)


def _retried(record: RunRecord) -> str:
    """The attempts Batch lost and retried, in words: "attempt 1 lost to a Spot reclaim; retried"."""
    lost = record.lost_attempts
    if not lost:
        return ""
    numbers = [str(i) for i in range(1, len(lost) + 1)]
    which = f"attempt {numbers[0]}" if len(numbers) == 1 else f"attempts {', '.join(numbers[:-1])} and {numbers[-1]}"
    spot = all(is_spot_reclaim(a.reason) for a in lost)
    return (
        f"{which} lost to {'a Spot reclaim' if len(lost) == 1 else 'Spot reclaims'}; retried"
        if spot
        else (f"{which} ended early; retried")
    )


def _headline(record: RunRecord, runs_ahead: int | None) -> str:
    status = record.status
    queue = "GPU" if record.compute == "gpu" else "CPU"
    text = f"{ICONS[status]} **{status.value}**"
    lost = record.lost_attempts
    if status in _WAITING and lost:
        why = "to a Spot reclaim" if is_spot_reclaim(lost[-1].reason) else "(Batch retries it)"
        text += (
            f" · attempt {len(lost)} was lost {why}; attempt {len(lost) + 1} is waiting for a new instance "
            f"on the {queue} queue"
        )
        return text
    if status.queued:
        if runs_ahead is None:
            ahead = ""
        elif runs_ahead >= RUNS_AHEAD_CAP:
            ahead = f", {RUNS_AHEAD_CAP}+ runs ahead"
        else:
            ahead = f", {runs_ahead} run{'s' if runs_ahead != 1 else ''} ahead"
        text += f" on the {queue} queue{ahead}"
    elif status in (RunStatus.STARTING, RunStatus.RUNNING):
        text += f" on {queue}" + (f" since {record.started_at[11:19]} UTC" if record.started_at else "")
        if lost:
            text += f" (attempt {len(lost) + 1}: {_retried(record)})"
    elif status.terminal and record.duration_seconds is not None:
        cost = estimated_cost(record)
        over = f" over {len(record.attempts or [])} attempts" if len(record.attempts or []) > 1 else ""
        text += f" in {fmt.duration(record.duration_seconds)}{over} on {queue}"
        if cost is not None:
            text += f" (≈ ${cost:.3f} compute)" if cost >= 0.001 else " (< $0.001 compute)"
        if lost:
            text += f" · {_retried(record)}"
    return text


def _attempts(record: RunRecord) -> list[str]:
    """One line per Batch attempt once there was more than one (or one was lost)."""
    attempts = record.attempts or []
    if not record.lost_attempts:
        return []
    lines: list[str] = []
    for number, attempt in enumerate(attempts, start=1):
        started = (attempt.started_at or "")[11:19]
        stopped = (attempt.stopped_at or "")[11:19]
        reason = attempt.reason
        if record.status.terminal and number == len(attempts):
            outcome = record.status.value.lower()
        elif is_spot_reclaim(reason):
            outcome = "lost to a Spot reclaim"
        else:
            outcome = f"ended: {inert(reason or 'no reason given', 120)}"
        took = ""
        if attempt.started_at and attempt.stopped_at:
            took = f", {fmt.duration(seconds_between(attempt.started_at, attempt.stopped_at))}"
        logs = link("logs", _log_link(record, attempt.log_stream))
        lines.append(
            f"{number}. {started or '—'}–{stopped or '—'} UTC{took}: {outcome}" + (f" · {logs}" if logs else "")
        )
    if not record.status.terminal:
        lines.append(f"{len(attempts) + 1}. waiting for a new instance")
    return lines


def _attempts_section(record: RunRecord) -> list[str]:
    """The attempts under their bold heading, as the comment and an active check run show them."""
    rows = _attempts(record)
    return ["", "**Attempts**", "", *rows] if rows else []


def _log_link(record: RunRecord, stream: object) -> str | None:
    """The attempt's log link: the record's when it is that attempt's stream (the URL is built
    by the backend; a stream name alone is not a link)."""
    if stream and record.log_stream == stream:
        return record.log_url
    return None


def _history_row(run: RunRecord) -> str:
    summary = summary_of(run.summary)
    return (
        f"| {link(f'{run.workflow_run_id}.{run.workflow_attempt}', run.workflow_url) or run.workflow_run_id} "
        f"| {code(run.head_sha[:8])} "
        f"| {ICONS[run.status]} {run.status.value} | {fmt.value('rmse', summary.metrics.rmse)} "
        f"| {fmt.value('cod', summary.ratio_study.value('cod'))} "
        f"| {run.created_at[:16].replace('T', ' ')} |"
    )


def _history(runs: Sequence[RunRecord], budget: int | None = None) -> list[str]:
    """The earlier runs, newest first, in a collapsed table. With a ``budget`` (characters),
    the oldest rows give way first and the table and ``<details>`` are always closed."""
    if not runs:
        return []
    head = [
        "",
        f"<details><summary>Earlier runs of this PR ({len(runs)})</summary>",
        "",
        "| run | commit | status | RMSE | COD | started |",
        "|---|---|---|---:|---:|---|",
    ]
    tail = ["", "</details>"]
    rows: list[str] = []
    used = sum(len(line) + 1 for line in head + tail) + 120  # room for the "not shown" line
    for run in runs:
        row = _history_row(run)
        if budget is not None and used + len(row) + 1 > budget:
            break
        rows.append(row)
        used += len(row) + 1
    if len(rows) < len(runs):
        rows += ["", f"_{len(runs) - len(rows)} older runs not shown (`modelrun runs` lists them all)._"]
    return head + rows + tail


def _verdict(record: RunRecord, report: Report, *, with_gate: bool = True) -> list[str]:
    """The verdict, first: one line (and each statistic's direction, a line that wraps), or why
    there is none for a run that ended without results."""
    if record.status is RunStatus.SUCCEEDED and report.has_results:
        line = sections.verdict_line(verdict_of(report), report)
        directions = sections.directions(report)
        # Once judged (the report read the policy); the check run shows it apart, as a list.
        decided = gate(record, report) if with_gate and record.gate is not None else None
        judged = [f"<sub>{_gate_line(decided)}</sub>"] if decided else []
        return ["", line] + (["", directions] if directions else []) + (["", *judged] if judged else [])
    if record.status is RunStatus.SUCCEEDED and report.contract_error:
        return ["", "❌ **No verdict:** what the run wrote was refused, so there is nothing to compare with main."]
    if record.status is RunStatus.FAILED:
        return ["", "❌ **No verdict:** the run failed, so there is nothing to compare with main."]
    return []


def gate(record: RunRecord, report: Report | None = None) -> Gate | None:
    """The merge gate's decision for a run with results (None otherwise: its status decides)."""
    found = report if report is not None else report_of(record.report)
    if record.status is not RunStatus.SUCCEEDED or not found.has_results:
        return None
    return policy.decide(policy.source_of(record.gate), verdict_of(found), found)


def _results(report: Report) -> list[str]:
    """Tables against main, what the marks mean, the charts, the model line: the comment's core."""
    lines = ["", *sections.metrics_table(report)]
    ratio = sections.ratio_table(report)
    if ratio:
        lines += ["", *ratio]
    note = sections.comparison_note(report)
    if note:
        lines += ["", *note]
    disagreement = sections.disagreement_note(report)
    if disagreement:
        lines += ["", *disagreement]
    for chart in sections.charts(report):
        lines += ["", chart.markdown()]
    areas = sections.area_against_main(report)
    if areas:
        lines += ["", *areas]
    if report.model or report.data:
        lines += ["", sections.model_line(report)]
    return lines


def _outcome(record: RunRecord, report: Report) -> list[str]:
    """Below the headline: the results, or why there are none."""
    lines: list[str] = []
    if record.status is RunStatus.SUCCEEDED and report.has_results:
        lines += _results(report)
    elif record.status is RunStatus.SUCCEEDED and report.contract_error:
        # The job ended well but what it wrote was refused: no numbers to believe.
        lines += ["", f"**No results:** {inert(report.contract_error, 500)}"]
    elif record.status is RunStatus.SUCCEEDED:
        lines += ["", "_The results are being collected._"]
    if record.status in (RunStatus.FAILED, RunStatus.CANCELLED, RunStatus.SUPERSEDED):
        reason = record.status_reason or "no reason given"
        exit_text = f" · exit code {record.exit_code}" if record.exit_code is not None else ""
        lines += ["", f"**Reason:** {inert(reason, 500)}{exit_text}"]
        if report.log_tail:
            lines += [
                "",
                "<details open><summary>Last lines of the log</summary>",
                "",
                code_block(report.log_tail),
                "",
                "</details>",
            ]
    return lines


def _title_line(record: RunRecord, runs_ahead: int | None) -> str:
    return (
        f"{_headline(record, runs_ahead)} · commit {code(record.head_sha[:8])} · "
        f"run {code(record.run_id)} · by {inert(record.triggered_by, 39)}"
    )


def _variables_lines(record: RunRecord) -> list[str]:
    """The caller's run variables (issue 22), each a code span: reviewers see what the run was told."""
    variables = (record.request or {}).get("variables") or {}
    if not variables:
        return []
    return ["", "Variables: " + " · ".join(code(f"{k}={v}", 80) for k, v in sorted(variables.items()))]


def render_comment(runs: Sequence[RunRecord], runs_ahead: int | None = None) -> str:
    """The whole sticky comment for one PR, from its runs (newest first)."""
    latest, earlier = runs[0], list(runs[1:])
    report = report_of(latest.report)
    # The verdict first (a reviewer's answer, before any table), then the run's own line.
    lines = [
        MARKER,
        f"### modelrun · {code(latest.head_ref, 60)} → {code(latest.base_ref, 60)}",
        *_verdict(latest, report),
        "",
        _title_line(latest, runs_ahead),
    ]
    if latest.note:
        lines += ["", f"> {inert(latest.note, 300)}"]
    lines += _variables_lines(latest)
    lines += _outcome(latest, report)
    lines += _attempts_section(latest)
    lines += ["", _links(latest, report)]
    main = "\n".join(lines) + "\n"
    # The run itself is bounded (notes, reasons, the log tail, the areas are capped): the history
    # takes what is left, whole rows only, so no cut falls inside a table or a <details>.
    return main + "\n".join(_history(earlier, MAX_COMMENT - len(main))) + ("\n" if earlier else "")


def commit_status(record: RunRecord) -> tuple[str, str]:
    """The commit status (state, one-line description) for the run's head SHA."""
    return _commit_status(record, report_of(record.report))


def _commit_status(record: RunRecord, report: Report) -> tuple[str, str]:
    if record.status is RunStatus.SUCCEEDED and report.contract_error:
        return "failure", "No results: the model's metrics.json was refused (container contract)"
    decided = gate(record, report)
    if decided is not None:
        # A status has no neutral: a neutral gate is a success that says so.
        title = sections.verdict_title(verdict_of(report))
        if decided.conclusion == "neutral":
            return "success", f"Neutral (not blocking): {title}"[:140]
        return decided.conclusion, title[:140]
    if record.status is RunStatus.SUCCEEDED:
        return "success", "Succeeded: the results are being collected"
    if record.status in (RunStatus.FAILED,):
        return "failure", f"Run failed: {(record.status_reason or '')[:120]}"
    if record.status in (RunStatus.CANCELLED, RunStatus.SUPERSEDED):
        return "error", f"Run {record.status.value.lower()}"
    return "pending", f"Run {record.status.value.lower()}"


@dataclass(frozen=True)
class CheckRun:
    """What the ``modelrun`` check run on the head commit shows for one run."""

    status: str  # queued, in_progress or completed
    conclusion: str | None  # once completed: success, failure, cancelled or neutral
    details_url: str
    started_at: str | None
    completed_at: str | None
    title: str
    summary: str
    text: str | None

    def body(self) -> dict[str, object]:
        """The request body of a create or update (``name`` and ``head_sha`` added for a create)."""
        output: dict[str, str] = {"title": self.title, "summary": self.summary}
        if self.text:
            output["text"] = self.text
        body: dict[str, object] = {"status": self.status, "details_url": self.details_url, "output": output}
        if self.conclusion:
            body["conclusion"] = self.conclusion
        if self.started_at:
            body["started_at"] = self.started_at
        if self.completed_at:
            body["completed_at"] = self.completed_at
        return body


_CONCLUSIONS = {
    RunStatus.SUCCEEDED: "success",
    RunStatus.FAILED: "failure",
    RunStatus.CANCELLED: "cancelled",
    RunStatus.SUPERSEDED: "neutral",  # nothing wrong: a newer commit's run took its place
}


def conclusion(record: RunRecord, report: Report | None = None) -> str | None:
    """The check run's conclusion once the run has ended (None while it is active); ``report``:
    the record's, when the caller has parsed it already."""
    if record.status.active:
        return None
    if record.status is not RunStatus.SUCCEEDED:
        return _CONCLUSIONS[record.status]
    found = report if report is not None else report_of(record.report)
    if _judging(record, found):
        return None
    decided = gate(record, found)
    if decided is not None:
        return decided.conclusion
    return "failure" if found.contract_error else "success"  # failure: the job ended well but what it wrote was refused


def check_status(status: RunStatus) -> str:
    """The check run's status: queued until Batch starts the job, in progress, completed."""
    if status.terminal:
        return "completed"
    return "in_progress" if status in (RunStatus.STARTING, RunStatus.RUNNING) else "queued"


GATE_MARKS = {"success": "✅", "neutral": "⚪", "failure": "❌"}


def _gate_line(decided: Gate) -> str:
    """The gate in one line, for the comment: its conclusion and why."""
    return f"Merge gate: {GATE_MARKS[decided.conclusion]} {decided.conclusion}. " + " ".join(decided.reasons)


def _gate_lines(decided: Gate) -> list[str]:
    """The merge gate's conclusion and why (docs/policy.md: the rules)."""
    return [f"**Merge gate: {GATE_MARKS[decided.conclusion]} {decided.conclusion}**", ""] + [
        f"- {reason}" for reason in decided.reasons
    ]


def _stamp(iso: str | None) -> str | None:
    # GitHub's documented form, YYYY-MM-DDTHH:MM:SSZ (records keep milliseconds).
    return f"{iso[:19]}Z" if iso else None


def _fit(parts: Sequence[tuple[str, list[str]]], limit: int) -> str:
    """Sections (heading, lines) joined while they fit GitHub's limit; a section that does not
    fit is named instead, never cut (a cut could fall inside a table or a fence)."""
    out: list[str] = []
    used = 0
    for heading, lines in parts:
        if not lines:
            continue
        chunk = "\n".join(([f"### {heading}", ""] if heading else []) + lines) + "\n\n"
        if used + len(chunk) > limit - 200:
            chunk = f"_{heading or 'A section'} left out: the check run's output has room for 65,535 characters._\n\n"
        out.append(chunk)
        used += len(chunk)
    return "".join(out).rstrip("\n") + "\n"


def _judging(record: RunRecord, report: Report) -> bool:
    """Results collected, the merge gate not read yet (the report's next step): no conclusion
    may be shown before the gate's, or a merge could slip through on a passing check."""
    return record.status is RunStatus.SUCCEEDED and report.has_results and record.gate is None


def check_run(record: RunRecord, runs_ahead: int | None = None) -> CheckRun:
    """The check run of one run: queued until Batch runs it, in progress (details: its logs)
    while it runs and until the merge gate has judged its results, then completed with the whole
    report in its output."""
    report = report_of(record.report)
    status = record.status
    title_line = _title_line(record, runs_ahead)
    links = _links(record, report)
    if _judging(record, report):
        return CheckRun(
            status="in_progress",
            conclusion=None,
            details_url=report.report_url or record.workflow_url,
            started_at=_stamp(record.started_at),
            completed_at=None,
            title="Results collected; applying the merge gate",
            summary=_fit([("", [title_line, "", links])], MAX_CHECK_OUTPUT),
            text=None,
        )
    if status.active:
        running = check_status(status) == "in_progress"
        headline = re.sub(r"\*\*", "", _headline(record, runs_ahead))
        summary = _fit([("", [title_line, *_attempts_section(record), "", links])], MAX_CHECK_OUTPUT)
        return CheckRun(
            status=check_status(status),
            conclusion=None,
            details_url=(record.log_url or record.workflow_url) if running else record.workflow_url,
            started_at=_stamp(record.started_at) if running else None,
            completed_at=None,
            title=one_line(headline, 200),
            summary=summary,
            text=None,
        )
    decided = gate(record, report)
    summary = _fit(
        [
            ("", _verdict(record, report, with_gate=False)[1:]),
            ("", _gate_lines(decided) if decided else []),
            (
                "",
                [title_line] + (["", f"> {inert(record.note, 300)}"] if record.note else []) + _variables_lines(record),
            ),
            ("", _outcome(record, report)),
            ("", [links]),
        ],
        MAX_CHECK_OUTPUT,
    )
    text = _fit(
        [
            ("By group", sections.area_table(report)),
            ("The model's own metrics", sections.reported_table(report)),
            ("Model and data", sections.details(report)),
            ("What changed in the params file against the baseline run", sections.params_section(report)),
            ("Attempts", _attempts(record)),
        ],
        MAX_CHECK_OUTPUT,
    )
    return CheckRun(
        status=check_status(status),
        conclusion=conclusion(record, report),
        details_url=report.report_url or record.log_url or record.workflow_url,
        started_at=_stamp(record.started_at),
        completed_at=_stamp(record.stopped_at),
        title=one_line(
            sections.verdict_title(verdict_of(report)) if decided else _commit_status(record, report)[1], 200
        ),
        summary=summary,
        text=text if text.strip() else None,
    )


def notification(record: RunRecord) -> dict[str, str]:
    """An SNS message with per-protocol bodies: AWS Chatbot's custom format, plain text for e-mail."""
    state, line = commit_status(record)
    where = f"PR #{record.pr_number}" if record.pr_number else f"branch {slack_text(record.head_ref, 120)}"
    title = (
        f"{ICONS[record.status]} modelrun {record.status.value.lower()}: {slack_text(record.repository, 100)} {where}"
    )
    chatbot = {
        "version": "1.0",
        "source": "custom",
        "content": {
            "textType": "client-markdown",
            "title": re.sub(r"&[a-z]*$", "", title[:250]),  # no entity cut in half
            "description": f"{slack_text(line, 300)}\nRun `{slack_escape(visible(record.run_id))}` · "
            + slack_link(record.workflow_url, "workflow run"),
        },
        "metadata": {"enableCustomActions": False, "threadId": record.pr_key or record.branch_key},
    }
    plain_where = f"PR #{record.pr_number}" if record.pr_number else f"branch {one_line(record.head_ref, 120)}"
    plain_title = f"{ICONS[record.status]} modelrun {record.status.value.lower()}: {record.repository} {plain_where}"
    email = "\n".join(
        [
            visible(plain_title),
            "",
            one_line(line, 300),
            f"Run: {visible(record.run_id)}",
            f"Commit: {visible(record.head_sha)}",
            f"Workflow run: {visible(record.workflow_url)}",
            f"Logs: {visible(record.log_url or '-')}",
        ]
    )
    subject = re.sub(r"[^\x20-\x7e]", "", f"modelrun {record.status.value.lower()}: {record.repository} {plain_where}")
    return {
        "subject": subject[:99],
        "message": json.dumps({"default": json.dumps(chatbot), "email": email}),
        "state": state,
    }
