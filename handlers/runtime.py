"""SageMaker Runtime (rest-json): InvokeEndpoint."""

from __future__ import annotations

from typing import Any

from emulator.protocol.json_protocol import RequestContext


def invoke_endpoint(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    return ctx.services.hosting.invoke(ctx.region, ctx.account_id, params["EndpointName"], params)
