"""Processing jobs as real containers, driven through plain boto3 (spec §5, logs §6)."""

from __future__ import annotations

import gzip
import json
import subprocess
import time

import pytest
from botocore.exceptions import ClientError

from sagemaker_emulator.testing import EmulatorServer

from .helpers import (
    ROLE,
    error_of,
    processing_containers,
    processing_request,
    s3_input,
    s3_output,
    start_sleeping_processing,
    unique,
    wait_processing,
    wait_processing_sleeping,
)

GROUP = "/aws/sagemaker/ProcessingJobs"


@pytest.fixture(scope="module")
def bucket(s3_client) -> str:
    name = unique("processing-data")
    s3_client.create_bucket(Bucket=name)
    s3_client.put_object(Bucket=name, Key="raw/a.csv", Body=b"1,2\n")
    s3_client.put_object(Bucket=name, Key="raw/sub/b.csv", Body=b"3,4\n")
    s3_client.put_object(Bucket=name, Key="lookup/x.txt", Body=b"from manifest\n")
    s3_client.put_object(Bucket=name, Key="manifest.json", Body=json.dumps(
        [{"prefix": f"s3://{name}/lookup/"}, "x.txt"]).encode())
    s3_client.put_object(Bucket=name, Key="zipped/z.txt.gz", Body=gzip.compress(b"streamed and gunzipped"))
    for i in range(4):
        s3_client.put_object(Bucket=name, Key=f"shards/part-{i}.csv", Body=f"{i}\n".encode())
    return name


def read(s3, bucket: str, key: str) -> bytes:
    return s3.get_object(Bucket=bucket, Key=key)["Body"].read()


def keys(s3, bucket: str, prefix: str) -> list[str]:
    return sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", []))


def report_of(s3, bucket: str, name: str, host: str = "algo-1") -> dict:
    return json.loads(read(s3, bucket, f"out/{name}/report/report-{host}.json"))


@pytest.fixture(scope="module")
def full_job(sagemaker_client, bucket, processing_image) -> tuple[str, dict]:
    """Three inputs (prefix, manifest, gzipped Pipe) and two outputs, run to completion."""
    name = unique("proc")
    sagemaker_client.create_processing_job(**processing_request(
        name, bucket, processing_image, Environment={"MY_SETTING": "on"},
        inputs=[s3_input("raw", f"s3://{bucket}/raw", "/opt/ml/processing/input/raw"),
                s3_input("manifested", f"s3://{bucket}/manifest.json", "/opt/ml/processing/input/lookup",
                         S3DataType="ManifestFile"),
                s3_input("zipped", f"s3://{bucket}/zipped/", "/opt/ml/processing/input/zipped",
                         S3InputMode="Pipe", S3CompressionType="Gzip")]))
    sagemaker_client.get_waiter("processing_job_completed_or_stopped").wait(
        ProcessingJobName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 120})
    return name, wait_processing(sagemaker_client, name)


def test_inputs_to_outputs(full_job, s3_client, bucket):
    name, job = full_job
    assert job["ProcessingJobStatus"] == "Completed", job.get("FailureReason")
    assert job["ExitMessage"] == "processed on algo-1"
    assert job["ProcessingStartTime"] <= job["ProcessingEndTime"] <= job["LastModifiedTime"]
    assert job["CreationTime"] <= job["ProcessingStartTime"]
    report = report_of(s3_client, bucket, name)
    assert report["inputs"]["raw"] == {"a.csv": "1,2\n", "sub/b.csv": "3,4\n"}
    assert report["inputs"]["manifested"] == {"x.txt": "from manifest\n"}
    assert report["inputs"]["zipped"] == {"pipe": "streamed and gunzipped"}
    assert report["outputs_exist"] == [True, True]
    assert report["env"] == {"MY_SETTING": "on"}
    assert report["argv"] == ["--from-cmd"]  # the image's own ENTRYPOINT and CMD, no `train`/`serve`
    # uploaded to S3Uri itself (no job-name suffix), nested paths kept
    assert keys(s3_client, bucket, f"out/{name}/") == [
        f"out/{name}/data/nested/combined-algo-1.txt", f"out/{name}/report/report-algo-1.json"]
    assert read(s3_client, bucket, f"out/{name}/data/nested/combined-algo-1.txt") == b"1,2\n3,4\nfrom manifest\n"
    assert processing_containers(name) == []


