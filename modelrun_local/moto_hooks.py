"""Every touch of moto's private internals, in one place (moto is pinned exactly: 5.2.5).

moto offers no public extension point for these, so each hook has one smoke test
(tests/integration/test_moto_hooks.py) that fails loudly when an upgrade moves the internals.

- Lambda invokes without Docker are served by ``LambdaSimpleBackend.invoke``: route them to the
  real handler (through the runtime's invoke endpoint), and report a raised exception the way AWS does
  (``x-amz-function-error: Unhandled`` and a payload with ``errorType``/``errorMessage``), so the
  state machine's Retry and Catch match on the exception's name.
- A submitted Batch job is marked finished at once in ``BatchSimpleBackend._mark_job_as_finished``:
  hand the job to the local executor instead, which drives its lifecycle.
- moto's backends are not thread-safe (a DynamoDB query while another thread writes can fail
  with "dictionary changed size during iteration"), and its server answers many threads at once:
  ``DomainDispatcherApplication.__call__`` is serialised, except Lambda invokes, whose handlers
  call back into the server.
- ``backends.list_of_moto_modules`` lists moto's package directory on every request, under a
  lock: the list is computed once.
- The state machine interpreter parses the definition (ANTLR) and builds a boto3 client for
  every execution and task: the parse is cached per definition (the program's components keep
  no execution state for the Pass/Task/Choice/Fail states used here; it lives in the
  execution's Environment), and the Lambda/SNS task clients are built once.
- DynamoDB's item operations hold their result in wire form already (typed attribute values):
  it is written with ``json.dumps`` instead of walking the operation's output shape member by
  member, which cost more than the operation itself. A test checks both give the same JSON.
- CloudFormation's DescribeStacks gives a list parameter (``CommaDelimitedList``) comma-joined,
  as it was passed; moto's ``Stack.parameter_list`` gives the parsed Python list's repr.
"""

from __future__ import annotations

import base64
import functools
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from html import escape
from typing import Any
from urllib.parse import urlparse

import boto3
import jsonpath_ng.ext
import jwt as pyjwt
from moto import backends
from moto.awslambda_simple.models import LambdaSimpleBackend
from moto.batch.models import Job
from moto.batch_simple.models import BatchSimpleBackend
from moto.cloudformation.models import Stack as FakeStack
from moto.core.authorization import ActionAuthenticatorMixin
from moto.core.exceptions import AccessDeniedError
from moto.core.responses import ActionContext, ActionResult
from moto.core.utils import unix_time
from moto.dynamodb.responses import DynamoResult
from moto.iam.access_control import AssumedRoleAccessKey
from moto.iam.models import iam_backends
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler
from moto.secretsmanager.models import secretsmanager_backends
from moto.sqs.models import Message, SQSBackend
from moto.stepfunctions.parser.asl.component.state.exec.state_task import lambda_eval_utils
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import state_task_service_sns
from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser
from moto.sts.models import sts_backends
from werkzeug.exceptions import HTTPException

from modelrun_local import iam

# (function name or ARN, payload) -> (response payload, error type or None)
LambdaRouter = Callable[[str, bytes], tuple[bytes, str | None]]
JobHandler = Callable[[Job], None]

_original_invoke = LambdaSimpleBackend.invoke
_original_finish = BatchSimpleBackend._mark_job_as_finished
_original_dispatch = DomainDispatcherApplication.__call__
_original_protocol = MotoRequestHandler.protocol_version
_original_modules = backends.list_of_moto_modules
_original_parse = AmazonStateLanguageParser.parse
_original_task_clients = {m: m.boto_client_for for m in (lambda_eval_utils, state_task_service_sns)}
_original_dynamo_result = DynamoResult.execute_result
_original_retention_check = SQSBackend.is_message_valid_based_on_retention_period
_original_jsonpath_parse = jsonpath_ng.ext.parse  # type: ignore[attr-defined]
_original_authorize = ActionAuthenticatorMixin._authenticate_and_authorize_action
_original_parameter_list = FakeStack.parameter_list
_one_at_a_time = threading.Lock()
ACCOUNT = "123456789012"  # moto's default account
CONTROL_PATH = "/_modelrun/"  # the local stack's own control calls, beside moto's /moto-api/
# Their results are items, keys and counts: already what goes on the wire.
DYNAMODB_WIRE_FORM_OPERATIONS = frozenset({"GetItem", "PutItem", "UpdateItem", "DeleteItem", "Query", "Scan"})


