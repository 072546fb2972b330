"""Batch transform with real serving containers (tests/images/serving), driven through boto3."""

from __future__ import annotations

import gzip
import json
import random
import re
import subprocess
import time

import pytest
from botocore.exceptions import ClientError, WaiterError

from sagemaker_emulator.testing import EmulatorServer

from .helpers import (
    containers_with,
    error_of,
    start_transform_job,
    transform_model,
    unique,
    wait_transform,
    wait_until,
)

GROUP = "/aws/sagemaker/TransformJobs"


def transform_containers() -> list[str]:
    return subprocess.run(["docker", "ps", "-aq", "--filter", "label=sagemaker-emulator.kind=transform"],
                          capture_output=True, text=True).stdout.split()


@pytest.fixture(autouse=True)
def no_leftovers():
    yield
    deadline = time.time() + 10
    while transform_containers() and time.time() < deadline:
        time.sleep(0.2)
    assert transform_containers() == [], "a transform job left containers behind"


@pytest.fixture(scope="module")
def bucket(s3_client):
    name = unique("transform-bucket")
    s3_client.create_bucket(Bucket=name)
    return name


def wait(sm, name: str) -> dict:
    sm.get_waiter("transform_job_completed_or_stopped").wait(
        TransformJobName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 120})
    return sm.describe_transform_job(TransformJobName=name)


def get(s3, bucket: str, key: str) -> bytes:
    return s3.get_object(Bucket=bucket, Key=key)["Body"].read()


def stream_lines(logs, stream: str) -> list[str]:
    lines, token = [], None
    while True:
        kwargs = {"nextToken": token} if token else {}
        page = logs.get_log_events(logGroupName=GROUP, logStreamName=stream, startFromHead=True, **kwargs)
        lines += [event["message"] for event in page["events"]]
        if not page["events"]:
            return lines
        token = page["nextForwardToken"]


def job_streams(logs, job: str) -> list[str]:
    deadline = time.time() + 5
    streams = []
    while time.time() < deadline:
        streams = [s["logStreamName"] for s in logs.describe_log_streams(
            logGroupName=GROUP, logStreamNamePrefix=f"{job}/")["logStreams"]]
        if streams:
            break
        time.sleep(0.2)
    return streams


def test_csv_multi_record_matches_single_record_and_respects_max_payload(
        sagemaker_client, s3_client, logs_client, bucket, serving_image):
    rng = random.Random(7)
    rows = [[rng.randint(0, 999) for _ in range(40)] for _ in range(10_000)]  # ~1.6 MB: several 1 MB batches
    s3_client.put_object(Bucket=bucket, Key="big/data.csv", Body="\n".join(",".join(map(str, r)) for r in rows))
    expected = "".join(f"{float(sum(r))}\n" for r in rows).encode()
    model = transform_model(sagemaker_client, serving_image, REPORT_PAYLOAD_SIZE="1")
    multi = start_transform_job(sagemaker_client, model, f"s3://{bucket}/big/", f"s3://{bucket}/multi/",
                                BatchStrategy="MultiRecord", MaxPayloadInMB=1, MaxConcurrentTransforms=2)
    single = start_transform_job(sagemaker_client, model, f"s3://{bucket}/big/", f"s3://{bucket}/single/",
                                 BatchStrategy="SingleRecord", MaxConcurrentTransforms=4)
    assert sagemaker_client.describe_transform_job(TransformJobName=multi)["TransformJobStatus"] == "InProgress"
    for name in (multi, single):
        job = wait(sagemaker_client, name)
        assert job["TransformJobStatus"] == "Completed", job.get("FailureReason")
        assert job["TransformStartTime"] <= job["TransformEndTime"]
    assert get(s3_client, bucket, "multi/data.csv.out") == expected
    assert get(s3_client, bucket, "single/data.csv.out") == expected

    # The container saw several requests, none above 1 MB; its output is in CloudWatch Logs.
    streams = job_streams(logs_client, multi)
    container_stream = next(s for s in streams if not s.endswith("/data-log"))
    assert re.fullmatch(rf"{multi}/i-[0-9a-f]{{17}}-\d+", container_stream)
    sizes = [int(m.group(1)) for line in stream_lines(logs_client, container_stream)
             if (m := re.match(r"payload bytes=(\d+)", line))]
    assert len(sizes) >= 2 and sum(sizes) == sum(len(",".join(map(str, r))) + 1 for r in rows)
    assert max(sizes) <= 1024 * 1024
    data_log = stream_lines(logs_client, f"{container_stream}/data-log")
    assert "MaxConcurrentTransforms=2, MaxPayloadInMB=1, BatchStrategy=MULTI_RECORD" in data_log[0]
    assert any(f"{bucket}/big/data.csv: Completed: 10000 record(s) in {len(sizes)} request(s)" in line
               for line in data_log)


