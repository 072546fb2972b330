"""The in-container side of a Lambda function: load the handler once, then serve invocations.

This file is not imported by the emulator: lambda_runtime.py mounts it into a container on the base
image (next to the function's code at /var/task) and runs `python /var/runtime/bootstrap.py`. It is
the emulator's stand-in for AWS's Python runtime interface client, kept to the standard library:

* init: `_HANDLER` (`module.func`, the module may be a path `dir/mod`) is imported from /var/task,
  as the real runtime does before the first event; an import failure is remembered and reported
  as AWS's `Runtime.ImportModuleError` (or `HandlerNotFound`, `MalformedHandlerName`) on every invoke;
* `GET /ping` answers once init is over (the emulator waits for it);
* `POST /invoke` (the event as the body; request id, deadline and invoked ARN in headers) calls
  `handler(event, context)` and answers `{"payload", "error", "log"}`: the JSON result (or AWS's
  `{"errorMessage", "errorType", "stackTrace"}`) and what the invocation printed (for LogType Tail).

One invocation at a time (a single-threaded server), as in a Lambda execution environment.
Everything printed also goes to the container's stdout, which the emulator streams to CloudWatch
Logs, with AWS's START / END / REPORT lines around each invocation.
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import sys
import time
import traceback
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

TASK_ROOT = os.environ.get("LAMBDA_TASK_ROOT", "/var/task")
PORT = int(os.environ.get("_LAMBDA_BOOTSTRAP_PORT", "8080"))


class _Tee:
    """sys.stdout / sys.stderr: everything goes to the real stream, and into the running invocation's log."""

    def __init__(self, stream: Any, capture: list[str]) -> None:
        self.stream, self.capture = stream, capture

    def write(self, text: str) -> int:
        self.capture.append(text)
        self.stream.write(text)
        self.stream.flush()
        return len(text)

    def flush(self) -> None:
        self.stream.flush()

    def isatty(self) -> bool:
        return False

    def __getattr__(self, name: str) -> Any:
        return getattr(self.stream, name)


