"""Training jobs survive the emulator: re-attached after kill -9, failed if their container is gone."""

from __future__ import annotations

import subprocess

from sagemaker_emulator.testing import EmulatorServer

from .helpers import managed_containers, model_files, start_sleeping_job, training_containers, wait_training


def test_reattached_after_kill(tmp_path, training_image):
    with EmulatorServer(data_dir=tmp_path) as server:
        name, bucket = start_sleeping_job(server, training_image, StoppingCondition={"MaxRuntimeInSeconds": 12})
        server.stop(kill=True)
        assert len(training_containers(name)) == 1  # the container kept running without the emulator
        server.start()
        sm, s3 = server.client("sagemaker"), server.client("s3")
        assert bucket in [b["Name"] for b in s3.list_buckets()["Buckets"]]  # S3 is durable: the bucket is back
        job = wait_training(sm, name, timeout=120)
        assert (job["TrainingJobStatus"], job["SecondaryStatus"]) == ("Stopped", "MaxRuntimeExceeded")
        assert "stopped.txt" in model_files(s3, job["ModelArtifacts"]["S3ModelArtifacts"])
    assert managed_containers(server) == []


def test_failed_when_container_is_gone(tmp_path, training_image):
    with EmulatorServer(data_dir=tmp_path) as server:
        name, _ = start_sleeping_job(server, training_image)
        server.stop(kill=True)
        subprocess.run(["docker", "rm", "-f", *managed_containers(server)], capture_output=True)
        server.start()
        job = wait_training(server.client("sagemaker"), name, timeout=30)
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
