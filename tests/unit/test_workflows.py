"""The GitHub workflows: linted (actionlint, GitHub's workflow JSON Schema), and their shape asserted.

The gate job's script is run for real (bash) for each approval mode and event.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).parents[2]
WORKFLOWS = ROOT / ".github" / "workflows"
WORKFLOW_FILES = sorted(WORKFLOWS.glob("*.y*ml"))
BIN = Path(sys.executable).parent


def tool(name: str) -> str:
    path = BIN / name
    if not path.exists():
        found = shutil.which(name)
        if found is None:
            pytest.skip(f"{name} is not installed (uv sync installs it with the dev group)")
        return found
    return str(path)


def load(name: str) -> dict[Any, Any]:
    workflow: dict[Any, Any] = yaml.safe_load((WORKFLOWS / name).read_text())
    return workflow


def triggers(workflow: dict[Any, Any]) -> dict[str, Any]:
    # PyYAML (YAML 1.1) reads the key `on` as True.
    on: dict[str, Any] = workflow["on"] if "on" in workflow else workflow[True]
    return on


def steps(job: dict[str, Any]) -> list[dict[str, Any]]:
    job_steps: list[dict[str, Any]] = job["steps"]
    return job_steps


def uses(job: dict[str, Any], action: str) -> dict[str, Any]:
    matches = [step for step in steps(job) if str(step.get("uses", "")).split("@")[0] == action]
    assert len(matches) == 1, f"expected one {action} step"
    return matches[0]


RUN_MODEL = load("run-model.yaml")
CLEANUP = load("cleanup.yaml")
BASELINE_ENVIRONMENT = "(vars.MODELRUN_BASELINE_ENVIRONMENT || 'modelrun-main')"
APPROVAL_ENVIRONMENT = "(vars.MODELRUN_ENVIRONMENT || 'staging')"
# `uses: owner/repo[/path]@<40 hex> # vX.Y.Z` (YAML drops comments, so this reads the text).
USES_LINE = re.compile(r"^\s*(?:-\s+)?uses:\s*(?P<ref>\S+)(?P<comment>.*)$")
PINNED = re.compile(r"^[\w.-]+/[\w./-]+@[0-9a-f]{40}$")
VERSION_COMMENT = re.compile(r"^\s+# v\d+\.\d+\.\d+$")


def uses_lines(path: Path) -> list[tuple[str, str]]:
    return [
        (match["ref"], match["comment"])
        for line in path.read_text().splitlines()
        if (match := USES_LINE.match(line)) and not line.lstrip().startswith("#")
    ]


def test_both_workflows_are_present() -> None:
    assert {path.name for path in WORKFLOW_FILES} >= {"run-model.yaml", "cleanup.yaml"}


# --- linters ----------------------------------------------------------------------------------


# Each linter reads every workflow in one process: one run each is as strict as one per file.
LINTERS = {
    "actionlint": ("actionlint", "-color=false", *map(str, WORKFLOW_FILES)),
    "workflow-schema": ("check-jsonschema", "--builtin-schema", "vendor.github-workflows", *map(str, WORKFLOW_FILES)),
    "zizmor": ("zizmor", "--offline", "--no-progress", str(ROOT / ".github")),
}


@pytest.mark.parametrize("command", LINTERS.values(), ids=LINTERS.keys())
def test_the_linters_find_nothing(command: tuple[str, ...]) -> None:
    name, *arguments = command
    result = subprocess.run([tool(name), *arguments], cwd=ROOT, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


# --- shape ------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", WORKFLOW_FILES, ids=lambda path: path.name)
def test_no_workflow_builds_untrusted_code_with_secrets(path: Path) -> None:
    workflow = yaml.safe_load(path.read_text())
    assert "pull_request_target" not in triggers(workflow)
    assert "workflow_run" not in triggers(workflow)
    assert workflow["permissions"] == {}, "top-level permissions must grant nothing"
    assert "secrets." not in path.read_text(), "AWS access is by OIDC only; no stored secrets"


@pytest.mark.parametrize("path", WORKFLOW_FILES, ids=lambda path: path.name)
def test_every_action_is_pinned_to_a_commit_with_its_version_in_a_comment(path: Path) -> None:
    found = uses_lines(path)
    assert found, "no uses: lines found"
    for ref, comment in found:
        assert PINNED.match(ref), f"{ref}: pin a full 40-hex commit SHA"
        assert VERSION_COMMENT.match(comment), f"{ref}: add the version as a trailing comment (# v1.2.3)"
    # the YAML agrees with the text (no uses: this scan missed)
    workflow = yaml.safe_load(path.read_text())
    in_yaml = [step["uses"] for job in workflow["jobs"].values() for step in job.get("steps", []) if "uses" in step]
    assert in_yaml == [ref for ref, _ in found]


@pytest.mark.parametrize("path", WORKFLOW_FILES, ids=lambda path: path.name)
def test_no_pip_cache_in_a_job_that_holds_aws_credentials(path: Path) -> None:
    workflow = yaml.safe_load(path.read_text())
    for name, job in workflow["jobs"].items():
        if job.get("permissions", {}).get("id-token") != "write":
            continue
        for step in job.get("steps", []):
            if str(step.get("uses", "")).startswith(("actions/setup-python@", "actions/cache@")):
                assert "cache" not in step.get("with", {}), f"{name}: no dependency cache with credentials"
                assert not step["uses"].startswith("actions/cache@"), name


def test_dependabot_keeps_the_actions_current() -> None:
    config = yaml.safe_load((ROOT / ".github" / "dependabot.yml").read_text())
    ecosystems = {(update["package-ecosystem"], update["directory"]) for update in config["updates"]}
    assert ("github-actions", "/") in ecosystems
    assert {("uv", "/"), ("uv", "/model_container")} <= ecosystems


def test_no_reference_to_missing_docs() -> None:
    for path in WORKFLOW_FILES:
        for doc in re.findall(r"docs/[\w./-]+\.md", path.read_text()):
            assert (ROOT / doc).exists(), f"{path.name} points to {doc}, which does not exist"


def test_run_model_triggers() -> None:
    on = triggers(RUN_MODEL)
    assert set(on) == {"push", "pull_request", "workflow_dispatch"}
    # every merge re-baselines
    assert on["push"] == {"branches": ["main"]}
    assert on["pull_request"]["branches"] == ["main"]
    assert set(on["pull_request"]["types"]) == {
        "opened",
        "synchronize",
        "reopened",
        "ready_for_review",
        "labeled",
    }
    inputs = on["workflow_dispatch"]["inputs"]
    assert inputs["compute"]["type"] == "choice"
    assert inputs["compute"]["options"] == ["cpu", "gpu"]
    assert inputs["compute"]["default"] == "cpu"
    assert inputs["note"]["type"] == "string"


def test_run_model_cancels_stale_builds_of_the_same_pull_request() -> None:
    concurrency = RUN_MODEL["concurrency"]
    assert concurrency["group"].startswith("run-model-${{ github.event.pull_request.number || github.ref }}")
    assert concurrency["cancel-in-progress"] is True
    # each push to main has a group of its own: no merge's baseline run is cancelled by the next
    assert "github.event_name == 'push' && format('-{0}', github.sha)" in concurrency["group"]
    # closing the PR cancels a build in progress: the cleanup joins the same group
    assert CLEANUP["concurrency"]["group"] == "run-model-${{ github.event.pull_request.number }}"


def test_run_model_gate_runs_first_and_holds_no_permissions() -> None:
    gate, run = RUN_MODEL["jobs"]["gate"], RUN_MODEL["jobs"]["run"]
    assert gate["permissions"] == {}
    assert "environment" not in gate
    assert run["needs"] == "gate"
    assert run["if"] == "needs.gate.outputs.run == 'true'"


def test_run_job_is_approved_by_the_environment_with_minimal_permissions() -> None:
    run = RUN_MODEL["jobs"]["run"]
    # The baseline environment only for the gate's default-branch runs, and never for a PR event.
    assert run["environment"] == (
        "${{ needs.gate.outputs.baseline == 'true' && github.event_name != 'pull_request' && "
        f"{BASELINE_ENVIRONMENT} || {APPROVAL_ENVIRONMENT} }}}}"
    )
    assert run["permissions"] == {"id-token": "write", "contents": "read"}
    assert run["env"]["WRITE_CACHE"] == (
        "${{ needs.gate.outputs.baseline == 'true' && github.event_name != 'pull_request' && "
        "vars.MODELRUN_BASELINE_ROLE_ARN != '' }}"
    )
    assert run["env"]["HEAD_SHA"] == "${{ github.event.pull_request.head.sha || github.sha }}"
    assert run["env"]["ECR_REPOSITORY"] == "${{ vars.MODELRUN_ECR_REPOSITORY || 'modelrun-models' }}"


def test_run_job_builds_the_pr_head_and_pushes_it_to_ecr() -> None:
    run = RUN_MODEL["jobs"]["run"]
    checkout = uses(run, "actions/checkout")
    assert checkout["with"]["ref"] == "${{ env.HEAD_SHA }}"
    assert checkout["with"]["persist-credentials"] is False

    aws = uses(run, "aws-actions/configure-aws-credentials")
    # the baseline role (which alone may write the build cache) only when the cache is written
    assert aws["with"]["role-to-assume"] == (
        "${{ env.WRITE_CACHE == 'true' && vars.MODELRUN_BASELINE_ROLE_ARN || vars.MODELRUN_ROLE_ARN }}"
    )
    assert aws["with"]["aws-region"] == "${{ vars.MODELRUN_AWS_REGION }}"
    uses(run, "aws-actions/amazon-ecr-login")
    uses(run, "docker/setup-buildx-action")

    build = uses(run, "docker/build-push-action")
    assert build["id"] == "build"
    assert build["with"]["context"] == "model_container"
    assert build["with"]["push"] is True
    assert "COMPUTE=${{ env.COMPUTE }}" in build["with"]["build-args"]
    assert build["with"]["tags"] == "${{ steps.image.outputs.tag }}"
    assert build["with"]["cache-from"] == "type=registry,ref=${{ steps.image.outputs.cache }}"
    assert build["with"]["cache-to"] == "${{ steps.image.outputs.cache-to }}"


def test_run_job_ends_by_enqueueing_the_digest_pinned_image() -> None:
    run_steps = steps(RUN_MODEL["jobs"]["run"])
    last = run_steps[-1]
    assert last["run"].startswith("modelrun enqueue ")
    assert '--image "$IMAGE"' in last["run"]
    assert last["env"]["IMAGE"] == "${{ steps.image.outputs.repository }}@${{ steps.build.outputs.digest }}"
    assert last["env"]["MODELRUN_QUEUE_URL"] == "${{ vars.MODELRUN_QUEUE_URL }}"
    assert any(step.get("run") == "python -m pip install ." for step in run_steps)
    python = next(step for step in run_steps if str(step.get("uses", "")).startswith("actions/setup-python@"))
    assert python["with"]["python-version"] == "3.12"


def test_cleanup_workflow_sends_the_cleanup_request() -> None:
    assert triggers(CLEANUP) == {"pull_request": {"branches": ["main"], "types": ["closed"]}}
    job = CLEANUP["jobs"]["cleanup"]
    assert job["permissions"] == {"id-token": "write", "contents": "read"}
    assert "github.event.pull_request.head.repo.full_name == github.repository" in job["if"]
    assert "MODELRUN_ENVIRONMENT" in job["environment"]
    aws = uses(job, "aws-actions/configure-aws-credentials")
    assert "vars.MODELRUN_ROLE_ARN" in aws["with"]["role-to-assume"]
    assert steps(job)[-1]["run"] == "modelrun enqueue --cleanup"
    # the base branch's (reviewed) modelrun sends it, not the closed PR's code
    assert uses(job, "actions/checkout")["with"]["ref"] == "${{ github.event.pull_request.base.ref }}"


def test_codeowners_cover_the_model_and_the_workflows() -> None:
    owners = (ROOT / ".github" / "CODEOWNERS").read_text()
    assert "/model_container/ " in owners
    assert "/.github/ " in owners


# --- the image step's script, run for real -------------------------------------------------------

IMAGE_STEP = next(step for step in steps(RUN_MODEL["jobs"]["run"]) if step.get("id") == "image")
SHA = "0123456789abcdef0123456789abcdef01234567"


def name_image(tmp_path: Path, **env: str) -> dict[str, str]:
    script = tmp_path / "image.sh"
    script.write_text(IMAGE_STEP["run"])
    output = tmp_path / "image-output"
    output.write_text("")
    subprocess.run(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script)],
        env={
            "PATH": os.environ["PATH"],
            "REGISTRY": "123456789012.dkr.ecr.eu-west-1.amazonaws.com",
            "ECR_REPOSITORY": "modelrun-models",
            "HEAD_SHA": SHA,
            "COMPUTE": "cpu",
            "WRITE_CACHE": "false",
            "GITHUB_REPOSITORY": "octo-org/avm",
            "GITHUB_RUN_ID": "4242",
            "GITHUB_RUN_ATTEMPT": "1",
            **env,
            "GITHUB_OUTPUT": str(output),
        },
        check=True,
    )
    return dict(line.split("=", 1) for line in output.read_text().splitlines())


def test_image_tags_never_repeat_so_the_repository_can_be_immutable(tmp_path: Path) -> None:
    assert "${{" not in IMAGE_STEP["run"]
    registry = "123456789012.dkr.ecr.eu-west-1.amazonaws.com"
    out = name_image(tmp_path)
    assert out["repository"] == f"{registry}/modelrun-models"
    assert re.fullmatch(rf"{registry}/modelrun-models:{SHA}-4242-1-[0-9a-f]{{12}}", out["tag"]), out["tag"]
    # a re-run of the same commit pushes a new tag; so does the GPU build
    assert re.search(rf":{SHA}-4242-2-[0-9a-f]{{12}}$", name_image(tmp_path, GITHUB_RUN_ATTEMPT="2")["tag"])
    assert re.search(rf":{SHA}-gpu-4242-1-[0-9a-f]{{12}}$", name_image(tmp_path, COMPUTE="gpu")["tag"])
    # unpredictable (issue 21): nobody can push this build's tag first and make its push fail
    assert name_image(tmp_path)["tag"] != out["tag"]


def test_only_the_default_branch_writes_the_layer_cache(tmp_path: Path) -> None:
    registry = "123456789012.dkr.ecr.eu-west-1.amazonaws.com"
    cache = f"{registry}/modelrun-models-cache:buildcache-cpu-octo-org.avm"
    pr = name_image(tmp_path)
    assert pr["cache"] == cache  # read by every run, from the cache repository
    assert pr["cache-to"] == ""  # written by none but the default branch's
    baseline = name_image(tmp_path, WRITE_CACHE="true")
    assert baseline["cache-to"] == (
        f"type=registry,ref={cache},mode=max,image-manifest=true,oci-mediatypes=true,ignore-error=true"
    )
    # one stack serves several model repositories: each has its own cache tag, at most 128 long
    other = name_image(tmp_path, GITHUB_REPOSITORY="octo-org/condo-avm", COMPUTE="gpu")
    assert other["cache"].endswith(":buildcache-gpu-octo-org.condo-avm")
    long = name_image(tmp_path, GITHUB_REPOSITORY="o" * 39 + "/" + "n" * 100)
    assert len(long["cache"].rsplit(":", 1)[1]) == 128


# --- the gate's script, run for real ------------------------------------------------------------

GATE_STEP = steps(RUN_MODEL["jobs"]["gate"])[0]
CONFIGURED = {
    "ROLE_ARN": "arn:aws:iam::123456789012:role/modelrun-github",
    "AWS_REGION": "eu-west-1",
    "QUEUE_URL": "https://sqs.eu-west-1.amazonaws.com/123456789012/modelrun-run-requests",
}
PR = {
    "EVENT_NAME": "pull_request",
    "ACTION": "synchronize",
    "REPOSITORY": "octo-org/avm",
    "PR_NUMBER": "7",
    "HEAD_REPO": "octo-org/avm",
    "DRAFT": "false",
    "GATE": "environment",
    "RUN_LABEL": "run-model",
    "ADDED_LABEL": "",
    "HAS_RUN_LABEL": "false",
    "ENVIRONMENT": "staging",
    "BASELINE_ENVIRONMENT": "modelrun-main",
    "BASELINE_ROLE_ARN": "arn:aws:iam::123456789012:role/modelrun-github-baseline",
    "REF": "refs/pull/7/merge",
    "DEFAULT_BRANCH": "main",
}
PUSH = {"EVENT_NAME": "push", "ACTION": "", "REF": "refs/heads/main", "PR_NUMBER": "", "HEAD_REPO": "", "DRAFT": ""}
DISPATCH = {"EVENT_NAME": "workflow_dispatch", "ACTION": "", "PR_NUMBER": "", "HEAD_REPO": "", "DRAFT": ""}


def gate(tmp_path: Path, **env: str) -> tuple[int, dict[str, str], str, str]:
    """Run the gate step as GitHub does (bash -e -o pipefail); returns rc, outputs, summary, stdout."""
    script = tmp_path / "gate.sh"
    script.write_text(GATE_STEP["run"])
    output, summary = tmp_path / "output", tmp_path / "summary"
    output.write_text("")
    summary.write_text("")
    result = subprocess.run(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script)],
        env={
            "PATH": os.environ["PATH"],
            **CONFIGURED,
            **PR,
            **env,
            "GITHUB_OUTPUT": str(output),
            "GITHUB_STEP_SUMMARY": str(summary),
        },
        capture_output=True,
        text=True,
        check=False,
    )
    outputs = dict(line.split("=", 1) for line in output.read_text().splitlines() if "=" in line)
    return result.returncode, outputs, summary.read_text(), result.stdout + result.stderr


def test_gate_step_reads_untrusted_values_through_env_only() -> None:
    assert "${{" not in GATE_STEP["run"], "no expression interpolation into the script (injection)"
    for name in ("ROLE_ARN", "AWS_REGION", "QUEUE_URL", *PR):
        assert name in GATE_STEP["env"]


PR_CASES: list[tuple[dict[str, str], bool, str]] = [
    ({}, True, "approves"),
    ({"ACTION": "opened"}, True, ""),
    ({"HEAD_REPO": "someone/avm"}, False, "comes from a fork (someone/avm)"),
    ({"HEAD_REPO": ""}, False, "a deleted fork"),
    ({"DRAFT": "true"}, False, "is a draft"),
    ({"ACTION": "labeled", "ADDED_LABEL": "bug"}, False, "Labels do not start model runs"),
    ({"GATE": "dispatch-only"}, False, "by hand only"),
    ({"GATE": "label"}, False, "has no 'run-model' label"),
    ({"GATE": "label", "HAS_RUN_LABEL": "true"}, True, ""),
    ({"GATE": "label", "ACTION": "labeled", "ADDED_LABEL": "run-model", "HAS_RUN_LABEL": "true"}, True, ""),
    ({"GATE": "label", "ACTION": "labeled", "ADDED_LABEL": "bug", "HAS_RUN_LABEL": "true"}, False, "'bug'"),
    ({"GATE": "label", "HAS_RUN_LABEL": "true", "DRAFT": "true"}, False, "is a draft"),
]


@pytest.mark.parametrize(("env", "runs", "says"), PR_CASES)
@pytest.mark.parametrize("ref", ["refs/pull/7/merge", "refs/heads/main"], ids=["pr-ref", "pr-claiming-main"])
def test_pull_request_events_never_get_the_baseline_environment(
    tmp_path: Path, env: dict[str, str], runs: bool, says: str, ref: str
) -> None:
    rc, outputs, summary, stdout = gate(tmp_path, **env, REF=ref)

    assert rc == 0, stdout
    assert outputs == {"run": "true" if runs else "false", "baseline": "false"}
    assert says in summary
    assert "Baseline run" not in summary
    if not runs:
        assert summary.startswith("### modelrun: no run")
        assert "::notice title=modelrun::" in stdout


@pytest.mark.parametrize(
    ("env", "runs", "baseline", "says"),
    [
        # a push to the default branch runs in every gate mode: merged code re-baselines
        (PUSH, True, True, "Baseline run of refs/heads/main in the 'modelrun-main' environment"),
        ({**PUSH, "GATE": "dispatch-only"}, True, True, "Baseline run"),
        ({**PUSH, "GATE": "label"}, True, True, "Baseline run"),
        ({**PUSH, "REF": "refs/heads/release"}, False, False, "only pushes to the default branch, main, do"),
        ({**PUSH, "DEFAULT_BRANCH": "trunk"}, False, False, "only pushes to the default branch, trunk, do"),
        ({**PUSH, "DEFAULT_BRANCH": ""}, False, False, "do not start model runs"),
        ({**DISPATCH, "REF": "refs/heads/main"}, True, True, "Baseline run"),
        ({**DISPATCH, "REF": "refs/heads/feature"}, True, False, "approves"),
        ({**DISPATCH, "REF": "refs/heads/feature", "GATE": "dispatch-only"}, True, False, ""),
        ({**DISPATCH, "REF": "refs/tags/v1"}, True, False, ""),
    ],
)
def test_gate_decides_pushes_and_dispatches(
    tmp_path: Path, env: dict[str, str], runs: bool, baseline: bool, says: str
) -> None:
    rc, outputs, summary, stdout = gate(tmp_path, **env)

    assert rc == 0, stdout
    assert outputs == {"run": str(runs).lower(), "baseline": str(baseline).lower()}
    assert says in summary
    assert ("Baseline run" in summary) is baseline
    assert "::warning" not in stdout


def test_a_baseline_run_without_the_baseline_role_warns_that_the_cache_stays(tmp_path: Path) -> None:
    rc, outputs, _, stdout = gate(tmp_path, **PUSH, BASELINE_ROLE_ARN="")
    assert (rc, outputs) == (0, {"run": "true", "baseline": "true"})
    assert "MODELRUN_BASELINE_ROLE_ARN is not set" in stdout


@pytest.mark.parametrize(
    ("env", "runs", "says"),
    [
        *PR_CASES,
        ({"EVENT_NAME": "workflow_dispatch", "ACTION": "", "HEAD_REPO": ""}, True, ""),
        ({"GATE": "dispatch-only", "EVENT_NAME": "workflow_dispatch", "ACTION": ""}, True, ""),
    ],
)
def test_gate_decides(tmp_path: Path, env: dict[str, str], runs: bool, says: str) -> None:
    rc, outputs, summary, stdout = gate(tmp_path, **env)

    assert rc == 0, stdout
    assert outputs["run"] == ("true" if runs else "false")
    assert says in summary
    if not runs:
        assert summary.startswith("### modelrun: no run")
        assert "::notice title=modelrun::" in stdout


def test_gate_fails_on_an_unknown_mode(tmp_path: Path) -> None:
    rc, outputs, _, stdout = gate(tmp_path, GATE="labels")
    assert rc != 0
    assert "MODELRUN_GATE is 'labels'" in stdout
    assert outputs == {}


def test_gate_fails_fast_when_the_stack_outputs_are_not_configured(tmp_path: Path) -> None:
    rc, _, _, stdout = gate(tmp_path, QUEUE_URL="", ROLE_ARN="")
    assert rc != 0
    assert "Set the repository variables MODELRUN_ROLE_ARN MODELRUN_QUEUE_URL" in stdout
    # a skipped event needs no configuration
    rc, outputs, _, _ = gate(tmp_path, QUEUE_URL="", DRAFT="true")
    assert (rc, outputs) == (0, {"run": "false", "baseline": "false"})
