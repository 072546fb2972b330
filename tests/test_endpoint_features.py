"""Beyond the basic call, with real containers: async, response streams, pipelines, multi-model,
serverless, data capture, CloudWatch metrics, and serving a real training job's artifact."""

from __future__ import annotations

import datetime as dt
import json
import re
import subprocess
import threading
import time

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from sagemaker_emulator.testing import EmulatorServer

from .helpers import (
    ROLE,
    deploy,
    endpoint_config,
    endpoint_containers,
    error_of,
    model_tar,
    training_request,
    unique,
    wait_for_object,
    wait_training,
    wait_until,
)


def test_async_invocation_round_trip(sagemaker_client, sagemaker_runtime_client, s3_client, serving_image, bucket):
    sm = sagemaker_client
    model = unique("async-model")
    sm.create_model(ModelName=model, ExecutionRoleArn=ROLE, PrimaryContainer={"Image": serving_image})
    config = endpoint_config(sm, ("AllTraffic", model, 1, 1.0), AsyncInferenceConfig={"OutputConfig": {
        "S3OutputPath": f"s3://{bucket}/async-out", "S3FailurePath": f"s3://{bucket}/async-fail"}})
    name = deploy(sm, unique("ep-async"), config)
    try:
        s3_client.put_object(Bucket=bucket, Key="async-in/ok.json", Body=b'{"q": 1}')
        s3_client.put_object(Bucket=bucket, Key="async-in/bad.json", Body=b"error:500")
        ok = sagemaker_runtime_client.invoke_endpoint_async(
            EndpointName=name, InputLocation=f"s3://{bucket}/async-in/ok.json", ContentType="application/json")
        assert ok["ResponseMetadata"]["HTTPStatusCode"] == 202
        assert ok["OutputLocation"] == f"s3://{bucket}/async-out/{ok['InferenceId']}.out"
        result = json.loads(wait_for_object(s3_client, bucket, f"async-out/{ok['InferenceId']}.out"))
        assert result["echo"] == '{"q": 1}' and result["content_type"] == "application/json"
        bad = sagemaker_runtime_client.invoke_endpoint_async(
            EndpointName=name, InputLocation=f"s3://{bucket}/async-in/bad.json", InferenceId="my-id")
        assert bad["InferenceId"] == "my-id"
        assert bad["FailureLocation"] == f"s3://{bucket}/async-fail/my-id-error.out"
        failure = wait_for_object(s3_client, bucket, "async-fail/my-id-error.out").decode()
        assert "Received server error (500)" in failure
        with pytest.raises(ClientError) as exc:  # a real-time-only endpoint refuses async calls
            sagemaker_runtime_client.invoke_endpoint_async(EndpointName="nowhere", InputLocation="s3://x/y")
        assert error_of(exc)[0] == "ValidationError"
    finally:
        sm.delete_endpoint(EndpointName=name)


def test_async_invocation_of_a_creating_endpoint_is_refused(sagemaker_client, sagemaker_runtime_client,
                                                             serving_image, bucket):
    """AWS serves an endpoint only once it is InService: a fresh endpoint still Creating answers
    InvokeEndpointAsync as an unknown one, and queues nothing (docs/decisions.md)."""
    sm = sagemaker_client
    name = unique("ep-async-creating")
    sm.create_model(ModelName=name, ExecutionRoleArn=ROLE, PrimaryContainer={
        "Image": serving_image, "Environment": {"NEVER_HEALTHY": "1"}})
    config = endpoint_config(sm, ("AllTraffic", name, 1, 1.0), AsyncInferenceConfig={"OutputConfig": {
        "S3OutputPath": f"s3://{bucket}/async-creating"}})
    sm.create_endpoint(EndpointName=name, EndpointConfigName=config)
    try:
        assert sm.describe_endpoint(EndpointName=name)["EndpointStatus"] == "Creating"
        with pytest.raises(ClientError) as exc:
            sagemaker_runtime_client.invoke_endpoint_async(
                EndpointName=name, InputLocation=f"s3://{bucket}/async-in/ok.json", ContentType="application/json")
        assert error_of(exc) == ("ValidationError", f"Endpoint {name} of account 123456789012 not found.", 400)
    finally:
        sm.delete_endpoint(EndpointName=name)


