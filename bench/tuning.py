"""A tuning job of 12 one-second training jobs, 4 at a time, against one such training job alone.

With 4 in parallel, 12 jobs are 3 waves of one job; the target is a wall time of at most
1.2 x (3 x the single job's submit->Completed) + 2 s, the single job measured in this same run.
Needs the Docker engine and base image (scripts/setup). Prints one JSON document.

    python -m bench.tuning [--jobs 12] [--parallel 4]
"""

from __future__ import annotations

import json
import statistics
import time

from bench.common import ROLE, options
from bench.training_latency import ensure_image
from sagemaker_emulator.testing import EmulatorServer

BUCKET = "bench-tuning-bucket"
HYPERPARAMETERS = {"behaviour": "objective", "epochs": "1", "epoch_seconds": "1"}
METRIC = {"Name": "objective", "Regex": r"objective=([-0-9.eE]+)"}


def _image() -> str:
    from bench import training_latency

    ensure_image()
    return training_latency.IMAGE


def _definition(image: str) -> dict:
    return {"AlgorithmSpecification": {"TrainingImage": image, "TrainingInputMode": "File",
                                       "MetricDefinitions": [METRIC]},
            "RoleArn": ROLE, "OutputDataConfig": {"S3OutputPath": f"s3://{BUCKET}/out"},
            "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 1},
            "StoppingCondition": {"MaxRuntimeInSeconds": 600}}


def single_job(sm, image: str, index: int) -> float:
    name = f"bench-one-{index}-{int(time.time() * 1000)}"
    definition = _definition(image)
    started = time.perf_counter()
    sm.create_training_job(TrainingJobName=name, HyperParameters={**HYPERPARAMETERS, "x": "3"}, **definition)
    while (status := sm.describe_training_job(TrainingJobName=name)["TrainingJobStatus"]) == "InProgress":
        time.sleep(0.02)
    if status != "Completed":
        raise RuntimeError(f"{name} ended {status}")
    return time.perf_counter() - started


def tuning_job(sm, image: str, jobs: int, parallel: int) -> float:
    name = f"bench-hpo-{int(time.time() * 1000) % 10**9}"
    started = time.perf_counter()
    sm.create_hyper_parameter_tuning_job(
        HyperParameterTuningJobName=name,
        HyperParameterTuningJobConfig={
            "Strategy": "Random", "RandomSeed": 1,
            "ResourceLimits": {"MaxNumberOfTrainingJobs": jobs, "MaxParallelTrainingJobs": parallel},
            "HyperParameterTuningJobObjective": {"Type": "Maximize", "MetricName": "objective"},
            "ParameterRanges": {"IntegerParameterRanges": [{"Name": "x", "MinValue": "0", "MaxValue": "6"}]}},
        TrainingJobDefinition={"StaticHyperParameters": HYPERPARAMETERS, **_definition(image)})
    while (job := sm.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName=name))[
            "HyperParameterTuningJobStatus"] == "InProgress":
        time.sleep(0.05)
    if job["HyperParameterTuningJobStatus"] != "Completed" or job["TrainingJobStatusCounters"]["Completed"] != jobs:
        raise RuntimeError(f"{name} ended {job['HyperParameterTuningJobStatus']}: {job['TrainingJobStatusCounters']}")
    return time.perf_counter() - started


def run(jobs: int, parallel: int, runs: int) -> dict:
    image = _image()
    with EmulatorServer() as server:
        sm = server.client("sagemaker")
        server.client("s3").create_bucket(Bucket=BUCKET)
        single_job(sm, image, -1)  # warm up
        singles = [single_job(sm, image, i) for i in range(3)]
        tunings = [tuning_job(sm, image, jobs, parallel) for _ in range(runs)]
    single = statistics.median(singles)
    waves = -(-jobs // parallel)
    target = 1.2 * (waves * single) + 2
    wall = statistics.median(tunings)
    return {"benchmark": "tuning_wall_time", "jobs": jobs, "parallel": parallel,
            "single_job_seconds": {"median": round(single, 3), "all": [round(x, 3) for x in singles]},
            "tuning_seconds": {"median": round(wall, 3), "all": [round(x, 3) for x in tunings]},
            "target_seconds": round(target, 3), "met": wall <= target}


def main() -> None:
    args = options(__doc__, jobs=12, parallel=4, runs=1)
    print(json.dumps(run(args.jobs, args.parallel, args.runs), indent=2))


if __name__ == "__main__":
    main()