# The local stack's control calls (POST CONTROL_PATH + name, JSON in and out), e.g. a service
# taking a role; a handler raises PermissionError to refuse.
ControlHandler = Callable[[dict[str, Any]], dict[str, Any]]
control_handlers: dict[str, ControlHandler] = {}


def _control(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    name = str(environ.get("PATH_INFO", "")).removeprefix(CONTROL_PATH)
    length = int(environ.get("CONTENT_LENGTH") or 0)
    request = json.loads(environ["wsgi.input"].read(length) or b"{}")
    handler = control_handlers.get(name)
    try:
        if handler is None:
            raise LookupError(name)
        status, body = "200 OK", handler(request)
    except PermissionError as error:
        status, body = "403 Forbidden", {"error": str(error)}
    except LookupError as error:
        status, body = "404 Not Found", {"error": f"no control call {error}"}
    payload = json.dumps(body).encode()
    start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(payload)))])
    return [payload]


def serialise_requests() -> None:
    def dispatch(self: DomainDispatcherApplication, environ: dict[str, Any], start_response: Any) -> Any:
        path = str(environ.get("PATH_INFO", ""))
        if path.startswith(CONTROL_PATH):
            with _one_at_a_time:
                return _control(environ, start_response)
        if path.startswith("/2015-03-31/functions/") and "/invocations" in path:
            return _original_dispatch(self, environ, start_response)
        with _one_at_a_time:
            # Consume the response inside the lock: moto builds it lazily.
            return list(_original_dispatch(self, environ, start_response))

    DomainDispatcherApplication.__call__ = dispatch  # type: ignore[method-assign]
    modules = list(_original_modules())
    backends.list_of_moto_modules = lambda: modules


def keep_connections_alive() -> None:
    """HTTP/1.1: a client's connection (and the server thread behind it) serves many requests."""
    MotoRequestHandler.protocol_version = "HTTP/1.1"


def reuse_state_machine_work(credentials: Callable[[], dict[str, str] | None] = lambda: None) -> None:
    """``credentials``: the state machine role's, for its tasks' calls (None: moto's fixed key)."""
    parse = functools.lru_cache(maxsize=8)(_original_parse)
    AmazonStateLanguageParser.parse = staticmethod(parse)  # type: ignore[method-assign]
    clients: dict[tuple[str, str, str], Any] = {}
    lock = threading.Lock()

    def client_for(region: str, service: str, state_credentials: Any = None) -> Any:
        with lock:  # boto3's default session must not build clients on two threads at once
            keys = credentials()
            key = (region, service, keys["AWS_ACCESS_KEY_ID"] if keys else "")
            if key not in clients:
                client = _original_task_clients[lambda_eval_utils](region, service, state_credentials)
                if keys:  # the same client, signed as the state machine's role
                    client = boto3.client(  # type: ignore[call-overload]
                        service,
                        region_name=region,
                        endpoint_url=client.meta.endpoint_url,
                        aws_access_key_id=keys["AWS_ACCESS_KEY_ID"],
                        aws_secret_access_key=keys["AWS_SECRET_ACCESS_KEY"],
                        aws_session_token=keys["AWS_SESSION_TOKEN"],
                        config=client.meta.config,
                    )
                clients[key] = client
            return clients[key]

    for module in _original_task_clients:
        module.boto_client_for = client_for  # type: ignore[attr-defined]