def test_response_stream(sagemaker_client, sagemaker_runtime_client, serving_image):
    sm = sagemaker_client
    model = unique("stream-model")
    sm.create_model(ModelName=model, ExecutionRoleArn=ROLE, PrimaryContainer={"Image": serving_image})
    name = deploy(sm, unique("ep-stream"), endpoint_config(sm, ("AllTraffic", model, 1, 1.0)))
    try:
        response = sagemaker_runtime_client.invoke_endpoint_with_response_stream(
            EndpointName=name, Body=b"stream:4", ContentType="text/plain")
        assert response["InvokedProductionVariant"] == "AllTraffic" and response["ContentType"] == "text/plain"
        parts = [event["PayloadPart"]["Bytes"] for event in response["Body"]]
        assert b"".join(parts) == b"chunk-0\nchunk-1\nchunk-2\nchunk-3\n" and len(parts) >= 2
        with pytest.raises(ClientError) as exc:  # an error before the stream starts is a plain ModelError
            sagemaker_runtime_client.invoke_endpoint_with_response_stream(EndpointName=name, Body=b"error:400")
        assert error_of(exc)[0] == "ModelError"
    finally:
        sm.delete_endpoint(EndpointName=name)


def test_serial_pipeline_and_direct_invocation(sagemaker_client, sagemaker_runtime_client, serving_image):
    sm = sagemaker_client
    steps = [{"Image": serving_image, "ContainerHostname": f"step{i}", "Environment": {"STEP_PREFIX": f"{i}>"}}
             for i in (1, 2)]
    serial, direct = unique("pipeline"), unique("direct")
    sm.create_model(ModelName=serial, ExecutionRoleArn=ROLE, Containers=steps)
    sm.create_model(ModelName=direct, ExecutionRoleArn=ROLE, Containers=steps,
                    InferenceExecutionConfig={"Mode": "Direct"})
    config = endpoint_config(sm, ("Serial", serial, 1, 1.0), ("Direct", direct, 1, 0.0))
    name = deploy(sm, unique("ep-pipe"), config)
    try:
        assert len(endpoint_containers(name)) == 4  # two containers per instance
        out = sagemaker_runtime_client.invoke_endpoint(EndpointName=name, Body=b"x", ContentType="text/plain",
                                                       TargetVariant="Serial")
        assert out["Body"].read() == b"2>1>x" and out["ContentType"] == "text/plain"
        out = sagemaker_runtime_client.invoke_endpoint(EndpointName=name, Body=b"x", TargetVariant="Direct",
                                                       TargetContainerHostname="step2")
        assert out["Body"].read() == b"2>x"
        with pytest.raises(ClientError) as exc:
            sagemaker_runtime_client.invoke_endpoint(EndpointName=name, Body=b"x", TargetVariant="Direct")
        assert error_of(exc)[0] == "ValidationError" and "TargetContainerHostname" in error_of(exc)[1]
        with pytest.raises(ClientError) as exc:
            sagemaker_runtime_client.invoke_endpoint(EndpointName=name, Body=b"x", TargetVariant="Serial",
                                                     TargetContainerHostname="step1")
        assert error_of(exc)[0] == "ValidationError"
    finally:
        sm.delete_endpoint(EndpointName=name)


