"""Submit -> Completed for a trivial training job, against `docker run` of the same image.

The baseline runs the same image with the same /opt/ml mounts and config files, directly with
the Docker CLI, in this same run; the difference is what the emulator adds (target < 0.5 s).
Needs the Docker engine and base image (scripts/setup). Prints one JSON document.

    python -m bench.training_latency [--runs 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from bench.common import ROLE
from sagemaker_emulator.testing import EmulatorServer, build_test_image

ROOT = Path(__file__).resolve().parent.parent
IMAGE = ""  # set by ensure_image


def ensure_image() -> None:
    global IMAGE
    subprocess.run([str(ROOT / "scripts" / "setup")], check=True)
    IMAGE = build_test_image("sm-test-training", ROOT / "tests" / "images" / "training")


def docker_run_once(image: str = "", hyperparameters: dict | None = None,
                    mounts: dict[str, str] | None = None, env: dict[str, str] | None = None) -> float:
    """`docker run <image> train` with the config files the emulator writes; `mounts`: host -> container."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        config = root / "input" / "config"
        config.mkdir(parents=True)
        (config / "hyperparameters.json").write_text(json.dumps(hyperparameters or {}))
        (config / "inputdataconfig.json").write_text("{}")
        (config / "resourceconfig.json").write_text(json.dumps({"current_host": "algo-1", "hosts": ["algo-1"]}))
        for sub in ("model", "output"):
            (root / sub).mkdir()
        extra = [arg for host, inside in (mounts or {}).items() for arg in ("-v", f"{host}:{inside}:ro")]
        extra += [arg for key, value in (env or {}).items() for arg in ("-e", f"{key}={value}")]
        started = time.perf_counter()
        subprocess.run(["docker", "run", "--rm", "--hostname", "algo-1", "-v", f"{root}/input:/opt/ml/input", "-v",
                        f"{root}/model:/opt/ml/model", "-v", f"{root}/output:/opt/ml/output", *extra,
                        image or IMAGE, "train"], check=True, capture_output=True, timeout=300)
        return time.perf_counter() - started


def emulator_once(server: EmulatorServer, index: int, image: str = "", hyperparameters: dict | None = None,
                  bucket: str = "bench-output-bucket", poll: float = 0.02) -> float:
    """Submit -> Completed of one training job on `image` (default: the test training image), seen by a client
    describing it every `poll` seconds."""
    sm = server.client("sagemaker")
    name = f"bench-{index}-{int(time.time() * 1000)}"
    started = time.perf_counter()
    extra = {"HyperParameters": hyperparameters(name)} if hyperparameters else {}
    sm.create_training_job(
        TrainingJobName=name, RoleArn=ROLE, **extra,
        AlgorithmSpecification={"TrainingImage": image or IMAGE, "TrainingInputMode": "File"},
        OutputDataConfig={"S3OutputPath": f"s3://{bucket}/out"},
        ResourceConfig={"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 1},
        StoppingCondition={"MaxRuntimeInSeconds": 600})
    while True:
        job = sm.describe_training_job(TrainingJobName=name)
        if job["TrainingJobStatus"] != "InProgress":
            break
        time.sleep(poll)
    elapsed = time.perf_counter() - started
    if job["TrainingJobStatus"] != "Completed":
        raise RuntimeError(f"{name} ended {job['TrainingJobStatus']}: {job.get('FailureReason')}")
    return elapsed


def run(runs: int) -> dict:
    ensure_image()
    docker_run_once()  # warm caches
    with EmulatorServer() as server:
        server.client("s3").create_bucket(Bucket="bench-output-bucket")
        emulator_once(server, -1)
        ours, baseline = [], []
        for i in range(runs):  # interleaved, so drift affects both alike
            baseline.append(docker_run_once())
            ours.append(emulator_once(server, i))
    med_ours, med_base = statistics.median(ours), statistics.median(baseline)
    return {"benchmark": "training_submit_to_completed", "runs": runs,
            "emulator_seconds": {"median": round(med_ours, 3), "all": [round(x, 3) for x in ours]},
            "docker_run_seconds": {"median": round(med_base, 3), "all": [round(x, 3) for x in baseline]},
            "overhead_seconds": round(med_ours - med_base, 3), "target_overhead_seconds": 0.5}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    print(json.dumps(run(parser.parse_args().runs), indent=2))


if __name__ == "__main__":
    main()
