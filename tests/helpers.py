"""The helpers tests share: names, ARNs, errors, request builders and waits (the one copy of each).

Fixtures live in conftest.py (and docker_fixtures.py); plain functions live here, so a test module
imports what it needs instead of reaching into another test module.
"""

from __future__ import annotations

import subprocess
import uuid

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
