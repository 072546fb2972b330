"""SageMaker Pipelines: pipelines and their versions, executions, steps and callbacks.

A pipeline is one `pipeline` resource whose document keeps every version (`_versions`); an execution
is a `pipeline-execution` resource named `<pipeline>/<execution id>` (emulator/pipelines/state.py)
that the scheduler (`services.pipelines`) runs. The definition is validated here, at create/update.
"""

from __future__ import annotations

import json
import secrets
import string
from typing import Any

from sagemaker_emulator.pipelines import state
from sagemaker_emulator.pipelines.definition import DefinitionError, coerce, parse
from sagemaker_emulator.protocol.errors import ConflictError, ResourceNotFound, ValidationError
from sagemaker_emulator.protocol.json_protocol import RequestContext
from sagemaker_emulator.storage import resources
from sagemaker_emulator.storage.models import Resource

from . import common

KIND = state.PIPELINE
_PUBLIC_VERSION = ("PipelineVersionId", "CreationTime", "PipelineVersionDisplayName", "PipelineVersionDescription")


def _definition_text(ctx: RequestContext, params: dict[str, Any]) -> str:
    """The definition, inline or from PipelineDefinitionS3Location; validated (errors name the step and field)."""
    inline, location = params.get("PipelineDefinition"), params.get("PipelineDefinitionS3Location")
    if bool(inline) == bool(location):
        raise ValidationError("Exactly one of PipelineDefinition and PipelineDefinitionS3Location must be specified.")
    if location:
        from sagemaker_emulator.jobs.data import s3_client

        extra = {"VersionId": location["VersionId"]} if location.get("VersionId") else {}
        try:
            body = s3_client(ctx.services, ctx.region).get_object(Bucket=location["Bucket"],
                                                                   Key=location["ObjectKey"], **extra)["Body"].read()
        except Exception as exc:
            raise ValidationError(f"Could not read the pipeline definition from s3://{location['Bucket']}/"
                                  f"{location['ObjectKey']}: {exc}") from None
        inline = body.decode("utf-8", errors="replace")
    assert isinstance(inline, str)
    try:
        parse(inline)
    except DefinitionError as exc:
        raise ValidationError(f"Invalid pipeline definition: {exc}") from None
    return inline


def _pipeline(ctx: RequestContext, name_or_arn: str) -> Resource:
    return common.require(ctx, KIND, name_or_arn, "pipeline", ResourceNotFound)


