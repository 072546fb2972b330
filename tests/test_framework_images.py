"""AWS's framework image URIs -> stand-ins (runtime.framework_images), and the stand-in builder's rules:
one build for concurrent requests, a rebuild when the recipe changes (a tiny fake recipe keeps it fast)."""

from __future__ import annotations

import threading
import time
import uuid
from pathlib import Path

import pytest
from sagemaker import image_uris

from sagemaker_emulator.runtime import framework_images as fi
from sagemaker_emulator.runtime import images
from sagemaker_emulator.runtime.docker_engine import DockerRuntime
from sagemaker_emulator.runtime.fake import FakeRuntime, Script
from sagemaker_emulator.runtime.standin_builder import HASH_LABEL, StandinBuilder, recipe_hash
from sagemaker_emulator.testing import BASE_IMAGE

from .helpers import ROLE

REGIONS = ("us-east-1", "eu-west-1", "ap-southeast-2")


@pytest.mark.parametrize("region", REGIONS)
@pytest.mark.parametrize("framework,version,expected", [
    ("sklearn", "1.2-1", "sklearn:1.2-1"), ("sklearn", "1.4-2", "sklearn:1.4-2"),
    ("sklearn", "0.23-1", "sklearn:1.2-1"), ("xgboost", "1.7-1", "xgboost:1.7-1"),
    ("xgboost", "3.0-5", "xgboost:3.0-5"), ("xgboost", "1.0-1", "xgboost:1.7-1"),
    ("xgboost", "latest", "xgboost:1.7-1"), ("xgboost", "1", "xgboost:1.7-1"),
])
def test_sdk_uris_of_every_region_resolve_to_a_standin(region, framework, version, expected):
    scopes = ("training",) if (framework, version) == ("sklearn", "1.4-2") else ("training", "inference")
    for scope in scopes:  # the SDK has sklearn 1.4-2 for training only
        uri = image_uris.retrieve(framework, region, version, py_version="py3", instance_type="ml.m5.large",
                                  image_scope=scope)
        found = fi.match(uri)
        assert found is not None and found.standin.image == fi.IMAGE_PREFIX + expected, uri
        assert bool(found.notes) == (found.requested != found.standin.version)


@pytest.mark.parametrize("region", REGIONS)
@pytest.mark.parametrize("scope,version", [("training", "2.8.0"), ("training", "2.1.0"), ("inference", "2.6.0")])
def test_pytorch_2_uris_run_the_cpu_torch_standin(region, scope, version):
    for instance in ("ml.m5.large", "ml.g5.xlarge"):
        uri = image_uris.retrieve("pytorch", region, version, py_version="py310" if version < "2.6" else "py312",
                                  instance_type=instance, image_scope=scope)
        found = fi.match(uri)
        assert found.standin.image == "sagemaker-emulator/pytorch:2.13.0", uri
        assert any("nearest buildable" in note for note in found.notes)
        assert any("GPU" in note for note in found.notes) == (instance == "ml.g5.xlarge")


@pytest.mark.parametrize("region", REGIONS)
def test_tensorflow_2_uris_run_the_tensorflow_cpu_standin(region):
    for scope, version, py in (("training", "2.19.0", "py312"), ("training", "2.13.0", "py310"),
                               ("inference", "2.13.0", None)):
        uri = image_uris.retrieve("tensorflow", region, version, py_version=py, instance_type="ml.m5.large",
                                  image_scope=scope)
        assert fi.match(uri).standin.image == "sagemaker-emulator/tensorflow:2.19.0", uri


def test_legacy_xgboost_account_differs_per_region():
    east = image_uris.retrieve("xgboost", "us-east-1", "1")
    west = image_uris.retrieve("xgboost", "eu-west-1", "1")
    assert east.split(".")[0] != west.split(".")[0]
    assert fi.match(east).standin == fi.match(west).standin == fi.Standin("xgboost", "1.7-1")


def test_gpu_tag_runs_the_cpu_build_with_a_note():
    uri = image_uris.retrieve("xgboost", "us-west-2", "1.7-1", instance_type="ml.p3.2xlarge")
    found = fi.match(uri.replace(":1.7-1", ":1.7-1-gpu-py3"))
    assert found.standin.image == "sagemaker-emulator/xgboost:1.7-1"
    assert any("GPU" in note for note in found.notes)


