"""How the CLI draws runs with rich: the runs table, one run in full, dead letters.

Everything from a run request, the job or the model (branch names, notes, reasons, log lines,
metric names) is user text: it reaches rich as :class:`Text` (never parsed as markup) and
without control characters (no escape sequences reach the terminal), see :func:`plain`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

from rich.console import Console, Group, JustifyMethod, RenderableType
from rich.panel import Panel
from rich.style import Style
from rich.table import Table
from rich.text import Text

from modelrun.domain.formatting import LABELS
from modelrun.domain.run import RunRecord
from modelrun.domain.status import RunStatus
from modelrun.domain.text import visible
from modelrun_cli.runs import (
    DeadLetter,
    elapsed_seconds,
    headline,
    parse_time,
    readable_report,
    readable_summary,
    report_links,
    short_id,
)

STATUS_STYLE = {
    RunStatus.QUEUED: "yellow",
    RunStatus.SUBMITTED: "yellow",
    RunStatus.RUNNABLE: "yellow",
    RunStatus.STARTING: "cyan",
    RunStatus.RUNNING: "bold cyan",
    RunStatus.SUCCEEDED: "bold green",
    RunStatus.FAILED: "bold red",
    RunStatus.CANCELLED: "magenta",
    RunStatus.SUPERSEDED: "dim",
}
DASH = "—"
# The paired bootstrap's verdict on a change against main (modelrun.domain.comparison).
VERDICT_WORDS = {"better": "better", "worse": "worse", "same": "≈ same"}
VERDICT_STYLE = {"better": "green", "worse": "red", "same": "dim"}
_SGR = re.compile(r"\x1b\[[0-9;:]*m")  # colour codes in log lines: dropped, their text kept


def safe(text: object) -> str:
    """User text for the terminal: colour codes dropped, every other control character (ESC, CR,
    NUL, ...) and bidi control shown as U+FFFD, zero-width characters removed; newline and tab stay."""
    return visible(_SGR.sub("", str(text)), keep="\n\t")


def plain(text: object, style: str = "") -> Text:
    """User text as rich Text: printed as written (``[bold]``, ``[link=...]`` are not markup)."""
    return Text(safe(text), style=style)


def status_text(status: RunStatus) -> Text:
    return Text(status.value, style=STATUS_STYLE[status])


def when(stamp: str | None, seconds: bool = False) -> str:
    moment = parse_time(stamp)
    if moment is None:
        return DASH
    local = moment.astimezone()
    return local.strftime("%b %d %H:%M:%S" if seconds else "%b %d %H:%M")


def duration(value: float | None) -> str:
    if value is None:
        return DASH
    total = round(value)
    if total < 60:
        return f"{total}s"
    if total < 3600:
        return f"{total // 60}m {total % 60:02d}s"
    return f"{total // 3600}h {total % 3600 // 60:02d}m"


def number(value: float) -> str:
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.4g}"


def compute(record: RunRecord) -> str:
    return record.compute.upper()


@dataclass(frozen=True)
class Column:
    name: str
    justify: JustifyMethod = "left"
    cut: bool = False  # may end in an ellipsis on a terminal (a run id never does)


# The runs table's columns; on a narrow terminal the last of DROP_ORDER goes first.
RUNS_COLUMNS = [
    Column("run"),
    Column("PR", "right"),
    Column("status"),
    Column("queue", "right"),
    Column("took", "right"),
    Column("RMSE", "right"),
    Column("COD", "right"),
    Column("on"),
    Column("author", cut=True),
    Column("started"),
]
DROP_ORDER = ["started", "author", "on", "took", "COD", "RMSE", "queue"]
CUT_WIDTH = 16  # a login beyond this ends in "…"


def runs_rows(records: list[RunRecord], positions: dict[str, int]) -> list[dict[str, Text]]:
    """Each run's cells by column name; user text stays plain Text (see :func:`plain`)."""
    rows = []
    for record in records:
        metrics = headline(record)
        position = positions.get(record.run_id)
        running = record.status in (RunStatus.STARTING, RunStatus.RUNNING)
        took = duration(elapsed_seconds(record))
        rows.append(
            {
                "run": plain(short_id(record.run_id)),
                # a dispatch's run id already names its branch
                "PR": Text(f"#{record.pr_number}" if record.pr_number else DASH),
                "status": status_text(record.status),
                "queue": Text(f"#{position}" if position else ""),
                "took": Text(took + ("…" if running and took != DASH else ""), style="cyan" if running else ""),
                "RMSE": Text(number(metrics["rmse"]) if "rmse" in metrics else ""),
                "COD": Text(number(metrics["cod"]) if "cod" in metrics else ""),
                "on": Text(compute(record)),
                "author": plain(record.triggered_by),
                "started": Text(when(record.started_at)),
            }
        )
    return rows


def _table(title: str, rows: list[dict[str, Text]], shown: list[Column]) -> Table:
    table = Table(
        title=plain(title),
        title_justify="left",
        header_style="bold",
        box=None,
        pad_edge=False,
        padding=(0, 1),  # two spaces between columns
    )
    for column in shown:
        table.add_column(
            column.name,
            justify=column.justify,
            no_wrap=True,
            # a run id wider than the terminal folds onto the next line rather than being cut
            overflow="ellipsis" if column.cut else "fold",
            max_width=max(CUT_WIDTH, len(column.name)) if column.cut else None,
        )
    for row in rows:
        table.add_row(*(row[column.name] for column in shown))
    return table


