"""The embedded default: the whole stack on one machine, with no AWS account and no Docker.

moto's server plays AWS, with the stack created from template.yaml (modelrun_local.stack). This
module supplies only what moto lacks:
- SQS event-source polling with Lambda's semantics (batch size, partial batch failures,
  visibility timeout, the DLQ after maxReceiveCount by the queue's own redrive policy);
- Lambda invocations (from the pollers and from the state machine's Task states) routed to the
  real handlers in-process, with each function's environment from the stack;
- a Batch executor that runs each job's command as a local process with the job's environment,
  sends its output to CloudWatch Logs and emits "Batch Job State Change" events through
  EventBridge, so they reach the job-events queue by the template's own rule.
The handlers talk to it through the standard ``AWS_ENDPOINT_URL``: only endpoints differ.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import json
import logging
import os
import socket
import subprocess
import sys
import threading
import time
import traceback
import uuid
import warnings
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import requests
from moto.server import ThreadedMotoServer

from modelrun_local import moto_hooks
from modelrun_local.github_server import LocalGitHub
from modelrun_local.stack import ROOT, EventSourceMapping, Stack, deploy

REGION = "us-east-1"
NOOP_MODEL_DIR = Path(__file__).resolve().parent / "noop_model"  # a contract-honouring stand-in model
LOG_GROUP = "/aws/batch/job"


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


@dataclass
class LocalImage:
    """A model image "pushed" locally: its digest maps to a directory run without Docker."""

    directory: Path
    python: Path


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


class BatchExecutor:
    """Runs submitted Batch jobs as local processes and reports their state changes."""

    def __init__(self, runtime: LocalRuntime, workers: int = 4) -> None:
        self.runtime = runtime
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="batch-job")
        self.events = boto3.client("events", region_name=REGION)
        self.logs = boto3.client("logs", region_name=REGION)
        self.active = 0
        self.jobs_run = 0
        self._lock = threading.Lock()
        with contextlib.suppress(self.logs.exceptions.ResourceAlreadyExistsException):
            self.logs.create_log_group(logGroupName=LOG_GROUP)

    def accept(self, job: Any) -> None:
        """Called inside moto's SubmitJob: the job starts on a worker, SubmitJob returns at once."""
        with self._lock:
            self.active += 1
        self.pool.submit(self._run, job)

    def emit(self, job: Any, status: str) -> None:
        moto_hooks.set_job_status(job, status)
        detail = moto_hooks.describe_job(job)
        detail["status"] = status
        response = self.events.put_events(
            Entries=[
                {
                    "Source": "aws.batch",
                    "DetailType": "Batch Job State Change",
                    "Detail": json.dumps(detail),
                    "Resources": [detail.get("jobArn", "")],
                }
            ]
        )
        if response.get("FailedEntryCount"):
            raise RuntimeError(f"PutEvents failed: {response}")

    def _run(self, job: Any) -> None:
        try:
            time.sleep(self.runtime.batch_delay_seconds)
            for status in ("RUNNABLE", "STARTING"):
                if moto_hooks.job_terminated(job):
                    break
                self.emit(job, status)
            if moto_hooks.job_terminated(job):
                moto_hooks.job_stopped(job, None, None)
                self.emit(job, "FAILED")
                return
            moto_hooks.job_started(job)
            self.emit(job, "RUNNING")
            exit_code, reason = self._execute(job)
            moto_hooks.job_stopped(job, exit_code, reason)
            self.emit(job, "SUCCEEDED" if exit_code == 0 else "FAILED")
        except Exception:
            if not self.runtime.stopping.is_set():  # a job cut short by stop() is expected
                traceback.print_exc()
        finally:
            with self._lock:
                self.active -= 1
                self.jobs_run += 1

    def _execute(self, job: Any) -> tuple[int, str | None]:
        container = moto_hooks.job_container(job)
        image = self.runtime.images.get(container["image"])
        if image is None:
            return 1, f"CannotPullContainerError: {container['image']} is not a pushed local image"
        command = list(container["command"]) or ["python", "-m", "avm"]
        if command[0] in ("python", "python3"):
            command[0] = str(image.python)
        env = {
            "PATH": os.environ.get("PATH", ""),
            "HOME": os.environ.get("HOME", str(image.directory)),
            "AWS_ENDPOINT_URL": self.runtime.endpoint,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": REGION,
            "AWS_REGION": REGION,
            **container["environment"],
            **self.runtime.job_environment,
        }
        stream = moto_hooks.job_log_stream(job)
        self.logs.create_log_stream(logGroupName=LOG_GROUP, logStreamName=stream)
        timeout = (getattr(job, "timeout", None) or {}).get("attemptDurationSeconds")
        started = time.monotonic()
        process = subprocess.Popen(
            command,
            cwd=image.directory,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1,
        )
        reason: str | None = None
        lines: list[str] = []
        lines_lock = threading.Lock()

        def pump() -> None:
            assert process.stdout is not None
            for line in process.stdout:
                with lines_lock:
                    if line.strip():  # the awslogs driver drops empty lines; CloudWatch rejects them
                        lines.append(line.rstrip("\n"))

        reader = threading.Thread(target=pump, daemon=True)
        reader.start()
        while process.poll() is None:
            if moto_hooks.job_terminated(job):
                process.kill()
                reason = "terminated"
            elif timeout and time.monotonic() - started > timeout:
                process.kill()
                reason = "Job attempt duration exceeded timeout"
            self._flush(stream, lines, lines_lock)
            time.sleep(0.1)
        reader.join(timeout=5)
        self._flush(stream, lines, lines_lock)
        code = process.returncode
        if reason is None and code != 0:
            reason = "Essential container in task exited"
        return (code if code >= 0 else 137), reason

    def _flush(self, stream: str, lines: list[str], lock: threading.Lock) -> None:
        with lock:
            batch, lines[:] = lines[:], []
        if batch:
            now = int(time.time() * 1000)
            self.logs.put_log_events(
                logGroupName=LOG_GROUP,
                logStreamName=stream,
                logEvents=[{"timestamp": now, "message": line} for line in batch],
            )


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

    def __init__(
        self,
        *,
        stack_name: str = "modelrun-local",
        repository: str = "county-assessor/avm",
        parameters: dict[str, str] | None = None,
        batch_delay_seconds: float = 0.0,
        job_environment: dict[str, str] | None = None,
        fast_redelivery: bool = True,
    ) -> None:
        self.stack_name = stack_name
        self.repository = repository
        self.parameters = parameters or {}
        self.batch_delay_seconds = batch_delay_seconds
        self.job_environment = job_environment or {}
        self.fast_redelivery = fast_redelivery
        self.stopping = threading.Event()
        self.images: dict[str, LocalImage] = {}
        self.port = _free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.github = LocalGitHub(bot_login="modelrun[bot]")
        self.server: ThreadedMotoServer | None = None
        self.pollers: list[SqsPoller] = []

    # -- lifecycle ------------------------------------------------------------------------
    def __enter__(self) -> LocalRuntime:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        self._saved_environ = dict(os.environ)
        _cold_start()
        os.environ.update(
            {
                "AWS_ENDPOINT_URL": self.endpoint,
                "AWS_ACCESS_KEY_ID": "testing",
                "AWS_SECRET_ACCESS_KEY": "testing",
                "AWS_DEFAULT_REGION": REGION,
                "AWS_REGION": REGION,
                "MOTO_PORT": str(self.port),  # the state machine interpreter calls back here
            }
        )
        moto_hooks.serialise_requests()
        moto_hooks.reuse_state_machine_work()
        moto_hooks.write_dynamodb_items_directly()
        moto_hooks.keep_deep_queues_cheap()
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        # moto names each resource type its CloudFormation skips; stack.py handles those.
        logging.getLogger("moto").setLevel(logging.ERROR)
        warnings.filterwarnings("ignore", message="Tried to parse", category=UserWarning)
        self.server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        self.server.start()
        # moto keeps its state per process: a runtime starts from an empty account.
        requests.post(f"{self.endpoint}/moto-api/reset", timeout=10).raise_for_status()
        requests.post(
            f"{self.endpoint}/moto-api/config",
            json={
                "batch": {"use_docker": False},
                "lambda": {"use_docker": False},
                "stepfunctions": {"execute_state_machine": True},
            },
            timeout=10,
        ).raise_for_status()
        # Batch jobs keep the status the executor gives them (moto would otherwise advance it).
        requests.post(
            f"{self.endpoint}/moto-api/state-manager/set-transition",
            json={"model_name": "batch::job", "transition": {"progression": "manual", "times": 10**9}},
            timeout=10,
        ).raise_for_status()
        self.github.start()
        parameters = {
            "GitHubRepository": self.repository,
            "GitHubApiUrl": self.github.url,
            **self.parameters,
        }
        self.stack = deploy(self.stack_name, parameters, REGION)
        self.outputs = self.stack.outputs
        self._create_executing_state_machine()
        self._configure_secret()
        self._apply_function_environment()
        self.lambdas = Lambdas(self.stack)
        self.executor = BatchExecutor(self)
        moto_hooks.route_lambda_invokes(self.lambdas.route)
        moto_hooks.take_over_batch_jobs(self.executor.accept)
        if self.fast_redelivery:
            self._shorten_visibility()
        for mapping in self.stack.event_sources:
            poller = SqsPoller(self, mapping)
            poller.start()
            self.pollers.append(poller)

    def stop(self) -> None:
        self.stopping.set()
        for poller in self.pollers:
            poller.join(timeout=5)
        if hasattr(self, "executor"):
            self.executor.pool.shutdown(wait=False, cancel_futures=True)
        moto_hooks.restore()
        self.github.stop()
        if self.server:
            self.server.stop()
        # Leave the process as it was: later code (or tests) must not reach a stopped endpoint.
        os.environ.clear()
        os.environ.update(self._saved_environ)
        _cold_start()

    # -- what moto can't do from the template alone -----------------------------------------
    def _create_executing_state_machine(self) -> None:
        """moto's CloudFormation puts state machines where they can't run: create it again
        through the API, from the same definition and substitutions."""
        template = json.loads((ROOT / "statemachine" / "report_run.asl.json").read_text())
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
        secret = {"token": self.github.token, "bot_login": self.github.bot_login}
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
        """Like `docker build && docker push`: an ECR image whose digest maps to ``directory``."""
        ecr = boto3.client("ecr")
        repository = self.stack.outputs["ModelRepositoryUri"]
        name = repository.split("/", 1)[1]
        files = sorted(p for p in directory.rglob("*") if p.is_file() and ".venv" not in p.parts)
        digest_source = hashlib.sha256()
        for path in files:
            digest_source.update(str(path.relative_to(directory)).encode())
            digest_source.update(path.read_bytes())
        manifest = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                "config": {"digest": f"sha256:{digest_source.hexdigest()}", "size": 0},
                "layers": [],
            }
        )
        # The digest is the manifest's sha256, as a registry computes it (moto doesn't).
        digest = f"sha256:{hashlib.sha256(manifest.encode()).hexdigest()}"
        ecr.put_image(repositoryName=name, imageManifest=manifest, imageTag=tag, imageDigest=digest)
        uri = f"{repository}@{digest}"
        if python is None:
            own = directory / ".venv" / "bin" / "python"
            python = own if own.exists() else Path(sys.executable)
        self.images[uri] = LocalImage(directory=directory, python=python)
        return uri

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