def test_multi_model_endpoint(sagemaker_client, sagemaker_runtime_client, s3_client, serving_image, bucket):
    sm = sagemaker_client
    for tag in ("a", "b"):
        s3_client.put_object(Bucket=bucket, Key=f"mme/{tag}.tar.gz", Body=model_tar({"which": tag}))
    model = unique("mme")
    sm.create_model(ModelName=model, ExecutionRoleArn=ROLE, PrimaryContainer={
        "Image": serving_image, "Mode": "MultiModel", "ModelDataUrl": f"s3://{bucket}/mme/"})
    name = deploy(sm, unique("ep-mme"), endpoint_config(sm, ("AllTraffic", model, 1, 1.0)))
    try:
        for _ in range(2):  # the second round finds both models loaded
            for tag in ("a", "b"):
                reply = json.loads(sagemaker_runtime_client.invoke_endpoint(
                    EndpointName=name, Body=b"{}", ContentType="application/json",
                    TargetModel=f"{tag}.tar.gz")["Body"].read())
                assert reply["model"] == {"which": tag} and reply["target"] == f"{tag}.tar.gz"
        with pytest.raises(ClientError) as exc:
            sagemaker_runtime_client.invoke_endpoint(EndpointName=name, Body=b"{}", TargetModel="missing.tar.gz")
        assert error_of(exc)[0] == "ValidationError" and "missing.tar.gz" in error_of(exc)[1]
        with pytest.raises(ClientError) as exc:
            sagemaker_runtime_client.invoke_endpoint(EndpointName=name, Body=b"{}")
        assert "TargetModel" in error_of(exc)[1]
    finally:
        sm.delete_endpoint(EndpointName=name)


