"""Real-time endpoints with real serving containers, invoked through boto3's sagemaker-runtime."""

from __future__ import annotations

import json
from collections import Counter

import pytest
from botocore.exceptions import ClientError, WaiterError

from .helpers import ROLE, create_single_variant, endpoint_containers, error_of, model_tar, unique


@pytest.fixture(scope="module")
def deployed(sagemaker_client, s3_client, serving_image):
    """One endpoint with two variants (weights 1:1) of a model whose artifact is in S3."""
    bucket = unique("models-bucket")
    s3_client.create_bucket(Bucket=bucket)
    s3_client.put_object(Bucket=bucket, Key="m/model.tar.gz", Body=model_tar({"weights": [1, 2, 3]}))
    models = {}
    for tag in ("a", "b"):
        models[tag] = unique(f"model-{tag}")
        sagemaker_client.create_model(ModelName=models[tag], ExecutionRoleArn=ROLE, PrimaryContainer={
            "Image": serving_image, "ModelDataUrl": f"s3://{bucket}/m/model.tar.gz",
            "Environment": {"VARIANT_TAG": tag}})
    config, name = unique("cfg"), unique("ep")
    sagemaker_client.create_endpoint_config(EndpointConfigName=config, ProductionVariants=[
        {"VariantName": "A", "ModelName": models["a"], "InitialInstanceCount": 1, "InstanceType": "ml.m5.large"},
        {"VariantName": "B", "ModelName": models["b"], "InitialInstanceCount": 2, "InstanceType": "ml.m5.large"}])
    sagemaker_client.create_endpoint(EndpointName=name, EndpointConfigName=config)
    assert sagemaker_client.describe_endpoint(EndpointName=name)["EndpointStatus"] == "Creating"
    sagemaker_client.get_waiter("endpoint_in_service").wait(EndpointName=name,
                                                            WaiterConfig={"Delay": 1, "MaxAttempts": 120})
    yield name
    sagemaker_client.delete_endpoint(EndpointName=name)


def test_describe_and_list(sagemaker_client, deployed):
    ep = sagemaker_client.describe_endpoint(EndpointName=deployed)
    assert ep["EndpointStatus"] == "InService"
    counts = {v["VariantName"]: (v["CurrentInstanceCount"], v["CurrentWeight"]) for v in ep["ProductionVariants"]}
    assert counts == {"A": (1, 1.0), "B": (2, 1.0)}
    listed = sagemaker_client.list_endpoints(NameContains=deployed)["Endpoints"]
    assert [(e["EndpointName"], e["EndpointStatus"]) for e in listed] == [(deployed, "InService")]
    assert len(endpoint_containers(deployed)) == 3


def test_invoke_json_and_csv(sagemaker_runtime_client, deployed):
    resp = sagemaker_runtime_client.invoke_endpoint(EndpointName=deployed, Body=b'{"x": 1}',
                                                    ContentType="application/json", Accept="application/json",
                                                    CustomAttributes="trace=1", TargetVariant="A")
    reply = json.loads(resp["Body"].read())
    assert reply["echo"] == '{"x": 1}' and reply["model"] == {"weights": [1, 2, 3]}
    assert reply["accept"] == "application/json" and reply["custom"] == "trace=1" and reply["variant"] == "a"
    assert resp["ContentType"] == "application/json" and resp["InvokedProductionVariant"] == "A"
    assert resp["CustomAttributes"] == "seen=1"
    csv = sagemaker_runtime_client.invoke_endpoint(EndpointName=deployed, Body=b"1,2\n3,4\n", ContentType="text/csv")
    assert csv["Body"].read() == b"3.0\n7.0" and csv["ContentType"] == "text/csv"


def test_weighted_split_and_target_variant(sagemaker_runtime_client, deployed):
    seen = Counter(sagemaker_runtime_client.invoke_endpoint(EndpointName=deployed, Body=b"{}",
                                                            ContentType="application/json")["InvokedProductionVariant"]
                   for _ in range(400))
    assert 150 <= seen["A"] <= 250 and seen["A"] + seen["B"] == 400  # 50/50 within 5 sigma
    pinned = {sagemaker_runtime_client.invoke_endpoint(EndpointName=deployed, Body=b"{}", TargetVariant="B",
                                                       ContentType="application/json")["InvokedProductionVariant"]
              for _ in range(10)}
    assert pinned == {"B"}


