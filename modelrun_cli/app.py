"""The ``modelrun`` command line. Each command is a thin shell over a module that does the work."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.text import Text

from modelrun.contracts import CleanupRequest, RunRequest
from modelrun.domain.status import RunStatus
from modelrun.errors import validation_problems
from modelrun_cli import check as _check
from modelrun_cli import doctor as _doctor
from modelrun_cli import enqueue as _enqueue
from modelrun_cli import runs as _runs
from modelrun_cli import views as _views
from modelrun_cli.connect import StackChoice, fail, handle_errors, read_local_state, stack_options
from modelrun_cli.local import local_app
from modelrun_cli.logs import LogReader

app = typer.Typer(
    name="modelrun",
    help="Model runs from pull requests: GitHub -> SQS -> AWS Batch -> the PR comment.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


app.add_typer(local_app, name="local")


@app.callback()
def main() -> None:
    """modelrun: queue model runs and follow them."""


def _in_actions() -> bool:
    return os.environ.get("GITHUB_ACTIONS") == "true"


def _annotate(level: str, text: str) -> None:
    """A workflow annotation (``::notice::`` / ``::error::``) when running inside GitHub Actions."""
    if _in_actions():
        escaped = text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
        typer.echo(f"::{level} title=modelrun::{escaped}")


def _append_summary(markdown: str) -> None:
    path = os.environ.get("GITHUB_STEP_SUMMARY")
    if path:
        with Path(path).open("a", encoding="utf-8") as summary:
            summary.write(markdown)


def _problems(exc: Exception) -> list[str]:
    """One line per problem: ``field: what is wrong`` for a validation error."""
    if isinstance(exc, ValidationError):
        return validation_problems(exc, show_input=True)
    return [str(exc)]


def _read_event(event_path: Path) -> dict[str, Any]:
    try:
        event = json.loads(event_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise typer.BadParameter(f"cannot read the event payload {event_path}: {exc}") from exc
    if not isinstance(event, dict):
        raise typer.BadParameter(f"{event_path} does not hold a JSON object")
    return event


@app.command()
def enqueue(
    event_path: Annotated[
        Path, typer.Option(envvar="GITHUB_EVENT_PATH", help="The webhook payload of the triggering event.")
    ],
    event_name: Annotated[
        str, typer.Option(envvar="GITHUB_EVENT_NAME", help="pull_request, push or workflow_dispatch.")
    ],
    image: Annotated[
        str | None, typer.Option(help="The pushed image, pinned by digest: REGISTRY/REPO@sha256:...")
    ] = None,
    compute: Annotated[str | None, typer.Option(help="cpu or gpu (default: the dispatch input, else cpu).")] = None,
    note: Annotated[str | None, typer.Option(help="A note shown with the run's results.")] = None,
    variables: Annotated[
        str | None,
        typer.Option(help="Variables for the model's container: NAME=value lines (not secrets; shown on the PR)."),
    ] = None,
    queue_url: Annotated[
        str | None, typer.Option(envvar="MODELRUN_QUEUE_URL", help="The run-requests SQS queue URL.")
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the message JSON; send nothing.")] = False,
    cleanup: Annotated[
        bool, typer.Option("--cleanup", help="Send the cleanup request for a closed pull request.")
    ] = False,
) -> None:
    """Send ONE run request (or, with --cleanup, a cleanup request) for this workflow's event."""
    event = _read_event(event_path)
    message: RunRequest | CleanupRequest
    try:
        if cleanup:
            message = _enqueue.build_cleanup(event, os.environ)
        else:
            if not image:
                raise typer.BadParameter("--image is required (the pushed image, pinned by digest)")
            message = _enqueue.build_request(
                event_name,
                event,
                os.environ,
                image=image,
                compute=compute,
                note=note,
                variables=_enqueue.parse_variables(variables or ""),
            )
    except _enqueue.Skip as skip:
        typer.echo(str(skip))
        _annotate("notice", str(skip))
        _append_summary(f"### modelrun: no run\n\n{skip}\n")
        raise typer.Exit(0) from None
    except (ValueError, _enqueue.MissingEnvironment) as exc:  # ValidationError is a ValueError
        problems = _problems(exc)
        typer.echo(f"modelrun: invalid {'cleanup' if cleanup else 'run'} request, nothing sent:", err=True)
        typer.echo("\n".join(f"  {problem}" for problem in problems), err=True)
        _annotate("error", "invalid request, nothing sent: " + "; ".join(problems))
        raise typer.Exit(1) from None

    if dry_run:
        typer.echo(message.model_dump_json())
        return
    if not queue_url:
        raise typer.BadParameter("--queue-url (or MODELRUN_QUEUE_URL) is required unless --dry-run")
    try:
        # The evidence: this job's OIDC token, for the stack's audience (its queue's URL).
        message = _enqueue.with_identity(message, _enqueue.oidc_token(os.environ, queue_url))
    except _enqueue.TokenUnavailable as exc:
        typer.echo(f"modelrun: {exc}; nothing sent", err=True)
        _annotate("error", f"{exc}; nothing sent")
        raise typer.Exit(1) from None
    message_id = _enqueue.send(message, queue_url)
    what = "cleanup request" if cleanup else "model run"
    shown = message.model_dump_json(indent=2, exclude={"identity"})
    typer.echo(f"Queued the {what} with its OIDC token (SQS message {message_id}):\n{shown}")
    _append_summary(_enqueue.summary_markdown(message, message_id))


