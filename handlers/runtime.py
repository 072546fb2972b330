"""SageMaker Runtime (rest-json): InvokeEndpoint, InvokeEndpointAsync, InvokeEndpointWithResponseStream."""

from __future__ import annotations

from typing import Any

from sagemaker_emulator.protocol.json_protocol import RequestContext


def invoke_endpoint(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    return ctx.services.hosting.invoke(ctx.region, ctx.account_id, params["EndpointName"], params)


def invoke_endpoint_async(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    return ctx.services.hosting.invoke_async(ctx.region, ctx.account_id, params["EndpointName"], params)


def invoke_endpoint_with_response_stream(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    """Body is an iterator of events; the protocol layer frames them as an AWS event stream."""
    return ctx.services.hosting.invoke_stream(ctx.region, ctx.account_id, params["EndpointName"], params)
