"""Model registry: model package groups, versioned and unversioned model packages, group policies.

A versioned package is stored under the name `<group>/<version>` (what AWS documents as its
ModelPackageName) and related to its group (`model-package-group/model-package`); the group keeps
the last version it handed out, so numbers are never reused after a delete. The `status` column of
a package holds its ModelApprovalStatus (what ListModelPackages filters on).
"""

from __future__ import annotations

import logging
from typing import Any

from sagemaker_emulator.protocol.errors import AwsError, ConflictError, ValidationError
from sagemaker_emulator.protocol.json_protocol import RequestContext
from sagemaker_emulator.storage import resources
from sagemaker_emulator.storage.models import Resource

from . import common

log = logging.getLogger(__name__)

GROUP = "model-package-group"
PACKAGE = "model-package"
VERSIONS = "model-package-group/model-package"
DEFAULT_APPROVAL = "PendingManualApproval"  # docs/decisions.md: the default of a versioned package


# -- lookups -----------------------------------------------------------------------------------------
def _group(ctx: RequestContext, value: str) -> Resource:
    row = common.find_named(ctx, GROUP, value)
    if row is None:
        name = value.rsplit("/", 1)[-1]
        raise ValidationError(f"ModelPackageGroup {name} does not exist.")
    return row


def package_row(ctx: RequestContext, value: str) -> Resource:
    """A package by name (unversioned) or ARN (either kind), or AWS's ValidationException."""
    row = common.find_named(ctx, PACKAGE, value)
    if row is None:
        shown = value if value.startswith("arn:") else common.arn(ctx, PACKAGE, value)
        raise ValidationError(f"ModelPackage {shown} does not exist.")
    return row