def test_two_instances_share_input_files(sagemaker_client, s3_client, logs_client, bucket, serving_image, tmp_path):
    for i in range(6):
        s3_client.put_object(Bucket=bucket, Key=f"many/part-{i}.csv", Body=f"{i},1\n{i},2\n".encode())
    model = transform_model(sagemaker_client, serving_image)
    out = tmp_path / "out"
    name = start_transform_job(sagemaker_client, model, f"s3://{bucket}/many/", f"file://{out}", instances=2)
    job = wait(sagemaker_client, name)
    assert job["TransformJobStatus"] == "Completed", job.get("FailureReason")
    for i in range(6):
        assert (out / f"part-{i}.csv.out").read_bytes() == f"{i + 1.0}\n{i + 2.0}\n".encode()
    data_logs = [s for s in job_streams(logs_client, name) if s.endswith("/data-log")]
    assert len(data_logs) == 2
    done = re.compile(r"(part-\d)\.csv: Completed")
    shares = [{m.group(1) for line in stream_lines(logs_client, s) if (m := done.search(line))} for s in data_logs]
    assert all(shares) and not shares[0] & shares[1]
    assert shares[0] | shares[1] == {f"part-{i}" for i in range(6)}


def test_jsonlines_input_filter_join_and_output_filter(sagemaker_client, s3_client, bucket, serving_image):
    lines = [{"id": i, "features": [i, i * 2], "label": "x"} for i in range(5)]
    s3_client.put_object(Bucket=bucket, Key="jl/in.jsonl", Body="\n".join(json.dumps(x) for x in lines).encode())
    model = transform_model(sagemaker_client, serving_image)
    name = start_transform_job(sagemaker_client, model, f"s3://{bucket}/jl/", f"s3://{bucket}/jl-out/",
                               content_type="application/jsonlines", BatchStrategy="SingleRecord",
                               TransformOutput={"Accept": "application/json"},
                               DataProcessing={"InputFilter": "$.features", "JoinSource": "Input",
                                               "OutputFilter": "$['id','SageMakerOutput']"})
    job = wait(sagemaker_client, name)
    assert job["TransformJobStatus"] == "Completed", job.get("FailureReason")
    assert job["DataProcessing"]["OutputFilter"] == "$['id','SageMakerOutput']"
    out = [json.loads(line) for line in get(s3_client, bucket, "jl-out/in.jsonl.out").decode().splitlines()]
    assert [o["id"] for o in out] == list(range(5))
    assert all(set(o) == {"id", "SageMakerOutput"} for o in out)
    assert [json.loads(o["SageMakerOutput"]["echo"]) for o in out] == [x["features"] for x in lines]
    assert out[0]["SageMakerOutput"]["accept"] == "application/json"
    assert out[0]["SageMakerOutput"]["content_type"] == "application/jsonlines"


def test_csv_join_with_filters(sagemaker_client, s3_client, bucket, serving_image):
    s3_client.put_object(Bucket=bucket, Key="join/in.csv", Body=b"a,1,2\nb,3,4\nc,5,6\n")
    model = transform_model(sagemaker_client, serving_image)
    name = start_transform_job(sagemaker_client, model, f"s3://{bucket}/join/", f"s3://{bucket}/join-out",
                               TransformOutput={"Accept": "text/csv"},
                               DataProcessing={"InputFilter": "$[1:]", "JoinSource": "Input",
                                               "OutputFilter": "$[0,-1]"})
    assert wait(sagemaker_client, name)["TransformJobStatus"] == "Completed"
    assert get(s3_client, bucket, "join-out/in.csv.out") == b"a,3.0\nb,7.0\nc,11.0\n"


