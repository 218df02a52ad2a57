"""The GitHub workflows: linted (actionlint, GitHub's workflow JSON Schema, zizmor), and their shape asserted.

modelrun's reusable workflows (model-run.yaml, model-cleanup.yaml) do the work; this repository's
run-model.yaml and cleanup.yaml, like any model repository's caller (docs/examples/modelrun.yaml),
only call them. The gate's, the image step's and the self-location step's scripts are run for
real (bash) for each case; a checker holds every credentialed job to modelrun's own code.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import urllib.parse
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
import yaml

ROOT = Path(__file__).parents[2]
WORKFLOWS = ROOT / ".github" / "workflows"
WORKFLOW_FILES = sorted(WORKFLOWS.glob("*.y*ml"))
REUSABLE = ("model-run.yaml", "model-cleanup.yaml")
CALLER_EXAMPLE = ROOT / "docs" / "examples" / "modelrun.yaml"
# The condo team's repository (examples/condo-model, laid out as its own repository): its caller.
CONDO = ROOT / "examples" / "condo-model"
CONDO_CALLER = CONDO / ".github" / "workflows" / "modelrun.yaml"
CALLERS = {"documented": CALLER_EXAMPLE, "condo-model": CONDO_CALLER}
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


def step(job: dict[str, Any], step_id: str) -> dict[str, Any]:
    return next(s for s in steps(job) if s.get("id") == step_id)


# The reusable workflows (the work) and this repository's callers of them.
MODEL_RUN = load("model-run.yaml")
MODEL_CLEANUP = load("model-cleanup.yaml")
RUN_MODEL = load("run-model.yaml")
CLEANUP = load("cleanup.yaml")
# `uses: owner/repo[/path]@<40 hex> # vX.Y.Z` (YAML drops comments, so this reads the text).
USES_LINE = re.compile(r"^\s*(?:-\s+)?uses:\s*(?P<ref>\S+)(?P<comment>.*)$")
PINNED = re.compile(r"^[\w.-]+/[\w./-]+@[0-9a-f]{40}$")
VERSION_COMMENT = re.compile(r"^\s+# v\d+\.\d+\.\d+$")
# A reusable workflow of this repository, at the caller's own commit (GitHub's self-repository form).
SELF_WORKFLOW = re.compile(r"^\$/\.github/workflows/[\w.-]+\.yaml$")


def uses_lines(path: Path) -> list[tuple[str, str]]:
    return [
        (match["ref"], match["comment"])
        for line in path.read_text().splitlines()
        if (match := USES_LINE.match(line)) and not line.lstrip().startswith("#")
    ]


def test_the_workflows_are_present() -> None:
    assert {path.name for path in WORKFLOW_FILES} == {"run-model.yaml", "cleanup.yaml", *REUSABLE}


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


def lint_project(tmp_path: Path, caller: str) -> Path:
    """A repository holding the reusable workflows and ``caller`` calling them by path, so that
    actionlint checks the caller's inputs against them (it reads local reusable workflows only)."""
    workflows = tmp_path / ".github" / "workflows"
    workflows.mkdir(parents=True)
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)  # actionlint's project root
    for name in REUSABLE:
        shutil.copy(WORKFLOWS / name, workflows / name)
    local = re.sub(r"uses: [\w.-]+/modelrun/(\.github/workflows/[\w.-]+\.yaml)@\S+ # v\S+", r"uses: $/\1", caller)
    assert local != caller, "the example calls modelrun's reusable workflows"
    (workflows / "caller.yaml").write_text(local)
    return workflows / "caller.yaml"


