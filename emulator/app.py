"""The WSGI application: one port, routed by what the request is.

* `X-Amz-Target: SageMaker.*` or `Logs_20140328.*`  -> our awsJson services
* `POST /endpoints/<name>/...` signed for `sagemaker` -> our runtime (InvokeEndpoint)
* anything else (S3, STS, IAM, ...)                 -> moto, in-process
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Callable, Iterable

from flask import Flask, Response, request

from .aws_backend import moto_wsgi_app
from .config import Config
from .protocol.errors import AwsError, SerializationError
from .protocol.json_protocol import RequestContext, error_response
from .services import Services

log = logging.getLogger(__name__)

_SCOPE = re.compile(r"Credential=[^/,\s]+/\d{8}/([^/,\s]+)/([^/,\s]+)/aws4_request")
_RUNTIME_PATH = re.compile(r"^/endpoints/[^/]+/(invocations|invocations-response-stream|async-invocations)$")


def signing_scope(authorization: str | None) -> tuple[str | None, str | None]:
    """(region, service) from a SigV4 Authorization header, or (None, None) if unsigned."""
    match = _SCOPE.search(authorization or "")
    return (match.group(1), match.group(2)) if match else (None, None)


def _json_api(services: Services) -> Flask:
    api = Flask("sagemaker_emulator")

    @api.post("/")
    def aws_json() -> Response:
        target = request.headers.get("X-Amz-Target", "")
        service = next((s for s in services.json_services if s.owns(target)), None)
        region, _ = signing_scope(request.headers.get("Authorization"))
        ctx = RequestContext(region=region or services.config.region, account_id=services.config.account_id,
                             request_id=str(uuid.uuid4()), services=services)
        if service is None:  # the outer router only sends us known prefixes
            status, headers, body = error_response(
                AwsError(f"Unknown target {target!r}.", code="UnknownOperationException"), {})
            return Response(body, status, headers)
        length = request.content_length
        if length is not None and length > services.config.max_request_bytes:
            status, headers, body = error_response(SerializationError(
                f"The request body is {length} bytes; the limit is {services.config.max_request_bytes}."),
                {"x-amzn-RequestId": ctx.request_id})
            return Response(body, 413, headers)
        status, headers, body = service.dispatch(target, request.get_data(cache=False), ctx)
        return Response(body, status, headers)

    @api.post("/endpoints/<name>/<action>")
    def runtime(name: str, action: str) -> Response:
        region, _ = signing_scope(request.headers.get("Authorization"))
        ctx = RequestContext(region=region or services.config.region, account_id=services.config.account_id,
                             request_id=str(uuid.uuid4()), services=services)
        rest = services.sagemaker_runtime
        found = rest.find("POST", request.path)
        limit = rest.payload_limit(found[0]) if found else None
        length = request.content_length
        if limit is not None and length is not None and length > limit:
            status, headers, body = rest.error(AwsError(
                f"Received payload of {length} bytes; the limit is {limit} bytes.", code="ValidationError"), ctx)
        else:
            status, headers, body = rest.dispatch("POST", request.path, dict(request.headers),
                                                  request.get_data(cache=False), ctx)
        return Response(body, status, headers)

    @api.get("/_emulator/health")
    def health() -> Response:
        return Response('{"status": "ok"}', 200, {"Content-Type": "application/json"})

    return api


class EmulatorApp:
    """The routing WSGI callable; `services` is kept for shutdown and for tests."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self.api = _json_api(services)
        self.moto = moto_wsgi_app()
        self.prefixes = tuple(s.prefix + "." for s in services.json_services)

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        if target.startswith(self.prefixes):
            return self.api(environ, start_response)
        path = environ.get("PATH_INFO", "")
        if path.startswith("/_emulator/"):
            return self.api(environ, start_response)
        if _RUNTIME_PATH.match(path):
            _, service = signing_scope(environ.get("HTTP_AUTHORIZATION"))
            if service in (None, "sagemaker"):
                return self.api(environ, start_response)
        return self.moto(environ, start_response)


def create_app(config: Config | None = None) -> EmulatorApp:
    """Build the application (opening the database in `config.data_dir`)."""
    return EmulatorApp(Services(config or Config()))
