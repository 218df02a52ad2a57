"""Which modelrun stack the CLI talks to, and the one-line errors when it can't.

A deployed stack is found by name through CloudFormation (its outputs name the table, queues
and job queues) with the AWS profile and region of a ``boto3.Session``. ``--local`` targets the
embedded local stack that ``modelrun local up`` keeps running: it writes its endpoint and stack
name to ``.modelrun/local.json`` and the CLI reads them back, with the local operator's key.
"""

from __future__ import annotations

import functools
import inspect
import json
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Concatenate, NoReturn
from urllib.parse import urlparse

import boto3
import typer
from botocore.config import Config
from botocore.exceptions import (
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
    ProfileNotFound,
)

from modelrun.adapters.aws import RunsTable

DEFAULT_STACK = "modelrun"
LOCAL_STATE = Path(".modelrun") / "local.json"
LOCAL_REGION = "us-east-1"
REQUIRED_OUTPUTS = (
    "RunsTableName",
    "RunRequestsQueueUrl",
    "RunRequestsDLQUrl",
    "JobEventsDLQUrl",
    "CpuJobQueueArn",
    "GpuJobQueueArn",
    "ResultsBucketName",
)
_CONFIG = Config(retries={"mode": "standard", "max_attempts": 3}, connect_timeout=5, read_timeout=30)

# The options every stack command takes (grouped under "Stack" in --help); `stack_options` adds them.
StackOption = Annotated[
    str,
    typer.Option("--stack", envvar="MODELRUN_STACK", help="The CloudFormation stack name.", rich_help_panel="Stack"),
]
ProfileOption = Annotated[
    str | None,
    typer.Option("--profile", help="AWS profile (default: AWS_PROFILE or the default one).", rich_help_panel="Stack"),
]
RegionOption = Annotated[
    str | None,
    typer.Option("--region", help="AWS region (default: the profile's).", rich_help_panel="Stack"),
]
LocalOption = Annotated[
    bool,
    typer.Option("--local", help="Use the local stack of `modelrun local up`.", rich_help_panel="Stack"),
]


class CliError(Exception):
    """A problem the user can fix: printed as one line, no traceback."""

    def __init__(self, message: str, exit_code: int = 2) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def fail(message: str, exit_code: int = 2) -> NoReturn:
    raise CliError(message, exit_code)


def local_state_path() -> Path:
    return Path(os.environ.get("MODELRUN_LOCAL_STATE") or LOCAL_STATE)


def read_local_state(path: Path | None = None) -> dict[str, Any]:
    """The running local stack's endpoint and name; a CliError when it isn't running."""
    path = path or local_state_path()
    hint = "start it with `modelrun local up` (in another terminal)"
    try:
        state: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        endpoint = str(state["endpoint"])
        parsed = urlparse(endpoint)
        host, port = parsed.hostname or "127.0.0.1", parsed.port or 80
    except FileNotFoundError:
        fail(f"the local stack isn't running (no {path}): {hint}")
    except (OSError, ValueError, KeyError, TypeError) as error:
        fail(f"the local stack's state file {path} is unreadable ({error}): {hint}")
    try:
        with socket.create_connection((host, port), timeout=1):
            pass
    except OSError:
        fail(f"the local stack isn't running (nothing answers at {endpoint}): {hint}")
    return state


@dataclass
class Stack:
    """A connected stack: the session, its region and endpoint, the stack's outputs and its
    parameters (as deployed; a list parameter comma-joined)."""

    name: str
    session: boto3.Session
    region: str
    endpoint: str | None
    outputs: dict[str, str]
    local: bool = False
    parameters: dict[str, str] = field(default_factory=dict)
    _clients: dict[str, Any] = field(default_factory=dict, repr=False)

    def client(self, service: str) -> Any:
        if service not in self._clients:
            self._clients[service] = self.session.client(  # type: ignore[call-overload]
                service, endpoint_url=self.endpoint, config=_CONFIG
            )
        return self._clients[service]

    def runs(self) -> RunsTable:
        resource = self.session.resource("dynamodb", endpoint_url=self.endpoint, config=_CONFIG)
        return _SessionRunsTable(resource.Table(self.outputs["RunsTableName"]))

    def output(self, key: str) -> str:
        try:
            return self.outputs[key]
        except KeyError:
            fail(f"stack {self.name} has no output {key}: is it a modelrun stack (and up to date)?")


class _SessionRunsTable(RunsTable):
    """The functions' RunsTable, on this CLI session's table instead of boto3's default one."""

    def __init__(self, table: Any) -> None:
        self.table = table