def create_pipeline(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    name = params["PipelineName"]
    existing = common.find(ctx, KIND, name)
    if existing is not None:  # the SDK's upsert() looks for exactly this: ValidationException + "already exists"
        raise ValidationError(f"Pipeline names must be unique within an AWS account and region. Pipeline with "
                              f"name ({name}) already exists.")
    definition = _definition_text(ctx, params)
    created = resources.now()
    version = {"PipelineVersionId": 1, "CreationTime": created, "PipelineDefinition": definition}
    document = {
        "PipelineArn": common.arn(ctx, KIND, name), "PipelineName": name,
        "PipelineDisplayName": params.get("PipelineDisplayName") or name, "PipelineDefinition": definition,
        "PipelineDescription": params.get("PipelineDescription"), "RoleArn": params.get("RoleArn"),
        "PipelineStatus": "Active", "CreationTime": created, "LastModifiedTime": created,
        "ParallelismConfiguration": params.get("ParallelismConfiguration"), "_versions": [version],
    }
    row = common.create(ctx, KIND, name, {k: v for k, v in document.items() if v is not None}, "pipeline",
                        tags=params.get("Tags"), duplicate=lambda arn: ValidationError(
                            f"Pipeline names must be unique within an AWS account and region. Pipeline with name "
                            f"({name}) already exists."))
    return {"PipelineArn": row.arn}


def update_pipeline(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    row = _pipeline(ctx, params["PipelineName"])
    definition = None
    if params.get("PipelineDefinition") or params.get("PipelineDefinitionS3Location"):
        definition = _definition_text(ctx, params)

    def mutate(doc: dict[str, Any]) -> None:
        now = resources.now()
        for key in ("PipelineDisplayName", "PipelineDescription", "RoleArn", "ParallelismConfiguration"):
            if params.get(key) is not None:
                doc[key] = params[key]
        if definition is not None:
            doc["PipelineDefinition"] = definition
        version_id = doc["_versions"][-1]["PipelineVersionId"] + 1
        doc["_versions"].append({"PipelineVersionId": version_id, "CreationTime": now,
                                 "PipelineDefinition": doc["PipelineDefinition"]})
        doc["LastModifiedTime"] = now

    updated = resources.update(KIND, ctx.region, row.name, mutate)
    assert updated is not None
    return {"PipelineArn": updated.arn, "PipelineVersionId": updated.document["_versions"][-1]["PipelineVersionId"]}


def _version(row: Resource, version_id: int | None) -> dict[str, Any]:
    versions = row.document["_versions"]
    if version_id is None:
        return versions[-1]
    for version in versions:
        if version["PipelineVersionId"] == version_id:
            return version
    raise ResourceNotFound(f"Pipeline version {version_id} of pipeline '{row.name}' does not exist.")


def describe_pipeline(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    row = _pipeline(ctx, params["PipelineName"])
    doc = row.document
    version = _version(row, params.get("PipelineVersionId"))
    out = {key: value for key, value in doc.items() if not key.startswith("_")}
    out["PipelineDefinition"] = version["PipelineDefinition"]
    out.update({key: version[key] for key in ("PipelineVersionDisplayName", "PipelineVersionDescription")
                if version.get(key)})
    return out


def delete_pipeline(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    """AWS deletes a pipeline only when none of its executions is running."""
    row = _pipeline(ctx, params["PipelineName"])
    executions = state.executions_of(ctx.region, row.name)
    if any(e.status in state.ACTIVE for e in executions):
        raise ConflictError(f"Pipeline '{row.name}' has running executions; stop them before deleting it.")
    for execution in executions:
        resources.delete(execution)
    common.delete(ctx, row)
    return {"PipelineArn": row.arn}


def list_pipelines(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    query = common.list_query({**params, "CreationTimeAfter": params.get("CreatedAfter"),
                               "CreationTimeBefore": params.get("CreatedBefore"),
                               "SortBy": {"Name": "Name"}.get(params.get("SortBy") or "", "CreationTime")})
    query.name_prefix = params.get("PipelineNamePrefix")

    def item(row: Resource) -> dict[str, Any]:
        doc = row.document
        keys = ("PipelineArn", "PipelineName", "PipelineDisplayName", "PipelineDescription", "RoleArn",
                "CreationTime", "LastModifiedTime")
        out = {key: doc[key] for key in keys if doc.get(key) is not None}
        if doc.get("LastRunTime"):
            out["LastExecutionTime"] = doc["LastRunTime"]
        return out

    return common.page_of(ctx, KIND, query, "PipelineSummaries", item)


def list_pipeline_versions(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    row = _pipeline(ctx, params["PipelineName"])
    executions = state.executions_of(ctx.region, row.name)
    items = []
    for version in row.document["_versions"]:
        if params.get("CreatedAfter") and version["CreationTime"] <= params["CreatedAfter"]:
            continue
        if params.get("CreatedBefore") and version["CreationTime"] >= params["CreatedBefore"]:
            continue
        item = {"PipelineArn": row.arn, **{k: version[k] for k in _PUBLIC_VERSION if version.get(k) is not None}}
        last = next((e for e in executions if e.document.get("PipelineVersionId") == version["PipelineVersionId"]),
                    None)
        if last is not None:
            item["LastExecutionPipelineExecutionArn"] = last.document["PipelineExecutionArn"]
        items.append(item)
    items.sort(key=lambda v: v["PipelineVersionId"], reverse=(params.get("SortOrder") or "Descending") == "Descending")
    return common.offset_page(items, params, "PipelineVersionSummaries", default_limit=50)


def update_pipeline_version(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    row = _pipeline(ctx, params["PipelineArn"])
    _version(row, params["PipelineVersionId"])

    def mutate(doc: dict[str, Any]) -> None:
        for version in doc["_versions"]:
            if version["PipelineVersionId"] == params["PipelineVersionId"]:
                for key in ("PipelineVersionDisplayName", "PipelineVersionDescription"):
                    if params.get(key) is not None:
                        version[key] = params[key]
                version["LastModifiedTime"] = resources.now()

    resources.update(KIND, ctx.region, row.name, mutate)
    return {"PipelineArn": row.arn, "PipelineVersionId": params["PipelineVersionId"]}


# -- executions ---------------------------------------------------------------------------------------
def _execution(ctx: RequestContext, arn: str) -> Resource:
    row = resources.get_by_arn(arn)
    if row is None or row.kind != state.KIND:
        raise ResourceNotFound(f"Pipeline execution '{arn}' does not exist.")
    return row


def _parameters(definition_text: str, given: list[dict[str, str]]) -> tuple[dict[str, Any], list[dict[str, str]]]:
    """Every parameter's typed value (given, else its default) and the list ListPipelineParameters shows."""
    declared = parse(definition_text).parameters
    values: dict[str, Any] = {}
    for item in given:
        name = item["Name"]
        if name not in declared:
            raise ValidationError(f"Parameter '{name}' is not defined in the pipeline definition.")
        try:
            values[name] = coerce(declared[name], item["Value"])
        except ValueError as exc:
            raise ValidationError(f"Invalid value for parameter '{name}': {exc}") from None
    for name, spec in declared.items():
        if name not in values:
            if spec.get("DefaultValue") is None:
                raise ValidationError(f"Parameter '{name}' has no default value and was not given a value.")
            values[name] = coerce(spec, spec["DefaultValue"])
    listed = [{"Name": name, "Value": json.dumps(v) if isinstance(v, bool) else str(v)} for name, v in values.items()]
    return values, listed


def _selective(ctx: RequestContext, pipeline: Resource, config: dict[str, Any] | None,
               definition_text: str) -> tuple[list[str] | None, dict[str, dict[str, Any]]]:
    if not config:
        return None, {}
    steps = parse(definition_text).steps
    selected = [s["StepName"] for s in config["SelectedSteps"]]
    for name in selected:
        if name not in steps:
            raise ValidationError(f"Selected step '{name}' is not a step of the pipeline.")
    if not config.get("SourcePipelineExecutionArn"):  # nothing to reuse: only the selected steps run
        return selected, {}
    source = _execution(ctx, config["SourcePipelineExecutionArn"])
    doc = source.document
    if doc["PipelineArn"] != pipeline.arn:
        raise ValidationError("SourcePipelineExecutionArn must be an execution of the same pipeline.")
    if source.status in state.ACTIVE:
        raise ValidationError("SourcePipelineExecutionArn must be an execution that has finished.")
    return selected, state.initial_steps(doc, selected)


def _experiment_config(definition_text: str, pipeline: str, arn: str, execution_id: str) -> dict[str, str] | None:
    """The definition's PipelineExperimentConfig evaluated (absent: the pipeline's name and the execution id, as
    the SDK's default; null: none)."""
    raw = json.loads(definition_text)
    if "PipelineExperimentConfig" not in raw:
        return {"ExperimentName": pipeline, "TrialName": execution_id}
    config = raw["PipelineExperimentConfig"]
    if not isinstance(config, dict):
        return None
    names = {"Execution.PipelineName": pipeline, "Execution.PipelineExecutionId": execution_id,
             "Execution.PipelineExecutionArn": arn}
    out = {}
    for key in ("ExperimentName", "TrialName"):
        value = config.get(key)
        if isinstance(value, dict):
            value = names.get(str(value.get("Get")), execution_id)
        if isinstance(value, str) and value:
            out[key] = value
    return out or None


def start_pipeline_execution(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    pipeline = _pipeline(ctx, params["PipelineName"])
    token = params.get("ClientRequestToken")
    if token:
        for row in state.executions_of(ctx.region, pipeline.name):
            if row.document.get("_token") == token:
                return {"PipelineExecutionArn": row.document["PipelineExecutionArn"]}
    version = _version(pipeline, params.get("PipelineVersionId"))
    definition_text = version["PipelineDefinition"]
    values, listed = _parameters(definition_text, params.get("PipelineParameters") or [])
    selected, records = _selective(ctx, pipeline, params.get("SelectiveExecutionConfig"), definition_text)
    execution_id = "".join(secrets.choice(string.ascii_lowercase + string.digits) for _ in range(12))
    arn = f"{pipeline.arn}/execution/{execution_id}"
    created = resources.now()
    doc = pipeline.document
    document: dict[str, Any] = {
        "PipelineArn": pipeline.arn, "PipelineExecutionArn": arn,
        "PipelineExecutionDisplayName": (params.get("PipelineExecutionDisplayName")
                                         or f"execution-{int(created * 1000)}"),
        "PipelineExecutionStatus": "Executing", "CreationTime": created, "LastModifiedTime": created,
        "PipelineVersionId": version["PipelineVersionId"],
        "_pipeline": pipeline.name, "_definition": definition_text, "_parameters": values, "_param_list": listed,
        "_steps": records,
    }
    for key in ("PipelineExecutionDescription", "SelectiveExecutionConfig", "RoleArn"):
        if params.get(key):
            document[key] = params[key]
    parallelism = params.get("ParallelismConfiguration") or doc.get("ParallelismConfiguration")
    if parallelism:
        document["ParallelismConfiguration"] = parallelism
    experiment = _experiment_config(definition_text, pipeline.name, arn, execution_id)
    if experiment:
        document["PipelineExperimentConfig"] = experiment
    if token:
        document["_token"] = token
    if selected is not None:
        document["_selected"] = selected
    resources.create(state.KIND, ctx.region, state.row_name(pipeline.name, execution_id), arn, document,
                     status="Executing", created=created)
    resources.update(KIND, ctx.region, pipeline.name, lambda d: d.update(LastRunTime=created))
    ctx.services.pipelines.submit(ctx.region, state.row_name(pipeline.name, execution_id))
    return {"PipelineExecutionArn": arn}


def public(doc: dict[str, Any]) -> dict[str, Any]:
    """A stored document without its `_`-prefixed bookkeeping: what Describe (and Search) show."""
    return {key: value for key, value in doc.items() if not key.startswith("_")}


def describe_pipeline_execution(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    return public(_execution(ctx, params["PipelineExecutionArn"]).document)


def list_pipeline_executions(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    pipeline = _pipeline(ctx, params["PipelineName"])
    query = common.list_query({**params, "CreationTimeAfter": params.get("CreatedAfter"),
                               "CreationTimeBefore": params.get("CreatedBefore"), "SortBy": "CreationTime"})
    query.name_prefix = f"{pipeline.name}/"

    def item(row: Resource) -> dict[str, Any]:
        doc = row.document
        out = {"PipelineExecutionArn": doc["PipelineExecutionArn"], "StartTime": doc["CreationTime"],
               "PipelineExecutionStatus": doc["PipelineExecutionStatus"],
               "PipelineExecutionDisplayName": doc.get("PipelineExecutionDisplayName")}
        if doc.get("PipelineExecutionDescription"):
            out["PipelineExecutionDescription"] = doc["PipelineExecutionDescription"]
        if doc.get("FailureReason"):
            out["PipelineExecutionFailureReason"] = doc["FailureReason"]
        return out

    return common.page_of(ctx, state.KIND, query, "PipelineExecutionSummaries", item)


def stop_pipeline_execution(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    row = _execution(ctx, params["PipelineExecutionArn"])
    if row.status == "Stopping":
        return {"PipelineExecutionArn": row.document["PipelineExecutionArn"]}
    if row.status != "Executing":
        raise ConflictError(f"Pipeline execution '{row.document['PipelineExecutionArn']}' is in status "
                            f"{row.status}; only an Executing execution can be stopped.")
    ctx.services.pipelines.stop(row.region, row.name)
    return {"PipelineExecutionArn": row.document["PipelineExecutionArn"]}


def retry_pipeline_execution(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    """A failed execution runs again from its failed steps; the steps that succeeded keep their results."""
    row = _execution(ctx, params["PipelineExecutionArn"])
    if row.status != "Failed":
        raise ConflictError(f"Pipeline execution '{row.document['PipelineExecutionArn']}' is in status "
                            f"{row.status}; only a Failed execution can be retried.")

    def mutate(doc: dict[str, Any]) -> str:
        doc["_steps"] = {n: r for n, r in doc["_steps"].items() if r.get("StepStatus") not in ("Failed", "Stopped")}
        doc.pop("FailureReason", None)
        doc["PipelineExecutionStatus"] = "Executing"
        doc["LastModifiedTime"] = resources.now()
        if params.get("ParallelismConfiguration"):
            doc["ParallelismConfiguration"] = params["ParallelismConfiguration"]
        return "Executing"

    state.edit(row.region, row.name, mutate)
    ctx.services.pipelines.submit(row.region, row.name)
    return {"PipelineExecutionArn": row.document["PipelineExecutionArn"]}


def update_pipeline_execution(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    row = _execution(ctx, params["PipelineExecutionArn"])

    def mutate(doc: dict[str, Any]) -> None:
        for key in ("PipelineExecutionDescription", "PipelineExecutionDisplayName", "ParallelismConfiguration"):
            if params.get(key) is not None:
                doc[key] = params[key]
        doc["LastModifiedTime"] = resources.now()

    state.edit(row.region, row.name, mutate)
    if params.get("ParallelismConfiguration"):
        ctx.services.pipelines.submit(row.region, row.name)  # a higher limit may free slots
    return {"PipelineExecutionArn": row.document["PipelineExecutionArn"]}


def describe_pipeline_definition_for_execution(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    doc = _execution(ctx, params["PipelineExecutionArn"]).document
    return {"PipelineDefinition": doc["_definition"], "CreationTime": doc["CreationTime"]}


def list_pipeline_parameters_for_execution(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    doc = _execution(ctx, params["PipelineExecutionArn"]).document
    return common.offset_page(doc["_param_list"], params, "PipelineParameters", default_limit=50)


def list_pipeline_execution_steps(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    if not params.get("PipelineExecutionArn"):  # optional in the model, needed in fact
        raise ValidationError("PipelineExecutionArn is required.")
    doc = _execution(ctx, params["PipelineExecutionArn"]).document
    items = [state.public_step(record) for record in state.listed_steps(doc)]
    items.sort(key=lambda s: s.get("StartTime") or 0, reverse=(params.get("SortOrder") or "Descending") == "Descending")
    return common.offset_page(items, params, "PipelineExecutionSteps", default_limit=50)


def _send(ctx: RequestContext, params: dict[str, Any], success: bool) -> dict[str, Any]:
    arn = ctx.services.pipelines.callback(params["CallbackToken"], success, params.get("OutputParameters"),
                                          params.get("FailureReason"))
    if arn is None:
        raise ResourceNotFound(f"No pipeline step is waiting for the callback token {params['CallbackToken']}.")
    return {"PipelineExecutionArn": arn}


def send_pipeline_execution_step_success(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    return _send(ctx, params, True)


def send_pipeline_execution_step_failure(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    return _send(ctx, params, False)
