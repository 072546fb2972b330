"""The helpers tests share: names, ARNs, errors, request builders and waits (the one copy of each).

Fixtures live in conftest.py (and docker_fixtures.py); plain functions live here, so a test module
imports what it needs instead of reaching into another test module.
"""

from __future__ import annotations

import subprocess
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from botocore.exceptions import ClientError

ROLE = "arn:aws:iam::123456789012:role/SageMakerRole"


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def resource_arn(kind: str, name: str) -> str:
    """The ARN of a resource of the session server's default account and region."""
    return f"arn:aws:sagemaker:us-east-1:123456789012:{kind}/{name}"


def containers_with(arn: str, running_only: bool = False) -> list[str]:
    """Ids of the containers the emulator started for the resource `arn`."""
    args = ["docker", "ps", "-q", "--filter", f"label=sagemaker-emulator.resource={arn}"]
    if not running_only:
        args.insert(2, "-a")
    return subprocess.run(args, capture_output=True, text=True).stdout.split()


def error_of(excinfo: pytest.ExceptionInfo[ClientError]) -> tuple[str, str, int]:
    err = excinfo.value.response
    return err["Error"]["Code"], err["Error"]["Message"], err["ResponseMetadata"]["HTTPStatusCode"]


def wait_until(predicate: Callable[[], Any], timeout: float = 30, what: str | Callable[[], str] = "",
               interval: float = 0.2) -> Any:
    """Poll `predicate` until it returns something true (returned), failing after `timeout` seconds
    with `what` (a callable is evaluated then, so it can describe the state at the failure)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out waiting for {what() if callable(what) else what}")
        time.sleep(interval)


def training_request(name: str, bucket: str, image: str, **overrides) -> dict:
    """A CreateTrainingJob request: one ml.m5.large instance, File mode, output under s3://<bucket>/output."""
    request = {
        "TrainingJobName": name, "RoleArn": ROLE,
        "AlgorithmSpecification": {"TrainingImage": image, "TrainingInputMode": "File"},
        "OutputDataConfig": {"S3OutputPath": f"s3://{bucket}/output"},
        "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 1},
        "StoppingCondition": {"MaxRuntimeInSeconds": 600},
    }
    request.update(overrides)
    return request
