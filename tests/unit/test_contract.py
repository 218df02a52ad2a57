"""The run-request contract: the committed JSON Schema is generated from the model, and every
malformed request is rejected by the submit handler with a reason that names the field."""

from __future__ import annotations

import copy
import dataclasses
import importlib
import json
import os
import re
from pathlib import Path
from typing import Any
from unittest import mock

import jsonschema  # type: ignore[import-untyped]  # ships no type hints (types-jsonschema is not a dependency)
import pytest
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from modelrun import contracts
from modelrun.config import SubmitSettings
from modelrun.contracts import MESSAGE, SCHEMA_PATH, RunRequest, render_schema
from tests.unit.fakes import ENVIRONMENT, FakeGate

# The handler reads its settings when it is imported (Lambda's init): import it in the
# function's environment, then give the environment back.
with mock.patch.dict(os.environ, ENVIRONMENT):
    submit_app = importlib.import_module("submit.app")

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"

VALID: dict[str, Any] = {
    "schema_version": "1",
    "kind": "run",
    "repository": "county-assessor/avm",
    "pr_number": 42,
    "head_sha": "1a2b3c4d" + "e" * 32,
    "head_ref": "feature/deeper-trees",
    "base_ref": "main",
    "image": "111122223333.dkr.ecr.us-east-1.amazonaws.com/modelrun-model@sha256:" + "ab" * 32,
    "compute": "cpu",
    "resources": {"vcpus": 2, "memory_mib": 8192},
    "command": ["python", "-m", "avm"],
    "note": "try a deeper tree",
    "triggered_by": "octocat",
    "event": "pull_request",
    "workflow": {"run_id": 9000002, "run_attempt": 1},
    # A compact JWS as GitHub's token endpoint returns it (its signature is the backend's concern).
    "identity": {"oidc_token": "eyJhbGciOiJSUzI1NiJ9.eyJhdWQiOiJ4In0.c2lnbmF0dXJl"},
}
REQUIRED = [
    *sorted(name for name, field in RunRequest.model_fields.items() if field.is_required()),
    "workflow.run_id",
    "workflow.run_attempt",
    "identity.oidc_token",
]

# Values each field must refuse. The contract is strict: "42" for an int, 3.0 or true are refused.
INVALID: dict[str, list[Any]] = {
    "schema_version": ["2", "v1", 1, None, ""],
    "kind": ["walk", "Run", None, 5, "rerun"],
    "repository": [
        "noslash",
        "a/b/c",
        "",
        5,
        None,
        "o" * 40 + "/r",
        "own er/repo",
        ["a/b"],
        "own_er/repo",
        "-owner/repo",
        "owner/..",
        "owner/.",
        "../etc",
        "owner/repo\n",
    ],
    "pr_number": [0, -1, "abc", 1.5, [1], {"n": 1}, "42", 42.0, True, 2**31],
    "head_sha": ["ABCDEF" + "0" * 34, "abc", "0" * 41, "g" * 40, 123, None, "0" * 39 + " ", "0" * 40 + "\n"],
    "head_ref": ["", "a\nb", "tab\there", "x" * 256, 5, None, ["main"], "main\u202e", "ma\u200bin", "\x85"],
    "base_ref": ["", "a\rb", "\x7f", "x" * 256, 5, None, "\u2066main"],
    "image": [
        "repo:latest",
        "111122223333.dkr.ecr.us-east-1.amazonaws.com/modelrun-model:abc",
        "111122223333.dkr.ecr.us-east-1.amazonaws.com/modelrun-model@sha256:abc",
        "111122223333.dkr.ecr.us-east-1.amazonaws.com/modelrun-model@sha256:" + "AB" * 32,
        "modelrun-model@sha256:" + "ab" * 32,
        "",
        5,
        None,
    ],
    "compute": ["tpu", "CPU", 5, None, ""],
    "resources": [
        {"vcpus": 0},
        {"vcpus": 200},
        {"memory_mib": 1},
        {"gpus": 9},
        {"gpus": -1},
        {"cores": 2},
        "big",
        [2],
    ],
    "command": ["python -m avm", [1, 2], ["x" * 1025], ["a"] * 65, {"cmd": "x"}, ["rm", "\x1b[2J"]],
    "note": ["x" * 1001, 5, ["a"], {"n": "x"}, "a\x00b", "\u202egnp.exe", "\x1b[31mred"],
    "triggered_by": ["", "x" * 40, None, 5, "oct cat", "-octocat", "octocat-", "octo/cat", "octocat\n", "bot[bot"],
    "event": ["pull_request_target", "release", "Push", None, 3],
    "workflow": ["https://github.com", None, 5, []],
    "workflow.run_id": [0, -5, "abc", None, 1.5, "9000002", 2**53, True],
    "workflow.run_attempt": [0, 101, "first", None, "1", 1.0, True],
    "identity": ["eyJ.eyJ.sig", 5, [], {"token": "x"}],
    "identity.oidc_token": [
        "",
        "short.a.b",
        "x" * 40,
        "eyJhbGciOiJSUzI1NiJ9.eyJhdWQiOiJ4In0",
        "eyJhbGciOiJSUzI1NiJ9.eyJhdWQiOiJ4In0.c2ln bmF0dXJl",
        "eyJhbGciOiJSUzI1NiJ9.eyJhdWQiOiJ4In0.c2lnbmF0dXJl\n",
        "a.b." + "c" * 8192,
        5,
        None,
    ],
}


