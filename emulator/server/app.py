"""The WSGI application: one port, routed by what the request is.

* `X-Amz-Target: SageMaker.*` or `Logs_20140328.*`  -> our awsJson services
* `POST /endpoints/<name>/...` signed for `sagemaker` -> our runtime (InvokeEndpoint)
* S3 (signed for `s3`, presigned, or unsigned REST) -> our durable S3 (emulator/aws/s3), unless
                                                      `s3_backend = "moto"`
* `PUT /BatchPutMetrics`, `POST /BatchGetMetrics` signed for `sagemaker` -> our sagemaker-metrics
* `POST /2015-03-31/functions/<name>/invocations` signed for `lambda` -> our Lambda Invoke (the
                                                      function runs in a container; aws/lambda_runtime)
* `/FeatureGroup/<name>`, `POST /BatchGetRecord` signed for `sagemaker` -> our featurestore-runtime
* Athena queries on a feature group's table            -> run locally (feature_store/athena.py)
* `X-Amz-Target: AnyScaleFrontendService.*` with ServiceNamespace `sagemaker` -> our Application Auto
                                                      Scaling (it scales variants); other namespaces: moto
* `X-Amz-Target: ResourceGroupsTaggingAPI_20170126.*` -> ours for GetResources/GetTagKeys/GetTagValues/
                                                      Tag/UntagResources (merging moto's), else moto
* anything else (STS, IAM, CloudFormation, ...)      -> moto, in-process (moto's CloudFormation provisions
                                                      AWS::SageMaker::* through aws/cfn_sagemaker)
"""

from __future__ import annotations

import io
import logging
import re
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from flask import Flask, Response, request
from werkzeug.datastructures import EnvironHeaders
from werkzeug.http import HTTP_STATUS_CODES
from werkzeug.wsgi import get_input_stream

from sagemaker_emulator.aws import cfn_sagemaker
from sagemaker_emulator.aws.moto_backend import moto_wsgi_app
from sagemaker_emulator.aws.s3 import owns as s3_owns
from sagemaker_emulator.aws.s3 import s3_app
from sagemaker_emulator.config import Config
from sagemaker_emulator.feature_store.athena import TARGETS as ATHENA_TARGETS
from sagemaker_emulator.protocol import sigv4
from sagemaker_emulator.protocol.errors import AwsError, SerializationError
from sagemaker_emulator.protocol.json_protocol import CONTENT_TYPE, error_response, new_request_id
from sagemaker_emulator.services import Services

log = logging.getLogger(__name__)

_SCOPE = re.compile(r"Credential=[^/,\s]+/\d{8}/([^/,\s]+)/([^/,\s]+)/aws4_request")
_METRICS_PATH = re.compile(r"^/Batch(Put|Get)Metrics$")
_LAMBDA_INVOKE_PATH = re.compile(r"^/2015-03-31/functions/[^/]+/invocations$")
# sagemaker-featurestore-runtime signs as `sagemaker` too; no S3 bucket name has capitals
_FEATURESTORE_PATH = re.compile(r"^/(FeatureGroup/[^/]+|BatchGetRecord)$")
_RUNTIME_PATH = re.compile(r"^/endpoints/[^/]*/(invocations|invocations-response-stream|async-invocations)$")


AUTOSCALING_PREFIX = "AnyScaleFrontendService."


def _peek_json(environ: dict) -> Any:
    """The JSON body of a request that may still go to moto (so the body is put back); None if not JSON."""
    import json

    length = environ.get("CONTENT_LENGTH")
    body = environ["wsgi.input"].read(int(length)) if length and length.isdigit() else b""
    environ["wsgi.input"] = io.BytesIO(body)
    try:
        return json.loads(body or b"{}")
    except ValueError:
        return None


def signing_scope(authorization: str | None) -> tuple[str | None, str | None]:
    """(region, service) from a SigV4 Authorization header, or (None, None) if unsigned."""
    match = _SCOPE.search(authorization or "")
    return (match.group(1), match.group(2)) if match else (None, None)


def _raw_path(environ: dict) -> str:
    """The path as sent (still %-encoded), so that `%2F` inside a name is not taken for a separator."""
    raw = environ.get("RAW_URI") or environ.get("REQUEST_URI")
    return raw.split("?", 1)[0] if raw else environ.get("PATH_INFO", "")


def _read_at_most(limit: int, stream: Any) -> bytes | None:
    """The request body, or None once it proves longer than `limit` (never more is read)."""
    data = bytearray()
    try:
        while len(data) <= limit:
            chunk = stream.read(limit + 1 - len(data))
            if not chunk:
                break
            data += chunk
    except ValueError as exc:  # sockio.MalformedBody: a chunk size line that is not hex
        raise SerializationError(f"The request body is not valid chunked transfer encoding: {exc}") from None
    return None if len(data) > limit else bytes(data)


