"""The verdict line (domain.verdict, its words in domain.sections) and the merge gate (domain.policy)."""

from __future__ import annotations

from typing import Any

import pytest

from modelrun.domain.documents import report_of
from modelrun.domain.policy import POLICY_PATH, GateSource, PolicyInvalid, decide, policy_from
from modelrun.domain.report import check_run, commit_status, conclusion, render_comment
from modelrun.domain.sections import verdict_line, verdict_title
from modelrun.domain.status import RunStatus
from modelrun.domain.verdict import verdict_of
from tests.unit.domain_helpers import record

BETTER = {"delta": -10.0, "low": -12.0, "high": -8.0, "verdict": "better"}
WORSE = {"delta": 0.001, "low": 0.0002, "high": 0.002, "verdict": "worse"}
SAME = {"delta": 0.0, "low": -1.0, "high": 1.0, "verdict": "same"}


def report(
    changes: dict[str, Any] | None, *, main_pass: dict[str, bool], this_pass: dict[str, bool], **extra: Any
) -> dict[str, Any]:
    study = {k: {"value": 1.0, "pass": p} for k, p in this_pass.items()}
    out: dict[str, Any] = {
        "metrics": {"rmse": 100.0, "mae": 80.0, "mape": 9.0, "mdape": 7.0, "r2": 0.9, "median_ratio": 1.0},
        "ratio_study": study,
        "baseline": {
            "run_id": "main-1",
            "head_sha": "d" * 40,
            "metrics": {"rmse": 110.0, "mae": 80.0, "mape": 9.0, "mdape": 7.0, "r2": 0.9, "median_ratio": 1.0},
            "ratio_study": {k: {"value": 1.0, "pass": p} for k, p in main_pass.items()},
        },
        **extra,
    }
    if changes is not None:
        out["comparison"] = {"status": "paired", "n_sales": 100, "resamples": 1000, "changes": changes}
    return out


ALL_PASS = {"cod": True, "prd": True, "prb": True, "mki": True}


def line(doc: dict[str, Any]) -> str:
    found = report_of(doc)
    return verdict_line(verdict_of(found), found)


def test_better() -> None:
    doc = report({"rmse": BETTER, "mae": SAME, "cod": BETTER}, main_pass=ALL_PASS, this_pass=ALL_PASS)
    assert line(doc) == "🟢 **Better than main:** RMSE and COD improved; nothing got worse. IAAO: all pass."
    assert verdict_title(verdict_of(report_of(doc))) == "Better than main: RMSE, COD"


def test_worse_names_what_moved_and_a_failure_main_shares() -> None:
    doc = report(
        {"rmse": SAME, "prd": WORSE, "mape": WORSE},
        main_pass=ALL_PASS | {"mki": False},
        this_pass=ALL_PASS | {"mki": False},
    )
    assert line(doc) == "🔴 **Worse than main:** MAPE and PRD got worse; nothing improved. IAAO: MKI fails, as on main."
    assert verdict_title(verdict_of(report_of(doc))) == "Worse than main: MAPE, PRD; IAAO MKI fails as on main"


def test_mixed() -> None:
    doc = report({"rmse": BETTER, "prd": WORSE}, main_pass=ALL_PASS, this_pass=ALL_PASS)
    assert line(doc).startswith("🟠 **Mixed against main:** RMSE improved; PRD got worse.")
    assert verdict_title(verdict_of(report_of(doc))) == "Mixed: better RMSE; worse PRD"


def test_no_detectable_change() -> None:
    doc = report({"rmse": SAME, "cod": SAME}, main_pass=ALL_PASS, this_pass=ALL_PASS)
    assert line(doc).startswith("⚪ **No detectable change against main:**")


def test_newly_failing_and_newly_passing_standards() -> None:
    doc = report(
        {"rmse": SAME},
        main_pass=ALL_PASS | {"mki": False},
        this_pass=ALL_PASS | {"prd": False, "cod": False},
    )
    text = line(doc)
    assert "IAAO: COD and PRD newly fail; MKI newly passes." in text, text
    assert verdict_title(verdict_of(report_of(doc))).endswith("IAAO COD, PRD newly fail, MKI newly passes")


def test_no_baseline() -> None:
    doc = report(None, main_pass={}, this_pass=ALL_PASS | {"mki": False})
    del doc["baseline"]
    assert line(doc).startswith("⚪ **No baseline:**") and line(doc).endswith("IAAO: MKI fails.")
    assert verdict_title(verdict_of(report_of(doc))) == "No baseline to compare with; IAAO fails MKI"


def test_a_long_title_becomes_counts() -> None:
    changes = {k: WORSE for k in ("rmse", "mae", "mape", "mdape", "r2", "median_ratio", "cod", "prd", "prb", "mki")}
    failing = {"cod": False, "prd": False, "prb": False, "mki": False}
    title = verdict_title(verdict_of(report_of(report(changes, main_pass=ALL_PASS, this_pass=failing))))
    assert title == "Worse than main: 10 statistics; IAAO COD, PRD, PRB, MKI newly fail" and len(title) <= 100


def test_the_comment_opens_with_the_verdict_and_the_directions() -> None:
    doc = report({"rmse": BETTER, "prd": WORSE}, main_pass=ALL_PASS, this_pass=ALL_PASS)
    body = render_comment([record(RunStatus.SUCCEEDED, report=doc)])
    verdict = body.index("🟠 **Mixed against main:**")
    assert verdict < body.index("SUCCEEDED") < body.index("| metric |")
    assert "RMSE 🟢 · PRD 🔴" in body


