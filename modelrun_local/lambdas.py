"""The stack's functions, run the way Lambda runs them: each invocation in an execution
environment of its own function — a worker process with the function's environment, its
execution role's credentials and nothing else, served through Lambda's Runtime API.

An environment is started when an invocation finds none idle (a cold start: a fresh
interpreter imports the handler), up to the function's reserved concurrency; it then stays
warm for later invocations. Functions share nothing: no module state, no cached client or
secret, so one function's permission can never stand in for another's. A handler that runs past
its timeout has its environment stopped, as Lambda does, and a crashed environment fails the
invocation it held. Where Lambda would throttle an invocation above the reserved concurrency,
it waits here for a free environment instead.
"""

from __future__ import annotations

import collections
import functools
import json
import os
import queue
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from modelrun_local.stack import ROOT, DeployedStack

BOOTSTRAP = Path(__file__).resolve().parent / "lambda_worker.py"
CODE = ROOT / "functions"  # the functions' package (CodeUri)
API = "/2018-06-01/runtime"
LOCAL_CONCURRENCY_CAP = 4  # environments per function at most here: a laptop is not a region
LOG_LINES_KEPT = 5000


@dataclass
class Invocation:
    payload: bytes
    deadline: float  # time.time()
    request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    done: threading.Event = field(default_factory=threading.Event)
    result: tuple[Any, str | None] = (None, None)

    def finish(self, result: Any, error: str | None) -> None:
        if not self.done.is_set():
            self.result = (result, error)
            self.done.set()


def _error(error_type: str, message: str) -> tuple[dict[str, Any], str]:
    return {"errorType": error_type, "errorMessage": message}, error_type


class Environment:
    """One execution environment: a worker process and the Runtime API it polls."""

    def __init__(self, pool: FunctionPool, number: int) -> None:
        self.pool = pool
        self.held: Invocation | None = None
        self.started = time.monotonic()
        self.init_seconds: float | None = None  # start -> first request for work (a cold start)
        self.idle = False
        self.stopped = threading.Event()  # set when the environment goes away
        self.server = self._serve()
        port = self.server.server_address[1]
        env = pool.environment() | {
            "AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{port}",
            "AWS_LAMBDA_LOG_STREAM_NAME": f"local/{pool.logical_id}/{number}",
        }
        self.process = subprocess.Popen(
            [sys.executable, str(BOOTSTRAP)],
            env=env,
            cwd=env["LAMBDA_TASK_ROOT"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1,
        )
        threading.Thread(target=self._pump, daemon=True, name=f"{pool.logical_id}-{number}-log").start()

    def _serve(self) -> ThreadingHTTPServer:
        environment = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                if self.path != f"{API}/invocation/next":
                    self.send_error(404)
                    return
                invocation = environment.next_invocation()
                if invocation is None:  # stopping: the environment goes away
                    self.close_connection = True
                    return
                self.send_response(200)
                self.send_header("Lambda-Runtime-Aws-Request-Id", invocation.request_id)
                self.send_header("Lambda-Runtime-Deadline-Ms", str(int(invocation.deadline * 1000)))
                self.send_header("Lambda-Runtime-Invoked-Function-Arn", environment.pool.function["arn"])
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(invocation.payload)))
                try:
                    self.end_headers()
                    self.wfile.write(invocation.payload)
                except OSError:  # the environment died meanwhile: another one takes the invocation
                    environment.held = None
                    environment.pool.pending.put(invocation)
                    raise

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                environment.posted(self.path, body)
                self.send_response(202)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True, name="runtime-api").start()
        return server

    def next_invocation(self) -> Invocation | None:
        if self.init_seconds is None:
            self.init_seconds = time.monotonic() - self.started
            self.pool.cold_starts.append(self.init_seconds)
        self.held = None
        self.pool.mark_idle(self, True)
        try:
            while not (self.pool.stopping.is_set() or self.stopped.is_set()):
                try:
                    invocation = self.pool.pending.get(timeout=0.2)
                except queue.Empty:
                    continue
                if invocation.done.is_set():
                    continue  # given up on meanwhile (its caller timed out)
                if self.stopped.is_set() or self.process.poll() is not None:
                    self.pool.pending.put(invocation)  # not this one's to serve any more
                    return None
                self.held = invocation
                return invocation
            return None
        finally:
            self.pool.mark_idle(self, False)

    def posted(self, path: str, body: bytes) -> None:
        if path == f"{API}/init/error":
            detail = json.loads(body or b"{}")
            self.pool.init_errors.append(detail)
            return
        held = self.held
        if held is None or f"/invocation/{held.request_id}/" not in path:
            return
        # Done with it: as on Lambda, the next invocation may go to this environment (it takes it
        # at its next GET) rather than start a cold one. A retry right after an error (the state
        # machine's full jitter can wait ~0 s) must not find the function without a warm one.
        self.pool.mark_idle(self, True)
        if path.endswith("/response"):
            held.finish(json.loads(body or b"null"), None)
        elif path.endswith("/error"):
            detail = json.loads(body or b"{}")
            held.finish(detail, str(detail.get("errorType", "Unhandled")))

    def _pump(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.pool.log(line.rstrip("\n"))
        # The process is gone: whatever it held fails, as Lambda reports an exited runtime.
        code = self.process.wait()
        self.stopped.set()
        if self.held is not None:
            self.held.finish(*_error("Runtime.ExitError", f"RequestId: {self.held.request_id} exited: {code}"))
        if self.init_seconds is None and self.pool.init_errors:
            detail = self.pool.init_errors[-1]
            self.pool.fail_pending(
                _error("Runtime.ImportModuleError", f"{detail.get('errorType')}: {detail.get('errorMessage')}")
            )
        self.pool.forget(self)

    def stop(self) -> None:
        self.stopped.set()
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=10)
        self.server.shutdown()
        self.server.server_close()


