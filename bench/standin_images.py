"""The stand-ins for AWS's framework images: first build time and size, and what a job on one costs.

1. Build time and size of each stand-in (removed first, so the figure is a first build on this
   machine with its wheel cache and Docker layer cache as they are; `--cold-wheels` empties the wheel
   cache too, so PyPI downloads are counted).
2. Submit -> Completed of a trivial script-mode job on the scikit-learn stand-in (the SDK's
   hyperparameters, the toolkit fetching sourcedir.tar.gz from the emulator's S3) against a bare
   `docker run` of the same image, config files and script, fetching it from the same S3 with the
   same environment (target: <= 1 s more).

    python -m bench.standin_images [--standins sklearn:1.2-1 xgboost:1.7-1] [--runs 3] [--no-build]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import statistics
import sys
import tarfile
import time
from pathlib import Path

from bench.training_latency import docker_run_once, emulator_once
from sagemaker_emulator.runtime import framework_images
from sagemaker_emulator.runtime.docker_engine import DockerRuntime
from sagemaker_emulator.runtime.standin_builder import builder_for, cache_dir
from sagemaker_emulator.testing import EmulatorServer

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = "print('trivial script-mode job')\n"
URI = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3"


def say(text: str) -> None:
    print(f"bench.standin_images: {text}", file=sys.stderr, flush=True)


def build_figures(names: list[str], cold_wheels: bool) -> dict:
    builder = builder_for(DockerRuntime(owner="bench"))
    if cold_wheels:
        shutil.rmtree(cache_dir() / "wheels", ignore_errors=True)
    out = {}
    for name in names:
        standin = framework_images.standin_named(name)
        builder.remove(standin)
        say(f"building {standin.image}")
        started = time.perf_counter()
        builder.build_now(standin, lambda _line: None)
        seconds = time.perf_counter() - started
        out[standin.image] = {"build_seconds": round(seconds, 1), "size_mb": round((builder.size(standin) or 0) / 1e6)}
    return out


def sourcedir() -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        info = tarfile.TarInfo("train.py")
        info.size = len(SCRIPT)
        tar.addfile(info, io.BytesIO(SCRIPT.encode()))
    return buffer.getvalue()


def hyperparameters(submit: str, name: str) -> dict[str, str]:
    values = {"sagemaker_program": "train.py", "sagemaker_submit_directory": submit,
              "sagemaker_container_log_level": 20, "sagemaker_job_name": name, "sagemaker_region": "us-east-1"}
    return {k: json.dumps(v) for k, v in values.items()}


def overhead(runs: int, poll: float) -> dict:
    builder = builder_for(DockerRuntime(owner="bench"))
    standin = framework_images.standin_named(URI)
    builder.ensure(standin)
    def in_s3(name: str) -> dict[str, str]:
        return hyperparameters("s3://bench-standin/code/sourcedir.tar.gz", name)

    with EmulatorServer() as server:
        s3 = server.client("s3")
        s3.create_bucket(Bucket="bench-standin")
        s3.put_object(Bucket="bench-standin", Key="code/sourcedir.tar.gz", Body=sourcedir())
        # the baseline container fetches the same sourcedir.tar.gz from the same S3, as the job's does
        found = [line.rsplit(" ", 1)[-1] for line in server.output if "job containers reach the emulator at" in line]
        if not found:
            raise RuntimeError("the emulator has no address for containers (Docker bridge missing?)")
        env = {"AWS_ENDPOINT_URL": found[-1], "AWS_REGION": "us-east-1", "AWS_DEFAULT_REGION": "us-east-1",
               "AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench"}
        docker_run_once(standin.image, in_s3("bench-docker"), env=env)  # warm caches
        emulator_once(server, -1, URI, in_s3, "bench-standin")
        ours, baseline, loads = [], [], []
        for i in range(runs):  # interleaved, so drift affects both alike
            loads.append(os.getloadavg()[0])
            baseline.append(docker_run_once(standin.image, in_s3(f"bench-docker-{i}"), env=env))
            ours.append(emulator_once(server, i, URI, in_s3, "bench-standin", poll=poll))
        steps = own_steps(server.client("sagemaker"), baseline)
    med_ours, med_base = statistics.median(ours), statistics.median(baseline)
    # the machine may be shared: the load at each pair, and the median of the pairs' differences (a pair
    # runs back to back, so it sees about the same load), beside the difference of the medians
    return {"image": URI, "runs": runs, "cpus": os.cpu_count(),
            "emulator_seconds": {"median": round(med_ours, 3), "all": [round(x, 3) for x in ours]},
            "docker_run_seconds": {"median": round(med_base, 3), "all": [round(x, 3) for x in baseline]},
            "overhead_seconds": round(med_ours - med_base, 3),
            "pairwise_overhead_median_seconds": round(statistics.median(
                o - b for o, b in zip(ours, baseline, strict=True)), 3),
            "load_average_1min": {"median": round(statistics.median(loads), 2), "all": [round(x, 2) for x in loads],
                                  "after": round(os.getloadavg()[0], 2)},
            "client_poll_seconds": poll, "server_side": steps, "target_overhead_seconds": 1.0}


def own_steps(sm, baseline: list[float]) -> dict:
    """From each measured job's SecondaryStatusTransitions (server-side times, so a slow `--poll` keeps the
    client's describe loop from competing for the CPU without blurring the figure): submit -> Completed,
    submit -> Training (staging, container create and start) and Training's end -> Completed (collect,
    upload), the last two being the parts a bare `docker run` has not."""
    total, before, after = [], [], []
    for i in range(len(baseline)):
        name = sm.list_training_jobs(NameContains=f"bench-{i}-")["TrainingJobSummaries"][0]["TrainingJobName"]
        job = sm.describe_training_job(TrainingJobName=name)
        marks = {t["Status"]: t for t in job["SecondaryStatusTransitions"]}
        total.append((marks["Completed"]["StartTime"] - job["CreationTime"]).total_seconds())
        before.append((marks["Training"]["StartTime"] - job["CreationTime"]).total_seconds())
        after.append((marks["Completed"]["StartTime"] - marks["Training"]["EndTime"]).total_seconds())

    return {"submit_to_completed_median_seconds": round(statistics.median(total), 3),
            "overhead_seconds": round(statistics.median(total) - statistics.median(baseline), 3),
            "pairwise_overhead_median_seconds": round(statistics.median(
                t - b for t, b in zip(total, baseline, strict=True)), 3),
            "submit_to_training_median_seconds": round(statistics.median(before), 3),
            "training_end_to_completed_median_seconds": round(statistics.median(after), 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--standins", nargs="*", default=["sklearn:1.2-1", "xgboost:1.7-1"])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--no-build", action="store_true", help="skip the build figures")
    parser.add_argument("--cold-wheels", action="store_true", help="empty the wheel cache first")
    parser.add_argument("--poll", type=float, default=0.02, help="the client's describe interval (seconds)")
    args = parser.parse_args()
    os.environ.setdefault("SAGEMAKER_SUPPRESS_V2_WARNING", "1")
    result = {"benchmark": "standin_images",
              "builds": {} if args.no_build else build_figures(args.standins, args.cold_wheels)}
    result["script_mode_job"] = overhead(args.runs, args.poll)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
