"""The workflow's enqueue command, fed real webhook payloads (tests/fixtures/webhooks, see PROVENANCE.md).

What it produces must be accepted, unchanged, by the submit handler's parser (``MESSAGE``).
"""

from __future__ import annotations

import copy
import io
import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws
from pydantic import ValidationError
from typer.testing import CliRunner

from modelrun.contracts import MESSAGE, CleanupRequest, RunRequest
from modelrun_cli.app import app
from modelrun_cli.enqueue import (
    MissingEnvironment,
    Skip,
    TokenUnavailable,
    build_cleanup,
    build_request,
    oidc_token,
    send,
    summary_markdown,
    with_identity,
)

WEBHOOKS = Path(__file__).parents[1] / "fixtures" / "webhooks"
IMAGE = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/modelrun-models@sha256:" + "ab" * 32
PR_HEAD_SHA = "ec26c3e57ca3a959ca5aad62de7213c562f8c821"  # pull_request.head.sha in the examples
DISPATCH_SHA = "0123456789abcdef0123456789abcdef01234567"


def payload(name: str) -> dict[str, Any]:
    event: dict[str, Any] = json.loads((WEBHOOKS / name).read_text())
    return event


def actions_env(repository: str, **extra: str) -> dict[str, str]:
    """The GitHub Actions environment of a workflow run in ``repository``."""
    env = {
        "GITHUB_ACTIONS": "true",
        "GITHUB_REPOSITORY": repository,
        "GITHUB_RUN_ID": "16011227436",
        "GITHUB_RUN_ATTEMPT": "2",
        "GITHUB_SERVER_URL": "https://github.com",
        "GITHUB_ACTOR": "Codertocat",
        "GITHUB_SHA": "f95f852bd8fca8fcc58a9a2d6c842781e32a215e",  # the PR's merge commit: not used
        "GITHUB_REF_NAME": "2/merge",
    }
    env.update(extra)
    return env


PR_ENV = actions_env("Codertocat/Hello-World")
DISPATCH_ENV = actions_env(
    "octo-org/octo-repo",
    GITHUB_SHA=DISPATCH_SHA,
    GITHUB_REF="refs/heads/feature/bigger-trees",
    GITHUB_REF_NAME="feature/bigger-trees",
    GITHUB_ACTOR="octocat",
)
PUSH_ENV = actions_env(
    "octo-org/octo-repo",
    GITHUB_EVENT_NAME="push",
    GITHUB_SHA=DISPATCH_SHA,
    GITHUB_REF="refs/heads/main",
    GITHUB_REF_NAME="main",
    GITHUB_ACTOR="octocat",
)


def push_payload() -> dict[str, Any]:
    """A push to main, with the dispatch example's repository and sender (no inputs on a push)."""
    dispatch = payload("workflow_dispatch.json")
    return {
        "ref": "refs/heads/main",
        "before": "0" * 40,
        "after": DISPATCH_SHA,
        "repository": dispatch["repository"],
        "sender": dispatch["sender"],
        "pusher": {"name": "octocat", "email": "octocat@github.com"},
    }


# --- build_request: pull_request -------------------------------------------------------------


@pytest.mark.parametrize("name", ["pull_request.opened.json", "pull_request.synchronize.json"])
def test_pull_request_builds_the_run_request(name: str) -> None:
    request = build_request("pull_request", payload(name), PR_ENV, image=IMAGE)

    assert request.schema_version == "1"
    assert request.kind == "run"
    assert request.event == "pull_request"
    assert request.repository == "Codertocat/Hello-World"
    assert request.pr_number == 2
    assert request.head_sha == PR_HEAD_SHA  # the PR head, not GITHUB_SHA (the merge commit)
    assert request.head_ref == "changes"
    assert request.base_ref == "master"
    assert request.image == IMAGE
    assert request.compute == "cpu"
    assert request.note is None
    assert request.command is None
    assert request.triggered_by == "Codertocat"
    assert request.workflow.run_id == 16011227436
    assert request.workflow.run_attempt == 2
    # no URL in the request: the backend builds every link from verified ids
    assert "url" not in request.workflow.model_dump()
    assert request.identity is None  # attached at send time (with_identity)


