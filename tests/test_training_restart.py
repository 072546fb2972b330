"""Training jobs survive the emulator: re-attached after kill -9, failed if their container is gone."""

from __future__ import annotations

import subprocess

from emulator.testing import EmulatorServer

from .conftest import unique
from .test_training import containers_of, job_request, model_files, wait_done, wait_secondary


def test_reattached_after_kill(tmp_path, training_image):
    with EmulatorServer(data_dir=tmp_path) as server:
        sm, s3 = server.client("sagemaker"), server.client("s3")
        bucket = unique("restart-bucket")
        s3.create_bucket(Bucket=bucket)
        name = unique("survivor")
        sm.create_training_job(**job_request(name, bucket, training_image, HyperParameters={"behaviour": "sleep"},
                                             StoppingCondition={"MaxRuntimeInSeconds": 12}))
        wait_secondary(sm, name, "Training")
        server.stop(kill=True)
        # The container kept running without the emulator.
        assert len(containers_of(name)) == 1
        server.start()
        sm = server.client("sagemaker")
        s3 = server.client("s3")
        s3.create_bucket(Bucket=bucket)  # moto's S3 lives in memory: recreate for the upload
        job = wait_done(sm, name, timeout=120)
        assert (job["TrainingJobStatus"], job["SecondaryStatus"]) == ("Stopped", "MaxRuntimeExceeded")
        assert "stopped.txt" in model_files(s3, job["ModelArtifacts"]["S3ModelArtifacts"])
    leftover = subprocess.run(["docker", "ps", "-aq", "--filter", "label=sagemaker-emulator.managed=true"],
                              capture_output=True, text=True).stdout.split()
    assert leftover == []


def test_failed_when_container_is_gone(tmp_path, training_image):
    with EmulatorServer(data_dir=tmp_path) as server:
        sm, s3 = server.client("sagemaker"), server.client("s3")
        bucket = unique("gone-bucket")
        s3.create_bucket(Bucket=bucket)
        name = unique("orphan")
        sm.create_training_job(**job_request(name, bucket, training_image, HyperParameters={"behaviour": "sleep"}))
        wait_secondary(sm, name, "Training")
        server.stop(kill=True)
        subprocess.run(["docker", "rm", "-f", *subprocess.run(
            ["docker", "ps", "-aq", "--filter", "label=sagemaker-emulator.managed=true"],
            capture_output=True, text=True).stdout.split()], capture_output=True)
        server.start()
        job = wait_done(server.client("sagemaker"), name, timeout=30)
        assert job["TrainingJobStatus"] == "Failed"
        assert "containers no longer exist" in job["FailureReason"]


def test_graceful_shutdown_leaves_no_container(tmp_path, training_image):
    with EmulatorServer(data_dir=tmp_path) as server:
        sm, s3 = server.client("sagemaker"), server.client("s3")
        bucket = unique("shutdown-bucket")
        s3.create_bucket(Bucket=bucket)
        name = unique("interrupted")
        sm.create_training_job(**job_request(name, bucket, training_image, HyperParameters={"behaviour": "sleep"}))
        wait_secondary(sm, name, "Training")
        server.stop()
        leftover = subprocess.run(["docker", "ps", "-aq", "--filter", "label=sagemaker-emulator.managed=true"],
                                  capture_output=True, text=True).stdout.split()
        assert leftover == []
        server.start()
        job = server.client("sagemaker").describe_training_job(TrainingJobName=name)
        assert job["TrainingJobStatus"] == "Failed" and "shut down" in job["FailureReason"]
