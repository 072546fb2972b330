"""Starting one attempt of one step: evaluate its arguments, then create its job, call its operation,
evaluate its condition, send its callback message or invoke its Lambda function.

A step's record is written `Executing` (with its attempt count) before anything runs, so a crash in
between leaves a record the restart re-runs. Synchronous steps (Model, RegisterModel, Condition, Fail,
EndpointConfig, Endpoint) end inside `launch`; a Lambda step ends on its own thread; job steps and
callback steps end when their event or callback arrives (executor.py).
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from sagemaker_emulator.protocol.errors import AwsError
from sagemaker_emulator.storage import resources

from . import quality_check, state, steps
from .definition import Step
from .expressions import ExpressionError, all_true, evaluate

log = logging.getLogger(__name__)


class Launcher:
    def __init__(self, executor: Any) -> None:
        self.executor = executor
        self.services = executor.services

    def launch(self, region: str, name: str, step_name: str, attempt: int) -> None:
        row = resources.get(state.KIND, region, name)
        if row is None:
            return
        doc = row.document
        step = self.executor.definition(doc).steps[step_name]
        previous = doc.get("_steps", {}).get(step_name, {})
        started = previous.get("StartTime") or resources.now()
        state.edit_step(region, name, step_name, StepStatus="Executing", StartTime=started, AttemptCount=attempt,
                        StepDisplayName=step.spec.get("DisplayName"), StepDescription=step.spec.get("Description"),
                        EndTime=None, FailureReason=None, _type=step.type, _first=previous.get("_first") or started,
                        Metadata=previous.get("Metadata") if step.type == "Callback" else None)
        doc = resources.get(state.KIND, region, name).document  # type: ignore[union-attr]
        try:
            self._start(region, name, doc, step, attempt)
        except ExpressionError as exc:
            self.executor.fail_step(region, name, step.name, str(exc), None)
        except steps.StepFailure as exc:
            self.executor.fail_step(region, name, step.name, str(exc), None)
        except AwsError as err:
            self.executor.fail_step(region, name, step.name, f"{err.code}: {err.message}",
                                    _category(err))
        except Exception as exc:  # a bug of ours must fail the step, not hang the execution
            log.exception("pipeline execution %s: step %s failed inside the emulator", name, step.name)
            self.executor.fail_step(region, name, step.name, f"InternalServerError: {exc}", None)

    def _start(self, region: str, name: str, doc: dict[str, Any], step: Step, attempt: int) -> None:
        executor = self.executor
        execution_id = state.execution_id(doc["PipelineExecutionArn"])
        if step.type in steps.UNSUPPORTED:
            raise steps.StepFailure(steps.UNSUPPORTED[step.type])
        if step.type in steps.JOB_STEPS:
            self._start_job(region, name, doc, step, attempt, execution_id)
            return
        generated = f"pipelines-{execution_id}-{steps.random_token(10).lower()}"  # its ARN's name is this name
        scope = executor.scope(region, doc)
        if step.type == "Condition":
            outcome = all_true(step.arguments.get("Conditions") or [], scope)
            executor.finish_step(region, name, step.name, metadata={"Condition": {"Outcome": str(outcome)}},
                                 properties={"Outcome": outcome}, _outcome=outcome)
        elif step.type == "Fail":
            message = evaluate(step.arguments.get("ErrorMessage", ""), scope)
            message = message if isinstance(message, str) else str(message)
            executor.fail_step(region, name, step.name, message, None, Metadata={"Fail": {"ErrorMessage": message}})
        elif step.type in ("Model", "CreateModel"):
            metadata, props = steps.run_model(self.services, region, evaluate(step.arguments, scope), generated)
            executor.finish_step(region, name, step.name, metadata=metadata, properties=props)
        elif step.type == "RegisterModel":
            metadata, props = steps.run_register(self.services, region, evaluate(step.arguments, scope))
            executor.finish_step(region, name, step.name, metadata=metadata, properties=props)
        elif step.type == "EndpointConfig":
            metadata, props = steps.run_endpoint_config(self.services, region, evaluate(step.arguments, scope),
                                                        generated)
            executor.finish_step(region, name, step.name, metadata=metadata, properties=props)
        elif step.type == "Endpoint":
            metadata, props = steps.run_endpoint(self.services, region, evaluate(step.arguments, scope), generated)
            executor.finish_step(region, name, step.name, metadata=metadata, properties=props)
        elif step.type == "Callback":
            self._start_callback(region, name, doc, step, scope)
        elif step.type == "Lambda":
            event = evaluate(step.arguments, scope)
            threading.Thread(target=self._run_lambda, args=(region, name, step, event), daemon=True,
                             name=f"pipeline-lambda:{step.name}").start()
        else:  # pragma: no cover - definition.parse admits only the types above
            raise steps.StepFailure(f"Step type {step.type} is not supported.")

    def _start_job(self, region: str, name: str, doc: dict[str, Any], step: Step, attempt: int,
                   execution_id: str) -> None:
        executor = self.executor
        job = steps.job_name(step.type, execution_id, step.name, step.arguments, attempt)
        arguments = evaluate(step.arguments, executor.scope(region, doc, job, step.type))
        key, hit = executor.cached(region, doc, step, arguments)
        if hit is not None:
            executor.finish_step(region, name, step.name, metadata=hit.get("Metadata"), properties=hit.get("_props"),
                                 CacheHitResult={"SourcePipelineExecutionArn": hit["_source"]}, _cache_key=key,
                                 _cache_time=hit["_cache_time"])
            return
        kind = steps.JOB_STEPS[step.type]
        experiment = doc.get("PipelineExperimentConfig")
        if experiment and not steps.ensure_trial(self.services, region, experiment):
            experiment = None
        request = steps.job_request(step.type, arguments, job, experiment)
        check = None
        if step.type == "QualityCheck":
            scope = executor.scope(region, doc, job, step.type)
            request, check = quality_check.prepare(self.services, region, step.spec,
                                                   lambda value: evaluate(value, scope), request)
        out = steps.call(self.services, kind.create, request, region)
        arn = next(v for k, v in out.items() if k.endswith("Arn"))
        record = {"_type": step.type, "_job": job}
        executor.own_job(record, region, name, step.name)
        metadata = steps.job_metadata(step.type, arn, job)
        if check is not None:
            metadata = quality_check.metadata(check, metadata["QualityCheck"]["Arn"])
        state.edit_step(region, name, step.name, _job=job, Metadata=metadata, _cache_key=key, CacheHitResult=None,
                        _check=check)
        job_row = resources.get(kind.resource, region, job)
        if job_row is not None and job_row.status in ("Completed", "Failed", "Stopped"):
            executor._job_ended(region, name, step.name)  # it ended before we learned its name

    def _start_callback(self, region: str, name: str, doc: dict[str, Any], step: Step, scope: Any) -> None:
        record = doc["_steps"].get(step.name, {})
        if record.get("_token"):  # a restart: the message was sent, the token still stands
            return
        token = steps.random_token(10)
        queue = step.spec["SqsQueueUrl"]
        body = {"token": token, "pipelineExecutionArn": doc["PipelineExecutionArn"],
                "arguments": evaluate(step.arguments, scope), "status": "Executing"}
        metadata = {"Callback": {"CallbackToken": token, "SqsQueueUrl": queue}}
        state.edit_step(region, name, step.name, _token=token, Metadata=metadata)
        try:
            steps.send_callback(self.services, region, queue, body)
        except Exception as exc:
            state.edit_step(region, name, step.name, _token=None)
            raise steps.StepFailure(f"Could not send the callback message to {queue}: {exc}") from None

    def _run_lambda(self, region: str, name: str, step: Step, event: Any) -> None:
        try:
            metadata, props = steps.run_lambda(self.services, region, step.spec["FunctionArn"], event,
                                               step.spec.get("OutputParameters") or [])
        except steps.StepFailure as exc:
            self.executor.fail_step(region, name, step.name, str(exc), None)
        except AwsError as err:
            self.executor.fail_step(region, name, step.name, f"{err.code}: {err.message}", _category(err))
        except Exception as exc:
            log.exception("pipeline execution %s: Lambda step %s failed", name, step.name)
            self.executor.fail_step(region, name, step.name, f"The Lambda step failed: {exc}", None)
        else:
            self.executor.finish_step(region, name, step.name, metadata=metadata, properties=props)
        self.executor.advance(region, name)


def _category(err: AwsError) -> str | None:
    from .executor import error_category

    return error_category(err)
