"""The embedded default: the whole stack on one machine, with no AWS account and no Docker.

moto's server plays AWS, in a process of its own (modelrun_local.aws_process), with the stack
created from template.yaml (modelrun_local.stack). This module supplies only what moto lacks:
- SQS event-source polling with Lambda's semantics (batch size, partial batch failures,
  visibility timeout, the DLQ after maxReceiveCount by the queue's own redrive policy);
- Lambda invocations (from the pollers, and from the state machine's Task states through an
  invoke endpoint) routed to the real handlers in this process, with the stack's environment;
- in the AWS process, a Batch executor that runs each job's command as a local process with
  the job's environment, sends its output to CloudWatch Logs and emits "Batch Job State
  Change" events through EventBridge, so they reach the job-events queue by the template's rule.
The handlers talk to it through the standard ``AWS_ENDPOINT_URL``: only endpoints differ.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import json
import multiprocessing
import os
import queue
import socket
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Literal
from urllib.parse import unquote

import boto3

from modelrun_local import aws_process
from modelrun_local.github_server import LocalGitHub
from modelrun_local.stack import ROOT, EventSourceMapping, Stack, deploy

REGION = aws_process.REGION
NOOP_MODEL_DIR = Path(__file__).resolve().parent / "noop_model"  # a contract-honouring stand-in model
LOG_GROUP = aws_process.LOG_GROUP


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class LambdaContext:
    """What the Lambda runtime passes as ``context`` (the fields Powertools reads)."""

    function_name: str
    invoked_function_arn: str
    memory_limit_in_mb: int = 512
    function_version: str = "$LATEST"
    timeout_seconds: int = 60
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    log_group_name: str = ""
    log_stream_name: str = "local"
    _deadline: float = field(default=0.0)

    def __post_init__(self) -> None:
        self._deadline = time.monotonic() + self.timeout_seconds
        self.log_group_name = f"/aws/lambda/{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


class Lambdas:
    """The stack's functions, invoked in-process through their real handlers."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.by_name: dict[str, str] = {}
        for logical_id, fn in stack.functions.items():
            self.by_name[fn["name"]] = logical_id
            self.by_name[fn["arn"]] = logical_id
            self.by_name[logical_id] = logical_id
        self.invocations: dict[str, int] = {}
        # Extra seconds before each invocation of a function (logical id): a cold start, a slow host.
        self.latency: Callable[[str], float] | None = None
        self._handlers: dict[str, Callable[[Any, Any], Any]] = {}
        self._lock = threading.Lock()

    def handler(self, logical_id: str) -> Callable[[Any, Any], Any]:
        with self._lock:
            if logical_id not in self._handlers:
                module_name, attr = self.stack.functions[logical_id]["handler"].rsplit(".", 1)
                self._handlers[logical_id] = getattr(importlib.import_module(module_name), attr)
            return self._handlers[logical_id]

    def invoke(self, name: str, event: Any) -> tuple[Any, str | None]:
        """Returns (result, error type); a raised exception is reported as Lambda reports it."""
        logical_id = self.by_name.get(name) or self.by_name.get(name.split(":")[-1])
        if logical_id is None:
            return {"errorType": "ResourceNotFoundException", "errorMessage": name}, "ResourceNotFoundException"
        fn = self.stack.functions[logical_id]
        context = LambdaContext(fn["name"], fn["arn"], timeout_seconds=int(fn["timeout"]))
        with self._lock:
            self.invocations[logical_id] = self.invocations.get(logical_id, 0) + 1
        if self.latency is not None:
            time.sleep(max(0.0, self.latency(logical_id)))
        try:
            return self.handler(logical_id)(event, context), None
        except Exception as error:  # the Lambda runtime's "Unhandled" error shape
            return {
                "errorType": type(error).__name__,
                "errorMessage": str(error),
                "stackTrace": traceback.format_exception(error)[-5:],
            }, type(error).__name__

    def route(self, name: str, payload: bytes) -> tuple[bytes, str | None]:
        result, error = self.invoke(name, json.loads(payload or b"{}"))
        return json.dumps(result, default=str).encode(), error


