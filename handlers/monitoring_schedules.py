"""Monitoring schedules that run (emulator/monitoring): their operations and ListMonitoringExecutions.

The schedule itself is a declared resource (resources/catalog.py: its document, lifecycle Pending ->
Scheduled, Stopped, its errors); these handlers add what makes it run: the ScheduleConfig and the
job definition are checked as AWS checks them at Create/Update, the monitoring engine hears of every
change, and Describe carries LastMonitoringExecutionSummary.
"""

from __future__ import annotations

from typing import Any

from sagemaker_emulator.monitoring import schedule
from sagemaker_emulator.protocol.errors import AwsError, ValidationError
from sagemaker_emulator.protocol.json_protocol import RequestContext
from sagemaker_emulator.resources import engine
from sagemaker_emulator.resources.catalog import MODELS
from sagemaker_emulator.storage import resources

MODEL = MODELS["MonitoringSchedule"]
TYPES = ("DataQuality", "ModelQuality", "ModelBias", "ModelExplainability")


def _check(ctx: RequestContext, config: dict[str, Any]) -> None:
    if config.get("ScheduleConfig"):
        schedule.check_config(config["ScheduleConfig"])
    inline, named = config.get("MonitoringJobDefinition"), config.get("MonitoringJobDefinitionName")
    if bool(inline) == bool(named):
        raise ValidationError("Exactly one of MonitoringJobDefinition and MonitoringJobDefinitionName must be given.")
    kind = config.get("MonitoringType")
    if named:
        if kind not in TYPES:
            raise ValidationError("MonitoringType is required with MonitoringJobDefinitionName.")
        try:
            ctx.services.sagemaker.call(f"Describe{kind}JobDefinition", {"JobDefinitionName": named},
                                        region=ctx.region)
        except AwsError:
            raise ValidationError(f'Could not find {kind} job definition "{named}".') from None


def _wake(ctx: RequestContext, name: str, rearm: bool = False) -> None:
    monitoring = ctx.services.monitoring
    if rearm:
        monitoring.rearm(ctx.region, name)
    else:
        monitoring.wake()


def create_monitoring_schedule(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    _check(ctx, params["MonitoringScheduleConfig"])
    out = engine.create(MODEL, ctx, params)
    _wake(ctx, params["MonitoringScheduleName"])
    return out


def update_monitoring_schedule(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    _check(ctx, params["MonitoringScheduleConfig"])
    out = engine.update(MODEL, ctx, params)
    _wake(ctx, params["MonitoringScheduleName"], rearm=True)
    return out


def start_monitoring_schedule(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    out = engine.start(MODEL, ctx, params)
    _wake(ctx, params["MonitoringScheduleName"], rearm=True)
    return out


def stop_monitoring_schedule(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    out = engine.stop(MODEL, ctx, params)
    _wake(ctx, params["MonitoringScheduleName"])
    return out


def delete_monitoring_schedule(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    out = engine.delete(MODEL, ctx, params)
    _wake(ctx, params["MonitoringScheduleName"])
    return out


def describe_monitoring_schedule(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    out = dict(engine.describe(MODEL, ctx, params))
    row = engine.require(MODEL, ctx, "Describe", params)
    runs = ctx.services.monitoring.executions(row, last_only=True)  # one job described, however many runs
    if runs:
        out["LastMonitoringExecutionSummary"] = runs[0]
    return out


def _matches(run: dict[str, Any], params: dict[str, Any]) -> bool:
    for member, field, keep in (("ScheduledTimeBefore", "ScheduledTime", lambda a, b: a < b),
                                ("ScheduledTimeAfter", "ScheduledTime", lambda a, b: a > b),
                                ("CreationTimeBefore", "CreationTime", lambda a, b: a < b),
                                ("CreationTimeAfter", "CreationTime", lambda a, b: a > b),
                                ("LastModifiedTimeBefore", "LastModifiedTime", lambda a, b: a < b),
                                ("LastModifiedTimeAfter", "LastModifiedTime", lambda a, b: a > b)):
        if params.get(member) is not None and not keep(run.get(field, 0), float(params[member])):
            return False
    for member, field in (("StatusEquals", "MonitoringExecutionStatus"), ("EndpointName", "EndpointName"),
                          ("MonitoringJobDefinitionName", "MonitoringJobDefinitionName"),
                          ("MonitoringTypeEquals", "MonitoringType")):
        if params.get(member) and run.get(field) != params[member]:
            return False
    return True


def list_monitoring_executions(ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
    """Every run of one schedule (or of all), filtered and sorted; NextToken is an offset."""
    from . import common

    if params.get("MonitoringScheduleName"):  # a filter: this operation declares no not-found error
        row = engine.lookup(MODEL, ctx, "Describe", params)
        rows = [row] if row is not None else []
    else:
        rows = [r for r in resources.all_with_status(MODEL.spec.kind, ("Pending", "Scheduled", "Stopped", "Failed"))
                if r.region == ctx.region]
    runs = [run for row in rows for run in ctx.services.monitoring.executions(row) if _matches(run, params)]
    sort_by = {"Status": "MonitoringExecutionStatus"}.get(params.get("SortBy") or "", params.get("SortBy")
                                                          or "CreationTime")
    runs.sort(key=lambda r: (r.get(sort_by) or 0, r["CreationTime"]), reverse=params.get("SortOrder") != "Ascending")
    return common.offset_page(runs, params, "MonitoringExecutionSummaries")
