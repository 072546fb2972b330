"""What several benchmarks share: the role ARN they pass and the boto3 client they time with."""

from __future__ import annotations

from typing import Any

import boto3
from botocore.config import Config as BotoConfig

ROLE = "arn:aws:iam::123456789012:role/SageMakerRole"


def sagemaker_client(url: str, pool: int = 10) -> Any:
    """A SageMaker client on `url` with dummy credentials and no retries (a retry would hide a failure
    and distort the timing); `pool` connections for benchmarks that share it between threads."""
    return boto3.client("sagemaker", endpoint_url=url, region_name="us-east-1", aws_access_key_id="bench",
                        aws_secret_access_key="bench",
                        config=BotoConfig(retries={"max_attempts": 1}, max_pool_connections=pool))
