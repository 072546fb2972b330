"""The CloudFormation providers' pure parts: property mapping, generated names, dependency order."""

from __future__ import annotations

import re

from sagemaker_emulator.aws.cfn_sagemaker import generated_name
from sagemaker_emulator.aws.cfn_stacks import dependency_order
from sagemaker_emulator.aws.cfn_types import TYPES


def test_pipeline_definition_maps_to_the_api():
    spec = TYPES["AWS::SageMaker::Pipeline"]
    assert spec.to_request is not None and spec.to_update is not None
    body = spec.to_request({"PipelineName": "p", "RoleArn": "r",
                            "PipelineDefinition": {"PipelineDefinitionBody": '{"Version": "2020-12-01"}'}})
    assert body["PipelineDefinition"] == '{"Version": "2020-12-01"}' and body["ClientRequestToken"]
    s3 = spec.to_request({"PipelineName": "p", "PipelineDefinition": {
        "PipelineDefinitionS3Location": {"Bucket": "b", "Key": "k.json", "Version": "3"}}})
    assert s3["PipelineDefinitionS3Location"] == {"Bucket": "b", "ObjectKey": "k.json", "VersionId": "3"}
    assert "PipelineDefinition" not in s3
    update = spec.to_update({"PipelineName": "p", "PipelineDefinition": '{"a": 1}', "Tags": [{"Key": "k"}]})
    assert update == {"PipelineName": "p", "PipelineDefinition": '{"a": 1}'}


def test_endpoint_update_takes_the_update_only_properties():
    spec = TYPES["AWS::SageMaker::Endpoint"]
    assert spec.to_update is not None
    assert spec.to_update({"EndpointName": "e", "EndpointConfigName": "c2", "RetainAllVariantProperties": True,
                           "EndpointArn": "arn", "Tags": []}) == \
        {"EndpointName": "e", "EndpointConfigName": "c2", "RetainAllVariantProperties": True}


def test_image_version_key_from_its_arn():
    spec = TYPES["AWS::SageMaker::ImageVersion"]
    arn = "arn:aws:sagemaker:us-east-1:123456789012:image-version/my-image/3"
    assert spec.request_key({"ImageVersionArn": arn}) == {"ImageName": "my-image", "Version": 3}
    domain = TYPES["AWS::SageMaker::Domain"]
    assert domain.request_key({"DomainArn": "arn:aws:sagemaker:us-east-1:1:domain/d-abc"}) == {"DomainId": "d-abc"}


def test_generated_names_fit_sagemaker_s_pattern():
    for logical in ("Endpoint", "My_Very" * 20, "x"):
        name = generated_name(logical)
        assert re.fullmatch(r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}", name), name
    assert generated_name("Model") != generated_name("Model")


def test_dependency_order_follows_refs_getatt_sub_and_dependson():
    resources = {
        "Endpoint": {"Properties": {"EndpointConfigName": {"Fn::GetAtt": ["Config", "EndpointConfigName"]}}},
        "Config": {"Properties": {"ProductionVariants": [{"ModelName": {"Fn::Sub": "${Model.ModelName}"}}]}},
        "Alarm": {"DependsOn": "Endpoint", "Properties": {}},
        "Model": {"Properties": {"ExecutionRoleArn": {"Ref": "Role"}}},
        "Role": {"Properties": {}},
    }
    order = dependency_order(resources)
    assert order.index("Role") < order.index("Model") < order.index("Config") < order.index("Endpoint") \
        < order.index("Alarm")
    assert dependency_order(resources, ["Endpoint", "Model"]) == ["Model", "Endpoint"]