def _is_trouble(line: str) -> bool:
    """What reaches this process's output (the demo's output is for people): error records
    (Powertools' JSON, level ERROR or CRITICAL), and what is not a JSON record (a traceback)."""
    try:
        record = json.loads(line)
    except ValueError:
        return True
    if not isinstance(record, dict):
        return True
    return str(record.get("level", "")).upper() in {"ERROR", "CRITICAL"}


class FunctionPool:
    """One function's environments."""

    def __init__(
        self,
        logical_id: str,
        function: dict[str, Any],
        environment: Callable[[], dict[str, str]],
        stopping: threading.Event,
    ) -> None:
        self.logical_id = logical_id
        self.function = function
        self._environment = environment
        self.stopping = stopping
        self.pending: queue.Queue[Invocation] = queue.Queue()
        self.environments: list[Environment] = []
        self.idle: set[Environment] = set()
        self.cold_starts: list[float] = []
        self.init_errors: list[dict[str, Any]] = []
        self.logs: collections.deque[str] = collections.deque(maxlen=LOG_LINES_KEPT)
        self.hooks: list[str] = []
        self.hook_environment: dict[str, str] = {}
        self._started = 0
        self._lock = threading.Lock()
        reserved = function.get("reserved_concurrency")
        self.concurrency = min(reserved or LOCAL_CONCURRENCY_CAP, LOCAL_CONCURRENCY_CAP)

    def environment(self) -> dict[str, str]:
        env = self._environment()
        if self.hooks:
            env["MODELRUN_LOCAL_WORKER_HOOKS"] = ",".join(self.hooks)
            env["PYTHONPATH"] = os.pathsep.join([env["PYTHONPATH"], str(ROOT)])  # where the hooks live
            env |= self.hook_environment
        return env

    def mark_idle(self, environment: Environment, idle: bool) -> None:
        with self._lock:
            (self.idle.add if idle else self.idle.discard)(environment)

    def forget(self, environment: Environment) -> None:
        with self._lock:
            self.idle.discard(environment)
            if environment in self.environments:
                self.environments.remove(environment)
            # An invocation queued for an environment that died before taking it gets a new one.
            if not self.pending.empty() and not self.environments and not self.stopping.is_set():
                self._started += 1
                self.environments.append(Environment(self, self._started))

    def fail_pending(self, result: tuple[Any, str]) -> None:
        while True:
            try:
                self.pending.get_nowait().finish(*result)
            except queue.Empty:
                return

    def log(self, line: str) -> None:
        self.logs.append(line)
        if self.stopping.is_set():
            return
        if _is_trouble(line):
            print(f"[{self.logical_id}] {line}", file=sys.stderr, flush=True)

    def invoke(self, payload: bytes) -> tuple[Any, str | None]:
        timeout = float(self.function.get("timeout", 3))
        invocation = Invocation(payload, deadline=time.time() + timeout)
        with self._lock:
            if self.idle:
                self.idle.pop()  # claimed: the next invocation does not count on it too
            elif len(self.environments) < self.concurrency:
                self._started += 1
                self.environments.append(Environment(self, self._started))
        self.pending.put(invocation)
        # A cold start's init counts against the timeout on Lambda too, within its own 10 s.
        if not invocation.done.wait(timeout + 10):
            invocation.finish(*_error("Sandbox.Timedout", f"Task timed out after {timeout:.2f} seconds"))
            self._stop_holder_of(invocation)
        return invocation.result

    def _stop_holder_of(self, invocation: Invocation) -> None:
        with self._lock:
            holders = [e for e in self.environments if e.held is invocation]
        for environment in holders:
            environment.stop()

    def recycle(self) -> None:
        """Stop every environment: the next invocation starts cold."""
        with self._lock:
            environments = list(self.environments)
        for environment in environments:
            environment.stop()
        deadline = time.monotonic() + 10
        while self.environments and time.monotonic() < deadline:
            time.sleep(0.02)


