"""rest-json (restJson1), generic over a botocore model: used for sagemaker-runtime.

The operation is found from the method and `requestUri`; URI labels and header members become
parameters, the payload member gets the raw body. Results go out the same way: header members
as headers, the payload member as the raw body. Errors carry `x-amzn-ErrorType` and the status
their shape declares.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import unquote

from botocore.model import OperationModel

from . import eventstream
from .errors import AwsError, InternalFailure, SerializationError, UnknownOperation
from .json_protocol import RequestContext
from .serialize import to_wire
from .service import service_model
from .validate import parse_and_validate

log = logging.getLogger(__name__)

RestHandler = Callable[[RequestContext, dict], dict]


def _route(op: OperationModel) -> tuple[str, re.Pattern]:
    template = op.http["requestUri"].split("?", 1)[0]
    pattern = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", template)
    return op.http["method"], re.compile(f"^{pattern}$")


class RestService:
    def __init__(self, model_name: str, handlers: dict[str, RestHandler]) -> None:
        self.model = service_model(model_name)
        self.handlers = handlers
        self.routes = [(op, *_route(op)) for op in (self.model.operation_model(n) for n in self.model.operation_names)]

    def find(self, method: str, path: str) -> tuple[OperationModel, dict[str, str]] | None:
        for op, op_method, pattern in self.routes:
            match = pattern.match(path)
            if match and op_method == method:
                return op, {k: unquote(v) for k, v in match.groupdict().items()}
        return None

    def payload_limit(self, op: OperationModel) -> int | None:
        payload = op.input_shape.serialization.get("payload")
        return op.input_shape.members[payload].metadata.get("max") if payload else None

    def dispatch(self, method: str, path: str, headers: dict[str, str], body: bytes,
                 ctx: RequestContext) -> tuple[int, dict[str, str], bytes | Iterator[bytes]]:
        try:
            found = self.find(method, path)
            if found is None:
                raise UnknownOperation(f"No {self.model.service_name} operation at {method} {path}.")
            op, labels = found
            ctx.operation = op.name
            handler = self.handlers.get(op.name)
            if handler is None:
                raise AwsError(f"{op.name} is not implemented by sagemaker-emulator yet.",
                               code="ValidationError")
            params = self._parse(op, labels, headers, body)
            result = handler(ctx, params)
            return self._serialise(op, result, ctx)
        except AwsError as err:
            return self.error(err, ctx)
        except Exception:
            log.exception("unhandled error in %s %s", method, path)
            return self.error(InternalFailure("An internal error occurred."), ctx)

    def _parse(self, op: OperationModel, labels: dict[str, str], headers: dict[str, str], body: bytes) -> dict:
        shape = op.input_shape
        payload = shape.serialization.get("payload")
        lowered = {k.lower(): v for k, v in headers.items()}
        document: dict[str, Any] = {}
        for name, member in shape.members.items():
            where = member.serialization.get("location")
            if where == "uri":
                document[name] = labels.get(member.serialization.get("name", name))
            elif where == "header":
                value = lowered.get(member.serialization["name"].lower())
                if value is not None:
                    document[name] = value
        if payload:
            document[payload] = ""  # validated as an empty blob; the raw bytes are passed below
        try:
            params = parse_and_validate(shape, document)
        except SerializationError:
            raise
        except AwsError as err:
            raise AwsError(err.message, code="ValidationError") from None
        if payload:
            params[payload] = body
        return params

    def _serialise(self, op: OperationModel, result: dict, ctx: RequestContext
                   ) -> tuple[int, dict[str, str], bytes | Iterator[bytes]]:
        shape = op.output_shape
        headers = {"x-amzn-RequestId": ctx.request_id}
        body: bytes | Iterator[bytes] = b""
        payload = shape.serialization.get("payload") if shape is not None else None
        document: dict[str, Any] = {}
        for name, member in (shape.members.items() if shape is not None else []):
            value = result.get(name)
            if value is None:
                continue
            if member.serialization.get("location") == "header":
                headers[member.serialization["name"]] = str(value)
            elif name == payload and member.serialization.get("eventstream"):
                headers["Content-Type"] = "application/vnd.amazon.eventstream"
                body = self._event_stream(value)
            elif name == payload:
                body = value if isinstance(value, bytes) else str(value).encode()
            else:
                document[name] = value
        if document and payload is None:
            headers["Content-Type"] = "application/json"
            body = json.dumps(to_wire(shape, document)).encode()
        status = op.http.get("responseCode", 200)
        return status, headers, body

    @staticmethod
    def _event_stream(events: Iterator[dict[str, Any]]) -> Iterator[bytes]:
        """Frame the handler's events; an AwsError raised mid-stream becomes an exception message."""
        try:
            for item in events:
                for event_type, members in item.items():
                    yield eventstream.event(event_type, members.get("Bytes", b""))
        except AwsError as err:
            yield eventstream.exception(err.code, json.dumps({"Message": err.message, **err.extra}).encode())
        except Exception as exc:
            log.exception("event stream broke")
            yield eventstream.exception("InternalStreamFailure", json.dumps({"Message": str(exc)}).encode())

    def error(self, err: AwsError, ctx: RequestContext) -> tuple[int, dict[str, str], bytes]:
        status = err.status
        try:
            declared = self.model.shape_for(err.code)
            status = declared.metadata.get("error", {}).get("httpStatusCode", status)
        except Exception:
            pass
        body = json.dumps({"Message": err.message, "message": err.message, **err.extra}).encode()
        return status, {"x-amzn-ErrorType": err.code, "x-amzn-RequestId": ctx.request_id,
                        "Content-Type": "application/json"}, body
