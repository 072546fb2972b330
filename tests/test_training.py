"""Training jobs as real containers, driven through plain boto3 (spec §2)."""

from __future__ import annotations

import json
import time

import pytest
from botocore.exceptions import ClientError

from .helpers import error_of, model_files, training_request, unique, wait_secondary, wait_training


@pytest.fixture(scope="module")
def bucket(s3_client) -> str:
    name = unique("training-data")
    s3_client.create_bucket(Bucket=name)
    s3_client.put_object(Bucket=name, Key="train/a.csv", Body=b"1,2\n")
    s3_client.put_object(Bucket=name, Key="train/sub/b.csv", Body=b"3,4\n")
    for i in range(4):
        s3_client.put_object(Bucket=name, Key=f"shards/part-{i}.csv", Body=f"{i}\n".encode())
    s3_client.put_object(Bucket=name, Key="manifested/x.txt", Body=b"from manifest")
    s3_client.put_object(Bucket=name, Key="manifest.json", Body=json.dumps(
        [{"prefix": f"s3://{name}/manifested/"}, "x.txt"]).encode())
    return name


def test_full_contract(sagemaker_client, s3_client, logs_client, bucket, training_image, tmp_path):
    local = tmp_path / "local"
    local.mkdir()
    (local / "l.txt").write_text("local data")
    name = unique("train")
    sagemaker_client.create_training_job(**training_request(
        name, bucket, training_image,
        HyperParameters={"epochs": "1", "eta": "0.1"},
        Environment={"MY_SETTING": "on"},
        AlgorithmSpecification={"TrainingImage": training_image, "TrainingInputMode": "File", "MetricDefinitions": [
            {"Name": "train:loss", "Regex": "train_loss=([0-9.]+)"},
            {"Name": "valid:acc", "Regex": "valid_acc=([0-9.]+)"}]},
        InputDataConfig=[
            {"ChannelName": "train", "ContentType": "text/csv", "DataSource": {"S3DataSource": {
                "S3DataType": "S3Prefix", "S3Uri": f"s3://{bucket}/train"}}},
            {"ChannelName": "manifest", "DataSource": {"S3DataSource": {
                "S3DataType": "ManifestFile", "S3Uri": f"s3://{bucket}/manifest.json"}}},
            {"ChannelName": "local", "DataSource": {"S3DataSource": {
                "S3DataType": "S3Prefix", "S3Uri": f"file://{local}"}}}]))
    sagemaker_client.get_waiter("training_job_completed_or_stopped").wait(
        TrainingJobName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 180})
    job = wait_training(sagemaker_client, name)
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    assert job["SecondaryStatus"] == "Completed"
    assert [t["Status"] for t in job["SecondaryStatusTransitions"]] == [
        "Starting", "Downloading", "Training", "Uploading", "Completed"]
    assert all("StatusMessage" in t for t in job["SecondaryStatusTransitions"])
    assert job["TrainingTimeInSeconds"] >= 1 and job["BillableTimeInSeconds"] >= 1
    assert job["ResourceConfig"]["InstanceCount"] == 1
    uri = job["ModelArtifacts"]["S3ModelArtifacts"]
    assert uri == f"s3://{bucket}/output/{name}/output/model.tar.gz"
    report = json.loads(model_files(s3_client, uri)["report-algo-1.json"])
    assert report["hyperparameters"] == {"epochs": "1", "eta": "0.1"}
    assert report["inputdataconfig"]["train"] == {"ContentType": "text/csv", "TrainingInputMode": "File",
                                                  "S3DistributionType": "FullyReplicated", "RecordWrapperType": "None"}
    assert report["resourceconfig"]["current_host"] == "algo-1"
    assert report["resourceconfig"]["instance_groups"][0]["instance_group_name"] == "homogeneousCluster"
    assert report["channels"]["train"] == {"a.csv": "1,2\n", "sub/b.csv": "3,4\n"}
    assert report["channels"]["manifest"] == {"x.txt": "from manifest"}
    assert report["channels"]["local"] == {"l.txt": "local data"}
    assert report["env"]["MY_SETTING"] == "on" and report["env"]["TRAINING_JOB_NAME"] == name
    assert report["env"]["TRAINING_JOB_ARN"] == job["TrainingJobArn"]
    out_key = f"output/{name}/output/output.tar.gz"
    assert s3_client.head_object(Bucket=bucket, Key=out_key)["ContentLength"] > 0
    metrics = {m["MetricName"]: m["Value"] for m in job["FinalMetricDataList"]}
    assert metrics == {"train:loss": pytest.approx(0.3333), "valid:acc": pytest.approx(0.7)}
    streams = logs_client.describe_log_streams(logGroupName="/aws/sagemaker/TrainingJobs",
                                               logStreamNamePrefix=name + "/")["logStreams"]
    assert len(streams) == 1 and streams[0]["logStreamName"].startswith(f"{name}/algo-1-")
    events = logs_client.get_log_events(logGroupName="/aws/sagemaker/TrainingJobs",
                                        logStreamName=streams[0]["logStreamName"], startFromHead=True)["events"]
    lines = [e["message"] for e in events]
    assert lines[0].startswith("starting on algo-1") and lines[-1] == "done"
    assert [line for line in lines if line.startswith("epoch=")] == [
        "epoch=0 train_loss=1.0000; valid_acc=0.50", "epoch=1 train_loss=0.5000; valid_acc=0.60",
        "epoch=2 train_loss=0.3333; valid_acc=0.70"]
    listed = sagemaker_client.list_training_jobs(NameContains=name)["TrainingJobSummaries"]
    assert [(j["TrainingJobName"], j["TrainingJobStatus"]) for j in listed] == [(name, "Completed")]
    assert sagemaker_client.list_training_jobs(NameContains=name, StatusEquals="Failed")["TrainingJobSummaries"] == []


