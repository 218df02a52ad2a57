"""Turn the GitHub Actions event into ONE run request (or cleanup request) and put it on SQS.

The workflow's last step calls this (``modelrun enqueue``): it reads ``$GITHUB_EVENT_PATH`` and the
``GITHUB_*`` environment, builds the contract model the submit Lambda parses
(:mod:`modelrun.contracts`), sends it, and the workflow ends. ``build_request`` /
``build_cleanup`` are pure (no I/O) so the tests feed them real webhook payloads; ``send`` is the
only part that talks to AWS.

Invalid input (an image not pinned by digest, an unknown compute, a malformed SHA, ...) raises
pydantic's ``ValidationError``: the caller reports it and fails the step. Events that must not
start a run (a fork PR, a draft, a closed PR) raise :class:`Skip`.
"""

from __future__ import annotations

import json
import re
import urllib.parse
import urllib.request
from collections.abc import Mapping
from typing import Any

import boto3

from modelrun.contracts import SCHEMA_VERSION, CleanupRequest, Identity, RunRequest
from modelrun.domain import naming

__all__ = [
    "MissingEnvironment",
    "Skip",
    "TokenUnavailable",
    "build_cleanup",
    "build_request",
    "oidc_token",
    "send",
    "summary_markdown",
    "with_identity",
]

RUN_EVENTS = ("pull_request", "push", "workflow_dispatch")
_SQS_HOST = re.compile(r"^https://sqs\.([a-z0-9-]+)\.amazonaws\.com(?:\.cn)?/")


class Skip(Exception):
    """The event must not start a run (fork PR, draft, ...); ``str(exc)`` is the message."""


class MissingEnvironment(ValueError):
    """A ``GITHUB_*`` variable the request needs is not set (not running inside GitHub Actions?)."""


def _require(env: Mapping[str, str], name: str) -> str:
    value = env.get(name, "").strip()
    if not value:
        raise MissingEnvironment(f"{name} is not set: run this inside GitHub Actions, or set it yourself")
    return value


def _repository(event: Mapping[str, Any], env: Mapping[str, str]) -> str:
    repository = env.get("GITHUB_REPOSITORY") or (event.get("repository") or {}).get("full_name")
    if not repository:
        raise MissingEnvironment("GITHUB_REPOSITORY is not set and the event names no repository")
    return str(repository)


def _workflow_run(env: Mapping[str, str]) -> dict[str, Any]:
    run_id = _require(env, "GITHUB_RUN_ID")
    attempt = env.get("GITHUB_RUN_ATTEMPT", "").strip() or "1"
    if not (run_id.isdigit() and attempt.isdigit()):
        raise MissingEnvironment("GITHUB_RUN_ID and GITHUB_RUN_ATTEMPT must be numbers")
    return {"run_id": int(run_id), "run_attempt": int(attempt)}


def _branch(env: Mapping[str, str], event_name: str) -> str:
    """The branch a push or dispatch ran on, from GITHUB_REF: a tag named "main" is not main."""
    ref = _require(env, "GITHUB_REF")
    if not ref.startswith("refs/heads/"):
        raise Skip(f"Skipped: {event_name} runs start only on branches (refs/heads/…), not {ref}.")
    return ref.removeprefix("refs/heads/")


class TokenUnavailable(RuntimeError):
    """The job could not get its OIDC token (no `permissions: id-token: write`?)."""


def oidc_token(env: Mapping[str, str], audience: str, opener: Any = None) -> str:
    """The job's GitHub OIDC token for ``audience``, as a GitHub Actions step gets one: GET
    ``$ACTIONS_ID_TOKEN_REQUEST_URL&audience=…`` with ``$ACTIONS_ID_TOKEN_REQUEST_TOKEN``."""
    url = env.get("ACTIONS_ID_TOKEN_REQUEST_URL", "").strip()
    bearer = env.get("ACTIONS_ID_TOKEN_REQUEST_TOKEN", "").strip()
    if not url or not bearer:
        raise TokenUnavailable(
            "ACTIONS_ID_TOKEN_REQUEST_URL/TOKEN are not set: the job needs `permissions: id-token: write`"
        )
    if not naming.https_or_loopback(url):
        raise TokenUnavailable("ACTIONS_ID_TOKEN_REQUEST_URL must be https")
    separator = "&" if "?" in url else "?"
    request = urllib.request.Request(  # noqa: S310 - scheme checked above
        f"{url}{separator}{urllib.parse.urlencode({'audience': audience})}",
        headers={"Authorization": f"Bearer {bearer}", "Accept": "application/json"},
    )
    try:
        with (opener or urllib.request.urlopen)(request, timeout=10) as response:
            value = json.load(response).get("value")
    except (OSError, ValueError) as error:
        raise TokenUnavailable(f"the OIDC token request failed: {error}") from error
    if not isinstance(value, str) or not value:
        raise TokenUnavailable("the OIDC token request returned no token")
    return value


