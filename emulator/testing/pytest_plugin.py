"""pytest plugin (entry point `pytest11`): an emulator for your own test suite.

    def test_my_pipeline(sagemaker_client, s3_client):
        s3_client.create_bucket(Bucket="my-bucket")
        sagemaker_client.create_model(...)

`sagemaker_emulator` is session-scoped: one server, on a free loopback port with a temporary data
dir, for the whole run. Its `.endpoint_url` is what to give any other AWS client.
`record_only_emulator` is a record-only server (no containers; jobs complete at once), reset before
each test that uses it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from . import EmulatorServer


@pytest.fixture(scope="session")
def sagemaker_emulator() -> Iterator[EmulatorServer]:
    with EmulatorServer() as server:
        yield server


@pytest.fixture(scope="session")
def sagemaker_emulator_record_only() -> Iterator[EmulatorServer]:
    """A second session server in record-only mode (`--execution none`): no container runs, jobs
    complete at once, endpoints answer a canned reply. Use `record_only_emulator` in tests."""
    with EmulatorServer(extra_args=["--execution", "none"]) as server:
        yield server


@pytest.fixture
def record_only_emulator(sagemaker_emulator_record_only: EmulatorServer) -> EmulatorServer:
    """Per test: the record-only server, reset first (SageMaker state, moto's services and S3), so every
    test starts from an empty account. `.client("sagemaker")` and `.endpoint_url` as usual."""
    sagemaker_emulator_record_only.reset(aws=True)
    return sagemaker_emulator_record_only


def _client_fixture(service: str, doc: str) -> Any:
    """A session-scoped fixture: a boto3 client of `service` bound to the `sagemaker_emulator` server."""

    def fixture(sagemaker_emulator: EmulatorServer) -> Any:
        return sagemaker_emulator.client(service)

    fixture.__doc__ = doc
    return pytest.fixture(scope="session", name=service.replace("-", "_") + "_client")(fixture)


sagemaker_client = _client_fixture("sagemaker", "SageMaker (control plane).")
sagemaker_runtime_client = _client_fixture("sagemaker-runtime", "SageMaker Runtime (InvokeEndpoint & co.).")
sagemaker_metrics_client = _client_fixture("sagemaker-metrics", "SageMaker Metrics (BatchPutMetrics & co.).")
sagemaker_featurestore_runtime_client = _client_fixture("sagemaker-featurestore-runtime",
                                                        "SageMaker Feature Store Runtime (PutRecord & co.).")
s3_client = _client_fixture("s3", "The embedded S3.")
logs_client = _client_fixture("logs", "CloudWatch Logs.")
cloudwatch_client = _client_fixture("cloudwatch", "CloudWatch metrics.")