@pytest.mark.parametrize("name", ["pull_request.opened.json", "pull_request.synchronize.json"])
def test_the_message_json_is_accepted_unchanged_by_the_submit_parser(name: str) -> None:
    request = build_request("pull_request", payload(name), PR_ENV, image=IMAGE, compute="gpu", note="deeper")
    body = request.model_dump_json()

    parsed = MESSAGE.validate_json(body)

    assert isinstance(parsed, RunRequest)
    assert parsed == request
    assert parsed.compute == "gpu"
    assert parsed.note == "deeper"


def test_a_rerun_is_triggered_by_whoever_reran_it() -> None:
    env = {**PR_ENV, "GITHUB_TRIGGERING_ACTOR": "maintainer-1"}
    request = build_request("pull_request", payload("pull_request.synchronize.json"), env, image=IMAGE)
    assert request.triggered_by == "maintainer-1"


def test_a_fork_pull_request_is_skipped_with_the_reason() -> None:
    with pytest.raises(Skip, match=r"#2 comes from a fork \(octocat/Hello-World\).*no OIDC token"):
        build_request("pull_request", payload("pull_request.synchronize.from_fork.json"), PR_ENV, image=IMAGE)


def test_a_pull_request_from_a_deleted_fork_is_skipped() -> None:
    event = payload("pull_request.synchronize.from_fork.json")
    event["pull_request"]["head"]["repo"] = None
    with pytest.raises(Skip, match="deleted fork"):
        build_request("pull_request", event, PR_ENV, image=IMAGE)


def test_a_draft_pull_request_is_skipped_with_the_reason() -> None:
    event = payload("pull_request.converted_to_draft.json")
    assert event["pull_request"]["draft"] is True
    with pytest.raises(Skip, match=r"#2 is a draft\. Mark it ready for review"):
        build_request("pull_request", event, PR_ENV, image=IMAGE)


def test_a_closed_pull_request_does_not_start_a_run() -> None:
    with pytest.raises(Skip, match="closed"):
        build_request("pull_request", payload("pull_request.closed.json"), PR_ENV, image=IMAGE)


@pytest.mark.parametrize("event_name", ["pull_request_target", "release", "schedule", "workflow_run"])
def test_other_events_do_not_start_runs(event_name: str) -> None:
    with pytest.raises(Skip, match=rf"'{event_name}' events do not start model runs"):
        build_request(event_name, payload("workflow_dispatch.json"), DISPATCH_ENV, image=IMAGE)


# --- build_request: push ----------------------------------------------------------------------


def test_a_push_to_a_branch_runs_the_pushed_commit() -> None:
    event = push_payload()
    event["inputs"] = {"compute": "gpu", "note": "not a dispatch"}  # a push has no inputs: ignored
    request = build_request("push", event, PUSH_ENV, image=IMAGE)

    assert request.event == "push"
    assert request.repository == "octo-org/octo-repo"
    assert request.pr_number is None
    assert request.head_sha == DISPATCH_SHA
    assert (request.head_ref, request.base_ref) == ("main", "main")  # GITHUB_REF; repository.default_branch
    assert (request.compute, request.note) == ("cpu", None)
    assert request.triggered_by == "octocat"
    assert MESSAGE.validate_json(request.model_dump_json()) == request
    # explicit arguments still apply
    assert build_request("push", event, PUSH_ENV, image=IMAGE, compute="gpu").compute == "gpu"


def test_a_push_of_a_tag_does_not_start_a_run() -> None:
    env = PUSH_ENV | {"GITHUB_REF": "refs/tags/main", "GITHUB_REF_NAME": "main"}
    with pytest.raises(Skip, match=r"push runs start only on branches .*not refs/tags/main"):
        build_request("push", push_payload() | {"ref": "refs/tags/main"}, env, image=IMAGE)


# --- build_request: workflow_dispatch ---------------------------------------------------------


def test_workflow_dispatch_runs_the_dispatched_commit() -> None:
    request = build_request("workflow_dispatch", payload("workflow_dispatch.json"), DISPATCH_ENV, image=IMAGE)

    assert request.event == "workflow_dispatch"
    assert request.repository == "octo-org/octo-repo"
    assert request.pr_number is None
    assert request.head_sha == DISPATCH_SHA
    assert request.head_ref == "feature/bigger-trees"
    assert request.base_ref == "main"  # repository.default_branch
    assert request.compute == "cpu"
    assert request.note is None
    assert request.triggered_by == "octocat"  # sender.login
    assert MESSAGE.validate_json(request.model_dump_json()) == request


