"""Each function's settings model holds only what its template.yaml entry sets, converts it,
and fails the function's init naming a variable that is missing or malformed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from modelrun.config import CollectResultsSettings, SubmitSettings, TrackSettings, UpdatePullRequestSettings
from modelrun.errors import SettingsInvalid
from modelrun_local.stack import load_template, translate
from tests.unit.fakes import ENVIRONMENT

ROOT = Path(__file__).resolve().parents[2]
MODELS: dict[str, tuple[str, Any]] = {
    "SubmitFunction": ("submit.app", SubmitSettings),
    "TrackFunction": ("track.app", TrackSettings),
    "CollectResultsFunction": ("report.collect_results", CollectResultsSettings),
    "UpdatePullRequestFunction": ("report.update_pull_request", UpdatePullRequestSettings),
}
LAMBDA_SETS = {"AWS_REGION"}  # Lambda's own variables, in every function's environment


@pytest.fixture(scope="module")
def functions() -> dict[str, dict[str, Any]]:
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    resources = translate(load_template())["Resources"]
    return {k: resources[k]["Properties"] for k in MODELS}


def variables(model: Any) -> set[str]:
    return {f.alias for f in model.model_fields.values()}


@pytest.mark.parametrize("function", MODELS)
def test_each_model_reads_only_what_its_template_entry_sets(
    functions: dict[str, dict[str, Any]], function: str
) -> None:
    handler, model = MODELS[function]
    assert functions[function]["Handler"] == f"{handler}.handler"
    template = set(functions[function]["Environment"]["Variables"]) | LAMBDA_SETS
    assert variables(model) <= template, variables(model) - template


def test_no_function_gets_another_functions_settings() -> None:
    assert "CPU_JOB_QUEUE" not in variables(TrackSettings)
    assert "GITHUB_SECRET_ARN" not in variables(CollectResultsSettings)  # it never calls GitHub
    assert "REPORT_STATE_MACHINE_ARN" not in variables(SubmitSettings)


@pytest.mark.parametrize("model", [m for _, m in MODELS.values()])
def test_a_missing_variable_is_named(model: Any) -> None:
    for name in variables(model):
        with pytest.raises(SettingsInvalid, match=f"{name}: Field required"):
            model.from_environ({k: v for k, v in ENVIRONMENT.items() if k != name})


def test_values_are_converted_as_the_template_writes_them() -> None:
    s = SubmitSettings.from_environ(
        ENVIRONMENT | {"ALLOWED_REPOSITORIES": "County-Assessor/AVM, other/repo ,", "SUPERSEDE_OLDER_RUNS": "false"}
    )
    assert s.allowed_repositories == {"county-assessor/avm", "other/repo"}
    assert s.gpu_instance_types == ("g4dn.xlarge", "g4dn.2xlarge", "g5.xlarge", "g5.2xlarge")
    assert s.github_api_url == "https://api.github.com"  # no trailing slash
    assert s.supersede_older_runs is False and s.default_vcpus == 2.0 and s.gpu_max_vcpus == 32


@pytest.mark.parametrize(
    ("name", "value"),
    [("JOB_TIMEOUT_SECONDS", "four hours"), ("DEFAULT_VCPUS", "0"), ("SUPERSEDE_OLDER_RUNS", "maybe")],
)
def test_a_malformed_value_is_named(name: str, value: str) -> None:
    with pytest.raises(SettingsInvalid, match=name):
        SubmitSettings.from_environ(ENVIRONMENT | {name: value})


def import_handlers(*environs: dict[str, str]) -> list[dict[str, str]]:
    """Each handler imported in a fresh interpreter with each of ``environs`` alone: what came of
    it. The interpreters run side by side (each is a second's imports)."""
    code = (
        "import importlib, json, sys\n"
        "out = {}\n"
        f"for module in {[h for h, _ in MODELS.values()]!r}:\n"
        "    try:\n"
        "        importlib.import_module(module)\n"
        "        out[module] = 'imported'\n"
        "    except Exception as error:\n"
        "        out[module] = f'{type(error).__name__}: {error}'\n"
        "print(json.dumps(out))\n"
    )
    # As Lambda runs it: its own variables (AWS_DEFAULT_REGION, for boto3) and the package on the path.
    lambda_env = {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": str(ROOT / "functions"),
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    started = [
        subprocess.Popen([sys.executable, "-c", code], env=environ | lambda_env, stdout=subprocess.PIPE, text=True)
        for environ in environs
    ]
    outcomes: list[dict[str, str]] = []
    for process in started:
        stdout, _ = process.communicate()
        assert process.returncode == 0
        outcomes.append(json.loads(stdout))
    return outcomes


def test_a_handler_without_its_variables_fails_at_init_naming_them() -> None:
    """Lambda imports the handler at init: that import is where a missing variable surfaces."""
    complete, without_table = import_handlers(ENVIRONMENT, {k: v for k, v in ENVIRONMENT.items() if k != "RUNS_TABLE"})
    assert set(complete.values()) == {"imported"}
    assert len(without_table) == len(MODELS)
    for module, outcome in without_table.items():
        assert outcome.startswith("SettingsInvalid: ") and "RUNS_TABLE: Field required" in outcome, (module, outcome)
