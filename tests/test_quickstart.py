"""The README's quick start, run as written (with the test server's URL)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap


def test_boto3_endpoint_url(sagemaker_emulator):
    import boto3

    sm = boto3.client("sagemaker", endpoint_url=sagemaker_emulator.endpoint_url, region_name="us-east-1",
                      aws_access_key_id="testing", aws_secret_access_key="testing")
    sm.create_model(ModelName="my-model", ExecutionRoleArn="arn:aws:iam::123456789012:role/SageMakerRole",
                    PrimaryContainer={"Image": "my-serving-image:latest"})
    assert sm.describe_model(ModelName="my-model")["ModelArn"] == \
        "arn:aws:sagemaker:us-east-1:123456789012:model/my-model"


def test_aws_endpoint_url_variable(sagemaker_emulator):
    code = textwrap.dedent("""
        import boto3

        s3 = boto3.client("s3")               # the embedded S3
        s3.create_bucket(Bucket="my-training-data")
        sm = boto3.client("sagemaker")        # the emulator
        print(sm.list_models()["Models"])
        assert "my-training-data" in [b["Name"] for b in s3.list_buckets()["Buckets"]]
    """)
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(AWS_ENDPOINT_URL=sagemaker_emulator.endpoint_url, AWS_ACCESS_KEY_ID="testing",
               AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION="us-east-1")
    subprocess.run([sys.executable, "-c", code], env=env, check=True, timeout=60)


def test_training_snippet(sagemaker_emulator, training_image):
    """The README's training snippet, with the test image tagged as `my-training:1`."""
    import subprocess as sp

    sp.run(["docker", "tag", training_image, "my-training:1"], check=True)
    sm = sagemaker_emulator.client("sagemaker")
    s3 = sagemaker_emulator.client("s3")
    logs = sagemaker_emulator.client("logs")
    s3.create_bucket(Bucket="my-training-data")
    s3.put_object(Bucket="my-training-data", Key="train/data.csv", Body=b"1,2\n")
    sm.create_training_job(
        TrainingJobName="my-job", RoleArn="arn:aws:iam::123456789012:role/SageMakerRole",
        AlgorithmSpecification={"TrainingImage": "my-training:1", "TrainingInputMode": "File"},
        InputDataConfig=[{"ChannelName": "train", "DataSource": {"S3DataSource": {
            "S3DataType": "S3Prefix", "S3Uri": "s3://my-training-data/train/"}}}],
        OutputDataConfig={"S3OutputPath": "s3://my-training-data/output"},
        ResourceConfig={"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 1},
        StoppingCondition={"MaxRuntimeInSeconds": 600})
    sm.get_waiter("training_job_completed_or_stopped").wait(TrainingJobName="my-job",
                                                            WaiterConfig={"Delay": 2})
    job = sm.describe_training_job(TrainingJobName="my-job")
    assert (job["TrainingJobStatus"], job["ModelArtifacts"]["S3ModelArtifacts"]) == (
        "Completed", "s3://my-training-data/output/my-job/output/model.tar.gz")
    stream = logs.describe_log_streams(logGroupName="/aws/sagemaker/TrainingJobs",
                                       logStreamNamePrefix="my-job/")["logStreams"][0]["logStreamName"]
    messages = [event["message"] for event in logs.get_log_events(
        logGroupName="/aws/sagemaker/TrainingJobs", logStreamName=stream, startFromHead=True)["events"]]
    assert messages[-1] == "done"
