"""The embedded local stack, kept running in the foreground (``modelrun local up`` runs ``serve``).

Starts a :class:`~modelrun_local.runtime.LocalRuntime` (moto's server with template.yaml's
resources, the SQS pollers, the Batch executor, the local GitHub), pushes the model "image" and
writes ``.modelrun/local.json`` ({endpoint, stack, ...}); ``modelrun --local``-style commands
(``modelrun runs --local``) read it. Ctrl-C (or SIGTERM) stops the stack and removes the file.

The CLI imports this module only for ``local up`` (it brings moto, a development dependency).
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any

from modelrun.adapters.aws import RunsTable
from modelrun_cli.connect import CliError, local_state_path, read_local_state
from modelrun_local.runtime import REGION, LocalRuntime
from modelrun_local.stack import ROOT


def _already_running(path: Path) -> str | None:
    """The endpoint of a live local stack recorded at ``path``, if one answers."""
    try:
        return str(read_local_state(path)["endpoint"])
    except (CliError, ValueError):  # ValueError: a host name IDNA cannot encode, which it lets through
        return None


def _write_state(path: Path, state: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".tmp")
    partial.write_text(json.dumps(state, indent=2) + "\n", encoding="utf-8")
    partial.replace(path)


def sample_runs(runtime: LocalRuntime, image: str) -> list[str]:
    """make demo's runs on this stack (main's baseline, then a PR's experiment), so that `show`,
    `logs`, `rerun` and `cancel` have runs to act on; the lines that name them."""
    from modelrun_local.demo import pr_checkout, run_flow  # the demo's flow, loaded only for this

    pr_image = runtime.push_image(
        pr_checkout(ROOT / ".modelrun"), tag="pr", python=ROOT / "model_container" / ".venv" / "bin" / "python"
    )
    run_flow(runtime, image, timeout=900, pr_image=pr_image)
    records = sorted(RunsTable(runtime.outputs["RunsTableName"]).scan(), key=lambda r: r.created_at)
    lines = ["Sample runs (make demo's: main's baseline, then a PR's experiment):"]
    lines += [
        f"  {r.run_id}  {r.status.value}" + (f"  PR #{r.pr_number}" if r.pr_number else "  main") for r in records
    ]
    if records:
        lines.append(f"Try: modelrun show {records[-1].run_id} --local (or logs, rerun, cancel)")
    return lines


def serve(
    stack_name: str = "modelrun-local", state_file: Path | None = None, push_model: bool = True, with_runs: bool = False
) -> int:
    """Start the local stack, write its state file (then make the sample runs, ``with_runs``),
    serve until Ctrl-C or SIGTERM; the exit status."""
    path = state_file or local_state_path()
    running = _already_running(path)
    if running:
        print(f"modelrun: a local stack is already running at {running} ({path})", file=sys.stderr)
        return 2

    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = signal.signal(signal.SIGTERM, on_signal)
    print("Starting the local stack (moto + template.yaml + local GitHub) …", flush=True)
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
                # A person's token for the local GitHub (`modelrun doctor --local` reads with it).
                "github_token": runtime.github.user_token(),
                # The local operator's key (IAM is enforced here too): for this machine's CLI only.
                "credentials": runtime.operator_credentials,
                "image": image,
                "outputs": runtime.outputs,
                "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
            }
            _write_state(path, state)
            try:
                keys = runtime.operator_credentials
                lines = [
                    f"Local stack {runtime.stack_name} is up ({time.monotonic() - started:.1f} s).",
                    f"  AWS endpoint   {runtime.endpoint}",
                    f"  GitHub API     {runtime.github.url}",
                    f"  run requests   {runtime.outputs['RunRequestsQueueUrl']}",
                    *([f"  model image    {image}"] if image else []),
                    f"  state file     {path}",
                    "Use it from another terminal: `modelrun runs --local` (any command takes --local), or",
                    f"  export AWS_ENDPOINT_URL={runtime.endpoint} AWS_REGION={REGION} "
                    f"AWS_ACCESS_KEY_ID={keys['AWS_ACCESS_KEY_ID']} "
                    f"AWS_SECRET_ACCESS_KEY={keys['AWS_SECRET_ACCESS_KEY']}",
                    "Ctrl-C stops it.",
                ]
                print("\n".join(lines), flush=True)
                if with_runs and image:
                    print("\n".join(sample_runs(runtime, image)), flush=True)
                while not stop.wait(0.5):
                    pass
            except KeyboardInterrupt:
                pass
            finally:
                path.unlink(missing_ok=True)
                print("Stopping the local stack …", flush=True)
    finally:
        signal.signal(signal.SIGTERM, previous)
    return 0
