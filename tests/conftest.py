"""Shared test helpers. The server fixtures come from our own pytest plugin (emulator.pytest_plugin)."""

from __future__ import annotations

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


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def name() -> str:
    return unique("t")


def error_of(excinfo: pytest.ExceptionInfo[ClientError]) -> tuple[str, str, int]:
    err = excinfo.value.response
    return err["Error"]["Code"], err["Error"]["Message"], err["ResponseMetadata"]["HTTPStatusCode"]


ROLE = "arn:aws:iam::123456789012:role/SageMakerRole"