def _binary_as_base64(value: Any) -> str:
    if isinstance(value, bytes | bytearray):
        return base64.b64encode(value).decode()  # the JSON protocol's form of a blob
    raise TypeError(type(value).__name__)


def keep_deep_queues_cheap() -> None:
    def within_retention(self: SQSBackend, queue_name: str, message: Message) -> bool:
        retention = int(self.get_queue(queue_name).message_retention_period)  # type: ignore[attr-defined]
        return bool(retention + message.sent_timestamp / 1000 > unix_time())  # type: ignore[operator]

    SQSBackend.is_message_valid_based_on_retention_period = within_retention  # type: ignore[method-assign]
    # moto imports `parse` from the module at each call: the cached one is found there.
    setattr(jsonpath_ng.ext, "parse", functools.lru_cache(maxsize=64)(_original_jsonpath_parse))  # noqa: B010


def write_dynamodb_items_directly() -> None:
    def execute_result(self: DynamoResult, context: ActionContext) -> Any:
        if context.operation_model.name not in DYNAMODB_WIRE_FORM_OPERATIONS:
            return _original_dynamo_result(self, context)
        try:
            body = json.dumps(self.result, separators=(",", ":"), default=_binary_as_base64)
        except TypeError:  # not plain JSON after all: let moto's serializer deal with it
            return _original_dynamo_result(self, context)
        status, headers, _ = ActionResult({}).execute_result(context)  # status and content type
        return status, headers, body

    DynamoResult.execute_result = execute_result  # type: ignore[method-assign,assignment]


def describe_list_parameters_as_aws() -> None:
    def parameter_list(self: FakeStack) -> list[dict[str, Any]]:
        listed: list[dict[str, Any]] = _original_parameter_list.fget(self)  # type: ignore[attr-defined]
        for parameter in listed:
            if isinstance(parameter["ParameterValue"], list):
                parameter["ParameterValue"] = ",".join(str(v) for v in parameter["ParameterValue"])
        return listed

    FakeStack.parameter_list = property(parameter_list)  # type: ignore[method-assign,assignment]


def route_lambda_invokes(router: LambdaRouter) -> None:
    def invoke(
        self: LambdaSimpleBackend,
        function_name: str,
        qualifier: str | None,
        body: Any,
        headers: Any,
        response_headers: Any,
    ) -> bytes:
        payload = body if isinstance(body, bytes) else (body or "{}").encode()
        result, error_type = router(function_name, payload)
        if error_type:
            response_headers["x-amz-function-error"] = "Unhandled"
        return result

    LambdaSimpleBackend.invoke = invoke  # type: ignore[method-assign]


def take_over_batch_jobs(handler: JobHandler) -> None:
    def mark_job(self: BatchSimpleBackend, include_start_attempt: bool, job: Job) -> None:
        self.backend._jobs[job.job_id] = job
        handler(job)

    BatchSimpleBackend._mark_job_as_finished = mark_job  # type: ignore[method-assign]


def restore() -> None:
    stop_enforcing()
    control_handlers.clear()
    MotoRequestHandler.protocol_version = _original_protocol
    DomainDispatcherApplication.__call__ = _original_dispatch  # type: ignore[method-assign]
    backends.list_of_moto_modules = _original_modules
    LambdaSimpleBackend.invoke = _original_invoke  # type: ignore[method-assign]
    BatchSimpleBackend._mark_job_as_finished = _original_finish  # type: ignore[method-assign]
    DynamoResult.execute_result = _original_dynamo_result  # type: ignore[method-assign]
    FakeStack.parameter_list = _original_parameter_list  # type: ignore[method-assign]
    SQSBackend.is_message_valid_based_on_retention_period = _original_retention_check  # type: ignore[method-assign]
    setattr(jsonpath_ng.ext, "parse", _original_jsonpath_parse)  # noqa: B010
    AmazonStateLanguageParser.parse = staticmethod(_original_parse)  # type: ignore[method-assign]
    for module, original in _original_task_clients.items():
        module.boto_client_for = original  # type: ignore[attr-defined]


