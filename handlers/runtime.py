"""SageMaker Runtime (rest-json): InvokeEndpoint, InvokeEndpointAsync, InvokeEndpointWithResponseStream.

Hosting raises its own errors (`hosting.errors`); this is the one place they become the wire errors
SageMaker Runtime answers (codes, statuses and the extra members of ModelError and ModelStreamError).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from sagemaker_emulator.hosting import errors as hosting
from sagemaker_emulator.protocol.errors import AwsError
from sagemaker_emulator.protocol.json_protocol import RequestContext


def wire_error(err: hosting.HostingError) -> AwsError:
    """The sagemaker-runtime error for a hosting failure."""
    if isinstance(err, hosting.ModelError):
        return AwsError(err.message, code="ModelError", status=424, extra={
            "OriginalStatusCode": err.original_status, "OriginalMessage": err.original_message,
            "LogStreamArn": err.log_stream_arn,
            "ErrorCode": "CLIENT_ERROR_FROM_MODEL" if err.client_side else "SERVER_ERROR_FROM_MODEL"})
    if isinstance(err, hosting.ModelStreamError):
        return AwsError(err.message, code="ModelStreamError", extra={"ErrorCode": err.error_code})
    if isinstance(err, hosting.ServiceUnavailable):
        return AwsError(err.message, code="ServiceUnavailable", status=503)
    if isinstance(err, hosting.Throttled):
        return AwsError(err.message, code="ThrottlingException", status=429)
    return AwsError(err.message, code="ValidationError")


def invoke_endpoint(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    try:
        return ctx.services.hosting.invoke(ctx.region, ctx.account_id, params["EndpointName"], params)
    except hosting.HostingError as err:
        raise wire_error(err) from None


def invoke_endpoint_async(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    try:
        return ctx.services.hosting.invoke_async(ctx.region, ctx.account_id, params["EndpointName"], params)
    except hosting.HostingError as err:
        raise wire_error(err) from None


def invoke_endpoint_with_response_stream(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    """Body is an iterator of events; the protocol layer frames them as an AWS event stream."""
    try:
        result = ctx.services.hosting.invoke_stream(ctx.region, ctx.account_id, params["EndpointName"], params)
    except hosting.HostingError as err:
        raise wire_error(err) from None
    result["Body"] = _wire_events(result["Body"])
    return result


def _wire_events(events: Iterator[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """A break mid-stream, as the event-stream exception the protocol layer frames."""
    try:
        yield from events
    except hosting.HostingError as err:
        raise wire_error(err) from None
