"""Non-SageMaker AWS calls on the same endpoint_url go to the embedded moto."""

from __future__ import annotations

import json

from .helpers import unique


def test_s3_round_trip(s3_client):
    bucket = unique("bucket")
    s3_client.create_bucket(Bucket=bucket)
    s3_client.put_object(Bucket=bucket, Key="data/train.csv", Body=b"1,2,3\n")
    assert s3_client.get_object(Bucket=bucket, Key="data/train.csv")["Body"].read() == b"1,2,3\n"
    listed = s3_client.list_objects_v2(Bucket=bucket, Prefix="data/")
    assert [o["Key"] for o in listed["Contents"]] == ["data/train.csv"]


def test_s3_bucket_named_like_our_routes(s3_client):
    # A bucket called "endpoints" must still be S3's: routing honours the signing service.
    s3_client.create_bucket(Bucket="endpoints")
    s3_client.put_object(Bucket="endpoints", Key="x/invocations", Body=b"data")
    assert s3_client.get_object(Bucket="endpoints", Key="x/invocations")["Body"].read() == b"data"


def test_sts_caller_identity(sagemaker_emulator):
    identity = sagemaker_emulator.client("sts").get_caller_identity()
    assert identity["Account"] == "123456789012"


def test_iam_create_role(sagemaker_emulator):
    iam = sagemaker_emulator.client("iam")
    name = unique("role")
    trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                      "Principal": {"Service": "sagemaker.amazonaws.com"}}]}
    role = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))["Role"]
    assert role["Arn"] == f"arn:aws:iam::123456789012:role/{name}"
    assert iam.get_role(RoleName=name)["Role"]["RoleName"] == name