def test_failure_file_becomes_failure_reason(sagemaker_client, bucket, training_image):
    name = unique("fail")
    sagemaker_client.create_training_job(**training_request(name, bucket, training_image,
                                                            HyperParameters={"behaviour": "fail-file"}))
    job = wait_training(sagemaker_client, name)
    assert job["TrainingJobStatus"] == "Failed" and job["SecondaryStatus"] == "Failed"
    assert "Bad hyperparameter: learning_rate must be positive" in job["FailureReason"]


def test_exit_code_without_failure_file(sagemaker_client, bucket, training_image):
    name = unique("exit")
    sagemaker_client.create_training_job(**training_request(name, bucket, training_image,
                                                            HyperParameters={"behaviour": "exit-code"}))
    job = wait_training(sagemaker_client, name)
    assert job["TrainingJobStatus"] == "Failed"
    assert "exited with code 7" in job["FailureReason"]
    assert "something went badly wrong" in job["FailureReason"]


def test_stop_keeps_artifacts(sagemaker_client, s3_client, bucket, training_image):
    name = unique("stop")
    sagemaker_client.create_training_job(**training_request(name, bucket, training_image,
                                                            HyperParameters={"behaviour": "sleep"}))
    wait_secondary(sagemaker_client, name, "Training")  # running, with its SIGTERM handler installed
    sagemaker_client.stop_training_job(TrainingJobName=name)
    assert sagemaker_client.describe_training_job(TrainingJobName=name)["TrainingJobStatus"] in ("Stopping", "Stopped")
    job = wait_training(sagemaker_client, name)
    assert (job["TrainingJobStatus"], job["SecondaryStatus"]) == ("Stopped", "Stopped")
    assert model_files(s3_client, job["ModelArtifacts"]["S3ModelArtifacts"])["stopped.txt"] == b"saved on SIGTERM"
    with pytest.raises(ClientError) as exc:
        sagemaker_client.stop_training_job(TrainingJobName=name)
    assert error_of(exc)[0] == "ValidationException"


def test_max_runtime(sagemaker_client, bucket, training_image):
    name = unique("timeout")
    sagemaker_client.create_training_job(**training_request(name, bucket, training_image,
                                                            HyperParameters={"behaviour": "sleep"},
                                                            StoppingCondition={"MaxRuntimeInSeconds": 4}))
    job = wait_training(sagemaker_client, name)
    assert (job["TrainingJobStatus"], job["SecondaryStatus"]) == ("Stopped", "MaxRuntimeExceeded")


def test_missing_image_fails_fast(sagemaker_client, bucket, docker_ready):
    name = unique("noimage")
    started = time.time()
    image = "123456789012.dkr.ecr.us-east-1.amazonaws.com/not-built-here:1.0"
    sagemaker_client.create_training_job(**training_request(name, bucket, image))
    job = wait_training(sagemaker_client, name, timeout=30)
    assert job["TrainingJobStatus"] == "Failed" and time.time() - started < 30
    assert "not-built-here:1.0" in job["FailureReason"] and "docker build" in job["FailureReason"]


