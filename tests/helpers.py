"""The helpers tests share: names, ARNs, errors, request builders and waits (the one copy of each).

Fixtures live in conftest.py (and docker_fixtures.py); plain functions live here, so a test module
imports what it needs instead of reaching into another test module.
"""

from __future__ import annotations

import io
import json
import subprocess
import tarfile
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from botocore.exceptions import ClientError

ROLE = "arn:aws:iam::123456789012:role/SageMakerRole"
TERMINAL = ("Completed", "Failed", "Stopped")
PROCESSING_GROUP = "/aws/sagemaker/ProcessingJobs"
# An SKLearn script-mode training script (LinearRegression on train.csv, label first) with its model_fn
SKLEARN_TRAIN_PY = '''
import argparse, os
import joblib
import numpy as np
from sklearn.linear_model import LinearRegression


def model_fn(model_dir):
    return joblib.load(os.path.join(model_dir, "model.joblib"))


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--fit-intercept", type=int, default=1)
    parser.add_argument("--model-dir", default=os.environ["SM_MODEL_DIR"])
    args = parser.parse_args()
    data = np.loadtxt(os.path.join(os.environ["SM_CHANNEL_TRAIN"], "train.csv"), delimiter=",", ndmin=2)
    model = LinearRegression(fit_intercept=bool(args.fit_intercept)).fit(data[:, 1:], data[:, 0])
    print(f"trained: coef={model.coef_.tolist()} intercept={model.intercept_:.3f}")
    joblib.dump(model, os.path.join(args.model_dir, "model.joblib"))
'''


# -- names, ARNs, errors ----------------------------------------------------------------------------
def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def resource_arn(kind: str, name: str) -> str:
    """The ARN of a resource of the session server's default account and region."""
    return f"arn:aws:sagemaker:us-east-1:123456789012:{kind}/{name}"


def error_of(excinfo: pytest.ExceptionInfo[ClientError]) -> tuple[str, str, int]:
    err = excinfo.value.response
    return err["Error"]["Code"], err["Error"]["Message"], err["ResponseMetadata"]["HTTPStatusCode"]


# -- containers -------------------------------------------------------------------------------------
def containers_with(arn: str, running_only: bool = False) -> list[str]:
    """Ids of the containers the emulator started for the resource `arn`."""
    args = ["docker", "ps", "-q", "--filter", f"label=sagemaker-emulator.resource={arn}"]
    if not running_only:
        args.insert(2, "-a")
    return subprocess.run(args, capture_output=True, text=True).stdout.split()


def training_containers(name: str, running_only: bool = True) -> list[str]:
    return containers_with(resource_arn("training-job", name), running_only)


def processing_containers(name: str) -> list[str]:
    return containers_with(resource_arn("processing-job", name))


def endpoint_containers(name: str) -> list[str]:
    return containers_with(resource_arn("endpoint", name))


def managed_containers(server: Any) -> list[str]:
    """Containers of this server (an EmulatorServer) only (other emulators may run on the machine)."""
    return subprocess.run(["docker", "ps", "-aq", "--filter", f"label=sagemaker-emulator.owner={server.owner}"],
                          capture_output=True, text=True).stdout.split()


# -- waiting ----------------------------------------------------------------------------------------
def wait_until(predicate: Callable[[], Any], timeout: float = 30, what: str | Callable[[], str] = "",
               interval: float = 0.2) -> Any:
    """Poll `predicate` until it returns something true (returned), failing after `timeout` seconds
    with `what` (a callable is evaluated then, so it can describe the state at the failure)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out waiting for {what() if callable(what) else what}")
        time.sleep(interval)


_JOBS = {  # kind -> (Describe operation, name member, status member)
    "training": ("describe_training_job", "TrainingJobName", "TrainingJobStatus"),
    "processing": ("describe_processing_job", "ProcessingJobName", "ProcessingJobStatus"),
    "transform": ("describe_transform_job", "TransformJobName", "TransformJobStatus"),
    "tuning": ("describe_hyper_parameter_tuning_job", "HyperParameterTuningJobName", "HyperParameterTuningJobStatus"),
}


def wait_job(sm: Any, kind: str, name: str, timeout: float = 180) -> dict:
    """Describe a `kind` job ("training", "processing", "transform") until it is Completed, Failed or
    Stopped; returns that last description."""
    describe, member, status = _JOBS[kind]
    last: dict = {}

    def finished() -> bool:
        last.clear()  # the latest description only: a member may go away (PendingDeploymentSummary, ...)
        last.update(getattr(sm, describe)(**{member: name}))
        return last[status] in TERMINAL

    wait_until(finished, timeout, lambda: f"{name} still {last.get(status)}/{last.get('SecondaryStatus', '-')}",
               interval=0.3)
    return last


def wait_for_object(s3: Any, bucket: str, key: str, timeout: float = 30) -> bytes:
    """The body of s3://bucket/key once it exists."""
    def body() -> bytes | None:
        try:
            return s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        except ClientError:
            return None

    return wait_until(body, timeout, f"s3://{bucket}/{key} to appear")


