"""Endpoint configurations through plain boto3."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from .helpers import error_of, make_model, unique


@pytest.fixture
def model(sagemaker_client) -> str:
    name = unique("model")
    make_model(sagemaker_client, name)
    return name


def test_create_describe_list_delete(sagemaker_client, model, name):
    arn = sagemaker_client.create_endpoint_config(
        EndpointConfigName=name,
        ProductionVariants=[
            {"VariantName": "A", "ModelName": model, "InitialInstanceCount": 1, "InstanceType": "ml.m5.large"},
            {"VariantName": "B", "ModelName": model, "InitialInstanceCount": 2, "InstanceType": "ml.m5.large",
             "InitialVariantWeight": 0.5, "ContainerStartupHealthCheckTimeoutInSeconds": 120}],
        DataCaptureConfig={"EnableCapture": True, "InitialSamplingPercentage": 50,
                           "DestinationS3Uri": "s3://bucket/capture",
                           "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}]},
        AsyncInferenceConfig={"OutputConfig": {"S3OutputPath": "s3://bucket/async"}},
        ShadowProductionVariants=[{"VariantName": "S", "ModelName": model, "InitialInstanceCount": 1,
                                   "InstanceType": "ml.m5.large"}],
    )["EndpointConfigArn"]
    assert arn == f"arn:aws:sagemaker:us-east-1:123456789012:endpoint-config/{name}"
    got = sagemaker_client.describe_endpoint_config(EndpointConfigName=name)
    assert got["EndpointConfigArn"] == arn
    variants = {v["VariantName"]: v for v in got["ProductionVariants"]}
    assert variants["A"]["InitialVariantWeight"] == 1.0
    assert variants["B"]["InitialVariantWeight"] == 0.5
    assert variants["B"]["ContainerStartupHealthCheckTimeoutInSeconds"] == 120
    assert got["DataCaptureConfig"]["InitialSamplingPercentage"] == 50
    assert got["AsyncInferenceConfig"]["OutputConfig"]["S3OutputPath"] == "s3://bucket/async"
    assert got["ShadowProductionVariants"][0]["VariantName"] == "S"
    listed = sagemaker_client.list_endpoint_configs(NameContains=name)["EndpointConfigs"]
    assert [c["EndpointConfigName"] for c in listed] == [name]
    sagemaker_client.delete_endpoint_config(EndpointConfigName=name)
    with pytest.raises(ClientError) as exc:
        sagemaker_client.describe_endpoint_config(EndpointConfigName=name)
    assert error_of(exc) == ("ValidationException", f'Could not find endpoint configuration "{arn}".', 400)


def test_variant_with_missing_model_is_refused(sagemaker_client, name):
    with pytest.raises(ClientError) as exc:
        sagemaker_client.create_endpoint_config(EndpointConfigName=name, ProductionVariants=[
            {"VariantName": "A", "ModelName": "ghost", "InitialInstanceCount": 1, "InstanceType": "ml.m5.large"}])
    assert error_of(exc) == (
        "ValidationException", 'Could not find model "arn:aws:sagemaker:us-east-1:123456789012:model/ghost".', 400)
    # Nothing was stored.
    with pytest.raises(ClientError):
        sagemaker_client.describe_endpoint_config(EndpointConfigName=name)


def test_duplicate(sagemaker_client, model, name):
    variants = [{"VariantName": "A", "ModelName": model, "InitialInstanceCount": 1, "InstanceType": "ml.m5.large"}]
    arn = sagemaker_client.create_endpoint_config(EndpointConfigName=name, ProductionVariants=variants)[
        "EndpointConfigArn"]
    with pytest.raises(ClientError) as exc:
        sagemaker_client.create_endpoint_config(EndpointConfigName=name, ProductionVariants=variants)
    assert error_of(exc) == (
        "ValidationException", f'Cannot create already existing endpoint configuration "{arn}".', 400)


def test_serverless_variant(sagemaker_client, model, name):
    sagemaker_client.create_endpoint_config(EndpointConfigName=name, ProductionVariants=[
        {"VariantName": "AllTraffic", "ModelName": model,
         "ServerlessConfig": {"MemorySizeInMB": 2048, "MaxConcurrency": 5}}])
    got = sagemaker_client.describe_endpoint_config(EndpointConfigName=name)["ProductionVariants"][0]
    assert got["ServerlessConfig"] == {"MemorySizeInMB": 2048, "MaxConcurrency": 5}


@pytest.mark.parametrize("size", [1111, 2560, 5000])  # in botocore's min..max, not whole GiB
def test_serverless_memory_is_whole_gib(sagemaker_client, model, name, size):
    with pytest.raises(ClientError) as excinfo:
        sagemaker_client.create_endpoint_config(EndpointConfigName=name, ProductionVariants=[
            {"VariantName": "AllTraffic", "ModelName": model,
             "ServerlessConfig": {"MemorySizeInMB": size, "MaxConcurrency": 5}}])
    code, message, status = error_of(excinfo)
    assert (code, status) == ("ValidationException", 400)
    assert f"Value '{size}' at 'productionVariants.1.member.serverlessConfig.memorySizeInMB'" in message
    assert "[1024, 2048, 3072, 4096, 5120, 6144]" in message
    assert not sagemaker_client.list_endpoint_configs(NameContains=name)["EndpointConfigs"]


def test_duplicate_variant_names(sagemaker_client, model, name):
    v = {"VariantName": "A", "ModelName": model, "InitialInstanceCount": 1, "InstanceType": "ml.m5.large"}
    with pytest.raises(ClientError) as exc:
        sagemaker_client.create_endpoint_config(EndpointConfigName=name, ProductionVariants=[v, v])
    assert error_of(exc)[0] == "ValidationException"


def test_list_sorted(sagemaker_client, model):
    prefix = unique("cfg")
    names = [f"{prefix}-{c}" for c in "cab"]
    for n in names:
        sagemaker_client.create_endpoint_config(EndpointConfigName=n, ProductionVariants=[
            {"VariantName": "A", "ModelName": model, "InitialInstanceCount": 1, "InstanceType": "ml.m5.large"}])
    by_name = sagemaker_client.list_endpoint_configs(NameContains=prefix, SortBy="Name", SortOrder="Ascending")
    assert [c["EndpointConfigName"] for c in by_name["EndpointConfigs"]] == sorted(names)
    by_time = sagemaker_client.list_endpoint_configs(NameContains=prefix)
    assert [c["EndpointConfigName"] for c in by_time["EndpointConfigs"]] == names[::-1]
