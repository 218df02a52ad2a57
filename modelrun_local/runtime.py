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
import functools
import hashlib
import json
import multiprocessing
import os
import queue
import shutil
import socket
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable, Collection, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Literal
from urllib.parse import unquote

import boto3
import requests

from modelrun.domain import naming
from modelrun_local import aws_process, iam, lambdas, moto_hooks, workflow_job
from modelrun_local import dockerfile as dockerfile_reader
from modelrun_local.github_server import Environment, LocalGitHub
from modelrun_local.lambdas import Lambdas
from modelrun_local.stack import ROOT, EventSourceMapping, deploy, deploy_repository

REGION = aws_process.REGION
NOOP_MODEL_DIR = Path(__file__).resolve().parent / "noop_model"  # a contract-honouring stand-in model
LOCAL_REVIEWER = "maintainer"  # the approval environment's required reviewer


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class SqsPoller(threading.Thread):
    """One event source mapping, polled as Lambda polls SQS."""

    def __init__(self, runtime: LocalRuntime, mapping: EventSourceMapping) -> None:
        super().__init__(daemon=True, name=f"poller-{mapping.function}")
        self.runtime = runtime
        self.mapping = mapping
        # Lambda polls with the function's execution role: its queue permissions are checked.
        keys = runtime.role_keys(mapping.function)
        self.sqs = boto3.Session(
            aws_access_key_id=keys["aws_access_key_id"],
            aws_secret_access_key=keys["aws_secret_access_key"],
            aws_session_token=keys["aws_session_token"],
        ).client("sqs", region_name=REGION)
        # The mapping knows its queue by ARN; the URL is looked up as the operator.
        operator = boto3.client("sqs", region_name=REGION)
        self.queue_url = operator.get_queue_url(QueueName=mapping.queue_arn.rsplit(":", 1)[-1])["QueueUrl"]
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


@functools.cache
def _aws_process_context() -> multiprocessing.context.ForkServerContext:
    """Not fork: this process may run threads (a test's, an earlier runtime's). A fork server
    that imported moto once (seconds in a fresh interpreter) and runs no threads forks each
    runtime's AWS process from that clean state, as spawn would give it, without the import."""
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["modelrun_local.aws_process"])
    return ctx


