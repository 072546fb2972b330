"""The long-tail resources, declared once each (see spec.Spec for what each field means).

Resources whose AWS counterpart runs something (a notebook server, a HyperPod cluster, a compilation)
say so in `records_only`: here they are stored, validated and move through AWS's statuses to AWS's
end state, and nothing runs. The README's table is generated from these declarations.
"""

from __future__ import annotations

from typing import Any

from .spec import CREATED, CREATING, JOB, SERVICE, STATIC, Lifecycle, Model, Spec

STUDIO: Lifecycle = {"Create": ("Pending", "InService"), "Update": ("Updating", "InService"),
                     "Delete": ("Deleting", None)}
ACTIVE: Lifecycle = {"Create": ("Initializing", "Active"), "Update": ("Updating", "Active"),
                     "Delete": ("Deleting", None)}
IMAGE: Lifecycle = {"Create": ("Creating", "Created"), "Update": ("Updating", "Created"),
                    "Delete": ("Deleting", None)}


def _unless_given(doc: dict[str, Any], **values: Any) -> dict[str, Any]:
    """AWS's defaults for the members the request left out."""
    return {k: v for k, v in values.items() if doc.get(k) is None}


def _notebook(ctx: Any, doc: dict[str, Any]) -> dict[str, Any]:
    return _unless_given(doc, Url=f"{doc['NotebookInstanceName'].lower()}.notebook.{ctx.region}.sagemaker.aws",
                         DirectInternetAccess="Enabled", RootAccess="Enabled", VolumeSizeInGB=5,
                         PlatformIdentifier="notebook-al2-v2")


def _domain(ctx: Any, doc: dict[str, Any]) -> dict[str, Any]:
    return _unless_given(doc, Url=f"https://{doc['DomainId']}.studio.{ctx.region}.sagemaker.aws",
                         HomeEfsFileSystemId="fs-" + doc["DomainId"][2:], AppNetworkAccessType="PublicInternetOnly")


def _cluster(ctx: Any, doc: dict[str, Any]) -> dict[str, Any]:
    groups = [{**group, "CurrentCount": group.get("InstanceCount", 0), "TargetCount": group.get("InstanceCount", 0),
               "Status": "InService"} for group in doc.get("InstanceGroups", [])]
    return {"InstanceGroups": groups}


def _workteam(ctx: Any, doc: dict[str, Any]) -> dict[str, Any]:
    return {"SubDomain": f"{doc['WorkteamName'].lower()}.labeling.{ctx.region}.sagemaker.aws",
            "WorkforceArn": f"arn:aws:sagemaker:{ctx.region}:{ctx.account_id}:workforce/default"}


def _workforce(ctx: Any, doc: dict[str, Any]) -> dict[str, Any]:
    return {"SubDomain": f"{doc['WorkforceName'].lower()}.labeling.{ctx.region}.sagemaker.aws"}


def _compiled(ctx: Any, doc: dict[str, Any]) -> dict[str, Any]:
    output = doc.get("OutputConfig", {}).get("S3OutputLocation", "").rstrip("/")
    target = doc.get("OutputConfig", {}).get("TargetDevice") or "ml"
    platform = doc.get("OutputConfig", {}).get("TargetPlatform", {})
    summary = {"CompilationTargetDevice": doc.get("OutputConfig", {}).get("TargetDevice"),
               "CompilationTargetPlatformOs": platform.get("Os"), "CompilationTargetPlatformArch": platform.get("Arch"),
               "CompilationTargetPlatformAccelerator": platform.get("Accelerator")}
    artifacts = {"ModelArtifacts": {"S3ModelArtifacts": f"{output}/model-{target}.tar.gz"}} if output else {}
    return {**{k: v for k, v in summary.items() if v}, **artifacts}


