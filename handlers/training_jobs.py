"""Training jobs: Create/Describe/List/Stop/DeleteTrainingJob.

The handler stores the job and hands it to the training engine, which runs it in the background;
every later change of the job (statuses, times, artifacts) is the engine's.
"""

from __future__ import annotations

from typing import Any

from sagemaker_emulator.jobs.records import transition
from sagemaker_emulator.protocol.errors import ResourceInUse, ValidationError
from sagemaker_emulator.protocol.json_protocol import RequestContext
from sagemaker_emulator.storage import resources

from . import common

KIND = "training-job"
NOUN = "training job"
DEFAULT_MAX_RUNTIME = 86400


def _instance_count(config: dict[str, Any]) -> int:
    groups = config.get("InstanceGroups")
    if groups:
        return sum(group["InstanceCount"] for group in groups)
    return config.get("InstanceCount", 0)


def _check(params: dict[str, Any]) -> None:
    spec = params.get("AlgorithmSpecification")
    if not spec:
        raise ValidationError("AlgorithmSpecification is required.")
    if not spec.get("TrainingImage") and not spec.get("AlgorithmName"):
        raise ValidationError("AlgorithmSpecification must specify TrainingImage or AlgorithmName.")
    if not spec.get("TrainingImage"):
        raise ValidationError("AlgorithmName (marketplace algorithms) is not supported by sagemaker-emulator; "
                              "use AlgorithmSpecification.TrainingImage.")
    config = params.get("ResourceConfig")
    if not config:
        raise ValidationError("ResourceConfig is required.")
    if config.get("InstanceGroups"):
        if config.get("InstanceType") or config.get("InstanceCount"):
            raise ValidationError("ResourceConfig cannot specify InstanceType or InstanceCount together with "
                                  "InstanceGroups.")
        names = [g["InstanceGroupName"] for g in config["InstanceGroups"]]
        if len(set(names)) != len(names):
            raise ValidationError(f"InstanceGroupName values must be unique: {names}.")
    elif not config.get("InstanceType") or not config.get("InstanceCount"):
        raise ValidationError("ResourceConfig must specify InstanceType and InstanceCount, or InstanceGroups.")
    channels = [c["ChannelName"] for c in params.get("InputDataConfig") or []]
    for channel_name in channels:  # the pattern admits them, but they are directories of their own
        if channel_name in (".", ".."):
            raise ValidationError(f"Channel name '{channel_name}' is not allowed: it must name a directory under "
                                  "/opt/ml/input/data.")
    if len(set(channels)) != len(channels):
        raise ValidationError(f"Channel names must be unique: {channels}.")
    for channel in params.get("InputDataConfig") or []:
        source = channel["DataSource"]
        if not source.get("S3DataSource"):
            raise ValidationError(f"Channel '{channel['ChannelName']}': only S3DataSource (s3:// or file://) is "
                                  "supported by sagemaker-emulator.")
        mode = channel.get("InputMode") or spec["TrainingInputMode"]
        if source["S3DataSource"]["S3DataType"] == "AugmentedManifestFile" and mode != "Pipe":
            raise ValidationError(f"Channel '{channel['ChannelName']}': AugmentedManifestFile requires Pipe mode.")
        if mode == "FastFile" and source["S3DataSource"]["S3DataType"] != "S3Prefix":
            raise ValidationError(f"Channel '{channel['ChannelName']}': FastFile mode requires S3DataType S3Prefix.")


def create_training_job(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    _check(params)
    name = params["TrainingJobName"]
    created = resources.now()
    document = {key: value for key, value in params.items() if key != "Tags"}
    document.update(
        TrainingJobArn=common.arn(ctx, KIND, name),
        TrainingJobStatus="InProgress",
        CreationTime=created,
        ModelArtifacts={"S3ModelArtifacts": ""},
        EnableNetworkIsolation=params.get("EnableNetworkIsolation", False),
        EnableInterContainerTrafficEncryption=params.get("EnableInterContainerTrafficEncryption", False),
        EnableManagedSpotTraining=params.get("EnableManagedSpotTraining", False),
        StoppingCondition={"MaxRuntimeInSeconds": DEFAULT_MAX_RUNTIME, **(params.get("StoppingCondition") or {})},
        ProfilingStatus="Disabled",
    )
    if ctx.internal.get("TuningJobArn"):  # a tuning job's child (emulator/tuning): Describe shows its parent
        document["TuningJobArn"] = ctx.internal["TuningJobArn"]
    # AWS always answers KmsKeyId ("" when none); the SDK v2's Estimator.attach reads it unconditionally.
    document["OutputDataConfig"] = {"KmsKeyId": "", "CompressionType": "GZIP", **params["OutputDataConfig"]}
    document["ResourceConfig"] = {"VolumeSizeInGB": 30, **params["ResourceConfig"]}
    if "InstanceGroups" in document["ResourceConfig"]:
        document["ResourceConfig"].setdefault("InstanceCount", _instance_count(document["ResourceConfig"]))
    transition(document, "Starting", "Launching requested ML instances", created)
    arn = document["TrainingJobArn"]
    common.create(ctx, KIND, name, document, NOUN, status="InProgress", tags=params.get("Tags"),
                  duplicate=lambda arn: ResourceInUse(
                      "Training job names must be unique within an AWS account and region, and a training job "
                      f"with this name already exists ({arn})"))
    ctx.services.training.submit(ctx.region, name)
    return {"TrainingJobArn": arn}


def _missing(name: str) -> ValidationError:
    return ValidationError("Requested resource not found.")


def describe_training_job(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    return common.require_job(ctx, KIND, params["TrainingJobName"], _missing).document


def list_training_jobs(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    return common.list_page(ctx, KIND, params, "TrainingJobSummaries", lambda row: common.job_summary(
        row, "TrainingJob", ("TrainingEndTime", "SecondaryStatus")), status_after_limit=True,
        default_order="Ascending")


def stop_training_job(ctx: RequestContext, params: dict[str, Any]) -> None:
    common.stop_job(ctx, KIND, params["TrainingJobName"], "training job", ctx.services.training, _missing)


def delete_training_job(ctx: RequestContext, params: dict[str, Any]) -> None:
    common.delete_job(ctx, KIND, params["TrainingJobName"], "Training job")
