"""Engine logic on a FakeRuntime (no Docker): failure reasons, stop, runtime limit, re-adoption after
a restart, processing, transform and endpoint outcomes, all as DescribeTrainingJob & co. show them.

The containers are scripted (runtime/fake.py); the HTTP API, handlers, engines, records, staging
and the embedded S3 are the real ones (testing.inprocess.InProcessServer). tests/test_fake_runtime.py
covers completed uploads, SIGKILL after the grace and Pipe refusal; tests that claim containers work
run real ones (test_training.py, test_endpoints.py ...).
"""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from sagemaker_emulator.runtime.fake import FakeRuntime, Script
from sagemaker_emulator.testing.inprocess import InProcessServer

from .fake_restart import Crashable
from .helpers import ROLE, training_request
from .helpers import wait_until as _wait_until

IMAGE = "trainer:1"
BUCKET = "fake-bucket"


def _emulator(tmp_path: Path, fake, create_bucket: bool = True, **config) -> InProcessServer:
    config.setdefault("stop_grace_seconds", 2.0)
    emu = InProcessServer(fake, data_dir=tmp_path / "data", **config).start()
    if create_bucket:
        emu.client("s3").create_bucket(Bucket=BUCKET)
    return emu


@pytest.fixture
def make_emulator(tmp_path: Path):
    made: list[InProcessServer] = []

    def make(fake, **config) -> InProcessServer:
        emu = _emulator(tmp_path, fake, **config)
        made.append(emu)
        return emu

    yield make
    for emu in made:
        emu.stop()


def _create_training(sm, name: str, image: str = IMAGE, max_runtime: int = 3600) -> None:
    sm.create_training_job(**training_request(name, BUCKET, image,
                                              StoppingCondition={"MaxRuntimeInSeconds": max_runtime}))


def _final(sm, name: str, timeout: float = 20) -> dict:
    return wait_for(lambda: (d := sm.describe_training_job(TrainingJobName=name))["TrainingJobStatus"]
                    in ("Completed", "Failed", "Stopped") and d, timeout)


def _secondary(doc: dict) -> list[str]:
    return [t["Status"] for t in doc["SecondaryStatusTransitions"]]


def _the_container(fake: FakeRuntime, name: str):
    found = [c for c in fake.containers.values() if name in c.name]
    assert len(found) == 1, [c.name for c in fake.containers.values()]
    return found[0]


def _log_lines(server: InProcessServer, prefix: str, group: str = "/aws/sagemaker/TrainingJobs") -> list[str]:
    logs = server.client("logs")
    try:
        streams = logs.describe_log_streams(logGroupName=group, logStreamNamePrefix=prefix)["logStreams"]
    except logs.exceptions.ResourceNotFoundException:  # no line recorded yet
        return []
    return [e["message"] for s in streams for e in logs.get_log_events(
        logGroupName=group, logStreamName=s["logStreamName"], startFromHead=True)["events"]]


def _all_removed(fake: FakeRuntime) -> bool:
    return all(c.state == "removed" for c in fake.containers.values()) and not fake.networks and not fake.volumes


# -- training: how a job ends ---------------------------------------------------------------------

@pytest.mark.parametrize("workspace", ["bind", "copy"])
def test_a_failed_training_job_says_what_its_failure_file_says(make_emulator, workspace: str) -> None:
    fake = FakeRuntime(scripts={IMAGE: Script(lines=["loading"], after=0.2, exit_code=2,
                                              files={"/opt/ml/output/failure": "ValueError: alpha must be > 0\n"})})
    emu = make_emulator(fake, workspace=workspace)
    sm = emu.client("sagemaker")
    _create_training(sm, "fails-with-file")
    doc = _final(sm, "fails-with-file")
    assert doc["TrainingJobStatus"] == "Failed"
    assert doc["FailureReason"] == "AlgorithmError: ValueError: alpha must be > 0"
    assert doc["SecondaryStatus"] == "Failed"
    assert _secondary(doc)[-1] == "Failed" and "Training" in _secondary(doc)
    assert doc["TrainingEndTime"] >= doc["TrainingStartTime"]
    container = _the_container(fake, "fails-with-file")
    assert container.spec.image == IMAGE and container.exit_code == 2
    if workspace == "copy":  # nothing bind-mounted: the files went in (and out) through archives
        assert container.spec.mounts == {}
        assert "/opt/ml/input/config/resourceconfig.json" in container.files
    assert wait_for(lambda: _all_removed(fake))


