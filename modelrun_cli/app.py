"""The ``modelrun`` command line. Each command is a thin shell over a module that does the work."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError

from modelrun.contracts import CleanupRequest, RunRequest
from modelrun_cli import enqueue as _enqueue

app = typer.Typer(
    name="modelrun",
    help="Model runs from pull requests: GitHub -> SQS -> AWS Batch -> the PR comment.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


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
        problems = []
        for error in exc.errors():
            got = repr(error.get("input"))
            got = got if len(got) <= 80 else got[:77] + "..."
            problems.append(f"{'.'.join(map(str, error['loc'])) or 'message'}: {error['msg']} (got {got})")
        return problems
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
    event_name: Annotated[str, typer.Option(envvar="GITHUB_EVENT_NAME", help="pull_request or workflow_dispatch.")],
    image: Annotated[
        str | None, typer.Option(help="The pushed image, pinned by digest: REGISTRY/REPO@sha256:...")
    ] = None,
    compute: Annotated[str | None, typer.Option(help="cpu or gpu (default: the dispatch input, else cpu).")] = None,
    note: Annotated[str | None, typer.Option(help="A note shown with the run's results.")] = None,
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
            message = _enqueue.build_request(event_name, event, os.environ, image=image, compute=compute, note=note)
    except _enqueue.Skip as skip:
        typer.echo(str(skip))
        _annotate("notice", str(skip))
        _append_summary(f"### modelrun: no run\n\n{skip}\n")
        raise typer.Exit(0) from None
    except (ValidationError, _enqueue.MissingEnvironment) as exc:
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
    message_id = _enqueue.send(message, queue_url)
    what = "cleanup request" if cleanup else "model run"
    typer.echo(f"Queued the {what} (SQS message {message_id}):\n{message.model_dump_json(indent=2)}")
    _append_summary(_enqueue.summary_markdown(message, message_id))
