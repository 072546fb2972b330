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
from .second_engine import second_engine  # noqa: F401  (fixture)


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