def test_gzip_manifest_and_execution_parameters(sagemaker_client, s3_client, logs_client, bucket, serving_image):
    s3_client.put_object(Bucket=bucket, Key="gz/x/one.csv.gz", Body=gzip.compress(b"1,1\n2,2\n"))
    s3_client.put_object(Bucket=bucket, Key="gz/y/two.csv.gz", Body=gzip.compress(b"3,3\n"))
    s3_client.put_object(Bucket=bucket, Key="gz/unlisted.csv.gz", Body=gzip.compress(b"9,9\n"))
    s3_client.put_object(Bucket=bucket, Key="gz/manifest.json", Body=json.dumps(
        [{"prefix": f"s3://{bucket}/gz/"}, "x/one.csv.gz", "y/two.csv.gz"]).encode())
    params = {"MaxConcurrentTransforms": 3, "BatchStrategy": "SINGLE_RECORD", "MaxPayloadInMB": 2}
    model = transform_model(sagemaker_client, serving_image, EXECUTION_PARAMETERS=json.dumps(params))
    name = start_transform_job(sagemaker_client, model, f"s3://{bucket}/gz/manifest.json", f"s3://{bucket}/gz-out/",
                               data_type="ManifestFile", TransformInput={"CompressionType": "Gzip"})
    assert wait(sagemaker_client, name)["TransformJobStatus"] == "Completed"
    assert get(s3_client, bucket, "gz-out/x/one.csv.gz.out") == b"2.0\n4.0\n"
    assert get(s3_client, bucket, "gz-out/y/two.csv.gz.out") == b"6.0\n"
    listed = s3_client.list_objects_v2(Bucket=bucket, Prefix="gz-out/")["Contents"]
    assert len(listed) == 2
    data_log = next(s for s in job_streams(logs_client, name) if s.endswith("/data-log"))
    assert "MaxConcurrentTransforms=3, MaxPayloadInMB=2, BatchStrategy=SINGLE_RECORD" in \
        stream_lines(logs_client, data_log)[0]


def test_rejected_record_fails_the_job_and_keeps_earlier_outputs(sagemaker_client, s3_client, logs_client, bucket,
                                                                  serving_image):
    s3_client.put_object(Bucket=bucket, Key="bad/a.csv", Body=b"1,2\n")
    s3_client.put_object(Bucket=bucket, Key="bad/b.csv", Body=b"1,2\nerror:400\n3,4\n")
    model = transform_model(sagemaker_client, serving_image)
    name = start_transform_job(sagemaker_client, model, f"s3://{bucket}/bad/", f"s3://{bucket}/bad-out/",
                               BatchStrategy="SingleRecord")
    with pytest.raises(WaiterError):
        wait(sagemaker_client, name)
    job = sagemaker_client.describe_transform_job(TransformJobName=name)
    assert job["TransformJobStatus"] == "Failed"
    reason = job["FailureReason"]
    assert f"{bucket}/bad/b.csv (record 2)" in reason and "400" in reason and "bad input" in reason, reason
    assert get(s3_client, bucket, "bad-out/a.csv.out") == b"3.0\n"
    with pytest.raises(ClientError):
        s3_client.head_object(Bucket=bucket, Key="bad-out/b.csv.out")
    summary = sagemaker_client.list_transform_jobs(NameContains=name)["TransformJobSummaries"]
    assert [(s["TransformJobName"], s["TransformJobStatus"], s["FailureReason"]) for s in summary] == \
        [(name, "Failed", reason)]
    data_log = next(s for s in job_streams(logs_client, name) if s.endswith("/data-log"))
    assert any("bad/b.csv: ClientError" in line for line in stream_lines(logs_client, data_log))


def test_record_over_max_payload_fails(sagemaker_client, s3_client, bucket, serving_image):
    s3_client.put_object(Bucket=bucket, Key="huge/in.csv", Body=b"1\n" + b"2" * (1024 * 1024 + 10) + b"\n")
    model = transform_model(sagemaker_client, serving_image)
    name = start_transform_job(sagemaker_client, model, f"s3://{bucket}/huge/", f"s3://{bucket}/huge-out/",
                               MaxPayloadInMB=1)
    job = wait_transform(sagemaker_client, name)
    assert job["TransformJobStatus"] == "Failed"
    assert "huge/in.csv" in job["FailureReason"] and "larger than MaxPayloadInMB" in job["FailureReason"]


