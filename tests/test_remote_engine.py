"""A training job and an endpoint on another Docker engine, reached over TCP, with copied workspaces.

The emulator runs with `--docker-host tcp://127.0.0.1:<port> --workspace copy` against the private
second engine of tests/second_engine.py: every file a container sees is copied in through the engine
API (a volume at /opt/ml, put_archive), every result copied out (get_archive). The proof that nothing
is bind-mounted is the engine's own inspection of every container it created; the proof that the
main engine was not used is its event log for this server's owner label.
"""

from __future__ import annotations

import json
import threading
import time

import docker
import pytest

from sagemaker_emulator.testing import EmulatorServer

from .helpers import ROLE, model_files, training_request, unique
from .second_engine import SecondEngine

OWNER_LABEL = "sagemaker-emulator.owner"


class Inspector:
    """Inspects every container the engine creates, as it is created (before the emulator removes it)."""

    def __init__(self, client: docker.DockerClient, owner: str) -> None:
        self.client = client
        self.owner = owner
        self.seen: dict[str, dict] = {}
        self._events = client.events(decode=True, filters={"type": "container", "event": "create",
                                                           "label": f"{OWNER_LABEL}={owner}"})
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        try:
            for event in self._events:
                try:
                    self.seen[event["id"]] = self.client.api.inspect_container(event["id"])
                except docker.errors.NotFound:
                    self.seen[event["id"]] = {"gone": True}
        except Exception:  # the stream is closed at the end of the test
            pass

    def close(self) -> None:
        self._events.close()


def _kinds(seen: dict[str, dict]) -> list[str]:
    return sorted(d["Config"]["Labels"].get("sagemaker-emulator.kind", "") for d in seen.values() if "Config" in d)


@pytest.fixture(params=["flags", "environment"])
def remote_server(request, second_engine: SecondEngine, training_image: str, serving_image: str):
    """The emulator on the second engine: --docker-host/--workspace, or their SAGEMAKER_EMULATOR_* variables."""
    second_engine.load_images(training_image, serving_image)
    if request.param == "flags":
        args, env = ["--docker-host", second_engine.url, "--workspace", "copy"], {}
    else:
        args, env = [], {"SAGEMAKER_EMULATOR_DOCKER_HOST": second_engine.url, "SAGEMAKER_EMULATOR_WORKSPACE": "copy"}
    server = EmulatorServer(extra_args=[*args, "--stop-grace-seconds", "5"], env={"DOCKER_HOST": "", **env})
    server.start()
    try:
        yield server
    finally:
        server.close()