# --- the team's runs: see the queue, follow a run, cancel, rerun, redrive ------------------------


def _out() -> Console:
    return Console(highlight=False)


def _err() -> Console:
    return Console(stderr=True, highlight=False)


def _echo_json(document: object) -> None:
    typer.echo(json.dumps(document, indent=2, sort_keys=True, default=str))


RunArgument = Annotated[
    str, typer.Argument(metavar="RUN", help="A run id, or a unique prefix of one.", show_default=False)
]
JsonOption = Annotated[bool, typer.Option("--json", help="Plain JSON on stdout, for scripts.")]


@app.command()
def check(
    path: Annotated[str, typer.Argument(help="A model's output folder, or an s3:// prefix.", show_default=False)],
    resamples: Annotated[
        int, typer.Option("--resamples", min=0, help="Bootstrap resamples (the collect step's: 1,000).")
    ] = 1000,
    as_json: JsonOption = False,
) -> None:
    """Check an output folder against the container contract (docs/contract.md) with the collect
    step's own code, and print the statistics modelrun would compute from its predictions."""
    checked = _check.check(path, resamples)
    if as_json:
        _echo_json(_check.as_json(checked))
    else:
        for problem in checked.output.problems:
            typer.echo(f"✗ {problem}")
        report = checked.report
        if report is not None and report.data is not None:
            verdict = "follows the container contract" if checked.ok else "has the problems above"
            typer.echo(f"{'✓' if checked.ok else '✗'} {path} {verdict} (metrics.json version 2)")
            typer.echo(
                f"{report.data.n_test:,} holdout sales, {report.data.n_ratio_study:,} in the ratio study; "
                f"{resamples:,} bootstrap resamples. Trimming: {report.data.trimming}."
            )
            typer.echo("")
            typer.echo("\n".join(_check.markdown(checked)))
    if not checked.ok:
        raise typer.Exit(1)


@app.command("runs")
@handle_errors
@stack_options
def list_runs(
    choice: StackChoice,
    pr: Annotated[int | None, typer.Option("--pr", help="Only this pull request's runs.")] = None,
    author: Annotated[str | None, typer.Option("--author", help="Only runs triggered by this GitHub login.")] = None,
    status: Annotated[
        list[str] | None,
        typer.Option("--status", help="Only these statuses (repeat or comma-separate; `active` = not ended)."),
    ] = None,
    repo: Annotated[str | None, typer.Option("--repo", help="Only this repository (owner/name).")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="At most this many runs, newest first.")] = 20,
    as_json: JsonOption = False,
) -> None:
    """The team's runs, newest first, with each waiting run's place in its queue."""
    statuses = _runs.parse_statuses(status)
    target = choice.connect()
    records = target.runs().scan()
    positions = _runs.queue_positions(records)
    chosen = _runs.select(records, pr=pr, author=author, statuses=statuses, repository=repo, limit=limit)
    if as_json:
        _echo_json([_runs.as_json(r, positions.get(r.run_id)) for r in chosen])
        return
    out = _out()
    where = "local" if target.local else target.region
    title = f"modelrun runs · stack {target.name} ({where})"
    # In a pipe the runs are tab-separated lines and what follows them goes to stderr, so that
    # `modelrun runs | cut -f1` reads run ids only.
    notes = out if out.is_terminal else _err()
    if not chosen:
        notes.print(_views.plain(f"{title}: no runs" + (" match" if records else " yet")))
    elif out.is_terminal:
        out.print(_views.runs_table(chosen, positions, title, width=out.width))
    else:
        print(_views.runs_plain(chosen, positions))
    waiting: dict[str, int] = {}
    for record in records:
        if record.run_id in positions:
            waiting[record.compute] = waiting.get(record.compute, 0) + 1
    shown = f"{len(chosen)} of {len(records)} runs"
    queued = ", ".join(f"{n} {kind.upper()}" for kind, n in sorted(waiting.items())) or "none"
    notes.print(f"{shown} · waiting: {queued}", style="dim")
    for queue, depth in _runs.dlq_depths(target).items():
        if depth:
            notes.print(
                f"{depth} message(s) in the {queue} DLQ: `modelrun redrive --queue {queue}`", style="bold yellow"
            )