def test_not_aws_images_are_left_to_plain_resolution():
    assert fi.match("my-training:1") is None
    assert fi.match("123456789012.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3") is None


@pytest.mark.parametrize("uri", [
    image_uris.retrieve("pytorch", "us-east-1", "1.13.1", py_version="py39", instance_type="ml.m5.large",
                        image_scope="training"),
    image_uris.retrieve("tensorflow", "eu-west-1", "2.13.0", py_version="py310", instance_type="ml.m5.large",
                        image_scope="inference").replace(":2.13.0-cpu", ":1.15.2-cpu"),
    "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:9.9-9-cpu-py3",
])
def test_unsupported_framework_or_version_fails_at_once_listing_the_supported(uri):
    with pytest.raises(fi.UnsupportedImage) as excinfo:
        fi.resolve(uri, {}, runtime=None)
    message = str(excinfo.value)
    assert message.startswith("ClientError:") and "scikit-learn: 1.2-1, 1.4-2" in message and "XGBoost" in message


def test_an_unsupported_image_fails_the_training_job_at_once(sagemaker_client, name):
    uri = image_uris.retrieve("pytorch", "us-east-1", "1.13.1", py_version="py39", instance_type="ml.m5.large",
                              image_scope="training")
    sagemaker_client.create_training_job(
        TrainingJobName=name, RoleArn="arn:aws:iam::123456789012:role/R",
        AlgorithmSpecification={"TrainingImage": uri, "TrainingInputMode": "File"},
        OutputDataConfig={"S3OutputPath": "s3://nowhere/out"},
        ResourceConfig={"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 1},
        StoppingCondition={"MaxRuntimeInSeconds": 60})
    deadline = time.time() + 20
    while (job := sagemaker_client.describe_training_job(TrainingJobName=name))["TrainingJobStatus"] == "InProgress":
        assert time.time() < deadline
        time.sleep(0.2)
    assert job["TrainingJobStatus"] == "Failed"
    reason = job["FailureReason"]
    assert "no local stand-in for PyTorch 1.13.1" in reason and "scikit-learn: 1.2-1" in reason


def test_xgboost_builtin_metrics_are_implied_and_match_tabbed_lines():
    from sagemaker_emulator.jobs.metrics import MetricExtractor

    uri = image_uris.retrieve("xgboost", "us-east-1", "1.7-1")
    definitions = fi.implied_metric_definitions(uri, {"num_round": "3"})
    assert fi.implied_metric_definitions(uri, {"sagemaker_program": '"train.py"'}) == []
    extractor = MetricExtractor(definitions)
    extractor.feed("[2]\ttrain-rmse:0.51\tvalidation-rmse:0.75", 1.0, "algo-1")
    extractor.feed("[3]#011train-rmse:0.41#011validation-rmse:0.65", 2.0, "algo-1")
    final = {m["MetricName"]: m["Value"] for m in extractor.final()}
    assert final == {"train:rmse": 0.41, "validation:rmse": 0.65}


# -- the builder, with a fake recipe -------------------------------------------------------------------------
@pytest.fixture
def fake_recipes(tmp_path, monkeypatch, docker_ready):
    """standins/ with one tiny recipe: a Dockerfile on the base image, no wheels."""
    root = tmp_path / "standins"
    (root / "common").mkdir(parents=True)
    (root / "common" / "toolkit-wheels.txt").write_text("# none\n")
    (root / "common" / "sdists.txt").write_text("# none\n")
    (root / "common" / "Dockerfile").write_text(
        "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nCOPY marker /marker\nRUN sleep 2\n")
    (root / "common" / "marker").write_text("v1\n")
    framework = "fake" + uuid.uuid4().hex[:6]
    (root / framework).mkdir()
    (root / framework / "1.0.txt").write_text("# no pins\n")
    monkeypatch.setattr(fi, "STANDINS_DIR", root)
    monkeypatch.setenv("SAGEMAKER_EMULATOR_CACHE_DIR", str(tmp_path / "cache"))
    standin = fi.Standin(framework, "1.0")
    yield root, standin
    runtime = DockerRuntime(owner="test")
    StandinBuilder(lambda: runtime.client).remove(standin)


def test_concurrent_requests_build_once_and_a_changed_recipe_rebuilds(fake_recipes):
    root, standin = fake_recipes
    runtime = DockerRuntime(owner="test")
    builder = StandinBuilder(lambda: runtime.client)
    seen: list[str] = []

    class Listener(fi.BuildObserver):
        def line(self, text: str) -> None:
            seen.append(text)

    results: list[str] = []
    threads = [threading.Thread(target=lambda: results.append(builder.ensure(standin, Listener(), uri="x")))
               for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert results == [standin.image, standin.image]
    assert builder.builds_started == 1
    assert any("Step" in line for line in seen)
    first = builder.image_labels(standin.image)[HASH_LABEL]
    assert first == recipe_hash(standin)
    builder.ensure(standin)
    assert builder.builds_started == 1  # current: no rebuild
    (root / "common" / "marker").write_text("v2\n")
    assert not builder.is_current(standin)
    builder.ensure(standin)
    assert builder.builds_started == 2
    assert builder.image_labels(standin.image)[HASH_LABEL] == recipe_hash(standin) != first


def test_a_wait_ends_at_the_deadline_and_a_failed_build_says_why(fake_recipes):
    root, standin = fake_recipes
    runtime = DockerRuntime(owner="test")
    builder = StandinBuilder(lambda: runtime.client)
    with pytest.raises(images.ImageUnavailable, match="MaxRuntimeInSeconds ran out"):
        builder.ensure(standin, deadline=time.time() + 0.5)
    time.sleep(0.1)
    (root / "common" / "Dockerfile").write_text("ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nRUN exit 3\n")
    while builder._builds:  # the first build goes on in the background
        time.sleep(0.2)
    builder.remove(standin)
    with pytest.raises(images.ImageUnavailable, match="Could not build the local stand-in"):
        builder.ensure(standin)


def test_base_image_constant_matches_the_tests():
    assert Path(fi.STANDINS_DIR).name == "standins" and BASE_IMAGE == "sagemaker-emulator-base:py311"


# -- a stop while the stand-in builds (a slow build in place of Docker) ----------------------------------------
class SlowBuilder(StandinBuilder):
    """The process's stand-in builder, its build lasting until `release` is set; no Docker."""

    def __init__(self, runtime: FakeRuntime, error: str | None = None) -> None:
        super().__init__(lambda: None)
        self.runtime, self.release, self.built, self.error = runtime, threading.Event(), False, error

    def is_current(self, standin: fi.Standin) -> bool:
        return self.built

    def build_now(self, standin: fi.Standin, line) -> None:
        line("Step 1/2 : a slow build")
        if not self.release.wait(30):
            raise RuntimeError("the test never released the build")
        if self.error:
            raise RuntimeError(self.error)
        self.runtime.images.add(standin.image)
        self.built = True


STANDIN = "sagemaker-emulator/xgboost:1.7-1"
SERVES = Script(after=None, on_term=0, http=lambda method, path, body: (200, b"1.0\n"))


@pytest.fixture
def slow_build(tmp_path, monkeypatch):
    """An in-process server on the FakeRuntime whose XGBoost stand-in builds until `builder.release` (or
    fails with `builder.error`); `server:1` is an image that exists and serves. Yields (sagemaker client,
    runtime, builder, data dir, server); bucket `out` and models/endpoint configs `xgb` and `plain` exist."""
    from sagemaker_emulator.runtime import standin_builder
    from sagemaker_emulator.testing.inprocess import InProcessServer

    runtime = FakeRuntime(images={"server:1"}, scripts={"server:1": SERVES},  # jobs' containers exit 0 at once
                          script_for=lambda spec: SERVES if spec.command == ["serve"] else None)
    builder = SlowBuilder(runtime)
    monkeypatch.setattr(standin_builder, "_BUILDER", builder)
    emu = InProcessServer(runtime, data_dir=tmp_path).start()
    try:
        sm = emu.client("sagemaker")
        emu.client("s3").create_bucket(Bucket="out")
        emu.client("s3").put_object(Bucket="out", Key="batch/in.csv", Body=b"1,2\n")
        for model, image in (("xgb", image_uris.retrieve("xgboost", "us-east-1", "1.7-1")), ("plain", "server:1")):
            sm.create_model(ModelName=model, ExecutionRoleArn=ROLE, PrimaryContainer={"Image": image})
            sm.create_endpoint_config(EndpointConfigName=model, ProductionVariants=[{
                "VariantName": "v1", "ModelName": model, "InstanceType": "ml.m5.large", "InitialInstanceCount": 1}])
        yield sm, runtime, builder, tmp_path, emu
    finally:
        builder.release.set()
        emu.stop()


def _waiting(builder: SlowBuilder) -> int:
    build = builder._builds.get(STANDIN)
    return 0 if build is None else len(build.observers)


def _running(runtime: FakeRuntime) -> list[str]:
    return [c.spec.image for c in runtime.containers.values() if c.state != "removed"]


@pytest.mark.parametrize("kind", ["training", "processing"])
def test_a_job_stopped_while_its_standin_builds_ends_stopped_and_the_build_goes_on(slow_build, kind):
    from .helpers import processing_request, training_request, wait_job, wait_until

    sm, _, builder, *_ = slow_build
    uri = image_uris.retrieve("xgboost", "us-east-1", "1.7-1")

    def create(name: str) -> None:
        if kind == "training":
            sm.create_training_job(**training_request(name, "out", uri, HyperParameters={"num_round": "1"}))
        else:
            sm.create_processing_job(**processing_request(name, "out", uri))

    create("stopped-while-building")
    wait_until(lambda: _waiting(builder) == 1, 10, "the first job waiting for the build")
    create("waits-for-the-build")
    wait_until(lambda: _waiting(builder) == 2, 10, "the second job waiting for the same build")
    if kind == "training":
        job = sm.describe_training_job(TrainingJobName="stopped-while-building")
        assert (job["SecondaryStatus"], job["SecondaryStatusTransitions"][-1]["StatusMessage"]) == (
            "Downloading", f"Building the local stand-in for {uri}")
        sm.stop_training_job(TrainingJobName="stopped-while-building")
    else:
        sm.stop_processing_job(ProcessingJobName="stopped-while-building")
    job = wait_job(sm, kind, "stopped-while-building", timeout=10)
    status = job.get("TrainingJobStatus") or job.get("ProcessingJobStatus")
    assert status == "Stopped" and "FailureReason" not in job, job.get("FailureReason")
    assert job.get("SecondaryStatus", "Stopped") == "Stopped"
    assert _waiting(builder) == 1  # the other job still waits for the build, which goes on
    builder.release.set()
    job = wait_job(sm, kind, "waits-for-the-build", timeout=10)
    status = job.get("TrainingJobStatus") or job.get("ProcessingJobStatus")
    assert status == "Completed", job.get("FailureReason")
    assert builder.builds_started == 1


@pytest.mark.parametrize("kind", ["training", "processing"])
def test_max_runtime_running_out_while_the_standin_builds_stops_the_job(slow_build, kind):
    """MaxRuntimeInSeconds counts from the job's start, the image's download (here: build) included, as on
    AWS: the job ends Stopped (training: SecondaryStatus MaxRuntimeExceeded), not Failed."""
    from .helpers import processing_request, training_request, wait_job

    sm, runtime, builder, *_ = slow_build
    uri = image_uris.retrieve("xgboost", "us-east-1", "1.7-1")
    limit = {"StoppingCondition": {"MaxRuntimeInSeconds": 2}}
    if kind == "training":
        sm.create_training_job(**training_request("out-of-time", "out", uri, HyperParameters={"num_round": "1"},
                                                  **limit))
    else:
        sm.create_processing_job(**processing_request("out-of-time", "out", uri, **limit))
    job = wait_job(sm, kind, "out-of-time", timeout=15)
    assert (job.get("TrainingJobStatus") or job.get("ProcessingJobStatus")) == "Stopped", job
    assert "FailureReason" not in job, job["FailureReason"]
    if kind == "training":
        assert job["SecondaryStatus"] == "MaxRuntimeExceeded"
        assert [t["Status"] for t in job["SecondaryStatusTransitions"]][-2:] == ["Downloading",
                                                                             "MaxRuntimeExceeded"]
    assert not runtime.containers  # nothing ever started
    assert builder.builds_started == 1 and not builder.built  # the build goes on


def test_a_transform_stopped_while_its_standin_builds_ends_stopped_at_once(slow_build):
    from .helpers import wait_job, wait_until

    sm, runtime, builder, *_ = slow_build
    sm.create_transform_job(
        TransformJobName="tf-building", ModelName="xgb",
        TransformInput={"DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "s3://out/batch/"}}},
        TransformOutput={"S3OutputPath": "s3://out/batch-out/"},
        TransformResources={"InstanceType": "ml.m5.large", "InstanceCount": 1})
    wait_until(lambda: _waiting(builder) == 1, 10, "the transform waiting for the build")
    sm.stop_transform_job(TransformJobName="tf-building")
    job = wait_job(sm, "transform", "tf-building", timeout=10)  # before the build ends
    assert job["TransformJobStatus"] == "Stopped" and "FailureReason" not in job, job.get("FailureReason")
    assert _waiting(builder) == 0 and not builder.built and not runtime.containers


def test_an_endpoint_deleted_while_its_standin_builds_is_gone_with_nothing_left(slow_build):
    from .helpers import wait_until

    sm, runtime, builder, data_dir, _ = slow_build
    sm.create_endpoint(EndpointName="ep-building", EndpointConfigName="xgb")
    wait_until(lambda: _waiting(builder) == 1, 10, "the endpoint waiting for the build")
    assert sm.describe_endpoint(EndpointName="ep-building")["EndpointStatus"] == "Creating"
    sm.delete_endpoint(EndpointName="ep-building")
    wait_until(lambda: _waiting(builder) == 0, 10, "the deployment to stop waiting")  # not the build's end
    with pytest.raises(sm.exceptions.ClientError, match="Could not find endpoint"):
        sm.describe_endpoint(EndpointName="ep-building")
    builder.release.set()  # the build ends later: still nothing starts for the deleted endpoint
    wait_until(lambda: builder.built, 10, "the build to end")
    time.sleep(0.5)
    assert not runtime.containers
    assert not (data_dir / "endpoints" / "us-east-1" / "ep-building").exists()


@pytest.mark.parametrize("then", ["build-fails", "deleted"])
def test_an_update_waiting_for_a_standin_fails_cleanly(slow_build, then):
    """UpdateEndpoint to a model whose stand-in builds: a failed build rolls back to the running deployment
    with the reason; a DeleteEndpoint meanwhile removes both deployments."""
    from .helpers import wait_until

    sm, runtime, builder, _, emu = slow_build
    sm.create_endpoint(EndpointName="ep-update", EndpointConfigName="plain")
    wait_until(lambda: sm.describe_endpoint(EndpointName="ep-update")["EndpointStatus"] == "InService", 10)
    sm.update_endpoint(EndpointName="ep-update", EndpointConfigName="xgb")
    wait_until(lambda: _waiting(builder) == 1, 10, "the update waiting for the build")
    assert sm.describe_endpoint(EndpointName="ep-update")["EndpointStatus"] == "Updating"
    if then == "build-fails":
        builder.error = "no wheels for xgboost"
        builder.release.set()
        doc = wait_until(lambda: (d := sm.describe_endpoint(EndpointName="ep-update"))["EndpointStatus"]
                         == "InService" and "FailureReason" in d and d, 10, "the roll-back")
        assert "no wheels for xgboost" in doc["FailureReason"] and doc["EndpointConfigName"] == "plain"
        assert _running(runtime) == ["server:1"]  # the old deployment still serves
        answer = emu.client("sagemaker-runtime").invoke_endpoint(EndpointName="ep-update", ContentType="text/csv",
                                                                 Body=b"1,2")
        assert answer["Body"].read() == b"1.0\n"
    else:
        sm.delete_endpoint(EndpointName="ep-update")
        wait_until(lambda: _waiting(builder) == 0, 10, "the update to stop waiting")
        wait_until(lambda: not _running(runtime), 10, "the old deployment's containers to go")
        builder.release.set()
        wait_until(lambda: builder.built, 10, "the build to end")
        time.sleep(0.5)
        assert not _running(runtime) and all(c.spec.image == "server:1" for c in runtime.containers.values())
        with pytest.raises(sm.exceptions.ClientError, match="Could not find endpoint"):
            sm.describe_endpoint(EndpointName="ep-update")


# -- jobs waiting for a real stand-in build ------------------------------------------------------------------
def test_two_jobs_needing_a_missing_standin_share_one_build(docker_ready, sagemaker_emulator, sagemaker_client,
                                                            s3_client):
    """The jobs sit in Downloading ("Building the local stand-in for <uri>") while one build runs; a third one,
    stopped meanwhile, ends Stopped and the build goes on for the others."""
    import subprocess
    import sys

    from .helpers import sdk_hyperparameters, tar_gz, wait_training

    subprocess.run([sys.executable, "-m", "sagemaker_emulator", "images", "remove", "sklearn:1.4-2"], check=True)
    bucket = "standin-build-" + uuid.uuid4().hex[:8]
    s3_client.create_bucket(Bucket=bucket)
    s3_client.put_object(Bucket=bucket, Key="code/sourcedir.tar.gz",
                         Body=tar_gz({"train.py": "import sklearn; print('sklearn', sklearn.__version__)\n"}))
    uri = image_uris.retrieve("sklearn", "eu-west-1", "1.4-2", instance_type="ml.m5.large")
    names = ["standin-" + uuid.uuid4().hex[:8] for _ in range(3)]
    built = "docker build sagemaker-emulator/sklearn:1.4-2"
    marker = len([line for line in sagemaker_emulator.output if built in line])
    for job_name in names:
        sagemaker_client.create_training_job(
            TrainingJobName=job_name, RoleArn="arn:aws:iam::123456789012:role/R",
            AlgorithmSpecification={"TrainingImage": uri, "TrainingInputMode": "File"},
            HyperParameters=sdk_hyperparameters(bucket, job_name),
            OutputDataConfig={"S3OutputPath": f"s3://{bucket}/out"},
            ResourceConfig={"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 1},
            StoppingCondition={"MaxRuntimeInSeconds": 1800})
    seen_building = set()
    deadline = time.time() + 900
    while time.time() < deadline and len(seen_building) < 3:
        for job_name in names:
            job = sagemaker_client.describe_training_job(TrainingJobName=job_name)
            if job["SecondaryStatus"] == "Downloading" and "Building the local stand-in for " + uri in \
                    job["SecondaryStatusTransitions"][-1]["StatusMessage"]:
                seen_building.add(job_name)
            assert job["TrainingJobStatus"] == "InProgress" or job_name in seen_building, job.get("FailureReason")
        time.sleep(0.3)
    assert seen_building == set(names)
    sagemaker_client.stop_training_job(TrainingJobName=names[2])
    job = wait_training(sagemaker_client, names[2], timeout=60)
    assert (job["TrainingJobStatus"], job["SecondaryStatus"], job.get("FailureReason")) == ("Stopped", "Stopped", None)
    for job_name in names[:2]:
        job = wait_training(sagemaker_client, job_name, timeout=900)
        assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    builds = [line for line in sagemaker_emulator.output if built in line]
    assert len(builds) - marker == 1
    logs = sagemaker_emulator.client("logs")
    streams = logs.describe_log_streams(logGroupName="/aws/sagemaker/TrainingJobs",
                                        logStreamNamePrefix=names[0])["logStreams"]
    text = "\n".join(event["message"] for stream in streams for event in logs.get_log_events(
        logGroupName="/aws/sagemaker/TrainingJobs", logStreamName=stream["logStreamName"])["events"])
    assert "Building the local stand-in sagemaker-emulator/sklearn:1.4-2" in text and "sklearn 1.4.2" in text


def test_images_cli_lists_every_standin_and_refuses_unknown_names(docker_ready):
    import subprocess
    import sys

    listing = subprocess.run([sys.executable, "-m", "sagemaker_emulator", "images", "list"], capture_output=True,
                             text=True, timeout=120)
    assert listing.returncode == 0, listing.stderr
    for standin in fi.all_standins():
        assert standin.image in listing.stdout
    assert "Supported AWS images: scikit-learn: 1.2-1, 1.4-2" in listing.stdout
    bad = subprocess.run([sys.executable, "-m", "sagemaker_emulator", "images", "build", "sklearn:0.1"],
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "is no stand-in" in bad.stderr
