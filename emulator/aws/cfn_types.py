"""The `AWS::SageMaker::*` CloudFormation types we provision, declared once each.

A declaration says which operations create, describe, update and delete the resource, which
CloudFormation property names it, what `Ref` returns (AWS's "Return values" of the type), how the
Describe/Delete request is keyed from what Create answered, and which properties update in place
(the rest require replacement, as CloudFormation's type schemas say). CloudFormation's property
names are the API's member names except where `to_request` says otherwise; `aws/cfn_sagemaker.py`
does the provisioning, always through `services.sagemaker.call`.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

Attrs = dict[str, Any]


def _last(arn_member: str, parts: int = 1) -> Callable[[Attrs], str]:
    return lambda attrs: "/".join(str(attrs[arn_member]).split("/")[-parts:])


@dataclass(frozen=True)
class CfnType:
    noun: str                      # the operations' noun: CreateEndpoint, DescribeEndpoint, ...
    name: str | None               # the naming property ("EndpointName"); None: the type has none
    ref: str                       # the attribute `Ref` returns
    key: Callable[[Attrs], dict[str, Any]] | None = None   # Describe/Delete request from the attributes
    updatable: frozenset[str] = frozenset()                # properties Update<noun> changes in place
    to_request: Callable[[dict[str, Any]], dict[str, Any]] | None = None  # CFN properties -> Create request
    to_update: Callable[[dict[str, Any]], dict[str, Any]] | None = None   # attributes + properties -> Update
    cfn_only: frozenset[str] = frozenset()  # properties that only Update (or nothing) takes
    generate_name: bool = True     # CloudFormation makes a name when the template gives none
    stop_before_delete: bool = False  # Delete<noun> needs it stopped first (CloudFormation stops it)

    def request_key(self, attrs: Attrs) -> dict[str, Any]:
        if self.key is not None:
            return self.key(attrs)
        assert self.name is not None
        return {self.name: attrs[self.name]}


def _pipeline_request(props: dict[str, Any]) -> dict[str, Any]:
    """`PipelineDefinition` is `{PipelineDefinitionBody}` or `{PipelineDefinitionS3Location: {Bucket, Key,
    Version}}` in CloudFormation; the API takes `PipelineDefinition` (the JSON) or
    `PipelineDefinitionS3Location {Bucket, ObjectKey, VersionId}`."""
    out = {k: v for k, v in props.items() if k != "PipelineDefinition"}
    definition = props.get("PipelineDefinition") or {}
    if isinstance(definition, str):  # already the API's form (an update re-mapping a request)
        out["PipelineDefinition"] = definition
    elif "PipelineDefinitionBody" in definition:
        out["PipelineDefinition"] = definition["PipelineDefinitionBody"]
    elif "PipelineDefinitionS3Location" in definition:
        loc = definition["PipelineDefinitionS3Location"]
        out["PipelineDefinitionS3Location"] = {"Bucket": loc.get("Bucket"), "ObjectKey": loc.get("Key"),
                                               **({"VersionId": loc["Version"]} if loc.get("Version") else {})}
    out.setdefault("ClientRequestToken", str(uuid.uuid4()))
    return out


def _pipeline_update(props: dict[str, Any]) -> dict[str, Any]:
    out = _pipeline_request(props)
    out.pop("ClientRequestToken", None)
    out.pop("Tags", None)
    return out


def _endpoint_update(props: dict[str, Any]) -> dict[str, Any]:
    keep = ("EndpointName", "EndpointConfigName", "DeploymentConfig", "RetainAllVariantProperties",
            "ExcludeRetainedVariantProperties", "RetainDeploymentConfig")
    return {k: props[k] for k in keep if k in props}


_DOMAIN_KEY = _last("DomainArn")

TYPES: dict[str, CfnType] = {
    "AWS::SageMaker::Model": CfnType("Model", "ModelName", "ModelArn"),
    "AWS::SageMaker::EndpointConfig": CfnType("EndpointConfig", "EndpointConfigName", "EndpointConfigArn"),
    "AWS::SageMaker::Endpoint": CfnType(
        "Endpoint", "EndpointName", "EndpointArn",
        updatable=frozenset({"EndpointConfigName", "DeploymentConfig", "RetainAllVariantProperties",
                             "ExcludeRetainedVariantProperties", "RetainDeploymentConfig", "Tags"}),
        to_update=_endpoint_update,
        cfn_only=frozenset({"RetainAllVariantProperties", "ExcludeRetainedVariantProperties",
                            "RetainDeploymentConfig"})),
    "AWS::SageMaker::NotebookInstance": CfnType(
        "NotebookInstance", "NotebookInstanceName", "NotebookInstanceArn",
        updatable=frozenset({"InstanceType", "RoleArn", "LifecycleConfigName", "VolumeSizeInGB",
                             "DefaultCodeRepository", "AdditionalCodeRepositories", "AcceleratorTypes",
                             "RootAccess", "InstanceMetadataServiceConfiguration", "Tags"}),
        stop_before_delete=True),
    "AWS::SageMaker::NotebookInstanceLifecycleConfig": CfnType(
        "NotebookInstanceLifecycleConfig", "NotebookInstanceLifecycleConfigName", "NotebookInstanceLifecycleConfigArn",
        updatable=frozenset({"OnCreate", "OnStart"})),
    "AWS::SageMaker::CodeRepository": CfnType(
        "CodeRepository", "CodeRepositoryName", "CodeRepositoryArn", updatable=frozenset({"GitConfig", "Tags"})),
    "AWS::SageMaker::ModelPackageGroup": CfnType(
        "ModelPackageGroup", "ModelPackageGroupName", "ModelPackageGroupArn", updatable=frozenset({"Tags"})),
    "AWS::SageMaker::ModelPackage": CfnType(
        "ModelPackage", None, "ModelPackageArn", key=lambda a: {"ModelPackageName": a["ModelPackageArn"]},
        updatable=frozenset({"ModelApprovalStatus", "ApprovalDescription", "CustomerMetadataProperties",
                             "AdditionalInferenceSpecifications", "ModelCard", "SourceUri", "Tags"}),
        to_update=lambda p: {**{k: v for k, v in p.items() if k in (
            "ModelPackageArn", "ModelApprovalStatus", "ApprovalDescription", "CustomerMetadataProperties",
            "ModelCard", "SourceUri")}, **({"AdditionalInferenceSpecificationsToAdd": p[
                "AdditionalInferenceSpecifications"]} if p.get("AdditionalInferenceSpecifications") else {})},
        generate_name=False),
    "AWS::SageMaker::Pipeline": CfnType(
        "Pipeline", "PipelineName", "PipelineName",
        updatable=frozenset({"PipelineDefinition", "PipelineDescription", "PipelineDisplayName", "RoleArn",
                             "ParallelismConfiguration", "Tags"}),
        to_request=_pipeline_request, to_update=_pipeline_update),
    "AWS::SageMaker::FeatureGroup": CfnType(
        "FeatureGroup", "FeatureGroupName", "FeatureGroupName",
        updatable=frozenset({"FeatureDefinitions", "ThroughputConfig", "Tags"}),
        to_update=lambda p: {"FeatureGroupName": p["FeatureGroupName"],
                             **({"ThroughputConfig": p["ThroughputConfig"]} if "ThroughputConfig" in p else {})}),
    "AWS::SageMaker::Domain": CfnType(
        "Domain", "DomainName", "DomainId", key=lambda a: {"DomainId": _DOMAIN_KEY(a)},
        updatable=frozenset({"DefaultUserSettings", "DefaultSpaceSettings", "DomainSettings",
                             "AppNetworkAccessType", "AppSecurityGroupManagement", "SubnetIds", "TagPropagation",
                             "Tags"}),
        generate_name=False),
    "AWS::SageMaker::UserProfile": CfnType(
        "UserProfile", "UserProfileName", "UserProfileName",
        key=lambda a: {"DomainId": a["DomainId"], "UserProfileName": a["UserProfileName"]},
        updatable=frozenset({"UserSettings", "Tags"}), generate_name=False),
    "AWS::SageMaker::Space": CfnType(
        "Space", "SpaceName", "SpaceName", key=lambda a: {"DomainId": a["DomainId"], "SpaceName": a["SpaceName"]},
        updatable=frozenset({"SpaceSettings", "SpaceDisplayName", "Tags"}), generate_name=False),
    "AWS::SageMaker::App": CfnType(
        "App", "AppName", "AppName",
        key=lambda a: {k: a[k] for k in ("DomainId", "UserProfileName", "SpaceName", "AppType", "AppName")
                       if a.get(k) is not None},
        generate_name=False),
    "AWS::SageMaker::AppImageConfig": CfnType(
        "AppImageConfig", "AppImageConfigName", "AppImageConfigName",
        updatable=frozenset({"KernelGatewayImageConfig", "JupyterLabAppImageConfig", "CodeEditorAppImageConfig",
                             "Tags"})),
    "AWS::SageMaker::Project": CfnType(
        "Project", "ProjectName", "ProjectArn", updatable=frozenset({"Tags"}), generate_name=False),
    "AWS::SageMaker::Workteam": CfnType(
        "Workteam", "WorkteamName", "WorkteamName",
        updatable=frozenset({"Description", "MemberDefinitions", "NotificationConfiguration", "Tags"})),
    "AWS::SageMaker::Image": CfnType(
        "Image", "ImageName", "ImageArn",
        updatable=frozenset({"ImageDescription", "ImageDisplayName", "ImageRoleArn", "Tags"}), generate_name=False),
    "AWS::SageMaker::ImageVersion": CfnType(
        "ImageVersion", None, "ImageVersionArn",
        key=lambda a: {"ImageName": a["ImageVersionArn"].split("/")[-2],
                       "Version": int(a["ImageVersionArn"].split("/")[-1])},
        to_request=lambda p: {**p, "ClientToken": str(uuid.uuid4())}, generate_name=False),
    "AWS::SageMaker::ModelCard": CfnType(
        "ModelCard", "ModelCardName", "ModelCardArn",
        updatable=frozenset({"Content", "ModelCardStatus", "Tags"}), generate_name=False),
    "AWS::SageMaker::MonitoringSchedule": CfnType(
        "MonitoringSchedule", "MonitoringScheduleName", "MonitoringScheduleArn",
        updatable=frozenset({"MonitoringScheduleConfig", "Tags"}), generate_name=False),
    "AWS::SageMaker::DataQualityJobDefinition": CfnType(
        "DataQualityJobDefinition", "JobDefinitionName", "JobDefinitionArn"),
    "AWS::SageMaker::ModelQualityJobDefinition": CfnType(
        "ModelQualityJobDefinition", "JobDefinitionName", "JobDefinitionArn"),
    "AWS::SageMaker::ModelBiasJobDefinition": CfnType("ModelBiasJobDefinition", "JobDefinitionName",
                                                      "JobDefinitionArn"),
    "AWS::SageMaker::ModelExplainabilityJobDefinition": CfnType(
        "ModelExplainabilityJobDefinition", "JobDefinitionName", "JobDefinitionArn"),
    "AWS::SageMaker::InferenceComponent": CfnType(
        "InferenceComponent", "InferenceComponentName", "InferenceComponentArn",
        updatable=frozenset({"Specification", "RuntimeConfig", "Tags"})),
    "AWS::SageMaker::Cluster": CfnType(
        "Cluster", "ClusterName", "ClusterArn", key=lambda a: {"ClusterName": a["ClusterName"]},
        updatable=frozenset({"InstanceGroups", "Tags"}), generate_name=False),
}

# Statuses a resource passes through on its way to being usable or gone; the provider waits them out
# as CloudFormation's handlers do, and fails the resource on the `FAILED` ones.
TRANSITIONAL = frozenset({"Creating", "Pending", "Updating", "InProgress", "Deleting", "SystemUpdating",
                          "RollingBack", "Stopping", "Starting", "CreateInProgress", "UpdateInProgress",
                          "DeleteInProgress"})
FAILED = frozenset({"Failed", "CreateFailed", "UpdateFailed", "DeleteFailed", "Create_Failed"})