@app.command()
@handle_errors
@stack_options
def show(
    choice: StackChoice,
    run: RunArgument,
    as_json: JsonOption = False,
) -> None:
    """One run in full: status and reason, exit code, metrics and links."""
    target = choice.connect()
    table = target.runs()
    records = table.scan()
    record = _runs.resolve(table, run, records)
    position = _runs.queue_positions(records).get(record.run_id)
    if as_json:
        _echo_json(_runs.as_json(record, position))
        return
    out = _out()
    out.print(_views.run_detail(record, position))
    for line in _views.links(record):
        out.print(line, soft_wrap=True)


@app.command()
@handle_errors
@stack_options
def logs(
    choice: StackChoice,
    run: RunArgument,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing until the run ends.")] = False,
    interval: Annotated[float, typer.Option("--interval", min=0.1, help="Seconds between polls with --follow.")] = 2.0,
) -> None:
    """The run's job log from CloudWatch Logs; --follow prints until the run ends.

    With --follow the exit status is 0 only if the run SUCCEEDED.
    """
    target = choice.connect()
    table = target.runs()
    record = _runs.resolve(table, run)
    logs_client = target.client("logs")
    if not follow:
        if not record.log_stream:
            fail(f"run {record.run_id} has no log yet ({record.status.value}): try --follow", exit_code=1)
        for line in LogReader(logs_client, record.log_stream).read():
            typer.echo(_views.safe(line))  # the job's output: no escape sequences reach the terminal
        return
    record = _follow(table, logs_client, record, interval)
    _err().print(
        Text.assemble(
            "run ",
            (_views.safe(record.run_id), "bold"),
            " ended ",
            _views.status_text(record.status),
            f" (exit code {record.exit_code})" if record.exit_code is not None else "",
            _views.plain(f": {record.status_reason}")
            if record.status_reason and record.status is not RunStatus.SUCCEEDED
            else "",
        )
    )
    if record.status is not RunStatus.SUCCEEDED:
        raise typer.Exit(1)


def _follow(table: Any, logs_client: Any, record: Any, interval: float) -> Any:
    """Print new log lines as they come, with a live status line, until the record has ended."""
    reader: LogReader | None = None
    console = _err()

    def line() -> Text:
        text = Text.assemble(
            (_views.safe(_runs.short_id(record.run_id)), "bold"), " · ", _views.status_text(record.status)
        )
        took = _runs.elapsed_seconds(record)
        if took is not None:
            text.append(f" · {_views.duration(took)}")
        if reader is None:
            text.append(" · waiting for the job to start", style="dim")
        else:
            text.append(f" · {reader.lines} lines", style="dim")
        return text

    with console.status(line()) as status:
        while True:
            fresh = table.get(record.run_id)
            record = fresh or record
            if reader is None and record.log_stream:
                reader = LogReader(logs_client, record.log_stream)
            if reader is not None:
                for text in reader.read():
                    typer.echo(_views.safe(text))
            status.update(line())
            if record.status.terminal:
                if reader is not None:  # the last lines may land just after the final status
                    time.sleep(min(interval, 0.5))
                    for text in reader.read():
                        typer.echo(_views.safe(text))
                return record
            time.sleep(interval)


@app.command()
@handle_errors
@stack_options
def cancel(
    choice: StackChoice,
    run: RunArgument,
    wait: Annotated[
        bool, typer.Option("--wait/--no-wait", help="Wait (up to --timeout) until the run has ended.")
    ] = True,
    timeout: Annotated[float, typer.Option("--timeout", min=0, help="Seconds to wait with --wait.")] = 60.0,
) -> None:
    """Stop a run's Batch job; the run ends CANCELLED."""
    target = choice.connect()
    table = target.runs()
    record = _runs.resolve(table, run)
    reason = _runs.cancel(target, table, record, _runs.whoami(target))
    out = _out()
    job = f" (job {record.job_id})" if record.job_id else " (no job yet)"
    out.print(Text.assemble("Cancelling ", (_views.safe(record.run_id), "bold"), _views.plain(f"{job}: {reason}")))
    if not wait:
        return
    with _err().status("waiting for Batch to stop the job…"):
        ended = _runs.wait_until_ended(table, record.run_id, timeout)
    if ended is None:
        out.print(
            _views.plain(
                f"Still stopping after {timeout:g} s: `modelrun show {_runs.short_id(record.run_id)}` to check."
            )
        )
        return
    out.print(Text.assemble("Run ", (_views.safe(ended.run_id), "bold"), " is ", _views.status_text(ended.status)))
    if ended.status is not RunStatus.CANCELLED:
        raise typer.Exit(1)  # it ended otherwise first (finished, or was superseded)


