"""awsJson 1.1, generic over a botocore service model (SageMaker, CloudWatch Logs).

`X-Amz-Target: <targetPrefix>.<Operation>` names the operation; the body is parsed and validated
against the operation's input shape, handed to a plain handler function, and the result is
serialised through the output shape. Nothing here knows any particular operation.
"""

from __future__ import annotations

import base64
import datetime as dt
import itertools
import json
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from botocore import xform_name
from botocore.model import ServiceModel

from .errors import AwsError, InternalFailure, NotImplementedOperation, SerializationError, UnknownOperation
from .serialize import to_wire
from .service import service_model
from .validate import parse_and_validate

log = logging.getLogger(__name__)

CONTENT_TYPE = "application/x-amz-json-1.1"


_REQUEST_ID_PREFIX = str(uuid.uuid4())[:24]
_request_numbers = itertools.count(1)


def new_request_id() -> str:
    """A UUID-shaped request id, unique per emulator process: a random prefix and a counter.

    (uuid4() costs a getrandom system call per request, a visible share of an InvokeEndpoint.)
    """
    return f"{_REQUEST_ID_PREFIX}{next(_request_numbers):012x}"  # 12 hex digits for 2**48 requests


@dataclass
class RequestContext:
    """What a handler may know about the request besides its parameters."""

    region: str
    account_id: str
    request_id: str
    operation: str = ""
    services: Any = None  # the running Emulator: storage, runtime, configuration
    headers: dict[str, str] = field(default_factory=dict)
    # Set only by internal callers (never from the wire): what the emulator itself adds to the resource,
    # e.g. {"TuningJobArn": ...} on a tuning job's training jobs.
    internal: dict[str, Any] = field(default_factory=dict)


Handler = Callable[[RequestContext, dict], dict | None]


def collect_handlers(model: ServiceModel, modules: list[ModuleType]) -> dict[str, Handler]:
    """Map each operation of `model` to the module function named after it (CreateModel -> create_model)."""
    found: dict[str, Handler] = {}
    for operation in model.operation_names:
        name = xform_name(operation)
        for module in modules:
            func = getattr(module, name, None)
            if callable(func):
                found[operation] = func
                break
    return found


class JsonService:
    """Dispatch awsJson requests of one service to its handlers: from the wire (`dispatch`) or from
    inside the emulator (`call`), through the same validation, handler and output shape.

    `context(region)` builds the RequestContext of an internal call (Services.request_context).
    """

    def __init__(self, model_name: str, handlers: dict[str, Handler],
                 context: Callable[[str | None], RequestContext] | None = None,
                 refused: Callable[[str], str | None] | None = None) -> None:
        self.model = service_model(model_name)
        self.prefix = self.model.metadata["targetPrefix"]
        self.handlers = handlers
        self.context = context
        self.refused = refused  # operation -> why it is not served (in the NotImplementedException)

    def owns(self, target: str) -> bool:
        return target.startswith(self.prefix + ".")

    def operation_for(self, target: str) -> str:
        return target[len(self.prefix) + 1:]

    def dispatch(self, target: str, body: bytes, ctx: RequestContext) -> tuple[int, dict[str, str], bytes]:
        """Return (status, headers, body); every failure becomes an AWS-shaped error response."""
        headers = {"Content-Type": CONTENT_TYPE, "x-amzn-RequestId": ctx.request_id}
        try:
            result = self._call(target, body, ctx)
            return 200, headers, json.dumps(result).encode()
        except AwsError as err:
            return error_response(err, headers)
        except Exception:  # a bug of ours: answer like AWS would, and keep serving
            log.exception("unhandled error in %s", target)
            return error_response(InternalFailure("We encountered an internal error. Please try again."), headers)

    def call(self, operation: str, params: dict[str, Any] | None = None, *, region: str | None = None,
             internal: dict[str, Any] | None = None) -> dict:
        """Run `operation` for a caller inside the emulator (a tuning job starting training jobs, ...).

        `params` are what a boto3 client takes (datetimes and bytes allowed); the answer is what a
        boto3 client would decode from the wire (timestamps as epoch seconds, blobs base64) and
        failures are the same `AwsError`s a client would get. `region` defaults to the server's.
        """
        if self.context is None:
            raise RuntimeError(f"{self.model.service_name}: no context factory for internal calls")
        ctx = self.context(region)
        ctx.internal = dict(internal or {})
        document = json.loads(json.dumps(params or {}, default=_jsonable))
        try:
            result = self._run(operation, lambda: document, ctx, operation)
        except AwsError:
            raise
        except Exception as exc:  # a bug of ours: the caller gets what a client would
            log.exception("unhandled error in internal call %s", operation)
            raise InternalFailure("We encountered an internal error. Please try again.") from exc
        return json.loads(json.dumps(result))

    def _call(self, target: str, body: bytes, ctx: RequestContext) -> dict:
        # the operation is checked before the body is read: an unknown one is answered as such
        return self._run(self.operation_for(target), lambda: _decode(body), ctx, target)

    def _run(self, operation: str, document: Callable[[], Any], ctx: RequestContext, target: str) -> dict:
        if operation not in self.model.operation_names:
            raise UnknownOperation(f"Operation '{target}' is not a {self.model.service_name} operation.")
        ctx.operation = operation
        handler = self.handlers.get(operation)
        if handler is None:
            why = self.refused(operation) if self.refused is not None else None
            raise NotImplementedOperation(
                f"The {self.model.metadata.get('serviceId', self.prefix)} operation {operation} is not "
                + (f"served by sagemaker-emulator: {why}." if why else "implemented by sagemaker-emulator yet."))
        op_model = self.model.operation_model(operation)
        params = parse_and_validate(op_model.input_shape, document())
        result = handler(ctx, params) or {}
        return to_wire(op_model.output_shape, result) or {}


def _jsonable(value: Any) -> Any:
    """What botocore's serializer sends for the non-JSON values boto3 accepts."""
    if isinstance(value, dt.datetime):
        return (value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)).timestamp()
    if isinstance(value, (bytes, bytearray)):
        return base64.b64encode(value).decode()
    raise TypeError(f"{type(value).__name__} is not a request value")


def _decode(body: bytes) -> Any:
    if not body or not body.strip():
        return {}
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:  # RecursionError: absurdly deep nesting
        raise SerializationError(f"The request body is not valid JSON: {exc}") from exc
    if not isinstance(document, dict):
        raise SerializationError("The request body must be a JSON object.")
    return document


def error_response(err: AwsError, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
    payload = {"__type": err.code, "message": err.message, **err.extra}
    return err.status, headers, json.dumps(payload).encode()