def test_config_files(full_job, s3_client, bucket):
    name, job = full_job
    report = report_of(s3_client, bucket, name)
    config = report["job"]
    assert config["ProcessingJobName"] == name and config["ProcessingJobArn"] == job["ProcessingJobArn"]
    assert config["AppSpecification"] == {"ImageUri": job["AppSpecification"]["ImageUri"],
                                          "ContainerEntrypoint": None, "ContainerArguments": None}
    assert config["Environment"] == {"MY_SETTING": "on"}
    assert config["ProcessingInputs"][0] == {"InputName": "raw", "AppManaged": False, "S3Input": {
        "LocalPath": "/opt/ml/processing/input/raw", "S3Uri": f"s3://{bucket}/raw",
        "S3DistributionType": "FullyReplicated", "S3DataDistributionType": "FullyReplicated",
        "S3DataType": "S3Prefix", "S3InputMode": "File", "S3CompressionType": "None",
        "S3DownloadMode": "StartOfJob"}}
    assert config["ProcessingInputs"][2]["S3Input"]["S3InputMode"] == "Pipe"
    assert config["ProcessingOutputConfig"]["KmsKeyId"] is None
    assert config["ProcessingOutputConfig"]["Outputs"][0]["S3Output"] == {
        "S3Uri": f"s3://{bucket}/out/{name}/report", "LocalPath": "/opt/ml/processing/report",
        "S3UploadMode": "EndOfJob"}
    assert config["ProcessingResources"] == {"ClusterConfig": {
        "InstanceCount": 1, "InstanceType": "ml.m5.large", "VolumeSizeInGB": 1, "VolumeKmsKeyId": None}}
    assert config["RoleArn"] == ROLE and config["StoppingCondition"] == {"MaxRuntimeInSeconds": 300}
    assert report["resources"] == {"current_host": "algo-1", "hosts": ["algo-1"],
                                   "current_instance_type": "ml.m5.large", "network_interface_name": "eth0"}
    # what Describe shows: the request with the defaults filled in
    assert job["ProcessingInputs"][1]["S3Input"]["S3DataDistributionType"] == "FullyReplicated"
    assert job["ProcessingResources"]["ClusterConfig"]["InstanceCount"] == 1


def test_logs(full_job, logs_client):
    name, _ = full_job
    streams = logs_client.describe_log_streams(logGroupName=GROUP, logStreamNamePrefix=name + "/")["logStreams"]
    assert len(streams) == 1
    stream = streams[0]["logStreamName"]
    assert stream.startswith(f"{name}/algo-1-") and stream.rsplit("-", 1)[1].isdigit()
    events = logs_client.get_log_events(logGroupName=GROUP, logStreamName=stream, startFromHead=True)["events"]
    lines = [e["message"] for e in events]
    assert lines[0] == "starting on algo-1 of ['algo-1'] argv=['--from-cmd']" and lines[-1] == "done"


def test_entrypoint_arguments_and_isolation(sagemaker_client, s3_client, bucket, processing_image):
    cases = {
        "both": {"ContainerEntrypoint": ["python3", "/usr/local/bin/process"], "ContainerArguments": ["a", "b"]},
        "args": {"ContainerArguments": ["--only-args"]},
        "entry": {"ContainerEntrypoint": ["/usr/local/bin/process"]},  # image CMD ignored
        "shell": {"ContainerEntrypoint": ["sh", "-c", "exec /usr/local/bin/process from-shell \"$MY_X\""]},
    }
    names = {}
    for case, app in cases.items():
        names[case] = unique(f"ep-{case}")
        sagemaker_client.create_processing_job(**processing_request(
            names[case], bucket, processing_image, AppSpecification={"ImageUri": processing_image, **app},
            Environment={"MY_X": "x-value"}))
    isolated = unique("isolated")
    sagemaker_client.create_processing_job(**processing_request(
        isolated, bucket, processing_image, NetworkConfig={"EnableNetworkIsolation": True}))
    for name in [*names.values(), isolated]:
        job = wait_processing(sagemaker_client, name)
        assert job["ProcessingJobStatus"] == "Completed", job.get("FailureReason")
    argv = {case: report_of(s3_client, bucket, name)["argv"] for case, name in names.items()}
    assert argv == {"both": ["a", "b"], "args": ["--only-args"], "entry": [], "shell": ["from-shell", "x-value"]}
    assert report_of(s3_client, bucket, names["both"])["job"]["AppSpecification"]["ContainerArguments"] == ["a", "b"]
    assert report_of(s3_client, bucket, isolated)["interfaces"] == ["lo"]
    assert report_of(s3_client, bucket, names["args"])["interfaces"] != ["lo"]