def test_a_failed_training_job_without_a_failure_file_quotes_its_last_log_lines(make_emulator) -> None:
    lines = ["epoch 1", "Traceback (most recent call last):", '  File "train.py", line 3', "MemoryError: no room"]
    fake = FakeRuntime(scripts={IMAGE: Script(lines=lines, after=0.2, exit_code=3)})
    sm = make_emulator(fake).client("sagemaker")
    _create_training(sm, "fails-with-logs")
    doc = _final(sm, "fails-with-logs")
    assert doc["TrainingJobStatus"] == "Failed"
    reason = doc["FailureReason"]
    assert reason.startswith("AlgorithmError: The training container on algo-1 exited with code 3")
    assert "MemoryError: no room" in reason and "Traceback (most recent call last):" in reason


def test_an_unknown_image_fails_the_job_and_starts_nothing(make_emulator) -> None:
    fake = FakeRuntime(images={IMAGE})
    sm = make_emulator(fake).client("sagemaker")
    _create_training(sm, "no-image", image="missing:1")
    doc = _final(sm, "no-image")
    assert doc["TrainingJobStatus"] == "Failed"
    assert "missing:1" in doc["FailureReason"]
    assert fake.containers == {}


# -- training: stop and runtime limit -------------------------------------------------------------

def test_stop_training_job_is_stopping_then_stopped_after_sigterm(make_emulator) -> None:
    fake = FakeRuntime(scripts={IMAGE: Script(lines=["training"], after=None, on_term=0, term_seconds=1.0)})
    sm = make_emulator(fake).client("sagemaker")
    _create_training(sm, "stopped")
    wait_for(lambda: sm.describe_training_job(TrainingJobName="stopped")["SecondaryStatus"] == "Training")
    sm.stop_training_job(TrainingJobName="stopped")
    doc = sm.describe_training_job(TrainingJobName="stopped")
    assert (doc["TrainingJobStatus"], doc["SecondaryStatus"]) == ("Stopping", "Stopping")
    doc = _final(sm, "stopped")
    assert (doc["TrainingJobStatus"], doc["SecondaryStatus"]) == ("Stopped", "Stopped")
    assert _secondary(doc)[-2:] == ["Stopping", "Stopped"]
    assert "FailureReason" not in doc
    assert _the_container(fake, "stopped").signals == ["SIGTERM"]  # it exited within the grace
    assert doc["ModelArtifacts"]["S3ModelArtifacts"].endswith("/stopped/output/model.tar.gz")  # still uploaded


def test_max_runtime_stops_the_job_with_max_runtime_exceeded(make_emulator) -> None:
    fake = FakeRuntime(scripts={IMAGE: Script(lines=["forever"], after=None)})
    sm = make_emulator(fake).client("sagemaker")
    _create_training(sm, "too-long", max_runtime=1)
    doc = _final(sm, "too-long", timeout=30)
    assert doc["TrainingJobStatus"] == "Stopped"
    assert doc["SecondaryStatus"] == "MaxRuntimeExceeded"
    assert "MaxRuntimeInSeconds" in doc["SecondaryStatusTransitions"][-1]["StatusMessage"]
    assert _the_container(fake, "too-long").signals == ["SIGTERM"]
    assert doc["TrainingTimeInSeconds"] >= 1


# -- training: a restart re-adopts running containers ---------------------------------------------

@pytest.mark.parametrize("workspace", ["bind", "copy"])
def test_a_restarted_server_adopts_the_running_container_and_the_job_completes(tmp_path: Path,
                                                                               workspace: str) -> None:
    fake = FakeRuntime(scripts={IMAGE: Script(lines=["before the restart", (1.5, "after the restart", "stdout")],
                                              after=3.0, files={"/opt/ml/model/m.txt": "adopted"})})
    old_runtime = Crashable(fake)
    old = _emulator(tmp_path, old_runtime, workspace=workspace)
    sm = old.client("sagemaker")
    _create_training(sm, "adopted")
    wait_for(lambda: sm.describe_training_job(TrainingJobName="adopted")["SecondaryStatus"] == "Training")
    wait_for(lambda: "before the restart" in _log_lines(old, "adopted/"))  # recorded before the crash
    old_runtime.crash()  # the old server's job thread is frozen, as by kill -9
    old.abandon()
    container = _the_container(fake, "adopted")
    assert container.state == "running"
    new = _emulator(tmp_path, fake, create_bucket=False, workspace=workspace)
    try:
        sm = new.client("sagemaker")
        doc = _final(sm, "adopted")
        assert doc["TrainingJobStatus"] == "Completed", doc.get("FailureReason")
        assert list(fake.containers) == [container.id]  # adopted, not started again
        body = new.client("s3").get_object(Bucket=BUCKET, Key="output/adopted/output/model.tar.gz")["Body"].read()
        with tarfile.open(fileobj=io.BytesIO(body)) as tar:
            assert tar.extractfile("m.txt").read() == b"adopted"
        events = _log_lines(new, "adopted/")
        assert "after the restart" in events  # the new server follows the adopted container's output
        assert events.count("before the restart") == 1  # from where the old server's stream stopped
        assert wait_for(lambda: _all_removed(fake))
    finally:
        new.stop()