class Lambdas:
    """The stack's functions: ``invoke`` by name, ARN or logical id, as Lambda's Invoke API."""

    def __init__(self, stack: DeployedStack, environment: Callable[[str], dict[str, str]]) -> None:
        self.stack = stack
        self.stopping = threading.Event()
        self.by_name: dict[str, str] = {}
        self.pools: dict[str, FunctionPool] = {}
        for logical_id, fn in stack.functions.items():
            self.by_name[fn["name"]] = self.by_name[fn["arn"]] = self.by_name[logical_id] = logical_id
            self.pools[logical_id] = FunctionPool(
                logical_id, fn, functools.partial(environment, logical_id), self.stopping
            )
        self.invocations: dict[str, int] = {}
        # Extra seconds before each invocation of a function (logical id): a cold start, a slow host.
        self.latency: Callable[[str], float] | None = None
        self._lock = threading.Lock()

    def invoke(self, name: str, event: Any) -> tuple[Any, str | None]:
        """Returns (result, error type); a raised exception is reported as Lambda reports it."""
        logical_id = self.by_name.get(name) or self.by_name.get(name.split(":")[-1])
        if logical_id is None:
            return _error("ResourceNotFoundException", name)
        with self._lock:
            self.invocations[logical_id] = self.invocations.get(logical_id, 0) + 1
        if self.latency is not None:
            time.sleep(max(0.0, self.latency(logical_id)))
        return self.pools[logical_id].invoke(json.dumps(event, default=str).encode())

    def route(self, name: str, payload: bytes) -> tuple[bytes, str | None]:
        result, error = self.invoke(name, json.loads(payload or b"{}"))
        return json.dumps(result, default=str).encode(), error

    def inject(self, logical_id: str, hooks: list[str], environment: dict[str, str] | None = None) -> None:
        """Test faults: ``module:function`` items each new environment of the function calls
        before loading its handler (an empty list removes them). Its environments restart."""
        pool = self.pools[logical_id]
        pool.hooks, pool.hook_environment = list(hooks), dict(environment or {})
        pool.recycle()

    def log_lines(self, logical_id: str) -> list[str]:
        return list(self.pools[logical_id].logs)

    def cold_starts(self) -> dict[str, list[float]]:
        return {logical_id: list(pool.cold_starts) for logical_id, pool in self.pools.items()}

    def stop(self) -> None:
        self.stopping.set()
        for pool in self.pools.values():
            pool.recycle()
