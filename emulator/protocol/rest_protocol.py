"""rest-json (restJson1), generic over a botocore model: sagemaker-runtime, sagemaker-metrics and
sagemaker-featurestore-runtime.

The operation is found from the method and `requestUri`; URI labels, query-string and header members
become parameters, the payload member gets the raw body. Results go out the same way: header members
as headers, the payload member as the raw body. Errors carry `x-amzn-ErrorType` and the status
their shape declares.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import parse_qs, unquote

from botocore.model import OperationModel

from . import eventstream
from .errors import AwsError, InternalFailure, SerializationError, UnknownOperation
from .json_protocol import RequestContext
from .serialize import to_wire
from .service import service_model
from .validate import parse_and_validate

log = logging.getLogger(__name__)

RestHandler = Callable[[RequestContext, dict], dict | None]


def _route(op: OperationModel) -> tuple[str, re.Pattern]:
    template = op.http["requestUri"].split("?", 1)[0]
    pattern = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", template)
    return op.http["method"], re.compile(f"^{pattern}$")


class _Plan:
    """What the model says about one operation's wire form, worked out once (not per request).

    InvokeEndpoint crosses this for every call: walking botocore's shapes each time to find which
    member is a header, a URI label or the payload cost more than forwarding the request.
    """

    def __init__(self, op: OperationModel) -> None:
        shape = op.input_shape
        self.labels: list[tuple[str, str]] = []
        self.headers: list[tuple[str, str]] = []
        self.query: list[tuple[str, str, bool]] = []  # (member, query key, is a list)
        self.payload = shape.serialization.get("payload") if shape is not None else None
        self.payload_max = shape.members[self.payload].metadata.get("max") if self.payload else None
        for name, member in (shape.members.items() if shape is not None else []):
            where = member.serialization.get("location")
            if where == "uri":
                self.labels.append((name, member.serialization.get("name", name)))
            elif where == "header":
                self.headers.append((name, member.serialization["name"]))
            elif where == "querystring":
                self.query.append((name, member.serialization.get("name", name), member.type_name == "list"))
        out = op.output_shape
        # members sent as a JSON document (rest-json operations without a payload: sagemaker-metrics)
        self.body_members = [] if self.payload or shape is None else [
            name for name, member in shape.members.items() if not member.serialization.get("location")]
        self.out_payload = out.serialization.get("payload") if out is not None else None
        self.out_headers: list[tuple[str, str]] = []
        self.out_members: list[str] = []  # everything else (a JSON document if no payload)
        self.out_eventstream = False
        self.out_status: str | None = None  # a member that is the reply's HTTP status (Lambda's Invoke)
        for name, member in (out.members.items() if out is not None else []):
            if member.serialization.get("location") == "header":
                self.out_headers.append((name, member.serialization["name"]))
            elif member.serialization.get("location") == "statusCode":
                self.out_status = name
            elif name == self.out_payload:
                self.out_eventstream = bool(member.serialization.get("eventstream"))
            else:
                self.out_members.append(name)
        self.status = op.http.get("responseCode", 200)
        self.valid: dict[tuple, dict] = {}  # request documents already validated -> their parsed form


VALID_MEMO = 4096  # documents remembered per operation (then forgotten all at once)


def _json_body(body: bytes) -> dict[str, Any]:
    if not body.strip():
        return {}
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise SerializationError(f"The request body is not valid JSON: {exc}") from None
    if not isinstance(document, dict):
        raise SerializationError("The request body must be a JSON object.")
    return document


class RestService:
    """One rest-json service's operations, routed by method and path, parsed and validated from botocore."""

    def __init__(self, model_name: str, handlers: dict[str, RestHandler]) -> None:
        self.model = service_model(model_name)
        self.handlers = handlers
        self.routes = [(op, *_route(op)) for op in (self.model.operation_model(n) for n in self.model.operation_names)]
        self.plans = {op.name: _Plan(op) for op, _, _ in self.routes}
        # the code a malformed request gets: sagemaker-runtime and featurestore-runtime model `ValidationError`,
        # most other rest-json services (Lambda, sagemaker-metrics) answer `ValidationException`
        self.invalid_code = "ValidationError" if "ValidationError" in self.model.shape_names else "ValidationException"

    def find(self, method: str, path: str) -> tuple[OperationModel, dict[str, str]] | None:
        for op, op_method, pattern in self.routes:
            match = pattern.match(path)
            if match and op_method == method:
                return op, {k: unquote(v) for k, v in match.groupdict().items()}
        return None

    def payload_limit(self, op: OperationModel) -> int | None:
        return self.plans[op.name].payload_max

    def dispatch(self, found: tuple[OperationModel, dict[str, str]] | None, method: str, path: str,
                 headers: Any, body: bytes, ctx: RequestContext, query: str = ""
                 ) -> tuple[int, dict[str, str], bytes | Iterator[bytes]]:
        """Run the operation `find` returned for `method path`; `headers` has a case-insensitive `get`;
        `query`: the raw query string (read only by operations with querystring members)."""
        try:
            if found is None:
                raise UnknownOperation(f"No {self.model.service_name} operation at {method} {path}.")
            op, labels = found
            ctx.operation = op.name
            handler = self.handlers.get(op.name)
            if handler is None:
                raise AwsError(f"{op.name} is not implemented by sagemaker-emulator yet.",
                               code="ValidationError")
            plan = self.plans[op.name]
            params = self._parse(op, plan, labels, headers, body, query)
            result = handler(ctx, params) or {}
            return self._serialise(op, plan, result, ctx)
        except AwsError as err:
            return self.error(err, ctx)
        except Exception:
            log.exception("unhandled error in %s %s", method, path)
            return self.error(InternalFailure("An internal error occurred."), ctx)

    def _parse(self, op: OperationModel, plan: _Plan, labels: dict[str, str], headers: Any, body: bytes,
               query: str) -> dict:
        document: dict[str, Any] = {name: labels.get(label) for name, label in plan.labels}
        for name, header in plan.headers:
            value = headers.get(header)
            if value is not None:
                document[name] = value
        if plan.query and query:
            given = parse_qs(query, keep_blank_values=True)
            for name, query_key, is_list in plan.query:
                if query_key in given:
                    document[name] = given[query_key] if is_list else given[query_key][-1]
        if plan.payload:
            document[plan.payload] = ""  # validated as an empty blob; the raw bytes are passed below
        if plan.body_members:  # a JSON document: validated each time (its values are not hashable)
            document.update({k: v for k, v in _json_body(body).items() if k in plan.body_members})
            try:
                return parse_and_validate(op.input_shape, document)
            except SerializationError:
                raise
            except AwsError as err:
                raise AwsError(err.message, code=self.invalid_code) from None
        # Validation is a pure function of the document, and an invocation loop sends the same
        # headers (endpoint, content types) over and over: remember the documents that passed.
        key = tuple((k, tuple(v) if isinstance(v, list) else v) for k, v in document.items())
        params = plan.valid.get(key)
        if params is None:
            try:
                params = parse_and_validate(op.input_shape, document)
            except SerializationError:
                raise
            except AwsError as err:
                raise AwsError(err.message, code=self.invalid_code) from None
            if len(plan.valid) >= VALID_MEMO:
                plan.valid.clear()
            plan.valid[key] = params
        params = dict(params)
        if plan.payload:
            params[plan.payload] = body
        return params

    def _serialise(self, op: OperationModel, plan: _Plan, result: dict, ctx: RequestContext
                   ) -> tuple[int, dict[str, str], bytes | Iterator[bytes]]:
        headers = {"x-amzn-RequestId": ctx.request_id}
        for name, header in plan.out_headers:
            value = result.get(name)
            if value is not None:
                headers[header] = str(value)
        body: bytes | Iterator[bytes] = b""
        value = result.get(plan.out_payload) if plan.out_payload else None
        if value is not None:
            if plan.out_eventstream:
                headers["Content-Type"] = "application/vnd.amazon.eventstream"
                body = self._event_stream(value)
            else:
                body = value if isinstance(value, bytes) else str(value).encode()
        document = {name: result[name] for name in plan.out_members if result.get(name) is not None}
        if document and plan.out_payload is None:
            headers["Content-Type"] = "application/json"
            body = json.dumps(to_wire(op.output_shape, document)).encode()
        status = result.get(plan.out_status) if plan.out_status else None
        return status if isinstance(status, int) else plan.status, headers, body

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

