"""``modelrun local up``: the command; the embedded local stack it keeps running is modelrun_local's.

modelrun_local builds on this CLI (its stand-in for the workflow job runs ``enqueue``), so the CLI
loads it by name, only when ``local up`` runs: no module of this package imports it, the packages
depend one way, and the rest of the CLI works where the local stack's development dependencies
(moto) are not installed.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Annotated

import typer

from modelrun_cli.connect import fail, handle_errors

LOCAL_STACK_MODULE = "modelrun_local.serve"

local_app = typer.Typer(
    help="The embedded local stack (moto + template.yaml + a local GitHub): the whole flow without AWS.",
    no_args_is_help=True,
)


@local_app.command()
@handle_errors
def up(
    stack_name: Annotated[str, typer.Option("--stack-name", help="The local stack's name.")] = "modelrun-local",
    state_file: Annotated[
        Path | None,
        typer.Option("--state-file", help="Where to write the endpoint (default .modelrun/local.json)."),
    ] = None,
    push_model: Annotated[
        bool, typer.Option("--push-model/--no-push-model", help="Push model_container/ as the `local` image.")
    ] = True,
    with_runs: Annotated[
        bool,
        typer.Option(
            "--with-runs", help="Then make demo's runs (main's baseline and a PR's), so every command has runs."
        ),
    ] = False,
) -> None:
    """Start the local stack and keep it running (Ctrl-C stops it)."""
    try:
        serve = importlib.import_module(LOCAL_STACK_MODULE)
    except ImportError as error:
        fail(f"the local stack needs the development dependencies ({error.name}): run `make setup`")
    if with_runs and not push_model:
        fail("--with-runs runs the sample model: drop --no-push-model")
    code: int = serve.serve(stack_name=stack_name, state_file=state_file, push_model=push_model, with_runs=with_runs)
    raise typer.Exit(code)
