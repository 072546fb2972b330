"""Monitoring schedules that run: each due run of a Scheduled schedule is a processing job.

One thread sleeps until the next run is due (or a schedule changes: `wake`), then starts the run
with `services.sagemaker.call("CreateProcessingJob")`, the request job_request.py builds. A run is
recorded in its schedule's document before its job is created (so a kill between the two leaves a
Failed run, never a job nobody knows of); its status is read from the job whenever it is listed
(Completed, or CompletedWithViolations when the analyzer's exit message says so, as AWS's analyzer
writes `CompletedWithViolations: Job completed successfully with N violations.`). A run whose window
holds no captured data fails without a job, with AWS's reason "Job inputs had no data".
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from datetime import datetime, timezone
from typing import Any

from sagemaker_emulator.background import BackgroundLoop
from sagemaker_emulator.protocol.errors import AwsError
from sagemaker_emulator.storage import resources
from sagemaker_emulator.storage.models import Resource

from . import job_request, schedule

log = logging.getLogger(__name__)

KIND = "monitoring-schedule"
STATE = "_Monitoring"  # {"expression", "next", "ran", "executions": [...]} in the schedule's document
IDLE_SECONDS = 60.0
JOB_STATUS = {"InProgress": "InProgress", "Stopping": "Stopping", "Stopped": "Stopped", "Failed": "Failed"}
VIOLATIONS = "CompletedWithViolations"


def job_name(schedule_name: str, region: str, scheduled: float) -> str:
    """`model-monitoring-<yyyymmddHHMM>-<24 hex>`: the same for the same run (a retry finds its job)."""
    stamp = datetime.fromtimestamp(scheduled, timezone.utc).strftime("%Y%m%d%H%M")
    digest = hashlib.sha256(f"{region}/{schedule_name}/{scheduled}".encode()).hexdigest()[:24]
    return f"model-monitoring-{stamp}-{digest}"


class MonitoringEngine:
    def __init__(self, services: Any) -> None:
        self.services = services
        self._lock = threading.Lock()
        self._loop = BackgroundLoop("monitoring", self.tick, IDLE_SECONDS)
        self._started = False
        self.clock = time.time  # tests move it to the hour

    # -- entry points ---------------------------------------------------------------------------
    def start(self) -> None:
        """Once the server is bound (runs stage from our S3): runs missed while it was down start now."""
        if not self._started:
            self._started = True
            self._fail_unstarted()
            self._loop.start()

    def wake(self) -> None:
        """A schedule was created, updated, started or stopped: recompute when the next run is due."""
        self._loop.wake()

    def shutdown(self) -> None:
        self._loop.shutdown()

    def rearm(self, region: str, name: str) -> None:
        """Start/Update: the next run is the next one after now (a stopped schedule does not catch up)."""
        def mutate(doc: dict[str, Any]) -> None:
            state = doc.setdefault(STATE, {})
            state.pop("next", None)
            state.pop("expression", None)
        with self._lock:
            resources.update(KIND, region, name, mutate)
        self.wake()

    # -- the loop -------------------------------------------------------------------------------
    def tick(self) -> float:
        """Start every due run; the seconds until the next one (at most IDLE_SECONDS)."""
        with self._lock:
            return self._tick(self.clock())

    def _tick(self, now: float) -> float:
        from sagemaker_emulator.resources import engine as resource_engine
        from sagemaker_emulator.resources.catalog import MODELS

        model = MODELS["MonitoringSchedule"]
        wait = IDLE_SECONDS
        for row in resources.all_with_status(KIND, ("Pending", "Scheduled")):
            settled = resource_engine.settle(model, row)
            if settled is None:
                continue
            if settled.status != "Scheduled":
                pending = settled.document.get(resource_engine.NEXT) or [None, now + 0.2]
                wait = min(wait, max(0.05, pending[1] - now))
                continue
            due = self._due(settled, now)
            if due is None:
                continue
            if due <= now:
                self._run(settled, due, now)
                due = self._due(resources.get(KIND, settled.region, settled.name), now)
            if due is not None:
                wait = min(wait, max(0.05, due - now))
        return wait

    def _due(self, row: Resource | None, now: float) -> float | None:
        """When `row`'s next run is due (stored, so a restart keeps it); None when it has none left."""
        if row is None:
            return None
        doc = row.document
        config = (doc.get("MonitoringScheduleConfig") or {}).get("ScheduleConfig") or {}
        expression = config.get("ScheduleExpression")
        if not expression:
            return None
        state = doc.get(STATE) or {}
        parsed = schedule.parse(expression)
        if state.get("expression") == expression and "next" in state:
            return state["next"]
        due = None if parsed.once and state.get("ran") else (now if parsed.once else parsed.next_after(now))

        def mutate(d: dict[str, Any]) -> None:
            d.setdefault(STATE, {}).update({"expression": expression, "next": due})
        resources.update(KIND, row.region, row.name, mutate)
        return due

    # -- one run --------------------------------------------------------------------------------
    def _run(self, row: Resource, due: float, now: float) -> None:
        doc = row.document
        config = doc["MonitoringScheduleConfig"]
        parsed = schedule.parse(config["ScheduleConfig"]["ScheduleExpression"])
        name = job_name(row.name, row.region, due)
        execution: dict[str, Any] = {"ProcessingJobName": name, "ScheduledTime": due, "CreationTime": now,
                                     "LastModifiedTime": now}
        try:
            definition, endpoint = self._definition(row.region, config)
            _member, source = job_request.input_of(definition)
            if parsed.once:
                window = (now + schedule.offset(config["ScheduleConfig"]["DataAnalysisStartTime"],
                                                "DataAnalysisStartTime").total_seconds(),
                          now + schedule.offset(config["ScheduleConfig"]["DataAnalysisEndTime"],
                                                "DataAnalysisEndTime").total_seconds())
            else:
                window = schedule.window(due, source.get("StartTimeOffset"), source.get("EndTimeOffset"))
            capture_uri, keys = self._captures(row.region, endpoint) if endpoint else (None, None)
            request = job_request.processing_request(
                name=name, schedule=row.name, definition=definition, scheduled=due, window=window,
                capture_keys=keys, capture_uri=capture_uri)
        except (job_request.NoData, AwsError) as exc:
            execution.update(MonitoringExecutionStatus="Failed", FailureReason=_reason(exc))
            request = None
        self._record(row, execution, ran=parsed.once, next_due=None if parsed.once else parsed.next_after(
            max(now, due)))
        if request is None:
            return
        try:
            self.services.sagemaker.call("CreateProcessingJob", request, region=row.region)
        except AwsError as exc:
            if "already exists" not in str(exc):
                log.warning("monitoring schedule %s: could not start %s: %s", row.name, name, exc)
                self._fail(row.region, row.name, name, _reason(exc))

    def _definition(self, region: str, config: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
        """(the job in MonitoringJobDefinition's form, the monitored endpoint or None)."""
        if config.get("MonitoringJobDefinition"):
            definition = dict(config["MonitoringJobDefinition"])
        else:
            kind = config.get("MonitoringType") or "DataQuality"
            described = self.services.sagemaker.call(f"Describe{kind}JobDefinition", {
                "JobDefinitionName": config["MonitoringJobDefinitionName"]}, region=region)
            definition = job_request.definition_of(kind, described)
        member, source = job_request.input_of(definition)
        return definition, source.get("EndpointName") if member == "EndpointInput" else None

    def _captures(self, region: str, endpoint: str) -> tuple[str | None, list[str]]:
        """(`<DestinationS3Uri>/<endpoint>`, its object keys) of the endpoint's data capture."""
        from sagemaker_emulator.jobs.data import JobData
        from sagemaker_emulator.staging import uris

        described = self.services.sagemaker.call("DescribeEndpoint", {"EndpointName": endpoint}, region=region)
        destination = (described.get("DataCaptureConfig") or {}).get("DestinationS3Uri")
        if not destination:
            raise job_request.NoData("Job inputs had no data")
        uri = uris.join_uri(destination.rstrip("/") + "/", endpoint)
        try:
            keys = [info.key for info in JobData(self.services, region).store.list(uri + "/")]
        except Exception as exc:  # a missing bucket: nothing was captured
            log.info("monitoring: could not list %s: %s", uri, exc)
            keys = []
        return uri, keys

    # -- records --------------------------------------------------------------------------------
    def _record(self, row: Resource, execution: dict[str, Any], *, ran: bool, next_due: float | None) -> None:
        def mutate(doc: dict[str, Any]) -> None:
            state = doc.setdefault(STATE, {})
            state.setdefault("executions", []).append(execution)
            state["next"] = next_due
            if ran:
                state["ran"] = True
        resources.update(KIND, row.region, row.name, mutate)

    def _fail(self, region: str, schedule_name: str, job: str, reason: str) -> None:
        def mutate(doc: dict[str, Any]) -> None:
            for execution in doc.get(STATE, {}).get("executions", []):
                if execution["ProcessingJobName"] == job:
                    execution.update(MonitoringExecutionStatus="Failed", FailureReason=reason,
                                     LastModifiedTime=self.clock())
        resources.update(KIND, region, schedule_name, mutate)

    def _fail_unstarted(self) -> None:
        """After a kill between recording a run and creating its job: that run failed."""
        from sagemaker_emulator.handlers import common

        for row in resources.all_with_status(KIND, ("Pending", "Scheduled", "Stopped")):
            for execution in (row.document.get(STATE) or {}).get("executions", []):
                if execution.get("MonitoringExecutionStatus"):
                    continue
                ctx = self.services.request_context(row.region)
                if common.find(ctx, "processing-job", execution["ProcessingJobName"]) is None:
                    self._fail(row.region, row.name, execution["ProcessingJobName"],
                               "The emulator stopped before the monitoring job started.")

    def executions(self, row: Resource, *, last_only: bool = False) -> list[dict[str, Any]]:
        """Every run of the schedule (or only the newest) as a MonitoringExecutionSummary, its status read
        from its job."""
        doc = row.document
        config = doc.get("MonitoringScheduleConfig") or {}
        base = {"MonitoringScheduleName": row.name, "EndpointName": doc.get("EndpointName"),
                "MonitoringJobDefinitionName": config.get("MonitoringJobDefinitionName"),
                "MonitoringType": config.get("MonitoringType") or doc.get("MonitoringType")}
        runs = (doc.get(STATE) or {}).get("executions", [])
        if last_only and runs:
            runs = [max(runs, key=lambda r: (r["ScheduledTime"], r["CreationTime"]))]
        out = []
        for execution in runs:
            summary = {**base, **{k: v for k, v in execution.items() if k != "ProcessingJobName"}}
            if not execution.get("MonitoringExecutionStatus"):
                summary.update(self._job_status(row.region, execution["ProcessingJobName"]))
            out.append({k: v for k, v in summary.items() if v is not None})
        return out

    def _job_status(self, region: str, name: str) -> dict[str, Any]:
        try:
            job = self.services.sagemaker.call("DescribeProcessingJob", {"ProcessingJobName": name}, region=region)
        except AwsError:
            return {"MonitoringExecutionStatus": "Pending"}
        status = job["ProcessingJobStatus"]
        if status == "Completed":
            status = VIOLATIONS if str(job.get("ExitMessage", "")).startswith(VIOLATIONS) else "Completed"
        else:
            status = JOB_STATUS.get(status, "Pending")
        return {"MonitoringExecutionStatus": status, "ProcessingJobArn": job["ProcessingJobArn"],
                "LastModifiedTime": job.get("LastModifiedTime"), "FailureReason": job.get("FailureReason")}


def _reason(exc: Exception) -> str:
    return getattr(exc, "message", None) or str(exc)