# --- the Batch job object: the few fields the executor moves ---------------------------------


def set_job_status(job: Job, status: str) -> None:
    job.status = status


def job_started(job: Job) -> None:
    job.job_started_at = datetime.now()
    job.log_stream_name = job._stream_name
    job._start_attempt()


def job_stopped(job: Job, exit_code: int | None, reason: str | None) -> None:
    job.exit_code = exit_code
    if reason and not job.job_stopped_reason:
        job.job_stopped_reason = reason
    if job.latest_attempt is not None:
        job.latest_attempt["container"]["exitCode"] = exit_code
        if reason:
            job.latest_attempt["statusReason"] = reason
    job._mark_stopped(success=exit_code == 0)


def job_terminated(job: Job) -> bool:
    return bool(job.stop)


def job_log_stream(job: Job) -> str:
    return str(job._stream_name)


def job_container(job: Job) -> dict[str, Any]:
    """Command and environment as Batch would give the container (definition + overrides)."""
    return {
        "command": list(job._get_container_property("command", [])),
        "environment": {e["name"]: e["value"] for e in job._get_container_property("environment", [])},
        "image": (job.job_definition.container_properties or {}).get("image", ""),
        "job_role_arn": (job.job_definition.container_properties or {}).get("jobRoleArn"),
        "execution_role_arn": (job.job_definition.container_properties or {}).get("executionRoleArn"),
        "secrets": list((job.job_definition.container_properties or {}).get("secrets", [])),
    }


def describe_job(job: Job) -> dict[str, Any]:
    detail: dict[str, Any] = json.loads(json.dumps(job.describe(), default=str))
    # moto's describe() drops the exit code from `container`; Batch reports it there.
    if job.exit_code is not None:
        detail.setdefault("container", {})["exitCode"] = job.exit_code
    return detail


# --- IAM ------------------------------------------------------------------------------------


@dataclass
class Enforcement:
    """What the IAM hook needs besides moto's state."""

    log: iam.DecisionLog
    # OIDC providers as IAM names them (host/path) -> (the issuer their tokens carry, JWKS URL):
    # the local issuer stands in for GitHub's, as an endpoint does.
    providers: dict[str, tuple[str, str]] = field(default_factory=dict)
    jwks: dict[str, Any] = field(default_factory=dict)  # JWKS URL -> PyJWKClient


_enforcement: Enforcement | None = None


class _Refusal(HTTPException):
    """A refusal in the protocol's own error shape (``description``), sent as it is: werkzeug's
    default wraps it in an HTML page, which moto's server unwraps for some services and not for
    S3, so every refusal says its body and content type itself."""

    content_type = "text/xml"

    def get_body(self, environ: Any = None, scope: Any = None) -> str:
        return str(self.description)

    def get_headers(self, environ: Any = None, scope: Any = None) -> list[tuple[str, str]]:
        return [("Content-Type", self.content_type)]


class _Refused(_Refusal):
    """An STS refusal, in the query protocol's XML error shape."""

    def __init__(self, code: str, message: str, status: int = 403) -> None:
        super().__init__(escape(message))
        self.code = status
        self.description = (
            '<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type>'
            f"<Code>{code}</Code><Message>{escape(message)}</Message></Error>"
            "<RequestId>local</RequestId></ErrorResponse>"
        )


class _S3Refusal(_Refusal):
    """A refusal as S3 (REST-XML) carries errors: an <Error> root, as the S3 clients parse it."""

    content_type = "application/xml"

    def __init__(self, message: str) -> None:
        super().__init__(escape(message))
        self.code = 403
        self.description = (
            '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessDenied</Code>'
            f"<Message>{escape(message)}</Message><RequestId>local</RequestId></Error>"
        )


