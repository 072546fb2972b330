"""What several benchmarks share: the role ARN they pass, the boto3 clients they time with, the way
they take their command-line options, test files and timings of interleaved runs with the load."""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import time
from collections.abc import Callable, Iterator
from pathlib import Path
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


def make_file(path: Path, size: int, chunk: int = 1 << 20) -> None:
    """`size` random-looking bytes (no block repeated, so nothing can dedup them), synced to the disk."""
    block = os.urandom(chunk)
    with open(path, "wb") as f:
        for i in range(size // chunk):
            f.write(block[i % 256:] + block[:i % 256])
        f.write(block[:size % chunk])
    os.sync()


class Timings:
    """Seconds per named step, each with the 1-minute load average when it started: the machine is
    shared, so every figure is a median of interleaved runs and the load is reported beside it."""

    def __init__(self) -> None:
        self.seconds: dict[str, list[float]] = {}
        self.loads: dict[str, list[float]] = {}

    def time(self, name: str, step: Callable[[], float | None]) -> float:
        """Run `step`; its own figure if it returns one (a step that times only part of itself), else its duration."""
        load = os.getloadavg()[0]
        started = time.perf_counter()
        measured = step()
        elapsed = time.perf_counter() - started if measured is None else measured
        self.seconds.setdefault(name, []).append(elapsed)
        self.loads.setdefault(name, []).append(load)
        return elapsed

    def median(self, name: str) -> float:
        return statistics.median(self.seconds[name])

    def report(self) -> dict[str, Any]:
        return {"seconds_each_run": {k: [round(s, 3) for s in v] for k, v in self.seconds.items()},
                "load_average_1m": {k: [round(s, 2) for s in v] for k, v in self.loads.items()},
                "cpus": os.cpu_count()}
