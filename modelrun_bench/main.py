"""``python -m modelrun_bench``: the phases in turn, figures to bench/results.json and the table
to bench/RESULTS.md (``--out`` elsewhere)."""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from modelrun_bench.cold_path import cold_path_phase
from modelrun_bench.cold_start import cold_start_phase
from modelrun_bench.evaluation import collect_cold_start, evaluation_phase
from modelrun_bench.evaluation import markdown as evaluation_markdown
from modelrun_bench.overhead import enqueue_step_seconds, overhead_phase
from modelrun_bench.polling import (
    AVM_RUN_SECONDS,
    polling_comparison,
)
from modelrun_bench.probes import bench_stack
from modelrun_bench.report import machine, print_table, render_markdown
from modelrun_bench.soak import soak_phase
from modelrun_bench.submit_latency import submit_latency_phase
from modelrun_bench.throughput import throughput_phase
from modelrun_local.stack import ROOT

OUT_DIR = ROOT / "bench"


@dataclass
class Options:
    runs: int
    requests: int
    prs: int
    duplicates: float
    poll_interval: float
    singles: int
    batches: int
    import_repeats: int
    build: bool
    zipped: bool
    enqueue_repeats: int
    out: Path
    model_seconds: float
    soak_runs: int = 200
    soak_prs: int = 20
    only_soak: bool = False
    cold_runs: int = 10
    only_cold: bool = False
    only_evaluation: bool = False
    quick: bool = False
    argv: list[str] = field(default_factory=list)


def parse(argv: list[str] | None) -> Options:
    parser = argparse.ArgumentParser(
        prog="python -m modelrun_bench", description="Pipeline benchmarks on the local stack."
    )
    parser.add_argument("--runs", type=int, default=None, help="overhead runs (default 50; --quick 6)")
    parser.add_argument("--requests", type=int, default=None, help="throughput requests (default 1000)")
    parser.add_argument("--prs", type=int, default=None, help="PRs the requests spread over (default 200)")
    parser.add_argument("--duplicates", type=float, default=0.2, help="fraction of requests sent twice")
    parser.add_argument("--poll-interval", type=float, default=0.5, help="the baseline poller's interval (s)")
    parser.add_argument("--quick", action="store_true", help="small counts, no sam build, no zipping")
    parser.add_argument("--out", type=Path, default=OUT_DIR, help="where results.json and RESULTS.md go")
    parser.add_argument(
        "--model-seconds", type=float, default=AVM_RUN_SECONDS, help="the model duration for CI runner time"
    )
    parser.add_argument("--soak-runs", type=int, default=None, help="soak runs with GitHub faults (default 200)")
    parser.add_argument("--soak-prs", type=int, default=None, help="PRs the soak's runs spread over (default 20)")
    parser.add_argument("--only-soak", action="store_true", help="run the soak alone")
    parser.add_argument("--cold-runs", type=int, default=None, help="runs with every function cold (default 10)")
    parser.add_argument(
        "--only-cold", action="store_true", help="the cold start and the cold path (with the warm overhead) alone"
    )
    parser.add_argument(
        "--only-evaluation",
        action="store_true",
        help="the collect step's evaluation at 5,000 / 100,000 / 1,000,000 sales alone (its figures "
        "replace the evaluation's in results.json; the others stay)",
    )
    args = parser.parse_args(argv)
    quick = bool(args.quick)
    return Options(
        runs=args.runs or (6 if quick else 50),
        requests=args.requests or (40 if quick else 1000),
        prs=args.prs or (8 if quick else 200),
        duplicates=args.duplicates,
        poll_interval=args.poll_interval,
        singles=5 if quick else 30,
        batches=2 if quick else 10,
        import_repeats=1 if quick else 7,
        build=not quick,
        zipped=not quick,
        enqueue_repeats=1 if quick else 5,
        out=args.out,
        model_seconds=args.model_seconds,
        soak_runs=args.soak_runs or (40 if quick else 200),
        soak_prs=args.soak_prs or (8 if quick else 20),
        only_soak=bool(args.only_soak),
        cold_runs=args.cold_runs or (1 if quick else 10),
        only_cold=bool(args.only_cold),
        only_evaluation=bool(args.only_evaluation),
        quick=quick,
        argv=list(argv if argv is not None else sys.argv[1:]),
    )


