"""Experiments: experiments, trials, trial components, and their associations.

A trial belongs to one experiment (relation `experiment/experiment-trial`); a trial component may
be associated with several trials (`experiment-trial/experiment-trial-component`). Metric series
(sagemaker-metrics BatchPutMetrics, a job's MetricDefinitions) live in the trial component's
document under `_Series` and are summarised into its `Metrics` on every write.
"""

from __future__ import annotations

import math
from typing import Any

from sagemaker_emulator.protocol.errors import ResourceNotFound, ValidationError
from sagemaker_emulator.protocol.json_protocol import RequestContext
from sagemaker_emulator.storage import resources
from sagemaker_emulator.storage.models import Resource

from . import common, lineage_groups

EXPERIMENT, TRIAL, COMPONENT = "experiment", "experiment-trial", "experiment-trial-component"
TRIALS = "experiment/experiment-trial"
COMPONENTS = "experiment-trial/experiment-trial-component"
NOUNS = {EXPERIMENT: "Experiment", TRIAL: "Trial", COMPONENT: "TrialComponent"}


def _missing(kind: str) -> Any:
    return lambda message: ResourceNotFound(message.replace("Could not find", f"{NOUNS[kind]} not found:", 1))


def _require(ctx: RequestContext, kind: str, name: str) -> Resource:
    return common.require(ctx, kind, name, NOUNS[kind].lower(), error=_missing(kind))


def _create(ctx: RequestContext, kind: str, name: str, document: dict[str, Any], tags: list | None) -> Resource:
    """SDK's Run load-or-create branches on a ValidationException saying "already exists"."""
    now = resources.now()
    document.update({f"{NOUNS[kind]}Arn": common.arn(ctx, kind, name), "CreationTime": now,
                     "LastModifiedTime": now, "CreatedBy": {}, "LastModifiedBy": {}})
    document.setdefault("DisplayName", name)  # AWS: "If DisplayName isn't specified, <Name> is displayed."
    return common.create(ctx, kind, name, document, NOUNS[kind].lower(), tags=tags, duplicate=lambda arn: (
        ValidationError(f"{NOUNS[kind]} '{name}' already exists (arn {arn}).")))


def _update(row: Resource, change: Any) -> Resource:
    def mutate(doc: dict) -> None:
        change(doc)
        doc["LastModifiedTime"] = resources.now()

    updated = resources.update(row.kind, row.region, row.name, mutate)
    if updated is None:
        raise _missing(row.kind)(f"Could not find {row.arn}")
    return updated


def _page(ctx: RequestContext, kind: str, params: dict[str, Any], key: str, summary: Any,
          ids: list[int] | None = None) -> dict[str, Any]:
    query = common.list_query({**params, "CreationTimeAfter": params.get("CreatedAfter"),
                               "CreationTimeBefore": params.get("CreatedBefore")})
    query.ids = ids
    return common.page_of(ctx, kind, query, key, summary)


def _pick(doc: dict[str, Any], *keys: str, **renamed: str) -> dict[str, Any]:
    out = {key: doc[key] for key in keys if key in doc}
    out.update({new: doc[old] for new, old in renamed.items() if old in doc})
    return out