def with_identity(message: RunRequest | CleanupRequest, token: str) -> RunRequest | CleanupRequest:
    """The message with its evidence attached."""
    return message.model_copy(update={"identity": Identity(oidc_token=token)})


def _triggered_by(event: Mapping[str, Any], env: Mapping[str, str]) -> str | None:
    # A re-run is triggered by whoever pressed "Re-run" (GITHUB_TRIGGERING_ACTOR); the event
    # payload still names the original sender.
    for candidate in (
        env.get("GITHUB_TRIGGERING_ACTOR"),
        (event.get("sender") or {}).get("login"),
        env.get("GITHUB_ACTOR"),
    ):
        if candidate:
            return str(candidate)
    return None


def _pull_request(event: Mapping[str, Any]) -> Mapping[str, Any]:
    pull_request = event.get("pull_request")
    if not isinstance(pull_request, Mapping):
        raise Skip("This event carries no pull request, so there is nothing to run or clean up.")
    return pull_request


def _fork_of(pull_request: Mapping[str, Any]) -> str | None:
    """The fork's name when the PR comes from another repository, else None."""
    head_repo = (pull_request.get("head") or {}).get("repo") or {}
    base_repo = (pull_request.get("base") or {}).get("repo") or {}
    head_name, base_name = head_repo.get("full_name"), base_repo.get("full_name")
    if head_name == base_name and head_name:
        return None
    return str(head_name or "a deleted fork")