def test_data_capture_and_metrics(sagemaker_client, sagemaker_runtime_client, s3_client, cloudwatch_client,
                                  serving_image, bucket):
    sm = sagemaker_client
    model = unique("capture-model")
    sm.create_model(ModelName=model, ExecutionRoleArn=ROLE, PrimaryContainer={"Image": serving_image})
    config = endpoint_config(sm, ("AllTraffic", model, 1, 1.0), DataCaptureConfig={
        "EnableCapture": True, "InitialSamplingPercentage": 100, "DestinationS3Uri": f"s3://{bucket}/capture",
        "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}]})
    name = deploy(sm, unique("ep-cap"), config)
    started = dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=2)
    for i in range(3):
        sagemaker_runtime_client.invoke_endpoint(EndpointName=name, Body=f"{i},1".encode(), ContentType="text/csv",
                                                 InferenceId=f"inf-{i}")
    with pytest.raises(ClientError):
        sagemaker_runtime_client.invoke_endpoint(EndpointName=name, Body=b"error:400")
    sm.delete_endpoint(EndpointName=name)  # flushes capture files and metrics
    keys = [o["Key"] for o in s3_client.list_objects_v2(Bucket=bucket, Prefix=f"capture/{name}/AllTraffic/")
            .get("Contents", [])]
    assert keys and all(k.endswith(".jsonl") for k in keys)
    today = dt.datetime.now(dt.timezone.utc).strftime("%Y/%m/%d")
    assert keys[0].startswith(f"capture/{name}/AllTraffic/{today}/")
    records = [json.loads(line) for key in keys
               for line in s3_client.get_object(Bucket=bucket, Key=key)["Body"].read().decode().splitlines()]
    assert sorted(r["eventMetadata"]["inferenceId"] for r in records) == ["inf-0", "inf-1", "inf-2"]
    first = next(r for r in records if r["eventMetadata"]["inferenceId"] == "inf-1")
    assert first["captureData"]["endpointInput"] == {"observedContentType": "text/csv", "mode": "INPUT",
                                                     "data": "1,1", "encoding": "CSV"}
    assert first["captureData"]["endpointOutput"]["data"] == "2.0" and first["eventVersion"] == "0"

    def stat(metric: str, statistic: str) -> float:
        points = cloudwatch_client.get_metric_statistics(
            Namespace="AWS/SageMaker", MetricName=metric, StartTime=started,
            EndTime=dt.datetime.now(dt.timezone.utc) + dt.timedelta(minutes=2), Period=60, Statistics=[statistic],
            Dimensions=[{"Name": "EndpointName", "Value": name}, {"Name": "VariantName", "Value": "AllTraffic"}],
        )["Datapoints"]
        return sum(p[statistic] for p in points)

    assert stat("Invocations", "Sum") == 4
    assert stat("Invocation4XXErrors", "Sum") == 1 and stat("Invocation5XXErrors", "Sum") == 0
    assert stat("ModelLatency", "SampleCount") == 4 and stat("ModelLatency", "Maximum") > 0
    assert stat("OverheadLatency", "SampleCount") == 4


def test_serverless_variant_starts_on_first_call_and_stops_when_idle(serving_image):
    with EmulatorServer(env={"SAGEMAKER_EMULATOR_SERVERLESS_IDLE_SECONDS": "2"}) as server:
        sm, runtime = server.client("sagemaker"), server.client("sagemaker-runtime")
        sm.create_model(ModelName="sls-model", ExecutionRoleArn=ROLE, PrimaryContainer={"Image": serving_image})
        sm.create_endpoint_config(EndpointConfigName="sls-config", ProductionVariants=[{
            "VariantName": "AllTraffic", "ModelName": "sls-model",
            "ServerlessConfig": {"MemorySizeInMB": 1024, "MaxConcurrency": 1}}])
        deploy(sm, "sls", "sls-config")
        arn = "arn:aws:sagemaker:us-east-1:123456789012:endpoint/sls"
        assert endpoint_containers("sls") == [], arn  # nothing runs before the first call
        assert runtime.invoke_endpoint(EndpointName="sls", Body=b"1,2", ContentType="text/csv")["Body"].read() \
            == b"3.0"
        assert len(endpoint_containers("sls")) == 1
        deadline = time.time() + 20
        while endpoint_containers("sls") and time.time() < deadline:
            time.sleep(0.5)
        assert endpoint_containers("sls") == []  # stopped after the idle time
        assert runtime.invoke_endpoint(EndpointName="sls", Body=b"2,2", ContentType="text/csv")["Body"].read() \
            == b"4.0"
        described = sm.describe_endpoint(EndpointName="sls")["ProductionVariants"][0]
        assert described["CurrentServerlessConfig"]["MemorySizeInMB"] == 1024
        sm.delete_endpoint(EndpointName="sls")
        assert endpoint_containers("sls") == []


def test_serverless_max_concurrency_throttles(sagemaker_emulator, sagemaker_client, serving_image):
    sm = sagemaker_client
    # no client-side retries: botocore would otherwise retry a throttled call until it got through
    runtime = sagemaker_emulator.client("sagemaker-runtime", config=Config(retries={"total_max_attempts": 1}))
    model, name = unique("sls-busy"), unique("sls-busy")
    sm.create_model(ModelName=model, ExecutionRoleArn=ROLE, PrimaryContainer={
        "Image": serving_image, "Environment": {"SLEEP_SECONDS": "1.5"}})
    sm.create_endpoint_config(EndpointConfigName=name, ProductionVariants=[{
        "VariantName": "AllTraffic", "ModelName": model,
        "ServerlessConfig": {"MemorySizeInMB": 1024, "MaxConcurrency": 1}}])
    deploy(sm, name, name)
    try:
        runtime.invoke_endpoint(EndpointName=name, Body=b"1,2", ContentType="text/csv")  # cold start first
        outcomes: list[str] = []

        def call() -> None:
            try:
                runtime.invoke_endpoint(EndpointName=name, Body=b"1,2", ContentType="text/csv")
                outcomes.append("ok")
            except ClientError as exc:
                error = exc.response["Error"]
                assert exc.response["ResponseMetadata"]["HTTPStatusCode"] == 429, exc.response
                assert "MaxConcurrency of 1" in error["Message"], error
                outcomes.append(error["Code"])

        threads = [threading.Thread(target=call) for _ in range(2)]
        for thread in threads:
            thread.start()
            time.sleep(0.3)  # the first is in the container when the second arrives
        for thread in threads:
            thread.join()
        assert outcomes == ["ThrottlingException", "ok"]
        assert runtime.invoke_endpoint(EndpointName=name, Body=b"2,2", ContentType="text/csv")["Body"].read() == b"4.0"
    finally:
        sm.delete_endpoint(EndpointName=name)


def test_serve_the_artifact_of_a_training_job(sagemaker_client, sagemaker_runtime_client, s3_client,
                                              training_image, serving_image, bucket):
    sm = sagemaker_client
    job = unique("train-then-serve")
    s3_client.put_object(Bucket=bucket, Key="train/data.csv", Body=b"1,2\n")
    sm.create_training_job(**training_request(job, bucket, training_image, InputDataConfig=[{
        "ChannelName": "train", "DataSource": {"S3DataSource": {
            "S3DataType": "S3Prefix", "S3Uri": f"s3://{bucket}/train/"}}}]))
    artifact = wait_training(sm, job)["ModelArtifacts"]["S3ModelArtifacts"]
    assert artifact.endswith(f"/{job}/output/model.tar.gz")
    model = unique("trained")
    sm.create_model(ModelName=model, ExecutionRoleArn=ROLE, PrimaryContainer={
        "Image": serving_image, "ModelDataUrl": artifact})
    name = deploy(sm, unique("ep-trained"), endpoint_config(sm, ("AllTraffic", model, 1, 1.0)))
    try:
        reply = json.loads(sagemaker_runtime_client.invoke_endpoint(EndpointName=name, Body=b"{}")["Body"].read())
        assert "report-algo-1.json" in reply["files"]  # what the training container wrote to /opt/ml/model
    finally:
        sm.delete_endpoint(EndpointName=name)


def test_model_timeout_and_payload_limit(serving_image):
    with EmulatorServer(env={"SAGEMAKER_EMULATOR_MODEL_TIMEOUT_SECONDS": "1"}) as server:
        sm, runtime = server.client("sagemaker"), server.client("sagemaker-runtime")
        sm.create_model(ModelName="slow", ExecutionRoleArn=ROLE, PrimaryContainer={
            "Image": serving_image, "Environment": {"SLEEP_SECONDS": "3"}})
        sm.create_endpoint_config(EndpointConfigName="slow", ProductionVariants=[{
            "VariantName": "AllTraffic", "ModelName": "slow", "InitialInstanceCount": 1,
            "InstanceType": "ml.m5.large"}])
        deploy(sm, "slow", "slow")
        with pytest.raises(ClientError) as exc:
            runtime.invoke_endpoint(EndpointName="slow", Body=b"{}", ContentType="application/json")
        response = exc.value.response
        assert error_of(exc)[0] == "ModelError" and response["OriginalStatusCode"] == 0
        assert "timed out while waiting for a response from container primary" in response["OriginalMessage"]
        with pytest.raises(ClientError) as exc:  # refused from Content-Length, before the body is read
            runtime.invoke_endpoint(EndpointName="slow", Body=b"x" * (6 * 1024 * 1024 + 1))
        assert error_of(exc)[0] == "ValidationError" and error_of(exc)[2] == 400
        sm.delete_endpoint(EndpointName="slow")
        assert endpoint_containers("slow") == []


def create_never_healthy(sm, image: str, name: str) -> None:
    """An endpoint (model and config of the same name) whose container never answers /ping with 200."""
    sm.create_model(ModelName=name, ExecutionRoleArn=ROLE, PrimaryContainer={
        "Image": image, "Environment": {"NEVER_HEALTHY": "1"}})
    sm.create_endpoint_config(EndpointConfigName=name, ProductionVariants=[{
        "VariantName": "AllTraffic", "ModelName": name, "InitialInstanceCount": 1, "InstanceType": "ml.m5.large"}])
    sm.create_endpoint(EndpointName=name, EndpointConfigName=name)


def test_never_healthy_container_fails_the_endpoint(serving_image):
    with EmulatorServer(env={"SAGEMAKER_EMULATOR_HEALTH_CHECK_TIMEOUT_SECONDS": "3"}) as server:
        sm = server.client("sagemaker")
        create_never_healthy(sm, serving_image, "sick")
        deadline = time.time() + 30
        while (ep := sm.describe_endpoint(EndpointName="sick"))["EndpointStatus"] == "Creating":
            assert time.time() < deadline
            time.sleep(0.3)
        assert ep["EndpointStatus"] == "Failed"
        assert "did not pass the ping health check within 3 seconds" in ep["FailureReason"]
        assert endpoint_containers("sick") == []
        sm.delete_endpoint(EndpointName="sick")


def test_delete_while_creating_stops_everything_at_once(serving_image):
    """The health-check window is 240 s; DeleteEndpoint must not wait it out, nor report Failed later."""
    with EmulatorServer() as server:
        sm = server.client("sagemaker")
        create_never_healthy(sm, serving_image, "slowstart")
        deadline = time.time() + 30
        while not endpoint_containers("slowstart"):  # its container is up, failing /ping
            assert time.time() < deadline
            time.sleep(0.2)
        assert sm.describe_endpoint(EndpointName="slowstart")["EndpointStatus"] == "Creating"
        sm.delete_endpoint(EndpointName="slowstart")
        deadline = time.time() + 10
        while endpoint_containers("slowstart"):
            assert time.time() < deadline, "the endpoint's container outlived DeleteEndpoint"
            time.sleep(0.2)
        with pytest.raises(ClientError) as exc:
            sm.describe_endpoint(EndpointName="slowstart")
        assert error_of(exc)[0] == "ValidationException"
        sm.create_endpoint(EndpointName="slowstart", EndpointConfigName="slowstart")  # the name is free again
        sm.delete_endpoint(EndpointName="slowstart")
        deadline = time.time() + 10
        while endpoint_containers("slowstart"):
            assert time.time() < deadline
            time.sleep(0.2)
        time.sleep(0.5)
        log = "\n".join(server.output)
        assert "slowstart: Failed" not in log
        assert "deleted while Creating" in log


def test_network_isolation_blocks_outbound_traffic(serving_image):
    """EnableNetworkIsolation: the serving container still answers, but can open no connection out,
    not even to the emulator's listener for containers, which a model without isolation reaches."""
    with EmulatorServer() as server:
        found = [re.search(r"reach the emulator at http://([\d.]+):(\d+)", line) for line in server.output]
        target = next((m.groups() for m in found if m), None)
        if target is None:
            pytest.skip("no Docker bridge listener for containers on this machine")
        sm, runtime = server.client("sagemaker"), server.client("sagemaker-runtime")
        replies = {}
        for isolated in (False, True):
            name = unique("iso" if isolated else "open")
            sm.create_model(ModelName=name, ExecutionRoleArn=ROLE, EnableNetworkIsolation=isolated,
                            PrimaryContainer={"Image": serving_image})
            sm.create_endpoint_config(EndpointConfigName=name, ProductionVariants=[{
                "VariantName": "AllTraffic", "ModelName": name, "InitialInstanceCount": 1,
                "InstanceType": "ml.m5.large"}])
            deploy(sm, name, name)
            echo = json.loads(runtime.invoke_endpoint(EndpointName=name, Body=b"hello")["Body"].read())
            assert echo["echo"] == "hello"
            probe = f"connect:{target[0]}:{target[1]}".encode()
            replies[isolated] = runtime.invoke_endpoint(EndpointName=name, Body=probe)["Body"].read().decode()
            sm.delete_endpoint(EndpointName=name)
            wait_until(lambda name=name: not endpoint_containers(name), 15, "the endpoint's containers to go")
        assert replies[False] == "connected"
        assert replies[True].startswith("blocked"), replies[True]
        for kind in ("network", "volume"):  # the relay's socket volume goes with the instance
            left = subprocess.run(["docker", kind, "ls", "-q", "--filter",
                                   f"label=sagemaker-emulator.owner={server.owner}"],
                                  capture_output=True, text=True, check=True).stdout.split()
            assert left == [], kind
