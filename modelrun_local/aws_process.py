"""The AWS side of the local stack, in a process of its own: moto's server, the hooks of
``moto_hooks``, and the Batch executor.

AWS is somewhere else for the handlers, and here it is too: the runtime's process (pollers,
handlers, the local GitHub) and this one each get a core, and talk only as they would in AWS:
the handlers call moto's server over HTTP, and the state machine's Lambda tasks reach the
handlers over HTTP through the runtime's invoke endpoint (Lambda's Invoke API, in effect).
Besides that the two processes share a few counters (jobs active, jobs run), a switch (finish
jobs quietly, for the submit benchmark) and a queue of the executor's state changes, so that
benchmarks can time them.

A pushed image names the local directory that holds its files and carries its config (what its
Dockerfile says to run, ``modelrun_local.dockerfile``) in its manifest's annotations
(``LocalRuntime.push_image``); the executor reads them back through ECR's API and runs the
job as Batch runs a container from that image.
"""

from __future__ import annotations

import contextlib
import json
import logging
import multiprocessing
import os
import shutil
import subprocess
import threading
import time
import traceback
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from multiprocessing.context import BaseContext
from pathlib import Path
from typing import Any
from urllib.parse import quote

import boto3
import requests
from botocore.exceptions import ClientError
from moto.server import ThreadedMotoServer

from modelrun.domain.naming import LOG_GROUP
from modelrun_local import dockerfile, iam, moto_hooks

REGION = "us-east-1"
ANNOTATION_ROOT = "org.modelrun.local.root"  # the image's files, at their image paths below it
ANNOTATION_CONFIG = "org.modelrun.local.config"  # entrypoint, cmd, workdir, env, user, python
# A base image's PATH where the Dockerfile sets none (Docker's default; Debian's and python's
# images have it): the job's PATH is the image's, never this process's.
IMAGE_DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
ERROR_HEADER = "X-Amz-Function-Error"


@dataclass
class Shared:
    """What the two processes share. Made by the runtime before the AWS process starts."""

    ready: Any
    stop: Any
    active: Any  # jobs accepted and not yet finished
    jobs_run: Any
    quiet: Any  # finish jobs at once as SUCCEEDED, with no process and no events
    states: Any  # (job name, status, time.monotonic(), job id) for each state the executor sets
    operator: Any  # the operator's access key (an IAM user with every permission), sent once

    @classmethod
    def make(cls, ctx: BaseContext) -> Shared:
        return cls(
            ready=ctx.Event(),
            stop=ctx.Event(),
            active=ctx.Value("i", 0),
            jobs_run=ctx.Value("i", 0),
            quiet=ctx.Value("b", 0),
            states=ctx.Queue(),
            operator=ctx.Queue(),
        )


@dataclass
class ProcessSettings:
    port: int
    lambda_url: str  # the runtime's invoke endpoint: POST {lambda_url}/{function}
    batch_delay_seconds: float = 0.0
    job_environment: dict[str, str] = field(default_factory=dict)
    workers: int = 4
    enforce_iam: bool = True
    decision_log: str | None = None  # JSON lines, one per IAM decision


def aws_environment(endpoint: str, credentials: dict[str, str] | None = None) -> dict[str, str]:
    """What a process needs to reach the local AWS: the endpoint, the region and credentials
    (before IAM is on, any key does)."""
    return {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
        **(credentials or {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}),
    }


def _operator(endpoint: str) -> dict[str, str]:
    """The operator's identity: an IAM user allowed everything (the harness, the CLI, the tests)."""
    iam = boto3.client("iam", endpoint_url=endpoint, region_name=REGION)
    iam.create_user(UserName="modelrun-local-operator")
    iam.put_user_policy(
        UserName="modelrun-local-operator",
        PolicyName="administrator",
        PolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
        ),
    )
    key = iam.create_access_key(UserName="modelrun-local-operator")["AccessKey"]
    return {"AWS_ACCESS_KEY_ID": key["AccessKeyId"], "AWS_SECRET_ACCESS_KEY": key["SecretAccessKey"]}


