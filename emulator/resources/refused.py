"""SageMaker operations the emulator deliberately does not serve, each with the reason.

They answer `NotImplementedException` (HTTP 400, so botocore does not retry) whose message carries
the reason. tests/test_coverage.py checks that every operation of botocore's model is served or
listed here (or belongs to an area being built, `IN_PROGRESS`), and that nothing listed is served.
"""

from __future__ import annotations

import re

# Areas other work is building (issue 17): not refused for good, just not served on this branch yet.
IN_PROGRESS = re.compile(r"Pipeline|FeatureGroup|FeatureMetadata|LineageGroup")
IN_PROGRESS_REASON = "this area (Pipelines, Feature Store, lineage groups) is being built"


def _each(reason: str, operations: str) -> dict[str, str]:
    return {operation: reason for operation in operations.split()}


REFUSED: dict[str, str] = {
    **_each("HyperPod nodes do not exist here (clusters only record); there is no node to act on",
            "AttachClusterNodeNetworkInterface AttachClusterNodeVolume BatchAddClusterNodes BatchDeleteClusterNodes "
            "BatchRebootClusterNodes BatchReplaceClusterNodes DetachClusterNodeVolume MoveClusterNodes "
            "StartClusterHealthCheck UpdateClusterSoftware DescribeClusterEvent ListClusterEvents "
            "DescribeClusterOperation ListClusterOperations StartSession"),
    **_each("HyperPod cluster extensions install software on nodes, which do not exist here",
            "CreateClusterExtension DeleteClusterExtension DescribeClusterExtension ListClusterExtensions "
            "ListClusterExtensionVersions UpdateClusterExtension"),
    **_each("global inference gateways route between AWS regions; one machine has one",
            "CreateGlobalInferenceGateway DeleteGlobalInferenceGateway DescribeGlobalInferenceGateway "
            "ListGlobalInferenceGateways UpdateGlobalInferenceGateway AddInferenceGateway RemoveInferenceGateway "
            "ListInferenceGateways"),
    **_each("edge deployment stages deploy to physical devices through AWS IoT, which is not emulated",
            "CreateEdgeDeploymentStage DeleteEdgeDeploymentStage StartEdgeDeploymentStage StopEdgeDeploymentStage "
            "ListStageDevices GetDeviceFleetReport"),
    **_each("AWS Service Catalog portfolios are account settings of AWS's console, not SageMaker resources",
            "DisableSagemakerServicecatalogPortfolio EnableSagemakerServicecatalogPortfolio "
            "GetSagemakerServicecatalogPortfolioStatus"),
    **_each("training plans reserve AWS capacity; there are no offerings, reservations or extensions to show",
            "SearchTrainingPlanOfferings ExtendTrainingPlan DescribeTrainingPlanExtensionHistory "
            "DescribeReservedCapacity ListUltraServersByReservedCapacity"),
    **_each("these answer from AWS's own catalogues (JumpStart, Marketplace, job schemas), which are not shipped",
            "CreateHubContentPresignedUrls CreateHubContentReference DeleteHubContentReference "
            "UpdateHubContentReference ListHubContentVersions DescribeSubscribedWorkteam ListSubscribedWorkteams "
            "ListModelMetadata DescribeJobSchemaVersion ListJobSchemaVersions"),
    **_each("their answers are computed by AWS services that do not run here (AutoML candidates, Inference "
            "Recommender steps, autoscaling advice, the worker UI renderer)",
            "ListCandidatesForAutoMLJob ListInferenceRecommendationsJobSteps "
            "GetScalingConfigurationRecommendation RenderUiTemplate"),
    **_each("monitoring alerts are raised from the CloudWatch metrics of AWS's analyzer, which does not run here",
            "ListMonitoringAlerts ListMonitoringAlertHistory UpdateMonitoringAlert"),
    }


def reason(operation: str) -> str | None:
    """Why `operation` is not served (None when it is not refused)."""
    if operation in REFUSED:
        return REFUSED[operation]
    if IN_PROGRESS.search(operation):
        return IN_PROGRESS_REASON
    return None
