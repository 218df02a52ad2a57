"""What reviewers read: the sticky PR comment, the HTML report and the alert.

Pure functions of run records and the model's metrics. Everything user-written (branch names,
notes, status reasons, log lines, anything the model wrote) goes through ``inert`` or
``code_block`` before it reaches Markdown, so it can't inject HTML, @-mention people, add links
or break a table.
"""

from __future__ import annotations

import base64
import html
import json
import math
import re
import unicodedata
from collections.abc import Iterable, Sequence
from typing import Any
from urllib.parse import quote

from modelrun.domain.run import RunRecord, seconds_between
from modelrun.domain.status import RunStatus

MARKER = "<!-- modelrun:sticky-comment v1 -->"
RUNS_AHEAD_CAP = 100  # a queue longer than this reads "100+ runs ahead"
MAX_COMMENT = 60_000  # GitHub's limit is 65,536 characters

# Lower is better for these; the ratio statistics are judged against IAAO ranges instead.
LOWER_IS_BETTER = {"rmse", "mae", "mape", "mdape"}
METRIC_LABELS = {
    "rmse": "RMSE",
    "mae": "MAE",
    "mape": "MAPE",
    "mdape": "MdAPE",
    "r2": "R²",
    "median_ratio": "Median ratio",
}
RATIO_LABELS = {"cod": "COD", "prd": "PRD", "prb": "PRB", "mki": "MKI"}
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

# On-demand list prices in us-east-1 (USD per hour), for an order-of-magnitude estimate only.
PRICE_VCPU_HOUR = {"cpu": 0.04048 * 0.3, "gpu": 0.0}  # Fargate Spot runs ~70% below on-demand
PRICE_GB_HOUR = {"cpu": 0.004445 * 0.3, "gpu": 0.0}
PRICE_GPU_HOUR = 0.526 * 0.4  # g4dn.xlarge on Spot, about 60% below on-demand

# `<`, `>` and `&` are left to html.escape: a backslash before an entity would show it raw.
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+!~|$-])")
REPLACEMENT = "\ufffd"  # what a control or bidi character in user text is shown as
# Bidi embeddings, overrides, isolates and marks reorder what people read ("Trojan Source").
_BIDI = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
WORD_JOINER = "\u2060"
# Where GitHub would make a link or a notification out of plain text: URL autolinks (`https://`,
# `ftp://`, `www.`), e-mail autolinks and @mentions (`@`), issue references (`#1`,
# `owner/repo#2`, `GH-3`). A word joiner at each spot stops them and reads the same.
_LINK_SPOTS = re.compile(r"(?<=:)(?=//)|(?<=www)(?=\.)|(?<=[@#])|(?<=gh-)(?=\d)", re.IGNORECASE)
# Inside <code> GitHub links no references and pings nobody, but GFM's autolinks still apply.
_AUTOLINK_SPOTS = re.compile(r"(?<=:)(?=//)|(?<=www)(?=\.)|(?<=@)", re.IGNORECASE)


def visible(text: object, keep: str = "") -> str:
    """User text with nothing invisible left in it that changes what people read or what a terminal does.

    Control characters (NUL, ESC, CR, ...; those in ``keep`` excepted), bidi controls and lone
    surrogates become U+FFFD; other invisible format characters (zero-width spaces and joiners,
    BOM, tags) are dropped.
    """
    out = []
    for char in str(text):
        if char in keep:
            out.append(char)
            continue
        category = unicodedata.category(char)
        if category in ("Cc", "Cs") or char in _BIDI:
            out.append(REPLACEMENT)
        elif category != "Cf":
            out.append(char)
    return "".join(out)


def _one_line(text: object, limit: int) -> str:
    # whitespace (newlines included: they would end a table row) collapses to single spaces
    value = " ".join(visible(text, keep="\t\n\r\x0b\x0c\x1c\x1d\x1e\x1f\x85").split())
    return value if len(value) <= limit else value[: limit - 1] + "…"


def break_links(text: str, references: bool = True) -> str:
    """A word joiner wherever GitHub (or Slack) would otherwise autolink, mention or reference
    (``references=False``: autolinks only, for code, where branch names stay copyable)."""
    return (_LINK_SPOTS if references else _AUTOLINK_SPOTS).sub(WORD_JOINER, text)


