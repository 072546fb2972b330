"""Training jobs survive the emulator: re-attached after kill -9, failed if their container is gone."""

from __future__ import annotations

import subprocess

from sagemaker_emulator.testing import EmulatorServer

from .conftest import unique
from .test_training import containers_of, job_request, model_files, wait_done, wait_secondary


def managed_containers(server: EmulatorServer) -> list[str]:
    """Containers of this server only (other emulators may run on the machine)."""
    return subprocess.run(["docker", "ps", "-aq", "--filter", f"label=sagemaker-emulator.owner={server.owner}"],
                          capture_output=True, text=True).stdout.split()


def start_sleeping_job(server: EmulatorServer, image: str, **overrides) -> tuple[str, str]:
    """A job whose container runs (with its SIGTERM handler) until stopped; returns (name, bucket)."""
    sm, s3 = server.client("sagemaker"), server.client("s3")
    bucket, name = unique("restart-bucket"), unique("survivor")
    s3.create_bucket(Bucket=bucket)
    sm.create_training_job(**job_request(name, bucket, image, HyperParameters={"behaviour": "sleep"}, **overrides))
    wait_secondary(sm, name, "Training")
    return name, bucket


def test_reattached_after_kill(tmp_path, training_image):
    with EmulatorServer(data_dir=tmp_path) as server:
        name, bucket = start_sleeping_job(server, training_image, StoppingCondition={"MaxRuntimeInSeconds": 12})
        server.stop(kill=True)
        assert len(containers_of(name)) == 1  # the container kept running without the emulator
        server.start()
        sm, s3 = server.client("sagemaker"), server.client("s3")
        assert bucket in [b["Name"] for b in s3.list_buckets()["Buckets"]]  # S3 is durable: the bucket is back
        job = wait_done(sm, name, timeout=120)
        assert (job["TrainingJobStatus"], job["SecondaryStatus"]) == ("Stopped", "MaxRuntimeExceeded")
        assert "stopped.txt" in model_files(s3, job["ModelArtifacts"]["S3ModelArtifacts"])
    assert managed_containers(server) == []


def test_failed_when_container_is_gone(tmp_path, training_image):
    with EmulatorServer(data_dir=tmp_path) as server:
        name, _ = start_sleeping_job(server, training_image)
        server.stop(kill=True)
        subprocess.run(["docker", "rm", "-f", *managed_containers(server)], capture_output=True)
        server.start()
        job = wait_done(server.client("sagemaker"), name, timeout=30)
        assert job["TrainingJobStatus"] == "Failed"
        assert "containers no longer exist" in job["FailureReason"]


def test_graceful_shutdown_leaves_no_container(tmp_path, training_image):
    with EmulatorServer(data_dir=tmp_path) as server:
        name, _ = start_sleeping_job(server, training_image)
        server.stop()
        assert managed_containers(server) == []
        server.start()
        job = server.client("sagemaker").describe_training_job(TrainingJobName=name)
        assert job["TrainingJobStatus"] == "Failed" and "shut down" in job["FailureReason"]
