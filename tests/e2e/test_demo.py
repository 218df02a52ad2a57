"""The main job, end to end: every hop from the run request to the PR comment.

SQS -> submit function -> Batch (a local process running the real AVM on a sample) ->
EventBridge (the template's own rule) -> job-events SQS -> track function -> state machine ->
collect results -> local GitHub (checked against GitHub's API description). If any hop breaks,
the comment never shows the run's metrics and this test fails.
"""

from __future__ import annotations

import re

import pytest

from modelrun_local import demo


def test_make_demo_flow_posts_one_comment_and_one_check_run_with_the_models_statistics(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert (demo.MODEL_DIR / ".venv" / "bin" / "python").exists(), "run `make setup` (the model's own environment)"
    exit_code = demo.main(["--sample", "1500", "--timeout", "300"])
    out = capsys.readouterr().out
    assert exit_code == 0, out
    assert out.count("1 comment(s) on the PR") == 2, "one sticky comment on each repository's PR"
    assert re.search(
        r"IAM: \d+ calls checked against \d+ roles' policies from template.yaml and repository.yaml; 0 denied", out
    )
    comment = out.split("as GitHub received it", 1)[1].split("Check run 'modelrun'", 1)[0]
    assert "✅ **SUCCEEDED**" in comment
    assert re.search(r"\| RMSE \| [\d,]+ \| [\d,]+ \|", comment), "metrics compared with main's baseline"
    assert re.search(r"\| COD \| [\d.]+ \| [\d.]+ to [\d.]+ \| 5\.0 to 15\.0 \|", comment), "IAAO statistics, CI, range"
    # main's and the PR's runs scored the same holdout: each change is marked from the paired bootstrap
    change = r"[-+]?[\d,]+ \([^)]*\) \| [-+]?[\d,]+ to [-+]?[\d,]+ \| (≈|🟢 better|🔴 worse)"
    assert re.search(r"\| RMSE \| [\d,]+ \| [\d,]+ \| " + change + r" \|", comment)
    assert "paired bootstrap interval of the change excludes 0" in comment
    assert comment.count("```mermaid") >= 2, "the decile and the area charts"
    assert "[Full report](" in comment and "[Logs](" in comment
    # main's verified baseline run (a push to main) of the PR's base commit is what it is compared with
    assert "baseline: main's run of this PR's base commit <code>" in comment
    assert "[Workflow run](https://github.com/county-assessor/avm/actions/runs/" in comment  # built by the backend
    # the results as collected, where no job can write (the run's own prefix is never shown)
    assert re.search(r"Artifacts: s3://\S+/reports/avm-pr2-[^/\s]+/artifacts/ \(\d+ objects, as collected", out)
    # The PR never shows the run's write prefix (the demo's own lines after the comment may: the
    # model logs where it writes, and the demo prints the last log lines).
    posted = comment.split("=" * 100)[1]
    assert not re.search(r"runs/avm-pr2-[^/\s]+/[0-9a-f]{32}", posted)
    assert re.search(r"Report: s3://\S+/reports/avm-pr2-[^/\s]+/report\.html, copied to \S+report-avm\.html", out)
    assert re.search(r"\d+ log lines", out), "the job's output is in CloudWatch Logs"
    # on GitHub App credentials a check run carries the result (no commit status), the full report in it
    assert "Commit status:" not in out
    check = out.split("Check run 'modelrun'", 1)[1]
    assert not re.search(r"runs/avm-pr2-[^/\s]+/[0-9a-f]{32}", check.split("GitHub API requests:", 1)[0])
    assert re.search(r"as GitHub received it: completed, conclusion success · details https://", check)
    assert "--- summary ---" in check and "| RMSE |" in check and check.count("```mermaid") >= 2
    assert "--- text ---" in check and "### By group" in check and "num_leaves: 127" in check
    # the requests of the PR's run (at most 5, and the merge gate's policy read from the base
    # commit: 6), token exchanges counted apart
    for repository in ("county-assessor/avm", "county-assessor/condo"):
        figure = re.search(
            rf"GitHub API requests of {repository}'s PR run, from its request to its report: (\d+) \(goal(.*)", out
        )
        assert figure and int(figure.group(1)) <= 6, out[-1500:]
        assert "issues/list-comments" not in figure.group(2)
    # on GitHub App credentials, every call accepted by the local GitHub's checks
    assert re.search(r"GitHub API requests: \d+ in all, as GitHub App \d+ \([1-9]\d* installation token", out)
    assert "; 0 refused" in out

    # The second repository, in R, on the same stack: its own comment, its statistics computed by
    # modelrun from its predictions, compared with its own main run; its data read from its grant.
    condo = out.split("county-assessor/condo PR #", 1)[1].split("Check run 'modelrun'", 1)[0]
    assert "✅ **SUCCEEDED**" in condo and "| COD |" in condo, condo
    assert "baseline: main's run of this PR's base commit <code>" in condo
    assert "[Workflow run](https://github.com/county-assessor/condo/actions/runs/" in condo
    assert "cannot read" not in out
    assert re.search(r"Both repositories' main and PR runs: [\d.]+ s from start", out)
