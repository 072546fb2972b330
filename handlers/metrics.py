"""sagemaker-metrics (rest-json): BatchPutMetrics and BatchGetMetrics over trial components' series.

BatchPutMetrics answers per-item Errors (AWS's codes) instead of failing the whole request (a
negative Step is a VALIDATION_ERROR; NaN/Infinity never get past the protocol's number check); the
values that pass are appended to the trial component and summarised there (experiments.record_metrics).
BatchGetMetrics reads a trial component's series, or a job's through the trial component whose
Source is that job.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable
from typing import Any

from sagemaker_emulator.protocol.errors import ResourceNotFound
from sagemaker_emulator.protocol.json_protocol import RequestContext
from sagemaker_emulator.storage import resources
from sagemaker_emulator.storage.models import Resource

from . import experiments

MAX_METRIC_NAMES = 1000  # distinct metric names per trial component (docs/decisions.md)
_PERIODS = {"OneMinute": 60, "FiveMinute": 300, "OneHour": 3600}
_STATS: dict[str, Callable[[list[float]], float]] = {
    "Min": min, "Max": max, "Avg": statistics.fmean, "Count": len, "Last": lambda v: v[-1],
          "StdDev": lambda v: statistics.stdev(v) if len(v) > 1 else 0.0}


def batch_put_metrics(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    name = params["TrialComponentName"]
    row = resources.get(experiments.COMPONENT, ctx.region, name)
    if row is None:
        raise ResourceNotFound(f"Trial component {name} does not exist.")
    names = set(row.document.get("_Series", {}))
    accepted, errors = [], []
    for index, point in enumerate(params["MetricData"]):
        value, step = point.get("Value"), point.get("Step")
        if not isinstance(value, (int, float)) or not math.isfinite(value) or (step is not None and step < 0):
            errors.append({"Code": "VALIDATION_ERROR", "MetricIndex": index})
            continue
        if point["MetricName"] not in names and len(names) >= MAX_METRIC_NAMES:
            errors.append({"Code": "METRIC_LIMIT_EXCEEDED", "MetricIndex": index})
            continue
        names.add(point["MetricName"])
        accepted.append(point)
    if accepted:
        # SourceArn of the summaries: the component's Source (a job) when it has one, else the component
        source = (row.document.get("Source") or {}).get("SourceArn") or row.arn
        experiments.record_metrics(row, accepted, source)
    return {"Errors": errors}  # the list is always there, empty when every point was stored


def _component_for(ctx: RequestContext, arn: str) -> Resource | None:
    row = resources.get_by_arn(arn)
    if row is None or row.kind == experiments.COMPONENT:
        return row
    listed = ctx.services.sagemaker.call("ListTrialComponents", {"SourceArn": row.arn}, region=ctx.region)
    summaries = listed.get("TrialComponentSummaries") or []
    return resources.get(experiments.COMPONENT, ctx.region, summaries[0]["TrialComponentName"]) if summaries else None


def _query(ctx: RequestContext, query: dict[str, Any]) -> dict[str, Any]:
    row = _component_for(ctx, query["ResourceArn"])
    if row is None:
        return {"Status": "ValidationError", "Message": f"Resource {query['ResourceArn']} has no metrics.",
                "XAxisValues": [], "MetricValues": []}
    points = sorted(experiments.series(row, query["MetricName"]), key=lambda p: (p[0], p[1] or 0))
    start, end = query.get("Start"), query.get("End")
    points = [p for p in points if (start is None or p[0] >= start) and (end is None or p[0] <= end)]
    buckets: dict[int, list[float]] = {}
    for timestamp, step, value in points:
        if query["Period"] == "IterationNumber" or query["XAxisType"] == "IterationNumber":
            if step is None:
                continue
            key = int(step)
        else:
            width = _PERIODS[query["Period"]]
            key = int(timestamp // width * width)
        buckets.setdefault(key, []).append(value)
    stat = _STATS[query["MetricStat"]]
    keys = sorted(buckets)
    return {"Status": "Complete", "XAxisValues": keys, "MetricValues": [float(stat(buckets[k])) for k in keys]}


def batch_get_metrics(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    return {"MetricQueryResults": [_query(ctx, query) for query in params["MetricQueries"]]}
