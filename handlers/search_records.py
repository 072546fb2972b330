"""Search records of the kinds whose record is not just the stored document: built from rows in bulk.

A pipeline execution's status lives in its row (Stopping is written there only) and its parameters in
bookkeeping; a pipeline's versions are one record each; a declared resource (Project, ModelCard) may
have a status transition due; a Model's record is AWS's model-dashboard view: the model with the
endpoints that serve it, its last batch transform, their monitoring schedules and its model card.
Each builder takes the rows of one kind (one query's worth) and returns (row, record) pairs;
handlers/search.py filters, sorts and completes them like any other document.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

from sagemaker_emulator.pipelines import state
from sagemaker_emulator.protocol.json_protocol import RequestContext
from sagemaker_emulator.resources import engine
from sagemaker_emulator.resources.catalog import MODELS
from sagemaker_emulator.storage import resources
from sagemaker_emulator.storage.models import Resource

from . import endpoint_configs, endpoints, transform_jobs
from .pipelines import public

Pairs = list[tuple[Resource, dict[str, Any]]]


def _of_kind(kind: str, regions: Iterable[str]) -> Any:
    return Resource.select().where((Resource.kind == kind) & Resource.region.in_(sorted(set(regions))))


# -- pipelines ---------------------------------------------------------------------------------------
def pipeline_records(rows: list[Resource]) -> Pairs:
    """DescribePipeline's members without the definition (botocore's `Pipeline` shape has none)."""
    return [(row, {k: v for k, v in public(row.document).items() if k != "PipelineDefinition"}) for row in rows]


def _versions_by_pipeline(rows: list[Resource]) -> dict[tuple[str, str], dict[int, dict[str, Any]]]:
    names = {row.document.get("_pipeline") for row in rows}
    pipelines = _of_kind(state.PIPELINE, (row.region for row in rows)).where(Resource.name.in_(sorted(names)))
    return {(p.region, p.name): {v["PipelineVersionId"]: v for v in p.document["_versions"]} for p in pipelines}


def execution_records(rows: list[Resource]) -> Pairs:
    """DescribePipelineExecution's members with the row's status, the execution's parameters (as
    ListPipelineParametersForExecution shows them) and the display name of the version it runs."""
    versions = _versions_by_pipeline(rows) if rows else {}
    out = []
    for row in rows:
        doc = row.document
        record = public(doc)
        record["PipelineExecutionStatus"] = row.status or doc.get("PipelineExecutionStatus")
        record["PipelineParameters"] = doc.get("_param_list", [])
        version = versions.get((row.region, doc.get("_pipeline", "")), {}).get(doc.get("PipelineVersionId", 0), {})
        if version.get("PipelineVersionDisplayName"):
            record["PipelineVersionDisplayName"] = version["PipelineVersionDisplayName"]
        out.append((row, record))
    return out


def version_records(rows: list[Resource]) -> Pairs:
    """One record per version of each pipeline, with the newest execution that ran that version."""
    last: dict[tuple[str, str, int], Resource] = {}
    if rows:
        executions = _of_kind(state.KIND, (row.region for row in rows)).order_by(Resource.creation_time.desc(),
                                                                                 Resource.id.desc())
        for execution in executions:
            doc = execution.document
            last.setdefault((execution.region, doc.get("_pipeline", ""), doc.get("PipelineVersionId", 0)), execution)
    out = []
    for row in rows:
        for version in row.document["_versions"]:
            record = {"PipelineArn": row.arn, "PipelineVersionId": version["PipelineVersionId"],
                      "CreationTime": version["CreationTime"],
                      "LastModifiedTime": version.get("LastModifiedTime", version["CreationTime"])}
            record.update({k: version[k] for k in ("PipelineVersionDisplayName", "PipelineVersionDescription")
                           if version.get(k)})
            execution = last.get((row.region, row.name, version["PipelineVersionId"]))
            if execution is not None:
                record.update(LastExecutedPipelineExecutionArn=execution.arn,
                              LastExecutedPipelineExecutionDisplayName=execution.document.get(
                                  "PipelineExecutionDisplayName"),
                              LastExecutedPipelineExecutionStatus=execution.status)
            out.append((row, record))
    return out


# -- declared resources ------------------------------------------------------------------------------
def settled(noun: str) -> Callable[[RequestContext], None]:
    """Apply the due status transitions of a declared resource's rows before a search reads them
    (the SQL prefilter reads the stored status)."""
    model = MODELS[noun]

    def settle(ctx: RequestContext) -> None:
        pending = _of_kind(model.spec.kind, [ctx.region]).where(Resource.data.contains(engine.NEXT))
        for row in pending:
            engine.settle(model, row)

    return settle


def declared_records(rows: list[Resource]) -> Pairs:
    """A declared resource's record is its Describe document (its latest version)."""
    return [(row, public(row.document)) for row in rows]