def test_model_error(sagemaker_runtime_client, deployed):
    with pytest.raises(ClientError) as exc:
        sagemaker_runtime_client.invoke_endpoint(EndpointName=deployed, Body=b"error:400", TargetVariant="A")
    response = exc.value.response
    assert error_of(exc)[0] == "ModelError" and response["ResponseMetadata"]["HTTPStatusCode"] == 424
    assert response["OriginalStatusCode"] == 400 and response["OriginalMessage"] == '{"error": "bad input"}'
    assert response["LogStreamArn"].endswith(f":log-group:/aws/sagemaker/Endpoints/{deployed}")
    assert "Received client error (400) from primary" in response["Error"]["Message"]


def test_unknown_endpoint(sagemaker_runtime_client):
    with pytest.raises(ClientError) as exc:
        sagemaker_runtime_client.invoke_endpoint(EndpointName="nowhere", Body=b"{}")
    assert error_of(exc) == ("ValidationError", "Endpoint nowhere of account 123456789012 not found.", 400)


def test_container_logs(logs_client, sagemaker_runtime_client, deployed):
    group = f"/aws/sagemaker/Endpoints/{deployed}"
    streams = logs_client.describe_log_streams(logGroupName=group, logStreamNamePrefix="A/")["logStreams"]
    assert len(streams) == 1 and streams[0]["logStreamName"].startswith("A/i-")
    events = logs_client.filter_log_events(logGroupName=group, filterPattern="serving")["events"]
    assert any(e["message"] == "serving on 8080 argv=[]" for e in events), events  # `serve` ran as the CMD


def test_failed_container_and_delete(sagemaker_client, training_image, serving_image):
    name = unique("bad-ep")
    # The training image has no `serve` program: the container cannot start.
    create_single_variant(sagemaker_client, training_image, name, wait=False)
    with pytest.raises(WaiterError):
        sagemaker_client.get_waiter("endpoint_in_service").wait(EndpointName=name,
                                                                WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    ep = sagemaker_client.describe_endpoint(EndpointName=name)
    assert ep["EndpointStatus"] == "Failed" and "could not start" in ep["FailureReason"]
    assert '"serve": executable file not found' in ep["FailureReason"]
    assert endpoint_containers(name) == []
    sagemaker_client.delete_endpoint(EndpointName=name)
    sagemaker_client.get_waiter("endpoint_deleted").wait(EndpointName=name, WaiterConfig={"Delay": 1})
    with pytest.raises(ClientError) as exc:
        sagemaker_client.describe_endpoint(EndpointName=name)
    assert error_of(exc)[0] == "ValidationException"


def test_delete_leaves_nothing(sagemaker_client, s3_client, serving_image):
    name = unique("gone")
    create_single_variant(sagemaker_client, serving_image, name)
    assert len(endpoint_containers(name)) == 1
    sagemaker_client.delete_endpoint(EndpointName=name)
    assert endpoint_containers(name) == []


@pytest.mark.parametrize("kill", [True, False], ids=["sigkill", "sigterm"])
def test_serving_again_after_restart(tmp_path, serving_image, kill):
    from sagemaker_emulator.testing import EmulatorServer

    with EmulatorServer(data_dir=tmp_path) as server:
        create_single_variant(server.client("sagemaker"), serving_image, "survivor")
        server.stop(kill=kill)
        if not kill:  # a graceful stop leaves no container behind
            assert endpoint_containers("survivor") == []
        server.start()
        sm = server.client("sagemaker")
        sm.get_waiter("endpoint_in_service").wait(EndpointName="survivor", WaiterConfig={"Delay": 1})
        reply = server.client("sagemaker-runtime").invoke_endpoint(EndpointName="survivor", Body=b"hi",
                                                                   ContentType="application/json")
        assert json.loads(reply["Body"].read())["echo"] == "hi"
        assert len(endpoint_containers("survivor")) == 1  # the old container was replaced, not duplicated
    assert endpoint_containers("survivor") == []
