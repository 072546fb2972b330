"""Set-up shared by the SDK v3 client scripts (copied next to them into the working directory, and
imported there with the python of .venv-sdk3): the role v3 checks in IAM, and a session without telemetry."""

from __future__ import annotations

import json

import boto3

ROLE_ARN = "arn:aws:iam::123456789012:role/SageMakerRole"
BUCKET = "sagemaker-us-east-1-123456789012"
NO_TELEMETRY = {"SchemaVersion": "1.0", "SageMaker": {"PythonSDK": {"Modules": {"TelemetryOptOut": True}}}}


def ensure_role() -> str:
    """SageMakerRole, trusting sagemaker.amazonaws.com (v3 checks the trust policy); its ARN."""
    iam = boto3.client("iam")
    try:
        iam.create_role(RoleName="SageMakerRole", AssumeRolePolicyDocument=json.dumps({
            "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                    "Principal": {"Service": "sagemaker.amazonaws.com"}}]}))
    except iam.exceptions.EntityAlreadyExistsException:
        pass
    return ROLE_ARN