def _monitoring(ctx: Any, doc: dict[str, Any]) -> dict[str, Any]:
    """The monitored endpoint (of the inline definition, or of the named one) and the type."""
    config = doc.get("MonitoringScheduleConfig", {})
    definition = config.get("MonitoringJobDefinition", {})
    inputs = definition.get("MonitoringInputs") or [{}]
    endpoint = inputs[0].get("EndpointInput", {}).get("EndpointName")
    named, kind = config.get("MonitoringJobDefinitionName"), config.get("MonitoringType") or "DataQuality"
    if named and ctx.services is not None:
        try:
            described = ctx.services.sagemaker.call(f"Describe{kind}JobDefinition", {"JobDefinitionName": named},
                                                    region=ctx.region)
            endpoint = (described.get(f"{kind}JobInput", {}).get("EndpointInput") or {}).get("EndpointName")
        except Exception:  # checked by CreateMonitoringSchedule's handler
            endpoint = None
    return {"MonitoringType": kind, **({"EndpointName": endpoint} if endpoint else {})}


def _hub_content(ctx: Any, doc: dict[str, Any]) -> dict[str, Any]:
    return {"HubArn": f"arn:aws:sagemaker:{ctx.region}:{ctx.account_id}:hub/{doc['HubName'].lower()}",
            "HubContentVersion": doc.get("HubContentVersion", "1.0.0")}


def _monitored_endpoint(ctx: Any, doc: dict[str, Any]) -> dict[str, Any]:
    """A job definition's endpoint (in its <Type>JobInput.EndpointInput): what List's EndpointName filters."""
    for value in doc.values():
        if isinstance(value, dict) and isinstance(value.get("EndpointInput"), dict):
            return {"EndpointName": value["EndpointInput"].get("EndpointName")}
    return {}


def copies(doc: dict[str, Any]) -> dict[str, Any]:
    """RuntimeConfig as Describe has it: the request's CopyCount is the desired and (nothing being
    placed here) the current count."""
    config = doc.get("RuntimeConfig") or {}
    if "CopyCount" not in config:
        return {}
    return {"RuntimeConfig": {"DesiredCopyCount": config["CopyCount"], "CurrentCopyCount": config["CopyCount"]}}


def _inference_component(ctx: Any, doc: dict[str, Any]) -> dict[str, Any]:
    """The endpoint (and a named model) must exist, as SageMaker checks at create."""
    from sagemaker_emulator.handlers import common

    endpoint = common.require(ctx, "endpoint", doc["EndpointName"], "endpoint")
    model = (doc.get("Specification") or {}).get("ModelName")
    if model:
        common.require(ctx, "model", model, "model")
    return {"EndpointArn": endpoint.arn, **copies(doc)}


def _automl_v2(ctx: Any, doc: dict[str, Any]) -> dict[str, Any]:
    """The problem type is the member set in the AutoMLProblemTypeConfig union (TextClassificationJobConfig...)."""
    config = next(iter(doc.get("AutoMLProblemTypeConfig") or {}), "")
    return {"AutoMLProblemTypeConfigName": config.removesuffix("JobConfig"), "AutoMLJobSecondaryStatus": "Completed"}


def _automl(ctx: Any, doc: dict[str, Any]) -> dict[str, Any]:
    return _unless_given(doc, AutoMLJobSecondaryStatus="Completed")