def _set(request: dict[str, Any], path: str, value: Any) -> None:
    *parents, leaf = path.split(".")
    target = request
    for parent in parents:
        target = target[parent]
    target[leaf] = value


def _drop(request: dict[str, Any], path: str) -> None:
    *parents, leaf = path.split(".")
    target = request
    for parent in parents:
        target = target[parent]
    del target[leaf]


mutations = st.one_of(
    st.tuples(st.just("drop"), st.sampled_from(REQUIRED), st.none()),
    st.sampled_from(sorted(INVALID)).flatmap(
        lambda field: st.tuples(st.just("set"), st.just(field), st.sampled_from(INVALID[field]))
    ),
    st.tuples(
        st.just("unknown"),
        st.from_regex(r"[a-z][a-z_]{0,20}", fullmatch=True).filter(lambda k: k not in RunRequest.model_fields),
        st.one_of(st.integers(), st.text(max_size=5), st.none()),
    ),
    st.tuples(
        st.just("unknown"),
        st.sampled_from(["workflow.attempt", "workflow.url", "resources.cores", "identity.token"]),
        st.integers(),
    ),
)


def mutate(kind: str, path: str, value: Any) -> dict[str, Any]:
    request = copy.deepcopy(VALID)
    if kind == "drop":
        _drop(request, path)
    else:
        _set(request, path, value)
    return request


def expected_field(kind: str, path: str, value: Any) -> str:
    if kind == "set" and path in ("resources", "identity") and isinstance(value, dict):
        return f"{path}.{next(iter(value))}"
    if kind == "set" and path == "command" and isinstance(value, list) and len(value) <= 64:
        return "command"  # the item index follows it: command.0
    return path


# What the template gives the submit function (the handler reads its settings for every record:
# which queue a record came from decides which messages it accepts).
FUNCTION_ENVIRONMENT = {
    "RUNS_TABLE": "runs",
    "RESULTS_BUCKET": "results",
    "GITHUB_SECRET_ARN": "arn:aws:secretsmanager:us-east-1:111122223333:secret:github",
    "OPERATOR_QUEUE_ARN": "arn:aws:sqs:us-east-1:111122223333:modelrun-operator-requests",
}


def reason_for(body: str, source_arn: str | None = None) -> str:
    """What the submit handler does with one SQS record of this body: the reason it rejects it."""
    event = json.loads((FIXTURES / "sqs" / "receive-message.json").read_text())
    raw = event["Records"][0] | {"body": body}
    if source_arn:
        raw["eventSourceARN"] = source_arn
    reasons: list[str] = []
    with (
        mock.patch.object(submit_app, "SETTINGS", SubmitSettings.from_environ(ENVIRONMENT | FUNCTION_ENVIRONMENT)),
        mock.patch.object(submit_app, "reject", side_effect=lambda record, reason: reasons.append(reason)),
        mock.patch.object(submit_app, "DEPS", dataclasses.replace(submit_app.DEPS, gate=FakeGate())),
        mock.patch.object(submit_app.submission, "submit", side_effect=AssertionError("accepted")),
        mock.patch.object(submit_app.submission, "cleanup", side_effect=AssertionError("accepted")),
        mock.patch.object(submit_app.submission, "rerun", side_effect=AssertionError("accepted")),
    ):
        submit_app.record_handler(SQSRecord(raw))
    assert len(reasons) == 1
    return reasons[0]


# -- the schema ---------------------------------------------------------------------------------
def test_committed_schema_is_generated_from_the_model() -> None:
    assert SCHEMA_PATH.read_text() == render_schema(), (
        "functions/modelrun/schemas/run-request.v1.schema.json is stale: run `python -m modelrun.contracts`"
    )


