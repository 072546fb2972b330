"""The pipeline scheduler: each execution runs as a DAG of real steps, driven by events, never by polling.

`advance` is the one decision function: from the stored step records it skips the steps whose condition
branch was not taken, starts every ready step (up to MaxParallelExecutionSteps), and ends the execution
when nothing runs any more. Job steps end when their job's lifecycle event arrives (`services.events`);
callback steps when SendPipelineExecutionStepSuccess/Failure names their token; retries on timers. A
failed step stops new launches; the execution fails once the running steps end (AWS's semantics).
After a restart, `recover` re-learns which job belongs to which step and `resume` (once the job engines
re-attached or failed their jobs) handles what ended meanwhile and carries on.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from sagemaker_emulator.events import StatusChange
from sagemaker_emulator.protocol.errors import AwsError
from sagemaker_emulator.storage import resources

from . import quality_check, state
from .cache import cache_key, parse_duration
from .definition import Definition, Step, parse
from .expressions import ExpressionError, Scope, walk
from .launch import Launcher
from .steps import JOB_RESOURCES, JOB_STEPS, job_properties

log = logging.getLogger(__name__)
DEFAULT_MAX_ATTEMPTS = 5
FAILED = "Step failure: One or multiple steps failed."


def failure_category(reason: str) -> str | None:
    """The RetryPolicies ExceptionType a job's FailureReason belongs to (None: not retryable)."""
    for prefix, category in (("InternalServerError", "SageMaker.JOB_INTERNAL_ERROR"),
                             ("CapacityError", "SageMaker.CAPACITY_ERROR"),
                             ("ResourceLimitExceeded", "SageMaker.RESOURCE_LIMIT")):
        if reason.startswith(prefix):
            return category
    return None


def error_category(err: AwsError) -> str | None:
    """The ExceptionType of an operation the step called that failed."""
    if err.code in ("ThrottlingException", "Throttling"):
        return "Step.THROTTLING"
    if err.code == "ResourceLimitExceeded":
        return "SageMaker.RESOURCE_LIMIT"
    if err.status >= 500:
        return "Step.SERVICE_FAULT"
    return None


