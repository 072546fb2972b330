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
