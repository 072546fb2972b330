"""Lambda functions that run: the embedded moto keeps the functions, this runs their Python handlers.

moto answers every Lambda operation but Invoke (CreateFunction, GetFunction, UpdateFunctionCode, ...);
its Invoke would pull docker-lambda images from a registry, which an offline machine has none of.
Here an invocation looks the function up in moto's backend (the one moto_backend.py embeds), and a
`python3.x` function runs in a container on the emulator's base image (lambda_sandboxes.py), under
AWS's contract: Handler, Environment, Timeout, MemorySize (when resources are limited), the event as
the payload, the result or `{"errorMessage", "errorType", "stackTrace"}` with FunctionError
`Unhandled`, the log in `/aws/lambda/<name>`. Other runtimes and container-image functions are
refused with InvalidRuntimeException: the base image has Python only.

Other parts of the emulator (a pipeline's Lambda step) call `invoke(services, name, payload, region)`;
handlers/lambda_functions.py serves the wire's Invoke from the same functions.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sagemaker_emulator.runtime import container_http
from sagemaker_emulator.staging import StagingError, safe_extract_zip

from .lambda_sandboxes import Launch, Sandbox, SandboxError

log = logging.getLogger(__name__)

SYNC_PAYLOAD_BYTES = 6 * 1024 * 1024  # AWS's limits: 6 MB for RequestResponse
EVENT_PAYLOAD_BYTES = 1024 * 1024  # and 1 MB for Event
MAX_UNZIPPED_BYTES = 250 * 1024 * 1024
TAIL_BYTES = 4096  # LogType Tail: the last 4 KB of the invocation's log
GRACE_SECONDS = 1.0  # the round trip to the container, beyond the function's Timeout
PYTHON_RUNTIME = re.compile(r"^python3\.\d+$")
_ARN_REGION = re.compile(r"^arn:[^:]+:lambda:([^:]+):")


@dataclass
class LambdaResult:
    """What an invocation gave. `status_code` 200 and `function_error` None: the handler returned
    `payload` (its JSON result). `function_error` "Unhandled": the function failed (an exception, a
    timeout, a crash) and `payload` is `{"errorMessage", "errorType", ...}`. `status_code` >= 400:
    the service refused the invocation (unknown function, unsupported runtime, bad payload), and
    `payload` is `{"errorType": <AWS error code>, "errorMessage": ...}`. `log_tail`: the end of the
    invocation's log (the last 4 KB), as LogType Tail returns it."""

    status_code: int
    payload: bytes
    function_error: str | None
    log_tail: str = ""