def connect(stack: str, profile: str | None, region: str | None, local: bool) -> Stack:
    """Find the stack and read its outputs (one DescribeStacks call)."""
    endpoint: str | None
    if local:
        state = read_local_state()
        stack = str(state.get("stack") or stack)
        endpoint = str(state["endpoint"])
        region = str(state.get("region") or LOCAL_REGION)
        # The local stack's operator key (it enforces IAM as AWS does); never a real profile's keys.
        keys = state.get("credentials") or {}
        session = boto3.Session(
            aws_access_key_id=str(keys.get("AWS_ACCESS_KEY_ID", "testing")),
            aws_secret_access_key=str(keys.get("AWS_SECRET_ACCESS_KEY", "testing")),
            region_name=region,
        )
    else:
        try:
            session = boto3.Session(profile_name=profile, region_name=region)
        except ProfileNotFound:
            fail(f"AWS profile {profile!r} not found: check --profile / AWS_PROFILE (`aws configure list-profiles`)")
        endpoint = None  # boto3 reads AWS_ENDPOINT_URL itself
        if not session.region_name:
            fail("no AWS region: pass --region or set AWS_REGION (or a region in your AWS profile)")
        region = session.region_name
    cloudformation = session.client("cloudformation", endpoint_url=endpoint, config=_CONFIG)
    try:
        found = cloudformation.describe_stacks(StackName=stack)["Stacks"]
    except ClientError as error:
        if error.response["Error"]["Code"] == "ValidationError" and "does not exist" in str(error):
            if local:
                fail(f"stack {stack} not found at {endpoint}: restart `modelrun local up`")
            fail(f"stack {stack} not found in {region}: wrong --region?")
        raise
    outputs = {o["OutputKey"]: o["OutputValue"] for o in found[0].get("Outputs", [])}
    parameters = {p["ParameterKey"]: p.get("ParameterValue", "") for p in found[0].get("Parameters", [])}
    missing = [key for key in REQUIRED_OUTPUTS if key not in outputs]
    if missing:
        fail(f"stack {stack} in {region} lacks the outputs {', '.join(missing)}: is it a modelrun stack?")
    return Stack(
        name=stack,
        session=session,
        region=region,
        endpoint=endpoint,
        outputs=outputs,
        local=local,
        parameters=parameters,
    )


@dataclass(frozen=True)
class StackChoice:
    """The stack a command was pointed at (its four connection options), connected on demand.

    A command checks its own arguments first, so a bad one is reported without touching AWS.
    """

    name: str = DEFAULT_STACK
    profile: str | None = None
    region: str | None = None
    local: bool = False

    def connect(self) -> Stack:
        return connect(self.name, self.profile, self.region, self.local)


_KW = inspect.Parameter.KEYWORD_ONLY
_STACK_PARAMETERS = (
    inspect.Parameter("stack", _KW, default=DEFAULT_STACK, annotation=StackOption),
    inspect.Parameter("profile", _KW, default=None, annotation=ProfileOption),
    inspect.Parameter("region", _KW, default=None, annotation=RegionOption),
    inspect.Parameter("local", _KW, default=False, annotation=LocalOption),
)


def stack_options[**P, R](command: Callable[Concatenate[StackChoice, P], R]) -> Callable[P, R]:
    """The command with the four connection options after its own, given to it as one StackChoice.

    Typer builds a command's options from its signature, so the wrapper's signature is the
    command's own parameters plus these: each command's --help lists them, and they go after
    the command name (``modelrun runs --local``), which a group callback's options could not.
    """
    signature = inspect.signature(command, eval_str=True)
    own = list(signature.parameters.values())[1:]  # the first one is the StackChoice
    clash = {p.name for p in own} & {p.name for p in _STACK_PARAMETERS}
    if clash:
        raise TypeError(f"{command.__name__} has its own {', '.join(sorted(clash))}")

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> R:  # Typer passes every parameter by name
        choice = StackChoice(
            name=kwargs.pop("stack", DEFAULT_STACK),
            profile=kwargs.pop("profile", None),
            region=kwargs.pop("region", None),
            local=kwargs.pop("local", False),
        )
        return command(choice, *args, **kwargs)

    parameters = [*own, *_STACK_PARAMETERS]
    wrapper.__signature__ = signature.replace(parameters=parameters)  # type: ignore[attr-defined]
    wrapper.__annotations__ = {p.name: p.annotation for p in parameters} | {"return": signature.return_annotation}
    return wrapper


def _describe(error: Exception) -> str | None:
    """The one line for an AWS error the user can fix, or None to let it propagate."""
    if isinstance(error, NoCredentialsError):
        return (
            "no AWS credentials: run `aws sso login` (or `aws configure`), pass --profile, "
            "or use --local for the local stack"
        )
    if isinstance(error, PartialCredentialsError):
        return f"incomplete AWS credentials ({error}): check your profile or AWS_* variables"
    if isinstance(error, NoRegionError):
        return "no AWS region: pass --region or set AWS_REGION"
    if isinstance(error, ProfileNotFound):
        return f"{error}: check --profile / AWS_PROFILE"
    if isinstance(error, EndpointConnectionError):
        return f"cannot reach AWS ({error.kwargs.get('endpoint_url', 'the endpoint')}): check your network or --region"
    if isinstance(error, ClientError):
        code = error.response.get("Error", {}).get("Code", "")
        message = error.response.get("Error", {}).get("Message", str(error))
        if code in ("ExpiredToken", "ExpiredTokenException", "RequestExpired"):
            return "your AWS session has expired: log in again (`aws sso login`)"
        if code in ("InvalidClientTokenId", "UnrecognizedClientException", "SignatureDoesNotMatch"):
            return f"AWS rejected your credentials ({code}): check --profile"
        if code in ("AccessDenied", "AccessDeniedException", "UnauthorizedOperation"):
            return f"access denied: {message}"
    return None


def handle_errors[**P, R](command: Callable[P, R]) -> Callable[P, R]:
    """Turn the errors a user can fix into one line on stderr and exit status 2 (1 for refusals)."""

    @functools.wraps(command)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return command(*args, **kwargs)
        except CliError as error:
            typer.echo(f"modelrun: {error}", err=True)
            raise typer.Exit(error.exit_code) from None
        except Exception as error:
            line = _describe(error)
            if line is None:
                raise
            typer.echo(f"modelrun: {line}", err=True)
            raise typer.Exit(2) from None

    return wrapper
