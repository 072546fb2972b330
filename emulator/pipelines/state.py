"""An execution's stored state: the `pipeline-execution` resource row and its steps' records.

The execution document holds the Describe members plus `_definition` (the JSON it runs), `_parameters`
(every parameter's value) and `_steps` (one record per step that started: the ListPipelineExecutionSteps
members plus `_`-prefixed bookkeeping such as the job's name, the properties and retry times). Every
write is a read-modify-write under SQLite's write lock (`resources.update`), so the scheduler, timers
and handlers never overwrite each other; a restart finds everything here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sagemaker_emulator.storage import resources
from sagemaker_emulator.storage.models import Resource

KIND = "pipeline-execution"
PIPELINE = "pipeline"
ACTIVE = ("Executing", "Stopping")
RUNNING = ("Starting", "Executing", "Stopping")
DEFAULT_PARALLELISM = 50


def execution_id(arn: str) -> str:
    return arn.rsplit("/", 1)[-1]


def row_name(pipeline: str, execution: str) -> str:
    """Executions are stored as `<pipeline>/<execution id>`: one pipeline's executions are a name prefix."""
    return f"{pipeline}/{execution}"


def edit(region: str, name: str, mutate: Callable[[dict[str, Any]], str | None]) -> Resource | None:
    return resources.update(KIND, region, name, mutate)


def edit_step(region: str, name: str, step: str, **fields: Any) -> Resource | None:
    """Merge `fields` into one step's record (a None value removes the member)."""
    def mutate(doc: dict[str, Any]) -> None:
        record = doc.setdefault("_steps", {}).setdefault(step, {"StepName": step})
        for key, value in fields.items():
            if value is None:
                record.pop(key, None)
            else:
                record[key] = value
        doc["LastModifiedTime"] = resources.now()

    return edit(region, name, mutate)


def public_step(record: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in record.items() if not key.startswith("_")}


def listed_steps(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """The steps ListPipelineExecutionSteps shows: those that started (not the skipped ones)."""
    return [record for record in doc.get("_steps", {}).values() if not record.get("_skipped")]


def executions_of(region: str, pipeline: str) -> list[Resource]:
    """Every execution of one pipeline, newest first."""
    return list(Resource.select().where((Resource.kind == KIND) & (Resource.region == region)
                                        & Resource.name.startswith(f"{pipeline}/"))
                .order_by(Resource.creation_time.desc(), Resource.id.desc()))


def initial_steps(source: dict[str, Any], selected: list[str]) -> dict[str, dict[str, Any]]:
    """Selective execution: the steps not selected reuse the source execution's successful runs."""
    records = {}
    for name, record in source.get("_steps", {}).items():
        if name in selected or record.get("_skipped") or record.get("StepStatus") != "Succeeded":
            continue
        copied = dict(record)
        copied["SelectiveExecutionResult"] = {"SourcePipelineExecutionArn": source["PipelineExecutionArn"]}
        records[name] = copied
    return records
