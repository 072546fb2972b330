"""A pipeline of 10 chained trivial training steps: the scheduling overhead per step, beyond the jobs' own time.

Each step's job runs the test training image (it exits at once). The overhead is the execution's wall
time (StartPipelineExecution -> Succeeded seen) minus the sum of the jobs' own times (CreationTime ->
end, as their Describe reports), divided by the number of steps; the gap between one step's end and
the next one's start is reported too. Target: <= 0.3 s per step. Needs the Docker engine and base
image (scripts/setup). Prints one JSON document.

    python -m bench.pipeline_overhead [--steps 10] [--runs 1]
"""

from __future__ import annotations

import json
import statistics
import time

from bench.common import ROLE, options
from bench.training_latency import ensure_image
from sagemaker_emulator.testing import EmulatorServer

BUCKET = "bench-pipeline-bucket"
TARGET = 0.3


def _definition(image: str, steps: int) -> str:
    chain = []
    for index in range(steps):
        step = {"Name": f"S{index}", "Type": "Training", "Arguments": {
            "RoleArn": ROLE, "AlgorithmSpecification": {"TrainingImage": image, "TrainingInputMode": "File"},
            "OutputDataConfig": {"S3OutputPath": f"s3://{BUCKET}/out"},
            "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 1},
            "StoppingCondition": {"MaxRuntimeInSeconds": 600}}}
        if index:
            step["DependsOn"] = [f"S{index - 1}"]
        chain.append(step)
    return json.dumps({"Version": "2020-12-01", "Steps": chain})


def _job_seconds(sm, step: dict) -> float:
    arn = step["Metadata"]["TrainingJob"]["Arn"]
    (summary,) = [j for j in sm.list_training_jobs(NameContains=arn.rsplit("/", 1)[1][10:22], MaxResults=100)[
        "TrainingJobSummaries"] if j["TrainingJobArn"] == arn]
    job = sm.describe_training_job(TrainingJobName=summary["TrainingJobName"])
    return job["TrainingEndTime"].timestamp() - job["CreationTime"].timestamp()


def run_once(sm, name: str) -> dict:
    started = time.time()
    arn = sm.start_pipeline_execution(PipelineName=name)["PipelineExecutionArn"]
    while (status := sm.describe_pipeline_execution(PipelineExecutionArn=arn)["PipelineExecutionStatus"]) == \
            "Executing":
        time.sleep(0.02)
    wall = time.time() - started
    if status != "Succeeded":
        raise RuntimeError(f"{arn} ended {status}")
    listed = sorted(sm.list_pipeline_execution_steps(PipelineExecutionArn=arn)["PipelineExecutionSteps"],
                    key=lambda s: s["StartTime"])
    jobs = [_job_seconds(sm, step) for step in listed]
    gaps = [b["StartTime"].timestamp() - a["EndTime"].timestamp() for a, b in zip(listed, listed[1:], strict=False)]
    return {"wall_seconds": round(wall, 3), "job_seconds": round(sum(jobs), 3),
            "overhead_per_step": round((wall - sum(jobs)) / len(listed), 3),
            "median_gap_between_steps": round(statistics.median(gaps), 3) if gaps else 0.0}


def run(steps: int, runs: int) -> dict:
    from bench import training_latency

    ensure_image()
    with EmulatorServer() as server:
        sm = server.client("sagemaker")
        server.client("s3").create_bucket(Bucket=BUCKET)
        name = f"bench-chain-{int(time.time())}"
        sm.create_pipeline(PipelineName=name, PipelineDefinition=_definition(training_latency.IMAGE, steps),
                           RoleArn=ROLE)
        results = [run_once(sm, name) for _ in range(runs)]
    overhead = statistics.median(r["overhead_per_step"] for r in results)
    return {"benchmark": "pipeline_overhead", "steps": steps, "runs": results,
            "overhead_seconds_per_step": overhead, "target_seconds_per_step": TARGET, "met": overhead <= TARGET}


def main() -> None:
    args = options(__doc__, steps=10, runs=1)
    print(json.dumps(run(args.steps, args.runs), indent=2))


if __name__ == "__main__":
    main()