def test_workflow_dispatch_takes_compute_and_note_from_its_inputs() -> None:
    event = copy.deepcopy(payload("workflow_dispatch.json"))
    event["inputs"] = {"compute": "gpu", "note": "  try max_depth=8  "}

    request = build_request("workflow_dispatch", event, DISPATCH_ENV, image=IMAGE)
    assert (request.compute, request.note) == ("gpu", "try max_depth=8")

    # explicit arguments win over the inputs; a blank note is no note
    request = build_request("workflow_dispatch", event, DISPATCH_ENV, image=IMAGE, compute="cpu", note="")
    assert (request.compute, request.note) == ("cpu", None)


def test_workflow_dispatch_takes_the_branch_from_github_ref_only() -> None:
    # Neither GITHUB_REF_NAME nor the payload's ref decide: a tag's ref name can be "main" too.
    env = DISPATCH_ENV | {"GITHUB_REF_NAME": "main"}
    request = build_request("workflow_dispatch", payload("workflow_dispatch.json"), env, image=IMAGE)
    assert request.head_ref == "feature/bigger-trees"
    without = {k: v for k, v in DISPATCH_ENV.items() if k != "GITHUB_REF"}
    with pytest.raises(MissingEnvironment, match="GITHUB_REF is not set"):
        build_request("workflow_dispatch", payload("workflow_dispatch.json"), without, image=IMAGE)


@pytest.mark.parametrize("ref", ["refs/tags/main", "refs/tags/v1.0", "refs/pull/2/merge", "main"])
def test_a_dispatch_on_a_tag_or_any_non_branch_ref_is_skipped(ref: str) -> None:
    env = DISPATCH_ENV | {"GITHUB_REF": ref, "GITHUB_REF_NAME": ref.rsplit("/", 1)[-1]}
    event = payload("workflow_dispatch.json") | {"ref": ref}
    with pytest.raises(Skip, match=rf"workflow_dispatch runs start only on branches \(refs/heads/…\), not {ref}\."):
        build_request("workflow_dispatch", event, env, image=IMAGE)


@pytest.mark.parametrize(
    "variables",
    [
        {"GITHUB_RUN_ID": "abc"},
        {"GITHUB_RUN_ID": "-5"},
        {"GITHUB_RUN_ID": "1.5"},
        {"GITHUB_RUN_ATTEMPT": "first"},
        {"GITHUB_RUN_ATTEMPT": " 2x"},
    ],
)
def test_run_id_and_attempt_must_be_digits(variables: dict[str, str]) -> None:
    with pytest.raises(MissingEnvironment, match="must be numbers"):
        build_request("pull_request", payload("pull_request.opened.json"), PR_ENV | variables, image=IMAGE)
    with pytest.raises(MissingEnvironment, match="must be numbers"):
        build_cleanup(payload("pull_request.closed.json"), PR_ENV | variables)


def test_a_missing_run_attempt_is_the_first() -> None:
    env = {k: v for k, v in PR_ENV.items() if k != "GITHUB_RUN_ATTEMPT"}
    assert (
        build_request("pull_request", payload("pull_request.opened.json"), env, image=IMAGE).workflow.run_attempt == 1
    )


