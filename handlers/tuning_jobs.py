"""Hyperparameter tuning jobs: Create/Describe/List/Stop/Delete and ListTrainingJobsForHyperParameterTuningJob.

The handler checks the request as AWS does and stores it; emulator/tuning/engine.py runs the
training jobs. Describe's counters and best job are the engine's (recomputed from the children).
"""

from __future__ import annotations

from typing import Any

from sagemaker_emulator.jobs.records import TERMINAL
from sagemaker_emulator.protocol.errors import ResourceInUse, ResourceLimitExceeded, ResourceNotFound, ValidationError
from sagemaker_emulator.protocol.json_protocol import RequestContext
from sagemaker_emulator.runtime import framework_images
from sagemaker_emulator.storage import resources
from sagemaker_emulator.tuning import summary
from sagemaker_emulator.tuning.engine import HYPERBAND_EPOCH_KEYS, KIND, RELATION, max_jobs, resource_config_of
from sagemaker_emulator.tuning.space import SpaceError, grid_points, parse

from . import common

NOUN = "hyper-parameter tuning job"
MAX_HYPERBAND_RESOURCE = 20000
MAX_TRAINING_JOBS = 500  # the default account quota per tuning job


def _check_definition(config: dict[str, Any], definition: dict[str, Any], many: bool) -> None:
    where = f"TrainingJobDefinition '{definition.get('DefinitionName')}'" if many else "TrainingJobDefinition"
    spec = definition["AlgorithmSpecification"]
    if not spec.get("TrainingImage"):
        raise ValidationError(f"{where}: AlgorithmSpecification.TrainingImage is required (AlgorithmName is not "
                              "supported by sagemaker-emulator).")
    if bool(definition.get("ResourceConfig")) == bool(definition.get("HyperParameterTuningResourceConfig")):
        raise ValidationError(f"{where}: specify exactly one of ResourceConfig and HyperParameterTuningResourceConfig.")
    goal = definition.get("TuningObjective") or config.get("HyperParameterTuningJobObjective")
    if not goal:
        raise ValidationError(f"{where}: a TuningObjective is required (in the definition or the tuning job config).")
    names = [m["Name"] for m in spec.get("MetricDefinitions") or []]
    # a built-in algorithm (XGBoost without an entry point) brings its own metrics: `validation:rmse` & co.
    implied = [m["Name"] for m in framework_images.implied_metric_definitions(
        spec["TrainingImage"], definition.get("StaticHyperParameters") or {})]
    if goal["MetricName"] not in names + implied:
        known = " or ".join(([f"MetricDefinitions {names}"] if names or not implied else []) +
                            ([f"the algorithm's metrics {implied}"] if implied else []))
        raise ValidationError(f"{where}: the objective metric '{goal['MetricName']}' must be one of {known}.")
    ranges = definition.get("HyperParameterRanges") or config.get("ParameterRanges")
    if many and not definition.get("HyperParameterRanges"):
        raise ValidationError(f"{where}: HyperParameterRanges is required with TrainingJobDefinitions.")
    try:
        space = parse(ranges, definition.get("StaticHyperParameters"))
    except SpaceError as exc:
        raise ValidationError(f"{where}: {exc}") from None
    static = definition.get("StaticHyperParameters") or {}
    if len(static) + len(space) > 100:
        raise ValidationError(f"{where}: at most 100 static and tunable hyperparameters are allowed.")
    strategy = config["Strategy"]
    if strategy == "Grid":
        try:
            grid_points(space)
        except SpaceError as exc:
            raise ValidationError(str(exc)) from None
    if strategy == "Hyperband":
        hb = (config.get("StrategyConfig") or {}).get("HyperbandStrategyConfig") or {}
        if hb.get("MaxResource") is None and not any(k in static for k in HYPERBAND_EPOCH_KEYS):
            raise ValidationError("Hyperband requires HyperbandStrategyConfig.MaxResource, or a static "
                                  f"hyperparameter among {list(HYPERBAND_EPOCH_KEYS)} to infer it from.")
        low, high = hb.get("MinResource") or 1, hb.get("MaxResource") or MAX_HYPERBAND_RESOURCE
        if high > MAX_HYPERBAND_RESOURCE or low > high:
            raise ValidationError(f"Hyperband requires MinResource <= MaxResource <= {MAX_HYPERBAND_RESOURCE}.")