def _checked_body(environ: dict, headers: Any, stream: Any, limit: int, services: Services,
                  too_large: Callable[[int | None], AwsError]) -> bytes:
    """The request body after the checks both protocols share: signature (in SigV4 mode), then size.

    What the headers alone condemn (a missing/unknown signature, a Content-Length over `limit`) is
    refused before the body is read; a chunked body is read no further than one byte past `limit`.
    `too_large(length or None)` makes the protocol's own error.
    """
    credentials = services.config.require_signature
    if credentials:
        sigv4.precheck(headers, credentials)
    length = environ.get("CONTENT_LENGTH")
    length = int(length) if length and length.isdigit() else None
    if length is not None and length > limit:
        raise too_large(length)
    data = _read_at_most(limit, stream)
    if data is None:
        raise too_large(None)
    if credentials:
        query = environ.get("QUERY_STRING")
        raw_uri = environ.get("RAW_URI") or environ.get("PATH_INFO", "") + (f"?{query}" if query else "")
        sigv4.verify(environ.get("REQUEST_METHOD", "POST"), raw_uri, headers, data, credentials)
    return data


def _json_api(services: Services) -> Flask:
    api = Flask("sagemaker_emulator")

    @api.post("/")
    def aws_json() -> Response:
        target = request.headers.get("X-Amz-Target", "")
        service = next((s for s in services.json_services if s.owns(target)), None)
        region, _ = signing_scope(request.headers.get("Authorization"))
        ctx = services.request_context(region)
        limit = services.config.max_request_bytes
        try:
            if service is None:  # a prefix of ours, mis-cased or without an operation
                raise AwsError(f"Unknown target {target!r}.", code="UnknownOperationException")
            data = _checked_body(request.environ, request.headers, request.stream, limit, services,
                                 lambda n: SerializationError(
                                     f"The request body is {n} bytes; the limit is {limit}." if n is not None
                                     else f"The request body is over the limit of {limit} bytes.", status=413))
        except AwsError as err:
            status, headers, body = error_response(err, {"Content-Type": CONTENT_TYPE,
                                                         "x-amzn-RequestId": ctx.request_id})
            return Response(body, status, headers)
        status, headers, body = service.dispatch(target, data, ctx)
        return Response(body, status, headers)

    @api.get("/_emulator/health")
    def health() -> Response:
        return Response('{"status": "ok"}', 200, {"Content-Type": "application/json"})

    return api


def _runtime_app(services: Services, rest: Any = None) -> Callable:
    """sagemaker-runtime (InvokeEndpoint & co.) as a plain WSGI callable: the invocation hot path.
    Also serves the other rest-json services, sagemaker-metrics, sagemaker-featurestore-runtime and
    Lambda's Invoke (`rest`), the same way.

    No Flask here: its request context, session and URL adapter cost more than the rest of an
    invocation. The raw path picks the operation (a `%2F` inside a name stays in its label).
    """
    rest = rest or services.sagemaker_runtime

    def app(environ: dict, start_response: Callable) -> Iterable[bytes]:
        headers = environ.get("emulator.headers") or EnvironHeaders(environ)  # our server's, already parsed
        path = _raw_path(environ)
        region, _ = signing_scope(headers.get("Authorization"))
        ctx = services.request_context(region)
        method = environ.get("REQUEST_METHOD", "")
        found = rest.find(method, path)
        limit = rest.payload_limit(found[0]) if found else None
        body: bytes | Iterator[bytes]
        # our server's wsgi.input stops at the request's end; another server's may need werkzeug's limit
        stream = environ["wsgi.input"] if environ.get("emulator.body_limited") else get_input_stream(environ)
        query = environ.get("QUERY_STRING", "")
        try:
            if found is None:
                raise AwsError(f"No {rest.model.service_name} operation at {method} {path}.",
                               code="UnknownOperationException", status=404)
            data = _checked_body(environ, headers, stream,
                                 limit if limit is not None else services.config.max_request_bytes, services,
                                 lambda n: AwsError(
                                     f"Received payload of {n} bytes; the limit is {limit} bytes." if n is not None
                                     else f"Received payload over the limit of {limit} bytes.",
                                     code="ValidationError"))
        except AwsError as err:
            status, reply_headers, body = rest.error(err, ctx)
        else:
            status, reply_headers, body = rest.dispatch(found, method, path, headers, data, ctx, query)
        if isinstance(body, bytes):
            reply_headers["Content-Length"] = str(len(body))
            chunks: Iterable[bytes] = [body]
        else:
            chunks = body
        start_response(f"{status} {HTTP_STATUS_CODES.get(status, 'Unknown')}", list(reply_headers.items()))
        return chunks

    return app


