"""Training features beyond the basic contract: input variants, clusters, isolation, metrics, log tailing."""

from __future__ import annotations

import datetime as dt
import gzip
import json

from .helpers import model_files, sdk_style_tail, training_request, unique, wait_training


def report_of(sm, s3, name: str, host: str = "algo-1") -> dict:
    job = wait_training(sm, name)
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    return json.loads(model_files(s3, job["ModelArtifacts"]["S3ModelArtifacts"])[f"report-{host}.json"])


def test_fastfile_gzip_recordio_and_augmented_manifest(sagemaker_client, s3_client, training_image):
    bucket = unique("inputs-bucket")
    s3_client.create_bucket(Bucket=bucket)
    s3_client.put_object(Bucket=bucket, Key="ff/data.txt", Body=b"fast file")
    s3_client.put_object(Bucket=bucket, Key="gz/part.gz", Body=gzip.compress(b"unzipped"))
    s3_client.put_object(Bucket=bucket, Key="aug.jsonl", Body=b'{"source": "img1", "label": 1}\n'
                                                                 b'{"source": "img2", "label": 0}\n')
    name = unique("inputs")
    sagemaker_client.create_training_job(**training_request(
        name, bucket, training_image,
        InputDataConfig=[
            {"ChannelName": "ff", "InputMode": "FastFile", "DataSource": {"S3DataSource": {
                "S3DataType": "S3Prefix", "S3Uri": f"s3://{bucket}/ff/"}}},
            {"ChannelName": "gz", "InputMode": "Pipe", "CompressionType": "Gzip", "DataSource": {"S3DataSource": {
                "S3DataType": "S3Prefix", "S3Uri": f"s3://{bucket}/gz/"}}},
            {"ChannelName": "aug", "InputMode": "Pipe", "DataSource": {"S3DataSource": {
                "S3DataType": "AugmentedManifestFile", "S3Uri": f"s3://{bucket}/aug.jsonl",
                "AttributeNames": ["source", "label"]}}}]))
    report = report_of(sagemaker_client, s3_client, name)
    assert report["channels"]["ff"] == {"data.txt": "fast file"}
    assert report["inputdataconfig"]["ff"]["TrainingInputMode"] == "FastFile"
    assert report["channels"]["gz"]["pipe"] == ["unzipped"]
    assert report["channels"]["aug"]["pipe"] == ["img11img20"]


def test_heterogeneous_instance_groups(sagemaker_client, s3_client, training_image):
    bucket = unique("groups-bucket")
    s3_client.create_bucket(Bucket=bucket)
    name = unique("groups")
    sagemaker_client.create_training_job(**training_request(name, bucket, training_image, ResourceConfig={
        "InstanceGroups": [{"InstanceGroupName": "data", "InstanceType": "ml.c5.xlarge", "InstanceCount": 1},
                           {"InstanceGroupName": "gpu", "InstanceType": "ml.g5.xlarge", "InstanceCount": 1}],
        "VolumeSizeInGB": 1}))
    job = wait_training(sagemaker_client, name)
    assert job["ResourceConfig"]["InstanceCount"] == 2
    second = report_of(sagemaker_client, s3_client, name, "algo-2")["resourceconfig"]
    assert second["current_group_name"] == "gpu" and second["current_instance_type"] == "ml.g5.xlarge"
    assert {g["instance_group_name"]: g["hosts"] for g in second["instance_groups"]} == {
        "data": ["algo-1"], "gpu": ["algo-2"]}


def test_network_isolation(sagemaker_client, s3_client, training_image):
    bucket = unique("isolated-bucket")
    s3_client.create_bucket(Bucket=bucket)
    name = unique("isolated")
    sagemaker_client.create_training_job(**training_request(name, bucket, training_image, EnableNetworkIsolation=True,
                                                            HyperParameters={"list_interfaces": "1"}))
    report = report_of(sagemaker_client, s3_client, name)
    assert report["interfaces"] == ["lo"]
    assert sagemaker_client.describe_training_job(TrainingJobName=name)["EnableNetworkIsolation"] is True


def test_container_calls_the_emulators_s3(sagemaker_client, s3_client, training_image):
    """Job containers get AWS_ENDPOINT_URL (the emulator, on the Docker bridge gateway) and a region."""
    bucket = unique("from-container")
    s3_client.create_bucket(Bucket=bucket)
    # public-read: the test image has no AWS SDK to sign with (user code would use boto3, which reads
    # AWS_ENDPOINT_URL and the injected credentials)
    s3_client.put_object(Bucket=bucket, Key="code/note.txt", Body=b"read from inside the container", ACL="public-read")
    name = unique("reads-s3")
    sagemaker_client.create_training_job(**training_request(name, bucket, training_image, HyperParameters={
        "behaviour": "read-s3", "s3_bucket": bucket, "s3_key": "code/note.txt"}))
    job = wait_training(sagemaker_client, name)
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    files = model_files(s3_client, job["ModelArtifacts"]["S3ModelArtifacts"])
    assert files["fetched.txt"] == b"read from inside the container"