def wait_training(sm: Any, name: str, timeout: float = 180) -> dict:
    return wait_job(sm, "training", name, timeout)


def wait_processing(sm: Any, name: str, timeout: float = 120) -> dict:
    return wait_job(sm, "processing", name, timeout)


def wait_transform(sm: Any, name: str, timeout: float = 120) -> dict:
    return wait_job(sm, "transform", name, timeout)


def wait_secondary(sm: Any, name: str, status: str, timeout: float = 60) -> None:
    """Wait for a training job's SecondaryStatus `status`, and (for Training) for its container to run
    and handle signals."""
    deadline = time.monotonic() + timeout
    wait_until(lambda: sm.describe_training_job(TrainingJobName=name)["SecondaryStatus"] == status, timeout,
               f"{name} to reach {status}")
    if status == "Training":
        wait_until(lambda: training_containers(name), deadline - time.monotonic(), f"the container of {name}", 0.1)
        time.sleep(1.5)


def wait_endpoint(sm: Any, name: str, wanted: str = "InService", timeout: float = 120) -> dict:
    """Describe an endpoint until its status is `wanted`; returns that description."""
    last: dict = {}

    def reached() -> bool:
        last.clear()
        last.update(sm.describe_endpoint(EndpointName=name))
        return last["EndpointStatus"] == wanted

    wait_until(reached, timeout, lambda: f"{name} is {last.get('EndpointStatus')}, waiting for {wanted}", 0.1)
    return last


def wait_processing_sleeping(logs: Any, name: str, timeout: float = 60) -> None:
    """Until a processing job's container runs with its SIGTERM handler installed (it logs `sleeping` then)."""
    def sleeping() -> bool:
        try:
            streams = logs.describe_log_streams(logGroupName=PROCESSING_GROUP,
                                                logStreamNamePrefix=name + "/")["logStreams"]
        except logs.exceptions.ResourceNotFoundException:  # a fresh server: no group until a job logs
            return False
        return bool(streams) and any(e["message"] == "sleeping" for e in logs.get_log_events(
            logGroupName=PROCESSING_GROUP, logStreamName=streams[0]["logStreamName"], startFromHead=True)["events"])

    wait_until(sleeping, timeout, f"{name} to start sleeping")


# -- requests ---------------------------------------------------------------------------------------
def training_request(name: str, bucket: str, image: str, **overrides) -> dict:
    """A CreateTrainingJob request: one ml.m5.large instance, File mode, output under s3://<bucket>/output."""
    request = {
        "TrainingJobName": name, "RoleArn": ROLE,
        "AlgorithmSpecification": {"TrainingImage": image, "TrainingInputMode": "File"},
        "OutputDataConfig": {"S3OutputPath": f"s3://{bucket}/output"},
        "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 1},
        "StoppingCondition": {"MaxRuntimeInSeconds": 600},
    }
    request.update(overrides)
    return request


def s3_input(name: str, uri: str, local: str, **extra) -> dict:
    return {"InputName": name, "S3Input": {"S3Uri": uri, "LocalPath": local, "S3DataType": "S3Prefix",
                                           "S3InputMode": "File", **extra}}


def s3_output(name: str, uri: str, local: str, mode: str = "EndOfJob") -> dict:
    return {"OutputName": name, "S3Output": {"S3Uri": uri, "LocalPath": local, "S3UploadMode": mode}}