# -- experiments -------------------------------------------------------------------------------------
def create_experiment(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    name = params["ExperimentName"]
    doc = _create(ctx, EXPERIMENT, name, {k: v for k, v in params.items() if k != "Tags"}, params.get("Tags"))
    return {"ExperimentArn": doc.arn}


def describe_experiment(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    return _require(ctx, EXPERIMENT, params["ExperimentName"]).document


def update_experiment(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    row = _require(ctx, EXPERIMENT, params["ExperimentName"])
    _update(row, lambda doc: doc.update({k: params[k] for k in ("DisplayName", "Description") if k in params}))
    return {"ExperimentArn": row.arn}


def list_experiments(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    return _page(ctx, EXPERIMENT, params, "ExperimentSummaries", lambda row: _pick(
        row.document, "ExperimentArn", "ExperimentName", "DisplayName", "CreationTime", "LastModifiedTime",
        ExperimentSource="Source"))


def _delete_empty(ctx: RequestContext, kind: str, name: str, relation: str, what: str) -> dict[str, Any]:
    """Delete an experiment or trial, refused while it still has `relation` children (AWS's order)."""
    row = _require(ctx, kind, name)
    if resources.children(row, relation):
        raise ValidationError(f"{NOUNS[kind]} {row.name} still has {what}; remove them first.")
    common.delete(ctx, row)
    return {f"{NOUNS[kind]}Arn": row.arn}


def delete_experiment(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    return _delete_empty(ctx, EXPERIMENT, params["ExperimentName"], TRIALS, "trials")


# -- trials ------------------------------------------------------------------------------------------
def create_trial(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    experiment = _require(ctx, EXPERIMENT, params["ExperimentName"])
    document = {k: v for k, v in params.items() if k != "Tags"}
    document["ExperimentName"] = experiment.name
    row = _create(ctx, TRIAL, params["TrialName"], document, params.get("Tags"))
    resources.relate(experiment, row, TRIALS)
    return {"TrialArn": row.arn}


def describe_trial(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    return _require(ctx, TRIAL, params["TrialName"]).document


def update_trial(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    row = _require(ctx, TRIAL, params["TrialName"])
    _update(row, lambda doc: doc.update({k: params[k] for k in ("DisplayName",) if k in params}))
    return {"TrialArn": row.arn}


def _trial_summary(row: Resource) -> dict[str, Any]:
    return _pick(row.document, "TrialArn", "TrialName", "DisplayName", "CreationTime", "LastModifiedTime",
                 TrialSource="Source")


def list_trials(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    ids = None
    if params.get("ExperimentName"):
        ids = [r.id for r in resources.children(_require(ctx, EXPERIMENT, params["ExperimentName"]), TRIALS)]
    if params.get("TrialComponentName"):
        component = _require(ctx, COMPONENT, params["TrialComponentName"])
        parents = {r.id for r in trials_of(component)}
        ids = [i for i in ids if i in parents] if ids is not None else list(parents)
    return _page(ctx, TRIAL, params, "TrialSummaries", _trial_summary, ids)


def delete_trial(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    return _delete_empty(ctx, TRIAL, params["TrialName"], COMPONENTS, "trial components (disassociate them)")


def trials_of(component: Resource) -> list[Resource]:
    """The trials a trial component is associated with."""
    from sagemaker_emulator.storage.models import Relation

    return list(Resource.select().join(Relation, on=(Relation.parent == Resource.id))
                .where((Relation.child == component) & (Relation.kind == COMPONENTS)))


# -- trial components --------------------------------------------------------------------------------
_COMPONENT_MEMBERS = ("DisplayName", "Status", "StartTime", "EndTime")


def create_trial_component(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    document = {k: v for k, v in params.items() if k != "Tags"}
    document.setdefault("Parameters", {})
    document.setdefault("InputArtifacts", {})
    document.setdefault("OutputArtifacts", {})
    document.setdefault("Metrics", [])
    row = _create(ctx, COMPONENT, params["TrialComponentName"], document, params.get("Tags"))
    lineage_groups.ensure(ctx)  # a trial component is a lineage entity too
    return {"TrialComponentArn": row.arn}


def describe_trial_component(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    doc = _require(ctx, COMPONENT, params["TrialComponentName"]).document
    doc["Sources"] = [doc["Source"]] if doc.get("Source") else []
    return doc


def update_trial_component(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    row = _require(ctx, COMPONENT, params["TrialComponentName"])
    for member in ("Parameters", "InputArtifacts", "OutputArtifacts"):
        clash = set(params.get(member) or {}) & set(params.get(f"{member}ToRemove") or [])
        if clash:
            raise ValidationError(f"{member} and {member}ToRemove both name {sorted(clash)}.")

    def change(doc: dict) -> None:
        doc.update({k: params[k] for k in _COMPONENT_MEMBERS if k in params})
        for member in ("Parameters", "InputArtifacts", "OutputArtifacts"):
            values = {**doc.get(member, {}), **(params.get(member) or {})}
            for key in params.get(f"{member}ToRemove") or []:
                values.pop(key, None)
            doc[member] = values

    _update(row, change)
    return {"TrialComponentArn": row.arn}


def _component_summary(row: Resource) -> dict[str, Any]:
    return _pick(row.document, "TrialComponentName", "TrialComponentArn", "DisplayName", "Status", "StartTime",
                 "EndTime", "CreationTime", "CreatedBy", "LastModifiedTime", "LastModifiedBy",
                 TrialComponentSource="Source")


def list_trial_components(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    ids: set[int] | None = None
    if params.get("TrialName"):
        ids = {r.id for r in resources.children(_require(ctx, TRIAL, params["TrialName"]), COMPONENTS)}
    if params.get("ExperimentName"):
        experiment = _require(ctx, EXPERIMENT, params["ExperimentName"])
        found = {c.id for t in resources.children(experiment, TRIALS) for c in resources.children(t, COMPONENTS)}
        ids = found if ids is None else ids & found
    if params.get("SourceArn"):
        wanted = params["SourceArn"].lower()
        found = {row.id for row in Resource.select().where((Resource.kind == COMPONENT)
                                                           & (Resource.region == ctx.region)
                                                           & Resource.data.contains(wanted))
                 if (row.document.get("Source") or {}).get("SourceArn", "").lower() == wanted}
        ids = found if ids is None else ids & found
    return _page(ctx, COMPONENT, params, "TrialComponentSummaries", _component_summary,
                 sorted(ids) if ids is not None else None)


def delete_trial_component(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    row = _require(ctx, COMPONENT, params["TrialComponentName"])
    if trials_of(row):
        raise ValidationError(f"TrialComponent {row.name} is associated with trials; disassociate it first.")
    common.delete(ctx, row)
    return {"TrialComponentArn": row.arn}


def associate_trial_component(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    component = _require(ctx, COMPONENT, params["TrialComponentName"])
    trial = _require(ctx, TRIAL, params["TrialName"])
    resources.relate(trial, component, COMPONENTS)
    return {"TrialComponentArn": component.arn, "TrialArn": trial.arn}


def disassociate_trial_component(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    component = _require(ctx, COMPONENT, params["TrialComponentName"])
    trial = _require(ctx, TRIAL, params["TrialName"])
    resources.unrelate(trial, component, COMPONENTS)
    return {"TrialComponentArn": component.arn, "TrialArn": trial.arn}


# -- metric series -----------------------------------------------------------------------------------
def record_metrics(row: Resource, points: list[dict[str, Any]], source_arn: str | None = None) -> None:
    """Append `points` ({MetricName, Value, Timestamp, Step?}) to the component's series and
    re-summarise them (Min, Max, Avg, StdDev, Last, Count), under one write lock."""
    def change(doc: dict) -> None:
        series = doc.setdefault("_Series", {})
        for point in points:
            series.setdefault(point["MetricName"], []).append(
                [float(point["Timestamp"]), point.get("Step"), float(point["Value"])])
        doc["Metrics"] = [summary(name, values, source_arn) for name, values in sorted(series.items())]

    _update(row, change)


def summary(name: str, values: list[list], source_arn: str | None) -> dict[str, Any]:
    numbers = [v for _, _, v in values]
    count = len(numbers)
    avg = sum(numbers) / count
    std = math.sqrt(sum((v - avg) ** 2 for v in numbers) / (count - 1)) if count > 1 else 0.0
    last = max(values, key=lambda p: (p[0], p[1] if p[1] is not None else -1))
    out = {"MetricName": name, "TimeStamp": last[0], "Max": max(numbers), "Min": min(numbers), "Last": last[2],
           "Count": count, "Avg": avg, "StdDev": std}
    if source_arn:
        out["SourceArn"] = source_arn
    return out


def series(row: Resource, name: str) -> list[list]:
    return list(row.document.get("_Series", {}).get(name, []))


# -- the trial component of a job with ExperimentConfig ------------------------------------------
JOB_SOURCES = {"training-job": ("TrainingJob", "SageMakerTrainingJob", "-aws-training-job"),
               "processing-job": ("ProcessingJob", "SageMakerProcessingJob", "-aws-processing-job"),
               "transform-job": ("TransformJob", "SageMakerTransformJob", "-aws-transform-job")}


def job_component_name(kind: str, job_name: str) -> str:
    return (job_name + JOB_SOURCES[kind][2]).lower()


def _parameter(value: str) -> dict[str, Any]:
    try:
        return {"NumberValue": float(value)}
    except (TypeError, ValueError):
        return {"StringValue": str(value)}


def job_component(ctx: RequestContext, kind: str, job: dict[str, Any]) -> Resource:
    """Create (or find) the job's trial component, Source = the job, associated with its trial:
    ExperimentConfig.TrialName, or a new trial of ExperimentConfig.ExperimentName named after it."""
    prefix, source_type, _ = JOB_SOURCES[kind]
    name = job_component_name(kind, job[f"{prefix}Name"])
    config = job.get("ExperimentConfig") or {}
    row = resources.get(COMPONENT, ctx.region, name)
    if row is None:
        parameters = {key: _parameter(value) for key, value in (job.get("HyperParameters") or {}).items()}
        inputs = {channel["ChannelName"]: {"Value": channel["DataSource"]["S3DataSource"]["S3Uri"]}
                  for channel in job.get("InputDataConfig") or [] if channel.get("DataSource", {}).get("S3DataSource")}
        document = {"TrialComponentName": name, "DisplayName": config.get("TrialComponentDisplayName") or name,
                    "Source": {"SourceArn": job[f"{prefix}Arn"], "SourceType": source_type},
                    "Status": {"PrimaryStatus": "InProgress"}, "StartTime": resources.now(),
                    "Parameters": parameters, "InputArtifacts": inputs, "OutputArtifacts": {}}
        if config.get("RunName"):
            document["RunName"] = config["RunName"]
        try:
            row = _create(ctx, COMPONENT, name, document, None)
        except ValidationError:  # created meanwhile
            row = _require(ctx, COMPONENT, name)
    trial_name = config.get("TrialName")
    if not trial_name and config.get("ExperimentName"):
        trial_name = name
        if resources.get(TRIAL, ctx.region, name) is None:
            create_trial(ctx, {"TrialName": name, "ExperimentName": config["ExperimentName"]})
    if trial_name:
        resources.relate(_require(ctx, TRIAL, trial_name), row, COMPONENTS)
    return row


def finish_job_component(ctx: RequestContext, kind: str, job: dict[str, Any]) -> None:
    """The job ended: its trial component takes the job's status, end time and model artifact."""
    prefix = JOB_SOURCES[kind][0]
    row = resources.get(COMPONENT, ctx.region, job_component_name(kind, job[f"{prefix}Name"]))
    if row is None:
        return

    def change(doc: dict) -> None:
        status = job.get(f"{prefix}Status")
        doc["Status"] = {"PrimaryStatus": status, **({"Message": job["FailureReason"]}
                                                     if job.get("FailureReason") else {})}
        doc["EndTime"] = resources.now()
        model = (job.get("ModelArtifacts") or {}).get("S3ModelArtifacts")
        if model:
            doc.setdefault("OutputArtifacts", {})["SageMaker.ModelArtifact"] = {"Value": model}

    _update(row, change)
