"""Pipeline definitions for the pipeline tests (fake runtime and real containers): step builders in the
JSON form the SDK emits, and waits."""

from __future__ import annotations

import json
import time
from typing import Any

from .helpers import ROLE, s3_output, wait_until

DONE = ("Succeeded", "Failed", "Stopped", "CompletedWithFailures")


def processing_step(name: str, image: str, bucket: str, *, env: dict | None = None, outputs: list | None = None,
                    **extra: Any) -> dict:
    args = {
        "RoleArn": ROLE, "AppSpecification": {"ImageUri": image},
        "ProcessingResources": {"ClusterConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.large",
                                                  "VolumeSizeInGB": 1}},
        "ProcessingOutputConfig": {"Outputs": outputs or [
            s3_output("report", f"s3://{bucket}/pipe/{name}/report", "/opt/ml/processing/report")]},
        "StoppingCondition": {"MaxRuntimeInSeconds": 300},
    }
    if env:
        args["Environment"] = env
    return {"Name": name, "Type": "Processing", "Arguments": args, **extra}


def training_step(name: str, image: str, bucket: str, hyperparameters: dict | None = None, **extra: Any) -> dict:
    args = {
        "RoleArn": ROLE, "AlgorithmSpecification": {"TrainingImage": image, "TrainingInputMode": "File"},
        "OutputDataConfig": {"S3OutputPath": f"s3://{bucket}/pipe/{name}"},
        "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 1},
        "StoppingCondition": {"MaxRuntimeInSeconds": 300}, "HyperParameters": hyperparameters or {},
    }
    return {"Name": name, "Type": "Training", "Arguments": args, **extra}


def definition(steps: list[dict], parameters: list[dict] | None = None) -> str:
    return json.dumps({"Version": "2020-12-01", "Metadata": {}, "Parameters": parameters or [], "Steps": steps})


def get(path: str) -> dict:
    return {"Get": path}


def wait_execution(sm: Any, arn: str, timeout: float = 60, wanted: tuple[str, ...] = DONE) -> dict:
    def done() -> dict | None:
        described = sm.describe_pipeline_execution(PipelineExecutionArn=arn)
        return described if described["PipelineExecutionStatus"] in wanted else None

    return wait_until(done, timeout, what=lambda: f"execution {arn}: {steps_of(sm, arn)}", interval=0.1)


def steps_of(sm: Any, arn: str) -> dict[str, dict]:
    listed = sm.list_pipeline_execution_steps(PipelineExecutionArn=arn)["PipelineExecutionSteps"]
    return {s["StepName"]: s for s in listed}


def start(sm: Any, pipeline: str, steps: list[dict], parameters: list[dict] | None = None, **start_args: Any) -> str:
    """Create (or update) the pipeline and start an execution; the execution ARN."""
    text = definition(steps, parameters)
    try:
        sm.create_pipeline(PipelineName=pipeline, PipelineDefinition=text, RoleArn=ROLE)
    except sm.exceptions.ClientError as exc:
        if "already exists" not in str(exc):
            raise
        sm.update_pipeline(PipelineName=pipeline, PipelineDefinition=text)
    return sm.start_pipeline_execution(PipelineName=pipeline, **start_args)["PipelineExecutionArn"]


def overlap(a: dict, b: dict) -> bool:
    """Two steps ran at the same time (their Start/End times overlap)."""
    return a["StartTime"] < b["EndTime"] and b["StartTime"] < a["EndTime"]


def seconds(value: Any) -> float:
    return value.timestamp() if hasattr(value, "timestamp") else float(value or time.time())


def job_of(sm: Any, step: dict) -> dict:
    """The Describe response of a step's job (Metadata's ARN keeps the job name's case: its name)."""
    (kind, meta), = step["Metadata"].items()
    noun = {"ProcessingJob": "processing_job", "TrainingJob": "training_job", "TransformJob": "transform_job"}[kind]
    job = getattr(sm, f"describe_{noun}")(**{f"{kind}Name": meta["Arn"].rsplit("/", 1)[1]})
    assert job[f"{kind}Arn"] == meta["Arn"].lower()
    return job