class LambdaError(Exception):
    """The service refuses an invocation: AWS's error code, message and HTTP status."""

    def __init__(self, code: str, message: str, status: int = 400, extra: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.code, self.message, self.status = code, message, status
        self.extra = dict(extra or {})


@dataclass
class Function:
    """One function version as moto keeps it, copied out (moto's object changes under updates)."""

    name: str
    arn: str
    version: str
    region: str
    runtime: str | None
    package_type: str
    handler: str
    environment: dict[str, str]
    memory: int
    timeout: int
    code: bytes
    code_sha: str
    s3_code: dict[str, str] = field(default_factory=dict)  # S3Bucket, S3Key (and S3ObjectVersion)


def find_function(services: Any, name_or_arn: str, region: str, qualifier: str | None = None) -> Function:
    """The function (version or alias `qualifier`) from moto's backend; ResourceNotFoundException if none."""
    from moto.awslambda.exceptions import LambdaClientError
    from moto.awslambda.models import lambda_backends

    match = _ARN_REGION.match(name_or_arn)
    region = match.group(1) if match else region
    try:
        backend = lambda_backends[services.config.account_id][region]
    except KeyError:  # moto knows no such region: no function can be there
        raise LambdaError("ResourceNotFoundException", f"Function not found: {name_or_arn} (region {region})",
                          404) from None
    try:
        fn = backend.get_function(name_or_arn, qualifier)
    except LambdaClientError as exc:
        raise LambdaError("ResourceNotFoundException", exc.message, 404) from None
    if fn is None:
        raise LambdaError("ResourceNotFoundException", f"Function not found: {name_or_arn}", 404)
    code = dict(fn.code or {})
    s3_code = {k: code[k] for k in ("S3Bucket", "S3Key", "S3ObjectVersion") if code.get(k)} \
        if not fn.code_bytes and "S3Bucket" in code else {}
    return Function(name=fn.function_name, arn=fn.function_arn, version=str(fn.version), region=region,
                    runtime=fn.run_time, package_type=fn.package_type or "Zip", handler=fn.handler or "",
                    environment=dict(fn.environment_vars or {}), memory=int(fn.memory_size or 128),
                    timeout=int(fn.timeout or 3), code=bytes(fn.code_bytes or b""),
                    code_sha=getattr(fn, "code_sha_256", "") or "", s3_code=s3_code)


def check_runnable(fn: Function) -> None:
    """InvalidRuntimeException unless the function is a zip of Python code (what the base image runs)."""
    if fn.package_type == "Image":
        raise LambdaError("InvalidRuntimeException",
                          f"The function {fn.name} is a container image (PackageType Image): sagemaker-emulator "
                          f"runs Python (python3.x) zip functions only, on its base image.", 502)
    if not fn.runtime or not PYTHON_RUNTIME.match(fn.runtime):
        raise LambdaError("InvalidRuntimeException",
                          f"The runtime parameter of {fn.runtime} is not supported by sagemaker-emulator: only "
                          f"python3.x functions run (on its Python 3.11 base image).", 502)


def check_payload(payload: bytes, limit: int = SYNC_PAYLOAD_BYTES) -> None:
    """RequestTooLargeException over `limit`, InvalidRequestContentException if not JSON (AWS's wording)."""
    if len(payload) > limit:
        raise LambdaError("RequestTooLargeException",
                          f"Request must be smaller than {limit} bytes for the InvokeFunction operation", 413)
    if payload.strip():
        try:
            json.loads(payload)
        except (ValueError, UnicodeDecodeError, RecursionError) as exc:
            raise LambdaError("InvalidRequestContentException",
                              f"Could not parse request body into json: {exc}", 400) from None


def invoke(services: Any, function_arn_or_name: str, payload: bytes, region: str) -> LambdaResult:
    """Run the function with `payload` as its event (RequestResponse) and wait for its result.

    Never raises for the caller's or the function's faults: see LambdaResult for the three outcomes.
    """
    try:
        fn = find_function(services, function_arn_or_name, region)
        check_payload(payload)
        return call(services, fn, payload)
    except LambdaError as err:
        body = json.dumps({"errorType": err.code, "errorMessage": err.message}).encode()
        return LambdaResult(err.status, body, None)


def call(services: Any, fn: Function, payload: bytes, client_context: str | None = None) -> LambdaResult:
    """One synchronous invocation of a found function (LambdaError when the service refuses it)."""
    check_runnable(fn)
    sandboxes = services.lambdas
    request_id = str(uuid.uuid4())
    try:
        sandbox = sandboxes.acquire(_launch(services, fn))
    except SandboxError as exc:
        if exc.kind == "exit":  # the code crashed the runtime at import: the function's failure
            return _failure("Runtime.ExitError", f"RequestId: {request_id} Error: {exc}", str(exc))
        if exc.kind == "zip":
            raise LambdaError("InvalidZipFileException", str(exc), 502) from None
        if exc.kind == "busy":
            raise LambdaError("TooManyRequestsException", "Rate Exceeded.", 429,
                              {"Reason": "ConcurrentInvocationLimitExceeded"}) from None
        raise LambdaError("ServiceException", f"The function {fn.name} could not start: {exc}", 500) from None
    deadline = time.time() + fn.timeout
    headers = {"X-Request-Id": request_id, "X-Deadline-Ms": str(int(deadline * 1000)), "X-Invoked-Arn": fn.arn}
    if client_context:
        headers["X-Client-Context"] = client_context
    try:
        reply = container_http.request(sandbox.address, "/invoke", payload or b"{}", headers,
                                       timeout=fn.timeout + GRACE_SECONDS)
        answer = json.loads(reply.body)
    except TimeoutError:
        return _timed_out(sandboxes, sandbox, fn, request_id)
    except (OSError, ValueError):
        return _crashed(services, sandboxes, sandbox, request_id)
    sandboxes.release(sandbox)
    if answer.get("duration_ms", 0) > fn.timeout * 1000:  # done, but after its deadline: AWS would have cut it
        return _failure("Sandbox.Timedout", f"RequestId: {request_id} Error: {_timeout_text(fn)}",
                        answer.get("log", ""))
    return LambdaResult(200, str(answer.get("payload", "null")).encode(), "Unhandled" if answer.get("error") else None,
                        _tail(answer.get("log", "")))


def submit_event(services: Any, fn: Function, payload: bytes) -> None:
    """InvocationType Event: queued, run in the background; the caller has its 202 already."""
    check_runnable(fn)

    def run() -> None:
        try:
            result = call(services, fn, payload)
        except LambdaError as err:
            log.warning("event invocation of %s refused: %s", fn.name, err.message)
            return
        if result.function_error:
            log.info("event invocation of %s failed: %s", fn.name, result.payload[:500])

    try:
        services.lambdas.background(run)
    except SandboxError as exc:
        raise LambdaError("ServiceException", str(exc), 500) from None


# -- inside ---------------------------------------------------------------------------------------
def _launch(services: Any, fn: Function) -> Launch:
    identity = fn.code_sha
    if fn.s3_code:  # moto could not read our S3: the code is fetched from it at each cold start
        identity = _s3_identity(services, fn)
    fingerprint = hashlib.sha256(json.dumps(
        [fn.arn, fn.version, fn.runtime, fn.handler, sorted(fn.environment.items()), fn.memory, identity],
        default=str).encode()).hexdigest()

    def stage_code(task_dir: Path) -> None:
        data = fn.code or _s3_code(services, fn)
        try:
            safe_extract_zip(data, task_dir, max_total_bytes=MAX_UNZIPPED_BYTES, what=f"the code of {fn.name}")
        except StagingError as exc:
            raise SandboxError(str(exc), kind="zip") from None

    return Launch(key=fingerprint, name=fn.name, arn=fn.arn, version=fn.version, region=fn.region,
                  memory=fn.memory, environment={**fn.environment, "_HANDLER": fn.handler}, stage_code=stage_code)


def _s3_uri(fn: Function) -> str:
    return f"s3://{fn.s3_code['S3Bucket']}/{fn.s3_code['S3Key']}"


def _s3_identity(services: Any, fn: Function) -> str:
    from sagemaker_emulator.jobs.data import JobData

    try:
        info = JobData(services, fn.region).store.stat(_s3_uri(fn))
    except StagingError as exc:
        raise LambdaError("ServiceException", f"Could not read the code of {fn.name} from {_s3_uri(fn)}: {exc}",
                          500) from None
    return f"{_s3_uri(fn)}#{info.etag}#{info.size}"


def _s3_code(services: Any, fn: Function) -> bytes:
    from sagemaker_emulator.jobs.data import JobData

    try:
        return JobData(services, fn.region).store.get_bytes(_s3_uri(fn), max_bytes=MAX_UNZIPPED_BYTES)
    except StagingError as exc:
        raise SandboxError(f"Could not read the code from {_s3_uri(fn)}: {exc}") from None


def _timeout_text(fn: Function) -> str:
    return f"Task timed out after {fn.timeout:.2f} seconds"


def _timed_out(sandboxes: Any, sandbox: Sandbox, fn: Function, request_id: str) -> LambdaResult:
    """AWS stops the execution environment of a timed-out invocation: so do we (the next one is cold)."""
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + f".{int(time.time() * 1000) % 1000:03d}Z"
    last = f"{stamp} {request_id} {_timeout_text(fn)}"
    sandboxes.services.runtime.stop(sandbox.handle, grace=0)
    lines = sandboxes.recent_log(sandbox, f"START RequestId: {request_id}")
    sandboxes.discard(sandbox, last_words=last)
    return _failure("Sandbox.Timedout", f"RequestId: {request_id} Error: {_timeout_text(fn)}",
                    "\n".join([*lines, last]) + "\n")


def _crashed(services: Any, sandboxes: Any, sandbox: Sandbox, request_id: str) -> LambdaResult:
    """The runtime died mid-invocation (os._exit, a signal, out of memory)."""
    code = services.runtime.wait(sandbox.handle, timeout=2)
    how = "signal: killed" if code in (137, -9) else f"exit status {code}"
    lines = sandboxes.recent_log(sandbox, f"START RequestId: {request_id}")
    sandboxes.discard(sandbox)
    return _failure("Runtime.ExitError", f"RequestId: {request_id} Error: Runtime exited with error: {how}",
                    "\n".join(lines) + "\n")


def _failure(error_type: str, message: str, log_text: str) -> LambdaResult:
    body = json.dumps({"errorType": error_type, "errorMessage": message}).encode()
    return LambdaResult(200, body, "Unhandled", _tail(log_text))


def _tail(text: str) -> str:
    data = text.encode()
    return data[-TAIL_BYTES:].decode(errors="ignore") if len(data) > TAIL_BYTES else text