def test_a_restarted_server_fails_a_job_whose_container_is_gone(tmp_path: Path) -> None:
    fake = FakeRuntime(scripts={IMAGE: Script(after=None)})
    old_runtime = Crashable(fake)
    old = _emulator(tmp_path, old_runtime)
    sm = old.client("sagemaker")
    _create_training(sm, "orphaned")
    wait_for(lambda: sm.describe_training_job(TrainingJobName="orphaned")["SecondaryStatus"] == "Training")
    old_runtime.crash()
    old.abandon()
    fake.remove(_the_container(fake, "orphaned").handle)  # the engine lost it meanwhile
    new = _emulator(tmp_path, fake, create_bucket=False)
    try:
        doc = _final(new.client("sagemaker"), "orphaned")
        assert doc["TrainingJobStatus"] == "Failed"
        assert doc["FailureReason"].startswith("InternalServerError: The emulator restarted")
    finally:
        new.stop()


# -- processing -----------------------------------------------------------------------------------

def _create_processing(sm, name: str, max_runtime: int = 3600) -> None:
    sm.create_processing_job(
        ProcessingJobName=name, RoleArn=ROLE,
        AppSpecification={"ImageUri": IMAGE},
        ProcessingResources={"ClusterConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.large",
                                               "VolumeSizeInGB": 1}},
        ProcessingOutputConfig={"Outputs": [{"OutputName": "out", "S3Output": {
            "S3Uri": f"s3://{BUCKET}/processed/{name}", "LocalPath": "/opt/ml/processing/output",
            "S3UploadMode": "EndOfJob"}}]},
        StoppingCondition={"MaxRuntimeInSeconds": max_runtime})


def _final_processing(sm, name: str, timeout: float = 20) -> dict:
    return wait_for(lambda: (d := sm.describe_processing_job(ProcessingJobName=name))["ProcessingJobStatus"]
                    in ("Completed", "Failed", "Stopped") and d, timeout)


@pytest.mark.parametrize("workspace", ["bind", "copy"])
def test_a_processing_job_uploads_its_output_and_exit_message(make_emulator, workspace: str) -> None:
    fake = FakeRuntime(scripts={IMAGE: Script(after=0.1, files={
        "/opt/ml/processing/output/result.csv": "a,b\n", "/opt/ml/output/message": "all good"})})
    emu = make_emulator(fake, workspace=workspace)
    sm = emu.client("sagemaker")
    _create_processing(sm, "proc-ok")
    doc = _final_processing(sm, "proc-ok")
    assert doc["ProcessingJobStatus"] == "Completed", doc.get("FailureReason")
    assert doc["ExitMessage"] == "all good"
    got = emu.client("s3").get_object(Bucket=BUCKET, Key="processed/proc-ok/result.csv")["Body"].read()
    assert got == b"a,b\n"


def test_a_failed_processing_job_quotes_its_last_log_lines(make_emulator) -> None:
    fake = FakeRuntime(scripts={IMAGE: Script(lines=["reading", "KeyError: 'label'"], after=0.1, exit_code=1)})
    sm = make_emulator(fake).client("sagemaker")
    _create_processing(sm, "proc-fails")
    doc = _final_processing(sm, "proc-fails")
    assert doc["ProcessingJobStatus"] == "Failed"
    assert doc["FailureReason"].startswith("AlgorithmError: The processing container on algo-1 exited with code 1")
    assert "KeyError: 'label'" in doc["FailureReason"]


