"""Engine logic on FakeRuntime (no Docker): a training job end to end, in both workspaces."""

from __future__ import annotations

import io
import tarfile
import time

import pytest

from sagemaker_emulator.runtime.fake import FakeRuntime, Script
from sagemaker_emulator.runtime.interface import ContainerRuntime
from sagemaker_emulator.testing.inprocess import InProcessServer

ROLE = "arn:aws:iam::123456789012:role/SageMakerRole"


def wait_done(sm, name: str, timeout: float = 30) -> dict:
    deadline = time.time() + timeout
    while True:
        job = sm.describe_training_job(TrainingJobName=name)
        if job["TrainingJobStatus"] in ("Completed", "Failed", "Stopped"):
            return job
        assert time.time() < deadline, f"{name} still {job['TrainingJobStatus']}"
        time.sleep(0.05)


def train(server: InProcessServer, name: str, image: str, **overrides) -> dict:
    sm, s3 = server.client("sagemaker"), server.client("s3")
    s3.create_bucket(Bucket="fake-out")
    request = {"TrainingJobName": name, "RoleArn": ROLE,
               "AlgorithmSpecification": {"TrainingImage": image, "TrainingInputMode": "File"},
               "OutputDataConfig": {"S3OutputPath": "s3://fake-out/output"},
               "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 1},
               "StoppingCondition": {"MaxRuntimeInSeconds": 600}, **overrides}
    sm.create_training_job(**request)
    return wait_done(sm, name)


@pytest.fixture(params=["bind", "copy"])
def server(request, tmp_path):
    fake = FakeRuntime(scripts={
        "ok": Script(lines=["epoch 1", "loss=0.25"], after=0.1, files={"/opt/ml/model/weights.txt": "w=1"}),
        "bad": Script(lines=["starting", "Traceback: boom"], after=0.1, exit_code=3),
        "noted": Script(after=0.1, exit_code=1, files={"/opt/ml/output/failure": "bad hyperparameter"}),
        "stubborn": Script(lines=["forever"], after=None, on_term=None),
        "server": Script(after=None, http=lambda method, path, body: (200, b"echo:" + body if path == "/invocations"
                                                                         else b"")),
    })
    assert isinstance(fake, ContainerRuntime)
    with InProcessServer(fake, data_dir=tmp_path, workspace=request.param, stop_grace_seconds=0.5) as srv:
        yield srv
    assert fake.list_managed(fake.owner) == [] and fake.volumes == {} and fake.networks == {}


def test_completed_job_uploads_what_the_container_wrote(server):
    job = train(server, "fake-ok", "ok")
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    body = server.client("s3").get_object(Bucket="fake-out", Key="output/fake-ok/output/model.tar.gz")["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(body)) as tar:
        assert tar.extractfile("weights.txt").read() == b"w=1"
    container = next(iter(server.runtime.containers.values()))
    assert container.spec.environment["TRAINING_JOB_NAME"] == "fake-ok"
    if server.services.workspace.kind == "copy":  # no host path reached the engine; /opt/ml was copied in
        assert container.spec.mounts == {} and container.spec.volumes == ["/opt/ml"]
        assert "/opt/ml/input/config/hyperparameters.json" in container.files


def test_failure_reason_from_the_failure_file_or_the_last_log_lines(server):
    assert train(server, "fake-noted", "noted")["FailureReason"] == "AlgorithmError: bad hyperparameter"
    reason = train(server, "fake-bad", "bad")["FailureReason"]
    assert reason.startswith("AlgorithmError: The training container on algo-1 exited with code 3")
    assert "starting | Traceback: boom" in reason


def test_stop_kills_after_the_grace_period(server):
    sm = server.client("sagemaker")
    server.client("s3").create_bucket(Bucket="fake-out")
    sm.create_training_job(TrainingJobName="fake-stop", RoleArn=ROLE,
                           AlgorithmSpecification={"TrainingImage": "stubborn", "TrainingInputMode": "File"},
                           OutputDataConfig={"S3OutputPath": "s3://fake-out/output"},
                           ResourceConfig={"InstanceType": "ml.m5.large", "InstanceCount": 2, "VolumeSizeInGB": 1},
                           StoppingCondition={"MaxRuntimeInSeconds": 600})
    deadline = time.time() + 10
    while len([c for c in server.runtime.containers.values() if c.state == "running"]) < 2:
        assert time.time() < deadline
        time.sleep(0.05)
    assert server.runtime.networks  # two hosts: a private network
    sm.stop_training_job(TrainingJobName="fake-stop")
    job = wait_done(sm, "fake-stop")
    assert job["TrainingJobStatus"] == "Stopped"
    assert all(c.signals == ["SIGTERM", "SIGKILL"] for c in server.runtime.containers.values())


def test_pipe_mode_is_refused_by_the_copy_workspace(server):
    server.client("s3").create_bucket(Bucket="fake-in")
    server.client("s3").put_object(Bucket="fake-in", Key="train/a.csv", Body=b"1\n")
    job = train(server, "fake-pipe", "ok", InputDataConfig=[{
        "ChannelName": "train", "InputMode": "Pipe",
        "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "s3://fake-in/train/"}}}])
    if server.services.workspace.kind == "copy":
        assert job["TrainingJobStatus"] == "Failed" and "Pipe input mode" in job["FailureReason"]
        assert job["FailureReason"].startswith("ClientError:")
        assert not server.runtime.containers  # refused before any container
    else:
        assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")


def test_endpoint_serves_through_the_scripted_container(server):
    sm, runtime = server.client("sagemaker"), server.client("sagemaker-runtime")
    sm.create_model(ModelName="fake-model", ExecutionRoleArn=ROLE, PrimaryContainer={"Image": "server"})
    sm.create_endpoint_config(EndpointConfigName="fake-config", ProductionVariants=[{
        "VariantName": "v", "ModelName": "fake-model", "InstanceType": "ml.m5.large", "InitialInstanceCount": 1}])
    sm.create_endpoint(EndpointName="fake-endpoint", EndpointConfigName="fake-config")
    sm.get_waiter("endpoint_in_service").wait(EndpointName="fake-endpoint", WaiterConfig={"Delay": 0.2})
    reply = runtime.invoke_endpoint(EndpointName="fake-endpoint", Body=b"hi", ContentType="text/plain")
    assert reply["Body"].read() == b"echo:hi"
    sm.delete_endpoint(EndpointName="fake-endpoint")
    deadline = time.time() + 10
    while server.runtime.list_managed(server.runtime.owner):
        assert time.time() < deadline, "the endpoint's container was not removed"
        time.sleep(0.05)