def only_evaluation(options: Options) -> int:
    """The evaluation's figures, merged into the last full run's results (the rest unchanged)."""
    path = options.out / "results.json"
    results: dict[str, Any] = json.loads(path.read_text()) if path.is_file() else {}
    results.setdefault("date", datetime.now(UTC).isoformat(timespec="seconds"))
    results.setdefault("command", "python -m modelrun_bench --only-evaluation")
    results.setdefault("machine", machine())
    results.setdefault("wall_seconds", 0.0)
    started = time.monotonic()
    results["evaluation"] = evaluation_phase(options.quick)
    if not options.quick:  # numpy in the collect function: its package and import, if it is built
        results["evaluation"]["cold_start"] = collect_cold_start()
    results["evaluation"]["measured"] = datetime.now(UTC).isoformat(timespec="seconds")
    results["evaluation"]["wall_seconds"] = time.monotonic() - started
    options.out.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2, default=str) + "\n")
    markdown = render_markdown(results)
    (options.out / "RESULTS.md").write_text("# Benchmarks\n\n" + markdown)
    print("\n".join(evaluation_markdown(results["evaluation"])))
    return 0


def main(argv: list[str] | None = None) -> int:
    options = parse(argv)
    if options.only_evaluation:
        return only_evaluation(options)
    if options.requests < options.prs:
        raise SystemExit("--requests must be at least --prs")
    started = time.monotonic()
    results: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": " ".join(["python -m modelrun_bench", *options.argv]).strip(),
        "machine": machine(),
    }
    problems: list[str] = []

    def step(text: str) -> None:
        print(f"[{time.monotonic() - started:6.1f} s] {text}", file=sys.stderr, flush=True)

    if not options.only_soak:
        step("cold start: handler imports and deployment packages")
        results["cold_start"] = cold_start_phase(options.import_repeats, options.build, options.zipped)

        step(f"overhead: {options.runs} runs one after another, with a describe-jobs poller")
        with bench_stack() as (probe, runtime, image):
            results["overhead"] = overhead_phase(runtime, probe, image, options.runs, options.poll_interval)
            problems += results["overhead"]["problems"]
            step(f"cold path: {options.cold_runs} runs, each function started cold")
            results["cold_path"] = cold_path_phase(runtime, probe, image, options.cold_runs)
            problems += results["cold_path"]["problems"]
            if not options.only_cold:
                step("CI step of our design: `modelrun enqueue` as a process")
                results["enqueue_step_s"] = enqueue_step_seconds(runtime, image, options.enqueue_repeats)
                step(f"submit handler latency: {options.singles} batches of 1, {options.batches} of 10")
                results["submit_latency"] = submit_latency_phase(runtime, image, options.singles, options.batches)
        if not options.only_cold:
            results["polling"] = polling_comparison(
                results["overhead"], results["enqueue_step_s"], options.model_seconds
            )

    if not options.only_soak and not options.only_cold:
        step(f"throughput: {options.requests} run requests over {options.prs} PRs")
        with bench_stack() as (probe, runtime, image):
            results["throughput"] = throughput_phase(
                runtime, probe, image, options.requests, options.prs, options.duplicates
            )
            problems += results["throughput"]["problems"]

    if not options.only_cold:
        step(f"soak: {options.soak_runs} runs over {options.soak_prs} PRs, GitHub faults and latency injected")
        with bench_stack() as (_, runtime, image):
            results["soak"] = soak_phase(runtime, image, options.soak_runs, options.soak_prs)
            problems += results["soak"]["problems"]

    if not options.only_soak and not options.only_cold:
        step("evaluation: the collect step's statistics at county and state scale, one core")
        results["evaluation"] = evaluation_phase(quick=options.quick)

    results["wall_seconds"] = time.monotonic() - started
    results["problems"] = problems
    results["ok"] = not problems
    options.out.mkdir(parents=True, exist_ok=True)
    (options.out / "results.json").write_text(json.dumps(results, indent=2, default=str) + "\n")
    markdown = render_markdown(results)
    (options.out / "RESULTS.md").write_text("# Benchmarks\n\n" + markdown)
    print()
    print_table(markdown)
    print(f"\nfigures in {options.out / 'results.json'}, table in {options.out / 'RESULTS.md'}")
    if problems:
        print("\nFAILED: runs lost or duplicated, or a run went wrong:", file=sys.stderr)
        for problem in problems:
            print(f"  - {problem}", file=sys.stderr)
        return 1
    return 0