class EmulatorApp:
    """The routing WSGI callable; `services` is kept for shutdown and for tests."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self.api = _json_api(services)
        self.runtime = _runtime_app(services)
        self.metrics = _runtime_app(services, services.sagemaker_metrics)
        self.lambda_invoke = _runtime_app(services, services.lambda_invoke)
        self.featurestore = _runtime_app(services, services.featurestore_runtime)
        self.moto = moto_wsgi_app(services.moto_state)
        cfn_sagemaker.install(services)
        self.s3 = services.embedded_s3 = s3_app(services, self.moto, new_request_id)
        # Case-insensitive, dot or not: a mis-cased `sagemaker.ListModels` is ours to refuse
        # (UnknownOperationException), not moto's to answer with something unrelated.
        self.prefixes = tuple(s.prefix.lower() for s in services.json_services)

    def _athena(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        """Athena queries over a feature group's offline store are answered here (feature_store/athena.py);
        every other Athena call is moto's."""
        import json

        target = environ.get("HTTP_X_AMZ_TARGET", "")
        params = _peek_json(environ)
        local = self.services.feature_store.athena
        region = signing_scope(environ.get("HTTP_AUTHORIZATION"))[0] or self.services.config.region
        if not isinstance(params, dict) or not local.owns(target, params, region):
            return self.moto(environ, start_response)
        headers = {"Content-Type": "application/x-amz-json-1.1", "x-amzn-RequestId": new_request_id()}
        try:
            status, payload = 200, json.dumps(local.call(target, params, region)).encode()
        except AwsError as err:
            status, headers, payload = error_response(err, headers)
        headers["Content-Length"] = str(len(payload))
        start_response(f"{status} {HTTP_STATUS_CODES.get(status, 'Unknown')}", list(headers.items()))
        return [payload]

    @staticmethod
    def _sagemaker_namespace(environ: dict) -> bool:
        """Whether an Application Auto Scaling request is for the `sagemaker` namespace (ours; else moto's)."""
        params = _peek_json(environ)
        return isinstance(params, dict) and params.get("ServiceNamespace") == "sagemaker"

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        if target.startswith(AUTOSCALING_PREFIX) and not self._sagemaker_namespace(environ):
            return self.moto(environ, start_response)
        if target.lower().startswith(self.prefixes):
            tagging = self.services.tagging
            if not tagging.owns(target) or tagging.operation_for(target) in tagging.handlers:
                return self.api(environ, start_response)
        if target in ATHENA_TARGETS:
            return self._athena(environ, start_response)
        path = environ.get("PATH_INFO", "")
        if path == "/_emulator/reset":
            return self._reset(environ, start_response)
        if path.startswith("/_emulator/"):
            return self.api(environ, start_response)
        if _METRICS_PATH.match(path):  # sagemaker-metrics signs as `sagemaker` too: routed by path
            _, service = signing_scope(environ.get("HTTP_AUTHORIZATION"))  # (no valid bucket has this name)
            if service in (None, "sagemaker"):
                return self.metrics(environ, start_response)
        if environ.get("REQUEST_METHOD") == "POST" and _LAMBDA_INVOKE_PATH.match(_raw_path(environ)):
            if signing_scope(environ.get("HTTP_AUTHORIZATION"))[1] == "lambda":  # the rest of Lambda: moto's
                return self.lambda_invoke(environ, start_response)
        if path.startswith(("/FeatureGroup/", "/BatchGetRecord")) and _FEATURESTORE_PATH.match(_raw_path(environ)):
            _, service = signing_scope(environ.get("HTTP_AUTHORIZATION"))
            if service in (None, "sagemaker"):
                return self.featurestore(environ, start_response)
        if self.s3 is not None:
            if s3_owns(environ):
                return self.s3(environ, start_response)
            if path == "/moto-api/reset":  # moto's test-suite reset empties our S3 as well
                self.s3.reset()
        if path == "/moto-api/reset":  # ... and our SageMaker state: suites written for moto reset this way
            from sagemaker_emulator.reset import reset_sagemaker

            reset_sagemaker(self.services)
        if _RUNTIME_PATH.match(_raw_path(environ)):
            _, service = signing_scope(environ.get("HTTP_AUTHORIZATION"))
            if service in (None, "sagemaker"):
                return self.runtime(environ, start_response)
        return self.moto(environ, start_response)


    def _reset(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        """POST /_emulator/reset[?aws=1]: SageMaker state back to a fresh server's (emulator/reset.py);
        with aws=1 also moto's services (its own /moto-api/reset) and our S3."""
        import json
        from urllib.parse import parse_qs

        from sagemaker_emulator.reset import reset_sagemaker

        if environ.get("REQUEST_METHOD") != "POST":
            start_response("405 Method Not Allowed", [("Content-Type", "application/json"), ("Allow", "POST")])
            return [b'{"message": "POST /_emulator/reset"}']
        counts = reset_sagemaker(self.services)
        aws = parse_qs(environ.get("QUERY_STRING", "")).get("aws", ["0"])[0].lower() in ("1", "true", "yes")
        if aws:
            if self.s3 is not None:
                self.s3.reset()
            moto_environ = {**environ, "PATH_INFO": "/moto-api/reset", "QUERY_STRING": "", "CONTENT_LENGTH": "0",
                            "wsgi.input": io.BytesIO(b"")}
            for _chunk in self.moto(moto_environ, lambda status, headers, exc_info=None: None):
                pass
        body = json.dumps({"reset": counts, "aws": aws}).encode()
        start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
        return [body]


def create_app(config: Config | None = None, runtime: Any = None) -> EmulatorApp:
    """Build the application (opening the database in `config.data_dir`); `runtime`: a ContainerRuntime
    other than the Docker engine of the configuration (tests: runtime.fake.FakeRuntime)."""
    return EmulatorApp(Services(config or Config(), runtime=runtime))