def test_two_instances_shard_and_resolve(sagemaker_client, s3_client, bucket, training_image):
    name = unique("multi")
    sagemaker_client.create_training_job(**training_request(
        name, bucket, training_image,
        ResourceConfig={"InstanceType": "ml.m5.large", "InstanceCount": 2, "VolumeSizeInGB": 1},
        InputDataConfig=[{"ChannelName": "train", "DataSource": {"S3DataSource": {
            "S3DataType": "S3Prefix", "S3Uri": f"s3://{bucket}/shards/",
            "S3DataDistributionType": "ShardedByS3Key"}}}]))
    job = wait_training(sagemaker_client, name)
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    files = model_files(s3_client, job["ModelArtifacts"]["S3ModelArtifacts"])
    reports = [json.loads(files[f"report-algo-{i}.json"]) for i in (1, 2)]
    shards = [set(r["channels"]["train"]) for r in reports]
    assert shards[0] and shards[1] and not shards[0] & shards[1]
    assert shards[0] | shards[1] == {f"part-{i}.csv" for i in range(4)}
    assert [r["resolved"] for r in reports] == [["algo-1", "algo-2"]] * 2
    assert [r["resourceconfig"]["current_host"] for r in reports] == ["algo-1", "algo-2"]


@pytest.mark.parametrize("count", [3])
def test_every_host_resolves_every_other_from_the_first_instruction(sagemaker_client, s3_client, bucket,
                                                                    training_image, count):
    """On AWS every host is resolvable before the algorithm starts: one lookup, no retry, on each host."""
    name = unique("resolve")
    sagemaker_client.create_training_job(**training_request(
        name, bucket, training_image, HyperParameters={"resolve_once": "1"},
        ResourceConfig={"InstanceType": "ml.m5.large", "InstanceCount": count, "VolumeSizeInGB": 1}))
    job = wait_training(sagemaker_client, name)
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    files = model_files(s3_client, job["ModelArtifacts"]["S3ModelArtifacts"])
    hosts = [f"algo-{i}" for i in range(1, count + 1)]
    assert [json.loads(files[f"report-{host}.json"])["resolved"] for host in hosts] == [hosts] * count


def test_pipe_mode(sagemaker_client, s3_client, bucket, training_image):
    name = unique("pipe")
    sagemaker_client.create_training_job(**training_request(
        name, bucket, training_image, HyperParameters={"epochs": "2"},
        AlgorithmSpecification={"TrainingImage": training_image, "TrainingInputMode": "Pipe"},
        InputDataConfig=[{"ChannelName": "train", "DataSource": {"S3DataSource": {
            "S3DataType": "S3Prefix", "S3Uri": f"s3://{bucket}/train/"}}}]))
    job = wait_training(sagemaker_client, name)
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    report = json.loads(model_files(s3_client, job["ModelArtifacts"]["S3ModelArtifacts"])["report-algo-1.json"])
    assert report["channels"]["train"]["pipe"] == ["1,2\n3,4\n", "1,2\n3,4\n"]


def test_checkpoints_restored_on_a_second_job(sagemaker_client, s3_client, bucket, training_image):
    checkpoint = {"S3Uri": f"s3://{bucket}/checkpoints/{unique('ck')}"}
    first, second = unique("ck1"), unique("ck2")
    for name in (first, second):
        sagemaker_client.create_training_job(**training_request(name, bucket, training_image,
                                                                CheckpointConfig=checkpoint))
        assert wait_training(sagemaker_client, name)["TrainingJobStatus"] == "Completed"
    job = sagemaker_client.describe_training_job(TrainingJobName=second)
    report = json.loads(model_files(s3_client, job["ModelArtifacts"]["S3ModelArtifacts"])["report-algo-1.json"])
    assert report["checkpoints_found"] == [f"ckpt-{first}"]


def test_duplicate_and_missing(sagemaker_client, bucket, training_image):
    name = unique("dup")
    sagemaker_client.create_training_job(**training_request(name, bucket, training_image))
    with pytest.raises(ClientError) as exc:
        sagemaker_client.create_training_job(**training_request(name, bucket, training_image))
    assert error_of(exc)[0] == "ResourceInUse" and "must be unique" in error_of(exc)[1]
    with pytest.raises(ClientError) as exc:
        sagemaker_client.delete_training_job(TrainingJobName=name)
    assert error_of(exc)[0] in ("ResourceInUse", "ResourceNotFound")
    wait_training(sagemaker_client, name)
    sagemaker_client.delete_training_job(TrainingJobName=name)
    with pytest.raises(ClientError) as exc:
        sagemaker_client.describe_training_job(TrainingJobName=name)
    assert error_of(exc) == ("ValidationException", "Requested resource not found.", 400)