# --- invalid input ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"image": "modelrun-models:latest"}, "image"),
        ({"image": IMAGE, "compute": "tpu"}, "compute"),
        ({"image": IMAGE, "note": "x" * 1001}, "note"),
    ],
)
def test_invalid_values_raise_validation_errors(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as error:
        build_request("pull_request", payload("pull_request.opened.json"), PR_ENV, **kwargs)
    assert error.value.errors()[0]["loc"] == (field,)


def test_a_missing_actions_environment_is_reported_by_name() -> None:
    env = {k: v for k, v in PR_ENV.items() if k != "GITHUB_RUN_ID"}
    with pytest.raises(MissingEnvironment, match="GITHUB_RUN_ID is not set"):
        build_request("pull_request", payload("pull_request.opened.json"), env, image=IMAGE)


# --- build_cleanup ----------------------------------------------------------------------------


def test_a_closed_pull_request_builds_the_cleanup_request() -> None:
    cleanup = build_cleanup(payload("pull_request.closed.json"), PR_ENV)

    assert cleanup.kind == "cleanup"
    assert cleanup.schema_version == "1"
    assert (cleanup.repository, cleanup.pr_number, cleanup.triggered_by) == (
        "Codertocat/Hello-World",
        2,
        "Codertocat",
    )
    assert isinstance(MESSAGE.validate_json(cleanup.model_dump_json()), CleanupRequest)


def test_cleanup_skips_forks_and_events_without_a_pull_request() -> None:
    with pytest.raises(Skip, match="fork"):
        build_cleanup(payload("pull_request.synchronize.from_fork.json"), PR_ENV)
    with pytest.raises(Skip, match="no pull request"):
        build_cleanup(payload("workflow_dispatch.json"), DISPATCH_ENV)


# --- oidc_token: the job's evidence -------------------------------------------------------------

TOKEN = "eyJhbGciOiJSUzI1NiJ9.eyJhdWQiOiJ4In0.c2lnbmF0dXJl"
AUDIENCE = "https://sqs.eu-west-1.amazonaws.com/123456789012/modelrun-run-requests"
TOKEN_URL = "https://pipelines.actions.githubusercontent.com/abc123/_apis/distributedtask/idtoken?api-version=2.0"


class FakeOpener:
    """urlopen's stand-in: records each request and answers with ``body`` (JSON), raw bytes or an error."""

    def __init__(self, body: Any = None, *, raw: bytes | None = None, error: Exception | None = None) -> None:
        self.body = {"count": 1, "value": TOKEN} if body is None else body
        self.raw = raw
        self.error = error
        self.requests: list[tuple[urllib.request.Request, float]] = []

    def __call__(self, request: urllib.request.Request, timeout: float) -> io.BytesIO:
        self.requests.append((request, timeout))
        if self.error is not None:
            raise self.error
        return io.BytesIO(self.raw if self.raw is not None else json.dumps(self.body).encode())

    @property
    def url(self) -> str:
        return self.requests[-1][0].full_url


def token_env(url: str = TOKEN_URL, bearer: str = "the-request-token") -> dict[str, str]:
    return {**PR_ENV, "ACTIONS_ID_TOKEN_REQUEST_URL": url, "ACTIONS_ID_TOKEN_REQUEST_TOKEN": bearer}


def test_oidc_token_appends_the_audience_to_the_request_url_and_sends_the_bearer() -> None:
    opener = FakeOpener()
    assert oidc_token(token_env(), AUDIENCE, opener) == TOKEN

    ((request, timeout),) = opener.requests
    assert request.full_url == f"{TOKEN_URL}&audience={urllib.parse.quote(AUDIENCE, safe='')}"
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(request.full_url).query)
    assert query == {"api-version": ["2.0"], "audience": [AUDIENCE]}  # exactly, decoded
    assert request.get_method() == "GET"
    assert request.get_header("Authorization") == "Bearer the-request-token"
    assert request.get_header("Accept") == "application/json"
    assert 0 < timeout <= 30


def test_oidc_token_starts_the_query_when_the_url_has_none() -> None:
    opener = FakeOpener()
    oidc_token(token_env(url="https://token.example/idtoken"), "sts.amazonaws.com", opener)
    assert opener.url == "https://token.example/idtoken?audience=sts.amazonaws.com"
    # an audience with its own "&" or "=" cannot add parameters
    oidc_token(token_env(url="https://token.example/idtoken"), "a&audience=b=c", opener)
    assert urllib.parse.parse_qs(urllib.parse.urlsplit(opener.url).query) == {"audience": ["a&audience=b=c"]}


def test_oidc_token_on_the_local_stacks_loopback_may_be_http() -> None:
    opener = FakeOpener()
    assert oidc_token(token_env(url="http://127.0.0.1:8123/_services/token/request?api-version=2.0"), "x", opener)
    assert opener.url.endswith("?api-version=2.0&audience=x")