def test_invocation_timeout_and_retries(sagemaker_client, s3_client, bucket, serving_image):
    s3_client.put_object(Bucket=bucket, Key="timeout/in.csv", Body=b"1\n")
    model = transform_model(sagemaker_client, serving_image, SLEEP_SECONDS="3", REPORT_PAYLOAD_SIZE="1")
    name = start_transform_job(sagemaker_client, model, f"s3://{bucket}/timeout/", f"s3://{bucket}/timeout-out/",
                               ModelClientConfig={"InvocationsTimeoutInSeconds": 1, "InvocationsMaxRetries": 1})
    job = wait_transform(sagemaker_client, name)
    assert job["TransformJobStatus"] == "Failed"
    assert job["ModelClientConfig"] == {"InvocationsTimeoutInSeconds": 1, "InvocationsMaxRetries": 1}
    assert "timeout/in.csv" in job["FailureReason"] and "within 1 seconds" in job["FailureReason"]
    assert "after 1 retry" in job["FailureReason"]


def test_missing_image_fails_the_job(sagemaker_client, s3_client, bucket, docker_ready):
    s3_client.put_object(Bucket=bucket, Key="noimage/in.csv", Body=b"1\n")
    model = transform_model(sagemaker_client, "sm-no-such-image:404")
    name = start_transform_job(sagemaker_client, model, f"s3://{bucket}/noimage/", f"s3://{bucket}/noimage-out/")
    job = wait_transform(sagemaker_client, name)
    assert job["TransformJobStatus"] == "Failed" and "sm-no-such-image:404" in job["FailureReason"]
    assert job["TransformEndTime"] >= job["TransformStartTime"]


def test_stop(sagemaker_client, s3_client, bucket, serving_image):
    s3_client.put_object(Bucket=bucket, Key="slow/in.csv", Body=b"".join(b"%d,1\n" % i for i in range(100)))
    model = transform_model(sagemaker_client, serving_image, SLEEP_SECONDS="0.5")
    name = start_transform_job(sagemaker_client, model, f"s3://{bucket}/slow/", f"s3://{bucket}/slow-out/",
                               BatchStrategy="SingleRecord", Environment={"MY_SETTING": "42"})
    deadline = time.time() + 60
    while not transform_containers() and time.time() < deadline:
        time.sleep(0.2)
    inspect = json.loads(subprocess.run(["docker", "inspect", *transform_containers()], capture_output=True,
                                        text=True).stdout)
    env = set(inspect[0]["Config"]["Env"])
    assert {"SAGEMAKER_BATCH=true", "MY_SETTING=42", "SAGEMAKER_BATCH_STRATEGY=SINGLE_RECORD",
            "SLEEP_SECONDS=0.5"} <= env
    assert inspect[0]["Config"]["Cmd"] == ["serve"]
    time.sleep(1.5)
    sagemaker_client.stop_transform_job(TransformJobName=name)
    assert sagemaker_client.describe_transform_job(TransformJobName=name)["TransformJobStatus"] in \
        ("Stopping", "Stopped")
    job = wait(sagemaker_client, name)
    assert job["TransformJobStatus"] == "Stopped" and "FailureReason" not in job
    assert "Contents" not in s3_client.list_objects_v2(Bucket=bucket, Prefix="slow-out/")
    code, message, _ = error_of(pytest.raises(ClientError, sagemaker_client.stop_transform_job,
                                              TransformJobName=name))
    assert code == "ValidationException" and "Stopped" in message