def processing_request(name: str, bucket: str, image: str, count: int = 1, inputs: list | None = None,
                       **overrides) -> dict:
    """A CreateProcessingJob request with a `report` and a `data` output under s3://<bucket>/out/<name>/."""
    request = {
        "ProcessingJobName": name, "RoleArn": ROLE,
        "AppSpecification": {"ImageUri": image},
        "ProcessingResources": {"ClusterConfig": {"InstanceCount": count, "InstanceType": "ml.m5.large",
                                                  "VolumeSizeInGB": 1}},
        "ProcessingInputs": inputs or [],
        "ProcessingOutputConfig": {"Outputs": [
            s3_output("report", f"s3://{bucket}/out/{name}/report", "/opt/ml/processing/report"),
            s3_output("data", f"s3://{bucket}/out/{name}/data", "/opt/ml/processing/output/data")]},
        "StoppingCondition": {"MaxRuntimeInSeconds": 300},
    }
    request.update(overrides)
    return request


def make_model(sm: Any, name: str, **extra: Any) -> dict:
    """CreateModel `name` on a placeholder image (nothing runs it); returns the response."""
    return sm.create_model(ModelName=name, ExecutionRoleArn=ROLE,
                           PrimaryContainer={"Image": "my-serve:latest", "Environment": {"A": "1"}}, **extra)


def serving_model(sm: Any, image: str, tag: str, **container: Any) -> str:
    """A model of `image` whose container answers with VARIANT_TAG=`tag`; returns its name."""
    name = unique(f"model-{tag}")
    sm.create_model(ModelName=name, ExecutionRoleArn=ROLE, PrimaryContainer={
        "Image": image, "Environment": {"VARIANT_TAG": tag}, **container})
    return name


def endpoint_config(sm: Any, *variants: tuple[str, str, int, float], **extra: Any) -> str:
    """An endpoint config of (variant, model, instance count, weight) variants; returns its name."""
    name = unique("cfg")
    sm.create_endpoint_config(EndpointConfigName=name, ProductionVariants=[
        {"VariantName": v, "ModelName": m, "InitialInstanceCount": n, "InitialVariantWeight": w,
         "InstanceType": "ml.m5.large"} for v, m, n, w in variants], **extra)
    return name


def deploy(sm: Any, name: str, config: str) -> str:
    """CreateEndpoint `name` on `config` and wait until it is InService."""
    sm.create_endpoint(EndpointName=name, EndpointConfigName=config)
    sm.get_waiter("endpoint_in_service").wait(EndpointName=name, WaiterConfig={"Delay": 1})
    return name


def create_single_variant(sm: Any, image: str, name: str, wait: bool = True) -> None:
    """Model, config and endpoint `name` with one AllTraffic instance of `image`."""
    sm.create_model(ModelName=f"{name}-model", ExecutionRoleArn=ROLE, PrimaryContainer={"Image": image})
    sm.create_endpoint_config(EndpointConfigName=f"{name}-config", ProductionVariants=[
        {"VariantName": "AllTraffic", "ModelName": f"{name}-model", "InitialInstanceCount": 1,
         "InstanceType": "ml.m5.large"}])
    if wait:
        deploy(sm, name, f"{name}-config")
    else:
        sm.create_endpoint(EndpointName=name, EndpointConfigName=f"{name}-config")


def transform_model(sm: Any, image: str, **env: str) -> str:
    """A model of `image` with `env` for batch transform; returns its name."""
    name = unique("tx-model")
    sm.create_model(ModelName=name, ExecutionRoleArn=ROLE,
                    PrimaryContainer={"Image": image, "Environment": {k: str(v) for k, v in env.items()}})
    return name


def start_transform_job(sm: Any, model: str, input_uri: str, output_uri: str, *, content_type: str = "text/csv",
                        split: str = "Line", assemble: str = "Line", data_type: str = "S3Prefix", instances: int = 1,
                        **extra) -> str:
    """CreateTransformJob of `model` over `input_uri` into `output_uri`; returns the job's name."""
    name = unique("tx")
    transform_input = {"DataSource": {"S3DataSource": {"S3DataType": data_type, "S3Uri": input_uri}},
                       "ContentType": content_type, "SplitType": split, **extra.pop("TransformInput", {})}
    sm.create_transform_job(
        TransformJobName=name, ModelName=model, TransformInput=transform_input,
        TransformOutput={"S3OutputPath": output_uri, "AssembleWith": assemble, **extra.pop("TransformOutput", {})},
        TransformResources={"InstanceType": "ml.m5.large", "InstanceCount": instances}, **extra)
    return name


