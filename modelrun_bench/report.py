"""The report: the machine, the table in bench/RESULTS.md, and its lines on the terminal."""

from __future__ import annotations

import os
import platform
from importlib import metadata
from typing import Any

from modelrun_bench.evaluation import markdown as evaluation_markdown
from modelrun_bench.stats import ms


def machine() -> dict[str, Any]:
    return {
        "platform": platform.platform(),
        "machine": platform.machine(),
        "processor": platform.processor() or None,
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "moto": metadata.version("moto"),
    }


def render_markdown(results: dict[str, Any]) -> str:
    o = results.get("overhead") or {}
    p = results.get("polling") or {}
    t = results.get("throughput") or {}
    s = results.get("submit_latency") or {}
    c = results.get("cold_start") or {}
    k = results.get("soak") or {}
    m = results["machine"]
    lines = [
        f"Measured {results['date']} on {m['platform']} ({m['cpu_count']} CPUs), Python {m['python']}, "
        f"moto {m['moto']}, by `{results['command']}` in {results['wall_seconds']:.0f} s.",
        "",
        "| what | figure |",
        "|---|---|",
    ]
    if o:
        e2s, t2c = o["enqueue_to_submitjob_s"], o["terminal_to_comment_s"]
        t2s, r2c = o["terminal_to_result_s"], o["running_to_log_link_s"]
        lines += [
            f"| run request on SQS → `SubmitJob` returned ({o['runs']} runs, median / p95) "
            f"| {ms(e2s)} / {ms(e2s, 'p95')} |",
            f"| terminal Batch event → PR comment written (median / p95) | {ms(t2c)} / {ms(t2c, 'p95')} |",
            f"| terminal Batch event → check run completed (commit status, on a token) (median / p95) "
            f"| {ms(t2s)} / {ms(t2s, 'p95')} |",
            f"| RUNNING event → the log link shown (check run; comment, on a token) (median / p95) "
            f"| {ms(r2c)} / {ms(r2c, 'p95')} |",
        ]
        g = o["github"]
        lines.append(
            f"| GitHub API requests per run on {g.get('credentials', 'app')} credentials, submission → final "
            f"report (goal ≤ 6: 5, and the merge gate's policy read once per base commit) | "
            f"{g['per_run']['total']:.2f}, at most {g.get('max_per_run', 0)} "
            f"({g['per_run']['writes']:.2f} writes; {g['per_run']['check_runs']:.2f} to the check run; "
            f"{g['first_run_on_pr']['total']:.2f} on a PR's first run, {g['later_run_on_pr']['total']:.2f} later; "
            f"list calls {g['per_run']['list_comments']:.2f}); installation-token exchanges besides: "
            f"{g.get('token_exchanges', 0)} in {o['runs']} runs (one per function environment and hour), "
            f"default-branch lookups {g.get('default_branch_lookups', 0)} (one per submit environment, "
            "repository and hour) |"
        )
    cp = results.get("cold_path") or {}
    if cp:

        def warm(key: str) -> str:
            return f" (warm: {ms(o[key])} / {ms(o[key], 'p95')})" if o.get(key, {}).get("n") else ""

        c2c, c2s = cp["terminal_to_comment_s"], cp["enqueue_to_submitjob_s"]
        inits = "; ".join(
            f"{k.removesuffix('Function')} {ms(v)} / {ms(v, 'p95')}" for k, v in cp["init_s"].items() if v.get("n")
        )
        lines += [
            f"| cold: terminal Batch event → PR comment written, Track, CollectResults and UpdatePullRequest each "
            f"started cold ({cp['runs']} runs, median / p95; goal p95 ≤ 2 s) | {ms(c2c)} / {ms(c2c, 'p95')}"
            f"{warm('terminal_to_comment_s')} |",
            f"| cold: run request on SQS → `SubmitJob` returned, Submit started cold (median / p95) | "
            f"{ms(c2s)} / {ms(c2s, 'p95')}{warm('enqueue_to_submitjob_s')} |",
            f"| cold starts: init, worker process start → handler loaded (median / p95) | {inits} |",
        ]
    if p and o:
        pd = o["poller"]["detection_delay_s"]
        avm = p["by_model"]["avm"]
        hour = p["by_model"]["one_hour_model"]
        ratio = o["poller"]["ratio_to_ours_median"]
        lines += [
            f"| polling baseline: describe-jobs every {o['poller']['interval_s']:g} s, detection delay "
            f"(median / p95) | {ms(pd)} / {ms(pd, 'p95')} ({ratio:.1f}× ours, to detection only) |",
            f"| old design's intervals (60 s starting, 5 min running): expected detection delay | "
            f"{p['naive_expected_delay_s']['while_running']:.0f} s for a long model "
            f"({p['naive_ratio_to_ours_running']:.0f}× ours); {avm['expected_detection_delay_s']:.0f} s for the "
            f"{avm['model_seconds']:g} s AVM ({avm['ratio_to_ours']:.0f}× ours) |",
            f"| CI runner time per run after the image push: ours (enqueue step) vs polling | "
            f"{avm['ci_runner_s_ours']:.1f} s vs {avm['ci_runner_s_polling']:.0f} s for the AVM; "
            f"vs {hour['ci_runner_s_polling'] / 60:.0f} min for a 1 h model |",
        ]
    if t:
        g = t["github"]
        lines += [
            f"| throughput: {t['requests_unique']} run requests over {t['prs']} PRs "
            f"(+{t['duplicates_sent']} duplicates) | {t['wall_seconds_first_send_to_last_github_call']:.0f} s "
            f"({t['runs_per_second']:.1f} runs/s) |",
            f"| Batch jobs created / run records (must equal the unique requests) | "
            f"{t['batch_jobs_created']} / {t['run_records']} of {t['requests_unique']} |",
            f"| terminal records | {', '.join(f'{k} {v}' for k, v in t['run_statuses'].items())} |",
            f"| GitHub API requests per run under load | {g['per_run']:.2f} ({g['writes_per_run']:.2f} writes, "
            f"{g['list_calls_per_run']:.2f} list calls; {g.get('token_exchanges', 0)} token exchanges besides) |",
        ]
        if t.get("iam"):
            i = t["iam"]
            lines.append(
                f"| IAM enforced: calls checked per run, denied; each check (median / p95); all checks' share "
                f"of the throughput wall time | {i['per_run']:.0f}, {i['denied']} denied; "
                f"{i['check_s'].get('median', 0) * 1000:.2f} ms / {i['check_s'].get('p95', 0) * 1000:.2f} ms; "
                f"{i['share_of_wall']:.0%} |"
            )
    if k:
        lines += [
            f"| soak: {k['runs']} runs over {k['prs']} PRs, {k['faulted_github_answers']} faulted GitHub answers, "
            f"random latency in every function | {k['wall_seconds']:.0f} s; "
            f"{', '.join(f'{n} {v}' for n, v in sorted(k['run_statuses'].items()))} |",
            f"| soak: lost / duplicated / stale comments / stale check runs (commit statuses, on a token) | "
            f"{k['lost']} / {k['duplicated']} / {k['stale_comments']} of {k['prs']} / "
            f"{k['stale_results']} of {k['results_checked']} ({k.get('duplicated_check_runs', 0)} doubled) |",
        ]
    if s:
        b1, b10 = s["batch_of_1_s"], s["batch_of_10_per_message_s"]
        lines += [
            f"| submit handler latency per message, batch of 1 (median / p95) | {ms(b1)} / {ms(b1, 'p95')} |",
            f"| submit handler latency per message, batches of 10 (median / p95) | {ms(b10)} / {ms(b10, 'p95')} |",
            f"| submit handler requests/s, batches of 10 | {s['batch_of_10_requests_per_s']['overall']:.1f} |",
        ]
    if c and c.get("handlers"):

        def size(pkg: dict[str, Any]) -> str:
            text = f"{pkg['unzipped_bytes'] / 2**20:.1f} MiB unzipped"
            return text + (f", {pkg['zipped_bytes'] / 2**20:.1f} MiB zipped" if "zipped_bytes" in pkg else "")

        lines.append(
            f"| `import boto3` (the runtime's boto3 alone, fresh interpreter) | {c['boto3_import_s'] * 1000:.0f} ms |"
        )
        for logical_id, h in c["handlers"].items():
            with_layers = f" + {', '.join(h['layers'])}" if h["layers"] else ""
            lines.append(
                f"| {logical_id} (`{h['module']}`): import, ratio to boto3 (goal ≤ {c['ratio_goal']}×); package | "
                f"{h['import_s'] * 1000:.0f} ms, {h['ratio_to_boto3']:.2f}×; {size(h['package'])}{with_layers} |"
            )
        for logical_id, pkg in c["layers"].items():
            lines.append(f"| {logical_id} (a layer) | {size(pkg)} |")
    elif c:
        lines.append(f"| handler imports | {c['sam_build']['note']} |")
    if results.get("evaluation"):
        lines += evaluation_markdown(results["evaluation"])
    lines.append("")
    return "\n".join(lines)


def print_table(markdown: str) -> None:
    rows = [line for line in markdown.splitlines() if line.startswith("| ") and not line.startswith("| what")]
    width = max((len(r.split(" | ")[0]) for r in rows), default=40)
    print(markdown.splitlines()[0])
    for row in rows:
        cells = [c.strip() for c in row.strip("|").split(" | ")]
        print(f"  {cells[0].strip():<{width}}  {cells[1] if len(cells) > 1 else ''}")