def test_api_errors(sagemaker_client, s3_client, bucket, serving_image):
    with pytest.raises(ClientError) as missing_model:
        start_transform_job(sagemaker_client, "no-such-model", f"s3://{bucket}/x/", f"s3://{bucket}/y/")
    code, message, status = error_of(missing_model)
    assert (code, status) == ("ValidationException", 400) and "no-such-model" in message
    with pytest.raises(ClientError) as missing:
        sagemaker_client.describe_transform_job(TransformJobName="no-such-job")
    assert error_of(missing)[0] == "ValidationException"
    with pytest.raises(ClientError) as stop_missing:
        sagemaker_client.stop_transform_job(TransformJobName="no-such-job")
    assert error_of(stop_missing)[0] == "ValidationException"
    with pytest.raises(WaiterError):
        sagemaker_client.get_waiter("transform_job_completed_or_stopped").wait(
            TransformJobName="no-such-job", WaiterConfig={"Delay": 1, "MaxAttempts": 2})

    s3_client.put_object(Bucket=bucket, Key="api/in.csv", Body=b"1\n")
    model = transform_model(sagemaker_client, serving_image)
    name = unique("tx")
    request = dict(TransformJobName=name, ModelName=model, TransformInput={
        "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": f"s3://{bucket}/api/"}}},
        TransformOutput={"S3OutputPath": f"s3://{bucket}/api-out/"},
        TransformResources={"InstanceType": "ml.m5.large", "InstanceCount": 1}, Tags=[{"Key": "k", "Value": "v"}])
    arn = sagemaker_client.create_transform_job(**request)["TransformJobArn"]
    assert arn == f"arn:aws:sagemaker:us-east-1:123456789012:transform-job/{name}"
    with pytest.raises(ClientError) as duplicate:
        sagemaker_client.create_transform_job(**request)
    assert error_of(duplicate)[0] == "ResourceInUse"
    job = wait(sagemaker_client, name)
    assert job["TransformInput"]["SplitType"] == "None" and job["TransformOutput"]["AssembleWith"] == "None"
    reply = json.loads(get(s3_client, bucket, "api-out/in.csv.out"))  # SplitType None: the object as is
    assert (reply["echo"], reply["content_type"], reply["accept"]) == ("1\n", None, None)
    assert sagemaker_client.list_tags(ResourceArn=arn)["Tags"] == [{"Key": "k", "Value": "v"}]
    listed = sagemaker_client.list_transform_jobs(NameContains=name, StatusEquals="Completed")
    assert [s["TransformJobName"] for s in listed["TransformJobSummaries"]] == [name]

    bad = dict(request, TransformJobName=unique("tx"))
    for change, fragment in ((dict(MaxPayloadInMB=101), "MaxPayloadInMB"),
                             (dict(MaxPayloadInMB=50, MaxConcurrentTransforms=3), "MaxConcurrentTransforms"),
                             (dict(DataProcessing={"InputFilter": "$..deep"}), "InputFilter")):
        with pytest.raises(ClientError) as invalid:
            sagemaker_client.create_transform_job(**{**bad, **change})
        code, message, _ = error_of(invalid)
        assert code == "ValidationException" and fragment in message


@pytest.mark.parametrize("kill", [False, True], ids=["sigterm", "sigkill"])
def test_emulator_restart_fails_or_resumes_jobs_without_leftovers(tmp_path, serving_image, kill):
    with EmulatorServer(data_dir=tmp_path) as server:
        sm, s3 = server.client("sagemaker"), server.client("s3")
        bucket = unique("restart-bucket")
        s3.create_bucket(Bucket=bucket)
        s3.put_object(Bucket=bucket, Key="in/slow.csv", Body=b"1\n" * 100)
        model = transform_model(sm, serving_image, SLEEP_SECONDS="0.5")
        name = start_transform_job(sm, model, f"s3://{bucket}/in/", f"s3://{bucket}/out/", BatchStrategy="SingleRecord")
        arn = sm.describe_transform_job(TransformJobName=name)["TransformJobArn"]

        deadline = time.time() + 60
        while not containers_with(arn) and time.time() < deadline:
            time.sleep(0.2)
        time.sleep(1)
        old = set(containers_with(arn))
        server.stop(kill=kill)
        assert bool(containers_with(arn)) == kill  # graceful shutdown removes them; after kill -9 they still run
        server.start()
        sm = server.client("sagemaker")
        if kill:  # it resumes on new containers (test_crash.py follows one to Completed); and it can be stopped
            wait_until(lambda: (now := set(containers_with(arn))) and not now & old, 60, "the resumed job's containers")
            sm.stop_transform_job(TransformJobName=name)
        job = wait_transform(sm, name, timeout=30)
        if kill:
            assert job["TransformJobStatus"] == "Stopped", job.get("FailureReason")
        else:
            assert job["TransformJobStatus"] == "Failed" and "shut down" in job["FailureReason"]
        assert containers_with(arn) == []
