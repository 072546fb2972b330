"""Record-only mode (`--execution none`): no container runs, and jobs, endpoints and tuning jobs still
move through the engines' code paths to AWS's end states; `POST /_emulator/reset` empties the state.

Runs the pytest plugin's `record_only_emulator` fixture (a subprocess server, reset before each test).
"""

from __future__ import annotations

import io
import json
import tarfile
import urllib.error
import urllib.request

import pytest
from botocore.exceptions import ClientError

from .helpers import (
    ROLE,
    make_model,
    processing_request,
    start_transform_job,
    training_request,
    transform_model,
    unique,
    wait_job,
    wait_training,
)

IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/nothing-runs:1"


@pytest.fixture
def clients(record_only_emulator):
    s3 = record_only_emulator.client("s3")
    bucket = unique("ro")
    s3.create_bucket(Bucket=bucket)
    return record_only_emulator.client("sagemaker"), s3, bucket


def test_training_completes_with_an_empty_model_archive(clients):
    sm, s3, bucket = clients
    name = unique("ro-train")
    sm.create_training_job(**training_request(name, bucket, IMAGE))
    job = wait_training(sm, name, timeout=30)
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    uri = job["ModelArtifacts"]["S3ModelArtifacts"]
    key = uri.split(f"s3://{bucket}/", 1)[1]
    body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(body), mode="r:gz") as tar:
        assert [m for m in tar.getmembers() if m.isfile()] == []


def test_processing_completes(clients):
    sm, _s3, bucket = clients
    name = unique("ro-proc")
    sm.create_processing_job(**processing_request(name, bucket, IMAGE))
    assert wait_job(sm, "processing", name, timeout=30)["ProcessingJobStatus"] == "Completed"


def test_endpoint_in_service_answers_the_canned_reply(record_only_emulator, clients):
    sm, _s3, _bucket = clients
    model = unique("ro-model")
    make_model(sm, model)
    config = unique("ro-config")
    sm.create_endpoint_config(EndpointConfigName=config, ProductionVariants=[{
        "VariantName": "v", "ModelName": model, "InstanceType": "ml.m5.large", "InitialInstanceCount": 1}])
    endpoint = unique("ro-ep")
    sm.create_endpoint(EndpointName=endpoint, EndpointConfigName=config)
    sm.get_waiter("endpoint_in_service").wait(EndpointName=endpoint, WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    reply = record_only_emulator.client("sagemaker-runtime").invoke_endpoint(
        EndpointName=endpoint, Body=b"1,2,3", ContentType="text/csv")
    assert json.loads(reply["Body"].read()) == {"predictions": []}
    assert reply["ContentType"] == "application/json"


def test_batch_transform_writes_the_canned_reply_per_record(clients):
    sm, s3, bucket = clients
    s3.put_object(Bucket=bucket, Key="in/rows.csv", Body=b"1,2\n3,4\n")
    name = start_transform_job(sm, transform_model(sm, IMAGE), f"s3://{bucket}/in/", f"s3://{bucket}/out/",
                               BatchStrategy="SingleRecord")
    assert wait_job(sm, "transform", name, timeout=60)["TransformJobStatus"] == "Completed"
    body = s3.get_object(Bucket=bucket, Key="out/rows.csv.out")["Body"].read().decode()
    assert body.splitlines() == ['{"predictions": []}'] * 2


def test_tuning_job_runs_its_training_jobs(clients):
    sm, _s3, bucket = clients
    name = unique("ro-hpo")[:32]
    sm.create_hyper_parameter_tuning_job(
        HyperParameterTuningJobName=name,
        HyperParameterTuningJobConfig={
            "Strategy": "Random", "ResourceLimits": {"MaxNumberOfTrainingJobs": 2, "MaxParallelTrainingJobs": 2},
            "HyperParameterTuningJobObjective": {"Type": "Minimize", "MetricName": "loss"},
            "ParameterRanges": {"ContinuousParameterRanges": [{"Name": "lr", "MinValue": "0.1", "MaxValue": "1"}]}},
        TrainingJobDefinition={
            "AlgorithmSpecification": {"TrainingImage": IMAGE, "TrainingInputMode": "File",
                                       "MetricDefinitions": [{"Name": "loss", "Regex": "loss=([0-9.]+)"}]},
            "RoleArn": ROLE, "OutputDataConfig": {"S3OutputPath": f"s3://{bucket}/hpo"},
            "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 1},
            "StoppingCondition": {"MaxRuntimeInSeconds": 60}})
    job = wait_job(sm, "tuning", name, timeout=60)
    assert job["HyperParameterTuningJobStatus"] in ("Completed", "Failed")
    counters = job["TrainingJobStatusCounters"]
    assert counters["Completed"] == 2, counters


def test_reset_empties_sagemaker_and_optionally_aws(record_only_emulator, clients):
    sm, s3, bucket = clients
    make_model(sm, unique("ro-keep"))
    sm.create_notebook_instance(NotebookInstanceName=unique("ro-nb"), InstanceType="ml.t3.medium", RoleArn=ROLE)
    answer = record_only_emulator.reset()
    assert answer["reset"]["resources"] >= 2 and answer["aws"] is False
    assert sm.list_models()["Models"] == [] and sm.list_notebook_instances()["NotebookInstances"] == []
    assert bucket in [b["Name"] for b in s3.list_buckets()["Buckets"]]  # S3 kept without aws=1
    record_only_emulator.reset(aws=True)
    with pytest.raises(ClientError):
        s3.head_bucket(Bucket=bucket)
    with pytest.raises(urllib.error.HTTPError) as refused:  # only POST resets
        urllib.request.urlopen(f"{record_only_emulator.endpoint_url}/_emulator/reset", timeout=10)
    assert refused.value.code == 405