def test_failure_exit_message_and_reason(sagemaker_client, bucket, processing_image):
    name = unique("fail")
    sagemaker_client.create_processing_job(**processing_request(name, bucket, processing_image,
                                                                Environment={"BEHAVIOUR": "fail"}))
    job = wait_processing(sagemaker_client, name)
    assert job["ProcessingJobStatus"] == "Failed"
    assert job["ExitMessage"] == "bad row 3 in the input"
    assert "exited with code 3" in job["FailureReason"] and "something went badly wrong" in job["FailureReason"]
    assert job["FailureReason"].startswith("AlgorithmError: ")
    summary = sagemaker_client.list_processing_jobs(NameContains=name)["ProcessingJobSummaries"]
    assert [(s["ProcessingJobStatus"], s["ExitMessage"]) for s in summary] == [("Failed", "bad row 3 in the input")]
    assert processing_containers(name) == []


def test_stop_with_continuous_output(sagemaker_client, s3_client, bucket, processing_image):
    name = unique("stop")
    outputs = [s3_output("report", f"s3://{bucket}/out/{name}/report", "/opt/ml/processing/report", "Continuous")]
    sagemaker_client.create_processing_job(**processing_request(
        name, bucket, processing_image, Environment={"BEHAVIOUR": "sleep"},
        ProcessingOutputConfig={"Outputs": outputs}))
    deadline = time.time() + 60
    while f"out/{name}/report/early.txt" not in keys(s3_client, bucket, f"out/{name}/"):  # uploaded while running
        assert time.time() < deadline, "continuous upload never happened"
        time.sleep(0.3)
    assert sagemaker_client.describe_processing_job(ProcessingJobName=name)["ProcessingJobStatus"] == "InProgress"
    sagemaker_client.stop_processing_job(ProcessingJobName=name)
    assert sagemaker_client.describe_processing_job(ProcessingJobName=name)["ProcessingJobStatus"] in (
        "Stopping", "Stopped")
    job = wait_processing(sagemaker_client, name, timeout=60)
    assert job["ProcessingJobStatus"] == "Stopped" and "FailureReason" not in job
    assert read(s3_client, bucket, f"out/{name}/report/stopped-algo-1.txt") == b"saved on SIGTERM"
    assert processing_containers(name) == []
    with pytest.raises(ClientError) as exc:
        sagemaker_client.stop_processing_job(ProcessingJobName=name)
    assert error_of(exc)[0] == "ValidationException"


def test_max_runtime_stops(sagemaker_client, bucket, processing_image):
    name = unique("timeout")
    sagemaker_client.create_processing_job(**processing_request(name, bucket, processing_image,
                                                                Environment={"BEHAVIOUR": "sleep"},
                                                                StoppingCondition={"MaxRuntimeInSeconds": 2}))
    job = wait_processing(sagemaker_client, name, timeout=60)
    assert job["ProcessingJobStatus"] == "Stopped"
    assert (job["ProcessingEndTime"] - job["ProcessingStartTime"]).total_seconds() < 30
    assert processing_containers(name) == []