class PipelineExecutor:
    def __init__(self, services: Any) -> None:
        self.services = services
        self._lock = threading.RLock()
        self._jobs: dict[str, tuple[str, str, str]] = {}  # "<kind>/<region>/<job>" -> (region, execution, step)
        self._definitions: dict[str, Definition] = {}
        self._timers: dict[tuple[str, str, str], threading.Timer] = {}
        self._ready = False  # launching waits for the job engines' recovery (resume)
        self._closing = False
        self.launcher = Launcher(self)
        services.events.subscribe(self._on_change, kinds=set(JOB_RESOURCES), recover=self.recover, name="pipelines")

    # -- entry points ---------------------------------------------------------------------------
    def submit(self, region: str, name: str) -> None:
        """A new (or retried) execution was stored: start its first steps."""
        self.advance(region, name)

    def stop(self, region: str, name: str) -> None:
        """StopPipelineExecution: Stopping; running jobs are stopped, waiting steps end Stopped."""
        with self._lock:
            row = state.edit(region, name, lambda doc: "Stopping")
            if row is None:
                return
            doc = row.document
            for step, record in doc.get("_steps", {}).items():
                if record.get("StepStatus") not in state.RUNNING:
                    continue
                job = record.get("_job")
                if job and not record.get("_retry_at"):
                    kind = JOB_STEPS[record["_type"]]
                    state.edit_step(region, name, step, StepStatus="Stopping")
                    try:
                        self.services.sagemaker.call(kind.stop, {kind.name_field: job}, region=region)
                    except AwsError as err:  # it ended meanwhile: its event settles the step
                        log.info("pipeline %s: %s %s: %s", name, kind.stop, job, err.message)
                else:
                    self._cancel_timer(region, name, step)
                    state.edit_step(region, name, step, StepStatus="Stopped", EndTime=resources.now(), _retry_at=None)
        self.advance(region, name)

    def callback(self, token: str, success: bool, outputs: list[dict[str, str]] | None,
                 reason: str | None) -> str | None:
        """SendPipelineExecutionStepSuccess/Failure: the execution ARN, or None for an unknown token."""
        with self._lock:
            for row in resources.all_with_status(state.KIND, state.ACTIVE):
                for step, record in row.document.get("_steps", {}).items():
                    if record.get("_token") != token:
                        continue
                    if record.get("StepStatus") not in state.RUNNING:
                        return None
                    definition = self.definition(row.document)
                    declared = definition.steps[step].spec.get("OutputParameters") or []
                    if success:
                        from .steps import typed_outputs

                        outputs = outputs or []
                        metadata = {"Callback": {**record["Metadata"]["Callback"], "OutputParameters": outputs}}
                        self.finish_step(row.region, row.name, step, metadata=metadata,
                                         properties={"OutputParameters": typed_outputs(declared, outputs)})
                    else:
                        self.fail_step(row.region, row.name, step, reason or "The callback step failed.", None)
                    self.advance(row.region, row.name)
                    return row.arn
        return None

    def recover(self) -> None:
        """Start-up (the event hook): re-learn which job belongs to which step; nothing is launched yet."""
        with self._lock:
            for row in resources.all_with_status(state.KIND, state.ACTIVE):
                for step, record in row.document.get("_steps", {}).items():
                    if record.get("_job") and record.get("StepStatus") in state.RUNNING:
                        self._own(record, row.region, row.name, step)

    def resume(self) -> None:
        """Once the job engines recovered: settle steps whose job ended meanwhile, re-arm retries, go on."""
        with self._lock:
            self._ready = True
            for row in resources.all_with_status(state.KIND, state.ACTIVE):
                for step, record in row.document.get("_steps", {}).items():
                    if record.get("StepStatus") not in state.RUNNING:
                        continue
                    if record.get("_retry_at"):
                        self._arm_retry(row.region, row.name, step, record["_retry_at"])
                    elif record.get("_job"):
                        kind = JOB_STEPS[record["_type"]]
                        job = resources.get(kind.resource, row.region, record["_job"])
                        if job is None or job.status in ("Completed", "Failed", "Stopped"):
                            self._job_ended(row.region, row.name, step)
                    elif record.get("_type") not in ("Callback",):  # a synchronous step cut short: run it again
                        self.launcher.launch(row.region, row.name, step, record.get("AttemptCount", 1))
                self.advance(row.region, row.name)

    def shutdown(self) -> None:
        """Server shutdown: decide nothing more (the job engines fail what runs; resume retries it)."""
        self._closing = True
        for timer in list(self._timers.values()):
            timer.cancel()

    def reset(self) -> None:
        """`POST /_emulator/reset` (before the engines stop their jobs): forget every execution's jobs and
        timers, so the stops that follow launch no retry and no next step; the rows go with the reset."""
        with self._lock:
            for timer in list(self._timers.values()):
                timer.cancel()
            self._timers.clear()
            self._jobs.clear()
            self._definitions.clear()

    # -- helpers for the launcher ---------------------------------------------------------------
    def definition(self, doc: dict[str, Any]) -> Definition:
        arn = doc["PipelineExecutionArn"]
        if arn not in self._definitions:
            self._definitions[arn] = parse(doc["_definition"])
        return self._definitions[arn]

    def scope(self, region: str, doc: dict[str, Any], job_name: str | None = None,
              step_type: str | None = None) -> Scope:
        from .reading import read_json

        records = doc.get("_steps", {})
        definition = self.definition(doc)

        def properties(step: str) -> dict[str, Any] | None:
            record = records.get(step) or {}
            return record.get("_props") if record.get("StepStatus") == "Succeeded" else None

        def property_file(step: str, name: str) -> str:
            files = {p.get("PropertyFileName"): p for p in definition.steps[step].spec.get("PropertyFiles") or []}
            spec, props = files[name], properties(step)
            if props is None:
                raise ExpressionError(f"the property file {name} of step '{step}' is not available: the step did "
                                      "not succeed")
            base = walk(props, f"ProcessingOutputConfig.Outputs['{spec['OutputName']}'].S3Output.S3Uri",
                        f"PropertyFile {name}")
            return f"{str(base).rstrip('/')}/{str(spec['FilePath']).lstrip('/')}"

        execution = {
            "StartDateTime": _iso(doc["CreationTime"]), "CurrentDateTime": _iso(time.time()),
            "PipelineName": doc["_pipeline"], "PipelineArn": doc["PipelineArn"],
            "PipelineExecutionId": state.execution_id(doc["PipelineExecutionArn"]),
            "PipelineExecutionArn": doc["PipelineExecutionArn"],
            "TrainingJobName": job_name if step_type == "Training" else "",
            "ProcessingJobName": job_name if step_type in ("Processing", "QualityCheck") else "",
        }
        return Scope(doc["_parameters"], execution, properties, lambda uri: read_json(self.services, region, uri),
                     property_file)

    def own_job(self, record: dict[str, Any], region: str, name: str, step: str) -> None:
        with self._lock:
            self._own(record, region, name, step)

    def _own(self, record: dict[str, Any], region: str, name: str, step: str) -> None:
        kind = JOB_STEPS[record["_type"]]
        self._jobs[f"{kind.resource}/{region}/{record['_job']}"] = (region, name, step)

    # -- step outcomes --------------------------------------------------------------------------
    def finish_step(self, region: str, name: str, step: str, *, metadata: dict[str, Any] | None = None,
                    properties: dict[str, Any] | None = None, **extra: Any) -> None:
        """A step succeeded (unless it was settled meanwhile, e.g. stopped)."""
        with self._lock:
            if self._closing or not self._running(region, name, step):  # closing: resume runs it again
                return
            state.edit_step(region, name, step, StepStatus="Succeeded", EndTime=resources.now(), Metadata=metadata,
                            _props=properties, _retry_at=None, **extra)

    @staticmethod
    def _running(region: str, name: str, step: str) -> bool:
        row = resources.get(state.KIND, region, name)
        return row is not None and row.document.get("_steps", {}).get(step, {}).get("StepStatus") in state.RUNNING

    def fail_step(self, region: str, name: str, step: str, reason: str, category: str | None,
                  status: str = "Failed", **extra: Any) -> None:
        """A step attempt failed: retried when one of its RetryPolicies covers `category`, else it ends."""
        with self._lock:
            row = resources.get(state.KIND, region, name)
            if row is None or self._closing:
                return
            doc = row.document
            record = doc["_steps"].get(step, {})
            if record.get("StepStatus") not in state.RUNNING:
                return
            delay = None if row.status != "Executing" or status != "Failed" else self._retry_delay(
                self.definition(doc).steps[step], record, category)
            if delay is not None:
                at = time.time() + delay
                log.info("pipeline execution %s: step %s failed (%s); retrying in %.1f s", name, step, reason, delay)
                state.edit_step(region, name, step, _retry_at=at, _last_failure=reason[:1024], **extra)
                self._arm_retry(region, name, step, at)
                return
            state.edit_step(region, name, step, StepStatus=status, EndTime=resources.now(),
                            FailureReason=reason[:1024], _retry_at=None, **extra)

    @staticmethod
    def _retry_delay(step: Step, record: dict[str, Any], category: str | None) -> float | None:
        if category is None:
            return None
        attempts = record.get("AttemptCount", 1)
        for policy in step.spec.get("RetryPolicies") or []:
            if category not in (policy.get("ExceptionType") or []):
                continue
            if policy.get("ExpireAfterMin") is not None:
                if time.time() - record.get("_first", record.get("StartTime", 0)) >= policy["ExpireAfterMin"] * 60:
                    return None
            elif attempts - 1 >= policy.get("MaxAttempts", DEFAULT_MAX_ATTEMPTS):
                return None
            interval = float(policy.get("IntervalSeconds", 1))
            return interval * float(policy.get("BackoffRate", 2.0)) ** (attempts - 1)
        return None

    def _arm_retry(self, region: str, name: str, step: str, at: float) -> None:
        def fire() -> None:
            self._timers.pop((region, name, step), None)
            with self._lock:
                row = resources.get(state.KIND, region, name)
                record = row.document["_steps"].get(step, {}) if row is not None else {}
                if row is None or self._closing or row.status != "Executing" or not record.get("_retry_at"):
                    return
                state.edit_step(region, name, step, _retry_at=None)
                self.launcher.launch(region, name, step, record.get("AttemptCount", 1) + 1)
            self.advance(region, name)

        self._cancel_timer(region, name, step)
        timer = threading.Timer(max(0.0, at - time.time()), fire)
        timer.daemon = True
        self._timers[(region, name, step)] = timer
        timer.start()

    def _cancel_timer(self, region: str, name: str, step: str) -> None:
        timer = self._timers.pop((region, name, step), None)
        if timer is not None:
            timer.cancel()

    # -- events ---------------------------------------------------------------------------------
    def _on_change(self, change: StatusChange) -> None:
        if not (change.terminal or change.status is None) or self._closing or not self._ready:
            return
        owner = self._jobs.get(f"{change.kind}/{change.region}/{change.name}")
        if owner is None:
            return
        region, name, step = owner
        with self._lock:
            self._job_ended(region, name, step)
        self.advance(region, name)

    def _job_ended(self, region: str, name: str, step: str) -> None:
        row = resources.get(state.KIND, region, name)
        if row is None:
            return
        record = row.document["_steps"].get(step, {})
        if record.get("StepStatus") not in state.RUNNING or not record.get("_job") or record.get("_retry_at"):
            return
        kind = JOB_STEPS[record["_type"]]
        self._jobs.pop(f"{kind.resource}/{region}/{record['_job']}", None)
        job = resources.get(kind.resource, region, record["_job"])
        status: str = (job.status if job is not None else None) or "Failed"
        if status == "Completed" and record.get("_check"):
            properties, metadata, failure = quality_check.conclude(self.services, region, record["_check"], job.arn
                                                                   if job is not None else "")
            if failure:
                self.fail_step(region, name, step, failure, None, Metadata=metadata)
            else:
                self.finish_step(region, name, step, metadata=metadata, properties=properties)
            return
        if status == "Completed":
            try:
                properties = job_properties(self.services, region, record["_type"], record["_job"])
            except AwsError as err:
                self.fail_step(region, name, step, f"Could not describe {record['_job']}: {err.message}", None)
                return
            self.finish_step(region, name, step, metadata=record.get("Metadata"), properties=properties)
            return
        reason = (job.document.get("FailureReason") if job is not None else None) or f"The job {status.lower()}."
        if status == "Stopped":
            self.fail_step(region, name, step, reason if job is None else "The job was stopped.", None,
                           status="Stopped")
        else:
            self.fail_step(region, name, step, reason, failure_category(reason))

    # -- the decisions --------------------------------------------------------------------------
    def advance(self, region: str, name: str) -> None:
        """Everything that follows from the step records: skip, launch, or end the execution."""
        if self._closing or not self._ready:
            return
        with self._lock:
            for _ in range(10_000):  # each pass either changes a record or returns
                row = resources.get(state.KIND, region, name)
                if row is None or row.status not in state.ACTIVE:
                    return
                if not self._pass(row):
                    return

    def _pass(self, row: Any) -> bool:
        doc = row.document
        definition = self.definition(doc)
        records = doc.get("_steps", {})
        running = [n for n, r in records.items() if r.get("StepStatus") in state.RUNNING]
        failed = [n for n, r in records.items() if r.get("StepStatus") in ("Failed", "Stopped")]
        if row.status == "Executing" and not failed:
            limit = (doc.get("ParallelismConfiguration") or {}).get("MaxParallelExecutionSteps") or \
                state.DEFAULT_PARALLELISM
            selected = doc.get("_selected")
            verdicts = {step.name: self._readiness(step, records, selected)
                        for step in definition.steps.values() if step.name not in records}
            skipped = [name for name, verdict in verdicts.items() if verdict == "skip"]
            for name in skipped:
                state.edit_step(row.region, row.name, name, _skipped=True)
            if skipped:
                return True
            # every ready step starts now (a synchronous one failing does not hold back the others)
            ready = [name for name, verdict in verdicts.items() if verdict == "ready"][:max(0, limit - len(running))]
            for name in ready:
                self.launcher.launch(row.region, row.name, name, 1)
            if ready:
                return True
        if running:
            return False
        self._end(row, doc, failed)
        return False

    @staticmethod
    def _readiness(step: Step, records: dict[str, dict[str, Any]], selected: list[str] | None) -> str:
        if selected is not None and step.name not in selected:
            return "skip"
        for other in sorted(step.depends | ({step.gate[0]} if step.gate else set())):
            record = records.get(other)
            if record is None:
                return "wait"
            if record.get("_skipped"):
                return "skip"
            if record.get("StepStatus") != "Succeeded":
                return "wait"
        if step.gate is not None and records[step.gate[0]].get("_outcome") != step.gate[1]:
            return "skip"
        return "ready"

    def _end(self, row: Any, doc: dict[str, Any], failed: list[str]) -> None:
        if row.status == "Stopping":
            status, reason = "Stopped", None
        elif failed:
            status = "Failed"
            fail_steps = [n for n in failed if doc["_steps"][n].get("_type") == "Fail"]
            reason = doc["_steps"][fail_steps[0]].get("FailureReason") if fail_steps else FAILED
        else:
            status, reason = "Succeeded", None

        def mutate(current: dict[str, Any]) -> str:
            current["PipelineExecutionStatus"] = status
            current["LastModifiedTime"] = resources.now()
            if reason:
                current["FailureReason"] = reason
            return status

        state.edit(row.region, row.name, mutate)
        self._definitions.pop(doc["PipelineExecutionArn"], None)
        log.info("pipeline execution %s: %s", row.name, status)

    # -- caching --------------------------------------------------------------------------------
    def cached(self, region: str, doc: dict[str, Any], step: Step, arguments: dict[str, Any]
               ) -> tuple[str | None, dict[str, Any] | None]:
        """(the cache key, the earlier successful record it hits or None)."""
        config = step.spec.get("CacheConfig") or {}
        key = cache_key(step.type, arguments) if config.get("Enabled") else None
        if key is None:
            return None, None
        window = parse_duration(config["ExpireAfter"]) if config.get("ExpireAfter") else None
        for other in state.executions_of(region, doc["_pipeline"]):
            if other.arn == doc["PipelineExecutionArn"].lower():
                continue
            record = other.document.get("_steps", {}).get(step.name) or {}
            if record.get("_cache_key") != key or record.get("StepStatus") != "Succeeded":
                continue
            ran = record.get("_cache_time") or record.get("EndTime") or 0
            if window is not None and time.time() - ran > window:
                continue
            source = (record.get("CacheHitResult") or {}).get("SourcePipelineExecutionArn") or \
                other.document["PipelineExecutionArn"]
            return key, {**record, "_cache_time": ran, "_source": source}
        return key, None


def _iso(epoch: float) -> str:
    from datetime import datetime, timezone

    return datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")