class _JsonRefusal(_Refusal):
    """A refusal as the JSON protocols (DynamoDB, SQS, Batch, Step Functions, ...) carry errors."""

    content_type = "application/x-amz-json-1.0"

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = 403
        self.description = json.dumps({"__type": code, "message": message})


def _iam_backend() -> Any:
    return iam_backends[ACCOUNT]["aws"]


def _policy_document(value: Any) -> Any:
    if hasattr(value, "versions"):  # a managed policy: its default version
        value = next(v.document for v in value.versions if v.is_default)
    return json.loads(value) if isinstance(value, str) else value


def role_policies(role_name: str) -> list[Any]:
    """A role's inline and attached policies, as documents (moto's CloudFormation stores some as
    dicts, the API as JSON text)."""
    role = _iam_backend().get_role(role_name)
    return [_policy_document(p) for p in [*role.policies.values(), *role.managed_policies.values()]]


def _secret_arn(secret_id: str) -> str | None:
    for secret in secretsmanager_backends[ACCOUNT]["us-east-1"].secrets.values():
        if secret_id in (secret.name, secret.arn):
            return str(secret.arn)
    return None


def _params(request: Any) -> dict[str, Any]:
    body = request.raw_body
    if body and body[:1] in (b"{", "{"):
        try:
            parsed = json.loads(body)
            return parsed if isinstance(parsed, dict) else {}
        except ValueError:
            return {}
    return {k: v[0] if isinstance(v, list) and len(v) == 1 else v for k, v in request.querystring.items()}


def _authorize(self: Any, iam_request_cls: type, resource: str = "*") -> None:
    enforcement = _enforcement
    if enforcement is None:
        return
    started = time.perf_counter()
    operation = self._get_action()
    if operation == "AssumeRoleWithWebIdentity":  # unsigned, as on AWS: the token is the evidence
        _check_web_identity(self, enforcement)
        return
    if "Authorization" not in self.headers:
        raise _Refused("MissingAuthenticationToken", "Request is missing Authentication Token", 403)
    path = self.raw_path + (f"?{urlparse(self.uri).query}" if urlparse(self.uri).query else "")
    request = iam_request_cls(
        account_id=self.current_account,
        method=self.method,
        path=path,
        data=self.data,
        body=self.raw_body,
        headers=self.headers,
        action=operation,
    )
    # The access key (and a role's session token) must be one IAM or STS issued. The signature
    # itself is not checked: moto recomputes it wrongly for some REST paths (Lambda's).
    key = request._access_key
    if not isinstance(key, AssumedRoleAccessKey):
        return  # an IAM user: the harness's operator identity (administrator)
    call = iam.Call(
        service=request._service,
        operation=operation,
        region=request._region,
        account=self.current_account,
        path=self.raw_path,
        params=_params(self),
        resource=resource,
    )
    action = iam.action_of(call)
    checks: list[tuple[str, str, dict[str, str]]] = [(action, r, {}) for r in iam.resources_of(call, _secret_arn)]
    checks += iam.implied_checks(call)
    policies = role_policies(key._owner_role_name)
    for checked_action, checked_resource, context in checks:
        allowed, reason = iam.evaluate(policies, checked_action, checked_resource, context)
        cost = (time.perf_counter() - started) * 1000
        decision = iam.Decision(key._owner_role_name, checked_action, checked_resource, allowed, reason, check_ms=cost)
        enforcement.log.record(decision)
        started = time.perf_counter()  # after the log's write: a check's cost is its evaluation
        if not allowed:
            message = (
                f"User: {key.arn} is not authorized to perform: {checked_action} on resource: "
                f"{checked_resource} because {reason}"
            )
            if "json" in str(self.headers.get("Content-Type", "")):  # the JSON protocols' error shape
                code = "AccessDenied" if call.service == "sqs" else "AccessDeniedException"
                raise _JsonRefusal(code, message)
            if call.service == "s3":
                raise _S3Refusal(message)
            raise AccessDeniedError(user_arn=key.arn, action=message.split("perform: ", 1)[1])


