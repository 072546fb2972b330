"""Long-tail operations that are not one resource's Create/Describe/List/...: batch device registration,
model card versions, presigned URLs, a cluster's nodes, a workteam's labelling jobs, image version aliases.

Each still works on the declared resources through engine.py (lookups, stores, errors), so what a
Describe shows and what these answer cannot disagree.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

from sagemaker_emulator.handlers import common
from sagemaker_emulator.protocol.errors import ResourceNotFound
from sagemaker_emulator.protocol.json_protocol import RequestContext
from sagemaker_emulator.storage import resources

from . import engine
from .catalog import MODELS


def _ordered(items: list[dict[str, Any]], params: dict[str, Any], time_key: str = "CreationTime",
             name_key: str = "") -> list[dict[str, Any]]:
    after, before = params.get("CreationTimeAfter"), params.get("CreationTimeBefore")
    items = [i for i in items if (after is None or i.get(time_key, 0) > after)
             and (before is None or i.get(time_key, 0) < before)]
    by_name = "name" in (params.get("SortBy") or "").lower() and name_key
    items.sort(key=lambda i: (i.get(name_key, "") if by_name else i.get(time_key, 0)),
               reverse=params.get("SortOrder") == "Descending")
    return items


# -- devices (RegisterDevices and co.: many devices of one fleet per call) ---------------------------
def register_devices(ctx: RequestContext, params: dict[str, Any]) -> None:
    device = MODELS["Device"]
    fleet = params["DeviceFleetName"]
    for item in params["Devices"]:
        engine.store(device, ctx, {**item, "DeviceFleetName": fleet, "Tags": params.get("Tags")})


def deregister_devices(ctx: RequestContext, params: dict[str, Any]) -> None:
    for name in params["DeviceNames"]:
        row = common.find(ctx, "device", f"{params['DeviceFleetName']}/{name}")
        if row is not None:
            common.delete(ctx, row)


def update_devices(ctx: RequestContext, params: dict[str, Any]) -> None:
    device = MODELS["Device"]
    for item in params["Devices"]:
        row = engine.lookup(device, ctx, "Describe", {**item, "DeviceFleetName": params["DeviceFleetName"]})
        if row is None:  # UpdateDevices declares no ResourceNotFound: SageMaker's ValidationException then
            raise engine.not_found(device, "Update",
                                   f'Device "{params["DeviceFleetName"]}/{item["DeviceName"]}" does not exist.')
        resources.update(row.kind, row.region, row.name, lambda doc, item=item: doc.update(
            {k: v for k, v in item.items() if k in device.describe_members}))


# -- model card versions ---------------------------------------------------------------------------
def list_model_card_versions(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    row = engine.require(MODELS["ModelCard"], ctx, "Describe", params)
    doc = row.document
    keys = ("ModelCardName", "ModelCardArn", "ModelCardStatus", "ModelCardVersion", "CreationTime",
            "LastModifiedTime")
    versions = [{k: d.get(k) for k in keys} for d in [*doc.get(engine.VERSIONS, []), doc]]
    if params.get("ModelCardStatus"):
        versions = [v for v in versions if v["ModelCardStatus"] == params["ModelCardStatus"]]
    ordered = _ordered(versions, params)  # a stable sort: versions of one time stay by number
    if params.get("SortBy") == "Version" or len({v["CreationTime"] for v in versions}) == 1:
        ordered.sort(key=lambda v: v["ModelCardVersion"], reverse=params.get("SortOrder") == "Descending")
    return common.offset_page(ordered, params, "ModelCardVersionSummaryList")


# -- presigned URLs: AWS's form; no UI answers them here ---------------------------------------------
def _presigned(noun: str, key: str, url: Callable[[RequestContext, dict[str, Any]], str],
               needs: str | None = None) -> Callable[[RequestContext, dict[str, Any]], dict[str, Any]]:
    def handler(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        row = engine.require(MODELS[noun], ctx, "Describe", params)
        if needs is not None:
            engine.require(MODELS[needs], ctx, "Describe", params)
        token = hashlib.sha256(f"{row.arn}{resources.now()}".encode()).hexdigest()[:32]
        return {key: f"{url(ctx, row.document)}?authToken={token}"}

    return handler


HANDLERS: dict[str, Callable[[RequestContext, dict[str, Any]], Any]] = {
    "register_devices": register_devices,
    "deregister_devices": deregister_devices,
    "update_devices": update_devices,
    "list_model_card_versions": list_model_card_versions,
    "create_presigned_domain_url": _presigned(
        "Domain", "AuthorizedUrl", lambda ctx, d: f"{d['Url']}/auth", needs="UserProfile"),
    "create_presigned_notebook_instance_url": _presigned(
        "NotebookInstance", "AuthorizedUrl", lambda ctx, d: f"https://{d['Url']}/auth"),
    "create_presigned_mlflow_tracking_server_url": _presigned(
        "MlflowTrackingServer", "AuthorizedUrl",
        lambda ctx, d: f"https://t-{d['TrackingServerName'].lower()}.{ctx.region}.experiments.sagemaker.aws/auth"),
    "create_presigned_mlflow_app_url": _presigned(
        "MlflowApp", "AuthorizedUrl", lambda ctx, d: f"https://app-{d['Name'].lower()}.{ctx.region}"
                                                     ".experiments.sagemaker.aws/auth"),
    "create_partner_app_presigned_url": _presigned(
        "PartnerApp", "Url", lambda ctx, d: f"https://{d['Name'].lower()}.partner-app.{ctx.region}.sagemaker.aws"),
}


# -- a HyperPod cluster's nodes: its instance groups' target counts, named stably ----------------------
def _nodes(row: Any) -> list[dict[str, Any]]:
    out = []
    for group in row.document.get("InstanceGroups", []):
        for index in range(group.get("InstanceCount", 0)):
            digest = hashlib.sha256(f"{row.arn}/{group.get('InstanceGroupName')}/{index}".encode()).hexdigest()
            out.append({"InstanceGroupName": group.get("InstanceGroupName"), "InstanceId": f"i-{digest[:17]}",
                        "InstanceType": group.get("InstanceType"), "LaunchTime": row.creation_time,
                        "InstanceStatus": {"Status": "Running", "Message": "records only: no instance runs"}})
    return out


def list_cluster_nodes(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    row = engine.require(MODELS["Cluster"], ctx, "Describe", params)
    nodes = [n for n in _nodes(row) if params.get("InstanceGroupNameContains", "") in n["InstanceGroupName"]]
    ordered = _ordered(nodes, params, "LaunchTime", "InstanceGroupName")
    return common.offset_page(ordered, params, "ClusterNodeSummaries")


def describe_cluster_node(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    row = engine.require(MODELS["Cluster"], ctx, "Describe", params)
    node = next((n for n in _nodes(row) if n["InstanceId"] == params.get("NodeId")), None)
    if node is None:
        raise ResourceNotFound(f"Node {params.get('NodeId')} does not exist in cluster {row.name}.")
    return {"NodeDetails": node}


def list_labeling_jobs_for_workteam(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    team = resources.get_by_arn(params["WorkteamArn"])
    if team is None or team.kind != "workteam":
        raise ResourceNotFound(f"Workteam {params['WorkteamArn']} does not exist.")
    jobs = []
    for row in resources.Resource.select().where((resources.Resource.kind == "labeling-job")
                                                 & (resources.Resource.region == ctx.region)):
        doc = row.document
        if doc.get("HumanTaskConfig", {}).get("WorkteamArn", "").lower() == team.arn:
            code = hashlib.sha256(row.arn.encode()).hexdigest()[:20]
            if params.get("JobReferenceCodeContains", "") in code:
                jobs.append({"LabelingJobName": row.name, "JobReferenceCode": code,
                             "WorkRequesterAccountId": ctx.account_id, "CreationTime": row.creation_time,
                             "NumberOfHumanWorkersPerDataObject":
                                 doc["HumanTaskConfig"].get("NumberOfHumanWorkersPerDataObject")})
    return common.offset_page(_ordered(jobs, params, "CreationTime"), params, "LabelingJobSummaryList")


# -- an image's version aliases (CreateImageVersion's Aliases, UpdateImageVersion's AliasesToAdd) -------
def list_aliases(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    """The aliases of one version (Version), or of every version of the image; Alias narrows to it."""
    version = MODELS["ImageVersion"]
    engine.require(MODELS["Image"], ctx, "Describe", params)
    if params.get("Version") is not None:
        rows = [engine.require(version, ctx, "Describe", {"ImageName": params["ImageName"],
                                                          "Version": params["Version"]})]
    else:
        rows = engine.siblings(version, ctx, params)
    aliases = [a for row in rows for a in row.document.get(engine.ALIASES, [])
               if params.get("Alias") in (None, a)]
    return common.offset_page(aliases, params, "SageMakerImageVersionAliases")


# -- an inference component's copy count ------------------------------------------------------------
def update_inference_component_runtime_config(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    """An UpdateInferenceComponent of the copy count alone (the same checks, statuses and answer)."""
    return engine.update(MODELS["InferenceComponent"], ctx, {
        "InferenceComponentName": params["InferenceComponentName"],
        "RuntimeConfig": {"CopyCount": params["DesiredRuntimeConfig"]["CopyCount"]}})


HANDLERS.update({"list_aliases": list_aliases,
                 "update_inference_component_runtime_config": update_inference_component_runtime_config,
                 "list_cluster_nodes": list_cluster_nodes, "describe_cluster_node": describe_cluster_node,
                 "list_labeling_jobs_for_workteam": list_labeling_jobs_for_workteam})