def test_a_failed_run_has_no_verdict_and_says_so() -> None:
    body = render_comment([record(RunStatus.FAILED, status_reason="exit 1")])
    assert "❌ **No verdict:** the run failed" in body


# -- the merge gate ----------------------------------------------------------------------------------


def gated(doc: dict[str, Any], source: GateSource) -> Any:
    return record(RunStatus.SUCCEEDED, report=doc, gate=source.model_dump(mode="json"))


WORSE_PRD = report({"rmse": BETTER, "prd": WORSE}, main_pass=ALL_PASS, this_pass=ALL_PASS | {"prd": False})


def test_the_default_policy_blocks_nothing() -> None:
    rec = gated(WORSE_PRD, GateSource(kind="default"))
    assert conclusion(rec) == "success" and commit_status(rec)[0] == "success"
    assert "the default policy (nothing blocks)" in check_run(rec).summary


def test_a_statistic_that_must_not_get_worse_fails_the_check() -> None:
    source = GateSource(kind="file", policy=policy_from({"must_not_get_worse": ["prd", "rmse"]}))
    rec = gated(WORSE_PRD, source)
    view = check_run(rec)
    assert view.conclusion == "failure" and commit_status(rec)[0] == "failure"
    assert "**Merge gate: ❌ failure**" in view.summary and "PRD got significantly worse" in view.summary
    assert view.summary.count("Merge gate") == 1
    body = render_comment([rec])  # the comment says it too, under the verdict
    assert "<sub>Merge gate: ❌ failure. PRD got significantly worse than main" in body
    assert view.title == "Mixed: better RMSE; worse PRD; IAAO PRD newly fails"


def test_a_newly_failing_standard_can_be_neutral_and_the_status_says_so() -> None:
    source = GateSource(kind="file", policy=policy_from({"newly_failing": "neutral"}))
    rec = gated(WORSE_PRD, source)
    assert conclusion(rec) == "neutral"
    state, description = commit_status(rec)
    assert state == "success" and description.startswith("Neutral (not blocking): Mixed")


def test_must_pass_without_a_comparison_still_applies() -> None:
    doc = report(None, main_pass={}, this_pass=ALL_PASS | {"cod": False})
    source = GateSource(kind="file", policy=policy_from({"must_pass": ["cod"], "must_not_get_worse": ["rmse"]}))
    decided = decide(source, verdict_of(report_of(doc)), report_of(doc))
    assert decided.conclusion == "failure"
    assert any("COD fails" in r for r in decided.reasons) and any("can't be checked" in r for r in decided.reasons)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"must_pass": ["rmse"]}, "must_pass: unknown IAAO standard 'rmse'"),
        ({"must_not_get_worse": ["speed"]}, "unknown statistic 'speed'"),
        ({"newly_failing": "block"}, "newly_failing: Input should be 'success', 'neutral' or 'failure'"),
        ({"must_pas": ["cod"]}, "must_pas: unknown key"),
        (["cod"], "must be a mapping"),
    ],
)
def test_an_invalid_policy_says_what_to_fix(data: Any, message: str) -> None:
    with pytest.raises(PolicyInvalid) as caught:
        policy_from(data)
    assert message in str(caught.value)


def test_an_invalid_policy_is_neutral_with_its_message_on_the_check_run() -> None:
    source = GateSource(kind="invalid", error="must_pas: unknown key")
    view = check_run(gated(WORSE_PRD, source))
    assert view.conclusion == "neutral"
    assert f"The merge gate `{POLICY_PATH}` is invalid: must\\_pas: unknown key" in view.summary  # user text, inert


def test_results_not_yet_judged_show_no_conclusion() -> None:
    """Between the results' collection and the gate's read, the check run stays in progress: a
    passing conclusion shown meanwhile could let a merge through that the gate would block."""
    rec = record(RunStatus.SUCCEEDED, report=WORSE_PRD)
    view = check_run(rec)
    assert (view.status, view.conclusion, conclusion(rec)) == ("in_progress", None, None)
    assert view.title == "Results collected; applying the merge gate"


# -- the statistical text -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "low", "high", "shown"),
    [
        ("prd", 0.0002, 0.0021, "+0.0002 to +0.0021"),  # was "+0.000 to +0.002", marked worse
        ("prb", -0.0049, 0.0001, "-0.0049 to +0.0001"),  # was "-0.005 to +0.000"
        ("prb", -0.0049, 0.0, "-0.005 to 0.000"),  # a bound at 0 is 0: no digit added
        ("rmse", -2050.0, -512.4, "-2,050 to -512"),
        ("mape", 0.001, 0.3, "+0.001 to +0.300 pp"),
        ("cod", -1.5, -0.7, "-1.50 to -0.70"),
    ],
)
def test_an_interval_bound_that_rounds_to_zero_gets_more_digits(key: str, low: float, high: float, shown: str) -> None:
    from modelrun.domain.formatting import interval

    assert interval(key, low, high, change=True) == shown


def test_the_footnote_names_each_ideal() -> None:
    doc = report({"rmse": SAME}, main_pass=ALL_PASS, this_pass=ALL_PASS)
    body = render_comment([record(RunStatus.SUCCEEDED, report=doc)])
    assert "for the median ratio, PRD, PRB and MKI, better means nearer the ideal: 1, 1, 0 and 1" in body