def runs_table(records: list[RunRecord], positions: dict[str, int], title: str, width: int = 80) -> Table:
    """The runs for a terminal of ``width`` columns: as many columns as fit, run ids whole."""
    rows = runs_rows(records, positions)
    shown = list(RUNS_COLUMNS)
    table = _table(title, rows, shown)
    measuring = Console(width=10_000)
    for name in DROP_ORDER:  # the least needed column goes first, until the rest fit
        if measuring.measure(table).maximum <= width:
            break
        shown = [c for c in shown if c.name != name]
        table = _table(title, rows, shown)
    return table


def runs_plain(records: list[RunRecord], positions: dict[str, int]) -> str:
    """The runs for a pipe: a header, then one tab-separated line per run, every value whole."""
    names = [column.name for column in RUNS_COLUMNS]
    lines = ["\t".join(names)]
    for row in runs_rows(records, positions):
        # user text keeps no tab or newline here: each run stays one line of as many fields
        lines.append("\t".join(re.sub(r"[\t\n]", " ", row[name].plain) for name in names))
    return "\n".join(lines)


def _grid() -> Table:
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column(overflow="fold")
    return grid


def run_detail(record: RunRecord, position: int | None) -> RenderableType:
    now = datetime.now(UTC)
    facts = _grid()
    state = status_text(record.status)
    if position:
        state.append(f"  #{position} in the {compute(record)} queue", style="yellow")
    facts.add_row("status", state)
    if record.status_reason:
        facts.add_row("reason", plain(record.status_reason))
    if record.exit_code is not None:
        facts.add_row("exit code", str(record.exit_code))
    facts.add_row("repository", plain(record.repository))
    facts.add_row("pull request", f"#{record.pr_number}" if record.pr_number else "none (dispatch)")
    facts.add_row("commit", plain(f"{record.head_sha[:12]} on {record.head_ref} (base {record.base_ref})"))
    facts.add_row(
        "triggered by",
        plain(f"{record.triggered_by}  (workflow run {record.workflow_run_id}, attempt {record.workflow_attempt})"),
    )
    if record.note:
        facts.add_row("note", plain(record.note))
    size = f"{record.vcpus:g} vCPU, {record.memory_mib} MiB" + (f", {record.gpus} GPU" if record.gpus else "")
    facts.add_row("compute", f"{compute(record)} · {size}")
    facts.add_row("job queue", plain(record.job_queue.rsplit("/", 1)[-1]))
    facts.add_row(
        "job",
        plain(
            f"{record.job_id or DASH}"
            + (f"  (Batch attempt {record.batch_attempt})" if record.batch_attempt > 1 else "")
        ),
    )
    facts.add_row("image", plain(record.image))
    facts.add_row("created", when(record.created_at, seconds=True))
    facts.add_row("started", when(record.started_at, seconds=True))
    facts.add_row("stopped", when(record.stopped_at, seconds=True))
    facts.add_row("took", duration(elapsed_seconds(record, now)))

    parts: list[RenderableType] = [facts]
    metrics = _metrics(record)
    if metrics is not None:
        parts += [Text(""), metrics]
    problem = readable_report(record).contract_error
    if problem:
        parts += [Text(""), plain(f"⚠ {problem}", style="bold red")]
    title = Text.assemble(("run ", "bold"), (safe(record.run_id), "bold"))
    return Panel(Group(*parts), title=title, title_align="left", border_style=STATUS_STYLE[record.status])


def links(record: RunRecord) -> list[Text]:
    """One line per link, printed outside the panel so that long URLs stay whole (copy, click)."""
    lines = []
    for name, url in report_links(record).items():
        line = Text(f"{name:<10}", style="bold")
        url = safe(url)
        # Style(link=...), not a style string: a URL with spaces or brackets can't break it
        line.append(url, style=Style(link=url) if re.fullmatch(r"https?://\S+", url) else "")
        lines.append(line)
    return lines


def _metrics(record: RunRecord) -> Table | None:
    summary, report = readable_summary(record), readable_report(record)
    metrics, study = summary.metrics, summary.ratio_study
    if not metrics.present() and not list(study.items()):
        return None
    baseline = report.baseline
    table = Table(title="metrics", title_justify="left", title_style="bold underline", box=None, pad_edge=False)
    table.add_column("metric")
    table.add_column("this run", justify="right")
    if baseline:
        table.add_column(plain(f"main {baseline.head_sha[:8]}"), justify="right")
    table.add_column("IAAO standard")
    if baseline:
        table.add_column("vs main")
    changes = report.comparison.changes if report.comparison and report.comparison.status == "paired" else {}

    def cell(value: float | None) -> Text:
        return Text(DASH if value is None else number(value))

    def add(key: str, value: float | None, base: float | None, passed: bool | None) -> None:
        verdict = Text("pass", style="green") if passed else Text("fail", style="red") if passed is False else Text("")
        row = [plain(LABELS[key]), cell(value), *([cell(base)] if baseline else []), verdict]
        if baseline:
            change = changes.get(key)
            row.append(Text(VERDICT_WORDS[change.verdict], style=VERDICT_STYLE[change.verdict]) if change else Text(""))
        table.add_row(*row)

    for key in metrics.present():
        add(key, metrics.value(key), baseline.metrics.value(key) if baseline else None, None)
    for key, stat in study.items():
        add(key, stat.value, baseline.ratio_study.value(key) if baseline else None, stat.passed)
    return table


def dead_letters_table(letters: list[DeadLetter], queue: str) -> Table:
    table = Table(
        title=plain(f"{len(letters)} message(s) in the {queue} DLQ"), title_justify="left", header_style="bold"
    )
    table.add_column("message", no_wrap=True)
    table.add_column("sent", no_wrap=True)
    table.add_column("about", overflow="fold")
    table.add_column("why it is there", overflow="fold", style="red")
    for letter in letters:
        table.add_row(
            plain(letter.message_id[:8]),
            when(letter.sent_at, seconds=True),
            plain(letter.subject),
            plain(letter.reason),
        )
    return table