def _check(params: dict[str, Any]) -> None:
    config = params["HyperParameterTuningJobConfig"]
    single, many = params.get("TrainingJobDefinition"), params.get("TrainingJobDefinitions")
    if bool(single) == bool(many):
        raise ValidationError("Specify exactly one of TrainingJobDefinition and TrainingJobDefinitions.")
    definitions: list[dict[str, Any]] = many or [single]
    if many:
        names = [d.get("DefinitionName") for d in many]
        if None in names or len(set(names)) != len(names):
            raise ValidationError("Each of TrainingJobDefinitions needs a unique DefinitionName.")
    elif not config.get("HyperParameterTuningJobObjective") and not definitions[0].get("TuningObjective"):
        raise ValidationError("HyperParameterTuningJobConfig.HyperParameterTuningJobObjective is required.")
    strategy = config["Strategy"]
    limits = config["ResourceLimits"]
    if strategy != "Grid" and limits.get("MaxNumberOfTrainingJobs") is None:
        raise ValidationError(f"ResourceLimits.MaxNumberOfTrainingJobs is required for the {strategy} strategy.")
    if (limits.get("MaxNumberOfTrainingJobs") or 0) > MAX_TRAINING_JOBS:
        raise ResourceLimitExceeded(f"MaxNumberOfTrainingJobs may not exceed {MAX_TRAINING_JOBS}.")
    if strategy == "Hyperband" and config.get("TrainingJobEarlyStoppingType", "Off") != "Off":
        raise ValidationError("TrainingJobEarlyStoppingType must be Off with the Hyperband strategy.")
    if config.get("StrategyConfig", {}).get("HyperbandStrategyConfig") and strategy != "Hyperband":
        raise ValidationError("HyperbandStrategyConfig is only valid with the Hyperband strategy.")
    if params.get("Autotune"):
        raise ValidationError("Autotune is not supported by sagemaker-emulator.")
    for definition in definitions:
        _check_definition(config, definition, bool(many))


def _check_warm_start(ctx: RequestContext, params: dict[str, Any]) -> None:
    """1-5 parents (the shape's bounds), each an existing, finished tuning job with the same objective."""
    warm = params.get("WarmStartConfig")
    if not warm:
        return
    goal = params["HyperParameterTuningJobConfig"].get("HyperParameterTuningJobObjective")
    for parent in warm["ParentHyperParameterTuningJobs"]:
        name = parent["HyperParameterTuningJobName"]
        row = common.find(ctx, KIND, name)
        if row is None:
            raise ValidationError(f"Parent hyperparameter tuning job {name} does not exist.")
        if row.status not in TERMINAL:
            raise ValidationError(f"Parent hyperparameter tuning job {name} is in status {row.status}; it must be "
                                  "Completed, Failed or Stopped.")
        parent_goal = row.document["HyperParameterTuningJobConfig"].get("HyperParameterTuningJobObjective")
        if goal and parent_goal and parent_goal != goal:
            raise ValidationError(f"Parent hyperparameter tuning job {name} has a different tuning objective.")