def inert(text: object, limit: int = 200) -> str:
    """User-written text made safe for Markdown inline use (tables included)."""
    value = break_links(_one_line(text, limit))
    value = _MARKDOWN_SPECIAL.sub(r"\\\1", value)  # `|` becomes `\|`, GitHub's pipe inside tables
    return html.escape(value, quote=False)


def code(text: object, limit: int = 120) -> str:
    """Inline code for identifiers such as branch names: nothing in it can end it early or render.

    GitHub parses Markdown inside ``<code>``, so every ASCII punctuation character is an entity:
    no backslash, backtick, pipe, bracket or ``<`` of the text is syntax (a text ending in a backslash
    can't escape the closing tag), and the word joiners of :func:`break_links` stop autolinks.
    """
    value = break_links(_one_line(text, limit), references=False)
    return "<code>" + value.translate(_ENTITIES) + "</code>"


_ENTITIES = {c: f"&#{c};" for c in range(0x21, 0x7F) if not chr(c).isalnum()}


def code_block(lines: Iterable[str], limit: int = 4000) -> str:
    """A fenced block longer than any backtick run inside it: nothing inside renders."""
    body = "\n".join(visible(line, keep="\t\n") for line in lines)[-limit:]
    longest = max((len(m) for m in re.findall(r"`+", body)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}text\n{body}\n{fence}"


def fmt_number(value: float | None, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "—"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.{digits}g}" if abs(value) < 1 else f"{value:,.{digits}f}".rstrip("0").rstrip(".")


def fmt_duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes}m" if hours else f"{minutes}m {secs}s" if minutes else f"{secs}s"


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


def change(metric: str, value: float | None, base: float | None) -> str:
    if value is None or base is None or base == 0:
        return "—"
    pct = (value - base) / abs(base) * 100
    if abs(pct) < 0.05:
        return "±0%"
    if metric in LOWER_IS_BETTER:
        better = pct < 0
    elif metric == "r2":
        better = pct > 0
    elif metric == "median_ratio":
        better = abs(value - 1) < abs(base - 1)
    else:
        return f"{pct:+.1f}%"
    return f"{pct:+.1f}% {'🟢' if better else '🔴'}"


def summary_of(metrics_doc: dict[str, Any]) -> dict[str, Any]:
    """The compact part of metrics.json kept in the run record (history rows, baselines)."""
    return {
        "metrics": dict(metrics_doc.get("metrics", {})),
        "ratio_study": {
            k: {"value": v.get("value"), "pass": v.get("pass")} for k, v in metrics_doc.get("ratio_study", {}).items()
        },
    }


def metrics_table(report: dict[str, Any]) -> list[str]:
    metrics = report.get("metrics", {})
    baseline = report.get("baseline") or {}
    base_metrics = baseline.get("metrics", {})
    base_label = f"main {code(str(baseline.get('head_sha', ''))[:8])}" if baseline else "main"
    rows = [f"| metric | this run | {base_label} | change |", "|---|---:|---:|---:|"]
    for key, label in METRIC_LABELS.items():
        if key in metrics:
            rows.append(
                f"| {label} | {fmt_number(metrics[key])} | {fmt_number(base_metrics.get(key))} "
                f"| {change(key, metrics[key], base_metrics.get(key))} |"
            )
    for key in sorted(set(metrics) - set(METRIC_LABELS)):
        rows.append(f"| {inert(key, 40)} | {fmt_number(metrics[key])} | {fmt_number(base_metrics.get(key))} | |")
    return rows