def test_two_instances_shard_and_resolve(sagemaker_client, s3_client, logs_client, bucket, processing_image):
    name = unique("multi")
    sagemaker_client.create_processing_job(**processing_request(
        name, bucket, processing_image, count=2,
        inputs=[s3_input("shards", f"s3://{bucket}/shards/", "/opt/ml/processing/input/shards",
                         S3DataDistributionType="ShardedByS3Key"),
                s3_input("raw", f"s3://{bucket}/raw/", "/opt/ml/processing/input/raw")]))
    job = wait_processing(sagemaker_client, name)
    assert job["ProcessingJobStatus"] == "Completed", job.get("FailureReason")
    assert job["ExitMessage"] == "processed on algo-1processed on algo-2"
    reports = [report_of(s3_client, bucket, name, f"algo-{i}") for i in (1, 2)]
    shards = [set(r["inputs"]["shards"]) for r in reports]
    assert shards[0] and shards[1] and not shards[0] & shards[1]
    assert shards[0] | shards[1] == {f"part-{i}.csv" for i in range(4)}
    assert [r["inputs"]["raw"] for r in reports] == [{"a.csv": "1,2\n", "sub/b.csv": "3,4\n"}] * 2
    assert [r["resolved"] for r in reports] == [["algo-1", "algo-2"]] * 2
    assert [r["resources"]["current_host"] for r in reports] == ["algo-1", "algo-2"]
    assert reports[1]["resources"]["hosts"] == ["algo-1", "algo-2"]
    assert keys(s3_client, bucket, f"out/{name}/data/") == [
        f"out/{name}/data/nested/combined-algo-{i}.txt" for i in (1, 2)]
    streams = [s["logStreamName"] for s in logs_client.describe_log_streams(
        logGroupName=GROUP, logStreamNamePrefix=name + "/")["logStreams"]]
    assert [s.rsplit("-", 1)[0] for s in streams] == [f"{name}/algo-1", f"{name}/algo-2"]
    assert processing_containers(name) == []
    networks = subprocess.run(["docker", "network", "ls", "-q", "--filter", f"name=sm-processing-{name}"],
                              capture_output=True, text=True).stdout.split()
    assert networks == []


def test_list_delete_and_errors(sagemaker_client, logs_client, bucket, processing_image):
    name = unique("dup")
    arn = sagemaker_client.create_processing_job(**processing_request(
        name, bucket, processing_image, Environment={"BEHAVIOUR": "sleep"},
        Tags=[{"Key": "team", "Value": "ml"}]))["ProcessingJobArn"]
    assert arn == f"arn:aws:sagemaker:us-east-1:123456789012:processing-job/{name}"
    assert sagemaker_client.list_tags(ResourceArn=arn)["Tags"] == [{"Key": "team", "Value": "ml"}]
    assert "Tags" not in sagemaker_client.describe_processing_job(ProcessingJobName=name)
    with pytest.raises(ClientError) as exc:
        sagemaker_client.create_processing_job(**processing_request(name, bucket, processing_image))
    assert error_of(exc)[0] == "ResourceInUse" and "must be unique" in error_of(exc)[1]
    with pytest.raises(ClientError) as exc:
        sagemaker_client.delete_processing_job(ProcessingJobName=name)
    assert error_of(exc)[0] == "ResourceInUse"
    listed = sagemaker_client.list_processing_jobs(NameContains=name, StatusEquals="InProgress")
    assert [s["ProcessingJobName"] for s in listed["ProcessingJobSummaries"]] == [name]
    wait_processing_sleeping(logs_client, name)
    sagemaker_client.stop_processing_job(ProcessingJobName=name)
    assert wait_processing(sagemaker_client, name, timeout=60)["ProcessingJobStatus"] == "Stopped"
    sagemaker_client.delete_processing_job(ProcessingJobName=name)
    assert sagemaker_client.list_processing_jobs(NameContains=name)["ProcessingJobSummaries"] == []
    with pytest.raises(ClientError) as exc:
        sagemaker_client.describe_processing_job(ProcessingJobName=name)
    assert error_of(exc) == ("ValidationException", f"Could not find requested job with name {name}", 400)
    with pytest.raises(ClientError) as exc:
        sagemaker_client.stop_processing_job(ProcessingJobName=name)
    assert error_of(exc)[0] == "ValidationException"
    with pytest.raises(ClientError) as exc:
        sagemaker_client.delete_processing_job(ProcessingJobName=name)
    assert error_of(exc)[0] == "ResourceNotFound"
    bad = processing_request(unique("bad"), bucket, processing_image,
                             inputs=[s3_input("in", f"s3://{bucket}/raw", "/tmp/elsewhere")])
    with pytest.raises(ClientError) as exc:
        sagemaker_client.create_processing_job(**bad)
    assert error_of(exc)[0] == "ValidationException" and "/opt/ml/processing/" in error_of(exc)[1]


