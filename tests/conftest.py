"""Shared test helpers. The server fixtures come from our own pytest plugin (testing.pytest_plugin)."""

from __future__ import annotations

import subprocess
import uuid

import pytest
from botocore.exceptions import ClientError

from .docker_fixtures import (  # noqa: F401  (fixtures)
    docker_ready,
    processing_image,
    runtime,
    serving_image,
    toolkit_serving_image,
    toolkit_training_image,
    training_image,
)


def resource_arn(kind: str, name: str) -> str:
    """The ARN of a resource of the session server's default account and region."""
    return f"arn:aws:sagemaker:us-east-1:123456789012:{kind}/{name}"


def containers_with(arn: str, running_only: bool = False) -> list[str]:
    """Ids of the containers the emulator started for the resource `arn`."""
    args = ["docker", "ps", "-q", "--filter", f"label=sagemaker-emulator.resource={arn}"]
    if not running_only:
        args.insert(2, "-a")
    return subprocess.run(args, capture_output=True, text=True).stdout.split()


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def name() -> str:
    return unique("t")


def error_of(excinfo: pytest.ExceptionInfo[ClientError]) -> tuple[str, str, int]:
    err = excinfo.value.response
    return err["Error"]["Code"], err["Error"]["Message"], err["ResponseMetadata"]["HTTPStatusCode"]


ROLE = "arn:aws:iam::123456789012:role/SageMakerRole"


def sdk_environment(mp: pytest.MonkeyPatch, endpoint_url: str, telemetry: list) -> None:
    """What the README tells SDK users to set (AWS_ENDPOINT_URL, dummy credentials, a region), with the
    host's AWS_* variables removed, and the SDK's telemetry requests recorded in `telemetry` instead."""
    import os

    for key in [k for k in os.environ if k.startswith("AWS_")]:
        mp.delenv(key)
    mp.setenv("AWS_ENDPOINT_URL", endpoint_url)
    mp.setenv("AWS_ACCESS_KEY_ID", "testing")
    mp.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    mp.setenv("AWS_DEFAULT_REGION", "us-east-1")
    mp.setenv("SAGEMAKER_SUPPRESS_V2_WARNING", "1")
    mp.setattr("sagemaker.telemetry.telemetry_logging._send_telemetry_request",
               lambda *args, **kwargs: telemetry.append(args))