def _blank_to_none(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def parse_variables(text: str) -> dict[str, str]:
    """``NAME=value`` lines, or ``;`` between them (a dispatch form's input is one line): the
    reusable workflow's ``variables`` input; blanks skipped. The names and sizes are checked by
    the run request's model."""
    variables: dict[str, str] = {}
    for number, line in enumerate(re.split(r"[\n;]", text), 1):
        if not line.strip():
            continue
        name, sep, value = line.partition("=")
        if not sep or not name.strip():
            raise ValueError(f"variables, item {number}: expected NAME=value, got {line.strip()[:40]!r}")
        if name.strip() in variables:
            raise ValueError(f"variables, item {number}: {name.strip()} is given twice")
        variables[name.strip()] = value.strip()
    return variables


def build_request(
    event_name: str,
    event: dict[str, Any],
    env: Mapping[str, str],
    *,
    image: str,
    compute: str | None = None,
    note: str | None = None,
    variables: Mapping[str, str] | None = None,
) -> RunRequest:
    """The run request for this event.

    ``compute`` and ``note`` given here win; left as None they come from a dispatch's
    ``inputs`` (compute defaults to ``cpu``). Raises :class:`Skip` for events that must not run
    and pydantic's ``ValidationError`` for invalid values.
    """
    repository = _repository(event, env)
    fields: dict[str, Any]
    if event_name == "pull_request":
        pull_request = _pull_request(event)
        number = pull_request.get("number") or event.get("number")
        fork = _fork_of(pull_request)
        if fork is not None:
            raise Skip(
                f"Skipped: pull request #{number} comes from a fork ({fork}). Forks get no OIDC token, "
                "so they cannot push an image or queue a run. A maintainer can push the branch to "
                f"{repository} or start the run by hand (workflow_dispatch)."
            )
        if pull_request.get("draft"):
            raise Skip(f"Skipped: pull request #{number} is a draft. Mark it ready for review to start a model run.")
        if event.get("action") == "closed" or pull_request.get("state") == "closed":
            raise Skip(f"Skipped: pull request #{number} is closed (send a cleanup request instead).")
        head = pull_request.get("head") or {}
        base = pull_request.get("base") or {}
        fields = {
            "pr_number": number,
            "head_sha": head.get("sha"),
            "head_ref": head.get("ref"),
            "base_ref": base.get("ref"),
        }
        inputs: Mapping[str, Any] = {}
    elif event_name in ("workflow_dispatch", "push"):
        inputs = (event.get("inputs") or {}) if event_name == "workflow_dispatch" else {}
        fields = {
            "pr_number": None,
            "head_sha": _require(env, "GITHUB_SHA"),
            "head_ref": _branch(env, event_name),
            "base_ref": (event.get("repository") or {}).get("default_branch"),
        }
    else:
        raise Skip(f"Skipped: {event_name!r} events do not start model runs (only {', '.join(RUN_EVENTS)}).")

    return RunRequest.model_validate(
        {
            "schema_version": SCHEMA_VERSION,
            "kind": "run",
            "repository": repository,
            **fields,
            "image": image,
            "compute": _blank_to_none(compute) or _blank_to_none(inputs.get("compute")) or "cpu",
            "note": _blank_to_none(note) if note is not None else _blank_to_none(inputs.get("note")),
            "variables": dict(variables or {}),
            "triggered_by": _triggered_by(event, env),
            "event": event_name,
            "workflow": _workflow_run(env),
        }
    )


def build_cleanup(event: dict[str, Any], env: Mapping[str, str]) -> CleanupRequest:
    """The cleanup request for a closed pull request (stop its jobs, forget its runs)."""
    pull_request = _pull_request(event)
    number = pull_request.get("number") or event.get("number")
    fork = _fork_of(pull_request)
    if fork is not None:
        raise Skip(f"Skipped: pull request #{number} comes from a fork ({fork}); it never started a run.")
    repository = _repository(event, env)
    return CleanupRequest.model_validate(
        {
            "schema_version": SCHEMA_VERSION,
            "kind": "cleanup",
            "repository": repository,
            "pr_number": number,
            "triggered_by": _triggered_by(event, env),
            "workflow": _workflow_run(env),
        }
    )


def _region_of(queue_url: str) -> str | None:
    match = _SQS_HOST.match(queue_url)
    return match.group(1) if match else None


def send(message: RunRequest | CleanupRequest, queue_url: str, sqs_client: Any | None = None) -> str:
    """Put the message on the queue; returns its SQS MessageId. The body is the model's JSON."""
    client = sqs_client if sqs_client is not None else boto3.client("sqs", region_name=_region_of(queue_url))
    params: dict[str, Any] = {"QueueUrl": queue_url, "MessageBody": message.model_dump_json()}
    if queue_url.endswith(".fifo"):
        group = f"{message.repository}#{message.pr_number}" if message.pr_number else message.repository
        params["MessageGroupId"] = group
        params["MessageDeduplicationId"] = f"{message.kind}-{message.workflow.run_id}-{message.workflow.run_attempt}"
    response = client.send_message(**params)
    return str(response["MessageId"])


def _cell(value: object) -> str:
    """A value made safe for one Markdown table cell."""
    text = " ".join(str(value).split())
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;")


def summary_markdown(message: RunRequest | CleanupRequest, message_id: str | None) -> str:
    """The step summary for a queued (or, with ``message_id`` None, dry-run) message."""
    verb = "queued" if message_id else "built (dry run, nothing sent)"
    rows: list[tuple[str, str]] = [("Repository", f"`{message.repository}`")]
    if isinstance(message, CleanupRequest):
        title = f"### modelrun: cleanup request {verb}"
        rows.append(("Pull request", f"#{message.pr_number}"))
        after = (
            f"The backend stops any active runs of pull request #{message.pr_number} "
            "and deregisters their job definitions."
        )
    else:
        title = f"### modelrun: model run {verb}"
        short = message.head_sha[:7]
        rows += [
            ("Pull request", f"#{message.pr_number}" if message.pr_number else "none (dispatch on a branch)"),
            ("Commit", f"`{short}` on `{_cell(message.head_ref)}` (base `{_cell(message.base_ref)}`)"),
            ("Compute", message.compute),
            ("Image", f"`{message.image}`"),
        ]
        if message.note:
            rows.append(("Note", _cell(message.note)))
        if message.pr_number:
            after = (
                f"Results will appear in the modelrun comment on pull request #{message.pr_number} "
                f"(one comment, updated in place: queued, running with a log link, then the report) "
                f"and as a commit status on `{short}`."
            )
        else:
            after = (
                f"No pull request: results will appear as a commit status on `{short}` "
                "(and in the team's alerts channel)."
            )
        after += " This workflow is done; the run continues on AWS Batch."
    rows += [
        ("Triggered by", f"`{message.triggered_by}`"),
        ("Workflow run", f"{message.workflow.run_id} attempt {message.workflow.run_attempt}"),
        ("Identity", "OIDC token attached (verified by the backend)" if message.identity else "none"),
    ]
    if message_id:
        rows.append(("SQS message id", f"`{message_id}`"))
    table = "\n".join(f"| {name} | {value} |" for name, value in rows)
    return f"{title}\n\n| | |\n|---|---|\n{table}\n\n{after}\n"