class SqsPoller(threading.Thread):
    """One event source mapping, polled as Lambda polls SQS."""

    def __init__(self, runtime: LocalRuntime, mapping: EventSourceMapping) -> None:
        super().__init__(daemon=True, name=f"poller-{mapping.function}")
        self.runtime = runtime
        self.mapping = mapping
        self.sqs = boto3.client("sqs", region_name=REGION)
        self.queue_url = self.sqs.get_queue_url(QueueName=mapping.queue_arn.rsplit(":", 1)[-1])["QueueUrl"]
        self.busy = False
        self.failures = 0
        self.redelivered = 0  # messages received again (a failure, or the visibility timeout ran out)

    def record(self, message: Any) -> dict[str, Any]:
        # Shaped as `sam local generate-event sqs receive-message` makes them.
        return {
            "messageId": message["MessageId"],
            "receiptHandle": message["ReceiptHandle"],
            "body": message["Body"],
            "attributes": message.get("Attributes", {}),
            "messageAttributes": {
                k: {
                    "stringValue": v.get("StringValue"),
                    "dataType": v["DataType"],
                    "stringListValues": [],
                    "binaryListValues": [],
                }
                for k, v in message.get("MessageAttributes", {}).items()
            },
            "md5OfBody": message["MD5OfBody"],
            "eventSource": "aws:sqs",
            "eventSourceARN": self.mapping.queue_arn,
            "awsRegion": REGION,
        }

    def run(self) -> None:
        while not self.runtime.stopping.is_set():
            try:
                self.poll_once()
            except Exception:
                if not self.runtime.stopping.is_set():
                    traceback.print_exc()
                time.sleep(0.2)

    def poll_once(self) -> None:
        messages = self.sqs.receive_message(
            QueueUrl=self.queue_url,
            MaxNumberOfMessages=self.mapping.batch_size,
            WaitTimeSeconds=0,  # moto serves one request at a time: no long polls
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        ).get("Messages", [])
        if not messages:
            time.sleep(0.05)
            return
        self.busy = True
        self.redelivered += sum(1 for m in messages if int(m["Attributes"].get("ApproximateReceiveCount", 1)) > 1)
        try:
            event = {"Records": [self.record(m) for m in messages]}
            result, error = self.runtime.lambdas.invoke(self.mapping.function, event)
            failed: set[str] = set()
            if error:
                failed = {m["MessageId"] for m in messages}  # the whole batch comes back
            elif self.mapping.report_batch_item_failures and isinstance(result, dict):
                failed = {f["itemIdentifier"] for f in result.get("batchItemFailures", [])}
            self.failures += len(failed)
            done = [m for m in messages if m["MessageId"] not in failed]
            for start in range(0, len(done), 10):
                self.sqs.delete_message_batch(
                    QueueUrl=self.queue_url,
                    Entries=[
                        {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                        for i, m in enumerate(done[start : start + 10])
                    ],
                )
        finally:
            self.busy = False


class InvokeEndpoint(ThreadingHTTPServer):
    """Lambda's Invoke API for the state machine's tasks: POST /{function} with the payload."""

    daemon_threads = True

    def __init__(self, lambdas: Callable[[], Lambdas | None]) -> None:
        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                payload = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                target = lambdas()
                if target is None:
                    self.send_error(503, "the stack's functions are not loaded yet")
                    return
                body, error = target.route(unquote(self.path.lstrip("/")), payload)
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                if error:
                    self.send_header(aws_process.ERROR_HEADER, "Unhandled")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                return

        super().__init__(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server_address[1]}"
        threading.Thread(target=self.serve_forever, daemon=True, name="lambda-invoke").start()


class ExecutorState:
    """The AWS process's Batch executor, as this process sees it."""

    def __init__(self, shared: aws_process.Shared) -> None:
        self.shared = shared

    @property
    def active(self) -> int:
        return int(self.shared.active.value)

    @property
    def jobs_run(self) -> int:
        return int(self.shared.jobs_run.value)

    @contextlib.contextmanager
    def quietly(self) -> Iterator[None]:
        """Jobs submitted meanwhile finish at once as SUCCEEDED: no process, no events."""
        self.shared.quiet.value = 1
        try:
            yield
        finally:
            self.shared.quiet.value = 0


def _cold_start() -> None:
    """Forget the handlers' cached clients and settings, as a new Lambda container would."""
    from aws_lambda_powertools.utilities.parameters import base as parameter_providers

    parameter_providers.DEFAULT_PROVIDERS.clear()  # type: ignore[attr-defined]  # clients of the old endpoint
    for name, module in list(sys.modules.items()):
        if not (name.startswith("modelrun.") or name.split(".")[0] in ("submit", "track", "report")):
            continue
        for value in list(vars(module).values()):
            if callable(getattr(value, "cache_clear", None)):
                value.cache_clear()


class LocalRuntime:
    """Start with ``with LocalRuntime() as rt:``; ``rt.outputs`` has the stack's outputs."""

    lambdas: Lambdas
    executor: ExecutorState

    def __init__(
        self,
        *,
        stack_name: str = "modelrun-local",
        repository: str = "county-assessor/avm",
        parameters: dict[str, str] | None = None,
        batch_delay_seconds: float = 0.0,
        job_environment: dict[str, str] | None = None,
        fast_redelivery: bool = True,
        retry_delay_cap_seconds: int | None = 2,
        github_credentials: Literal["app", "token"] = "app",
        github_api_path: str = "",
    ) -> None:
        """``github_credentials``: what the secret holds, a GitHub App's credentials (the
        README's recommendation) or a token. ``github_api_path``: ``"/api/v3"`` serves the local
        GitHub's REST API where GitHub Enterprise Server does (GitHubApiUrl points there)."""
        self.stack_name = stack_name
        self.repository = repository
        self.parameters = parameters or {}
        self.batch_delay_seconds = batch_delay_seconds
        self.job_environment = job_environment or {}
        self.fast_redelivery = fast_redelivery
        # moto's interpreter really sleeps each Retry interval: the local copy of the state
        # machine caps them (MaxDelaySeconds on every Retrier, valid ASL), so a rate limit's
        # minute-long wait takes seconds here. None keeps the template's delays.
        self.retry_delay_cap_seconds = retry_delay_cap_seconds
        self.stopping = threading.Event()
        self.port = _free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.github_credentials = github_credentials
        # With App credentials the local GitHub accepts no fixed token: every backend call must
        # carry an installation token, exchanged for a JWT the App's key signed.
        self.github = LocalGitHub(
            bot_login="modelrun[bot]",
            token=None if github_credentials == "app" else "local-token",
            api_path=github_api_path,
        )
        self.aws: multiprocessing.process.BaseProcess | None = None
        self.pollers: list[SqsPoller] = []
        # Called with (job name, status, time.monotonic()) as the executor sets each status.
        self.batch_state_listeners: list[Callable[[str, str, float], None]] = []

    # -- lifecycle ------------------------------------------------------------------------
    def __enter__(self) -> LocalRuntime:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        self._saved_environ = dict(os.environ)
        _cold_start()
        os.environ.update(aws_process.aws_environment(self.endpoint))
        self.invoke_endpoint = InvokeEndpoint(lambda: getattr(self, "lambdas", None))
        # spawn, not fork: this process may run threads (a test's, an earlier runtime's).
        ctx = multiprocessing.get_context("spawn")
        self.shared = aws_process.Shared.make(ctx)
        settings = aws_process.Settings(
            port=self.port,
            lambda_url=self.invoke_endpoint.url,
            batch_delay_seconds=self.batch_delay_seconds,
            job_environment=self.job_environment,
        )
        self.aws = ctx.Process(
            target=aws_process.serve, args=(settings, self.shared), name="modelrun-local-aws", daemon=True
        )
        self.aws.start()
        deadline = time.monotonic() + 120
        while not self.shared.ready.wait(0.2):
            if not self.aws.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the local AWS process did not start (exit code {self.aws.exitcode})")
        self.executor = ExecutorState(self.shared)
        threading.Thread(target=self._relay_batch_states, daemon=True, name="batch-states").start()
        self.github.start()
        parameters = {
            "GitHubRepositories": self.repository,
            "GitHubApiUrl": self.github.url,
            # The local GitHub is the Actions OIDC issuer, shaped as GitHub Enterprise Server's.
            "GitHubOidcIssuer": self.github.issuer.issuer,
            **self.parameters,
        }
        self.stack = deploy(self.stack_name, parameters, REGION)
        self.outputs = self.stack.outputs
        self._create_executing_state_machine()
        self._configure_secret()
        self._apply_function_environment()
        self.lambdas = Lambdas(self.stack)
        if self.fast_redelivery:
            self._shorten_visibility()
        for mapping in self.stack.event_sources:
            # Lambda polls with up to MaximumConcurrency batches at once. Locally one poller per
            # queue is the fastest: a 1,000-run burst took 316 s with one, 341 s with three
            # (the AWS process is the bottleneck, and more writers meet more contention).
            poller = SqsPoller(self, mapping)
            poller.start()
            self.pollers.append(poller)

    def stop(self) -> None:
        self.stopping.set()
        for poller in self.pollers:
            poller.join(timeout=5)
        if self.aws is not None:
            self.shared.stop.set()
            self.aws.join(timeout=10)
            if self.aws.is_alive():
                self.aws.kill()
                self.aws.join(timeout=5)
        if hasattr(self, "invoke_endpoint"):
            self.invoke_endpoint.shutdown()
            self.invoke_endpoint.server_close()
        self.github.stop()
        # Leave the process as it was: later code (or tests) must not reach a stopped endpoint.
        os.environ.clear()
        os.environ.update(self._saved_environ)
        _cold_start()

    def _relay_batch_states(self) -> None:
        while not self.stopping.is_set():
            try:
                name, status, at = self.shared.states.get(timeout=0.2)
            except queue.Empty:
                continue
            except (EOFError, OSError):
                return
            for listener in list(self.batch_state_listeners):
                listener(name, status, at)

    # -- what moto can't do from the template alone -----------------------------------------
    def _create_executing_state_machine(self) -> None:
        """moto's CloudFormation puts state machines where they can't run: create it again
        through the API, from the same definition and substitutions."""
        template = json.loads((ROOT / "statemachine" / "report_run.asl.json").read_text())
        if self.retry_delay_cap_seconds is not None:
            for state in template["States"].values():
                for retrier in state.get("Retry", []):
                    cap = min(retrier.get("MaxDelaySeconds", 10**6), self.retry_delay_cap_seconds)
                    retrier["MaxDelaySeconds"] = cap
        text = json.dumps(template)
        from modelrun_local.stack import load_template

        props = load_template()["Resources"]["ReportStateMachine"]["Properties"]
        values = {
            "CollectResultsFunctionArn": self.stack.functions["CollectResultsFunction"]["arn"],
            "UpdatePullRequestFunctionArn": self.stack.functions["UpdatePullRequestFunction"]["arn"],
            "AlertsTopicArn": self.stack.resources["AlertsTopic"],
            "NotifyOnSuccess": self.parameters.get("NotifyOnSuccess", "false"),
        }
        assert set(values) == set(props["DefinitionSubstitutions"]), "template substitutions changed"
        for key, value in values.items():
            text = text.replace("${" + key + "}", value)
        arn = self.stack.outputs["ReportStateMachineArn"]
        role = boto3.client("iam").get_role(RoleName=self.stack.resources["ReportStateMachineRole"])["Role"]["Arn"]
        boto3.client("stepfunctions").create_state_machine(name=arn.rsplit(":", 1)[-1], definition=text, roleArn=role)
        self.state_machine_arn = arn

    def _configure_secret(self) -> None:
        """The secret as the README has operators fill it in."""
        secret: dict[str, str] = {"bot_login": self.github.bot_login}
        if self.github_credentials == "app":
            secret |= self.github.app_credentials()
        else:
            assert self.github.token is not None
            secret["token"] = self.github.token
        boto3.client("secretsmanager").put_secret_value(
            SecretId=self.stack.resources["GitHubCredentials"], SecretString=json.dumps(secret)
        )

    def _apply_function_environment(self) -> None:
        """moto doesn't apply a function's Environment in-process: the union goes into this
        process's environment (the template gives each variable one value across functions)."""
        merged: dict[str, str] = {}
        for fn in self.stack.functions.values():
            for key, value in fn["environment"].items():
                if key == "POWERTOOLS_SERVICE_NAME":
                    continue
                if key in merged and merged[key] != str(value):
                    raise RuntimeError(f"{key} differs between functions; the local runtime shares one process")
                merged[key] = str(value)
        merged["GITHUB_SECRET_ARN"] = self.stack.resources["GitHubCredentials"]
        merged["REPORT_STATE_MACHINE_ARN"] = self.state_machine_arn
        os.environ.update(merged)
        os.environ["POWERTOOLS_SERVICE_NAME"] = "modelrun"
        os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "modelrun")

    def _shorten_visibility(self) -> None:
        """Redelivery after 2 s instead of minutes: same semantics, on a demo's time scale."""
        sqs = boto3.client("sqs")
        for mapping in self.stack.event_sources:
            url = sqs.get_queue_url(QueueName=mapping.queue_arn.rsplit(":", 1)[-1])["QueueUrl"]
            sqs.set_queue_attributes(QueueUrl=url, Attributes={"VisibilityTimeout": "2"})

    # -- helpers for the demo, the CLI and the tests -----------------------------------------
    def push_image(self, directory: Path, tag: str, python: Path | None = None) -> str:
        """Like `docker build && docker push`: an ECR image whose manifest names ``directory``.

        The executor runs the job's command there, with ``python`` (the directory's own
        ``.venv`` if it has one, else this interpreter) standing in for the image's."""
        ecr = boto3.client("ecr")
        repository = self.stack.outputs["ModelRepositoryUri"]
        name = repository.split("/", 1)[1]
        files = sorted(p for p in directory.rglob("*") if p.is_file() and ".venv" not in p.parts)
        digest_source = hashlib.sha256()
        for path in files:
            digest_source.update(str(path.relative_to(directory)).encode())
            digest_source.update(path.read_bytes())
        if python is None:
            own = directory / ".venv" / "bin" / "python"
            python = own if own.exists() else Path(sys.executable)
        manifest = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": {
                    "mediaType": "application/vnd.oci.image.config.v1+json",
                    "digest": f"sha256:{digest_source.hexdigest()}",
                    "size": 0,
                },
                "layers": [],
                "annotations": {
                    aws_process.ANNOTATION_DIRECTORY: str(directory.resolve()),
                    aws_process.ANNOTATION_PYTHON: str(python),
                },
            }
        )
        # The digest is the manifest's sha256, as a registry computes it (moto doesn't).
        digest = f"sha256:{hashlib.sha256(manifest.encode()).hexdigest()}"
        ecr.put_image(repositoryName=name, imageManifest=manifest, imageTag=tag, imageDigest=digest)
        return f"{repository}@{digest}"

    def wait_until_idle(self, timeout: float = 120.0, settle: float = 0.5) -> None:
        """Until every queue is drained, no job runs and no execution is running."""
        sqs = boto3.client("sqs")
        sfn = boto3.client("stepfunctions")
        deadline = time.monotonic() + timeout
        quiet_since: float | None = None
        while time.monotonic() < deadline:
            busy = self.executor.active > 0 or any(p.busy for p in self.pollers)
            if not busy:
                for poller in self.pollers:
                    attrs = sqs.get_queue_attributes(
                        QueueUrl=poller.queue_url,
                        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
                    )["Attributes"]
                    if int(attrs["ApproximateNumberOfMessages"]) or int(attrs["ApproximateNumberOfMessagesNotVisible"]):
                        busy = True
                        break
            if not busy:
                running = sfn.list_executions(stateMachineArn=self.state_machine_arn, statusFilter="RUNNING")
                busy = bool(running["executions"])
            if busy:
                quiet_since = None
            elif quiet_since is None:
                quiet_since = time.monotonic()
            elif time.monotonic() - quiet_since >= settle:
                return
            time.sleep(0.2)  # each check walks every queued message in moto
        raise TimeoutError(f"the local stack was still busy after {timeout} s")