@app.command()
@handle_errors
@stack_options
def rerun(
    choice: StackChoice,
    run: RunArgument,
    as_user: Annotated[
        str | None,
        typer.Option("--as", help="The GitHub login to credit (default: your AWS identity or $USER)."),
    ] = None,
) -> None:
    """Run the same request again (same commit, image and command) as a new attempt."""
    target = choice.connect()
    table = target.runs()
    records = table.scan()
    record = _runs.resolve(table, run, records)
    rerun_message = _runs.rerun_request(record, records, as_user or _runs.whoami(target))
    message_id = target.client("sqs").send_message(
        QueueUrl=target.output("OperatorRequestsQueueUrl"), MessageBody=rerun_message.model_dump_json()
    )["MessageId"]
    _out().print(
        Text.assemble(
            "Queued a rerun of ",
            (_views.safe(record.run_id), "bold"),
            _views.plain(f" as attempt {rerun_message.attempt} by {rerun_message.requested_by}.\n"),
            f"SQS message {message_id} on the operator queue; follow it with `modelrun runs",
            f" --pr {record.pr_number}`" if record.pr_number else "`",
            ".",
        )
    )


@app.command()
@handle_errors
@stack_options
def redrive(
    choice: StackChoice,
    queue: Annotated[
        str,
        typer.Option("--queue", help="Which DLQ: run-requests, operator-requests or job-events.", case_sensitive=False),
    ] = "run-requests",
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Move them without asking.")] = False,
) -> None:
    """Show the messages in a dead-letter queue and why they are there, then move them back."""
    target = choice.connect()
    dlq_url, source_url = _runs.dead_letter_queues(target, queue.lower())
    sqs = target.client("sqs")
    out = _out()
    letters = _runs.receive_dead_letters(sqs, dlq_url)
    if not letters:
        out.print(f"The {queue} DLQ is empty: nothing to redrive.")
        return
    out.print(_views.dead_letters_table(letters, queue))
    source = source_url.rsplit("/", 1)[-1]
    if not yes and not typer.confirm(f"Move {len(letters)} message(s) back to {source}?", default=False):
        _runs.release(sqs, dlq_url, letters)
        out.print("Nothing moved.")
        return
    moved = _runs.move(sqs, letters, dlq_url, source_url)
    out.print(f"Moved {moved} message(s) back to {source}.")


@app.command()
@handle_errors
@stack_options
def doctor(
    choice: StackChoice,
    repository: Annotated[
        str, typer.Argument(metavar="OWNER/NAME", help="The model repository to check.", show_default=False)
    ],
    token_env: Annotated[
        str,
        typer.Option("--token-env", help="The environment variable that holds your GitHub token."),
    ] = "GITHUB_TOKEN",  # noqa: S107 - a variable's name, not a secret
    as_json: JsonOption = False,
) -> None:
    """Check a model repository's set-up against the stack (docs/adopt.md): one line per
    problem with its fix. Exit status 1 when there is a problem."""
    if not _doctor.REPOSITORY.fullmatch(repository):
        raise typer.BadParameter(f"{repository!r} is not OWNER/NAME", param_hint="OWNER/NAME")
    token = os.environ.get(token_env, "")
    if not token and choice.local:
        token = str(read_local_state().get("github_token") or "")  # the local GitHub's own
    if not token:
        fail(
            f"no GitHub token in ${token_env}: `export {token_env}=$(gh auth token)` (a repository "
            "administrator's: it reads the environments and variables)"
        )
    stack, findings = _doctor.run(choice.connect(), repository, token)
    if as_json:
        typer.echo(_doctor.as_json(stack, repository, findings))
    else:
        typer.echo(f"modelrun doctor · {repository} against stack {stack.name} ({stack.region})")
        for line in _doctor.render_text(findings):
            typer.echo(_views.safe(line))  # names and values from GitHub: no escape sequences
    if any(f.level == "problem" for f in findings):
        raise typer.Exit(1)