class ClientContext:
    """`context.client_context` when the caller sent X-Amz-Client-Context (AWS's attributes)."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.client = document.get("client")
        self.custom = document.get("custom")
        self.env = document.get("env")


class Context:
    """The `context` argument: the attributes and method of AWS's Python LambdaContext."""

    def __init__(self, request_id: str, deadline_ms: int, invoked_arn: str, client_context: Any) -> None:
        self.function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "")
        self.function_version = os.environ.get("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        self.memory_limit_in_mb = os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        self.log_group_name = os.environ.get("AWS_LAMBDA_LOG_GROUP_NAME", "")
        self.log_stream_name = os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME", "")
        self.invoked_function_arn = invoked_arn
        self.aws_request_id = request_id
        self.client_context = client_context
        self.identity = None
        self._deadline_ms = deadline_ms

    def get_remaining_time_in_millis(self) -> int:
        return max(0, self._deadline_ms - int(time.time() * 1000))


def _error(error_type: str, message: str, stack: list[str] | None = None) -> dict[str, Any]:
    return {"errorMessage": message, "errorType": error_type, "requestId": "", "stackTrace": stack or []}


def load_handler() -> tuple[Any, dict[str, Any] | None]:
    """(the handler, None), or (None, the error every invocation then answers)."""
    spec = os.environ.get("_HANDLER", "")
    module_path, _, function = spec.rpartition(".")
    if not module_path or not function:
        return None, _error("Runtime.MalformedHandlerName",
                            f"Bad handler '{spec}': not enough values to unpack (expected 2, got 1)")
    sys.path.insert(0, TASK_ROOT)
    module_name = module_path.replace("/", ".")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:
        if isinstance(exc, SyntaxError):
            return None, _error("Runtime.UserCodeSyntaxError", f"Syntax error in module '{module_name}': {exc}")
        return None, _error("Runtime.ImportModuleError", f"Unable to import module '{module_name}': {exc}")
    handler = getattr(module, function, None)
    if handler is None:
        return None, _error("Runtime.HandlerNotFound", f"Handler '{function}' missing on module '{module_name}'")
    return handler, None


class Bootstrap:
    def __init__(self) -> None:
        self.capture: list[str] = []
        sys.stdout = _Tee(sys.__stdout__, self.capture)
        sys.stderr = _Tee(sys.__stderr__, self.capture)
        self.request_id = ""
        self._logging()
        started = time.monotonic()
        self.handler, self.init_error = load_handler()
        self.init_ms: float | None = (time.monotonic() - started) * 1000
        if self.init_error:
            print(f"[ERROR] {self.init_error['errorType']}: {self.init_error['errorMessage']}", flush=True)

    def _logging(self) -> None:
        """Like AWS's runtime: the root logger prints `[LEVEL] time request-id message` to stdout."""
        bootstrap = self

        class _RequestId(logging.Filter):
            def filter(self, record: logging.LogRecord) -> bool:
                record.aws_request_id = bootstrap.request_id
                return True

        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(logging.Formatter("[%(levelname)s]\t%(asctime)s.%(msecs)03dZ\t%(aws_request_id)s\t"
                                               "%(message)s", "%Y-%m-%dT%H:%M:%S"))
        handler.addFilter(_RequestId())
        logging.Formatter.converter = time.gmtime
        logging.getLogger().addHandler(handler)

    def invoke(self, event_bytes: bytes, request_id: str, deadline_ms: int, invoked_arn: str,
               client_context: Any) -> dict[str, Any]:
        self.capture.clear()
        self.request_id = request_id
        version = os.environ.get("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        print(f"START RequestId: {request_id} Version: {version}")
        started = time.monotonic()
        error = True
        if self.init_error is not None:
            result: Any = dict(self.init_error, requestId=request_id)
        else:
            try:
                event = json.loads(event_bytes) if event_bytes.strip() else {}
                value = self.handler(event, Context(request_id, deadline_ms, invoked_arn, client_context))
                try:
                    result, error = json.dumps(value), False
                except (TypeError, ValueError) as exc:
                    result = _error("Runtime.MarshalError", f"Unable to marshal response: {exc}")
            except Exception as exc:
                stack = traceback.format_list(traceback.extract_tb(exc.__traceback__)[1:])
                result = _error(type(exc).__name__, str(exc), stack)
                result["requestId"] = request_id
                print(f"[ERROR] {type(exc).__name__}: {exc}\nTraceback (most recent call last):\n{''.join(stack)}",
                      end="")
        duration = (time.monotonic() - started) * 1000
        init = f"\tInit Duration: {self.init_ms:.2f} ms" if self.init_ms is not None else ""
        self.init_ms = None  # reported with the first invocation only, as on AWS
        memory = os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        print(f"END RequestId: {request_id}")
        print(f"REPORT RequestId: {request_id}\tDuration: {duration:.2f} ms\tBilled Duration: {int(duration) + 1} ms"
              f"\tMemory Size: {memory} MB\tMax Memory Used: {_max_rss_mb()} MB{init}")
        log = "".join(self.capture)
        self.capture.clear()
        self.request_id = ""
        payload = result if isinstance(result, str) else json.dumps(result)
        return {"payload": payload, "error": error, "log": log, "duration_ms": duration}


def _max_rss_mb() -> int:
    try:
        import resource

        return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    except Exception:
        return 0


def serve(bootstrap: Bootstrap) -> None:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _reply(self, status: int, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            self._reply(200 if self.path == "/ping" else 404, b"{}")

        def do_POST(self) -> None:  # noqa: N802
            if self.path != "/invoke":
                self._reply(404, b"{}")
                return
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            client_context = self.headers.get("X-Client-Context")
            answer = bootstrap.invoke(body, self.headers.get("X-Request-Id", ""),
                                      int(self.headers.get("X-Deadline-Ms") or 0),
                                      self.headers.get("X-Invoked-Arn", ""),
                                      ClientContext(json.loads(client_context)) if client_context else None)
            self._reply(200, json.dumps(answer).encode())

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (quiet: stdout is the function's log)
            return None

    HTTPServer(("0.0.0.0", PORT), Handler).serve_forever()


if __name__ == "__main__":
    serve(Bootstrap())
