"""Run by tests/test_sdk_v3.py with the python of .venv-sdk3 (the SageMaker Python SDK v3 from PyPI).

The emulator is named by AWS_ENDPOINT_URL (with dummy credentials and region in the environment);
the working directory holds train.csv; `my-training:1` and `my-serving-image:latest` are local
images. Holds the README's SDK v3 snippets line for line, and prints one JSON line of what it saw.
"""

from __future__ import annotations

import json
from importlib.metadata import version

import sagemaker.core.telemetry.telemetry_logging as telemetry

telemetry_requests: list[str] = []
telemetry._requests_helper = lambda url, timeout: telemetry_requests.append(url)  # observe, never send

# --- README sdk-v3 snippet, part 1 ---
import boto3  # noqa: E402
from sagemaker.core.helper.session_helper import Session  # noqa: E402
from sagemaker.train import ModelTrainer  # noqa: E402
from sagemaker.train.configs import Compute, InputData, OutputDataConfig  # noqa: E402

boto3.client("iam").create_role(RoleName="SageMakerRole", AssumeRolePolicyDocument=json.dumps({
    "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                            "Principal": {"Service": "sagemaker.amazonaws.com"}}]}))
session = Session(default_bucket="sagemaker-us-east-1-123456789012",
                  sagemaker_config={"SchemaVersion": "1.0",
                                    "SageMaker": {"PythonSDK": {"Modules": {"TelemetryOptOut": True}}}})
trainer = ModelTrainer(training_image="my-training:1", role="arn:aws:iam::123456789012:role/SageMakerRole",
                       compute=Compute(instance_type="ml.m5.large", instance_count=1),
                       output_data_config=OutputDataConfig(s3_output_path=f"s3://{session.default_bucket()}/v3"),
                       hyperparameters={"epochs": 1}, sagemaker_session=session)
trainer.train(input_data_config=[InputData(channel_name="train",
                                           data_source=session.upload_data("train.csv", key_prefix="v3-data"))])
# --- end ---
trained = trainer._latest_training_job
trained.refresh()

# --- README sdk-v3 snippet, part 2 ---
from sagemaker.core.resources import Endpoint, EndpointConfig, Model, TrainingJob  # noqa: E402
from sagemaker.core.shapes import (  # noqa: E402
    AlgorithmSpecification,
    Channel,
    ContainerDefinition,
    DataSource,
    ProductionVariant,
    ResourceConfig,
    S3DataSource,
    StoppingCondition,
)
from sagemaker.core.shapes import OutputDataConfig as JobOutput  # noqa: E402

role = "arn:aws:iam::123456789012:role/SageMakerRole"
job = TrainingJob.create(
    training_job_name="core-job", role_arn=role,
    algorithm_specification=AlgorithmSpecification(training_image="my-training:1", training_input_mode="File"),
    input_data_config=[Channel(channel_name="train", data_source=DataSource(s3_data_source=S3DataSource(
        s3_data_type="S3Prefix", s3_uri="s3://sagemaker-us-east-1-123456789012/v3-data/")))],
    output_data_config=JobOutput(s3_output_path="s3://sagemaker-us-east-1-123456789012/core"),
    resource_config=ResourceConfig(instance_type="ml.m5.large", instance_count=1, volume_size_in_gb=1),
    stopping_condition=StoppingCondition(max_runtime_in_seconds=600))
job.wait()
Model.create(model_name="core-model", execution_role_arn=role, primary_container=ContainerDefinition(
    image="my-serving-image:latest", model_data_url=job.model_artifacts.s3_model_artifacts))
EndpointConfig.create(endpoint_config_name="core-config", production_variants=[ProductionVariant(
    variant_name="AllTraffic", model_name="core-model", initial_instance_count=1, instance_type="ml.m5.large")])
endpoint = Endpoint.create(endpoint_name="core-endpoint", endpoint_config_name="core-config")
endpoint.wait_for_status("InService")
print(endpoint.invoke(body=b'{"x": 1}', content_type="application/json").body.read())
# --- end ---
reply = json.loads(endpoint.invoke(body=b'{"x": 1}', content_type="application/json").body.read())
endpoint.delete()

print(json.dumps({
    "sdk": version("sagemaker"),
    "trainer_job": trained.training_job_name, "trainer_status": trained.training_job_status,
    "trainer_artifacts": trained.model_artifacts.s3_model_artifacts,
    "core_job_status": job.training_job_status, "core_artifacts": job.model_artifacts.s3_model_artifacts,
    "reply": reply, "telemetry_requests": telemetry_requests}))