# -- groups ------------------------------------------------------------------------------------------
def create_model_package_group(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    name = params["ModelPackageGroupName"]
    document = {key: value for key, value in params.items() if key != "Tags"}
    document.update(ModelPackageGroupArn=common.arn(ctx, GROUP, name), CreationTime=resources.now(),
                    ModelPackageGroupStatus="Completed", CreatedBy={})
    common.create(ctx, GROUP, name, document, "model package group", status="Completed", tags=params.get("Tags"))
    return {"ModelPackageGroupArn": document["ModelPackageGroupArn"]}


def describe_model_package_group(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    return _group(ctx, params["ModelPackageGroupName"]).document


def list_model_package_groups(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    return common.list_page(ctx, GROUP, params, "ModelPackageGroupSummaryList", lambda row: {
        key: row.document.get(key) for key in ("ModelPackageGroupName", "ModelPackageGroupArn",
                                               "ModelPackageGroupDescription", "CreationTime",
                                               "ModelPackageGroupStatus")}, default_order="Ascending")  # as documented


def delete_model_package_group(ctx: RequestContext, params: dict[str, Any]) -> None:
    row = _group(ctx, params["ModelPackageGroupName"])
    if resources.children(row, VERSIONS):
        raise ConflictError(f"Model package group {row.name} still has model packages; delete its versions first.")
    common.delete(ctx, row)


def put_model_package_group_policy(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    row = _group(ctx, params["ModelPackageGroupName"])
    resources.update(GROUP, row.region, row.name,
                     lambda doc: doc.__setitem__("_ResourcePolicy", params["ResourcePolicy"]))
    return {"ModelPackageGroupArn": row.arn}


def get_model_package_group_policy(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    row = _group(ctx, params["ModelPackageGroupName"])
    policy = row.document.get("_ResourcePolicy")
    if policy is None:
        raise ValidationError(f"Cannot find resource policy for model package group {row.name}.")
    return {"ResourcePolicy": policy}


def delete_model_package_group_policy(ctx: RequestContext, params: dict[str, Any]) -> None:
    row = _group(ctx, params["ModelPackageGroupName"])
    if "_ResourcePolicy" not in row.document:
        raise ValidationError(f"Cannot find resource policy for model package group {row.name}.")
    resources.update(GROUP, row.region, row.name, lambda doc: doc.pop("_ResourcePolicy", None))


# -- packages ----------------------------------------------------------------------------------------
def _next_version(ctx: RequestContext, group: Resource) -> int:
    def bump(doc: dict) -> None:
        doc["_LatestVersion"] = doc.get("_LatestVersion", 0) + 1

    row = resources.update(GROUP, group.region, group.name, bump)
    if row is None:  # deleted meanwhile
        raise ValidationError(f"ModelPackageGroup {group.name} does not exist.")
    return int(row.document["_LatestVersion"])


def _check_create(params: dict[str, Any]) -> None:
    name, group = params.get("ModelPackageName"), params.get("ModelPackageGroupName")
    if name and group:
        raise ValidationError("Both ModelPackageName and ModelPackageGroupName are provided in the input. "
                              "Cannot determine which one to use.")
    if not name and not group:
        raise ValidationError("Missing ARN.")
    if name and params.get("ModelApprovalStatus"):
        raise ValidationError("ModelApprovalStatus is only valid for a versioned model package "
                              "(one created with ModelPackageGroupName).")
    if name and not (params.get("InferenceSpecification") or params.get("SourceAlgorithmSpecification")):
        raise ValidationError("An unversioned model package needs an InferenceSpecification or a "
                              "SourceAlgorithmSpecification.")
    if params.get("ValidationSpecification") and not params.get("InferenceSpecification"):
        raise ValidationError("ValidationSpecification requires an InferenceSpecification.")
    _check_additional(params.get("AdditionalInferenceSpecifications") or [])


def _check_additional(specs: list[dict]) -> None:
    names = [spec["Name"] for spec in specs]
    if len(set(names)) != len(names):
        raise ValidationError("The names of AdditionalInferenceSpecifications must be unique.")


def create_model_package(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    _check_create(params)
    document = {key: value for key, value in params.items() if key not in ("Tags", "ClientToken")}
    now = resources.now()
    group = None
    if params.get("ModelPackageGroupName"):
        group = _group(ctx, params["ModelPackageGroupName"])
        version = _next_version(ctx, group)
        name = f"{group.name}/{version}"
        document.update(ModelPackageGroupName=group.name, ModelPackageVersion=version,
                        ModelApprovalStatus=params.get("ModelApprovalStatus") or DEFAULT_APPROVAL)
    else:
        name = params["ModelPackageName"]
    validation = params.get("ValidationSpecification")
    profiles = [p["ProfileName"] for p in (validation or {}).get("ValidationProfiles", [])]
    document.update(
        ModelPackageName=name, ModelPackageArn=common.arn(ctx, PACKAGE, name), CreationTime=now,
        LastModifiedTime=now, CreatedBy={},
        ModelPackageStatus="InProgress" if profiles else "Completed",
        ModelPackageStatusDetails={"ValidationStatuses": [
            {"Name": profile, "Status": "InProgress"} for profile in profiles]})
    document.setdefault("CertifyForMarketplace", False)
    row = common.create(ctx, PACKAGE, name, document, "model package", status=document.get("ModelApprovalStatus"),
                        tags=params.get("Tags"))
    if group is not None:
        resources.relate(group, row, VERSIONS)
    _record_lineage(ctx, document)
    if profiles:
        from sagemaker_emulator.jobs import package_validation

        package_validation.start(ctx.services, ctx.region, name)
    return {"ModelPackageArn": document["ModelPackageArn"]}


def _record_lineage(ctx: RequestContext, document: dict[str, Any]) -> None:
    """The package's lineage entities (handlers/lineage_tracking.py); a failure there never fails the create."""
    from . import lineage_tracking

    try:
        lineage_tracking.model_package(ctx, document)
    except AwsError as err:
        log.warning("model package %s: lineage not recorded: %s", document["ModelPackageName"], err.message)


def describe_model_package(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    return package_row(ctx, params["ModelPackageName"]).document


def _summary(row: Resource) -> dict[str, Any]:
    doc = row.document
    keys = ("ModelPackageName", "ModelPackageGroupName", "ModelPackageVersion", "ModelPackageArn",
            "ModelPackageDescription", "CreationTime", "ModelPackageStatus", "ModelApprovalStatus",
            "ModelLifeCycle", "ModelPackageRegistrationType", "InferenceSpecification")
    return {key: doc[key] for key in keys if key in doc}


def list_model_packages(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    query = common.list_query(params, default_order="Ascending")  # documented default
    query.status = params.get("ModelApprovalStatus")
    group_name = params.get("ModelPackageGroupName")
    kind = params.get("ModelPackageType") or ("Versioned" if group_name else "Unversioned")
    if group_name:
        query.name_prefix = f"{_group(ctx, group_name).name}/"
    elif kind != "Both":
        query.name_has_slash = kind == "Versioned"
    if params.get("SortBy") == "Name":
        query.sort_by = "Name"
    return common.page_of(ctx, PACKAGE, query, "ModelPackageSummaryList", _summary)


def update_model_package(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    row = package_row(ctx, params["ModelPackageArn"])
    versioned = "ModelPackageGroupName" in row.document
    if params.get("ModelApprovalStatus") and not versioned:
        raise ValidationError("ModelApprovalStatus can only be updated for a versioned model package.")
    _check_additional(params.get("AdditionalInferenceSpecificationsToAdd") or [])

    def mutate(doc: dict) -> str | None:
        for key in ("ModelApprovalStatus", "ApprovalDescription", "InferenceSpecification", "SourceUri",
                    "ModelCard", "ModelLifeCycle", "ModelPackageRegistrationType"):
            if key in params:
                doc[key] = params[key]
        if "CustomerMetadataProperties" in params or "CustomerMetadataPropertiesToRemove" in params:
            properties = {**doc.get("CustomerMetadataProperties", {}), **params.get("CustomerMetadataProperties", {})}
            for key in params.get("CustomerMetadataPropertiesToRemove", []):
                properties.pop(key, None)
            doc["CustomerMetadataProperties"] = properties
        added = params.get("AdditionalInferenceSpecificationsToAdd")
        if added:
            existing = doc.get("AdditionalInferenceSpecifications", [])
            clash = {spec["Name"] for spec in existing} & {spec["Name"] for spec in added}
            if clash:
                raise ValidationError(f"AdditionalInferenceSpecifications {sorted(clash)} already exist.")
            doc["AdditionalInferenceSpecifications"] = existing + added
        doc["LastModifiedTime"] = resources.now()
        doc["LastModifiedBy"] = {}
        return doc.get("ModelApprovalStatus")

    resources.update(PACKAGE, row.region, row.name, mutate)
    return {"ModelPackageArn": row.arn}


def delete_model_package(ctx: RequestContext, params: dict[str, Any]) -> None:
    row = package_row(ctx, params["ModelPackageName"])
    if row.document.get("ModelPackageStatus") == "InProgress":
        raise ConflictError(f"Model package {row.arn} is being validated; it can be deleted once it is "
                            "Completed or Failed.")
    common.delete(ctx, row)


def batch_describe_model_package(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    summaries: dict[str, Any] = {}
    errors: dict[str, Any] = {}
    for arn in params["ModelPackageArnList"]:
        row = common.find_named(ctx, PACKAGE, arn)
        if row is None:
            errors[arn] = {"ErrorCode": "ValidationException", "ErrorResponse": f"ModelPackage {arn} does not exist."}
        else:
            summaries[arn] = _summary(row)
    return {"ModelPackageSummaries": summaries, "BatchDescribeModelPackageErrorMap": errors}


def inference_containers(ctx: RequestContext, name_or_arn: str) -> list[dict[str, Any]]:
    """What CreateModel deploys for a container naming a package: its InferenceSpecification's
    containers, read through DescribeModelPackage; a versioned package must be Approved."""
    package = ctx.services.sagemaker.call("DescribeModelPackage", {"ModelPackageName": name_or_arn},
                                          region=ctx.region)
    if package.get("ModelPackageGroupName") and package.get("ModelApprovalStatus") != "Approved":
        raise ValidationError(f"Model package {package['ModelPackageArn']} is not approved for deployment: "
                              f"its ModelApprovalStatus is {package.get('ModelApprovalStatus')}. For versioned "
                              "models, ModelApprovalStatus must be set to Approved to deploy the model.")
    if package.get("ModelPackageStatus") != "Completed":
        raise ValidationError(f"Model package {package['ModelPackageArn']} is in status "
                              f"{package.get('ModelPackageStatus')}; only a Completed model package can be deployed.")
    containers = (package.get("InferenceSpecification") or {}).get("Containers") or []
    if not containers:
        raise ValidationError(f"Model package {package['ModelPackageArn']} has no InferenceSpecification "
                              "containers to deploy.")
    return containers
