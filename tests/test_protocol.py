"""The wire protocol: malformed requests, unknown operations, validation messages, error shapes."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest
from botocore.exceptions import ClientError

from .helpers import ROLE, error_of


def raw(url: str, body: bytes | None, target: str | None,
        content_type: str = "application/x-amz-json-1.1") -> tuple[int, dict]:
    headers = {"Content-Type": content_type}
    if target:
        headers["X-Amz-Target"] = target
    req = urllib.request.Request(url + "/", data=body if body is not None else b"", headers=headers, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read() or b"{}")
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def test_malformed_json(sagemaker_emulator):
    status, body = raw(sagemaker_emulator.endpoint_url, b"{not json", "SageMaker.ListModels")
    assert status == 400 and body["__type"] == "SerializationException"
    assert "not valid JSON" in body["message"]


def test_non_object_json(sagemaker_emulator):
    status, body = raw(sagemaker_emulator.endpoint_url, b"[1, 2]", "SageMaker.ListModels")
    assert status == 400 and body["__type"] == "SerializationException"


def test_wrong_member_type(sagemaker_emulator):
    status, body = raw(sagemaker_emulator.endpoint_url, b'{"ModelName": 5}', "SageMaker.DescribeModel")
    assert status == 400 and body["__type"] == "SerializationException"
    assert "modelName" in body["message"]


def test_missing_body_is_an_empty_request(sagemaker_emulator):
    status, body = raw(sagemaker_emulator.endpoint_url, None, "SageMaker.DescribeModel")
    assert status == 400 and body["__type"] == "ValidationException"
    assert body["message"] == ("1 validation error detected: Value null at 'modelName' failed to satisfy "
                               "constraint: Member must not be null")
    status, body = raw(sagemaker_emulator.endpoint_url, None, "SageMaker.ListModels")
    assert status == 200 and "Models" in body


def test_unknown_target(sagemaker_emulator):
    status, body = raw(sagemaker_emulator.endpoint_url, b"{}", "SageMaker.FlyToTheMoon")
    assert status == 400 and body["__type"] == "UnknownOperationException"
    assert "FlyToTheMoon" in body["message"]


def test_refused_operation_is_named_with_its_reason(sagemaker_client):
    with pytest.raises(ClientError) as exc:
        sagemaker_client.list_cluster_events(ClusterName="c", ResourceType="Cluster")
    code, message, status = error_of(exc)
    assert (code, status) == ("NotImplementedException", 400)
    assert "ListClusterEvents" in message and "HyperPod nodes do not exist here" in message


def test_several_validation_errors_coral_style(sagemaker_client):
    with pytest.raises(ClientError) as exc:
        sagemaker_client.create_model(
            ModelName="bad_name", ExecutionRoleArn=ROLE,
            PrimaryContainer={"Image": "x", "Mode": "Sideways", "Environment": {"K": "v" * 1025}})
    code, message, status = error_of(exc)
    assert (code, status) == ("ValidationException", 400)
    assert message.startswith("3 validation errors detected: ")
    assert ("Value 'bad_name' at 'modelName' failed to satisfy constraint: Member must satisfy regular "
            "expression pattern: [a-zA-Z0-9]([\\-a-zA-Z0-9]*[a-zA-Z0-9])?") in message
    assert ("Value 'Sideways' at 'primaryContainer.mode' failed to satisfy constraint: Member must satisfy "
            "enum value set: [SingleModel, MultiModel]") in message
    assert "at 'primaryContainer.environment.K' failed to satisfy constraint: Member must have length less " \
           "than or equal to 1024" in message


def test_max_length_and_range(sagemaker_client):
    with pytest.raises(ClientError) as exc:
        sagemaker_client.list_models(NameContains="x" * 64, MaxResults=101)
    code, message, _ = error_of(exc)
    assert code == "ValidationException" and message.startswith("2 validation errors detected")
    assert "Member must have length less than or equal to 63" in message
    assert "Member must have value less than or equal to 100" in message


def test_nested_list_paths(sagemaker_client, name):
    with pytest.raises(ClientError) as exc:
        sagemaker_client.create_endpoint_config(EndpointConfigName=name, ProductionVariants=[
            {"VariantName": "ok", "ModelName": "m", "InitialInstanceCount": 1, "InstanceType": "ml.m5.large"},
            {"VariantName": "bad_variant", "ModelName": "m", "InitialInstanceCount": 1,
             "InstanceType": "ml.m5.large"}])
    assert "at 'productionVariants.2.member.variantName'" in error_of(exc)[1]


def test_request_id_and_content_type(sagemaker_client):
    resp = sagemaker_client.list_models()
    meta = resp["ResponseMetadata"]
    assert meta["RequestId"] and meta["HTTPHeaders"]["content-type"] == "application/x-amz-json-1.1"


def test_oversized_body_refused(sagemaker_emulator):
    body = b'{"ModelName": "' + b"a" * (17 * 1024 * 1024) + b'"}'
    status, err = raw(sagemaker_emulator.endpoint_url, body, "SageMaker.DescribeModel")
    assert status == 413 and err["__type"] == "SerializationException"