@pytest.mark.parametrize("path", CALLERS.values(), ids=CALLERS.keys())
def test_actionlint_passes_the_callers_with_the_reusable_workflows(tmp_path: Path, path: Path) -> None:
    caller = lint_project(tmp_path, path.read_text())
    result = subprocess.run(
        [tool("actionlint"), "-color=false", str(caller)], cwd=tmp_path, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_actionlint_checks_the_callers_inputs(tmp_path: Path) -> None:
    """The check above is not vacuous: a misspelt input fails it."""
    caller = lint_project(tmp_path, CALLER_EXAMPLE.read_text().replace("dockerfile:", "docker-file:"))
    result = subprocess.run(
        [tool("actionlint"), "-color=false", str(caller)], cwd=tmp_path, capture_output=True, text=True, check=False
    )
    assert result.returncode != 0
    assert 'input "docker-file" is not defined' in result.stdout


@pytest.mark.parametrize("path", [CALLER_EXAMPLE, CONDO / ".github"], ids=CALLERS.keys())
def test_zizmor_passes_the_callers(path: Path) -> None:
    """The documented caller, and the condo repository's .github (its workflow, dependabot.yml)."""
    result = subprocess.run(
        [tool("zizmor"), "--offline", "--no-progress", str(path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_adoption_guide_shows_the_caller_example_as_it_is_linted() -> None:
    guide = (ROOT / "docs" / "adopt.md").read_text()
    assert f"```yaml\n{CALLER_EXAMPLE.read_text()}```" in guide


@pytest.mark.parametrize("path", CALLERS.values(), ids=CALLERS.keys())
def test_the_callers_pin_modelrun_and_grant_what_the_jobs_need(path: Path) -> None:
    example = yaml.safe_load(path.read_text())
    assert example["permissions"] == {}
    on = triggers(example)
    assert "pull_request_target" not in on
    assert on["pull_request"]["types"][-1] == "closed"
    called = {name: job["uses"].split("@")[0].rsplit("/", 1)[1] for name, job in example["jobs"].items()}
    assert called == {"run": "model-run.yaml", "cleanup": "model-cleanup.yaml"}
    for job in example["jobs"].values():
        assert PINNED.match(job["uses"]), job["uses"]
        assert job["permissions"] == {"id-token": "write", "contents": "read"}
    for ref, comment in uses_lines(path):
        assert VERSION_COMMENT.match(comment), ref


def test_the_condo_caller_passes_githubs_workflow_schema_and_its_dependabot_config_too() -> None:
    github = CONDO / ".github"
    for schema, path in (("vendor.github-workflows", CONDO_CALLER), ("vendor.dependabot", github / "dependabot.yml")):
        result = subprocess.run(
            [tool("check-jsonschema"), "--builtin-schema", schema, str(path)],
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == 0, result.stdout + result.stderr
    config = yaml.safe_load((github / "dependabot.yml").read_text())
    assert {(u["package-ecosystem"], u["directory"]) for u in config["updates"]} == {
        ("github-actions", "/"),
        ("docker", "/"),
    }


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
        if SELF_WORKFLOW.match(ref):
            continue  # a reusable workflow of this repository, at the calling workflow's commit
        assert PINNED.match(ref), f"{ref}: pin a full 40-hex commit SHA"
        assert VERSION_COMMENT.match(comment), f"{ref}: add the version as a trailing comment (# v1.2.3)"
    # the YAML agrees with the text (no uses: this scan missed)
    workflow = yaml.safe_load(path.read_text())
    in_yaml = [
        ref
        for job in workflow["jobs"].values()
        for ref in ([job["uses"]] if "uses" in job else [step["uses"] for step in job["steps"] if "uses" in step])
    ]
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


WORKFLOW_BUILD = ("--no-default-groups", "--group", "workflow-build")


def test_requirements_of_the_reusable_workflows_match_the_lock_file() -> None:
    """.github/workflow-requirements.txt is `make requirements`' export of uv.lock: the CLI's
    dependencies and its build backend, every one pinned with its hashes."""
    uv = ROOT / ".tools" / "bin" / "uv"
    if not uv.exists():
        pytest.fail("run `make setup` first: .tools/bin/uv is missing")
    exported = subprocess.run(
        [str(uv), "export", "--frozen", "--no-emit-project", "--no-header", "--quiet", *WORKFLOW_BUILD],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    committed = (ROOT / ".github" / "workflow-requirements.txt").read_text()
    assert exported == committed, "run `make requirements`"
    pins = re.findall(r"^([\w.-]+)==[^\n]* \\$", committed, re.M)
    assert {"boto3", "typer", "pydantic", "hatchling"} <= set(pins)
    assert len(re.findall(r"^[\w.-]+==", committed, re.M)) == len(pins), "every requirement carries hashes"


def test_the_callers_are_thin() -> None:
    """This repository's workflows call the reusable ones by path (the same commit), as a model
    repository calls them by tag or SHA: nothing of their own runs."""
    for caller, called in ((RUN_MODEL, "model-run.yaml"), (CLEANUP, "model-cleanup.yaml")):
        assert caller["permissions"] == {}
        (job,) = caller["jobs"].values()
        assert job["uses"] == f"$/.github/workflows/{called}"
        assert job["permissions"] == {"id-token": "write", "contents": "read"}
        assert "steps" not in job
    assert RUN_MODEL["jobs"]["model"]["with"] == {
        "context": "model_container",
        "compute": "${{ inputs.compute }}",
        "note": "${{ inputs.note }}",
        "variables": "${{ inputs.variables }}",
    }
    assert "with" not in CLEANUP["jobs"]["cleanup"]


def test_the_reusable_workflows_are_called_only() -> None:
    for workflow in (MODEL_RUN, MODEL_CLEANUP):
        assert set(triggers(workflow)) == {"workflow_call"}
    inputs = triggers(MODEL_RUN)["workflow_call"]["inputs"]
    assert set(inputs) == {
        "context",
        "dockerfile",
        "build-args",
        "target",
        "compute",
        "note",
        "variables",
        "approval-environment",
        "baseline-environment",
        "gate",
        "run-label",
    }
    assert all(spec["type"] == "string" and "required" not in spec for spec in inputs.values())
    assert inputs["context"]["default"] == "."
    assert set(triggers(MODEL_CLEANUP)["workflow_call"]["inputs"]) == {"approval-environment", "gate"}


def test_no_branch_name_is_written_into_a_workflow() -> None:
    """The default branch comes from the event (GitHub's), never from a name in a file."""
    for path in [*WORKFLOW_FILES, *CALLERS.values()]:
        text = path.read_text()
        assert "branches" not in json.dumps(triggers(yaml.safe_load(text))), path.name
        assert not re.search(r"refs/heads/(main|master)\b|['\"](main|master)['\"]|\[(main|master)\]", text), path.name
    gate_env = steps(MODEL_RUN["jobs"]["gate"])[0]["env"]
    assert gate_env["DEFAULT_BRANCH"] == "${{ github.event.repository.default_branch }}"
    assert MODEL_RUN["jobs"]["gate"]["if"] == (
        "github.event_name != 'push' || github.ref == format('refs/heads/{0}', github.event.repository.default_branch)"
    )


def test_run_model_triggers() -> None:
    on = triggers(RUN_MODEL)
    assert set(on) == {"push", "pull_request", "workflow_dispatch"}
    # every push to the default branch re-baselines (the gate skips the others)
    assert on["push"] is None
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
    assert triggers(CLEANUP) == {"pull_request": {"types": ["closed"]}}


def test_run_model_cancels_stale_builds_of_the_same_pull_request() -> None:
    concurrency = MODEL_RUN["concurrency"]
    assert concurrency["group"].startswith("modelrun-${{ github.event.pull_request.number || github.ref }}")
    assert concurrency["cancel-in-progress"] is True
    # each push to main has a group of its own: no merge's baseline run is cancelled by the next
    assert "github.event_name == 'push' && format('-{0}', github.sha)" in concurrency["group"]
    # closing the PR cancels a build in progress: the cleanup joins the same group
    assert MODEL_CLEANUP["concurrency"]["group"] == "modelrun-${{ github.event.pull_request.number }}"
    # the callers leave concurrency to the reusable workflows (the same group twice would deadlock)
    assert "concurrency" not in RUN_MODEL and "concurrency" not in CLEANUP


def test_run_model_gate_runs_first_and_holds_no_permissions() -> None:
    gate, run = MODEL_RUN["jobs"]["gate"], MODEL_RUN["jobs"]["run"]
    assert gate["permissions"] == {}
    assert "environment" not in gate
    assert run["needs"] == "gate"
    assert run["if"] == "needs.gate.outputs.run == 'true'"


def test_run_job_is_approved_by_the_environment_with_minimal_permissions() -> None:
    run = MODEL_RUN["jobs"]["run"]
    # The baseline environment only for the gate's default-branch runs, and never for a PR event.
    assert run["environment"] == (
        "${{ needs.gate.outputs.baseline == 'true' && github.event_name != 'pull_request' && "
        "needs.gate.outputs.baseline-environment || needs.gate.outputs.approval-environment }}"
    )
    assert run["permissions"] == {"id-token": "write", "contents": "read"}
    assert run["env"]["WRITE_CACHE"] == (
        "${{ needs.gate.outputs.baseline == 'true' && github.event_name != 'pull_request' && "
        "vars.MODELRUN_BASELINE_ROLE_ARN != '' }}"
    )
    assert run["env"]["HEAD_SHA"] == "${{ github.event.pull_request.head.sha || github.sha }}"
    assert run["env"]["COMPUTE"] == "${{ inputs.compute || 'cpu' }}"
    assert run["env"]["ECR_REPOSITORY"] == "${{ vars.MODELRUN_ECR_REPOSITORY }}"
    # the environment names: the input, else the repository variable, else the default
    env = steps(MODEL_RUN["jobs"]["gate"])[0]["env"]
    assert env["ENVIRONMENT"] == "${{ inputs.approval-environment || vars.MODELRUN_ENVIRONMENT || 'staging' }}"
    assert env["BASELINE_ENVIRONMENT"] == (
        "${{ inputs.baseline-environment || vars.MODELRUN_BASELINE_ENVIRONMENT || 'modelrun-main' }}"
    )
    assert env["GATE"] == "${{ inputs.gate || vars.MODELRUN_GATE || 'environment' }}"


def test_run_job_builds_the_pr_head_and_pushes_it_to_ecr() -> None:
    run = MODEL_RUN["jobs"]["run"]
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
    assert build["with"]["context"] == "caller/${{ inputs.context }}"
    assert build["with"]["file"] == "${{ inputs.dockerfile != '' && format('caller/{0}', inputs.dockerfile) || '' }}"
    assert build["with"]["target"] == "${{ inputs.target }}"
    assert build["with"]["push"] is True
    # the caller's arguments, then modelrun's COMPUTE (the last of a name wins)
    assert build["with"]["build-args"] == "${{ inputs.build-args }}\nCOMPUTE=${{ env.COMPUTE }}\n"
    assert build["with"]["tags"] == "${{ steps.image.outputs.tag }}"
    assert build["with"]["cache-from"] == "type=registry,ref=${{ steps.image.outputs.cache }}"
    assert build["with"]["cache-to"] == "${{ steps.image.outputs.cache-to }}"


def test_run_job_ends_by_enqueueing_the_digest_pinned_image() -> None:
    run_steps = steps(MODEL_RUN["jobs"]["run"])
    last = run_steps[-1]
    assert last["run"].startswith("modelrun enqueue ")
    assert '--image "$IMAGE"' in last["run"]
    assert last["env"]["IMAGE"] == "${{ steps.image.outputs.repository }}@${{ steps.build.outputs.digest }}"
    assert last["env"]["MODELRUN_QUEUE_URL"] == "${{ vars.MODELRUN_QUEUE_URL }}"
    assert last["env"]["NOTE"] == "${{ inputs.note }}"
    python = next(step for step in run_steps if str(step.get("uses", "")).startswith("actions/setup-python@"))
    assert python["with"]["python-version"] == "3.12"


def test_cleanup_workflow_sends_the_cleanup_request() -> None:
    job = MODEL_CLEANUP["jobs"]["cleanup"]
    assert job["permissions"] == {"id-token": "write", "contents": "read"}
    assert "github.event.pull_request.head.repo.full_name == github.repository" in job["if"]
    assert "github.event.action == 'closed'" in job["if"]
    assert "!= 'dispatch-only'" in job["if"]
    assert job["environment"] == "${{ inputs.approval-environment || vars.MODELRUN_ENVIRONMENT || 'staging' }}"
    aws = uses(job, "aws-actions/configure-aws-credentials")
    assert aws["with"]["role-to-assume"] == "${{ vars.MODELRUN_ROLE_ARN }}"
    assert steps(job)[-1]["run"] == "modelrun enqueue --cleanup"
    # modelrun's own commit sends it; the closed PR's code is not even checked out
    (checkout,) = [s for s in steps(job) if s.get("uses", "").startswith("actions/checkout@")]
    assert checkout["with"]["path"] == "modelrun"


def test_both_reusable_workflows_install_modelrun_the_same_way() -> None:
    run, cleanup = MODEL_RUN["jobs"]["run"], MODEL_CLEANUP["jobs"]["cleanup"]
    for step_id in ("modelrun",):
        assert step(run, step_id) == step(cleanup, step_id)
    for name in ("Check out modelrun at its own commit", "Set up Python", "Install modelrun"):
        assert next(s for s in steps(run) if s["name"] == name) == next(s for s in steps(cleanup) if s["name"] == name)


def test_codeowners_cover_the_model_and_the_workflows() -> None:
    owners = (ROOT / ".github" / "CODEOWNERS").read_text()
    assert "/model_container/ " in owners
    assert "/.github/ " in owners


# --- no credentialed step runs the caller's code ------------------------------------------------

# The actions a credentialed job may use (all pinned, all GitHub's, AWS's or Docker's). No local
# action: inside a reusable workflow `./` is the caller's workspace.
TRUSTED_ACTIONS = {
    "actions/checkout",
    "actions/setup-python",
    "aws-actions/configure-aws-credentials",
    "aws-actions/amazon-ecr-login",
    "docker/setup-buildx-action",
    "docker/build-push-action",
}
OWN_CHECKOUT = {
    "repository": "${{ steps.modelrun.outputs.repository }}",
    "ref": "${{ steps.modelrun.outputs.sha }}",
    "path": "modelrun",
    "persist-credentials": False,
}
CALLER_PATH = re.compile(r"(?<![\w-])caller(?![\w-])")
PIP_INSTALL = re.compile(r"pip install((?:\\\n|[^\n])*)")
# The two installs there are: the hashed dependencies, and modelrun's own checkout, offline.
ALLOWED_INSTALLS = (
    re.compile(r"^(?=.*--require-hashes)(?=.*--only-binary :all:).* -r modelrun/\.github/workflow-requirements\.txt$"),
    re.compile(r"^(?=.*--no-deps)(?=.*--no-index)(?=.*--no-build-isolation).* \./modelrun$"),
)


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)
    elif isinstance(value, str):
        yield value


def caller_code_problems(workflow: dict[str, Any]) -> list[str]:
    """What in the credentialed jobs (id-token: write: the AWS role) could run the caller's code:
    a local or unknown action, a checkout of anything but modelrun's own commit or the caller's
    commit as a build context, a step that reads the caller's checkout other than the image
    build, an install of anything but the hashed lock file and modelrun's checkout, a Python
    started without -I (the current directory on sys.path), an expression in a script."""
    problems: list[str] = []
    for name, job in workflow["jobs"].items():
        if job.get("permissions", {}).get("id-token") != "write":
            continue
        checkouts = [s for s in job["steps"] if str(s.get("uses", "")).startswith("actions/checkout@")]
        own = [s for s in checkouts if "repository" in s.get("with", {})]
        if [s.get("with") for s in own] != [OWN_CHECKOUT]:
            problems.append(f"{name}: check out modelrun once, at its own commit: {OWN_CHECKOUT}")
        for position, s in enumerate(job["steps"]):
            label = f"{name}/{s.get('name', position)}"
            ref = str(s.get("uses", ""))
            if ref and ref.split("@")[0] not in TRUSTED_ACTIONS:
                problems.append(f"{label}: uses {ref}, not one of the trusted actions")
            if s in checkouts and s not in own:
                if s.get("with", {}).get("path") != "caller" or s["with"].get("persist-credentials") is not False:
                    problems.append(f"{label}: the caller's commit goes to caller/, without credentials")
                continue
            if ref.startswith("docker/build-push-action@"):
                context, dockerfile = s["with"]["context"], s["with"].get("file", "")
                if not context.startswith("caller/") or (dockerfile and "format('caller/{0}'" not in dockerfile):
                    problems.append(f"{label}: the build context and Dockerfile come from caller/")
                rest = {k: v for k, v in s["with"].items() if k not in ("context", "file")}
            else:
                rest = s
            if any(CALLER_PATH.search(text) for text in _strings({k: v for k, v in rest.items() if k != "name"})):
                problems.append(f"{label}: reads the caller's checkout")
            script = s.get("run", "")
            if "${{" in script:
                problems.append(f"{label}: an expression in a script (pass it through env)")
            for install in PIP_INSTALL.findall(script):
                command = " ".join(install.replace("\\\n", " ").split())
                if not any(allowed.match(command) for allowed in ALLOWED_INSTALLS):
                    problems.append(f"{label}: installs {command!r}")
            for launch in re.findall(r"\bpython3?\"?( +\S+)?", script):
                if launch.strip() != "-I":
                    problems.append(f"{label}: starts Python without -I")
            if re.search(r"\b(make|npm|uv|pytest|source|bash|sh)\b|\./", script.replace("./modelrun", "")):
                problems.append(f"{label}: runs a build tool or a script from a checkout")
    return problems


@pytest.mark.parametrize("name", REUSABLE)
def test_no_credentialed_step_runs_or_installs_the_callers_code(name: str) -> None:
    assert caller_code_problems(load(name)) == []


def test_the_credentialed_steps_take_modelruns_commit_from_github() -> None:
    find = step(MODEL_RUN["jobs"]["run"], "modelrun")
    assert find["env"] == {
        "WORKFLOW_REPOSITORY": "${{ job.workflow_repository }}",
        "WORKFLOW_SHA": "${{ job.workflow_sha }}",
    }
    names = [s.get("name") for s in steps(MODEL_RUN["jobs"]["run"])]
    # modelrun's checkout before anything of the caller's lands in the workspace
    assert names.index("Check out modelrun at its own commit") < names.index("Check out the commit to run")
    assert names.index("Check out the commit to run") < names.index("Get AWS credentials (OIDC)")


def _mutated(change: str) -> dict[str, Any]:
    workflow: dict[str, Any] = load("model-run.yaml")
    run_steps = workflow["jobs"]["run"]["steps"]
    install = next(s for s in run_steps if s.get("name") == "Install modelrun")
    checkout = next(s for s in run_steps if s.get("with", {}).get("path") == "caller")
    if change == "pip install .":
        install["run"] = "python -I -m pip install ."
    elif change == "a requirements file of the caller":
        install["run"] = "python -I -m pip install --require-hashes -r caller/requirements.txt"
    elif change == "a local action":
        run_steps.insert(0, {"uses": "./.github/actions/setup"})
    elif change == "a script in the caller's checkout":
        run_steps[-1]["run"] = "bash caller/enqueue.sh"
    elif change == "the caller's path in env":
        run_steps[-1]["env"]["PYTHONPATH"] = "caller"
    elif change == "python without -I":
        install["run"] = (
            "python -m pip install --require-hashes --only-binary :all: -r modelrun/.github/workflow-requirements.txt"
        )
    elif change == "modelrun from the caller's ref":
        next(s for s in run_steps if s.get("with", {}).get("path") == "modelrun")["with"]["ref"] = "${{ github.sha }}"
    elif change == "the caller's checkout at the root":
        del checkout["with"]["path"]
    elif change == "an expression in a script":
        run_steps[-1]["run"] = "modelrun enqueue --note '${{ inputs.note }}'"
    elif change == "make in the workspace":
        run_steps[-1]["run"] = "make -C modelrun enqueue"
    return workflow


@pytest.mark.parametrize(
    "change",
    [
        "pip install .",
        "a requirements file of the caller",
        "a local action",
        "a script in the caller's checkout",
        "the caller's path in env",
        "python without -I",
        "modelrun from the caller's ref",
        "the caller's checkout at the root",
        "an expression in a script",
        "make in the workspace",
    ],
)
def test_the_checker_catches_caller_code_in_a_credentialed_job(change: str) -> None:
    assert caller_code_problems(_mutated(change)), change


# --- the self-location step's script, run for real ------------------------------------------------

FIND_STEP = step(MODEL_RUN["jobs"]["run"], "modelrun")
MODELRUN_SHA = "89abcdef0123456789abcdef0123456789abcdef"


def find_modelrun(tmp_path: Path, **env: str) -> tuple[int, dict[str, str], str]:
    script = tmp_path / "find.sh"
    script.write_text(FIND_STEP["run"])
    output = tmp_path / "find-output"
    output.write_text("")
    result = subprocess.run(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script)],
        env={"PATH": os.environ["PATH"], "GITHUB_OUTPUT": str(output), **env},
        capture_output=True,
        text=True,
        check=False,
    )
    outputs = dict(line.split("=", 1) for line in output.read_text().splitlines())
    return result.returncode, outputs, result.stdout + result.stderr


def test_modelrun_is_found_from_the_job_context(tmp_path: Path) -> None:
    assert "${{" not in FIND_STEP["run"]
    rc, outputs, log = find_modelrun(tmp_path, WORKFLOW_REPOSITORY="your-org/modelrun", WORKFLOW_SHA=MODELRUN_SHA)
    assert rc == 0, log
    assert outputs == {"repository": "your-org/modelrun", "sha": MODELRUN_SHA}


class _TokenServer(BaseHTTPRequestHandler):
    requests: ClassVar[list[tuple[str, str | None]]] = []
    token = ""

    def do_GET(self) -> None:
        _TokenServer.requests.append((self.path, self.headers.get("Authorization")))
        body = json.dumps({"value": _TokenServer.token}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


def _unsigned_jwt(claims: dict[str, Any]) -> str:
    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")

    return f"{part({'alg': 'RS256'})}.{part(claims)}.c2ln"


def test_modelrun_is_found_from_the_oidc_token_where_the_job_context_lacks_it(tmp_path: Path) -> None:
    """GitHub Enterprise Server has no job.workflow_*: the token's job_workflow_ref/_sha say it."""
    _TokenServer.requests = []
    _TokenServer.token = _unsigned_jwt(
        {
            "job_workflow_ref": "octo-platform/modelrun/.github/workflows/model-run.yaml@refs/tags/v1",
            "job_workflow_sha": MODELRUN_SHA,
            "repository": "octo-org/condo-avm",
        }
    )
    server = HTTPServer(("127.0.0.1", 0), _TokenServer)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        rc, outputs, log = find_modelrun(
            tmp_path,
            WORKFLOW_REPOSITORY="",
            WORKFLOW_SHA="",
            ACTIONS_ID_TOKEN_REQUEST_URL=f"http://127.0.0.1:{server.server_port}/token?api-version=2.0",
            ACTIONS_ID_TOKEN_REQUEST_TOKEN="runtime-token",
        )
    finally:
        server.shutdown()
    assert rc == 0, log
    assert outputs == {"repository": "octo-platform/modelrun", "sha": MODELRUN_SHA}
    ((path, authorization),) = _TokenServer.requests
    assert authorization == "Bearer runtime-token"
    assert urllib.parse.parse_qs(urllib.parse.urlsplit(path).query)["audience"] == ["modelrun-workflow"]


@pytest.mark.parametrize(
    ("repository", "sha"),
    [("your-org/modelrun", "v1"), ("your-org/modelrun; rm -rf /", MODELRUN_SHA), ("", "")],
)
def test_an_unknown_modelrun_commit_fails_the_job(tmp_path: Path, repository: str, sha: str) -> None:
    # ("", ""): no job context and no token endpoint: the token request fails.
    rc, outputs, log = find_modelrun(tmp_path, WORKFLOW_REPOSITORY=repository, WORKFLOW_SHA=sha)
    assert rc != 0
    assert outputs == {}
    assert "Cannot tell which commit of modelrun this is" in log


# --- the image step's script, run for real -------------------------------------------------------

IMAGE_STEP = step(MODEL_RUN["jobs"]["run"], "image")
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
            "ECR_REPOSITORY": "modelrun-models/octo-org/avm",
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
    assert out["repository"] == f"{registry}/modelrun-models/octo-org/avm"
    assert re.fullmatch(rf"{registry}/modelrun-models/octo-org/avm:{SHA}-4242-1-[0-9a-f]{{12}}", out["tag"]), out["tag"]
    # Without the variable: the repository stack's default name, in lower case.
    unset = name_image(tmp_path, ECR_REPOSITORY="", GITHUB_REPOSITORY="Octo-Org/Condo-AVM")
    assert unset["repository"] == f"{registry}/modelrun-models/octo-org/condo-avm"
    # a re-run of the same commit pushes a new tag; so does the GPU build
    assert re.search(rf":{SHA}-4242-2-[0-9a-f]{{12}}$", name_image(tmp_path, GITHUB_RUN_ATTEMPT="2")["tag"])
    assert re.search(rf":{SHA}-gpu-4242-1-[0-9a-f]{{12}}$", name_image(tmp_path, COMPUTE="gpu")["tag"])
    # unpredictable (issue 21): nobody can push this build's tag first and make its push fail
    assert name_image(tmp_path)["tag"] != out["tag"]
    # and what the backend reads as "built by this run" (naming.built_by_run), for CPU and GPU
    from modelrun.domain.naming import built_by_run

    assert built_by_run(out["tag"].rsplit(":", 1)[1], SHA, 4242, 1)
    assert built_by_run(name_image(tmp_path, COMPUTE="gpu")["tag"].rsplit(":", 1)[1], SHA, 4242, 1)
    assert not built_by_run(out["tag"].rsplit(":", 1)[1], SHA, 4242, 2)


def test_only_the_default_branch_writes_the_layer_cache(tmp_path: Path) -> None:
    registry = "123456789012.dkr.ecr.eu-west-1.amazonaws.com"
    cache = f"{registry}/modelrun-models/octo-org/avm/cache:buildcache-cpu"
    pr = name_image(tmp_path)
    assert pr["cache"] == cache  # read by every run, from the cache repository
    assert pr["cache-to"] == ""  # written by none but the default branch's
    baseline = name_image(tmp_path, WRITE_CACHE="true")
    assert baseline["cache-to"] == (
        f"type=registry,ref={cache},mode=max,image-manifest=true,oci-mediatypes=true,ignore-error=true"
    )
    # one stack serves several model repositories: each has its own cache repository (issue 21)
    other = name_image(tmp_path, ECR_REPOSITORY="modelrun-models/octo-org/condo-avm", COMPUTE="gpu")
    assert other["cache"] == f"{registry}/modelrun-models/octo-org/condo-avm/cache:buildcache-gpu"


# --- the gate's script, run for real ------------------------------------------------------------

GATE_STEP = steps(MODEL_RUN["jobs"]["gate"])[0]
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
    "BASE_REF": "main",
    "DEFAULT_BRANCH": "main",
}
PUSH = {"EVENT_NAME": "push", "ACTION": "", "REF": "refs/heads/main", "PR_NUMBER": "", "HEAD_REPO": "", "DRAFT": ""}
DISPATCH = {"EVENT_NAME": "workflow_dispatch", "ACTION": "", "PR_NUMBER": "", "HEAD_REPO": "", "DRAFT": ""}
PUSH["BASE_REF"] = DISPATCH["BASE_REF"] = ""


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
    if outputs:
        # the run job's environment names: the resolved inputs, whatever the event
        given = {**PR, **env}
        assert outputs.pop("approval-environment") == given["ENVIRONMENT"]
        assert outputs.pop("baseline-environment") == given["BASELINE_ENVIRONMENT"]
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
    # runs compare with the default branch: a PR into another branch has no baseline
    ({"BASE_REF": "release"}, False, "targets release: only pull requests into the default branch (main)"),
    ({"BASE_REF": "trunk", "DEFAULT_BRANCH": "trunk"}, True, ""),
    ({"DEFAULT_BRANCH": ""}, False, "only pull requests into the default branch"),
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
    assert "The gate is 'labels'" in stdout
    assert outputs == {}


def test_gate_fails_fast_when_the_stack_outputs_are_not_configured(tmp_path: Path) -> None:
    rc, _, _, stdout = gate(tmp_path, QUEUE_URL="", ROLE_ARN="")
    assert rc != 0
    assert "Set the repository variables MODELRUN_ROLE_ARN MODELRUN_QUEUE_URL" in stdout
    # a skipped event needs no configuration
    rc, outputs, _, _ = gate(tmp_path, QUEUE_URL="", DRAFT="true")
    assert (rc, outputs) == (0, {"run": "false", "baseline": "false"})