# -- logs -------------------------------------------------------------------------------------------
def sdk_style_tail(logs_client: Any, group: str, job: str) -> list[str]:
    """The SageMaker SDK's logs_for_job reading loop (spec §6.2), one pass."""
    streams = logs_client.describe_log_streams(logGroupName=group, logStreamNamePrefix=job + "/",
                                               orderBy="LogStreamName", limit=2)["logStreams"]
    events = []
    for stream in streams:
        token = None
        while True:
            kwargs = {"nextToken": token} if token else {}
            page = logs_client.get_log_events(logGroupName=group, logStreamName=stream["logStreamName"],
                                              startTime=0, startFromHead=True, **kwargs)
            if not page["events"]:
                break
            events += page["events"]
            token = page["nextForwardToken"]
    return [e["message"] for e in sorted(events, key=lambda e: e["timestamp"])]


# -- artifacts --------------------------------------------------------------------------------------
def model_tar(content: dict) -> bytes:
    """A model.tar.gz holding model.json = `content`."""
    data = json.dumps(content).encode()
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tar:
        info = tarfile.TarInfo("model.json")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def model_files(s3: Any, uri: str) -> dict[str, bytes]:
    """The files of the model.tar.gz at s3 `uri`."""
    bucket, key = uri[5:].split("/", 1)
    raw = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(raw)) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}


# -- jobs that wait to be stopped (on a server of their own) ------------------------------------------
def _restart_bucket(server: Any) -> tuple[str, str]:
    bucket, name = unique("restart-bucket"), unique("survivor")
    server.client("s3").create_bucket(Bucket=bucket)
    return name, bucket


def start_sleeping_job(server: Any, image: str, **overrides) -> tuple[str, str]:
    """A training job whose container runs (with its SIGTERM handler) until stopped; returns (name, bucket)."""
    sm = server.client("sagemaker")
    name, bucket = _restart_bucket(server)
    sm.create_training_job(**training_request(name, bucket, image, HyperParameters={"behaviour": "sleep"},
                                              **overrides))
    wait_secondary(sm, name, "Training")
    return name, bucket


def start_sleeping_processing(server: Any, image: str, behaviour: str = "sleep", **overrides) -> tuple[str, str]:
    """A processing job whose container sleeps (SIGTERM handler installed); returns (name, bucket)."""
    name, bucket = _restart_bucket(server)
    server.client("sagemaker").create_processing_job(**processing_request(
        name, bucket, image, Environment={"BEHAVIOUR": behaviour}, **overrides))
    wait_processing_sleeping(server.client("logs"), name)
    return name, bucket


def sdk_environment(mp: pytest.MonkeyPatch, endpoint_url: str, telemetry: list) -> None:
    """What the README tells SDK users to set (AWS_ENDPOINT_URL, dummy credentials, a region), with the
    host's AWS_* variables removed, and the SDK's telemetry requests recorded in `telemetry` instead."""
    import os

    for key in [k for k in os.environ if k.startswith("AWS_")]:
        mp.delenv(key)
    mp.setenv("AWS_ENDPOINT_URL", endpoint_url)
    mp.setenv("AWS_ACCESS_KEY_ID", "testing")
    mp.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    mp.setenv("AWS_DEFAULT_REGION", "us-east-1")
    mp.setenv("SAGEMAKER_SUPPRESS_V2_WARNING", "1")
    mp.setattr("sagemaker.telemetry.telemetry_logging._send_telemetry_request",
               lambda *args, **kwargs: telemetry.append(args))


def tar_gz(files: dict[str, str]) -> bytes:
    """A gzipped tar of `files` (name -> text): a sourcedir.tar.gz, a model.tar.gz."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tar:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def sdk_hyperparameters(bucket: str, name: str, **user: object) -> dict[str, str]:
    """What the SageMaker Python SDK's framework estimators send: every value JSON-encoded."""
    hps = {"sagemaker_program": "train.py", "sagemaker_submit_directory": f"s3://{bucket}/code/sourcedir.tar.gz",
           "sagemaker_container_log_level": 20, "sagemaker_job_name": name, "sagemaker_region": "us-east-1",
           **user}
    return {key: json.dumps(value) for key, value in hps.items()}
