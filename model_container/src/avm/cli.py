"""Entry point of `python -m avm`: the container contract's exit codes.

0 success; 2 bad input or configuration (one line on stderr, no traceback); 1 any other failure
(traceback, then one line on stderr). Input is checked before the heavy imports (pandas,
LightGBM, assesspy take seconds), so exit 2 comes fast.
"""

from __future__ import annotations

import sys
import time

from .config import ConfigError, load_params, read_env


class Logger:
    """Progress lines on stdout: they become the job's CloudWatch log."""

    def __init__(self) -> None:
        self.t0 = time.perf_counter()

    def __call__(self, msg: str) -> None:
        print(f"[avm {time.perf_counter() - self.t0:7.1f}s] {msg}", flush=True)

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self.t0


def main() -> int:
    log = Logger()
    try:
        env = read_env()
        params = load_params(env.params_path)
        log(
            f"run {env.run_id}: params={env.params_path} library={params.library} device={params.device} "
            f"threads={env.threads} queue_device={env.queue_device} results={env.results.uri}"
            + (f" sample={env.sample}" if env.sample is not None else "")
        )
        from .run import run, summary_line

        doc = run(env, params, log)
    except ConfigError as exc:
        print(f"avm: bad input: {exc}", file=sys.stderr, flush=True)
        return 2
    except Exception as exc:
        import traceback

        traceback.print_exc()
        print(f"avm: run failed: {type(exc).__name__}: {exc}".replace("\n", " "), file=sys.stderr, flush=True)
        return 1
    print(summary_line(doc, env.results.uri, log.elapsed), flush=True)
    return 0
