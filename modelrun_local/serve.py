"""``modelrun local up``: the embedded local stack, kept running in the foreground.

Starts a :class:`~modelrun_local.runtime.LocalRuntime` (moto's server with template.yaml's
resources, the SQS pollers, the Batch executor, the local GitHub), pushes the model "image" and
writes ``.modelrun/local.json`` ({endpoint, stack, ...}); ``modelrun --local``-style commands
(``modelrun runs --local``) read it. Ctrl-C (or SIGTERM) stops the stack and removes the file.

Only this command imports the runtime (and with it moto, a development dependency): the rest of
the CLI works without it.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Annotated, Any

import typer

local_app = typer.Typer(
    help="The embedded local stack (moto + template.yaml + a local GitHub): the whole flow without AWS.",
    no_args_is_help=True,
)

_STATE_DEFAULT = Path(".modelrun") / "local.json"


def _state_path(state_file: Path | None) -> Path:
    return state_file or Path(os.environ.get("MODELRUN_LOCAL_STATE") or _STATE_DEFAULT)


def _already_running(path: Path) -> str | None:
    """The endpoint of a live local stack recorded at ``path``, if one answers."""
    import socket
    from urllib.parse import urlparse

    try:
        endpoint = str(json.loads(path.read_text(encoding="utf-8"))["endpoint"])
        parsed = urlparse(endpoint)
        with socket.create_connection((parsed.hostname or "127.0.0.1", parsed.port or 80), timeout=1):
            return endpoint
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _write_state(path: Path, state: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".tmp")
    partial.write_text(json.dumps(state, indent=2) + "\n", encoding="utf-8")
    partial.replace(path)


@local_app.command()
def up(
    stack_name: Annotated[str, typer.Option("--stack-name", help="The local stack's name.")] = "modelrun-local",
    state_file: Annotated[
        Path | None,
        typer.Option("--state-file", help="Where to write the endpoint (default .modelrun/local.json)."),
    ] = None,
    push_model: Annotated[
        bool, typer.Option("--push-model/--no-push-model", help="Push model_container/ as the `local` image.")
    ] = True,
) -> None:
    """Start the local stack and keep it running (Ctrl-C stops it)."""
    try:
        from modelrun_local.runtime import REGION, LocalRuntime
        from modelrun_local.stack import ROOT
    except ImportError as error:
        typer.echo(
            f"modelrun: the local stack needs the development dependencies ({error.name}): run `make setup`",
            err=True,
        )
        raise typer.Exit(2) from None

    path = _state_path(state_file)
    running = _already_running(path)
    if running:
        typer.echo(f"modelrun: a local stack is already running at {running} ({path})", err=True)
        raise typer.Exit(2)

    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = signal.signal(signal.SIGTERM, on_signal)
    typer.echo("Starting the local stack (moto + template.yaml + local GitHub) …")
    started = time.monotonic()
    try:
        with LocalRuntime(stack_name=stack_name, parameters={"LogLevel": "WARNING"}) as runtime:
            image = runtime.push_image(ROOT / "model_container", tag="local") if push_model else None
            state = {
                "endpoint": runtime.endpoint,
                "stack": runtime.stack_name,
                "region": REGION,
                "pid": os.getpid(),
                "github_api_url": runtime.github.url,
                # The local operator's key (IAM is enforced here too): for this machine's CLI only.
                "credentials": runtime.operator_credentials,
                "image": image,
                "outputs": runtime.outputs,
                "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
            }
            _write_state(path, state)
            try:
                typer.echo(
                    "\n".join(
                        [
                            f"Local stack {runtime.stack_name} is up ({time.monotonic() - started:.1f} s).",
                            f"  AWS endpoint   {runtime.endpoint}",
                            f"  GitHub API     {runtime.github.url}",
                            f"  run requests   {runtime.outputs['RunRequestsQueueUrl']}",
                            *([f"  model image    {image}"] if image else []),
                            f"  state file     {path}",
                            "Use it from another terminal: `modelrun runs --local` (any command takes --local), or",
                            f"  export AWS_ENDPOINT_URL={runtime.endpoint} AWS_REGION={REGION} "
                            f"AWS_ACCESS_KEY_ID={runtime.operator_credentials['AWS_ACCESS_KEY_ID']} "
                            f"AWS_SECRET_ACCESS_KEY={runtime.operator_credentials['AWS_SECRET_ACCESS_KEY']}",
                            "Ctrl-C stops it.",
                        ]
                    )
                )
                while not stop.wait(0.5):
                    pass
            except KeyboardInterrupt:
                pass
            finally:
                path.unlink(missing_ok=True)
                typer.echo("Stopping the local stack …")
    finally:
        signal.signal(signal.SIGTERM, previous)
