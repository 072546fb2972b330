"""Endpoints: CreateEndpoint, DescribeEndpoint, ListEndpoints, DeleteEndpoint.

The handler stores the endpoint as Creating and hands it to the hosting engine, which brings up
the serving containers and moves it to InService or Failed.
"""

from __future__ import annotations

from typing import Any

from emulator.protocol.errors import ValidationError
from emulator.protocol.json_protocol import RequestContext
from storage import resources

from . import common, endpoint_configs

KIND = "endpoint"
NOUN = "endpoint"


def create_endpoint(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    name = params["EndpointName"]
    config = common.require(ctx, endpoint_configs.KIND, params["EndpointConfigName"], endpoint_configs.NOUN)
    created = resources.now()
    variants = []
    for variant in config.document["ProductionVariants"]:
        weight = variant.get("InitialVariantWeight", 1.0)
        variants.append({"VariantName": variant["VariantName"], "DeployedImages": [], "CurrentWeight": weight,
                         "DesiredWeight": weight, "CurrentInstanceCount": 0,
                         "DesiredInstanceCount": variant.get("InitialInstanceCount", 1)})
    document = {"EndpointName": name, "EndpointArn": common.arn(ctx, KIND, name),
                "EndpointConfigName": params["EndpointConfigName"], "ProductionVariants": variants,
                "EndpointStatus": "Creating", "CreationTime": created, "LastModifiedTime": created}
    for key in ("DataCaptureConfig", "AsyncInferenceConfig"):
        if config.document.get(key):
            document[key] = config.document[key]
    if params.get("DeploymentConfig"):
        document["LastDeploymentConfig"] = params["DeploymentConfig"]
    common.create(ctx, KIND, name, document, NOUN, status="Creating", tags=params.get("Tags"))
    ctx.services.hosting.create(ctx.region, name)
    return {"EndpointArn": document["EndpointArn"]}


def describe_endpoint(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    return common.require(ctx, KIND, params["EndpointName"], NOUN).document


def list_endpoints(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    return common.list_page(ctx, KIND, params, "Endpoints", lambda row: {
        "EndpointName": row.name, "EndpointArn": row.arn, "CreationTime": row.creation_time,
        "LastModifiedTime": row.last_modified_time, "EndpointStatus": row.status})


def delete_endpoint(ctx: RequestContext, params: dict[str, Any]) -> None:
    row = common.require(ctx, KIND, params["EndpointName"], NOUN)
    if row.status == "Deleting":
        raise ValidationError(f'Cannot delete endpoint "{row.arn}" while it is being deleted.')
    ctx.services.hosting.delete(ctx.region, row.name)
    resources.delete(row)