def test_schema_is_valid_and_agrees_with_the_model() -> None:
    schema = json.loads(SCHEMA_PATH.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    assert not list(validator.iter_errors(VALID))
    for bad in (mutate("drop", "head_sha", None), mutate("unknown", "extra", 1), mutate("set", "compute", "tpu")):
        assert list(validator.iter_errors(bad))
    assert contracts.SCHEMA_VERSION == "1"


def test_valid_request_is_accepted() -> None:
    message = MESSAGE.validate_json(json.dumps(VALID))
    assert isinstance(message, RunRequest) and message.head_sha == VALID["head_sha"]
    minimal = {k: v for k, v in VALID.items() if k not in ("resources", "command", "note", "compute", "pr_number")}
    assert MESSAGE.validate_python(minimal).pr_number is None


# -- malformed requests: each rejected, with a reason naming the field -----------------------------
examples: list[tuple[str, str, Any]] = []


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutations)
def _each_mutation_is_rejected_naming_the_field(mutation: tuple[str, str, Any]) -> None:
    kind, path, value = mutation
    examples.append(mutation)
    body = json.dumps(mutate(kind, path, value))
    with pytest.raises(ValidationError) as info:
        MESSAGE.validate_json(body)
    described = submit_app.describe(info.value)
    assert described.startswith("invalid run request: ")
    field = expected_field(kind, path, value)
    if path == "kind":
        assert re.search(r"\bkind\b", described), described
    else:
        assert re.search(rf"(?:^|[ .;])(?:run\.)?{re.escape(field)}(?:[.:]|$)", described) or (
            f"run.{field}" in described
        ), (mutation, described)


def test_at_least_200_malformed_requests_are_rejected_with_the_field_named() -> None:
    examples.clear()
    _each_mutation_is_rejected_naming_the_field()
    assert len(examples) >= 200, len(examples)
    kinds = {kind for kind, _, _ in examples}
    assert kinds == {"drop", "set", "unknown"}


@pytest.mark.parametrize("field", REQUIRED)
def test_the_handler_rejects_a_missing_field_by_name(field: str) -> None:
    reason = reason_for(json.dumps(mutate("drop", field, None)))
    assert reason.startswith("invalid run request: ")
    assert field in reason


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("image", "repo:latest"),
        ("image", "111122223333.dkr.ecr.us-east-1.amazonaws.com/m:v1"),
        ("head_sha", "HEAD"),
        ("schema_version", "2"),
        ("compute", "tpu"),
        ("workflow.run_attempt", 0),
    ],
)
def test_the_handler_rejects_bad_values_by_name(path: str, value: Any) -> None:
    reason = reason_for(json.dumps(mutate("set", path, value)))
    assert f"run.{path}:" in reason, reason
    if path == "image":
        assert "pinned by digest" in reason


def test_the_handler_rejects_unknown_fields_and_non_json() -> None:
    assert "run.priority: Extra inputs are not permitted" in reason_for(json.dumps(VALID | {"priority": "high"}))
    assert reason_for("not json at all").startswith("invalid run request: ")
    assert "kind" in reason_for(json.dumps({k: v for k, v in VALID.items() if k != "kind"}))


def test_a_valid_request_without_evidence_is_refused_unverified() -> None:
    # Well formed, but nothing proves who sent it: refused before any lookup (submit is never called).
    body = {k: v for k, v in VALID.items() if k != "identity"}
    assert MESSAGE.validate_python(body).identity is None  # the contract allows it; the backend does not
    reason = reason_for(json.dumps(body))
    assert reason.startswith("unverified: identity:"), reason
    cleanup = {
        "schema_version": "1",
        "kind": "cleanup",
        "repository": VALID["repository"],
        "pr_number": 42,
        "triggered_by": "octocat",
        "workflow": VALID["workflow"],
    }
    assert reason_for(json.dumps(cleanup)).startswith("unverified: identity:")


def test_a_workflow_url_is_no_longer_part_of_the_contract() -> None:
    # Links are built by the backend from verified ids: a URL from the request is refused.
    body = copy.deepcopy(VALID)
    body["workflow"]["url"] = "https://evil.example/actions/runs/1"
    assert "run.workflow.url: Extra inputs are not permitted" in reason_for(json.dumps(body))


RERUN = {"schema_version": "1", "kind": "rerun", "run_id": "avm-pr42-1a2b3c4d-9000002-1-abc123", "attempt": 2}


def test_a_rerun_is_accepted_only_from_the_operator_queue() -> None:
    body = json.dumps(RERUN | {"requested_by": "ops"})
    # On the run-requests queue (the workflow's role can send there) a rerun is not a message kind.
    assert "kind" in reason_for(body)
    assert reason_for(body).startswith("invalid run request: ")
    # On the operator queue it is handed to submission.rerun (patched to refuse here).
    with pytest.raises(AssertionError, match="accepted"):
        reason_for(body, source_arn=FUNCTION_ENVIRONMENT["OPERATOR_QUEUE_ARN"])
    for bad in ({"attempt": 1}, {"attempt": 101}, {"attempt": "2"}, {"run_id": "../x"}, {"requested_by": "a\x1bb"}):
        reason = reason_for(
            json.dumps(RERUN | {"requested_by": "ops"} | bad), FUNCTION_ENVIRONMENT["OPERATOR_QUEUE_ARN"]
        )
        assert reason.startswith("invalid run request: rerun."), reason


def test_describe_needs_no_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("RUNS_TABLE", "RESULTS_BUCKET", "GITHUB_SECRET_ARN", "REJECTED_QUEUE_URL"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(ValidationError) as info:
        MESSAGE.validate_python({"kind": "run"})
    assert "run.head_sha: Field required" in submit_app.describe(info.value)
