"""Lambda's Invoke (rest-json): the one Lambda operation the emulator answers itself.

Every other Lambda operation (CreateFunction, GetFunction, ...) stays with the embedded moto, which
keeps the functions; aws/lambda_runtime.py runs them. This maps the wire's headers to an invocation
and the runtime's refusals (`LambdaError`) to Lambda's errors.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from sagemaker_emulator.aws import lambda_runtime
from sagemaker_emulator.protocol.errors import AwsError
from sagemaker_emulator.protocol.json_protocol import RequestContext


def _wire(err: lambda_runtime.LambdaError) -> AwsError:
    return AwsError(err.message, code=err.code, status=err.status, extra={"Type": "User", **err.extra})


def _client_context(value: str | None) -> str | None:
    """X-Amz-Client-Context: base64 of a JSON object, passed to the handler as `context.client_context`."""
    if not value:
        return None
    try:
        document = json.loads(base64.b64decode(value, validate=True))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise AwsError("Client context must be a valid Base64-encoded JSON object.",
                       code="InvalidRequestContentException") from None
    if not isinstance(document, dict):
        raise AwsError("Client context must be a valid Base64-encoded JSON object.",
                       code="InvalidRequestContentException")
    return json.dumps(document)


def invoke(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    kind = params.get("InvocationType") or "RequestResponse"
    payload = params.get("Payload") or b""
    try:
        fn = lambda_runtime.find_function(ctx.services, params["FunctionName"], ctx.region, params.get("Qualifier"))
        lambda_runtime.check_payload(payload, lambda_runtime.EVENT_PAYLOAD_BYTES if kind == "Event"
                                     else lambda_runtime.SYNC_PAYLOAD_BYTES)
        client_context = _client_context(params.get("ClientContext"))
        if kind == "DryRun":
            lambda_runtime.check_runnable(fn)
            return {"StatusCode": 204}
        if kind == "Event":
            lambda_runtime.submit_event(ctx.services, fn, payload)
            return {"StatusCode": 202}
        result = lambda_runtime.call(ctx.services, fn, payload, client_context)
    except lambda_runtime.LambdaError as err:
        raise _wire(err) from None
    reply: dict[str, Any] = {"StatusCode": result.status_code, "Payload": result.payload,
                             "ExecutedVersion": fn.version}
    if result.function_error:
        reply["FunctionError"] = result.function_error
    if params.get("LogType") == "Tail":
        reply["LogResult"] = base64.b64encode(result.log_tail.encode()).decode()
    return reply