@pytest.mark.parametrize("missing", ["ACTIONS_ID_TOKEN_REQUEST_URL", "ACTIONS_ID_TOKEN_REQUEST_TOKEN"])
def test_oidc_token_without_the_jobs_variables_names_the_permission(missing: str) -> None:
    opener = FakeOpener()
    for env in ({k: v for k, v in token_env().items() if k != missing}, token_env() | {missing: "  "}):
        with pytest.raises(TokenUnavailable, match=r"ACTIONS_ID_TOKEN_REQUEST_URL/TOKEN are not set.*id-token: write"):
            oidc_token(env, AUDIENCE, opener)
    assert opener.requests == []


@pytest.mark.parametrize(
    "url",
    [
        "http://pipelines.actions.githubusercontent.com/idtoken",
        "ftp://token.example/idtoken",
        "file:///etc/passwd",
        "http://127.0.0.1.evil.example/idtoken",
        "http://localhost:8000/idtoken",
        "token.example/idtoken",
    ],
)
def test_oidc_token_refuses_a_url_that_is_not_https(url: str) -> None:
    opener = FakeOpener()
    with pytest.raises(TokenUnavailable, match="must be https"):
        oidc_token(token_env(url=url), AUDIENCE, opener)
    assert opener.requests == []  # the bearer never leaves over plain HTTP


@pytest.mark.parametrize(
    ("opener", "match"),
    [
        (FakeOpener({"count": 0}), "returned no token"),
        (FakeOpener({"count": 1, "value": ""}), "returned no token"),
        (FakeOpener({"count": 1, "value": 5}), "returned no token"),
        (FakeOpener({"count": 1, "value": None}), "returned no token"),
        (FakeOpener(raw=b"<html>not json</html>"), "the OIDC token request failed"),
        (
            FakeOpener(error=urllib.error.HTTPError(TOKEN_URL, 401, "Unauthorized", None, None)),  # type: ignore[arg-type]
            "the OIDC token request failed: HTTP Error 401",
        ),
        (FakeOpener(error=urllib.error.URLError("connection refused")), "the OIDC token request failed"),
        (FakeOpener(error=TimeoutError("timed out")), "the OIDC token request failed: timed out"),
    ],
)
def test_oidc_token_without_a_value_raises_token_unavailable(opener: FakeOpener, match: str) -> None:
    with pytest.raises(TokenUnavailable, match=match):
        oidc_token(token_env(), AUDIENCE, opener)
    assert len(opener.requests) == 1


def test_with_identity_attaches_the_token_and_the_parser_keeps_it() -> None:
    request = build_request("pull_request", payload("pull_request.opened.json"), PR_ENV, image=IMAGE)
    sent = with_identity(request, TOKEN)
    assert request.identity is None  # a copy: the built request is unchanged
    assert sent.identity is not None and sent.identity.oidc_token == TOKEN
    assert sent.model_copy(update={"identity": None}) == request
    assert MESSAGE.validate_json(sent.model_dump_json()) == sent
    assert TOKEN not in repr(sent)  # the token is not in logs of the model
    cleanup = with_identity(build_cleanup(payload("pull_request.closed.json"), PR_ENV), TOKEN)
    assert isinstance(MESSAGE.validate_json(cleanup.model_dump_json()), CleanupRequest)
    with pytest.raises(ValidationError, match="oidc_token"):
        with_identity(request, "not a token")


# --- summary ----------------------------------------------------------------------------------


def test_the_summary_says_what_was_queued_and_where_results_appear() -> None:
    request = build_request("pull_request", payload("pull_request.opened.json"), PR_ENV, image=IMAGE, note="a | b\n<c>")
    summary = summary_markdown(request, "msg-1")

    assert "model run queued" in summary
    assert "`ec26c3e`" in summary
    assert "comment on pull request #2" in summary
    assert "`msg-1`" in summary
    assert "| Note | a \\| b &lt;c&gt; |" in summary  # user text cannot break the table
    dispatch = build_request("workflow_dispatch", payload("workflow_dispatch.json"), DISPATCH_ENV, image=IMAGE)
    assert "No pull request" in summary_markdown(dispatch, "msg-2")


# --- send, against moto's SQS -----------------------------------------------------------------


