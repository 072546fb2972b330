"""pytest plugin (entry point `pytest11`): an emulator for your own test suite.

    def test_my_pipeline(sagemaker_client, s3_client):
        s3_client.create_bucket(Bucket="my-bucket")
        sagemaker_client.create_model(...)

`sagemaker_emulator` is session-scoped: one server, on a free loopback port with a temporary data
dir, for the whole run. Its `.endpoint_url` is what to give any other AWS client.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from . import EmulatorServer


@pytest.fixture(scope="session")
def sagemaker_emulator() -> Iterator[EmulatorServer]:
    with EmulatorServer() as server:
        yield server


@pytest.fixture(scope="session")
def sagemaker_client(sagemaker_emulator: EmulatorServer):
    return sagemaker_emulator.client("sagemaker")


@pytest.fixture(scope="session")
def sagemaker_runtime_client(sagemaker_emulator: EmulatorServer):
    return sagemaker_emulator.client("sagemaker-runtime")


@pytest.fixture(scope="session")
def sagemaker_metrics_client(sagemaker_emulator: EmulatorServer):
    return sagemaker_emulator.client("sagemaker-metrics")


@pytest.fixture(scope="session")
def s3_client(sagemaker_emulator: EmulatorServer):
    return sagemaker_emulator.client("s3")


@pytest.fixture(scope="session")
def logs_client(sagemaker_emulator: EmulatorServer):
    return sagemaker_emulator.client("logs")


@pytest.fixture(scope="session")
def cloudwatch_client(sagemaker_emulator: EmulatorServer):
    return sagemaker_emulator.client("cloudwatch")
