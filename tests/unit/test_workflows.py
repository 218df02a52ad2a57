"""The GitHub workflows: linted (actionlint, GitHub's workflow JSON Schema), and their shape asserted.

The gate job's script is run for real (bash) for each approval mode and event.
"""

from __future__ import annotations

import os
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


def test_both_workflows_are_present() -> None:
    assert {path.name for path in WORKFLOW_FILES} >= {"run-model.yaml", "cleanup.yaml"}


# --- linters ----------------------------------------------------------------------------------


def test_actionlint_passes() -> None:
    result = subprocess.run(
        [tool("actionlint"), "-color=false", *map(str, WORKFLOW_FILES)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("path", WORKFLOW_FILES, ids=lambda path: path.name)
def test_github_workflow_schema_passes(path: Path) -> None:
    result = subprocess.run(
        [tool("check-jsonschema"), "--builtin-schema", "vendor.github-workflows", str(path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


# --- shape ------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", WORKFLOW_FILES, ids=lambda path: path.name)
def test_no_workflow_builds_untrusted_code_with_secrets(path: Path) -> None:
    workflow = yaml.safe_load(path.read_text())
    assert "pull_request_target" not in triggers(workflow)
    assert "workflow_run" not in triggers(workflow)
    assert workflow["permissions"] == {}, "top-level permissions must grant nothing"
    assert "secrets." not in path.read_text(), "AWS access is by OIDC only; no stored secrets"


def test_run_model_triggers() -> None:
    on = triggers(RUN_MODEL)
    assert set(on) == {"pull_request", "workflow_dispatch"}
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
    assert run["environment"] == "${{ vars.MODELRUN_ENVIRONMENT || 'staging' }}"
    assert run["permissions"] == {"id-token": "write", "contents": "read"}
    assert run["env"]["HEAD_SHA"] == "${{ github.event.pull_request.head.sha || github.sha }}"
    assert run["env"]["ECR_REPOSITORY"] == "${{ vars.MODELRUN_ECR_REPOSITORY || 'modelrun-models' }}"


def test_run_job_builds_the_pr_head_and_pushes_it_to_ecr() -> None:
    run = RUN_MODEL["jobs"]["run"]
    checkout = uses(run, "actions/checkout")
    assert checkout["with"]["ref"] == "${{ env.HEAD_SHA }}"
    assert checkout["with"]["persist-credentials"] is False

    aws = uses(run, "aws-actions/configure-aws-credentials")
    assert aws["uses"].endswith("@v6")
    assert aws["with"]["role-to-assume"] == "${{ vars.MODELRUN_ROLE_ARN }}"
    assert aws["with"]["aws-region"] == "${{ vars.MODELRUN_AWS_REGION }}"
    assert uses(run, "aws-actions/amazon-ecr-login")["uses"].endswith("@v2")
    uses(run, "docker/setup-buildx-action")

    build = uses(run, "docker/build-push-action")
    assert build["id"] == "build"
    assert build["with"]["context"] == "model_container"
    assert build["with"]["push"] is True
    assert "COMPUTE=${{ env.COMPUTE }}" in build["with"]["build-args"]
    assert build["with"]["cache-from"].startswith("type=registry,")
    assert build["with"]["cache-to"].startswith("type=registry,")
    name_step = next(step for step in steps(run) if step.get("id") == "image")
    assert 'tag="$HEAD_SHA"' in name_step["run"]


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
}


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


@pytest.mark.parametrize(
    ("env", "runs", "says"),
    [
        ({}, True, "approves"),
        ({"ACTION": "opened"}, True, ""),
        ({"EVENT_NAME": "workflow_dispatch", "ACTION": "", "HEAD_REPO": ""}, True, ""),
        ({"HEAD_REPO": "someone/avm"}, False, "comes from a fork (someone/avm)"),
        ({"HEAD_REPO": ""}, False, "a deleted fork"),
        ({"DRAFT": "true"}, False, "is a draft"),
        ({"ACTION": "labeled", "ADDED_LABEL": "bug"}, False, "Labels do not start model runs"),
        ({"GATE": "dispatch-only"}, False, "by hand only"),
        ({"GATE": "dispatch-only", "EVENT_NAME": "workflow_dispatch", "ACTION": ""}, True, ""),
        ({"GATE": "label"}, False, "has no 'run-model' label"),
        ({"GATE": "label", "HAS_RUN_LABEL": "true"}, True, ""),
        (
            {"GATE": "label", "ACTION": "labeled", "ADDED_LABEL": "run-model", "HAS_RUN_LABEL": "true"},
            True,
            "",
        ),
        (
            {"GATE": "label", "ACTION": "labeled", "ADDED_LABEL": "bug", "HAS_RUN_LABEL": "true"},
            False,
            "'bug'",
        ),
        ({"GATE": "label", "HAS_RUN_LABEL": "true", "DRAFT": "true"}, False, "is a draft"),
    ],
)
def test_gate_decides(tmp_path: Path, env: dict[str, str], runs: bool, says: str) -> None:
    rc, outputs, summary, stdout = gate(tmp_path, **env)

    assert rc == 0, stdout
    assert outputs == {"run": "true" if runs else "false"}
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
    assert (rc, outputs) == (0, {"run": "false"})