def test_a_restarted_server_adopts_a_running_processing_job(tmp_path: Path) -> None:
    fake = FakeRuntime(scripts={IMAGE: Script(after=2.0, files={"/opt/ml/processing/output/late.csv": "x\n"})})
    old_runtime = Crashable(fake)
    old = _emulator(tmp_path, old_runtime, workspace="copy")
    _create_processing(old.client("sagemaker"), "proc-adopted")
    wait_for(lambda: any(c.state == "running" for c in fake.containers.values()))
    old_runtime.crash()
    old.abandon()
    new = _emulator(tmp_path, fake, create_bucket=False, workspace="copy")
    try:
        doc = _final_processing(new.client("sagemaker"), "proc-adopted")
        assert doc["ProcessingJobStatus"] == "Completed", doc.get("FailureReason")
        assert len(fake.containers) == 1  # adopted, not started again
        got = new.client("s3").get_object(Bucket=BUCKET, Key="processed/proc-adopted/late.csv")["Body"].read()
        assert got == b"x\n"  # copied out of the adopted container by the new server
        assert wait_for(lambda: _all_removed(fake))
    finally:
        new.stop()


def test_stop_processing_job_stops_the_container(make_emulator) -> None:
    fake = FakeRuntime(scripts={IMAGE: Script(after=None, on_term=0, term_seconds=0.5)})
    sm = make_emulator(fake).client("sagemaker")
    _create_processing(sm, "proc-stop")
    wait_for(lambda: any(c.state == "running" for c in fake.containers.values()))
    sm.stop_processing_job(ProcessingJobName="proc-stop")
    assert sm.describe_processing_job(ProcessingJobName="proc-stop")["ProcessingJobStatus"] == "Stopping"
    doc = _final_processing(sm, "proc-stop")
    assert doc["ProcessingJobStatus"] == "Stopped"
    assert _the_container(fake, "proc-stop").signals == ["SIGTERM"]


# -- transform and endpoints: a serving container that dies ---------------------------------------

def test_a_transform_job_whose_container_exits_fails_with_a_reason(make_emulator) -> None:
    fake = FakeRuntime(scripts={"server:1": Script(lines=["cannot load the model"], after=0.2, exit_code=4)})
    emu = make_emulator(fake)
    sm = emu.client("sagemaker")
    emu.client("s3").put_object(Bucket=BUCKET, Key="batch/in.csv", Body=b"1,2\n")
    sm.create_model(ModelName="fake-model", ExecutionRoleArn=ROLE, PrimaryContainer={"Image": "server:1"})
    sm.create_transform_job(
        TransformJobName="tf-fails", ModelName="fake-model",
        TransformInput={"DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": f"s3://{BUCKET}/batch/"}}},
        TransformOutput={"S3OutputPath": f"s3://{BUCKET}/batch-out/"},
        TransformResources={"InstanceType": "ml.m5.large", "InstanceCount": 1})
    doc = wait_for(lambda: (d := sm.describe_transform_job(TransformJobName="tf-fails"))["TransformJobStatus"]
                   in ("Completed", "Failed", "Stopped") and d, 30)
    assert doc["TransformJobStatus"] == "Failed"
    assert "4" in doc["FailureReason"] and "cannot load the model" in doc["FailureReason"]
    assert wait_for(lambda: _all_removed(fake))


def test_an_endpoint_whose_container_exits_fails_with_a_reason(make_emulator) -> None:
    fake = FakeRuntime(scripts={"server:1": Script(lines=["no model.pkl"], after=0.2, exit_code=5)})
    sm = make_emulator(fake).client("sagemaker")
    sm.create_model(ModelName="fake-model", ExecutionRoleArn=ROLE, PrimaryContainer={"Image": "server:1"})
    sm.create_endpoint_config(EndpointConfigName="fake-config", ProductionVariants=[{
        "VariantName": "v1", "ModelName": "fake-model", "InstanceType": "ml.m5.large", "InitialInstanceCount": 1}])
    sm.create_endpoint(EndpointName="fake-endpoint", EndpointConfigName="fake-config")
    doc = wait_for(lambda: (d := sm.describe_endpoint(EndpointName="fake-endpoint"))["EndpointStatus"]
                   in ("InService", "Failed") and d, 30)
    assert doc["EndpointStatus"] == "Failed"
    assert "no model.pkl" in doc["FailureReason"]
    assert wait_for(lambda: _all_removed(fake))


def wait_for(probe, timeout: float = 20):
    """The fake runtime is fast: poll often."""
    return _wait_until(probe, timeout, what=str(probe), interval=0.05)
