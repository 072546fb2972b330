"""Endpoints: Create/Describe/List/Update/DeleteEndpoint and UpdateEndpointWeightsAndCapacities.

Handlers check the request against the stored endpoint (status and variant names, inside one
transaction so two updates cannot both start), record the new status, and hand the work to the
hosting engine, which brings containers up and moves the endpoint to InService, Failed, or back
to InService after a rollback.
"""

from __future__ import annotations

from typing import Any

from sagemaker_emulator.protocol.errors import ValidationError
from sagemaker_emulator.protocol.json_protocol import RequestContext
from sagemaker_emulator.storage import resources

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


IN_PROGRESS = ("Creating", "Updating", "SystemUpdating", "RollingBack", "Deleting")


def _check_updatable(row_doc: dict[str, Any], endpoint_arn: str) -> None:
    status = row_doc["EndpointStatus"]
    if status in IN_PROGRESS:
        raise ValidationError(f'Cannot update in-progress endpoint "{endpoint_arn}".')
    if status != "InService":
        raise ValidationError(f'Cannot update endpoint "{endpoint_arn}" because it is in {status} state; '
                              "only DeleteEndpoint is allowed.")


def update_endpoint(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    row = common.require(ctx, KIND, params["EndpointName"], NOUN)
    config = common.require(ctx, endpoint_configs.KIND, params["EndpointConfigName"], endpoint_configs.NOUN)
    deployed = common.find(ctx, endpoint_configs.KIND, row.document.get("EndpointConfigName", ""))
    if deployed is not None:
        from . import application_autoscaling

        application_autoscaling.check_endpoint_update(ctx, row.name, deployed.document, config.document)
    pending = []
    for variant in config.document["ProductionVariants"]:
        summary = {"VariantName": variant["VariantName"], "DeployedImages": [],
                   "DesiredWeight": variant.get("InitialVariantWeight", 1.0)}
        if variant.get("ServerlessConfig"):
            summary["DesiredServerlessConfig"] = variant["ServerlessConfig"]
        else:
            summary.update(DesiredInstanceCount=variant.get("InitialInstanceCount", 1),
                           InstanceType=variant.get("InstanceType"))
        pending.append(summary)

    def updating(doc: dict[str, Any]) -> str:
        _check_updatable(doc, row.arn)
        doc["EndpointStatus"] = "Updating"
        doc["LastModifiedTime"] = resources.now()
        doc["PendingDeploymentSummary"] = {"EndpointConfigName": params["EndpointConfigName"],
                                           "ProductionVariants": pending, "StartTime": resources.now()}
        if params.get("DeploymentConfig"):
            doc["LastDeploymentConfig"] = params["DeploymentConfig"]
        elif not params.get("RetainDeploymentConfig"):
            doc.pop("LastDeploymentConfig", None)
        return "Updating"

    ctx.services.hosting.record(ctx.region, row.name).edit(updating)  # publishes the status change
    excluded = [p["VariantPropertyType"] for p in params.get("ExcludeRetainedVariantProperties") or []]
    ctx.services.hosting.update(ctx.region, row.name, params["EndpointConfigName"],
                                bool(params.get("RetainAllVariantProperties")), excluded)
    return {"EndpointArn": row.arn}


def update_endpoint_weights_and_capacities(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    row = common.require(ctx, KIND, params["EndpointName"], NOUN)
    desired = params["DesiredWeightsAndCapacities"]
    for change in desired:
        if change.get("DesiredWeight") is None and change.get("DesiredInstanceCount") is None \
                and change.get("ServerlessUpdateConfig") is None:
            raise ValidationError(f"Variant {change['VariantName']}: specify DesiredWeight, DesiredInstanceCount "
                                  "or ServerlessUpdateConfig.")

    def updating(doc: dict[str, Any]) -> str:
        _check_updatable(doc, row.arn)
        summaries = {v["VariantName"]: v for v in doc["ProductionVariants"]}
        missing = [c["VariantName"] for c in desired if c["VariantName"] not in summaries]
        if missing:
            raise ValidationError(f'The variant(s) "{missing}" are not present in endpoint "{row.arn}".')
        for change in desired:
            summary = summaries[change["VariantName"]]
            if change.get("DesiredWeight") is not None:
                summary["DesiredWeight"] = change["DesiredWeight"]
            if change.get("DesiredInstanceCount") is not None:
                if "DesiredServerlessConfig" in summary:
                    raise ValidationError(f"Variant {change['VariantName']} is serverless: it has no instance "
                                          "count to change.")
                summary["DesiredInstanceCount"] = change["DesiredInstanceCount"]
        doc["EndpointStatus"] = "Updating"
        doc["LastModifiedTime"] = resources.now()
        return "Updating"

    ctx.services.hosting.record(ctx.region, row.name).edit(updating)  # publishes the status change
    ctx.services.hosting.update_weights(ctx.region, row.name, desired)
    return {"EndpointArn": row.arn}


def delete_endpoint(ctx: RequestContext, params: dict[str, Any]) -> None:
    row = common.require(ctx, KIND, params["EndpointName"], NOUN)
    if row.status == "Deleting":
        raise ValidationError(f'Cannot delete endpoint "{row.arn}" while it is being deleted.')
    ctx.services.hosting.delete(ctx.region, row.name)
    common.delete(ctx, row)
