"""ListTrainingJobs and DescribeTrainingJob latency with 10,000 training job records, vs moto's server.

The emulator's records are written into its SQLite data dir through an in-process
CreateTrainingJob call (with the engine that would start containers left out), then marked
Completed; moto's server gets the same jobs through its API. The same boto3 client code then
times both (targets: ListTrainingJobs page p50 < 20 ms, DescribeTrainingJob p50 < 5 ms).
Prints one JSON document.

    python -m bench.job_records [--jobs 10000] [--calls 300]
"""

from __future__ import annotations

import json
import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

from bench.common import ROLE, options, sagemaker_client
from sagemaker_emulator.testing import EmulatorServer


def job_params(index: int) -> dict:
    return {
        "TrainingJobName": f"bench-job-{index:05d}", "RoleArn": ROLE,
        "AlgorithmSpecification": {"TrainingImage": "bench:latest", "TrainingInputMode": "File"},
        "HyperParameters": {"epochs": "3", "lr": "0.1"},
        "InputDataConfig": [{"ChannelName": "train", "DataSource": {"S3DataSource": {
            "S3DataType": "S3Prefix", "S3Uri": "s3://bench-bucket/train/"}}}],
        "OutputDataConfig": {"S3OutputPath": "s3://bench-bucket/output"},
        "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 1},
        "StoppingCondition": {"MaxRuntimeInSeconds": 600},
    }


def populate_emulator(data_dir: str, count: int) -> None:
    """Records through CreateTrainingJob (an in-process call: the wire's validation and handler, with
    the engine that would start containers left out), in one transaction, then Completed the way
    the training engine records it."""
    from sagemaker_emulator.config import Config
    from sagemaker_emulator.jobs.records import JobRecord
    from sagemaker_emulator.services import Services

    services = Services(Config(data_dir=data_dir))
    services.training.submit = lambda region, name: None  # the records only: nothing runs
    try:
        with services.db.atomic():
            for index in range(count):
                services.sagemaker.call("CreateTrainingJob", job_params(index), region="us-east-1")
                JobRecord("training-job", "us-east-1", f"bench-job-{index:05d}", "TrainingJobStatus").edit(
                    lambda d: d.update(TrainingJobStatus="Completed", SecondaryStatus="Completed"))
    finally:
        services.close()


def populate_moto(url: str, count: int) -> None:
    sm = sagemaker_client(url, pool=16)
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda i: sm.create_training_job(**job_params(i)), range(count)))


def timed(call, calls: int) -> dict:
    for _ in range(5):
        call()
    latencies = []
    for _ in range(calls):
        started = time.perf_counter()
        call()
        latencies.append(time.perf_counter() - started)
    latencies.sort()
    return {"p50_ms": round(statistics.median(latencies) * 1000, 2),
            "p99_ms": round(latencies[int(len(latencies) * 0.99) - 1] * 1000, 2), "calls": calls}


def measure(url: str, jobs: int, calls: int) -> dict:
    sm = sagemaker_client(url, pool=16)
    middle = f"bench-job-{jobs // 2:05d}"
    pages = iter(range(10**9))
    token: dict = {}

    def list_page() -> None:  # walk the list page by page (a fresh walk when it ends)
        next(pages)
        response = sm.list_training_jobs(MaxResults=100, **token)
        token.clear()
        if response.get("NextToken"):
            token["NextToken"] = response["NextToken"]
        assert len(response["TrainingJobSummaries"]) == 100 or not response.get("NextToken")

    return {
        "ListTrainingJobs (100 per page)": timed(list_page, calls),
        "ListTrainingJobs StatusEquals+NameContains": timed(
            lambda: sm.list_training_jobs(StatusEquals="Completed", NameContains="job-0999", MaxResults=100), calls),
        "DescribeTrainingJob": timed(lambda: sm.describe_training_job(TrainingJobName=middle), calls),
    }


def run(jobs: int, calls: int) -> dict:
    from moto.server import ThreadedMotoServer

    result: dict = {"benchmark": "job_records", "jobs": jobs,
                    "targets": {"ListTrainingJobs p50_ms": 20, "DescribeTrainingJob p50_ms": 5}}
    with tempfile.TemporaryDirectory(prefix="bench-records-") as data_dir:
        started = time.perf_counter()
        populate_emulator(data_dir, jobs)
        result["emulator_populate_s"] = round(time.perf_counter() - started, 1)
        moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        moto.start()
        try:
            host, port = moto.get_host_and_port()
            moto_url = f"http://{host}:{port}"
            started = time.perf_counter()
            populate_moto(moto_url, jobs)
            result["moto_populate_s"] = round(time.perf_counter() - started, 1)
            with EmulatorServer(data_dir=data_dir) as server:
                ours = measure(server.endpoint_url, jobs, calls)
            theirs = measure(moto_url, jobs, calls)
        finally:
            moto.stop()
    result["operations"] = {name: {"emulator": ours[name], "moto_server": theirs[name],
                                   "p50_ratio_vs_moto": round(ours[name]["p50_ms"] / theirs[name]["p50_ms"], 3)}
                            for name in ours}
    return result


def main() -> None:
    args = options(__doc__, jobs=10000, calls=300)
    print(json.dumps(run(args.jobs, args.calls), indent=2))


if __name__ == "__main__":
    main()
