"""What several benchmarks share: the role ARN they pass, the boto3 clients they time with and the way
they take their command-line options."""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Iterator
from typing import Any

import boto3
from botocore.config import Config as BotoConfig

ROLE = "arn:aws:iam::123456789012:role/SageMakerRole"


def client(service: str, url: str, pool: int = 10) -> Any:
    """A `service` client on `url` with dummy credentials and no retries (a retry would hide a failure
    and distort the timing); `pool` connections for benchmarks that share it between threads."""
    return boto3.client(service, endpoint_url=url, region_name="us-east-1", aws_access_key_id="bench",
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


def sagemaker_client(url: str, pool: int = 10) -> Any:
    return client("sagemaker", url, pool)


def options(description: str | None, **defaults: int | float) -> argparse.Namespace:
    """The benchmark's sizes from the command line: `--size-mib 64` for `size_mib=1024`, typed as its default."""
    parser = argparse.ArgumentParser(description=description)
    for name, default in defaults.items():
        parser.add_argument("--" + name.replace("_", "-"), type=type(default), default=default)
    return parser.parse_args()