def ratio_table(report: dict[str, Any]) -> list[str]:
    study = report.get("ratio_study", {})
    if not study:
        return []
    base = (report.get("baseline") or {}).get("ratio_study", {})
    rows = [
        "| IAAO statistic | value | 95% CI | standard | main | |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for key, label in RATIO_LABELS.items():
        stat = study.get(key)
        if not stat:
            continue
        ci = stat.get("ci") or []
        ci_text = f"{fmt_number(ci[0])} – {fmt_number(ci[1])}" if len(ci) == 2 else "—"
        passed = stat.get("pass")
        mark = "✅ pass" if passed else "❌ fail" if passed is False else "—"
        base_value = (base.get(key) or {}).get("value")
        rows.append(
            f"| {label} | {fmt_number(stat.get('value'))} | {ci_text} | {inert(stat.get('standard', '—'), 30)} "
            f"| {fmt_number(base_value)} | {mark} |"
        )
    return rows


def baseline_text(baseline: dict[str, Any] | None) -> str:
    """Which main run the PR is compared with, in words."""
    if not baseline:
        return "none yet (no verified run of the default branch has succeeded)"
    sha = code(str(baseline.get("head_sha", ""))[:8])
    if baseline.get("which") == "base_commit":
        return f"main's run of this PR's base commit {sha}"
    if baseline.get("which") == "latest":
        return f"the latest main run {sha} (the PR's base commit has no run)"
    return f"main run {sha}"


def link(label: str, url: str | None) -> str:
    """A markdown link to a URL the backend built; anything else is left out, not linked."""
    if not url or not _LINK_TARGET.match(url):
        return ""
    return f"[{label}]({quote(url, safe=_URL_SAFE)})"


# https only, no characters that could end the link target or start markup.
_LINK_TARGET = re.compile(r"^https://[A-Za-z0-9.-]+(?::[0-9]+)?/[^\s()<>\[\]`\\]*$")
_URL_SAFE = "/:?&=#%+,;@~!$*'-._"


def _links(record: RunRecord) -> str:
    report = record.report or {}
    waiting = record.lost_attempts and record.status.active and record.status is not RunStatus.RUNNING
    links = [
        "" if waiting else link("Logs", record.log_url),  # the lost attempt's: listed with it
        link("Full report", report.get("report_url")),
        link("Artifacts", report.get("artifacts_url")),
        link("Workflow run", record.workflow_url),
    ]
    return " · ".join(x for x in links if x)


def is_spot_reclaim(reason: str | None) -> bool:
    # Batch's reason when EC2 takes a Spot instance back ("Host EC2 (instance i-…) terminated.").
    return bool(reason) and str(reason).startswith("Host EC2")


def _headline(record: RunRecord, runs_ahead: int | None) -> str:
    status = record.status
    queue = "GPU" if record.compute == "gpu" else "CPU"
    text = f"{ICONS[status]} **{status.value}**"
    lost = record.lost_attempts
    if status in (RunStatus.QUEUED, RunStatus.SUBMITTED, RunStatus.RUNNABLE, RunStatus.STARTING) and lost:
        why = "to a Spot reclaim" if is_spot_reclaim(lost[-1].get("reason")) else "(Batch retries it)"
        text += (
            f" · attempt {len(lost)} was lost {why}; attempt {len(lost) + 1} is waiting for a new instance "
            f"on the {queue} queue"
        )
        return text
    if status in (RunStatus.QUEUED, RunStatus.SUBMITTED, RunStatus.RUNNABLE):
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
            text += f" (attempt {len(lost) + 1})"
    elif status.terminal and record.duration_seconds is not None:
        cost = estimated_cost(record)
        over = f" over {len(record.attempts or [])} attempts" if len(record.attempts or []) > 1 else ""
        text += f" in {fmt_duration(record.duration_seconds)}{over} on {queue}"
        if cost is not None:
            text += f" (≈ ${cost:.3f} compute)" if cost >= 0.001 else " (< $0.001 compute)"
    return text


def _attempts(record: RunRecord) -> list[str]:
    """One line per Batch attempt once there was more than one (or one was lost)."""
    attempts = record.attempts or []
    if not record.lost_attempts:
        return []
    lines = ["", "**Attempts**", ""]
    for number, attempt in enumerate(attempts, start=1):
        started = str(attempt.get("started_at") or "")[11:19]
        stopped = str(attempt.get("stopped_at") or "")[11:19]
        reason = attempt.get("reason")
        if record.status.terminal and number == len(attempts):
            outcome = record.status.value.lower()
        elif is_spot_reclaim(reason):
            outcome = "lost to a Spot reclaim"
        else:
            outcome = f"ended: {inert(reason or 'no reason given', 120)}"
        took = ""
        if attempt.get("started_at") and attempt.get("stopped_at"):
            took = f", {fmt_duration(seconds_between(attempt['started_at'], attempt['stopped_at']))}"
        logs = link("logs", _log_link(record, attempt.get("log_stream")))
        lines.append(
            f"{number}. {started or '—'}–{stopped or '—'} UTC{took}: {outcome}" + (f" · {logs}" if logs else "")
        )
    if not record.status.terminal:
        lines.append(f"{len(attempts) + 1}. waiting for a new instance")
    return lines


def _log_link(record: RunRecord, stream: object) -> str | None:
    """The attempt's log link: the record's when it is that attempt's stream (the URL is built
    by the backend; a stream name alone is not a link)."""
    if stream and record.log_stream == stream:
        return record.log_url
    return None


def _history_row(run: RunRecord) -> str:
    summary = run.summary or {}
    rmse = (summary.get("metrics") or {}).get("rmse")
    cod = ((summary.get("ratio_study") or {}).get("cod") or {}).get("value")
    return (
        f"| {link(f'{run.workflow_run_id}.{run.workflow_attempt}', run.workflow_url) or run.workflow_run_id} "
        f"| {code(run.head_sha[:8])} "
        f"| {ICONS[run.status]} {run.status.value} | {fmt_number(rmse)} | {fmt_number(cod)} "
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


def render_comment(runs: Sequence[RunRecord], runs_ahead: int | None = None) -> str:
    """The whole sticky comment for one PR, from its runs (newest first)."""
    latest, earlier = runs[0], list(runs[1:])
    lines = [
        MARKER,
        f"### modelrun · {code(latest.head_ref, 60)} → {code(latest.base_ref, 60)}",
        "",
        f"{_headline(latest, runs_ahead)} · commit {code(latest.head_sha[:8])} · "
        f"run {code(latest.run_id)} · by {inert(latest.triggered_by, 39)}",
    ]
    if latest.note:
        lines += ["", f"> {inert(latest.note, 300)}"]
    report = latest.report or {}
    if latest.status is RunStatus.SUCCEEDED and report.get("metrics"):
        lines += ["", *metrics_table(report)]
        ratio = ratio_table(report)
        if ratio:
            lines += ["", *ratio]
        model = report.get("model") or {}
        data = report.get("data") or {}
        if model or data:
            lines += [
                "",
                f"<sub>{inert(model.get('library', 'model'), 30)} on {inert(model.get('device_used', '?'), 10)} · "
                f"{fmt_number(data.get('n_train'))} train / {fmt_number(data.get('n_test'))} holdout sales · "
                f"baseline: {baseline_text(report.get('baseline'))}</sub>",
            ]
    elif latest.status is RunStatus.SUCCEEDED and report.get("contract_error"):
        # The job ended well but what it wrote was refused: no numbers to believe.
        lines += ["", f"**No results:** {inert(report['contract_error'], 500)}"]
    elif latest.status is RunStatus.SUCCEEDED:
        lines += ["", "_The results are being collected._"]
    if latest.status in (RunStatus.FAILED, RunStatus.CANCELLED, RunStatus.SUPERSEDED):
        reason = latest.status_reason or "no reason given"
        exit_text = f" · exit code {latest.exit_code}" if latest.exit_code is not None else ""
        lines += ["", f"**Reason:** {inert(reason, 500)}{exit_text}"]
        tail = report.get("log_tail") or []
        if tail:
            lines += [
                "",
                "<details open><summary>Last lines of the log</summary>",
                "",
                code_block(tail),
                "",
                "</details>",
            ]
    lines += _attempts(latest)
    lines += ["", _links(latest)]
    main = "\n".join(lines) + "\n"
    # The run itself is bounded (notes, reasons and the log tail are capped): the history takes
    # what is left, whole rows only, so no cut falls inside a table or a <details>.
    return main + "\n".join(_history(earlier, MAX_COMMENT - len(main))) + ("\n" if earlier else "")


def commit_status(record: RunRecord) -> tuple[str, str]:
    """The commit status (state, one-line description) for the run's head SHA."""
    report = record.report or {}
    if record.status is RunStatus.SUCCEEDED and report.get("contract_error"):
        return "failure", "No results: the model's metrics.json was refused (container contract)"
    if record.status is RunStatus.SUCCEEDED:
        metrics = report.get("metrics", {})
        study = report.get("ratio_study", {})
        failing = [RATIO_LABELS.get(k, k) for k, v in study.items() if v.get("pass") is False]
        text = f"RMSE {fmt_number(metrics.get('rmse'))}"
        if "cod" in study:
            text += f", COD {fmt_number(study['cod'].get('value'))}"
        text += f"; IAAO {'fails ' + ', '.join(failing) if failing else 'all pass'}"
        return "success", text[:140]
    if record.status in (RunStatus.FAILED,):
        return "failure", f"Run failed: {(record.status_reason or '')[:120]}"
    if record.status in (RunStatus.CANCELLED, RunStatus.SUPERSEDED):
        return "error", f"Run {record.status.value.lower()}"
    return "pending", f"Run {record.status.value.lower()}"


def slack_escape(text: str) -> str:
    """``&``, ``<`` and ``>`` as Slack wants them in message text: no ``<!channel>``, ``<@U1>`` or ``<url|label>``."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_text(text: object, limit: int = 200) -> str:
    """User text for a Slack (AWS Chatbot) title or description: one line, no control sequences, no links."""
    return slack_escape(break_links(_one_line(text, limit)))


def slack_link(url: str, label: str) -> str:
    """A Slack link to a URL the backend built; anything that could break out of ``<url|label>`` stays text."""
    if re.fullmatch(r"https://[^\s<>|]+", url):
        return f"<{slack_escape(url)}|{slack_escape(label)}>"
    return slack_text(f"{label}: {url}", 400)


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
    plain_where = f"PR #{record.pr_number}" if record.pr_number else f"branch {_one_line(record.head_ref, 120)}"
    plain_title = f"{ICONS[record.status]} modelrun {record.status.value.lower()}: {record.repository} {plain_where}"
    email = "\n".join(
        [
            visible(plain_title),
            "",
            _one_line(line, 300),
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


def render_html(record: RunRecord, report: dict[str, Any], images: dict[str, bytes]) -> str:
    """The full report: self-contained HTML (plots inlined) so one presigned or console link works."""
    esc = html.escape

    def table(rows: list[list[str]]) -> str:
        head, *body = rows
        out = "<tr>" + "".join(f"<th>{esc(c)}</th>" for c in head) + "</tr>"
        out += "".join("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in row) + "</tr>" for row in body)
        return f"<table>{out}</table>"

    metrics = report.get("metrics", {})
    base = (report.get("baseline") or {}).get("metrics", {})
    metric_rows = [["metric", "this run", "main", "change"]] + [
        [METRIC_LABELS.get(k, k), fmt_number(v), fmt_number(base.get(k)), change(k, v, base.get(k))]
        for k, v in metrics.items()
    ]
    study_rows = [["statistic", "value", "95% CI", "standard", "pass"]] + [
        [
            RATIO_LABELS.get(k, k),
            fmt_number(v.get("value")),
            " – ".join(fmt_number(x) for x in v.get("ci") or []),
            str(v.get("standard", "")),
            "pass" if v.get("pass") else "fail",
        ]
        for k, v in report.get("ratio_study", {}).items()
    ]
    area_rows = [["area", "sales", "RMSE", "MdAPE", "COD", "PRD"]] + [
        [
            str(a.get("area")),
            str(a.get("n")),
            fmt_number((a.get("metrics") or {}).get("rmse")),
            fmt_number((a.get("metrics") or {}).get("mdape")),
            fmt_number(((a.get("ratio_study") or {}).get("cod") or {}).get("value")),
            fmt_number(((a.get("ratio_study") or {}).get("prd") or {}).get("value")),
        ]
        for a in report.get("by_area", [])
    ]
    plots = "".join(
        f"<figure><img alt='{esc(name)}' src='data:image/png;base64,{base64.b64encode(data).decode()}'>"
        f"<figcaption>{esc(name)}</figcaption></figure>"
        for name, data in sorted(images.items())
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>modelrun report {esc(record.run_id)}</title>
<style>body{{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em}}
table{{border-collapse:collapse;margin:1em 0}}td,th{{border:1px solid #ccc;padding:.3em .6em;text-align:right}}
th{{background:#f3f3f3}}img{{max-width:100%}}</style></head><body>
<h1>modelrun report</h1>
<p>Run <code>{esc(record.run_id)}</code> · {esc(record.repository)}
 · {esc(record.head_ref)} @ {esc(record.head_sha[:8])}
 · status {esc(record.status.value)} · duration {esc(fmt_duration(record.duration_seconds))}</p>
<h2>Metrics</h2>{table(metric_rows)}
<h2>IAAO ratio study</h2>{table(study_rows) if len(study_rows) > 1 else "<p>none</p>"}
<h2>By market area</h2>{table(area_rows) if len(area_rows) > 1 else "<p>none</p>"}
<h2>Model and data</h2><pre>{esc(json.dumps({"model": report.get("model"), "data": report.get("data")}, indent=1))}
</pre>
<h2>Plots</h2>{plots or "<p>none</p>"}
</body></html>
"""