@pytest.fixture
def sqs(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "eu-west-1",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    with mock_aws():
        yield boto3.client("sqs", region_name="eu-west-1")


def receive_all(sqs: Any, queue_url: str) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = sqs.receive_message(
        QueueUrl=queue_url, MaxNumberOfMessages=10, AttributeNames=["All"]
    ).get("Messages", [])
    return messages


def test_send_puts_exactly_one_message_on_the_queue(sqs: Any) -> None:
    queue_url = sqs.create_queue(QueueName="modelrun-run-requests")["QueueUrl"]
    request = build_request("pull_request", payload("pull_request.synchronize.json"), PR_ENV, image=IMAGE)

    message_id = send(request, queue_url)  # its own client, region taken from the queue URL

    messages = receive_all(sqs, queue_url)
    assert len(messages) == 1
    assert messages[0]["MessageId"] == message_id
    assert messages[0]["Body"] == request.model_dump_json()
    assert MESSAGE.validate_json(messages[0]["Body"]) == request


def test_send_to_a_fifo_queue_groups_by_pull_request_and_dedupes_by_workflow_attempt(sqs: Any) -> None:
    queue_url = sqs.create_queue(QueueName="modelrun-run-requests.fifo", Attributes={"FifoQueue": "true"})["QueueUrl"]
    request = build_request("pull_request", payload("pull_request.synchronize.json"), PR_ENV, image=IMAGE)

    send(request, queue_url, sqs)
    send(request, queue_url, sqs)  # a retried step: deduplicated

    messages = receive_all(sqs, queue_url)
    assert len(messages) == 1
    assert messages[0]["Attributes"]["MessageGroupId"] == "Codertocat/Hello-World#2"


# --- the CLI ----------------------------------------------------------------------------------

runner = CliRunner()


def cli_env(env: dict[str, str], event_file: Path, event_name: str, tmp_path: Path) -> dict[str, str | None]:
    """The CLI's environment: the given one, whatever the test process runs in (even GitHub Actions)."""
    return {
        "GITHUB_TRIGGERING_ACTOR": None,
        "MODELRUN_QUEUE_URL": None,
        "ACTIONS_ID_TOKEN_REQUEST_URL": None,
        "ACTIONS_ID_TOKEN_REQUEST_TOKEN": None,
        **env,
        "GITHUB_EVENT_PATH": str(event_file),
        "GITHUB_EVENT_NAME": event_name,
        "GITHUB_STEP_SUMMARY": str(tmp_path / "summary.md"),
    }


def test_cli_dry_run_prints_the_message_the_submit_parser_accepts(tmp_path: Path) -> None:
    event_file = WEBHOOKS / "pull_request.synchronize.json"
    result = runner.invoke(
        app,
        ["enqueue", "--image", IMAGE, "--compute", "gpu", "--note", "", "--dry-run"],
        env=cli_env(PR_ENV, event_file, "pull_request", tmp_path),
    )

    assert result.exit_code == 0, result.output
    parsed = MESSAGE.validate_json(result.stdout)
    expected = build_request("pull_request", payload(event_file.name), PR_ENV, image=IMAGE, compute="gpu")
    assert parsed == expected


def test_cli_dry_run_of_a_cleanup(tmp_path: Path) -> None:
    result = runner.invoke(
        app,
        ["enqueue", "--cleanup", "--dry-run"],
        env=cli_env(PR_ENV, WEBHOOKS / "pull_request.closed.json", "pull_request", tmp_path),
    )
    assert result.exit_code == 0, result.output
    assert MESSAGE.validate_json(result.stdout) == build_cleanup(payload("pull_request.closed.json"), PR_ENV)


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("pull_request.converted_to_draft.json", "is a draft"),
        ("pull_request.synchronize.from_fork.json", "fork"),
    ],
)
def test_cli_skips_with_the_message_and_exit_code_0(name: str, reason: str, tmp_path: Path) -> None:
    result = runner.invoke(
        app,
        ["enqueue", "--image", IMAGE, "--queue-url", "https://sqs.eu-west-1.amazonaws.com/1/never-used"],
        env=cli_env(PR_ENV, WEBHOOKS / name, "pull_request", tmp_path),
    )

    assert result.exit_code == 0, result.output
    assert reason in result.stdout
    assert "::notice title=modelrun::Skipped" in result.stdout
    summary = (tmp_path / "summary.md").read_text()
    assert summary.startswith("### modelrun: no run") and reason in summary