def _content(doc: dict[str, Any]) -> dict[str, Any]:
    try:
        content = json.loads(doc.get("Content") or "{}")
    except ValueError:
        return {}
    return content if isinstance(content, dict) else {}


def _section(content: dict[str, Any], name: str) -> dict[str, Any]:
    value = content.get(name)
    return value if isinstance(value, dict) else {}


def model_card_records(rows: list[Resource]) -> Pairs:
    """DescribeModelCard's members plus the three the `ModelCard` search shape adds, read from the
    card's content as the SDK writes it: `model_overview.model_id` (the model's ARN),
    `intended_uses.risk_rating`, `model_package_details.model_package_group_name`."""
    out = []
    for row, record in declared_records(rows):
        content = _content(record)
        found = {"ModelId": _section(content, "model_overview").get("model_id"),
                 "RiskRating": _section(content, "intended_uses").get("risk_rating"),
                 "ModelPackageGroupName": _section(content, "model_package_details").get("model_package_group_name")}
        record.update({k: v for k, v in found.items() if isinstance(v, str) and v})
        out.append((row, record))
    return out


# -- models: the model dashboard ---------------------------------------------------------------------
def _endpoints_by_model(region: str) -> dict[str, list[Resource]]:
    configs: dict[str, set[str]] = {}
    for config in _of_kind(endpoint_configs.KIND, [region]):
        doc = config.document
        variants = (doc.get("ProductionVariants") or []) + (doc.get("ShadowProductionVariants") or [])
        configs[config.name] = {v["ModelName"] for v in variants if v.get("ModelName")}
    out: dict[str, list[Resource]] = {}
    for endpoint in _of_kind(endpoints.KIND, [region]).order_by(Resource.creation_time, Resource.id):
        for model in configs.get(endpoint.document.get("EndpointConfigName", ""), ()):
            out.setdefault(model, []).append(endpoint)
    return out


def _dashboard_endpoint(row: Resource) -> dict[str, Any]:
    return {"EndpointName": row.name, "EndpointArn": row.arn, "CreationTime": row.creation_time,
            "LastModifiedTime": row.last_modified_time,
            "EndpointStatus": row.status or row.document.get("EndpointStatus")}


def _last_transforms(region: str) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for job in _of_kind(transform_jobs.KIND, [region]).order_by(Resource.creation_time.desc(), Resource.id.desc()):
        doc = job.document
        if doc.get("ModelName") and doc["ModelName"] not in out:
            out[doc["ModelName"]] = public(doc)
    return out


def _schedules_by_endpoint(region: str) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for schedule in _of_kind(MODELS["MonitoringSchedule"].spec.kind, [region]):
        doc = public(schedule.document)
        if doc.get("EndpointName"):
            out.setdefault(doc["EndpointName"], []).append(doc)
    return out


def _cards_by_model(region: str) -> dict[str, dict[str, Any]]:
    """The newest model card naming each model (by ARN or name) as its `model_overview.model_id`."""
    cards = _of_kind(MODELS["ModelCard"].spec.kind, [region]).order_by(Resource.last_modified_time, Resource.id)
    return {record["ModelId"]: record for _row, record in model_card_records(list(cards)) if record.get("ModelId")}


def model_records(rows: list[Resource]) -> Pairs:
    """The `ModelDashboardModel` record of each model: `Model` (DescribeModel's members and its Tags,
    here so that `Model.Tags.<key>` filters see them), the endpoints whose configs name it, its newest
    transform job, the monitoring schedules of those endpoints and its model card. Filters read paths
    such as `Model.ModelName` and `Endpoints.EndpointStatus`."""
    if not rows:
        return []
    region = rows[0].region
    by_model, transforms = _endpoints_by_model(region), _last_transforms(region)
    schedules, cards = _schedules_by_endpoint(region), _cards_by_model(region)
    tags = resources.tags_of_many(row.id for row in rows)
    out = []
    for row in rows:
        served = by_model.get(row.name, [])
        record: dict[str, Any] = {
            "Model": {**public(row.document), "CreationTime": row.creation_time, "Tags": tags.get(row.id, [])},
            "Endpoints": [_dashboard_endpoint(e) for e in served],
            "MonitoringSchedules": [s for e in served for s in schedules.get(e.name, [])],
            "CreationTime": row.creation_time, "LastModifiedTime": row.last_modified_time}
        if row.name in transforms:
            record["LastBatchTransformJob"] = transforms[row.name]
        card = cards.get(row.arn) or cards.get(row.name)
        if card is not None:
            record["ModelCard"] = card
        out.append((row, record))
    return out