def test_list_pagination_and_order(sagemaker_client, bucket, processing_image):
    prefix = unique("page")
    names = [f"{prefix}-{i}" for i in range(3)]
    for name in names:
        sagemaker_client.create_processing_job(**processing_request(name, bucket, "not-built-anywhere:1"))
    for name in names:
        job = wait_processing(sagemaker_client, name, timeout=30)
        assert job["ProcessingJobStatus"] == "Failed" and "not-built-anywhere:1" in job["FailureReason"]
    first = sagemaker_client.list_processing_jobs(NameContains=prefix, MaxResults=2)
    second = sagemaker_client.list_processing_jobs(NameContains=prefix, MaxResults=2, NextToken=first["NextToken"])
    listed = [s["ProcessingJobName"] for s in first["ProcessingJobSummaries"] + second["ProcessingJobSummaries"]]
    assert listed == names and "NextToken" not in second  # CreationTime Ascending by default
    newest = sagemaker_client.list_processing_jobs(NameContains=prefix, SortOrder="Descending", MaxResults=1)
    assert newest["ProcessingJobSummaries"][0]["ProcessingJobName"] == names[-1]


def test_reattached_after_kill(tmp_path, processing_image):
    with EmulatorServer(data_dir=tmp_path) as server:
        name, bucket = start_sleeping_processing(server, processing_image, StoppingCondition={"MaxRuntimeInSeconds": 6})
        server.stop(kill=True)
        assert len(processing_containers(name)) == 1  # the container kept running without the emulator
        server.start()
        sm, s3 = server.client("sagemaker"), server.client("s3")
        assert bucket in [b["Name"] for b in s3.list_buckets()["Buckets"]]  # S3 is durable: the bucket is back
        job = wait_processing(sm, name, timeout=60)
        assert job["ProcessingJobStatus"] == "Stopped"
        assert read(s3, bucket, f"out/{name}/report/stopped-algo-1.txt") == b"saved on SIGTERM"
        assert processing_containers(name) == []


def test_failed_when_containers_are_gone(tmp_path, processing_image):
    with EmulatorServer(data_dir=tmp_path) as server:
        name, _ = start_sleeping_processing(server, processing_image)
        server.stop(kill=True)
        subprocess.run(["docker", "rm", "-f", *processing_containers(name)], capture_output=True, check=True)
        server.start()
        job = wait_processing(server.client("sagemaker"), name, timeout=30)
        assert job["ProcessingJobStatus"] == "Failed" and "containers no longer exist" in job["FailureReason"]
        assert not (tmp_path / "jobs" / "processing" / "us-east-1" / name).exists()


def test_graceful_shutdown_leaves_nothing(tmp_path, processing_image):
    with EmulatorServer(data_dir=tmp_path) as server:
        name, _ = start_sleeping_processing(server, processing_image, "stubborn")  # ignores SIGTERM
        server.client("sagemaker").stop_processing_job(ProcessingJobName=name)  # grace: 120 s
        time.sleep(0.5)
        started = time.time()
        server.stop()  # the stop under way is cut short; nothing outlives the emulator
        assert time.time() - started < 25
        assert processing_containers(name) == []
        assert not (tmp_path / "jobs" / "processing" / "us-east-1" / name).exists()
        server.start()
        job = server.client("sagemaker").describe_processing_job(ProcessingJobName=name)
        assert job["ProcessingJobStatus"] == "Failed" and "shut down" in job["FailureReason"]
