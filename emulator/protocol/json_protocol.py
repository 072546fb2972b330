"""awsJson 1.1, generic over a botocore service model (SageMaker, CloudWatch Logs).

`X-Amz-Target: <targetPrefix>.<Operation>` names the operation; the body is parsed and validated
against the operation's input shape, handed to a plain handler function, and the result is
serialised through the output shape. Nothing here knows any particular operation.
"""

from __future__ import annotations

import json
import logging
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


@dataclass
class RequestContext:
    """What a handler may know about the request besides its parameters."""

    region: str
    account_id: str
    request_id: str
    operation: str = ""
    services: Any = None  # the running Emulator: storage, runtime, configuration
    headers: dict[str, str] = field(default_factory=dict)


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
    """Dispatch awsJson requests of one service to its handlers."""

    def __init__(self, model_name: str, handlers: dict[str, Handler]) -> None:
        self.model = service_model(model_name)
        self.prefix = self.model.metadata["targetPrefix"]
        self.handlers = handlers

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

    def _call(self, target: str, body: bytes, ctx: RequestContext) -> dict:
        operation = self.operation_for(target)
        if operation not in self.model.operation_names:
            raise UnknownOperation(f"Operation '{target}' is not a {self.model.service_name} operation.")
        ctx.operation = operation
        handler = self.handlers.get(operation)
        if handler is None:
            raise NotImplementedOperation(
                f"The {self.model.metadata.get('serviceId', self.prefix)} operation {operation} is not "
                "implemented by sagemaker-emulator yet.")
        op_model = self.model.operation_model(operation)
        params = parse_and_validate(op_model.input_shape, _decode(body))
        result = handler(ctx, params) or {}
        return to_wire(op_model.output_shape, result) or {}


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