def test_training_and_an_endpoint_on_a_tcp_engine_with_copied_workspaces(remote_server: EmulatorServer,
                                                                         second_engine: SecondEngine,
                                                                         training_image: str,
                                                                         serving_image: str) -> None:
    started = int(time.time()) - 1
    inspector = Inspector(second_engine.client, remote_server.owner)
    sm, s3 = remote_server.client("sagemaker"), remote_server.client("s3")
    rt = remote_server.client("sagemaker-runtime")
    bucket = unique("remote-engine")
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="train/a.csv", Body=b"1,2\n")
    s3.put_object(Bucket=bucket, Key="train/sub/b.csv", Body=b"3,4\n")
    try:
        # -- a training job: inputs copied in, the model copied out -------------------------------
        job = unique("remote-train")
        sm.create_training_job(**training_request(job, bucket, training_image, HyperParameters={"epochs": "1"},
                                             InputDataConfig=[{"ChannelName": "train", "DataSource": {"S3DataSource": {
                                                 "S3DataType": "S3Prefix", "S3Uri": f"s3://{bucket}/train"}}}]))
        sm.get_waiter("training_job_completed_or_stopped").wait(
            TrainingJobName=job, WaiterConfig={"Delay": 1, "MaxAttempts": 180})
        doc = sm.describe_training_job(TrainingJobName=job)
        assert doc["TrainingJobStatus"] == "Completed", doc.get("FailureReason")
        files = model_files(s3, doc["ModelArtifacts"]["S3ModelArtifacts"])
        report = json.loads(files["report-algo-1.json"])
        assert report["channels"]["train"] == {"a.csv": "1,2\n", "sub/b.csv": "3,4\n"}
        assert report["hyperparameters"] == {"epochs": "1"}
        assert report["resourceconfig"]["current_host"] == "algo-1"
        logs = remote_server.client("logs")
        streams = logs.describe_log_streams(logGroupName="/aws/sagemaker/TrainingJobs",
                                            logStreamNamePrefix=job + "/")["logStreams"]
        lines = [e["message"] for e in logs.get_log_events(
            logGroupName="/aws/sagemaker/TrainingJobs", logStreamName=streams[0]["logStreamName"],
            startFromHead=True)["events"]]
        assert lines[0].startswith("starting on algo-1") and lines[-1] == "done"

        # -- an endpoint serving that model ----------------------------------------------------
        model, config, endpoint = unique("remote-model"), unique("remote-config"), unique("remote-ep")
        sm.create_model(ModelName=model, ExecutionRoleArn=ROLE, PrimaryContainer={
            "Image": serving_image, "ModelDataUrl": doc["ModelArtifacts"]["S3ModelArtifacts"]})
        sm.create_endpoint_config(EndpointConfigName=config, ProductionVariants=[{
            "VariantName": "v1", "ModelName": model, "InstanceType": "ml.m5.large", "InitialInstanceCount": 1}])
        sm.create_endpoint(EndpointName=endpoint, EndpointConfigName=config)
        sm.get_waiter("endpoint_in_service").wait(EndpointName=endpoint, WaiterConfig={"Delay": 1,
                                                                                        "MaxAttempts": 120})
        reply = rt.invoke_endpoint(EndpointName=endpoint, Body=b'{"x": 1}', ContentType="application/json")
        answer = json.loads(reply["Body"].read())
        assert answer["echo"] == '{"x": 1}'
        assert "report-algo-1.json" in answer["files"]  # the model artifact was copied into /opt/ml/model
        csv = rt.invoke_endpoint(EndpointName=endpoint, Body=b"1,2\n3,4\n", ContentType="text/csv")
        assert csv["Body"].read() == b"3.0\n7.0"

        # -- what the engines saw --------------------------------------------------------------
        serving = second_engine.client.containers.list(filters={"label": f"{OWNER_LABEL}={remote_server.owner}"})
        assert len(serving) == 1 and serving[0].labels["sagemaker-emulator.kind"] == "endpoint"
        assert _kinds(inspector.seen) == ["endpoint", "training"], inspector.seen.keys()
        for container_id, info in inspector.seen.items():
            assert "gone" not in info, f"container {container_id} was removed before it could be inspected"
            assert not info["HostConfig"].get("Binds"), info["HostConfig"]["Binds"]
            mounts = info["Mounts"]
            assert mounts and all(m["Type"] == "volume" for m in mounts), mounts
            assert "/opt/ml" in [m["Destination"] for m in mounts]
        sm.delete_endpoint(EndpointName=endpoint)
        owned = {"label": [f"{OWNER_LABEL}={remote_server.owner}"]}
        deadline = time.monotonic() + 60
        while second_engine.client.containers.list(all=True, filters=owned) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert second_engine.client.containers.list(all=True, filters=owned) == []
        assert second_engine.client.volumes.list(filters=owned) == []  # the /opt/ml volumes went with them
    finally:
        inspector.close()
    main = docker.DockerClient(base_url="unix:///var/run/docker.sock")
    try:
        events = main.api.events(since=started, until=int(time.time()) + 1, decode=True,
                                 filters={"label": f"{OWNER_LABEL}={remote_server.owner}"})
        assert list(events) == []  # nothing of this server ever touched the main engine
        assert main.containers.list(all=True, filters={"label": f"{OWNER_LABEL}={remote_server.owner}"}) == []
    finally:
        main.close()
