"""What several benchmarks share: the role ARN they pass and the boto3 client they time with."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
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


@contextlib.contextmanager
def moto_server() -> Iterator[str]:
    """moto's own server on a free loopback port for the length of the block; yields its URL."""
    from moto.server import ThreadedMotoServer

    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto.start()
    try:
        host, port = moto.get_host_and_port()
        yield f"http://{host}:{port}"
    finally:
        moto.stop()
