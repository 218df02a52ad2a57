"""A Lambda execution environment's bootstrap: the Runtime API's client loop, as AWS's Python
runtime runs it. Started by the local runtime as a script (one process per environment), with
the function's environment, its role's credentials and ``AWS_LAMBDA_RUNTIME_API``.

Standard library only, and nothing from this repository: the process imports what the
function's package holds (``LAMBDA_TASK_ROOT``) and the handler, then serves invocations until
it is stopped. An exception in the handler is posted as Lambda reports it (errorType,
errorMessage, stackTrace); one during init is posted to the init-error endpoint and ends it.
"""

import http.client
import importlib
import json
import os
import sys
import time
import traceback
from typing import Any

# The script's own folder must not be importable: the function sees its package only.
sys.path[0] = os.environ["LAMBDA_TASK_ROOT"]
API = "/2018-06-01/runtime"


class Context:
    """What the runtime passes as ``context``."""

    def __init__(self, headers: http.client.HTTPMessage) -> None:
        self.aws_request_id = headers.get("Lambda-Runtime-Aws-Request-Id", "")
        self.invoked_function_arn = headers.get("Lambda-Runtime-Invoked-Function-Arn", "")
        self._deadline_ms = int(headers.get("Lambda-Runtime-Deadline-Ms", "0"))
        self.function_name = os.environ["AWS_LAMBDA_FUNCTION_NAME"]
        self.function_version = os.environ.get("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        self.memory_limit_in_mb = int(os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128"))
        self.log_group_name = os.environ.get("AWS_LAMBDA_LOG_GROUP_NAME", "")
        self.log_stream_name = os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME", "")

    def get_remaining_time_in_millis(self) -> int:
        return max(0, self._deadline_ms - int(time.time() * 1000))


def _error(error: BaseException) -> bytes:
    return json.dumps(
        {
            "errorType": type(error).__name__,
            "errorMessage": str(error),
            "stackTrace": traceback.format_exception(error)[-5:],
        }
    ).encode()


def _post(connection: http.client.HTTPConnection, path: str, body: bytes, error: bool = False) -> None:
    headers = {"Content-Type": "application/json"}
    if error:
        headers["Lambda-Runtime-Function-Error-Type"] = "Unhandled"
    connection.request("POST", path, body=body, headers=headers)
    connection.getresponse().read()


def _load() -> Any:
    # Test-only fault injection ("module:function" items, called before the handler loads).
    for hook in filter(None, os.environ.get("MODELRUN_LOCAL_WORKER_HOOKS", "").split(",")):
        module, _, function = hook.partition(":")
        getattr(importlib.import_module(module), function)()
    module, _, attr = os.environ["_HANDLER"].rpartition(".")
    return getattr(importlib.import_module(module), attr)


def main() -> None:
    connection = http.client.HTTPConnection(os.environ["AWS_LAMBDA_RUNTIME_API"], timeout=None)
    try:
        handler = _load()
    except Exception as error:
        traceback.print_exc()
        _post(connection, f"{API}/init/error", _error(error), error=True)
        sys.exit(1)
    while True:
        try:
            connection.request("GET", f"{API}/invocation/next")
            response = connection.getresponse()
        except (ConnectionError, http.client.HTTPException):
            return  # the environment is being shut down
        event = json.loads(response.read() or b"{}")
        context = Context(response.headers)
        try:
            result = handler(event, context)
        except Exception as error:
            traceback.print_exc()
            _post(connection, f"{API}/invocation/{context.aws_request_id}/error", _error(error), error=True)
            continue
        body = json.dumps(result, default=str).encode()
        _post(connection, f"{API}/invocation/{context.aws_request_id}/response", body)


if __name__ == "__main__":
    main()
