"""Endpoint resource policies: Put/Get/DeleteEndpointPolicy.

The policy is kept with the endpoint (deleted with it, as AWS documents: a new endpoint of the same
name has none). Nothing here enforces it: the emulator serves one account and checks no IAM, so the
other accounts it would let in through an inference router do not exist; it is validated and returned.
"""

from __future__ import annotations

import json
from typing import Any

from sagemaker_emulator.protocol.errors import ResourceNotFound, ValidationError
from sagemaker_emulator.protocol.json_protocol import RequestContext
from sagemaker_emulator.storage import resources

from . import common

KIND = "endpoint"
POLICY = "_ResourcePolicy"


def _endpoint(ctx: RequestContext, name: str) -> Any:
    row = common.find(ctx, KIND, name)
    if row is None:  # these operations declare ResourceNotFound
        raise ResourceNotFound(f'Could not find endpoint "{common.arn(ctx, KIND, name)}".')
    return row


def _check(policy: str) -> None:
    """A JSON policy document of ASCII characters, with a Statement of Allow/Deny entries."""
    if not policy.isascii():
        raise ValidationError("The endpoint policy can contain only ASCII characters.")
    try:
        document = json.loads(policy)
    except ValueError as exc:
        raise ValidationError(f"The endpoint policy is not a valid JSON policy document: {exc}") from None
    statements = document.get("Statement") if isinstance(document, dict) else None
    if isinstance(statements, dict):
        statements = [statements]
    if not isinstance(statements, list) or not statements:
        raise ValidationError("The endpoint policy must have a Statement.")
    for statement in statements:
        if not isinstance(statement, dict) or statement.get("Effect") not in ("Allow", "Deny"):
            raise ValidationError("Each Statement of the endpoint policy needs an Effect of Allow or Deny.")
        if "Principal" not in statement and "NotPrincipal" not in statement:
            raise ValidationError("Each Statement of a resource-based policy needs a Principal.")


def put_endpoint_policy(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    row = _endpoint(ctx, params["EndpointName"])
    _check(params["ResourcePolicy"])
    refused: list[str] = []

    def attach(doc: dict[str, Any]) -> str:
        if doc["EndpointStatus"] in ("Deleting", "Failed"):
            refused.append(doc["EndpointStatus"])
        else:
            doc[POLICY] = params["ResourcePolicy"]
        return doc["EndpointStatus"]

    resources.update(KIND, row.region, row.name, attach)
    if refused:
        raise ValidationError(f"You can't attach a policy to an endpoint whose status is {refused[0]}.")
    return {"EndpointArn": row.arn}


def get_endpoint_policy(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    row = _endpoint(ctx, params["EndpointName"])
    policy = row.document.get(POLICY)
    if policy is None:  # documented: no policy is a ValidationException
        raise ValidationError(f"Endpoint {row.name} does not have a resource-based policy.")
    return {"EndpointName": row.name, "EndpointArn": row.arn, "ResourcePolicy": policy}


def delete_endpoint_policy(ctx: RequestContext, params: dict[str, Any]) -> None:
    row = _endpoint(ctx, params["EndpointName"])

    def detach(doc: dict[str, Any]) -> str:
        doc.pop(POLICY, None)  # none attached: it succeeds all the same (documented)
        return doc["EndpointStatus"]

    resources.update(KIND, row.region, row.name, detach)
