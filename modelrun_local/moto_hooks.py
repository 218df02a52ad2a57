"""Every touch of moto's private internals, in one place (moto is pinned exactly: 5.2.5).

moto offers no public extension point for these, so each hook has one smoke test
(tests/unit/test_moto_hooks.py) that fails loudly when an upgrade moves the internals.

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
"""

from __future__ import annotations

import base64
import functools
import json
import threading
from collections.abc import Callable
from datetime import datetime
from typing import Any

import jsonpath_ng.ext
from moto import backends
from moto.awslambda_simple.models import LambdaSimpleBackend
from moto.batch.models import Job
from moto.batch_simple.models import BatchSimpleBackend
from moto.core.responses import ActionContext, ActionResult
from moto.core.utils import unix_time
from moto.dynamodb.responses import DynamoResult
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler
from moto.sqs.models import Message, SQSBackend
from moto.stepfunctions.parser.asl.component.state.exec.state_task import lambda_eval_utils
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import state_task_service_sns
from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser

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
_one_at_a_time = threading.Lock()
# Their results are items, keys and counts: already what goes on the wire.
DYNAMODB_WIRE_FORM_OPERATIONS = frozenset({"GetItem", "PutItem", "UpdateItem", "DeleteItem", "Query", "Scan"})


def serialise_requests() -> None:
    def dispatch(self: DomainDispatcherApplication, environ: dict[str, Any], start_response: Any) -> Any:
        path = str(environ.get("PATH_INFO", ""))
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


def reuse_state_machine_work() -> None:
    parse = functools.lru_cache(maxsize=8)(_original_parse)
    AmazonStateLanguageParser.parse = staticmethod(parse)  # type: ignore[method-assign,assignment]
    clients: dict[tuple[str, str], Any] = {}
    lock = threading.Lock()

    def client_for(region: str, service: str, state_credentials: Any = None) -> Any:
        with lock:  # boto3's default session must not build clients on two threads at once
            key = (region, service)
            if key not in clients:
                clients[key] = _original_task_clients[lambda_eval_utils](region, service, state_credentials)
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

    LambdaSimpleBackend.invoke = invoke  # type: ignore[method-assign,assignment]


def take_over_batch_jobs(handler: JobHandler) -> None:
    def mark_job(self: BatchSimpleBackend, include_start_attempt: bool, job: Job) -> None:
        self.backend._jobs[job.job_id] = job
        handler(job)

    BatchSimpleBackend._mark_job_as_finished = mark_job  # type: ignore[method-assign]


def restore() -> None:
    MotoRequestHandler.protocol_version = _original_protocol
    DomainDispatcherApplication.__call__ = _original_dispatch  # type: ignore[method-assign]
    backends.list_of_moto_modules = _original_modules
    LambdaSimpleBackend.invoke = _original_invoke  # type: ignore[method-assign]
    BatchSimpleBackend._mark_job_as_finished = _original_finish  # type: ignore[method-assign]
    DynamoResult.execute_result = _original_dynamo_result  # type: ignore[method-assign]
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
    }


def describe_job(job: Job) -> dict[str, Any]:
    detail: dict[str, Any] = json.loads(json.dumps(job.describe(), default=str))
    # moto's describe() drops the exit code from `container`; Batch reports it there.
    if job.exit_code is not None:
        detail.setdefault("container", {})["exitCode"] = job.exit_code
    return detail
