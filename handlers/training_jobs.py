"""Training jobs: Create/Describe/List/Update/Stop/DeleteTrainingJob.

The handler stores the job and hands it to the training engine, which runs it in the background;
every later change of the job (statuses, times, artifacts) is the engine's.
"""

from __future__ import annotations

import copy
from typing import Any

from sagemaker_emulator.jobs import warm_pool
from sagemaker_emulator.jobs.records import transition
from sagemaker_emulator.protocol.errors import ResourceInUse, ResourceNotFound, ValidationError
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
    previous = warm_pool.claim(ctx.region, name, document)
    if previous is not None:  # before the engine starts: nothing else writes the new job yet
        resources.update(KIND, ctx.region, name, lambda doc: doc.update({warm_pool.STATE: {"InUseFrom": previous}}))
    ctx.services.training.submit(ctx.region, name)
    return {"TrainingJobArn": arn}


def _missing(name: str) -> ValidationError:
    return ValidationError("Requested resource not found.")


def _with_warm_pool(doc: dict[str, Any]) -> dict[str, Any]:
    pool = warm_pool.status(doc)
    if pool is not None:
        doc["WarmPoolStatus"] = pool
    return doc


def describe_training_job(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    return _with_warm_pool(common.require_job(ctx, KIND, params["TrainingJobName"], _missing).document)


def _summary(row: Any) -> dict[str, Any]:
    out = common.job_summary(row, "TrainingJob", ("TrainingEndTime", "SecondaryStatus"))
    pool = warm_pool.status(row.document)
    if pool is not None:
        out["WarmPoolStatus"] = pool
    return out


def list_training_jobs(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    wanted = params.get("WarmPoolStatusEquals")
    if wanted is None:
        return common.list_page(ctx, KIND, params, "TrainingJobSummaries", _summary, status_after_limit=True,
                                default_order="Ascending")
    # a warm pool's status is computed, not stored: every job the other filters keep, then this one
    inner = {k: v for k, v in params.items() if k not in ("WarmPoolStatusEquals", "NextToken", "MaxResults")}
    found: list[dict[str, Any]] = []
    while True:
        page = common.list_page(ctx, KIND, {**inner, "MaxResults": 100}, "TrainingJobSummaries", _summary,
                                status_after_limit=True, default_order="Ascending")
        found += [s for s in page["TrainingJobSummaries"] if s.get("WarmPoolStatus", {}).get("Status") == wanted]
        if "NextToken" not in page:
            return common.offset_page(found, params, "TrainingJobSummaries", default_limit=10)
        inner["NextToken"] = page["NextToken"]


_RUNNING_ONLY = ("ProfilerConfig", "ProfilerRuleConfigurations", "RemoteDebugConfig")


def _apply_update(doc: dict[str, Any], params: dict[str, Any]) -> str | None:
    """UpdateTrainingJob's changes on `doc`; the reason they cannot be made, or None."""
    running = doc["TrainingJobStatus"] == "InProgress"
    asked = [member for member in _RUNNING_ONLY if member in params]
    if asked and not running:
        return (f"Training job {doc['TrainingJobName']} is {doc['TrainingJobStatus']}: {', '.join(asked)} can be "
                "updated only while it is InProgress.")
    if "ResourceConfig" in params:
        reason = warm_pool.update_keep_alive(doc, params["ResourceConfig"].get("KeepAlivePeriodInSeconds", 0))
        if reason is not None:
            return reason
    if "ProfilerConfig" in params:
        update = dict(params["ProfilerConfig"])
        disable = update.pop("DisableProfiler", False)
        doc["ProfilerConfig"] = {**(doc.get("ProfilerConfig") or {}), **update, "DisableProfiler": disable}
        doc["ProfilingStatus"] = "Disabled" if disable else "Enabled"
    if "ProfilerRuleConfigurations" in params:
        rules = {r["RuleConfigurationName"]: r for r in doc.get("ProfilerRuleConfigurations") or []}
        rules.update({r["RuleConfigurationName"]: r for r in params["ProfilerRuleConfigurations"]})
        doc["ProfilerRuleConfigurations"] = list(rules.values())
    if "RemoteDebugConfig" in params:
        doc["RemoteDebugConfig"] = {**(doc.get("RemoteDebugConfig") or {}), **params["RemoteDebugConfig"]}
    doc["LastModifiedTime"] = resources.now()
    return None


def update_training_job(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    """A running job's profiler, rule and remote-debug settings, or its warm pool's retention; all or nothing."""
    if not any(member in params for member in (*_RUNNING_ONLY, "ResourceConfig")):
        raise ValidationError("UpdateTrainingJob needs ProfilerConfig, ProfilerRuleConfigurations, ResourceConfig "
                              "or RemoteDebugConfig.")
    problem: list[str] = []

    def mutate(doc: dict[str, Any]) -> str:
        changed = copy.deepcopy(doc)
        reason = _apply_update(changed, params)
        if reason is not None:
            problem.append(reason)
        else:
            doc.clear()
            doc.update(changed)
        return doc["TrainingJobStatus"]

    row = resources.update(KIND, ctx.region, params["TrainingJobName"], mutate)
    if row is None:  # UpdateTrainingJob declares ResourceNotFound
        raise ResourceNotFound("Requested resource not found.")
    if problem:
        raise ValidationError(problem[0])
    return {"TrainingJobArn": row.arn}


def stop_training_job(ctx: RequestContext, params: dict[str, Any]) -> None:
    common.stop_job(ctx, KIND, params["TrainingJobName"], "training job", ctx.services.training, _missing)


def delete_training_job(ctx: RequestContext, params: dict[str, Any]) -> None:
    common.delete_job(ctx, KIND, params["TrainingJobName"], "Training job")
