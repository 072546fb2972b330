"""What a tuning job's Describe and ListTrainingJobsForHyperParameterTuningJob say about its children,
computed from the children's stored Describe documents (nothing else is kept)."""

from __future__ import annotations

from typing import Any

from sagemaker_emulator.jobs.records import TERMINAL
from sagemaker_emulator.storage.models import Resource

from .space import Range

ELIGIBLE = ("Completed", "Stopped")  # a job stopped early keeps the objective it reached


def definitions(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return doc.get("TrainingJobDefinitions") or [doc["TrainingJobDefinition"]]


def definition_of(doc: dict[str, Any], tuning_name: str, child_name: str) -> dict[str, Any]:
    """Children are named `<tuning>-<NNN>-<hex>` and take the definitions in turn."""
    defs = definitions(doc)
    try:
        index = int(child_name[len(tuning_name) + 1:len(tuning_name) + 4]) - 1
    except ValueError:
        index = 0
    return defs[index % len(defs)]


def objective(doc: dict[str, Any], definition: dict[str, Any]) -> dict[str, Any]:
    return definition.get("TuningObjective") or doc["HyperParameterTuningJobConfig"]["HyperParameterTuningJobObjective"]


def minimizing(doc: dict[str, Any]) -> bool:
    return objective(doc, definitions(doc)[0])["Type"] == "Minimize"


def objective_value(child: dict[str, Any], goal: dict[str, Any]) -> float | None:
    for metric in child.get("FinalMetricDataList") or []:
        if metric["MetricName"] == goal["MetricName"]:
            return float(metric["Value"])
    return None


def ranges(doc: dict[str, Any], definition: dict[str, Any]) -> dict[str, Any]:
    return definition.get("HyperParameterRanges") or doc["HyperParameterTuningJobConfig"].get("ParameterRanges") or {}


def range_names(doc: dict[str, Any], definition: dict[str, Any]) -> list[str]:
    found = ranges(doc, definition)
    return [item["Name"] for key in ("IntegerParameterRanges", "ContinuousParameterRanges",
                                     "CategoricalParameterRanges") for item in found.get(key) or []]


def tuned(doc: dict[str, Any], tuning_name: str, child_row: Resource) -> dict[str, str]:
    definition = definition_of(doc, tuning_name, child_row.name)
    hps = child_row.document.get("HyperParameters") or {}
    return {name: hps[name] for name in range_names(doc, definition) if name in hps}


def typed(space: list[Range], values: dict[str, str]) -> dict[str, Any]:
    """Stored strings back to the strategy's values."""
    out: dict[str, Any] = {}
    for r in space:
        if r.name in values:
            raw = values[r.name]
            out[r.name] = raw if r.kind == "Categorical" else (int(float(raw)) if r.kind == "Integer" else float(raw))
    return out


def scored(doc: dict[str, Any], tuning_name: str, children: list[Resource]) -> list[tuple[Resource, float]]:
    """Finished children with an objective value, in the order they ended."""
    out = []
    for child in children:
        if child.status not in ELIGIBLE:
            continue
        value = objective_value(child.document, objective(doc, definition_of(doc, tuning_name, child.name)))
        if value is not None:
            out.append((child, value))
    out.sort(key=lambda item: (item[0].document.get("TrainingEndTime") or 0, item[0].id))
    return out


def best_of(items: list[tuple[Resource, float]], minimize: bool) -> tuple[Resource, float]:
    return (min if minimize else max)(items, key=lambda item: item[1])


def not_improving(items: list[tuple[Resource, float]], minimize: bool) -> int:
    """How many jobs ended after the best one so far (TuningJobCompletionDetails' count)."""
    if not items:
        return 0
    best_index = 0
    for index, (_, value) in enumerate(items):
        if (value < items[best_index][1]) if minimize else (value > items[best_index][1]):
            best_index = index
    return len(items) - 1 - best_index


def counters(children: list[Resource], tuning_name: str, doc: dict[str, Any]) -> dict[str, Any]:
    jobs = {"Completed": 0, "InProgress": 0, "RetryableError": 0, "NonRetryableError": 0, "Stopped": 0}
    goals = {"Succeeded": 0, "Pending": 0, "Failed": 0}
    for child in children:
        status = child.status or "InProgress"
        if status == "Failed":
            reason = child.document.get("FailureReason") or ""
            jobs["NonRetryableError" if reason.startswith("ClientError") else "RetryableError"] += 1
        elif status in jobs:
            jobs[status] += 1
        else:  # Stopping
            jobs["InProgress"] += 1
        goals[objective_status(doc, tuning_name, child)] += 1
    return {"TrainingJobStatusCounters": jobs, "ObjectiveStatusCounters": goals}


def objective_status(doc: dict[str, Any], tuning_name: str, child: Resource) -> str:
    if child.status not in TERMINAL:
        return "Pending"
    value = objective_value(child.document, objective(doc, definition_of(doc, tuning_name, child.name)))
    return "Succeeded" if value is not None and child.status in ELIGIBLE else "Failed"


def job_summary(doc: dict[str, Any], tuning_name: str, child: Resource) -> dict[str, Any]:
    """HyperParameterTrainingJobSummary of one child."""
    cdoc = child.document
    definition = definition_of(doc, tuning_name, child.name)
    goal = objective(doc, definition)
    out: dict[str, Any] = {
        "TrainingJobName": child.name, "TrainingJobArn": child.arn, "TuningJobName": tuning_name,
        "CreationTime": child.creation_time, "TrainingJobStatus": child.status,
        "TunedHyperParameters": tuned(doc, tuning_name, child),
        "ObjectiveStatus": objective_status(doc, tuning_name, child),
    }
    if definition.get("DefinitionName"):
        out["TrainingJobDefinitionName"] = definition["DefinitionName"]
    for key in ("TrainingStartTime", "TrainingEndTime", "FailureReason"):
        if cdoc.get(key) is not None:
            out[key] = cdoc[key]
    value = objective_value(cdoc, goal)
    if value is not None:
        out["FinalHyperParameterTuningJobObjectiveMetric"] = {"Type": goal["Type"], "MetricName": goal["MetricName"],
                                                              "Value": value}
    return out


def best_summary(doc: dict[str, Any], tuning_name: str, children: list[Resource]) -> dict[str, Any] | None:
    items = scored(doc, tuning_name, children)
    if not items:
        return None
    return job_summary(doc, tuning_name, best_of(items, minimizing(doc))[0])


def parents(doc: dict[str, Any]) -> list[Resource]:
    """The warm-start parent tuning jobs that still exist."""
    from sagemaker_emulator.storage import resources

    config = doc.get("WarmStartConfig") or {}
    rows = [resources.get("hyper-parameter-tuning-job", region_of(doc), p["HyperParameterTuningJobName"])
            for p in config.get("ParentHyperParameterTuningJobs") or []]
    return [row for row in rows if row is not None]


def region_of(doc: dict[str, Any]) -> str:
    return doc["HyperParameterTuningJobArn"].split(":")[3]


def overall_best(doc: dict[str, Any], best: dict[str, Any] | None) -> dict[str, Any] | None:
    """The best of this job's best and its parents' (OverallBestTrainingJob), by objective value."""
    candidates = [best] if best else []
    for parent in parents(doc):
        pdoc = parent.document
        found = pdoc.get("OverallBestTrainingJob") or pdoc.get("BestTrainingJob")
        if found and "FinalHyperParameterTuningJobObjectiveMetric" in found:
            candidates.append(found)
    if not candidates:
        return None
    value = lambda s: s["FinalHyperParameterTuningJobObjectiveMetric"]["Value"]  # noqa: E731
    return (min if minimizing(doc) else max)(candidates, key=value)


def parent_trials(doc: dict[str, Any], space: list[Range], goal: dict[str, Any]) -> list[tuple[dict, float | None]]:
    """(point, objective) of every finished training job of the warm-start parents: the strategy's prior."""
    from sagemaker_emulator.storage import resources

    out = []
    for parent in parents(doc):
        pdoc = parent.document
        for child in resources.children(parent, "tuning-job/training-job"):
            if child.status in TERMINAL:
                out.append((typed(space, tuned(pdoc, parent.name, child)), objective_value(child.document, goal)))
    return out


def runtime_seconds(children: list[Resource]) -> int:
    total = 0.0
    for child in children:
        cdoc = child.document
        start = cdoc.get("TrainingStartTime")
        if start is not None:
            total += (cdoc.get("TrainingEndTime") or start) - start
    return int(total)