def _check_web_identity(request: Any, enforcement: Enforcement) -> None:
    params = _params(request)
    role_arn, token = str(params.get("RoleArn", "")), str(params.get("WebIdentityToken", ""))

    def refuse(code: str, reason: str, principal: str = "web-identity") -> None:
        enforcement.log.record(iam.Decision(principal, "sts:AssumeRoleWithWebIdentity", role_arn, False, reason))
        raise _Refused(code, reason)

    try:
        issuer = str(pyjwt.decode(token, options={"verify_signature": False}).get("iss", ""))
    except pyjwt.PyJWTError as error:
        refuse("InvalidIdentityToken", f"the token is not a JWT: {error}")
    backend = _iam_backend()
    found = [(url, jwks) for url, (iss, jwks) in enforcement.providers.items() if iss == issuer]
    providers = {p.url: p for p in backend.open_id_providers.values()}
    if not found or found[0][0] not in providers:
        refuse("InvalidIdentityToken", f"No OpenIDConnect provider found in your account for {issuer}")
    url, jwks_url = found[0]
    provider = providers[url]
    client = enforcement.jwks.setdefault(jwks_url, pyjwt.PyJWKClient(jwks_url))
    try:
        claims = pyjwt.decode(
            token,
            client.get_signing_key_from_jwt(token).key,
            algorithms=["RS256"],
            audience=list(provider.client_id_list),
            issuer=issuer,
        )
    except pyjwt.PyJWTError as error:
        refuse("InvalidIdentityToken", f"the token does not verify: {error}")
    context = {f"{url}:aud": str(claims["aud"]), f"{url}:sub": str(claims.get("sub", ""))}
    role = backend.get_role_by_arn(role_arn)
    allowed, reason = iam.trusts(
        role.assume_role_policy_document, {"Federated": provider.arn}, "sts:AssumeRoleWithWebIdentity", context
    )
    principal = f"web-identity:{claims.get('sub', '')}"
    if not allowed:
        refuse("AccessDenied", f"Not authorized to perform sts:AssumeRoleWithWebIdentity ({reason})", principal)
    enforcement.log.record(iam.Decision(principal, "sts:AssumeRoleWithWebIdentity", role_arn, True, reason))


class UntrustedService(Exception):
    """A role's trust policy does not admit the service that would take it."""


def service_credentials(role_arn: str, service: str, session: str) -> dict[str, str]:
    """Credentials for ``role_arn`` as ``service`` (lambda.amazonaws.com, ecs-tasks...) gets
    them: only when the role's trust policy admits the service."""
    role = _iam_backend().get_role_by_arn(role_arn)
    allowed, reason = iam.trusts(role.assume_role_policy_document, {"Service": service}, "sts:AssumeRole", {})
    if _enforcement is not None:
        _enforcement.log.record(iam.Decision(f"service:{service}", "sts:AssumeRole", role_arn, allowed, reason))
    if not allowed:
        raise UntrustedService(f"{role_arn} does not trust {service}: {reason}")
    assumed = sts_backends[ACCOUNT]["aws"].assume_role(
        region_name="us-east-1",
        role_session_name=session[:64],
        role_arn=role_arn,
        policy="",
        duration=43200,
        external_id="",
    )
    return {
        "AWS_ACCESS_KEY_ID": assumed.access_key_id,
        "AWS_SECRET_ACCESS_KEY": assumed.secret_access_key,
        "AWS_SESSION_TOKEN": assumed.session_token,
    }


def enforce_iam(enforcement: Enforcement) -> None:
    global _enforcement
    _enforcement = enforcement
    ActionAuthenticatorMixin._authenticate_and_authorize_action = _authorize  # type: ignore[method-assign]


def stop_enforcing() -> None:
    global _enforcement
    _enforcement = None
    ActionAuthenticatorMixin._authenticate_and_authorize_action = _original_authorize  # type: ignore[method-assign]