def create_hyper_parameter_tuning_job(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    _check(params)
    _check_warm_start(ctx, params)
    name = params["HyperParameterTuningJobName"]
    created = resources.now()
    document = {key: value for key, value in params.items() if key != "Tags"}
    objective = params["HyperParameterTuningJobConfig"].get("HyperParameterTuningJobObjective")
    for definition in summary.definitions(document):
        goal = definition.get("TuningObjective") or objective
        # AWS echoes the objective inside the static hyperparameters (the SDK's attach() removes it)
        definition["StaticHyperParameters"] = {**(definition.get("StaticHyperParameters") or {}),
                                               "_tuning_objective_metric": goal["MetricName"]}
        # the SDK v2 sends HyperParameterTuningResourceConfig and its attach() reads ResourceConfig back
        definition.setdefault("ResourceConfig", resource_config_of(definition))
    document.update(
        HyperParameterTuningJobArn=common.arn(ctx, KIND, name),
        HyperParameterTuningJobStatus="InProgress",
        CreationTime=created,
        TrainingJobStatusCounters={"Completed": 0, "InProgress": 0, "RetryableError": 0, "NonRetryableError": 0,
                                   "Stopped": 0},
        ObjectiveStatusCounters={"Succeeded": 0, "Pending": 0, "Failed": 0},
    )
    if max_jobs(document) > MAX_TRAINING_JOBS:
        raise ResourceLimitExceeded(f"The grid has {max_jobs(document)} points; at most {MAX_TRAINING_JOBS} "
                                    "training jobs are allowed per tuning job.")
    row = common.create(ctx, KIND, name, document, NOUN, status="InProgress", tags=params.get("Tags"),
                        duplicate=lambda arn: ResourceInUse(f"Hyperparameter tuning job {arn} already exists."))
    ctx.services.tuning.submit(ctx.region, name)
    return {"HyperParameterTuningJobArn": row.arn}


def _require(ctx: RequestContext, name: str) -> Any:
    row = common.find(ctx, KIND, name)
    if row is None:
        raise ResourceNotFound(f"Amazon SageMaker can't find a tuning job with name {name}")
    return row


def describe_hyper_parameter_tuning_job(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    row = _require(ctx, params["HyperParameterTuningJobName"])
    doc = row.document
    doc["LastModifiedTime"] = row.last_modified_time
    return doc


def list_hyper_parameter_tuning_jobs(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    def item(row: Any) -> dict[str, Any]:
        doc = row.document
        out = common.job_summary(row, "HyperParameterTuningJob", ("HyperParameterTuningEndTime",
                                                                  "TrainingJobStatusCounters",
                                                                  "ObjectiveStatusCounters"))
        config = doc["HyperParameterTuningJobConfig"]
        out["Strategy"] = config["Strategy"]
        out["ResourceLimits"] = config["ResourceLimits"]
        return out

    # AWS's defaults here: Name, Ascending, 10 per page
    return common.list_page(ctx, KIND, {"MaxResults": 10, **params}, "HyperParameterTuningJobSummaries", item,
                            default_sort="Name", default_order="Ascending")


def stop_hyper_parameter_tuning_job(ctx: RequestContext, params: dict[str, Any]) -> None:
    row = _require(ctx, params["HyperParameterTuningJobName"])
    if row.status != "InProgress":
        raise ValidationError(f"The request was rejected because the tuning job is in status {row.status}.")
    ctx.services.tuning.stop(ctx.region, row.name)


def delete_hyper_parameter_tuning_job(ctx: RequestContext, params: dict[str, Any]) -> None:
    """botocore's model declares no error for this operation: AWS answers ValidationException."""
    name = params["HyperParameterTuningJobName"]
    row = common.find(ctx, KIND, name)
    if row is None:
        raise ValidationError(f"Amazon SageMaker can't find a tuning job with name {name}")
    if row.status not in TERMINAL:
        raise ValidationError(f"Tuning job {row.name} is in status {row.status}; only Completed, Failed or Stopped "
                              "tuning jobs can be deleted.")
    common.delete(ctx, row)


_SORTS = {"Name": lambda s: s["TrainingJobName"], "CreationTime": lambda s: s["CreationTime"],
          "Status": lambda s: s["TrainingJobStatus"],
          "FinalObjectiveMetricValue": lambda s: s["FinalHyperParameterTuningJobObjectiveMetric"]["Value"]}


def list_training_jobs_for_hyper_parameter_tuning_job(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    """All children filtered and sorted in memory (a tuning job has at most 500), then paged by offset."""
    row = _require(ctx, params["HyperParameterTuningJobName"])
    doc = row.document
    items = [summary.job_summary(doc, row.name, child) for child in resources.children(row, RELATION)]
    if params.get("StatusEquals"):
        items = [s for s in items if s["TrainingJobStatus"] == params["StatusEquals"]]
    sort_by = params.get("SortBy") or "Name"
    if sort_by == "FinalObjectiveMetricValue":
        items = [s for s in items if "FinalHyperParameterTuningJobObjectiveMetric" in s]
    items.sort(key=_SORTS[sort_by], reverse=(params.get("SortOrder") or "Ascending") == "Descending")
    return common.offset_page(items, params, "TrainingJobSummaries", default_limit=10)