def test_cli_rejects_an_image_not_pinned_by_digest(tmp_path: Path) -> None:
    result = runner.invoke(
        app,
        ["enqueue", "--image", "modelrun-models:latest", "--dry-run"],
        env=cli_env(PR_ENV, WEBHOOKS / "pull_request.opened.json", "pull_request", tmp_path),
    )

    assert result.exit_code == 1
    assert "invalid run request, nothing sent" in result.stderr
    assert "must be an image URI pinned by digest" in result.stderr


def test_cli_sends_one_message_with_its_token_and_writes_the_step_summary(
    sqs: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    queue_url = sqs.create_queue(QueueName="modelrun-run-requests")["QueueUrl"]
    event_file = tmp_path / "event.json"
    event = payload("workflow_dispatch.json")
    event["inputs"] = {"compute": "gpu", "note": "bigger trees"}
    event_file.write_text(json.dumps(event))
    opener = FakeOpener()
    monkeypatch.setattr(urllib.request, "urlopen", opener)  # the job's token endpoint

    result = runner.invoke(
        app,
        ["enqueue", "--image", IMAGE, "--note", "bigger trees"],
        env={
            **cli_env(DISPATCH_ENV, event_file, "workflow_dispatch", tmp_path),
            "MODELRUN_QUEUE_URL": queue_url,
            "ACTIONS_ID_TOKEN_REQUEST_URL": TOKEN_URL,
            "ACTIONS_ID_TOKEN_REQUEST_TOKEN": "the-request-token",
        },
    )

    assert result.exit_code == 0, result.output
    # the token was asked for with the queue's URL as its audience
    assert urllib.parse.parse_qs(urllib.parse.urlsplit(opener.url).query)["audience"] == [queue_url]
    assert opener.requests[0][0].get_header("Authorization") == "Bearer the-request-token"
    messages = receive_all(sqs, queue_url)
    assert len(messages) == 1
    request = MESSAGE.validate_json(messages[0]["Body"])
    assert isinstance(request, RunRequest)
    assert (request.compute, request.note, request.head_sha) == ("gpu", "bigger trees", DISPATCH_SHA)
    assert request.identity is not None and request.identity.oidc_token == TOKEN
    assert messages[0]["MessageId"] in result.stdout
    assert TOKEN not in result.stdout  # the token is sent, never printed
    summary = (tmp_path / "summary.md").read_text()
    assert summary.startswith("### modelrun: model run queued")
    assert messages[0]["MessageId"] in summary
    assert "| Identity | OIDC token attached (verified by the backend) |" in summary and TOKEN not in summary


def test_cli_without_the_jobs_token_sends_nothing(sqs: Any, tmp_path: Path) -> None:
    queue_url = sqs.create_queue(QueueName="modelrun-run-requests")["QueueUrl"]
    result = runner.invoke(
        app,
        ["enqueue", "--image", IMAGE],
        env={
            **cli_env(PR_ENV, WEBHOOKS / "pull_request.opened.json", "pull_request", tmp_path),
            "MODELRUN_QUEUE_URL": queue_url,
        },
    )
    assert result.exit_code == 1
    assert "id-token: write" in result.stderr and "nothing sent" in result.stderr
    assert "::error title=modelrun::" in result.stdout
    assert receive_all(sqs, queue_url) == []


def test_cli_without_a_queue_url_sends_nothing(tmp_path: Path) -> None:
    env = cli_env(PR_ENV, WEBHOOKS / "pull_request.opened.json", "pull_request", tmp_path)
    env["MODELRUN_QUEUE_URL"] = ""
    result = runner.invoke(app, ["enqueue", "--image", IMAGE], env=env)
    assert result.exit_code == 2
    assert "MODELRUN_QUEUE_URL" in result.output


# --- the submit handler's record handler accepts the CLI's output as it is ----------------------

SENT_MS = 1741101620000


def handle(body: str, monkeypatch: pytest.MonkeyPatch, **patches: Any) -> list[str]:
    """Hand one SQS record of ``body`` to the submit handler, as the run-requests queue delivers
    it; returns the reasons it was rejected for. ``patches`` replace verification's functions."""
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

    from modelrun import verification
    from modelrun.config import SubmitSettings
    from tests.unit.fakes import ENVIRONMENT

    environment = ENVIRONMENT | {
        "RUNS_TABLE": "runs",
        "RESULTS_BUCKET": "results",
        "GITHUB_SECRET_ARN": "arn:aws:secretsmanager:eu-west-1:1:secret:github",
        "OPERATOR_QUEUE_ARN": "arn:aws:sqs:eu-west-1:1:modelrun-operator-requests",
    }
    with monkeypatch.context() as init:  # the handler reads its settings at import (Lambda's init)
        for name, value in environment.items():
            init.setenv(name, value)
        from submit import app as submit_app
    rejected: list[str] = []
    record = {
        "messageId": "m-1",
        "receiptHandle": "h",
        "body": body,
        "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": str(SENT_MS), "SenderId": "AROAEXAMPLE"},
        "messageAttributes": {},
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:eu-west-1:1:modelrun-run-requests",
    }
    with monkeypatch.context() as patched:  # for this record only
        patched.setattr(submit_app, "SETTINGS", SubmitSettings.from_environ(environment))
        for name, value in patches.items():
            patched.setattr(verification, name, value)
        patched.setattr(submit_app, "reject", lambda record, reason: rejected.append(reason))
        submit_app.record_handler(SQSRecord(record))
    return rejected