RUNS_NOTHING = "records only: nothing runs here"
SPECS: list[Spec] = [
    # -- Studio ------------------------------------------------------------------------------------
    Spec("Domain", "domain", STUDIO, generated={"DomainId": "d-"}, title="DomainName", defaults=_domain,
         records_only="records only: no Studio UI is served; the Url is AWS's form"),
    Spec("UserProfile", "user-profile", STUDIO, parents=("Domain",)),
    Spec("Space", "space", STUDIO, parents=("Domain",)),
    Spec("App", "app", {"Create": ("Pending", "InService"), "Delete": ("Deleting", None)},
         path=("DomainId", "UserProfileName|SpaceName", "AppType", "AppName"), parents=("Domain", "UserProfile|Space"),
         records_only="records only: no Jupyter or Code Editor container is started"),
    Spec("StudioLifecycleConfig", "studio-lifecycle-config", STATIC),
    Spec("AppImageConfig", "app-image-config", STATIC),
    Spec("Image", "image", IMAGE, cascade=True),
    Spec("ImageVersion", "image-version", {"Create": ("Creating", "Created"), "Delete": ("Deleting", None)},
         path=("ImageName", "Version"), counter="Version", parents=("Image",), alias="Alias"),
    Spec("Project", "project", {"Create": ("Pending", "CreateCompleted"),
                                "Update": ("UpdateInProgress", "UpdateCompleted"),
                                "Delete": ("DeleteInProgress", None)}, generated={"ProjectId": "p-"},
         records_only="records only: no Service Catalog product is provisioned"),
    # -- notebook instances ------------------------------------------------------------------------
    Spec("NotebookInstance", "notebook-instance", SERVICE, delete_when=("Stopped", "Failed"),
         renames={"LifecycleConfigName": "NotebookInstanceLifecycleConfigName"}, defaults=_notebook,
         records_only="records only: no Jupyter server is started; Describe shows AWS's states",
         not_found_message="RecordNotFound"),
    Spec("NotebookInstanceLifecycleConfig", "notebook-instance-lifecycle-config", STATIC),
    Spec("CodeRepository", "code-repository", STATIC),
    # -- governance --------------------------------------------------------------------------------
    Spec("ModelCard", "model-card", STATIC, version="ModelCardVersion", cascade=True),
    Spec("ModelCardExportJob", "model-card-export-job", {"Create": ("InProgress", "Completed")},
         path=("ModelCardName", "ModelCardExportJobName"), parents=("ModelCard",),
         arn="model-card/{ModelCardName}/export-job/{ModelCardExportJobName}",
         records_only="records only: no PDF is written to S3"),
    # -- HyperPod and compute ----------------------------------------------------------------------
    Spec("Cluster", "cluster", CREATING, defaults=_cluster, arn="cluster/{_id}",
         records_only="records only: no instances (nodes) run; instance groups show their target counts"),
    Spec("ClusterSchedulerConfig", "cluster-scheduler-config", CREATED, generated={"ClusterSchedulerConfigId": ""},
         title="Name"),
    Spec("ComputeQuota", "compute-quota", CREATED, generated={"ComputeQuotaId": ""}, title="Name"),
    Spec("TrainingPlan", "training-plan", {"Create": ("Pending", "Active")},
         records_only="records only: no capacity is reserved"),
    # -- jobs that only record ---------------------------------------------------------------------
    Spec("CompilationJob", "compilation-job", JOB, defaults=_compiled,
         records_only="records only: no model is compiled; ModelArtifacts names where AWS would write it"),
    Spec("EdgePackagingJob", "edge-packaging-job", JOB, records_only="records only: no package is built"),
    Spec("AutoMLJob", "automl-job", JOB, defaults=_automl, records_only="records only: no candidates are trained"),
    Spec("AutoMLJobV2", "automl-job", JOB, status_member="AutoMLJobStatus", defaults=_automl_v2,
         records_only="records only: no candidates are trained"),
    Spec("LabelingJob", "labeling-job", JOB, records_only="records only: no human or automated labelling runs"),
    Spec("InferenceRecommendationsJob", "inference-recommendations-job", JOB,
         records_only="records only: no load test runs; no recommendations"),
    Spec("OptimizationJob", "optimization-job", JOB, records_only="records only: no model is optimised"),
    Spec("Job", "job", JOB, records_only=RUNS_NOTHING),
    Spec("AIBenchmarkJob", "ai-benchmark-job", JOB, records_only=RUNS_NOTHING),
    Spec("AIRecommendationJob", "ai-recommendation-job", JOB, records_only=RUNS_NOTHING),
    Spec("AIWorkloadConfig", "ai-workload-config", STATIC),
    Spec("TrainingSession", "training-session", JOB, records_only=RUNS_NOTHING),
    # -- model monitoring --------------------------------------------------------------------------
    Spec("MonitoringSchedule", "monitoring-schedule",
         {"Create": ("Pending", "Scheduled"), "Update": ("Pending", "Scheduled"), "Stop": (None, "Stopped"),
          "Start": (None, "Scheduled"), "Delete": (None, None)}, defaults=_monitoring, on_update=_monitoring),
    Spec("DataQualityJobDefinition", "data-quality-job-definition", STATIC, defaults=_monitored_endpoint),
    Spec("ModelQualityJobDefinition", "model-quality-job-definition", STATIC, defaults=_monitored_endpoint),
    Spec("ModelBiasJobDefinition", "model-bias-job-definition", STATIC, defaults=_monitored_endpoint),
    Spec("ModelExplainabilityJobDefinition", "model-explainability-job-definition", STATIC,
         defaults=_monitored_endpoint),
    # -- hosting add-ons ---------------------------------------------------------------------------
    Spec("InferenceComponent", "inference-component", CREATING, defaults=_inference_component,
         on_update=lambda ctx, doc: copies(doc),
         records_only="records only: the component's model is not loaded into the endpoint"),
    Spec("InferenceExperiment", "inference-experiment",
         {"Create": ("Creating", "Created"), "Update": ("Updating", "Created"), "Start": ("Starting", "Running"),
          "Stop": ("Stopping", "Completed"), "Delete": (None, None)}, start_when=("Created",), stop_when=("Running",),
         records_only="records only: no shadow traffic is sent"),
    Spec("InferenceRouter", "inference-router", CREATING, records_only=RUNS_NOTHING),
    # -- algorithms, hubs, MLflow ------------------------------------------------------------------
    Spec("Algorithm", "algorithm", {"Create": ("InProgress", "Completed"), "Delete": ("Deleting", None)}),
    Spec("Hub", "hub", CREATING),
    Spec("HubContent", "hub-content", {"Create": ("Importing", "Available"), "Delete": ("Deleting", None)},
         path=("HubName", "HubContentType", "HubContentName"), parents=("Hub",), ops={"Create": "ImportHubContent"},
         defaults=_hub_content, arn="hub-content/{HubName}/{HubContentType}/{HubContentName}/{HubContentVersion}"),
    Spec("MlflowTrackingServer", "mlflow-tracking-server",
         {"Create": ("Creating", "Created"), "Update": ("Updating", "Updated"), "Stop": ("Stopping", "Stopped"),
          "Start": ("Starting", "Started"), "Delete": ("Deleting", None)},
         records_only="records only: no MLflow server runs"),
    Spec("MlflowApp", "mlflow-app", CREATED, path=("Name",), records_only="records only: no MLflow server runs"),
    Spec("PartnerApp", "partner-app", {"Create": ("Creating", "Available"), "Update": ("Updating", "Available"),
                                       "Delete": ("Deleting", None)}, path=("Name",), arn="partner-app/app-{_ID}",
         records_only=RUNS_NOTHING),
    # -- labelling workforces, human review --------------------------------------------------------
    Spec("Workteam", "workteam", STATIC, wrapped="Workteam", defaults=_workteam),
    Spec("Workforce", "workforce", ACTIVE, wrapped="Workforce", defaults=_workforce),
    Spec("HumanTaskUi", "human-task-ui", {"Create": (None, "Active"), "Delete": ("Deleting", None)}),
    Spec("FlowDefinition", "flow-definition", {"Create": ("Initializing", "Active"), "Delete": ("Deleting", None)},
         records_only="records only: no human review loops run"),
    # -- edge --------------------------------------------------------------------------------------
    Spec("DeviceFleet", "device-fleet", STATIC),
    Spec("Device", "device", STATIC, path=("DeviceFleetName", "DeviceName"), parents=("DeviceFleet",)),
    Spec("EdgeDeploymentPlan", "edge-deployment-plan", STATIC, records_only="records only: nothing is deployed"),
]

MODELS: dict[str, Model] = {spec.noun: Model(spec) for spec in SPECS}