class _StateMachineRole:
    """The credentials of the state machine's role, for its tasks (set once the stack exists)."""

    def __init__(self) -> None:
        self.role_arn: str | None = None
        self.credentials: dict[str, str] | None = None
        self._lock = threading.Lock()

    def set(self, request: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            self.role_arn, self.credentials = str(request["role_arn"]), None
        return {}

    def get(self) -> dict[str, str] | None:
        with self._lock:
            if self.role_arn and self.credentials is None:
                self.credentials = moto_hooks.service_credentials(self.role_arn, "states.amazonaws.com", "report-run")
            return self.credentials


def _service_credentials(request: dict[str, Any]) -> dict[str, Any]:
    try:
        return moto_hooks.service_credentials(
            str(request["role_arn"]), str(request["service"]), str(request["session"])
        )
    except moto_hooks.UntrustedService as error:
        raise PermissionError(str(error)) from error


@dataclass(frozen=True)
class LocalImage:
    """A pushed image: where its files are and what Batch would run from it."""

    root: Path
    entrypoint: list[str]
    cmd: list[str]
    workdir: str
    env: dict[str, str]
    python: str

    def argv(self, command: list[str]) -> list[str]:
        """ENTRYPOINT, then the job's command or else CMD (Batch's ``command`` replaces CMD);
        ``python`` as the image's interpreter (see ``LocalRuntime.push_image``)."""
        argv = [*self.entrypoint, *(command or self.cmd)]
        if argv and argv[0] in ("python", "python3"):
            argv[0] = self.python
        return argv

    def environment(self) -> dict[str, str]:
        """The image's ENV, its references to the base image's variables resolved."""
        env = {"PATH": IMAGE_DEFAULT_PATH}
        for key, value in self.env.items():
            env[key] = dockerfile.substitute(value, env, keep_unknown=False)
        return env


@dataclass(frozen=True)
class _Launch:
    command: list[str]
    directory: Path
    env: dict[str, str]


def _image_reference(uri: str) -> tuple[str, Any]:
    """An image URI (REGISTRY/NAME[:TAG][@DIGEST]) as ECR names it: the repository, the image id."""
    repository, _, digest = uri.partition("/")[2].partition("@")
    name, _, tag = repository.partition(":")
    return name, {"imageDigest": digest} if digest else {"imageTag": tag}


def _executable(name: str, directory: Path, path: str) -> str | None:
    """Where ``name`` resolves as the container's runtime would: a path (relative to the working
    directory) or a name on PATH."""
    if os.sep in name:
        candidate = Path(name) if os.path.isabs(name) else directory / name
        return str(candidate) if candidate.is_file() and os.access(candidate, os.X_OK) else None
    return shutil.which(name, path=path)


class BatchExecutor:
    """Runs submitted Batch jobs as local processes and reports their state changes."""

    def __init__(self, settings: ProcessSettings, shared: Shared, endpoint: str) -> None:
        self.settings = settings
        self.shared = shared
        self.endpoint = endpoint
        self.pool = ThreadPoolExecutor(max_workers=settings.workers, thread_name_prefix="batch-job")
        self.events = boto3.client("events", region_name=REGION)
        self.logs = boto3.client("logs", region_name=REGION)
        self.ecr = boto3.client("ecr", region_name=REGION)
        with contextlib.suppress(self.logs.exceptions.ResourceAlreadyExistsException):
            self.logs.create_log_group(logGroupName=LOG_GROUP)

    def accept(self, job: Any) -> None:
        """Called inside moto's SubmitJob: the job starts on a worker, SubmitJob returns at once."""
        self.shared.states.put((str(job.job_name), "SUBMITTED", time.monotonic(), str(job.job_id)))
        if self.shared.quiet.value:
            moto_hooks.set_job_status(job, "SUCCEEDED")
            with self.shared.jobs_run.get_lock():
                self.shared.jobs_run.value += 1
            return
        with self.shared.active.get_lock():
            self.shared.active.value += 1
        self.pool.submit(self._run, job)

    def emit(self, job: Any, status: str) -> None:
        moto_hooks.set_job_status(job, status)
        self.shared.states.put((str(job.job_name), status, time.monotonic(), str(job.job_id)))
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
            time.sleep(self.settings.batch_delay_seconds)
            for status in ("RUNNABLE", "STARTING"):
                if moto_hooks.job_terminated(job):
                    break
                self.emit(job, status)
            if moto_hooks.job_terminated(job):
                moto_hooks.job_stopped(job, None, None)
                self.emit(job, "FAILED")
                return
            launch = self._launch(job)
            if isinstance(launch, str):
                # As Batch: a container that cannot start never runs; the job fails from
                # STARTING with the reason (no exit code, no log stream).
                moto_hooks.job_stopped(job, None, launch)
                self.emit(job, "FAILED")
                return
            moto_hooks.job_started(job)
            self.emit(job, "RUNNING")
            exit_code, reason = self._execute(job, launch)
            moto_hooks.job_stopped(job, exit_code, reason)
            self.emit(job, "SUCCEEDED" if exit_code == 0 else "FAILED")
        except Exception:
            if not self.shared.stop.is_set():  # a job cut short by stop() is expected
                traceback.print_exc()
        finally:
            with self.shared.active.get_lock():
                self.shared.active.value -= 1
            with self.shared.jobs_run.get_lock():
                self.shared.jobs_run.value += 1

    def local_image(self, uri: str) -> LocalImage | None:
        """The image as ``LocalRuntime.push_image`` recorded it, or None if not pushed here."""
        name, image_id = _image_reference(uri)
        try:
            images = self.ecr.batch_get_image(repositoryName=name, imageIds=[image_id])["images"]
        except self.ecr.exceptions.RepositoryNotFoundException:
            return None
        for image in images:
            annotations = json.loads(image.get("imageManifest", "{}")).get("annotations", {})
            if ANNOTATION_ROOT in annotations:
                config = json.loads(annotations[ANNOTATION_CONFIG])
                return LocalImage(
                    root=Path(annotations[ANNOTATION_ROOT]),
                    entrypoint=list(config["entrypoint"]),
                    cmd=list(config["cmd"]),
                    workdir=str(config["workdir"]),
                    env=dict(config["env"]),
                    python=str(config["python"]),
                )
        return None

    def _as_execution_role(self, job: Any, container: dict[str, Any]) -> dict[str, str] | str:
        """The secrets' values, fetched as the job's execution role after it pulled the image (IAM
        checked); or why the container cannot start, in Batch's words."""
        role = container["execution_role_arn"]
        if not role:
            return {}
        keys = moto_hooks.service_credentials(role, "ecs-tasks.amazonaws.com", f"ecs-{job.job_id}")
        session = boto3.Session(
            aws_access_key_id=keys["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=keys["AWS_SECRET_ACCESS_KEY"],
            aws_session_token=keys["AWS_SESSION_TOKEN"],
            region_name=REGION,
        )
        name, image_id = _image_reference(container["image"])
        try:
            session.client("ecr", endpoint_url=self.endpoint).batch_get_image(repositoryName=name, imageIds=[image_id])
        except ClientError as error:
            if error.response["Error"]["Code"] in ("AccessDeniedException", "AccessDenied"):
                return f"CannotPullContainerError: pull access denied for {container['image']}: {error}"
        values: dict[str, str] = {}
        for secret in container["secrets"]:
            try:
                got = session.client("secretsmanager", endpoint_url=self.endpoint).get_secret_value(
                    SecretId=secret["valueFrom"]
                )
            except ClientError as error:
                return (
                    "ResourceInitializationError: unable to pull secrets or registry auth: "
                    f"unable to retrieve secret from asm: {error}"
                )
            values[secret["name"]] = got["SecretString"]
        return values

    def _launch(self, job: Any) -> _Launch | str:
        """What to run for the job, or why its container cannot start (Batch's reasons)."""
        container = moto_hooks.job_container(job)
        # What ECS does with the execution role before the container starts: pull the image,
        # fetch the secrets. A role that may not (another repository's image) fails the job.
        secrets = self._as_execution_role(job, container)
        if isinstance(secrets, str):
            return secrets
        image = self.local_image(container["image"])
        if image is None:
            return f"CannotPullContainerError: {container['image']} is not a pushed local image"
        command = image.argv(list(container["command"]))
        if not command:
            return "CannotStartContainerError: Error response from daemon: No command specified"
        directory = image.root / image.workdir.lstrip("/")
        # The job role's credentials, as ECS gives them to the container (none without a role).
        role = container["job_role_arn"]
        credentials = moto_hooks.service_credentials(role, "ecs-tasks.amazonaws.com", str(job.job_id)) if role else {}
        # The image's ENV under the job's: Batch's environment overrides the image's.
        env = {
            "HOME": os.environ.get("HOME", str(directory)),
            **image.environment(),
            **{k: v for k, v in aws_environment(self.endpoint).items() if not k.startswith("AWS_SECRET")},
            "AWS_ACCESS_KEY_ID": "",
            **credentials,
            **container["environment"],
            **secrets,
            **self.settings.job_environment,
        }
        if _executable(command[0], directory, env["PATH"]) is None:
            # Docker's words for an entrypoint that is not there (runc's exec error).
            return (
                "CannotStartContainerError: Error response from daemon: failed to create task for container: "
                f'exec: "{command[0]}": executable file not found in $PATH: unknown'
            )
        return _Launch(command, directory, env)

    def _execute(self, job: Any, launch: _Launch) -> tuple[int, str | None]:
        command, directory, env = launch.command, launch.directory, launch.env
        stream = moto_hooks.job_log_stream(job)
        self.logs.create_log_stream(logGroupName=LOG_GROUP, logStreamName=stream)
        timeout = (getattr(job, "timeout", None) or {}).get("attemptDurationSeconds")
        started = time.monotonic()
        try:
            process = subprocess.Popen(
                command,
                cwd=directory,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                bufsize=1,
            )
        except OSError as error:  # found but not startable (no permission, a bad interpreter line)
            return 1, f"CannotStartContainerError: Error response from daemon: {error.strerror}: {command[0]}"
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
            time.sleep(0.05)
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


def _invoke_over_http(lambda_url: str) -> Any:
    """The state machine's Lambda tasks, sent to the runtime's invoke endpoint."""

    def route(name: str, payload: bytes) -> tuple[bytes, str | None]:
        response = requests.post(f"{lambda_url}/{quote(name, safe='')}", data=payload, timeout=900)
        if response.status_code != 200:
            error = {"errorType": "ServiceException", "errorMessage": response.text[:500]}
            return json.dumps(error).encode(), "ServiceException"
        return response.content, response.headers.get(ERROR_HEADER)

    return route


def serve(settings: ProcessSettings, shared: Shared) -> None:
    """The AWS process: runs until ``shared.stop`` is set (or the runtime's process is gone)."""
    endpoint = f"http://127.0.0.1:{settings.port}"
    os.environ.update(aws_environment(endpoint))
    os.environ["MOTO_PORT"] = str(settings.port)  # the state machine interpreter calls back here
    # AWS's managed policies (AWSLambdaBasicExecutionRole, ...) exist in moto's IAM, as on AWS.
    os.environ["MOTO_IAM_LOAD_MANAGED_POLICIES"] = "true"
    state_machine_role = _StateMachineRole()
    moto_hooks.serialise_requests()
    moto_hooks.reuse_state_machine_work(state_machine_role.get)
    moto_hooks.write_dynamodb_items_directly()
    moto_hooks.keep_deep_queues_cheap()
    moto_hooks.describe_list_parameters_as_aws()
    moto_hooks.keep_connections_alive()
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    # moto names each resource type its CloudFormation skips; stack.py handles those.
    logging.getLogger("moto").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", message="Tried to parse", category=UserWarning)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=settings.port, verbose=False)
    server.start()
    requests.post(
        f"{endpoint}/moto-api/config",
        json={
            "batch": {"use_docker": False},
            "lambda": {"use_docker": False},
            "stepfunctions": {"execute_state_machine": True},
        },
        timeout=10,
    ).raise_for_status()
    # Batch jobs keep the status the executor gives them (moto would otherwise advance it).
    requests.post(
        f"{endpoint}/moto-api/state-manager/set-transition",
        json={"model_name": "batch::job", "transition": {"progression": "manual", "times": 10**9}},
        timeout=10,
    ).raise_for_status()
    moto_hooks.route_lambda_invokes(_invoke_over_http(settings.lambda_url))
    operator = _operator(endpoint)
    os.environ.update(operator)  # this process plays AWS's services: it acts as the operator
    boto3.DEFAULT_SESSION = None  # which would keep the credentials it resolved before
    shared.operator.put(operator)
    if settings.enforce_iam:
        log = iam.DecisionLog(Path(settings.decision_log) if settings.decision_log else None)
        enforcement = moto_hooks.Enforcement(log)
        moto_hooks.enforce_iam(enforcement)

        def add_provider(request: dict[str, Any]) -> dict[str, Any]:
            enforcement.providers[str(request["url"])] = (str(request["issuer"]), str(request["jwks_url"]))
            return {}

        moto_hooks.control_handlers["oidc-provider"] = add_provider
    moto_hooks.control_handlers["service-credentials"] = _service_credentials
    moto_hooks.control_handlers["state-machine-role"] = state_machine_role.set
    executor = BatchExecutor(settings, shared, endpoint)
    moto_hooks.take_over_batch_jobs(executor.accept)
    shared.ready.set()
    parent = multiprocessing.parent_process()
    while not shared.stop.wait(0.5):
        if parent is not None and not parent.is_alive():
            break
    executor.pool.shutdown(wait=False, cancel_futures=True)
    server.stop()