def test_the_submit_handler_accepts_what_the_cli_sends(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from modelrun import submission
    from tests.records import verified_from

    result = runner.invoke(
        app,
        ["enqueue", "--image", IMAGE, "--dry-run"],
        env=cli_env(PR_ENV, WEBHOOKS / "pull_request.opened.json", "pull_request", tmp_path),
    )
    assert result.exit_code == 0, result.output
    built = build_request("pull_request", payload("pull_request.opened.json"), PR_ENV, image=IMAGE)
    assert MESSAGE.validate_json(result.stdout) == built
    # What the CLI sends: the printed message with the job's token attached.
    sent = with_identity(MESSAGE.validate_json(result.stdout), TOKEN)

    verified = verified_from(built)
    checked: list[tuple[object, float]] = []
    submitted: list[tuple[object, object]] = []
    monkeypatch.setattr(submission, "submit", lambda deps, message, evidence: submitted.append((message, evidence)))

    def verify_run(deps: object, message: RunRequest, sent_at: float) -> object:
        checked.append((message, sent_at))
        return verified

    assert handle(sent.model_dump_json(), monkeypatch, verify_run=verify_run) == []
    assert checked == [(sent, SENT_MS / 1000)]  # verified against SQS's send time
    assert submitted == [(sent, verified)]


def test_the_submit_handler_refuses_the_cli_output_without_its_token(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from modelrun import submission

    monkeypatch.setattr(submission, "submit", lambda *a: pytest.fail("submitted without evidence"))
    result = runner.invoke(
        app,
        ["enqueue", "--image", IMAGE, "--dry-run"],
        env=cli_env(PR_ENV, WEBHOOKS / "pull_request.opened.json", "pull_request", tmp_path),
    )
    assert result.exit_code == 0, result.output
    (reason,) = handle(result.stdout.strip(), monkeypatch)
    assert reason.startswith("unverified: identity: the request carries no OIDC token")


def test_the_submit_handler_accepts_the_cleanup_request(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from modelrun import submission

    cleaned: list[object] = []
    checked: list[tuple[object, float]] = []
    monkeypatch.setattr(submission, "cleanup", lambda deps, message: cleaned.append(message))
    result = runner.invoke(
        app,
        ["enqueue", "--cleanup", "--dry-run"],
        env=cli_env(PR_ENV, WEBHOOKS / "pull_request.closed.json", "pull_request", tmp_path),
    )
    assert result.exit_code == 0, result.output
    sent = with_identity(MESSAGE.validate_json(result.stdout), TOKEN)
    assert sent.model_copy(update={"identity": None}) == build_cleanup(payload("pull_request.closed.json"), PR_ENV)

    rejected = handle(
        sent.model_dump_json(),
        monkeypatch,
        verify_cleanup=lambda deps, message, sent_at: checked.append((message, sent_at)),
    )

    assert rejected == []
    assert checked == [(sent, SENT_MS / 1000)]
    assert cleaned == [sent]
    # and without its token it is refused, nothing cleaned
    assert handle(result.stdout.strip(), monkeypatch)[0].startswith("unverified: identity:")
    assert cleaned == [sent]