def test_container_access_can_be_turned_off(training_image):
    from sagemaker_emulator.testing import EmulatorServer

    with EmulatorServer(env={"SAGEMAKER_EMULATOR_CONTAINER_ACCESS": "0"}) as server:
        sm, s3 = server.client("sagemaker"), server.client("s3")
        s3.create_bucket(Bucket="no-access-bucket")
        sm.create_training_job(**training_request("no-access", "no-access-bucket", training_image, HyperParameters={
            "behaviour": "read-s3", "s3_bucket": "no-access-bucket", "s3_key": "x"}))
        job = wait_training(sm, "no-access")
        assert job["TrainingJobStatus"] == "Failed" and "KeyError: 'AWS_ENDPOINT_URL'" in job["FailureReason"]


def test_metrics_in_cloudwatch_and_sdk_tail(sagemaker_emulator, sagemaker_client, logs_client, training_image):
    s3 = sagemaker_emulator.client("s3")
    bucket = unique("metrics-bucket")
    s3.create_bucket(Bucket=bucket)
    name = unique("metrics")
    sagemaker_client.create_training_job(**training_request(name, bucket, training_image, AlgorithmSpecification={
        "TrainingImage": training_image, "TrainingInputMode": "File",
        "MetricDefinitions": [{"Name": "train:loss", "Regex": "train_loss=([0-9.]+)"}]}))
    job = wait_training(sagemaker_client, name)
    assert job["FinalMetricDataList"][0]["MetricName"] == "train:loss"
    cloudwatch = sagemaker_emulator.client("cloudwatch")
    stats = cloudwatch.get_metric_statistics(
        Namespace="/aws/sagemaker/TrainingJobs", MetricName="train:loss",
        Dimensions=[{"Name": "Host", "Value": f"{name}/algo-1"}],
        StartTime=job["CreationTime"] - dt.timedelta(minutes=5),
        EndTime=job["TrainingEndTime"] + dt.timedelta(minutes=5),
        Period=60, Statistics=["Minimum", "Maximum", "SampleCount"])["Datapoints"]
    assert sum(p["SampleCount"] for p in stats) == 3
    assert min(p["Minimum"] for p in stats) == 0.3333 and max(p["Maximum"] for p in stats) == 1.0
    lines = sdk_style_tail(logs_client, "/aws/sagemaker/TrainingJobs", name)
    assert lines[0].startswith("starting on algo-1") and lines[-1] == "done"


def test_entrypoint_and_arguments(sagemaker_client, s3_client, logs_client, training_image):
    bucket = unique("entry-bucket")
    s3_client.create_bucket(Bucket=bucket)
    firsts = {}
    for label, spec in (("args", {"ContainerArguments": ["train", "--x"]}),
                        ("both", {"ContainerEntrypoint": ["python3", "/usr/local/bin/train"],
                                  "ContainerArguments": ["given"]})):
        name = unique(label)
        sagemaker_client.create_training_job(**training_request(name, bucket, training_image, AlgorithmSpecification={
            "TrainingImage": training_image, "TrainingInputMode": "File", **spec}))
        assert wait_training(sagemaker_client, name)["TrainingJobStatus"] == "Completed"
        firsts[label] = sdk_style_tail(logs_client, "/aws/sagemaker/TrainingJobs", name)[0]
    assert firsts["args"].endswith("argv=['--x']")
    assert firsts["both"].endswith("argv=['given']")


def test_pipe_object_missing_fails_the_job(sagemaker_client, s3_client, training_image):
    bucket = unique("vanish-bucket")
    s3_client.create_bucket(Bucket=bucket)
    s3_client.put_object(Bucket=bucket, Key="m/a.txt", Body=b"a")
    s3_client.put_object(Bucket=bucket, Key="manifest.json", Body=json.dumps(
        [{"prefix": f"s3://{bucket}/m/"}, "a.txt"]).encode())
    name = unique("vanish")
    sagemaker_client.create_training_job(**training_request(
        name, bucket, training_image, HyperParameters={"epochs": "2"},
        AlgorithmSpecification={"TrainingImage": training_image, "TrainingInputMode": "Pipe"},
        InputDataConfig=[{"ChannelName": "train", "DataSource": {"S3DataSource": {
            "S3DataType": "ManifestFile", "S3Uri": f"s3://{bucket}/manifest.json"}}}]))
    s3_client.delete_object(Bucket=bucket, Key="m/a.txt")  # gone before the feeder streams it
    job = wait_training(sagemaker_client, name)
    assert job["TrainingJobStatus"] == "Failed"