def _fresh_boto3_session() -> None:
    """boto3's default session keeps the credentials it first resolved: drop it when they change."""
    boto3.DEFAULT_SESSION = None


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
        enforce_iam: bool = True,
        template: dict[str, Any] | None = None,
        repository_parameters: dict[str, dict[str, str]] | None = None,
        secrets: dict[str, dict[str, str]] | None = None,
        repository_template: dict[str, Any] | None = None,
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
        # minute-long wait takes seconds here; the submit function's waits through a GitHub
        # outage take the same cap (the template's RedeliveryMaxWaitSeconds). None keeps the
        # template's delays.
        self.retry_delay_cap_seconds = retry_delay_cap_seconds
        # Each call a role makes is checked against its policies (see modelrun_local.iam).
        self.enforce_iam = enforce_iam and os.environ.get("MODELRUN_LOCAL_IAM", "on") != "off"
        self.template = template  # template.yaml's, unless a test hands in an altered copy
        # Each allow-listed repository gets its repository stack (repository.yaml); these are
        # its parameters beyond the ones every repository stack gets (data grants, secrets).
        self.repository_parameters = repository_parameters or {}
        # Secrets (name -> value) an operator makes for a repository's jobs, by repository: made
        # in Secrets Manager before its repository stack, which grants them (SecretArns).
        self.secrets = secrets or {}
        self.repository_template = repository_template  # repository.yaml's, unless a test alters it
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
        # Called with (job name, status, time.monotonic(), job id) as the executor sets each status
        # (SUBMITTED as SubmitJob accepts the job).
        self.batch_state_listeners: list[Callable[[str, str, float, str], None]] = []

    # -- lifecycle ------------------------------------------------------------------------
    def __enter__(self) -> LocalRuntime:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        self._saved_environ = dict(os.environ)
        os.environ.update(aws_process.aws_environment(self.endpoint))
        _fresh_boto3_session()
        self.invoke_endpoint = InvokeEndpoint(lambda: getattr(self, "lambdas", None))
        ctx = _aws_process_context()
        self.shared = aws_process.Shared.make(ctx)
        self.decision_log = Path(tempfile.mkdtemp(prefix="modelrun-iam-")) / "decisions.jsonl"
        self.images_dir = Path(tempfile.mkdtemp(prefix="modelrun-images-"))  # pushed images' files
        settings = aws_process.ProcessSettings(
            port=self.port,
            lambda_url=self.invoke_endpoint.url,
            batch_delay_seconds=self.batch_delay_seconds,
            job_environment=self.job_environment,
            enforce_iam=self.enforce_iam,
            decision_log=str(self.decision_log),
        )
        self.aws = ctx.Process(
            target=aws_process.serve, args=(settings, self.shared), name="modelrun-local-aws", daemon=True
        )
        self.aws.start()
        deadline = time.monotonic() + 120
        while not self.shared.ready.wait(0.2):
            if not self.aws.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the local AWS process did not start (exit code {self.aws.exitcode})")
        # From here on this process is the operator: an IAM user with every permission.
        self.operator_credentials: dict[str, str] = self.shared.operator.get(timeout=10)
        os.environ.update(self.operator_credentials)
        _fresh_boto3_session()
        self.executor = ExecutorState(self.shared)
        threading.Thread(target=self._relay_batch_states, daemon=True, name="batch-states").start()
        self.github.start()
        # The stack's OIDC provider is GitHub's (token.actions.githubusercontent.com); locally its
        # issuer is the local GitHub, as an endpoint is.
        self._control(
            "oidc-provider",
            {
                "url": "token.actions.githubusercontent.com",
                "issuer": self.github.issuer.issuer,
                "jwks_url": f"{self.github.issuer.issuer}/.well-known/jwks",
            },
        )
        parameters = {
            "GitHubRepositories": self.repository,
            "GitHubApiUrl": self.github.url,
            # The local GitHub is the Actions OIDC issuer, shaped as GitHub Enterprise Server's.
            "GitHubOidcIssuer": self.github.issuer.issuer,
            # The submit function's waits through a GitHub outage, capped as the state machine's.
            **({"RedeliveryMaxWaitSeconds": str(self.retry_delay_cap_seconds)} if self.retry_delay_cap_seconds else {}),
            **self.parameters,
        }
        self.stack = deploy(self.stack_name, parameters, REGION, template=self.template)
        self.outputs = self.stack.outputs
        self.repository_outputs: dict[str, dict[str, str]] = {}
        for repository in parameters["GitHubRepositories"].split(","):
            self.repository_outputs[repository.lower()] = self._deploy_repository(repository, parameters)
        self._create_executing_state_machine()
        self._configure_secret()
        self.configure_repository()
        workflow_job.REPOSITORY_VARIABLES.clear()
        for repository in self.repository_outputs:
            workflow_job.REPOSITORY_VARIABLES[repository] = self.repository_variables(repository)
        workflow_job.REPOSITORY_VARIABLES[""] = self.repository_variables()
        self._role_keys: dict[str, dict[str, str]] = {}
        self.lambdas = Lambdas(self.stack, self._function_environment)
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
        if hasattr(self, "lambdas"):
            self.lambdas.stop()
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
        if hasattr(self, "decision_log"):
            shutil.rmtree(self.decision_log.parent, ignore_errors=True)
        if hasattr(self, "images_dir"):
            shutil.rmtree(self.images_dir, ignore_errors=True)
        # Leave the process as it was: later code (or tests) must not reach a stopped endpoint.
        os.environ.clear()
        os.environ.update(self._saved_environ)
        _fresh_boto3_session()

    # -- identities ---------------------------------------------------------------------------
    def _control(self, name: str, body: dict[str, Any]) -> dict[str, Any]:
        response = requests.post(f"{self.endpoint}{moto_hooks.CONTROL_PATH}{name}", json=body, timeout=30)
        if response.status_code == 403:
            raise PermissionError(response.json().get("error", response.text))
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result

    def service_credentials(self, role_arn: str, service: str, session: str) -> dict[str, str]:
        """A role's credentials as ``service`` gets them (its trust policy must admit it)."""
        return self._control("service-credentials", {"role_arn": role_arn, "service": service, "session": session})

    def role_keys(self, logical_id: str) -> dict[str, str]:
        """boto3 client arguments for a function's execution role."""
        if logical_id not in self._role_keys:
            fn = self.stack.functions[logical_id]
            keys = self.service_credentials(fn["role"], "lambda.amazonaws.com", fn["name"])
            self._role_keys[logical_id] = {
                "aws_access_key_id": keys["AWS_ACCESS_KEY_ID"],
                "aws_secret_access_key": keys["AWS_SECRET_ACCESS_KEY"],
                "aws_session_token": keys["AWS_SESSION_TOKEN"],
            }
        return self._role_keys[logical_id]

    def _function_environment(self, logical_id: str) -> dict[str, str]:
        """What Lambda gives a function's environment: its variables, its role's credentials,
        the runtime's own variables; nothing of this process's."""
        fn = self.stack.functions[logical_id]
        keys = self.role_keys(logical_id)
        variables = {k: str(v) for k, v in fn["environment"].items()}
        if "REPORT_STATE_MACHINE_ARN" in variables:
            variables["REPORT_STATE_MACHINE_ARN"] = self.state_machine_arn  # the executing copy
        return {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "LANG": "C.UTF-8",
            "TZ": ":UTC",
            "PYTHONPATH": str(lambdas.CODE),
            "LAMBDA_TASK_ROOT": str(lambdas.CODE),
            "_HANDLER": fn["handler"],
            "AWS_EXECUTION_ENV": "AWS_Lambda_python3.12",
            "AWS_LAMBDA_FUNCTION_NAME": fn["name"],
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(fn["memory"]),
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{fn['name']}",
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_REGION": REGION,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_ACCESS_KEY_ID": keys["aws_access_key_id"],
            "AWS_SECRET_ACCESS_KEY": keys["aws_secret_access_key"],
            "AWS_SESSION_TOKEN": keys["aws_session_token"],
            **variables,
        }

    def _deploy_repository(self, repository: str, parameters: dict[str, str]) -> dict[str, str]:
        """The repository's stack, as docs/adopt.md has operators deploy it."""
        shared: dict[str, str] = {
            k: parameters[k]
            for k in ("ApprovalEnvironment", "BaselineEnvironment", "PinnedWorkflow")
            if k in parameters
        }
        name = f"{self.stack_name}-{naming.share_identifier(repository).replace('_', '-')}"[:128]
        secretsmanager = boto3.client("secretsmanager")
        arns = [
            secretsmanager.create_secret(Name=secret, SecretString=value)["ARN"]
            for secret, value in self.secrets.get(repository.lower(), {}).items()
        ]
        return deploy_repository(
            name,
            {
                "ModelrunStackName": self.stack_name,
                "Repository": repository,
                "ImageName": repository.lower(),
                **shared,
                **({"SecretArns": ",".join(arns)} if arns else {}),
                **self.repository_parameters.get(repository.lower(), {}),
            },
            REGION,
            template=self.repository_template,
        )

    def repository_stack(self, repository: str | None = None) -> dict[str, str]:
        """A repository stack's outputs (the runtime's own repository's by default)."""
        return self.repository_outputs[(repository or self.repository).lower()]

    def repository_variables(self, repository: str | None = None) -> dict[str, str]:
        """The repository variables docs/adopt.md has operators set, from the stacks' outputs."""
        outputs = self.repository_stack(repository)
        return {
            "MODELRUN_ROLE_ARN": outputs["PullRequestRoleArn"],
            "MODELRUN_BASELINE_ROLE_ARN": outputs["BaselineRoleArn"],
            "MODELRUN_ECR_REPOSITORY": outputs["ImageRepositoryName"],
            "MODELRUN_AWS_REGION": REGION,
            "MODELRUN_QUEUE_URL": self.outputs["RunRequestsQueueUrl"],
        }

    def iam_decisions(self) -> list[iam.Decision]:
        """Every IAM decision the local AWS made for a role (or a service taking one)."""
        return iam.read_log(self.decision_log)

    def iam_denials(self) -> list[iam.Decision]:
        return [d for d in self.iam_decisions() if not d.allowed]

    def _relay_batch_states(self) -> None:
        while not self.stopping.is_set():
            try:
                name, status, at, job_id = self.shared.states.get(timeout=0.2)
            except queue.Empty:
                continue
            except (EOFError, OSError):
                return
            for listener in list(self.batch_state_listeners):
                listener(name, status, at, job_id)

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

        template = self.template if self.template is not None else load_template()
        props = template["Resources"]["ReportStateMachine"]["Properties"]
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
        self._control("state-machine-role", {"role_arn": role})  # its tasks run as this role

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

    def configure_repository(self) -> None:
        """Set the model repository up (again) as docs/adopt.md has it (`modelrun doctor` finds
        nothing to fix): the approval environment with a reviewer who cannot approve their own runs,
        the baseline environment limited to the default branch, the repository variables."""
        approval = self.parameters.get("ApprovalEnvironment", "staging")
        baseline = self.parameters.get("BaselineEnvironment", "modelrun-main")
        self.github.put_environment(
            self.repository, approval, Environment(reviewers=(LOCAL_REVIEWER,), prevent_self_review=True)
        )
        self.github.put_environment(
            self.repository,
            baseline,
            Environment(branch_policy="custom", branch_patterns=(self.github.default_branch,)),
        )
        for name, value in self.repository_variables().items():
            self.github.set_variable(self.repository, name, value)

    def _shorten_visibility(self) -> None:
        """Redelivery after 2 s instead of minutes: same semantics, on a demo's time scale."""
        sqs = boto3.client("sqs")
        for mapping in self.stack.event_sources:
            url = sqs.get_queue_url(QueueName=mapping.queue_arn.rsplit(":", 1)[-1])["QueueUrl"]
            sqs.set_queue_attributes(QueueUrl=url, Attributes={"VisibilityTimeout": "2"})

    # -- helpers for the demo, the CLI and the tests -----------------------------------------
    def push_image(
        self,
        directory: Path,
        tag: str,
        python: Path | None = None,
        dockerfile: str = "Dockerfile",
        repository: str | None = None,
    ) -> str:
        """Like `docker build -f dockerfile directory && docker push`: an ECR image whose manifest
        carries what Batch would run from it (``modelrun_local.dockerfile``).

        The image's files: what its final stage COPYs from the build context is copied into a
        directory of this runtime's, at the image's paths under it (``/app/model.R`` at
        ``ROOT/app/model.R``); the job runs in WORKDIR there. What RUN would install comes from
        the host (``Rscript``, ``aws``), and ``python`` in the image's command means ``python``
        here: the context's own ``.venv`` if it has one (made as the image's RUN makes it), else
        this interpreter. ``repository``: whose image repository (the runtime's own by default)."""
        ecr = boto3.client("ecr")
        image_repository = self.repository_stack(repository)["ImageRepositoryUri"]
        name = image_repository.split("/", 1)[1]
        image = dockerfile_reader.read(directory, dockerfile)
        if python is None:
            own = directory / ".venv" / "bin" / "python"
            python = own if own.exists() else Path(sys.executable)
        files = [(item.source, item.destination) for item in image.copies]  # (source, path in the image)
        config = {
            "entrypoint": image.entrypoint,
            "cmd": image.cmd,
            "workdir": image.workdir,
            "env": image.env,
            "user": image.user,
            "python": str(python),
        }
        digest_source = hashlib.sha256(json.dumps(config, sort_keys=True).encode())
        for source, destination in files:
            digest_source.update(destination.encode())
            digest_source.update(source.read_bytes())
        root = self.images_dir / digest_source.hexdigest()
        if not root.exists():
            staging = Path(tempfile.mkdtemp(dir=self.images_dir))
            for source, destination in files:
                target = staging / destination.lstrip("/")
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, target)
            (staging / image.workdir.lstrip("/")).mkdir(parents=True, exist_ok=True)  # as Docker makes it
            try:
                staging.rename(root)
            except OSError:  # the same image, staged meanwhile by another push
                shutil.rmtree(staging, ignore_errors=True)
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
                    aws_process.ANNOTATION_ROOT: str(root),
                    aws_process.ANNOTATION_CONFIG: json.dumps(config),
                },
            }
        )
        # The digest is the manifest's sha256, as a registry computes it (moto doesn't).
        digest = f"sha256:{hashlib.sha256(manifest.encode()).hexdigest()}"
        ecr.put_image(repositoryName=name, imageManifest=manifest, imageTag=tag, imageDigest=digest)
        return f"{image_repository}@{digest}"

    def wait_until_idle(
        self, timeout: float = 120.0, settle: float = 0.5, functions: Collection[str] | None = None
    ) -> None:
        """Until every queue is drained, no job runs and no execution is running, for ``settle``
        seconds on end. With ``functions`` (logical ids): until those functions' queues are
        drained and their pollers idle, whatever else runs."""
        sqs = boto3.client("sqs")
        sfn = boto3.client("stepfunctions")
        pollers = [p for p in self.pollers if functions is None or p.mapping.function in functions]
        deadline = time.monotonic() + timeout
        quiet_since: float | None = None
        while time.monotonic() < deadline:
            busy = any(p.busy for p in pollers) or (functions is None and self.executor.active > 0)
            if not busy:
                for poller in pollers:
                    attrs = sqs.get_queue_attributes(
                        QueueUrl=poller.queue_url,
                        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
                    )["Attributes"]
                    if int(attrs["ApproximateNumberOfMessages"]) or int(attrs["ApproximateNumberOfMessagesNotVisible"]):
                        busy = True
                        break
            if not busy and functions is None:
                running = sfn.list_executions(stateMachineArn=self.state_machine_arn, statusFilter="RUNNING")
                busy = bool(running["executions"])
            if busy:
                quiet_since = None
            elif quiet_since is None:
                quiet_since = time.monotonic()
            elif time.monotonic() - quiet_since >= settle:
                return
            time.sleep(0.2)  # each check walks every queued message in moto
        what = "the local stack" if functions is None else ", ".join(functions)
        raise TimeoutError(f"{what} was still busy after {timeout} s")
