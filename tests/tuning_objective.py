"""The objective the tuning tests' training jobs report: a known function of their hyperparameters.

`objective(x, y, epoch)` approaches `peak(x, y) = 10 - (x - 3)^2 - (y - 0.25)^2 * 4` as epochs go
on (maximise it); `optimizer=adam` adds 1. tests/images/training/train (behaviour=objective) and the
fake-runtime scripts print it per epoch as `epoch=<n> objective=<value>`.
"""

from __future__ import annotations

import json
from pathlib import Path

from sagemaker_emulator.runtime.fake import Script

METRIC = {"Name": "objective", "Regex": r"objective=([-0-9.eE]+)"}


def peak(hp: dict[str, str]) -> float:
    x, y = float(hp.get("x", 0)), float(hp.get("y", 0))
    return 10 - (x - 3) ** 2 - (y - 0.25) ** 2 * 4 + (1 if hp.get("optimizer") == "adam" else 0)


def value(hp: dict[str, str], epoch: int, epochs: int) -> float:
    """Climbs to `peak` at the last epoch."""
    return peak(hp) - (epochs - 1 - epoch) * 0.5


def fake_script(epochs: int = 3, per_epoch: float = 0.05):
    """A FakeRuntime `script_for`: reads the job's hyperparameters.json and prints the objective per epoch."""

    def script_for(spec) -> Script:
        config = next(Path(host) for host, (path, _) in spec.mounts.items() if path == "/opt/ml/input")
        hp = json.loads((config / "config" / "hyperparameters.json").read_text())
        lines = [((epoch + 1) * per_epoch, f"epoch={epoch} objective={value(hp, epoch, epochs):.6f}", "stdout")
                 for epoch in range(epochs)]
        return Script(lines=lines, after=(epochs + 1) * per_epoch)

    return script_for


def tuning_request(name: str, bucket: str, image: str, *, strategy: str = "Random", max_jobs: int | None = 8,
                   parallel: int = 2, ranges: dict | None = None, static: dict | None = None, **config) -> dict:
    """A CreateHyperParameterTuningJob request maximising `objective` over x in [0, 6] (and y, optimizer)."""
    limits = {"MaxParallelTrainingJobs": parallel}
    if max_jobs is not None:
        limits["MaxNumberOfTrainingJobs"] = max_jobs
    return {
        "HyperParameterTuningJobName": name,
        "HyperParameterTuningJobConfig": {
            "Strategy": strategy, "ResourceLimits": limits,
            "HyperParameterTuningJobObjective": {"Type": "Maximize", "MetricName": "objective"},
            "ParameterRanges": ranges if ranges is not None else {
                "IntegerParameterRanges": [{"Name": "x", "MinValue": "0", "MaxValue": "6"}],
                "ContinuousParameterRanges": [{"Name": "y", "MinValue": "0", "MaxValue": "1"}]},
            **config,
        },
        "TrainingJobDefinition": {
            "StaticHyperParameters": {"behaviour": "objective", **(static or {})},
            "AlgorithmSpecification": {"TrainingImage": image, "TrainingInputMode": "File",
                                       "MetricDefinitions": [METRIC]},
            "RoleArn": "arn:aws:iam::123456789012:role/SageMakerRole",
            "OutputDataConfig": {"S3OutputPath": f"s3://{bucket}/tuning"},
            "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 1},
            "StoppingCondition": {"MaxRuntimeInSeconds": 600},
        },
    }


def finished(sm, name: str, timeout: float = 240) -> dict:
    """DescribeHyperParameterTuningJob once the tuning job has ended."""
    from .helpers import wait_until

    return wait_until(lambda: (d := sm.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName=name))[
        "HyperParameterTuningJobStatus"] in ("Completed", "Failed", "Stopped") and d, timeout, f"tuning job {name}")


def children(sm, name: str) -> list[dict]:
    """Every ListTrainingJobsForHyperParameterTuningJob summary, all pages."""
    pages = sm.get_paginator("list_training_jobs_for_hyper_parameter_tuning_job").paginate(
        HyperParameterTuningJobName=name)
    return [s for page in pages for s in page["TrainingJobSummaries"]]


def max_concurrency(jobs: list[dict]) -> int:
    """The most jobs running at once, from their (TrainingStartTime, TrainingEndTime)."""
    edges = []
    for job in jobs:
        edges += [(job["TrainingStartTime"].timestamp(), 1), (job["TrainingEndTime"].timestamp(), -1)]
    running = most = 0
    for _, step in sorted(edges, key=lambda e: (e[0], e[1])):
        running += step
        most = max(most, running)
    return most


def objective_lines(logs, job: str) -> list[str]:
    """The `objective=` lines training job `job` has logged so far (one per epoch it reached)."""
    try:
        events = logs.filter_log_events(logGroupName="/aws/sagemaker/TrainingJobs", logStreamNamePrefix=f"{job}/")
    except logs.exceptions.ResourceNotFoundException:  # no job has logged anything yet
        return []
    return [e["message"] for e in events["events"] if "objective=" in e["message"]]


def reporting(logs, job: str) -> bool:
    """Whether training job `job` has logged an objective value: its program runs (and handles SIGTERM)."""
    return bool(objective_lines(logs, job))
